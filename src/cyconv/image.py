"""Filter images (Pillow images or NumPy arrays) with cyconv.

Pillow is optional (``pip install 'cyconv[image]'``): it is only imported by
the functions that need it (:func:`save_feature_grid`), so ``import
cyconv.image`` and every function on NumPy arrays work without it.

Kinds in, kinds out
-------------------
*Pillow image in, Pillow image out* of the same size rules and mode, values
rounded to the nearest integer and clipped to the mode's range:

==========  ==================  =========================================
mode        channels filtered   output range
==========  ==================  =========================================
L           L                   0..255
LA, RGBA    L / R, G, B         0..255; alpha carried through untouched
RGB, YCbCr  every band          0..255
CMYK        every band          0..255
I;16        I                   0..65535
I           I                   int32 range
F           F                   float32, not rounded or clipped
==========  ==================  =========================================

Converted first (the result has the converted mode): ``"1"`` -> ``"L"``,
``"P"`` -> ``"RGBA"`` when the palette has transparency else ``"RGB"``,
``"PA"`` -> ``"RGBA"``. Any other mode (``"HSV"``, ``"I;16B"``, ``"RGBa"``, ...)
raises ``ValueError``; convert it yourself (``img.convert("RGB")``).

*Array in, array out*: ``H x W`` or ``H x W x C`` (every channel filtered),
float32 out for a float32 input, float64 otherwise; ``out_dtype=`` asks for
another dtype (integer dtypes are rounded and clipped to their range, NaN
becomes 0).

The default operation is a convolution (:func:`cyconv.convolve2d`, kernel
flipped), as in SciPy; ``correlate=True`` uses :func:`cyconv.correlate2d`
(kernel laid over the image as printed). See :mod:`cyconv.kernels` for the
orientation of the derivative kernels.
8- and 16-bit images: the fused path
------------------------------------
8-bit Pillow modes (L, LA, RGB, RGBA, YCbCr, CMYK), ``I;16``, and uint8 /
uint16 arrays asked for ``out_dtype=np.uint8`` or ``np.uint16`` are filtered
in one pass: the samples are read in place (any layout: interleaved,
planar, strided), converted to float32 a row at a time, filtered by the
float32 kernels, then rounded half to even and saturated straight into the
output. Rank-1 kernels (Gaussian, box, ...) run as a row and a column pass.
Compared with the float64 reference (convolve2d per channel, rounded half
to even, clipped):

* integer kernels with ``sum|k| * max(sample max, |fillvalue|) < 2**24``
  (Sobel, Laplacian, sharpen, emboss, box sums, ... on 8 and 16 bits; every
  partial sum is an integer below 2**24, exact in float32): identical;
* other kernels: identical except where the float64 value lies within
  ``B`` of a tie (``n + 0.5``); there the result may be one level off.
  ``B = s * 2**-24 / (1 - s * 2**-24) * sum|k| * peak`` (plus, for the row
  and column passes, the rank-1 factorisation's residual times
  ``M * N * peak``), with ``s = M*N + 1`` (direct) or ``M + N + 2`` (row
  and column passes) and ``peak = max(sample max, |fillvalue|)``. When
  ``B >= 0.5``, or the kernel is not finite, or ``fillvalue`` is not exactly
  a float32, the float64 path runs instead.

Results are bitwise the same for any ``workers``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal, Mapping, NamedTuple, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from . import _core, _memory, _parallel
from . import kernels as _kernels
from ._conv2d import conv2d
from ._convolve import convolve2d, correlate2d
from ._geometry import BOUNDARIES as _BOUNDARIES
from ._padding import aligned, index_map

__all__ = ["filter_image", "feature_maps", "save_feature_grid", "sobel_edges", "sample",
           "SAMPLE_PATH", "PIL_HINT"]

PIL_HINT = "pip install 'cyconv[image]' (from a source checkout: pip install '.[image]')"

KernelLike = Union[str, ArrayLike]

# A 256 x 256 RGB picture made for the demo (tools/make_sample.py), installed with the package.
SAMPLE_PATH = Path(__file__).with_name("data") / "sample.png"


class _ModeInfo(NamedTuple):
    dtype: np.dtype       # storage type of one sample
    colour: int           # number of bands filtered (the alpha band, if any, is last)
    alpha: bool
    gray: str             # single-band mode of the same depth (for sobel_edges)


_U8, _U16, _I32, _F32 = (np.dtype(t) for t in (np.uint8, "<u2", "=i4", "=f4"))
_MODES: dict[str, _ModeInfo] = {
    "L": _ModeInfo(_U8, 1, False, "L"),
    "LA": _ModeInfo(_U8, 1, True, "L"),
    "RGB": _ModeInfo(_U8, 3, False, "L"),
    "RGBA": _ModeInfo(_U8, 3, True, "L"),
    "YCbCr": _ModeInfo(_U8, 3, False, "L"),
    "CMYK": _ModeInfo(_U8, 4, False, "L"),
    "I;16": _ModeInfo(_U16, 1, False, "I;16"),
    "I": _ModeInfo(_I32, 1, False, "I"),
    "F": _ModeInfo(_F32, 1, False, "F"),
}


# ---------------------------------------------------------------------------
# Pillow plumbing (PIL is never imported here unless the caller already has it)

def _require_pil():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(f"this needs Pillow, the optional extra: {PIL_HINT}") from None
    return Image


def _is_pil(img: Any) -> bool:
    # A Pillow image can only exist if PIL.Image has been imported.
    mod = sys.modules.get("PIL.Image")
    return mod is not None and isinstance(img, mod.Image)


def _pil_planes(img) -> tuple[np.ndarray, str]:
    """(H x W x bands array, mode) for a Pillow image, converting where documented."""
    mode = img.mode
    if mode == "1":
        img, mode = img.convert("L"), "L"
    elif mode == "P":
        mode = "RGBA" if "transparency" in img.info else "RGB"
        img = img.convert(mode)
    elif mode == "PA":
        img, mode = img.convert("RGBA"), "RGBA"
    if mode not in _MODES:
        raise ValueError(f"images of mode {mode!r} are not supported; supported modes: "
                         f"{', '.join(_MODES)} (and 1, P, PA, converted); "
                         f"convert first, e.g. img.convert('RGB')")
    data = np.asarray(img)
    if data.ndim == 2:
        data = data[:, :, None]
    return data, mode


def _to_pil(data: np.ndarray, mode: str):
    """An H x W x bands array, already in the mode's sample type, as a Pillow image."""
    Image = _require_pil()
    info = _MODES[mode]
    h, w = data.shape[:2]
    raw = np.ascontiguousarray(data, dtype=info.dtype)
    # frombuffer reads the array directly (no bytes copy in between)
    return Image.frombuffer(mode, (w, h), raw, "raw", mode, 0, 1)


# ---------------------------------------------------------------------------
# helpers

def _kernel(kernel: KernelLike, what: str = "kernel") -> np.ndarray:
    if isinstance(kernel, str):
        return _kernels.get(kernel)
    k = np.asarray(kernel)
    if k.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be a real numeric 2-D array or a kernel name, "
                        f"got dtype {k.dtype}")
    if k.ndim != 2:
        raise ValueError(f"{what} must be 2-D, got shape {k.shape}")
    if k.size == 0:
        raise ValueError(f"{what} must not be empty, got shape {k.shape}")
    return k.astype(np.float64)


def _array_planes(img: ArrayLike) -> tuple[np.ndarray, bool]:
    """(H x W x C array, was 2-D) for an array image."""
    a = np.asarray(img)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"image arrays must be real numeric (bool, integer or float), "
                        f"got dtype {a.dtype}")
    if a.ndim == 2:
        return a[:, :, None], True
    if a.ndim == 3:
        return a, False
    raise ValueError(f"image arrays must be H x W or H x W x C, got shape {a.shape}")


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def _filter_planes(planes, k, *, mode, boundary, fillvalue, correlate, workers, dtype):
    """Filter every channel of an H x W x C array; returns an H' x W' x C array."""
    fn = correlate2d if correlate else convolve2d
    k = k.astype(dtype, copy=False)
    outs = [fn(planes[:, :, c].astype(dtype, copy=False), k, mode, boundary, fillvalue,
               workers=workers) for c in range(planes.shape[2])]
    if not outs:
        raise ValueError("the image has no channels")
    return np.stack(outs, axis=-1)


def _round_clip(a: np.ndarray, dtype: DTypeLike) -> np.ndarray:
    """`a` in `dtype`: integer types rounded half to even and clipped, NaN -> 0."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return a.astype(dt)
    if dt.kind not in "iu":
        raise TypeError(f"out_dtype must be an integer or floating dtype, got {dt}")
    info = np.iinfo(dt)
    lo, hi = float(info.min), float(info.max)
    if hi > info.max:  # 64-bit limits round up in float64
        hi = float(np.nextafter(hi, 0.0))
    if lo < info.min:
        lo = float(np.nextafter(lo, 0.0))
    r = np.rint(np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=hi, neginf=lo))
    return np.clip(r, lo, hi).astype(dt)


# ---------------------------------------------------------------------------
# The fused 8/16-bit path: samples read in place, filtered in float32 a row at
# a time, rounded and saturated straight into the output (see filter_image)

_PIXEL_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16))   # native byte order
_F32_UNIT = 2.0 ** -24        # float32 unit roundoff
_F32_EXACT = 2.0 ** 24        # integers below this are exact in float32


class _Float32Route(NamedTuple):
    weights: np.ndarray   # float32: M x N kernel, or M column then N row factors
    separable: bool
    bound: float          # |float32 result - float64 reference| <= bound (0: exact)
    taps: int             # multiply-adds per output sample


def _rank1(kernel: np.ndarray):
    """(column, row, residual): kernel ~ outer(column, row), factored through
    its largest entry; residual = max |outer - kernel|. None if not rank 1."""
    i0, j0 = np.unravel_index(np.argmax(np.abs(kernel)), kernel.shape)
    if kernel[i0, j0] == 0:
        return None
    column, row = kernel[:, j0], kernel[i0] / kernel[i0, j0]
    residual = float(np.abs(np.outer(column, row) - kernel).max())
    if not residual <= 1e-9 * abs(kernel[i0, j0]):
        return None
    return column, row, residual


def _float32_route(kernel: np.ndarray, fill: float, peak: float,
                   rounded: bool) -> _Float32Route | None:
    """How the float32 path computes the correlation with `kernel` (float64,
    already flipped for a convolution) for samples and fill of magnitude <= peak,
    and its error bound; None when `rounded` results could be off by half a level."""
    M, N = kernel.shape
    total = float(np.abs(kernel).sum()) * peak   # bounds sum |w * x|
    if np.array_equal(kernel, np.rint(kernel)) and fill == round(fill) and total < _F32_EXACT:
        # integer weights and samples, every partial sum an integer < 2**24: exact
        return _Float32Route(kernel.astype(np.float32).ravel(), False, 0.0, M * N)
    factors = _rank1(kernel) if M * N > 2 * (M + N) else None
    if factors is not None:
        column, row, residual = factors
        # factors rounded to float32 (2 roundings per weight), a row sum of N
        # and a column sum of M terms, plus the factorisation's own residual
        steps, taps, extra = M + N + 2, M + N, residual * M * N * peak
        weights = np.concatenate([column, row]).astype(np.float32)
    else:
        steps, taps, extra = M * N + 1, M * N, 0.0
        weights = kernel.astype(np.float32).ravel()
    gamma = steps * _F32_UNIT / (1 - steps * _F32_UNIT)
    bound = gamma * total + extra
    if rounded and not bound < 0.5:
        return None
    return _Float32Route(weights, factors is not None, bound, taps)


def _pixel_filter(data: np.ndarray, k: np.ndarray, colour: int, out_dtype, *, mode: str,
                  boundary: str, fillvalue, correlate: bool, workers,
                  out: np.ndarray | None = None) -> np.ndarray | None:
    """`data` (H x W x C, uint8 or uint16, any strides) filtered by the fused
    float32 path: bands < colour filtered, the rest carried like alpha.
    Integer outputs are rounded half to even and saturated. Returns the
    H' x W' x C result (written into `out` if given), or None where the path
    does not apply (the caller then takes the float64 path)."""
    out_dtype = np.dtype(out_dtype)
    rounded = out_dtype in _PIXEL_TYPES
    if data.dtype not in _PIXEL_TYPES or not (rounded or out_dtype == np.float32):
        return None
    if not isinstance(mode, str) or mode not in ("full", "same", "valid") \
            or not isinstance(boundary, str) or boundary not in _BOUNDARIES:
        return None  # the float64 path raises the error
    pad_mode = _BOUNDARIES[boundary]
    fill = 0.0
    if pad_mode == "constant":
        if not isinstance(fillvalue, (int, float, np.integer, np.floating)) \
                or not np.isfinite(fillvalue):
            return None
        fill = float(fillvalue)
        if float(np.float32(fill)) != fill:
            return None  # keep the fill exact: it is a sample like the others
    H, W, C = data.shape
    M, N = k.shape
    if mode == "full":
        Ho, Wo, pads = H + M - 1, W + N - 1, ((M - 1, M - 1), (N - 1, N - 1))
    elif mode == "same":
        Ho, Wo = H, W
        pads = ((M // 2, (M - 1) // 2), (N // 2, (N - 1) // 2)) if not correlate else \
               (((M - 1) // 2, M // 2), ((N - 1) // 2, N // 2))
    else:
        Ho, Wo, pads = H - M + 1, W - N + 1, ((0, 0), (0, 0))
    if min(H, W, C, Ho, Wo) <= 0:
        return None  # empty, or a 'valid' kernel larger than the image
    kernel = k if correlate else k[::-1, ::-1]
    peak = max(float(np.iinfo(data.dtype).max), abs(fill))
    route = _float32_route(kernel, fill, peak, rounded)
    if route is None:
        return None
    (top, bottom), (left, right) = pads
    plan = _core.PixelPlan(index_map(H, top, bottom, pad_mode),
                           index_map(W, left, right, pad_mode), left, fill, route.weights,
                           M, N, route.separable,
                           M // 2 if not correlate else (M - 1) // 2,
                           N // 2 if not correlate else (N - 1) // 2)
    if out is None:
        out = _memory.empty((Ho, Wo, C), out_dtype)
    data = aligned(data)
    # Interleaved pixels (C samples side by side in both arrays) are filtered
    # as one row of W*C samples; anything else a plane at a time.
    interleaved = C > 1 and data.strides[2] == data.itemsize \
        and data.strides[1] == C * data.itemsize \
        and out.strides[2] == out.itemsize and out.strides[1] == C * out.itemsize
    size = plan.scratch_size(C if interleaved else 1)

    def rows(scratch, r0, r1):
        _core.filter_pixels(plan, data, out, colour, interleaved, scratch, r0, r1)

    _parallel.run_rows(rows, Ho, Wo * C * route.taps, _parallel.resolve_workers(workers),
                       scratch=lambda: np.empty(size, np.float32))
    return out


def _carry_alpha(alpha, kshape, *, mode, boundary, correlate, workers) -> np.ndarray:
    """Alpha of the input pixel under the kernel's centre, for every output pixel.

    In ``mode="same"`` that is the input's alpha itself; in "full"/"valid"
    the same boundary rule extends it (with 0, transparent, for "fill").
    """
    if mode == "same":
        return alpha.copy()
    m, n = kshape
    delta = np.zeros((m, n))
    delta[(m - 1) // 2, (n - 1) // 2] = 1.0  # the sample 'same' mode centres on
    fn = correlate2d if correlate else convolve2d
    return _round_clip(fn(alpha.astype(np.float64), delta, mode, boundary, 0,
                          workers=workers), np.uint8)


# ---------------------------------------------------------------------------
# public API

def filter_image(img, kernel: KernelLike, *, boundary: str = "symm", mode: str = "same",
                 fillvalue: float = 0, correlate: bool = False, workers: int | None = None,
                 out_dtype: DTypeLike | None = None):
    """Filter every channel of an image with a 2-D kernel.

    Parameters
    ----------
    img : PIL.Image.Image or array_like (H, W) or (H, W, C)
        See the module docstring for the supported modes and what comes back.
    kernel : array_like (2-D) or str
        A kernel, or a name for :func:`cyconv.kernels.get` (``"gaussian:7,1.5"``).
    boundary, mode, fillvalue :
        As :func:`cyconv.convolve2d`; the defaults keep the size and mirror
        the edges (``boundary="symm"``, ``mode="same"``). ``fillvalue`` is in
        the image's units. With ``mode="full"``/``"valid"`` an alpha band takes
        the alpha of the input pixel under the kernel's centre.
    correlate : bool
        Use :func:`cyconv.correlate2d` instead of :func:`cyconv.convolve2d`.
    workers : int, optional
        Threads, as in :func:`cyconv.convolve2d`.
    out_dtype : dtype, optional
        Array inputs only: the result's dtype (integer types are rounded and
        clipped). Default float32 for float32 input, else float64. A uint8
        or uint16 array with ``out_dtype`` uint8 or uint16 takes the fused
        path (see the module docstring for its exactness).

    Returns
    -------
    PIL.Image.Image of the input's mode (after the documented conversions), or ndarray.
    """
    k = _kernel(kernel)
    opts = dict(mode=mode, boundary=boundary, correlate=correlate, workers=workers)
    if _is_pil(img):
        if out_dtype is not None:
            raise TypeError("out_dtype applies to array inputs; Pillow images keep their mode "
                            "(convert the result, or pass np.asarray(img))")
        data, pmode = _pil_planes(img)
        info = _MODES[pmode]
        fast = _pixel_filter(data, k, info.colour, info.dtype, fillvalue=fillvalue, **opts)
        if fast is not None:
            return _to_pil(fast, pmode)
        colour = data[:, :, :info.colour]
        out = _filter_planes(colour, k, fillvalue=fillvalue,
                             dtype=_compute_dtype(info.dtype), **opts)
        out = _round_clip(out, info.dtype)
        if info.alpha:
            alpha = _carry_alpha(data[:, :, -1], k.shape, **opts)
            out = np.concatenate([out, alpha[:, :, None]], axis=-1)
        return _to_pil(out, pmode)
    planes, flat = _array_planes(img)
    out = None
    if out_dtype is not None:
        out = _pixel_filter(planes, k, planes.shape[2], out_dtype, fillvalue=fillvalue, **opts)
    if out is None:
        out = _filter_planes(planes, k, fillvalue=fillvalue,
                             dtype=_compute_dtype(planes.dtype), **opts)
        if out_dtype is not None:
            out = _round_clip(out, out_dtype)
    return out[:, :, 0] if flat else out


def _kernel_list(kernels) -> list[np.ndarray]:
    if isinstance(kernels, Mapping):
        return [_kernel(v, f"kernels[{key!r}]") for key, v in kernels.items()]
    if isinstance(kernels, str):
        return [_kernel(kernels)]
    if isinstance(kernels, np.ndarray):
        if kernels.ndim == 2:
            return [_kernel(kernels)]
        if kernels.ndim == 3:
            return [_kernel(k, f"kernels[{i}]") for i, k in enumerate(kernels)]
        raise ValueError(f"a kernels array must be 2-D or a 3-D stack, got shape "
                         f"{kernels.shape}")
    return [_kernel(k, f"kernels[{i}]") for i, k in enumerate(kernels)]


def feature_maps(img, kernels: Sequence[KernelLike] | Mapping[str, ArrayLike] | np.ndarray, *,
                 workers: int | None = None) -> NDArray[np.floating]:
    """Every kernel on every channel: an array (n_kernels, C, H, W).

    ``maps[i, c]`` equals ``cyconv.convolve2d(channel_c, kernels[i],
    mode="same", boundary="symm")`` -- a convolution, like
    :func:`filter_image`'s default, including its centring of even-sized
    kernels. Computed as one depthwise :func:`cyconv.conv2d` layer
    (``groups=C``, symmetric padding) per distinct kernel shape.

    ``img``: a Pillow image (its colour bands; an alpha band is left out) or
    an array (H, W) (C = 1) or (H, W, C). ``kernels``: a list of arrays or
    names, a dict name -> array (in its order), or a 3-D array stack.
    The result is float32 for float32 (and mode "F") inputs and for 8- and
    16-bit unsigned inputs (modes L, RGB, RGBA, I;16, ...; uint8 and uint16
    arrays), which take the fused path of :func:`filter_image` and are
    computed in float32; float64 otherwise.
    """
    if _is_pil(img):
        data, pmode = _pil_planes(img)
        planes = data[:, :, :_MODES[pmode].colour]
    else:
        planes, _ = _array_planes(img)
    pixels = planes.dtype in _PIXEL_TYPES
    dtype = np.dtype(np.float32) if pixels else _compute_dtype(planes.dtype)
    ks = _kernel_list(kernels)
    H, W, C = planes.shape
    out = _memory.empty((len(ks), C, H, W), dtype)
    if not ks or out.size == 0:
        return out
    if pixels:
        # The fused path reads the samples in place and writes each map plane.
        for i, k in enumerate(ks):
            _pixel_filter(planes, k, C, dtype, mode="same", boundary="symm", fillvalue=0,
                          correlate=False, workers=workers, out=out[i].transpose(1, 2, 0))
        return out
    x = np.ascontiguousarray(planes.transpose(2, 0, 1), dtype=dtype)
    by_shape: dict[tuple[int, int], list[int]] = {}
    for i, k in enumerate(ks):
        by_shape.setdefault(k.shape, []).append(i)
    for (m, n), idx in by_shape.items():
        # conv2d correlates and centres "same" on offset (P-1)//2 of an odd
        # P-sized kernel; convolve2d centres on (M-1)//2 of the flipped kernel.
        # An even kernel therefore goes one sample down/right in a (M+1)-sized
        # canvas, then everything is flipped.
        pm, pn = 2 * (m // 2) + 1, 2 * (n // 2) + 1
        om, on = m // 2 - (m - 1) // 2, n // 2 - (n - 1) // 2
        bank = np.zeros((len(idx), pm, pn), dtype)
        for j, i in enumerate(idx):
            bank[j, om:om + m, on:on + n] = ks[i]
        bank = bank[:, ::-1, ::-1]
        weight = np.ascontiguousarray(np.broadcast_to(bank, (C,) + bank.shape)
                                      .reshape(C * len(idx), 1, pm, pn))
        res = conv2d(x, weight, padding="same", groups=C, padding_mode="symmetric",
                     workers=workers)
        out[idx] = res.reshape(C, len(idx), H, W).transpose(1, 0, 2, 3)
    return out


def _stretch(a: np.ndarray) -> np.ndarray:
    """A map's finite range onto 0..255 (constant maps and non-finite values -> 0)."""
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.uint8)
    lo, hi = float(a[finite].min()), float(a[finite].max())
    scaled = (np.where(finite, a, lo) - lo) * (255.0 / (hi - lo if hi > lo else 1.0))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _to_display(row: np.ndarray) -> np.ndarray:
    """One kernel's maps (C, H, W) onto 0..255 with one shared scale, robust
    to a few extreme pixels:

    - signed maps (edges, Laplacians: at least 10 % of the values negative
      and 10 % positive): 0 is mid-gray (128) and the 99.5th percentile of
      ``|value|`` is white (+) or black (-);
    - other maps (blurs, sharpened images): the 0.5th..99.5th percentile
      range is stretched onto 0..255.

    Values past the percentiles clip; non-finite values and constant maps
    show as 0 (black)."""
    a = np.asarray(row, dtype=np.float64)
    finite = np.isfinite(a)
    if not finite.any():
        return np.zeros(a.shape, np.uint8)
    values = a[finite]
    lo, hi = float(values.min()), float(values.max())
    if lo == hi:
        return np.zeros(a.shape, np.uint8)
    if min(np.count_nonzero(values < 0), np.count_nonzero(values > 0)) >= 0.1 * values.size:
        s = float(np.percentile(np.abs(values), 99.5)) or max(-lo, hi)
        scaled = 128.0 + 127.0 * np.where(finite, a, 0.0) / s
    else:
        lo, hi = (float(q) for q in np.percentile(values, [0.5, 99.5]))
        if hi <= lo:
            lo, hi = float(values.min()), float(values.max())
        scaled = (np.where(finite, a, lo) - lo) * (255.0 / (hi - lo))
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    out[~finite] = 0
    return out


def _text_image(text: str) -> np.ndarray:
    """`text` in Pillow's default font, white on black, cropped to the ink:
    measured from the drawn pixels, since ``textbbox`` can be narrower than
    what some Pillow versions draw."""
    from PIL import Image, ImageDraw

    scratch = Image.new("L", (12 * len(text) + 32, 48), 0)
    draw = ImageDraw.Draw(scratch)
    draw.fontmode = "1"  # crisp, not anti-aliased, at this small size
    draw.text((8, 8), text, fill=255)
    box = scratch.getbbox()
    return np.zeros((1, 1), np.uint8) if box is None else np.asarray(scratch.crop(box))


def save_feature_grid(maps: ArrayLike, path: str | os.PathLike, *,
                      labels: Sequence[str] | None = None,
                      channel_labels: Sequence[str] | None = None,
                      gap: int = 4) -> Path:
    """Write feature maps as one grayscale PNG mosaic; returns the path.

    ``maps``: (n_kernels, C, H, W) as from :func:`feature_maps` (or
    (n, H, W), one channel). Rows are kernels, columns channels, with
    ``gap`` pixels of mid-gray between panels. Each row (one kernel over
    every channel) shares one display scale, so channels can be compared:
    signed maps (at least 10 % negative and 10 % positive values) put 0 at
    mid-gray and the 99.5th percentile of ``|value|`` at black/white; others
    stretch their 0.5th..99.5th percentiles onto 0..255 (a few extreme
    pixels do not wash out the rest).
    ``labels`` (one per row) are written in a margin left of the rows, and
    ``channel_labels`` (one per column, e.g. ``["R", "G", "B"]``) in a strip
    above the columns, white on black, never over a map. Always PNG,
    whatever the suffix. Needs Pillow.
    """
    Image = _require_pil()

    m = np.asarray(maps)
    if m.ndim == 3:
        m = m[:, None]
    if m.ndim != 4:
        raise ValueError(f"maps must be (n_kernels, C, H, W) or (n_kernels, H, W), "
                         f"got shape {m.shape}")
    if m.dtype.kind not in "biuf":
        raise TypeError(f"maps must be real numeric, got dtype {m.dtype}")
    n, C, H, W = m.shape
    if n * C * H * W == 0:
        raise ValueError(f"cannot draw an empty grid of maps with shape {m.shape}")
    row_text = _labels(labels, n, "labels", "row")
    col_text = _labels(channel_labels, C, "channel_labels", "column")
    gap = _gap(gap)
    row_ink = [_text_image(t) if t else None for t in row_text]
    col_ink = [_text_image(t) if t else None for t in col_text]
    pad = 3
    left = max((a.shape[1] for a in row_ink if a is not None), default=-2 * pad) + 2 * pad
    top = max((a.shape[0] for a in col_ink if a is not None), default=-2 * pad) + 2 * pad
    height, width = top + n * H + (n - 1) * gap, left + C * W + (C - 1) * gap
    # A label longer than its map is (a tiny map): widen or lengthen the
    # picture so that it is still drawn whole.
    if row_ink[-1] is not None:
        height = max(height, top + (n - 1) * (H + gap) + pad + row_ink[-1].shape[0])
    if col_ink[-1] is not None:
        width = max(width, left + (C - 1) * (W + gap) + pad + col_ink[-1].shape[1])
    grid = np.zeros((height, width), np.uint8)
    grid[top:top + n * H + (n - 1) * gap, left:left + C * W + (C - 1) * gap] = 96  # the gaps
    for i in range(n):
        y = top + i * (H + gap)
        shown = _to_display(m[i])
        for c in range(C):
            x = left + c * (W + gap)
            grid[y:y + H, x:x + W] = shown[c]
        _paste(grid, row_ink[i], y + pad, pad)
    for c in range(C):
        _paste(grid, col_ink[c], pad, left + c * (W + gap) + pad)
    out = Path(path)
    Image.fromarray(grid).save(out, format="PNG")
    return out


def _labels(labels, count: int, name: str, what: str) -> list[str]:
    if labels is None:
        return [""] * count
    if isinstance(labels, str):
        raise TypeError(f"{name} must be a sequence of strings, one per {what}, got a string")
    labels = [str(s) for s in labels]
    if len(labels) != count:
        raise ValueError(f"{name} must have one string per {what} ({count}), got {len(labels)}")
    return labels


def _gap(value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 0:
        raise ValueError(f"gap must be a non-negative integer, got {value!r}")
    return int(value)


def _paste(grid: np.ndarray, ink: np.ndarray | None, y: int, x: int) -> None:
    """Label ink at (y, x) (white on black, over whatever is there)."""
    if ink is not None:
        grid[y:y + ink.shape[0], x:x + ink.shape[1]] = ink


def sobel_edges(img, *, reduce: Literal["max", "mean"] = "max", scale: float = 1.0,
                workers: int | None = None, out_dtype: DTypeLike | None = None):
    """Sobel gradient magnitude ``hypot(gx, gy) * scale`` (``boundary="symm"``, same size).

    Every colour channel gets its own magnitude; ``reduce`` combines them:
    ``"max"`` (default: the strongest edge in any channel) or ``"mean"``.
    A Pillow image comes back as a single-band image (``"L"`` for 8-bit
    modes, ``"I;16"``, ``"I"`` or ``"F"`` otherwise), rounded and clipped
    like :func:`filter_image`; the raw magnitude of a Sobel pair reaches
    ``4 * sqrt(2)`` times the input's range, so strong 8-bit edges saturate
    at 255 unless ``scale`` is below 1 (``scale=1 / (4 * 2**0.5)`` keeps the
    input's range). An array comes back H x W (float32 for float32 input,
    else float64, or ``out_dtype``). Alpha bands are ignored.
    """
    if reduce not in ("max", "mean"):
        raise ValueError(f"reduce must be 'max' or 'mean', got {reduce!r}")
    if _is_pil(img):
        if out_dtype is not None:
            raise TypeError("out_dtype applies to array inputs; Pillow images keep their depth")
        data, pmode = _pil_planes(img)
        info = _MODES[pmode]
        planes, dtype = data[:, :, :info.colour], _compute_dtype(info.dtype)
    else:
        planes, _ = _array_planes(img)
        dtype = _compute_dtype(planes.dtype)
    if planes.dtype in _PIXEL_TYPES and planes.size:
        # Sobel sums of 8/16-bit samples are exact in float32 (|sum| <= 4 * 65535 < 2**24)
        opts = dict(mode="same", boundary="symm", fillvalue=0, correlate=True, workers=workers)
        gx = _pixel_filter(planes, _kernels.sobel_x(), planes.shape[2], np.float32, **opts)
        gy = _pixel_filter(planes, _kernels.sobel_y(), planes.shape[2], np.float32, **opts)
        mag = np.hypot(gx, gy, dtype=dtype)
    else:
        opts = dict(mode="same", boundary="symm", fillvalue=0, correlate=True,
                    workers=workers, dtype=dtype)
        gx = _filter_planes(planes, _kernels.sobel_x(), **opts)
        gy = _filter_planes(planes, _kernels.sobel_y(), **opts)
        mag = np.hypot(gx, gy)
    mag = mag.max(axis=-1) if reduce == "max" else mag.mean(axis=-1)
    if scale != 1:
        mag = mag * dtype.type(scale)
    mag = mag.astype(dtype, copy=False)
    if _is_pil(img):
        gray = _MODES[pmode].gray
        return _to_pil(_round_clip(mag, _MODES[gray].dtype)[:, :, None], gray)
    return mag if out_dtype is None else _round_clip(mag, out_dtype)


def sample():
    """The bundled sample picture (256 x 256, RGB) as a Pillow image, loaded
    into memory (the file is closed). Its path is :data:`SAMPLE_PATH`.
    Needs Pillow."""
    Image = _require_pil()
    with Image.open(SAMPLE_PATH) as im:
        im.load()
        return im.copy()

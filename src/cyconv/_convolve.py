"""convolve2d / correlate2d: SciPy's semantics, cyconv's kernels.

This layer validates the arguments, works out the result type, reduces
every mode and boundary to one valid correlation of a padded image (a Plan:
the padding is described by index maps, never materialised here), and
hands the Plan to the chosen method in _methods.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _methods, _parallel
from ._padding import aligned, index_map

Mode = Literal["full", "same", "valid"]
Boundary = Literal["fill", "pad", "wrap", "circular", "symm", "symmetric"]
Method = Literal["auto", "direct", "separable", "fft"]

_MODES = ("full", "same", "valid")
# SciPy's names and aliases -> the np.pad mode that extends the image the same
# way (through index_map). np.pad's "symmetric" repeats the edge sample like
# SciPy's "symm", and both keep reflecting / wrapping when the kernel is
# larger than the image.
_BOUNDARIES = {
    "fill": "constant", "pad": "constant",
    "wrap": "wrap", "circular": "wrap",
    "symm": "symmetric", "symmetric": "symmetric",
}


def convolve2d(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
               boundary: Boundary = "fill", fillvalue: complex = 0, *,
               method: Method = "auto", workers: int | None = None) -> NDArray:
    """Convolve two 2-D arrays, exactly like ``scipy.signal.convolve2d``.

    Parameters
    ----------
    in1, in2 : array_like, 2-D
        The image and the kernel. In ``"valid"`` mode the two are swapped
        when ``in2`` is at least as large as ``in1`` in every dimension.
    mode : {"full", "same", "valid"}
        ``"full"``: every overlap, shape ``(H+M-1, W+N-1)``; ``"same"``: the
        shape of ``in1``, centred on the full output with offset ``(M-1)//2``;
        ``"valid"``: only outputs that need no boundary values.
    boundary : {"fill", "wrap", "symm"} (aliases "pad", "circular", "symmetric")
        How ``in1`` is extended beyond its edges: with ``fillvalue``,
        periodically, or mirrored with the edge sample repeated.
    fillvalue : scalar
        Value outside ``in1`` for ``boundary="fill"``, cast to the result type.
    method : {"auto", "direct", "separable", "fft"}
        Keyword only; not in SciPy. ``"direct"`` sums every product, like
        SciPy. ``"separable"`` runs a rank-1 kernel as two 1-D passes
        (float32/float64; factors reproduce every kernel entry to a few
        ulps, else ``ValueError``). ``"fft"`` uses overlap-save FFT tiles
        (``scipy.fft`` if installed, else ``numpy.fft``), with an absolute
        error bounded relative to the largest term: a NaN or inf then
        spreads over the tiles that read it, integer results are
        rounded back only when that is provably exact (otherwise direct is
        used), and longdouble is computed in double precision. ``"auto"``
        picks the cheapest by a cost model measured on real hardware (see
        :func:`choose_method`), keeps the result type, and stays direct when
        an input holds NaN or inf.
    workers : int, optional
        Threads to use (keyword only; not in SciPy). None: the process default
        (see :func:`set_num_threads`); negative counts back from all CPUs.
        The result is bitwise the same for any value.

    Returns
    -------
    ndarray
        Result of NumPy's type promotion of ``in1`` and ``in2``; integer sums
        wrap around in that type like SciPy's.
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, method, workers, convolve=True)


def correlate2d(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
                boundary: Boundary = "fill", fillvalue: complex = 0, *,
                method: Method = "auto", workers: int | None = None) -> NDArray:
    """Cross-correlate two 2-D arrays, like ``scipy.signal.correlate2d``.

    Same arguments and result type as :func:`convolve2d`; ``in2`` is
    conjugated. One deliberate difference: for complex inputs in ``"valid"``
    mode with ``in1`` smaller than ``in2`` the result is the true
    cross-correlation (SciPy returns its complex conjugate).
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, method, workers, convolve=False)


def choose_method(in1: ArrayLike, in2: ArrayLike, mode: Mode = "full",
                  boundary: Boundary = "fill", *, convolve: bool = True) -> str:
    """The method ``method="auto"`` picks for these arguments:
    ``"direct"``, ``"separable"`` or ``"fft"``."""
    plan = _plan(in1, in2, mode, boundary, 0, convolve)
    if isinstance(plan, np.ndarray):
        return "direct"
    return _methods.choose(plan, "auto")


def _filter2d(in1, in2, mode, boundary, fillvalue, method, workers, *, convolve):
    if not isinstance(method, str) or method not in _methods.METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _methods.METHODS))}, "
                         f"got {method!r}")
    workers = _parallel.resolve_workers(workers)
    plan = _plan(in1, in2, mode, boundary, fillvalue, convolve)
    if isinstance(plan, np.ndarray):
        return plan
    out = _methods.run(plan, _methods.choose(plan, method), workers)
    if plan.swapped and not convolve:
        # We computed sum_k in1[k] * conj(in2_small[k]) slid over the big
        # array; the true correlation of (small, big) is its conjugate, reversed.
        out = np.conj(out[::-1, ::-1]) if out.dtype.kind == "c" else out[::-1, ::-1]
        out = np.ascontiguousarray(out)
    return out


def _plan(in1, in2, mode, boundary, fillvalue, convolve):
    """Validate everything and reduce the call to a valid correlation of a
    padded image: a Plan, or the final result when nothing is left to compute."""
    name = "convolve2d" if convolve else "correlate2d"
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    if in1.ndim != 2 or in2.ndim != 2:
        raise ValueError(f"{name} inputs must both be 2-D arrays, got in1.ndim={in1.ndim} "
                         f"and in2.ndim={in2.ndim}")
    if not isinstance(mode, str) or mode not in _MODES:
        raise ValueError(f"mode must be one of 'full', 'same', 'valid', got {mode!r}")
    if not isinstance(boundary, str) or boundary not in _BOUNDARIES:
        raise ValueError("boundary must be 'fill' (or 'pad'), 'wrap' (or 'circular') or "
                         f"'symm' (or 'symmetric'), got {boundary!r}")
    dtype = _result_dtype(in1.dtype, in2.dtype, name)
    pad_mode = _BOUNDARIES[boundary]
    fill = _fill_scalar(fillvalue, dtype) if pad_mode == "constant" else np.zeros((), dtype)

    swapped = mode == "valid" and _valid_swap_needed(in1.shape, in2.shape)
    if swapped:
        in1, in2 = in2, in1

    (H, W), (M, N) = in1.shape, in2.shape
    if mode == "full":
        out_shape = (H + M - 1, W + N - 1)
        pads = ((M - 1, M - 1), (N - 1, N - 1))
    elif mode == "same":
        out_shape = (H, W)
        # Output (i, j) is centred on input (i, j) with offset (M-1)//2 for
        # convolution; correlation's flipped kernel moves the odd sample to the other side.
        pads = ((M // 2, (M - 1) // 2), (N // 2, (N - 1) // 2)) if convolve else \
               (((M - 1) // 2, M // 2), ((N - 1) // 2, N // 2))
    else:
        out_shape = (H - M + 1, W - N + 1)
        pads = ((0, 0), (0, 0))
    if min(out_shape) < 0:
        raise ValueError(f"{name}: in1 of shape {in1.shape} and in2 of shape {in2.shape} "
                         f"give a {mode!r} output of negative size {out_shape}")
    if min(out_shape) == 0 or M == 0 or N == 0:
        # An empty kernel sums over nothing: zeros, whatever the boundary.
        return np.zeros(out_shape, dtype)
    # An output that cannot exist fails here, before any work or buffer
    # (np.empty reserves address space only; the methods allocate their own).
    np.empty(out_shape, dtype)
    if in1.size == 0 and pad_mode != "constant":
        raise ValueError(f"{name}: boundary={boundary!r} cannot extend an empty in1 of shape "
                         f"{in1.shape}; use boundary='fill' or a non-empty in1")

    kernel = in2[::-1, ::-1] if convolve else np.conj(in2)
    (top, bottom), (left, right) = pads
    return _methods.Plan(
        image=aligned(np.asarray(in1, dtype=dtype)),  # native byte order; any strides
        kernel=aligned(np.asarray(kernel, dtype=dtype)),
        row_map=index_map(H, top, bottom, pad_mode),
        col_map=index_map(W, left, right, pad_mode),
        left=left, fill=fill, out_shape=out_shape, swapped=swapped)


def _result_dtype(dt1: np.dtype, dt2: np.dtype, name: str) -> np.dtype:
    try:
        dtype = np.result_type(dt1, dt2)
    except TypeError:
        dtype = None
    if dtype is None or dtype.kind not in "iufc" or dtype.itemsize < 4 and dtype.kind == "f":
        raise ValueError(
            f"{name} is not available for inputs of dtype {dt1} and {dt2}: the result type "
            "must be an integer, float32, float64, longdouble or complex type "
            "(bool, float16, object, string and datetime are not supported)")
    return dtype.newbyteorder("=")


def _fill_scalar(fillvalue, dtype: np.dtype) -> np.ndarray:
    """`fillvalue` cast to the result type, with SciPy's rules and errors."""
    try:
        fill = np.asarray(fillvalue, dtype=dtype)
    except (TypeError, ValueError, OverflowError) as direct_error:
        # SciPy retries through complex; that is only a valid cast into a complex type.
        try:
            fill = np.asarray(fillvalue, dtype=np.complex128)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"could not cast `fillvalue` directly to the output type {dtype}: "
                             f"{fillvalue!r} is not a number ({exc})") from None
        if dtype.kind != "c":
            reason = ("a complex fill needs complex inputs" if np.any(fill.imag != 0)
                      else str(direct_error))
            raise ValueError(f"could not cast `fillvalue` directly to the output type "
                             f"{dtype}: {fillvalue!r} ({reason})") from None
        fill = fill.astype(dtype)
    if fill.size == 0:
        raise ValueError("`fillvalue` cannot be an empty array.")
    if fill.size != 1:
        raise ValueError(f"`fillvalue` must be scalar or an array with one element, "
                         f"got shape {fill.shape}")
    return fill.reshape(())


def _valid_swap_needed(shape1, shape2) -> bool:
    ok1 = all(a >= b for a, b in zip(shape1, shape2))
    ok2 = all(b >= a for a, b in zip(shape1, shape2))
    if not (ok1 or ok2):
        raise ValueError(f"For 'valid' mode, one must be at least as large as the other in "
                         f"every dimension, got shapes {tuple(shape1)} and {tuple(shape2)}")
    return not ok1

"""conv2d's gradients and conv_transpose2d, with PyTorch's semantics.

Both gradients are computed without im2col buffers:

* grad_input (and conv_transpose2d, the same operation) is a sum of
  stride_h * stride_w polyphase sub-convolutions: the output pixels of one
  phase (y = py mod stride_h, x = px mod stride_w) each see the same subset
  of kernel taps, so a phase is a stride-1 ``conv2d`` of grad_output with the
  flipped, channel-transposed sub-kernel of those taps, written straight into
  its interleaved slots of the result. No zeros are inserted or multiplied.
  Strided layers with one group mostly take another route: every tap's
  products of each grad_output pixel (one 1x1 ``conv2d`` on the transposed
  weights), each tap's then summed onto its pixels (``_core.col2im``).
* grad_weight is conv2d's blocked tiles with the roles turned: a tile's
  output channels are the layer's, its "pixels" are input channels of one
  tap (or, for few channels, a kernel row's taps and channels, consecutive
  in a channels-last copy of the input), grad_output (channels last in
  blocks) takes the place of the packed weights, and each sum runs over the
  output pixels, in (n, y, x) order. Depthwise layers have their own kernel
  with the channels in the vector lanes, and layers of few taps (a first
  layer's 1-3 input channels) one with the output pixels in the lanes.

Arguments are resolved (through ``_geometry``) in ``_resolve`` /
``_resolve_transpose`` only.
"""

from __future__ import annotations

import dataclasses
import functools
from math import gcd
from typing import NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, _geometry, _memory, _parallel, _scratch
from ._conv2d import IntPair, Padding, PaddingMode, conv2d, reads_weight_views, _check_out
from ._conv2d import _execute, _levels, _prepared_call, _typed
from ._conv2d import _key as _conv2d_key
from ._padding import aligned, padded_planes, zero_frame


@dataclasses.dataclass(frozen=True)
class _Geometry:
    """A convolution's shapes: input (N, C, H, W), weight (K, Cg, R, S),
    output (N, K, Ho, Wo), padding per side, and how the border is filled."""
    N: int
    C: int
    H: int
    W: int
    K: int
    Cg: int
    R: int
    S: int
    groups: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pad: tuple[int, int, int, int]      # top, bottom, left, right
    Ho: int
    Wo: int
    np_mode: str                         # np.pad's name of the padding rule
    dtype: np.dtype
    workers: int


# Resolved geometries by call (conv2d's key, grad_output's shape and dtype,
# the threads): a gradient repeated in a training loop skips the argument
# checks, 6-7 of the 100 microseconds of 64 x 32->32 3x3 @3x3's input
# gradient. Only calls whose arguments passed every check are kept.
# conv_transpose2d's geometries are kept here too (_resolve_transpose: keys
# of another length).
_resolved: dict = {}
_MAX_RESOLVED = 256


def _resolve(x, w, g, stride, padding, dilation, groups, padding_mode, workers) -> _Geometry:
    """conv2d's arguments checked and resolved as conv2d does (by _geometry)."""
    key = _conv2d_key(x, w, None, stride, padding, dilation, groups, padding_mode)
    if key is not None:
        try:
            key += (g.shape, g.dtype, _parallel.resolve_workers(workers))
        except (TypeError, ValueError):
            key = None   # the checks below raise it, after any error of the others
    geo = _resolved.get(key) if key is not None else None
    if geo is not None:
        return geo
    dtype = _geometry.conv2d_dtype(x.dtype, w.dtype, g.dtype)  # float32 iff all float32/16
    c = _geometry.conv2d(x.shape, w.shape, None, stride, padding, dilation, groups,
                         padding_mode)
    workers = _parallel.resolve_workers(workers)
    geo = _Geometry(c.N, c.C, c.H, c.W, c.K, c.Cg, c.R, c.S, c.groups, c.stride, c.dilation,
                    c.padding, c.Ho, c.Wo, c.rule, dtype, workers)
    if key is not None:
        if len(_resolved) >= _MAX_RESOLVED:
            _resolved.clear()
        _resolved[key] = geo
    return geo


def _as_float(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return a if a.dtype == dtype else a.astype(dtype)


_ALL_GRADIENTS = (True, True, True)


def _check_mask(output_mask) -> tuple[bool, bool, bool]:
    if output_mask is _ALL_GRADIENTS:   # the default, checked once
        return output_mask
    try:
        mask = tuple(output_mask)
    except TypeError:
        raise TypeError(f"output_mask must be a sequence of 3 bools, got {output_mask!r}") from None
    if len(mask) != 3 or not all(isinstance(m, (bool, np.bool_)) for m in mask):
        raise ValueError(f"output_mask must be 3 bools (grad_input, grad_weight, grad_bias), "
                         f"got {output_mask!r}")
    return tuple(bool(m) for m in mask)


# --------------------------------------------------------------------------- public API

def conv2d_backward(grad_output: ArrayLike, input: ArrayLike, weight: ArrayLike,
                    stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1,
                    groups: int = 1, *, padding_mode: PaddingMode = "zeros",
                    output_mask: Sequence[bool] = _ALL_GRADIENTS,
                    workers: int | None = None
                    ) -> tuple[NDArray | None, NDArray | None, NDArray | None]:
    """Gradients of :func:`conv2d` with respect to its input, weight and bias.

    For ``out = conv2d(input, weight, bias, stride, padding, dilation, groups,
    padding_mode=padding_mode)`` and a loss with gradient ``grad_output``
    with respect to ``out``, returns ``(grad_input, grad_weight, grad_bias)``,
    what ``torch.autograd`` gives for the same convolution. Entries whose
    ``output_mask`` flag is False are None (and not computed).

    Parameters
    ----------
    grad_output : array_like, (N, K, Ho, Wo), or (K, Ho, Wo) with unbatched input
        Must have exactly the shape ``conv2d`` returns for these arguments.
    input : array_like, (N, C, H, W) or unbatched (C, H, W)
    weight : array_like, (K, C // groups, R, S)
    stride, padding, dilation, groups, padding_mode
        As :func:`conv2d` (every form of ``padding``, every ``padding_mode``).
        With a padding mode other than "zeros", the gradient that reaches a
        padded border pixel is added to the input pixel it was copied from.
    output_mask : 3 bools
        Which of grad_input, grad_weight, grad_bias to compute.
    workers : int, optional
        Threads (None: the process default). Results are bitwise the same
        for any value.

    Returns
    -------
    grad_input : ndarray like input, or None
    grad_weight : ndarray like weight, or None
    grad_bias : ndarray (K,), or None
        float32 when grad_output, input and weight are all float32 or
        float16, else float64.
    """
    gout, x, w = np.asarray(grad_output), np.asarray(input), np.asarray(weight)
    mask = _check_mask(output_mask)
    for name, a in (("grad_output", gout), ("input", x), ("weight", w)):
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} has unsupported dtype {a.dtype}; conv2d_backward supports "
                            "real float, integer and bool arrays")
    if x.ndim not in (3, 4):
        raise ValueError(f"input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (K, C/groups, R, S), got shape {w.shape}")
    unbatched = x.ndim == 3
    if gout.ndim != x.ndim:
        raise ValueError(f"grad_output must be {x.ndim}-D like input, got shape {gout.shape}")
    if unbatched:
        x, gout = x[np.newaxis], gout[np.newaxis]
    geo = _resolve(x, w, gout, stride, padding, dilation, groups, padding_mode, workers)
    expected = (geo.N, geo.K, geo.Ho, geo.Wo)
    if gout.shape != expected:
        want = expected[1:] if unbatched else expected
        raise ValueError(f"grad_output must have the shape of conv2d's output, {want}, "
                         f"got {gout.shape[1:] if unbatched else gout.shape}")
    dtype = geo.dtype
    gout, x, w = _as_float(gout, dtype), _as_float(x, dtype), _as_float(w, dtype)

    grad_input = grad_weight = grad_bias = None
    if mask[0]:
        grad_input = _grad_input(gout, w, geo)
        if unbatched:
            grad_input = grad_input[0]
    if mask[1]:
        grad_weight = _grad_weight(gout, x, geo)
    if mask[2]:
        grad_bias = gout.sum(axis=(0, 2, 3), dtype=dtype)
    return grad_input, grad_weight, grad_bias


def conv_transpose2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     groups: int = 1, dilation: IntPair = 1, *, out: NDArray | None = None,
                     workers: int | None = None) -> NDArray:
    """Transposed 2-D convolution, like ``torch.nn.functional.conv_transpose2d``.

    The gradient of :func:`conv2d` with respect to its input, as a layer:
    each input pixel scatters ``weight``-weighted copies of itself onto a
    ``stride``-spaced grid of the output.

    Parameters
    ----------
    input : array_like, (N, C_in, H, W) or unbatched (C_in, H, W)
    weight : array_like, (C_in, C_out // groups, R, S)
    bias : array_like (C_out,), optional
    stride, dilation : int or (int, int), positive
    padding : int or (int, int), non-negative
        ``dilation * (kernel - 1) - padding`` zeros are (implicitly) added
        to each side of the input, as in PyTorch.
    output_padding : int or (int, int), non-negative
        Extra rows/columns at the bottom/right of the output; each must be
        smaller than the stride or the dilation of its axis.
    groups : int
    out : ndarray, optional
        Writeable array of the exact result shape and dtype, not overlapping
        the inputs; filled and returned.
    workers : int, optional
        Threads (None: the process default); bitwise the same result for any value.

    Returns
    -------
    ndarray (N, C_out, Ho, Wo) or (C_out, Ho, Wo), with
        ``Ho = (H - 1) * stride - 2 * padding + dilation * (R - 1) + output_padding + 1``
        float32 when every array argument is float32 or float16, else float64.
    """
    x, w = np.asarray(input), np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    dtype = _geometry.conv2d_dtype(x.dtype, w.dtype, None if b is None else b.dtype)
    if x.ndim not in (3, 4):
        raise ValueError(f"input must be 4-D (N, C_in, H, W) or 3-D (C_in, H, W), "
                         f"got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight must be 4-D (C_in, C_out/groups, R, S), got shape {w.shape}")
    unbatched = x.ndim == 3
    if unbatched:
        x = x[np.newaxis]
    geo = _resolve_transpose(x, w, stride, padding, output_padding, groups, dilation,
                             workers, dtype)
    if b is not None and b.shape != (geo.C,):
        raise ValueError(f"bias must have shape ({geo.C},), one value per output channel, "
                         f"got shape {b.shape}")
    shape = (geo.N, geo.C, geo.H, geo.W)
    result = _check_out(out, shape[1:] if unbatched else shape, dtype, (x, w, b))
    out4 = result[np.newaxis] if unbatched else result
    bias_arr = None if b is None else _as_float(b, dtype)
    _grad_input(_as_float(x, dtype), _as_float(w, dtype), geo, out4, bias_arr)
    return result


def _resolve_transpose(x, w, stride, padding, output_padding, groups, dilation, workers,
                       dtype) -> _Geometry:
    """conv_transpose2d's arguments as the conv2d whose input gradient it
    is; kept by call, as _resolve keeps conv2d's."""
    if (type(stride) is int and type(padding) is int and type(output_padding) is int
            and type(groups) is int and type(dilation) is int):   # (as conv2d's _key)
        key = x.shape, w.shape, dtype, stride, padding, output_padding, groups, dilation
    else:
        key = (x.shape, w.shape, dtype, _typed(stride), _typed(padding),
               _typed(output_padding), _typed(groups), _typed(dilation))
    try:
        key += (_parallel.resolve_workers(workers),)
        geo = _resolved.get(key)
    except (TypeError, ValueError):   # unhashable, or bad workers: the checks explain
        key = geo = None
    if geo is None:
        geo = _check_transpose(x, w, stride, padding, output_padding, groups, dilation,
                               workers, dtype)
        if key is not None:
            if len(_resolved) >= _MAX_RESOLVED:
                _resolved.clear()
            _resolved[key] = geo
    return geo


def _check_transpose(x, w, stride, padding, output_padding, groups, dilation, workers,
                     dtype) -> _Geometry:
    N, K, Ho, Wo = x.shape
    Kw, Cg, R, S = w.shape
    groups = _geometry.int_at_least(groups, "groups", 1)
    if Kw != K:
        raise ValueError(f"weight of shape {w.shape} expects {Kw} input channels "
                         f"(its first dimension), but input has {K}")
    if K % groups:
        raise ValueError(f"groups={groups} must divide the input channels ({K})")
    sh, sw = _geometry.int_pair(stride, "stride")
    dh, dw = _geometry.int_pair(dilation, "dilation")
    if isinstance(padding, str):
        raise TypeError(f"padding must be an int or a pair of ints, got {padding!r}")
    ph, pw = _geometry.int_pair(padding, "padding", 0)
    oph, opw = _geometry.int_pair(output_padding, "output_padding", 0)
    if not (oph < sh or oph < dh) or not (opw < sw or opw < dw):
        raise ValueError(f"output_padding must be smaller than either stride or dilation, got "
                         f"output_padding ({oph}, {opw}), stride ({sh}, {sw}), "
                         f"dilation ({dh}, {dw})")
    H = (Ho - 1) * sh - 2 * ph + dh * (R - 1) + oph + 1
    W = (Wo - 1) * sw - 2 * pw + dw * (S - 1) + opw + 1
    if H <= 0 or W <= 0:
        raise ValueError(f"the output size ({H}, {W}) would not be positive: input "
                         f"({Ho}, {Wo}), kernel ({R}, {S}), stride ({sh}, {sw}), padding "
                         f"({ph}, {pw}), dilation ({dh}, {dw}), output_padding ({oph}, {opw})")
    workers = _parallel.resolve_workers(workers)
    # The conv2d this is the input gradient of: input (N, Cg*groups, H, W),
    # bottom/right padding chosen so that it has exactly Ho x Wo outputs.
    bottom = (Ho - 1) * sh + dh * (R - 1) + 1 - H - ph
    right = (Wo - 1) * sw + dw * (S - 1) + 1 - W - pw
    return _Geometry(N, Cg * groups, H, W, K, Cg, R, S, groups, (sh, sw), (dh, dw),
                     (ph, bottom, pw, right), Ho, Wo, "constant", dtype, workers)


# --------------------------------------------------------------------------- grad_input

def _phase_taps(phase: int, stride: int, dilation: int, taps: int):
    """Kernel taps r with r * dilation = phase (mod stride), as (first, step, count)."""
    step = stride // gcd(stride, dilation)
    first = next((r for r in range(min(step, taps)) if (r * dilation - phase) % stride == 0), None)
    if first is None:
        return 0, step, 0
    return first, step, (taps - 1 - first) // step + 1


def _phase_start(phase, stride, y0) -> int:
    """Index, counted from y0, of the first padded-input row y >= y0 with y = phase (mod stride)."""
    return phase - y0 + stride * -(-(y0 - phase) // stride)


def _phase_rows(phase, stride, dilation, first, step, count, y0, y1, n_out):
    """For the padded-input rows y = phase (mod stride) in [y0, y1), as a
    stride-1 correlation with the phase's taps: the grad_output rows read
    [lo, hi) and the zero rows the correlation needs before and after them."""
    j0 = -(-(y0 - phase) // stride)
    J = -(-(y1 - phase) // stride) - j0
    last = first + (count - 1) * step              # flipped: the last tap comes first
    off = j0 + (phase - last * dilation) // stride
    span = (count - 1) * (dilation // gcd(stride, dilation)) + 1
    end = off + J - 1 + span
    lo, hi = max(off, 0), min(end, n_out)
    return lo, hi, lo - off, end - hi


def _grad_input(gout, w, geo: _Geometry, out=None, bias=None) -> np.ndarray:
    """The input gradient (or conv_transpose2d): polyphase stride-1 conv2d
    calls, or for strided depthwise layers the core's transposed
    convolution with the channels in the vector lanes.

    Zero padding: only the rows/columns of the unpadded input are computed,
    straight into `out`. Other modes: the whole padded gradient, then each
    border pixel's gradient is added to the pixel it was copied from.
    """
    N, C, H, W = geo.N, geo.C, geo.H, geo.W
    top, bottom, left, right = geo.pad
    zeros = geo.np_mode == "constant"
    if zeros:
        y0, y1, x0, x1 = top, top + H, left, left + W
    else:
        y0, y1, x0, x1 = 0, top + H + bottom, 0, left + W + right
    if out is None:
        out = _memory.empty((N, C, y1 - y0, x1 - x0), geo.dtype)
    plan = _depthwise_lanes_plan(geo, y1 - y0, x1 - x0, x0)
    if plan is not None:
        _grad_input_depthwise_lanes(gout, w, geo, out, bias, y0, x0, plan)
    elif images := _products_images(geo, y1 - y0, x1 - x0):
        _grad_input_products(gout, w, geo, out, bias, y0, x0, images)
    else:
        key = (geo, bias is None) + _levels()
        phases = _phase_plans.get(key)
        if phases is None:
            phases = _phase_plan(gout, w, geo, bias, y0, y1, x0, x1)
            if len(_phase_plans) >= _MAX_RESOLVED:
                _phase_plans.clear()
            _phase_plans[key] = phases
        _grad_input_phases(gout, w, geo, out, bias, phases)
    if zeros:
        return out
    row_map = _geometry.padded_map(H, top, bottom, geo.np_mode)
    col_map = _geometry.padded_map(W, left, right, geo.np_mode)
    folded = _fold(out, row_map, top, H, axis=2)
    return _fold(folded, col_map, left, W, axis=3)


# Bytes of products _grad_input_products computes per piece of images (a
# few images at once share conv2d's call; many leave the caches), and most
# for one image (beyond, the phases run it: they make no products).
_PRODUCTS_BYTES = 4 << 20
_PRODUCTS_MAX_BYTES = 64 << 20


def _products_images(geo: _Geometry, Hx: int, Wx: int) -> int:
    """Images per piece when a strided layer's input gradient runs as
    products and their sums (_grad_input_products); 0 when the phases run
    it. Unit stride is one phase, and a 1x1 kernel one phase with taps.
    Else the products pay to write and sum C*R*S values per grad_output
    pixel, the phases to read the weights once per phase through a strided
    view; they win (by 3-9 %, Zen 5) where the products outweigh the
    weights read twice: 8 images of 64 -> 128 3x3/2 @56x56, 1 of 32 -> 32
    @448x448. The products stay ahead when the phases' layers have few
    output channels (3 -> 64 7x7/2: 3x) or the taps do not overlap (4x4/4)."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    if geo.stride == (1, 1) or geo.groups != 1 or geo.R * geo.S == 1 \
            or 0 in (geo.N, geo.C, geo.K, geo.Ho, geo.Wo, Hx, Wx):
        return 0
    per_image = geo.C * geo.R * geo.S * geo.Ho * geo.Wo * geo.dtype.itemsize
    # (col2im sums each plane in sh * sw phase planes of ceil(Hx / sh) x
    # ceil(Wx / sw): past the image, a stride makes them larger than it)
    if per_image > _PRODUCTS_MAX_BYTES or sh > Hx or sw > Wx:
        return 0
    weight_reads = sh * sw * geo.K * geo.C * geo.R * geo.S * geo.dtype.itemsize
    disjoint = sh >= (geo.R - 1) * dh + 1 and sw >= (geo.S - 1) * dw + 1
    if geo.C >= 16 and not disjoint and 2 * weight_reads < geo.N * per_image:
        return 0
    return max(1, _PRODUCTS_BYTES // per_image)


def _grad_input_products(gout, w, geo: _Geometry, out, bias, y0, x0, images: int) -> None:
    """The padded input's gradient from (y0, x0) on into `out`, for strided
    layers: every tap's products of each grad_output pixel, as one 1x1
    conv2d with the layer's weights transposed (K, C*R*S -> C*R*S, K: a view
    whose channels conv2d packs as contiguous runs), then each tap's products
    summed onto the pixels they came from (_core.col2im), `images` images at
    a time. The phases made sh*sw calls, each reading all of the weights
    through its strided view (256 -> 512 3x3/2 @14x14: 2.6x as long)."""
    C, K, R, S = geo.C, geo.K, geo.R, geo.S
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    Hx, Wx = out.shape[2:]
    weight = np.ascontiguousarray(w, geo.dtype).reshape(K, C * R * S).T[:, :, None, None]
    bias = np.empty(0, geo.dtype) if bias is None else np.ascontiguousarray(bias, geo.dtype)
    plane = sh * sw * -(-Hx // sh) * -(-Wx // sw)
    for n0 in range(0, geo.N, images):
        n1 = min(n0 + images, geo.N)
        products = _scratch.empty("conv_transpose2d.products",
                                  (n1 - n0, C * R * S, geo.Ho, geo.Wo), geo.dtype)
        conv2d(gout[n0:n1], weight, out=products, workers=geo.workers)
        units = (n1 - n0) * C
        work = float(products.size)
        per_chunk = -(-units // _parallel.threads_for(geo.workers, work, units))

        def job(scratch, u0, u1, products=products, part=out[n0:n1]):
            _core.col2im(products, R, S, sh, sw, dh, dw, y0, x0, bias, part, scratch, u0, u1)

        chunks = [(u0, min(u0 + per_chunk, units)) for u0 in range(0, units, per_chunk)]
        _parallel.run_work(job, chunks, work, geo.workers,
                           lambda: _scratch.empty("conv_transpose2d.sums", (plane,), geo.dtype))


# Phase plans by geometry, bias or not and kernel levels: a repeated
# conv_transpose2d or input gradient skips the phases' arithmetic and their
# conv2d checks (1 x 1 -> 1 3x3 @8x8: 20 of its 33 microseconds).
_phase_plans: dict = {}


class _Phase(NamedTuple):
    """One stride phase of the input gradient: the pixels of `out[target]`,
    as conv2d's prepared call on grad_output[source] with the flipped
    weights' taps wt[taps]; prep None when no tap reaches them (zero, or the
    bias)."""
    target: tuple
    source: tuple | None
    taps: tuple | None
    prep: object


class _Phases(NamedTuple):
    steps: tuple        # of _Phase
    view: bool          # conv2d reads the flipped weights as a view of w (_flipped_weights)


def _phase_plan(gout, w, geo: _Geometry, bias, y0, y1, x0, x1) -> _Phases:
    """_grad_input_phases' stride-1 conv2d calls for the padded input's
    gradient rows y0..y1-1, columns x0..x1-1, each prepared as conv2d
    prepares it."""
    C, K, R, S, G = geo.C, geo.K, geo.R, geo.S, geo.groups
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    Kg = K // G
    dilation = (dh // gcd(sh, dh), dw // gcd(sw, dw))
    # conv2d's weight (C, K/groups, R, S): only its shape counts here
    flipped = np.broadcast_to(np.empty((), geo.dtype), (C, Kg, R, S))
    steps, view = [], False
    # (the phases that hold rows and columns: all of them, unless the stride
    # passes the image; 2**62 looped over every one)
    for py in sorted({y % sh for y in range(y0, min(y1, y0 + sh))}):
        fr, stepr, nr = _phase_taps(py, sh, dh, R)
        for px in sorted({x % sw for x in range(x0, min(x1, x0 + sw))}):
            fc, stepc, nc = _phase_taps(px, sw, dw, S)
            rows = _phase_rows(py, sh, dh, fr, stepr, nr, y0, y1, geo.Ho) if nr else None
            cols = _phase_rows(px, sw, dw, fc, stepc, nc, x0, x1, geo.Wo) if nc else None
            target = (slice(None), slice(None), slice(_phase_start(py, sh, y0), None, sh),
                      slice(_phase_start(px, sw, x0), None, sw))
            Hy, Wx = len(range(y1 - y0)[target[2]]), len(range(x1 - x0)[target[3]])
            if geo.N * C * Hy * Wx == 0:
                continue
            if rows is None or cols is None or rows[0] >= rows[1] or cols[0] >= cols[1] or Kg == 0:
                # No tap reaches these pixels (or nothing to sum): zero, or the bias.
                steps.append(_Phase(target, None, None, None))
                continue
            ylo, yhi, ypre, ypost = rows
            xlo, xhi, xpre, xpost = cols
            # Taps of this phase, in flipped order: wt's flipped taps make the
            # first of them the highest original tap.
            r_first = R - 1 - (fr + (nr - 1) * stepr)
            c_first = S - 1 - (fc + (nc - 1) * stepc)
            source = (slice(None), slice(None), slice(ylo, yhi), slice(xlo, xhi))
            taps = (slice(None), slice(None), slice(r_first, None, stepr),
                    slice(c_first, None, stepc))
            padding = (xpre, xpost, ypre, ypost)
            if all(step.prep is None for step in steps):   # the first phase that sums
                view = _flips_as_view(gout[source], w, geo, padding, dilation)
            prep = _prepared_call(gout[source], flipped[taps], bias, 1, padding, dilation, G,
                                  "zeros", geo.workers)
            steps.append(_Phase(target, source, taps, prep))
    return _Phases(tuple(steps), view)


def _grad_input_phases(gout, w, geo: _Geometry, out, bias, phases: _Phases) -> None:
    """The padded input's gradient into `out`, one stride-1 conv2d call per
    stride phase (_phase_plan)."""
    wt = None   # conv2d's weight for this (_flipped_weights), made at the first call
    for target, source, taps, prep in phases.steps:
        if prep is None:
            out[target] = 0 if bias is None else bias[:, None, None]
            continue
        if wt is None:
            wt = _flipped_weights(w, geo, phases.view)
        # (at unit stride all of wt; else a view, which conv2d packs or copies)
        _execute(prep, gout[source], wt[taps], bias, out[target], geo.workers)


def _flips_as_view(gout, w, geo: _Geometry, padding, dilation) -> bool:
    """Whether conv2d reads the input gradient's flipped weights as a view
    of `w` (_flipped_weights): when one call (unit stride, one group) reads
    them once: blocked tiles, which pack them, or small-image tiles on one
    image, which stage each block of them as they go (a copy first wrote
    and read back all of them: 512 -> 512 3x3, 9.4 MB, a third of the
    gradient at 7x7). Else a copy: small-image tiles stage every block
    again for each image (Zen 5: 64 x 16 -> 16 3x3 @8x8 took 1.1x as long
    on the view; 32 x 16 -> 16 @16x16 as long)."""
    if geo.groups != 1 or geo.stride != (1, 1):
        return False
    view = np.asarray(w, geo.dtype).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    return reads_weight_views(gout, view, 1, padding, dilation, 1, once=True)


def _flipped_weights(w, geo: _Geometry, view: bool) -> np.ndarray:
    """conv2d's weight for the input gradient: (C, K/groups, R, S), each
    group's channel axes swapped and the taps flipped; a view of `w`, or a
    copy (_flips_as_view says which)."""
    if view:
        return np.asarray(w, geo.dtype).transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    wt = _memory.empty((geo.C, geo.K // geo.groups, geo.R, geo.S), geo.dtype)
    _core.flip_transpose_weights(np.ascontiguousarray(w, geo.dtype), geo.groups, wt)
    return wt


def _depthwise_lanes_plan(geo: _Geometry, Hx: int, Wx: int, x0: int):
    """_core.depthwise_transpose_plan's (lanes, band, scratch size) for an
    Hx x Wx gradient from padded column x0 on, where a strided depthwise
    layer's input gradient runs with the channels in the vector lanes; else
    None. As conv2d's depthwise lanes (and switched with them): one input
    and one output channel per group, at least a vector of channels. At
    unit stride the one stride-1 conv2d call takes conv2d's own paths."""
    if not (_core.depthwise_lanes() and geo.Cg == 1 and geo.K == geo.C == geo.groups
            and geo.stride != (1, 1)):
        return None
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    plan = _core.depthwise_transpose_plan(Hx, Wx, x0, geo.R, geo.S, sh, sw, dh, dw,
                                          geo.dtype == np.float64)
    return plan if geo.C >= plan[0] else None


def _grad_input_depthwise_lanes(gout, w, geo: _Geometry, out, bias, y0, x0, plan) -> None:
    """The input gradient of a depthwise layer, the padded input's rows and
    columns from (y0, x0) on, into `out`: the core's transposed convolution
    with the channels in the vector lanes (_core.depthwise_transpose), its
    (image, group of channels) units shared among the threads. The bits are
    those of _grad_input_phases, for any thread count."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    lanes, band, size = plan
    gout = np.ascontiguousarray(gout, geo.dtype)
    weight = np.ascontiguousarray(w.reshape(geo.C, geo.R, geo.S), geo.dtype)
    bias = None if bias is None else np.ascontiguousarray(bias, geo.dtype)
    units = geo.N * -(-geo.C // lanes)
    work = float(out.size) * geo.R * geo.S / (sh * sw)
    per_chunk = -(-units // _parallel.threads_for(geo.workers, work, units))

    def job(scratch, u0, u1):
        _core.depthwise_transpose(gout, weight, bias, out, y0, x0, sh, sw, dh, dw, band,
                                  scratch, u0, u1)

    chunks = [(u0, min(u0 + per_chunk, units)) for u0 in range(0, units, per_chunk)]
    _parallel.run_work(job, chunks, work, geo.workers, lambda: np.empty(size, geo.dtype))


def _fold(grad, source, before: int, n: int, axis: int) -> np.ndarray:
    """Sum the gradient of each padded position into the source index it was copied from."""
    index = [slice(None)] * grad.ndim
    index[axis] = slice(before, before + n)
    out = grad[tuple(index)].copy()
    for i in [*range(before), *range(before + n, len(source))]:
        if source[i] >= 0:
            dst, src = list(index), list(index)
            dst[axis], src[axis] = source[i], i
            out[tuple(dst)] += grad[tuple(src)]
    return out


# --------------------------------------------------------------------------- grad_weight

def _padded(x, geo: _Geometry, purpose: str | None = None) -> np.ndarray:
    """The input padded by the layer's rule, or itself without padding
    (with `purpose`, zero padding in that scratch array: padded_planes)."""
    top, bottom, left, right = geo.pad
    return padded_planes(x, (top, bottom), (left, right), geo.np_mode, geo.dtype, purpose)


# True: the weight gradient copies every input channels last (tests compare
# the two layouts; by default only kernel rows of several taps, and inputs of
# fewer channels than a tile).
_FORCE_CHANNELS_LAST = False
# False: the weight gradient's tiles keep the products of zero padding rows (tests compare).
_SKIP_PADDING_ROWS = True


def _grad_weight(gout, x, geo: _Geometry) -> np.ndarray:
    """grad_weight[k, c, r, s] = sum over n, oy, ox of
    grad_output[n, k, oy, ox] * padded_input[n, c, oy*sh + r*dh, ox*sw + s*dw]:
    depthwise layers with the channels in the vector lanes, layers of few
    taps with the output pixels in the lanes (_grad_weight_pixel_taps),
    other depth multipliers (one input channel per group, several groups)
    by one product per tap, every other layer by conv2d's blocked tiles with
    the roles turned (_grad_weight_tiles)."""
    N, K, Cg, R, S, G = geo.N, geo.K, geo.Cg, geo.R, geo.S, geo.groups
    Ho, Wo, Kg = geo.Ho, geo.Wo, K // G
    if not (K * Cg * R * S and N * Ho * Wo and Cg):
        return np.zeros((K, Cg, R, S), geo.dtype)
    if Cg == 1 and Kg == 1:
        return _grad_weight_depthwise_lanes(gout, x, geo)
    if _pixel_taps_fits(geo):
        return _grad_weight_pixel_taps(gout, x, geo)
    if Cg > 1 or G == 1:
        # (one input channel: a grayscale image's first layer ran 3-12x as
        # long as depth multipliers, 1 -> 32 3x3 @28x28, 64 images: 2.5 ms)
        return _grad_weight_tiles(gout, x, geo)
    return _grad_weight_multipliers(gout, x, geo)


# Weight gradients of layers of at most this many taps a group (Cg * R * S,
# and at most _core.PIXEL_TAPS_MAX) take _grad_weight_pixel_taps. Zen 5,
# float32, one thread, against the tiles: 64 x 1 -> 16 3x3 @28x28 1.86x,
# 1 -> 8 3.0x, 3 -> 64 3x3 @32x32 1.37x, 32 -> 64 in 32 groups @56x56 4.8x;
# at 36-54 taps (4 -> 16 and 4 -> 32 3x3 @32x32, 6 -> 16 @28x28) the tiles
# ran 1.14-1.27x as fast. _PIXEL_TAPS_WORK: multiply-adds per piece of images.
_PIXEL_TAPS_MAX = 27
_PIXEL_TAPS_WORK = 1 << 21
# False: every weight gradient takes the other routes (tests compare them).
_PIXEL_TAPS = True


def _pixel_taps_fits(geo: _Geometry) -> bool:
    """Few taps; column strides only for rows of at least 64 output pixels
    (the column phases' copy and short rows: 8 x 3 -> 32 3x3/2 @224x224
    1.23x the tiles' speed, @112x112 0.89x, 64 images @32x32 0.72x); and
    5x5 and larger kernels whose output channels fill the blocked tiles
    exactly keep those (1 -> 32 5x5 @28x28: the tiles 1.3x as fast on
    AVX-512, float64 1 -> 16 1.2x)."""
    Kg = geo.K // geo.groups
    if not (_PIXEL_TAPS and geo.Cg * geo.R * geo.S <= min(_PIXEL_TAPS_MAX, _core.PIXEL_TAPS_MAX)
            and (geo.stride[1] == 1 or geo.Wo >= 64)):
        return False
    if geo.R * geo.S < 25:
        return True
    return Kg % _core.tile_sizes()["block_f64" if geo.dtype == np.float64 else "block_f32"] != 0


@functools.lru_cache(maxsize=256)
def _tap_offsets(Cg, R, S, sw, dh, dw, Hp, Wq) -> np.ndarray:
    """_grad_weight_pixel_taps' element offset of each tap (c, r, s) in its
    padded input's column phases (read-only: kept for the next call)."""
    offsets = np.array([((c * sw + s * dw % sw) * Hp + r * dh) * Wq + s * dw // sw
                        for c in range(Cg) for r in range(R) for s in range(S)], np.int64)
    offsets.flags.writeable = False
    return offsets


def _grad_weight_pixel_taps(gout, x, geo: _Geometry) -> np.ndarray:
    """Layers of few taps (a grayscale or colour image's first layer): the
    output pixels in the vector lanes (_core.pixel_taps), a block of output
    channels by a block of taps (channel, kernel row and column) summed in
    registers as grad_output's rows and the padded input's stream past, both
    read as planes (no channels-last copies; a column stride splits the
    padded input into its column phases, so that each tap reads consecutive
    elements). The images go in pieces of a fixed size (whatever the thread
    count), their sums added in image order: the same bits for any thread
    count."""
    N, C, K, Cg, R, S, G = geo.N, geo.C, geo.K, geo.Cg, geo.R, geo.S, geo.groups
    Ho, Wo, Kg, dtype = geo.Ho, geo.Wo, K // G, geo.dtype
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    padded = np.ascontiguousarray(_padded(x, geo))
    Hp, Wp = padded.shape[2:]
    # (N, C, sw, Hp, Wq): padded column j is column j // sw of phase j % sw
    Wq = -(-Wp // sw)
    if sw > 1:
        phases = np.zeros((N, C, sw, Hp, Wq), dtype)
        for phase in range(min(sw, Wp)):
            part = padded[..., phase::sw]
            phases[:, :, phase, :, :part.shape[3]] = part
        padded = phases
    padded = padded.reshape(-1)
    g = np.ascontiguousarray(gout, dtype).reshape(-1)
    offsets = _tap_offsets(Cg, R, S, sw, dh, dw, Hp, Wq)
    ntaps = offsets.size
    row_step = sh * Wq if Ho > 1 else 0   # (a lone output row: any stride, even 2**62)
    per_image = float(Ho) * Wo * Kg * ntaps
    step = max(1, int(_PIXEL_TAPS_WORK // per_image))
    starts = range(0, N, step)
    parts = np.empty((G, len(starts), Kg, ntaps), dtype)

    def job(_, grp, i):
        n0 = starts[i]
        _core.pixel_taps(g[(n0 * K + grp * Kg) * Ho * Wo:], K * Ho * Wo, Ho * Wo, Wo,
                         padded[(n0 * C + grp * Cg) * sw * Hp * Wq:], C * sw * Hp * Wq,
                         row_step, offsets, min(N, n0 + step) - n0, Ho, Wo, parts[grp, i])

    chunks = [(grp, i) for grp in range(G) for i in range(len(starts))]
    _parallel.run_work(job, chunks, per_image * N * G, geo.workers)
    grad = parts[:, 0].copy()
    for i in range(1, len(starts)):
        grad += parts[:, i]
    return grad.reshape(K, Cg, R, S)


def _grad_weight_multipliers(gout, x, geo: _Geometry) -> np.ndarray:
    """One input channel per group and several output channels (depth
    multipliers). With grad_output laid out on the padded input's grid (rows
    of the padded width, zeros beyond Wo), the input samples of tap (r, s)
    sit at one flat offset from grad_output's, so each tap's sums are one
    product of every group's (Kg, L) grad_output rows with its one input
    row, for all groups at once (as a batch of GEMMs, one per group, they
    cost a call each: 960 channels at 7x7 took 100x PyTorch's time). Either
    image by image, summed in image order (stride 1), or all images at once:
    the padded input split into its stride phases, each laid out as
    (C, N, Hq, Wq)."""
    N, C, K, R, S, G = geo.N, geo.C, geo.K, geo.R, geo.S, geo.groups
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pad
    Ho, Wo, Kg = geo.Ho, geo.Wo, K // G
    grad = np.zeros((R * S, G, Kg), geo.dtype)
    x = _padded(x, geo)
    Hq, Wq = -(-x.shape[2] // sh), -(-x.shape[3] // sw)
    # Images one by one where that needs no copy of a large input.
    per_image = sh == sw == 1 and (N == 1 or (not any(geo.pad) and Ho * Wo >= 256))
    if per_image:
        # (N, G, Hp*Wp) and (N, G, Kg, Ho*Wp).
        phases = {(0, 0): np.ascontiguousarray(x).reshape(N, G, Hq * Wq)}
        g = gout
        if Wq != Wo:
            g = np.zeros((N, K, Ho, Wq), geo.dtype)
            g[:, :, :, :Wo] = gout
        g = np.ascontiguousarray(g).reshape(N, G, Kg, Ho * Wq)
    else:
        # One (G, N*Hq*Wq) buffer per stride phase used, one (G, Kg, N*Hq*Wq) grad_output.
        phases = {}
        for a in sorted({r * dh % sh for r in range(R)}):
            for b in sorted({s * dw % sw for s in range(S)}):
                buf = np.zeros((C, N, Hq, Wq), geo.dtype)
                part = x[:, :, a::sh, b::sw]
                buf[:, :, :part.shape[2], :part.shape[3]] = part.transpose(1, 0, 2, 3)
                phases[a, b] = buf.reshape(1, G, N * Hq * Wq)
        g = np.zeros((K, N, Hq, Wq), geo.dtype)
        g[:, :, :Ho, :Wo] = gout.transpose(1, 0, 2, 3)
        g = g.reshape(1, G, Kg, N * Hq * Wq)
    # The products run up to the last nonzero of grad_output: the views stay in bounds.
    L = (Ho - 1) * Wq + Wo + (0 if per_image else (N - 1) * Hq * Wq)
    offsets = [((r * dh // sh) * Wq + s_ * dw // sw, (r * dh % sh, s_ * dw % sw))
               for r in range(R) for s_ in range(S)]

    def taps(_, t0, t1):
        for t in range(t0, t1):
            off, phase = offsets[t]
            for n in range(g.shape[0]):
                part = np.einsum("gkl,gl->gk", g[n, :, :, :L], phases[phase][n, :, off:off + L])
                if n == 0:
                    grad[t] = part
                else:
                    grad[t] += part

    chunks = [(t, t + 1) for t in range(R * S)]
    work = float(g.shape[0]) * G * Kg * L * R * S
    _parallel.run(taps, chunks, _parallel.threads_for(geo.workers, work, len(chunks)))
    return np.ascontiguousarray(grad.reshape(R, S, K, 1).transpose(2, 3, 0, 1))


# Bytes of grad_output's channel block per band of output rows in
# _grad_weight_tiles: every unit reads the band's rows, which stay in L2.
_BAND_BYTES = 65536
# _grad_weight_tiles' pieces: up to this many CHUNK_WORKs, larger pieces read
# grad_output from memory fewer times (Zen 4, one thread, batch 8, against
# one CHUNK_WORK: conv1 1.16-1.22x, 3x3 64 -> 64 @56 1.04-1.05x; 64 within
# 5 % of 16 there; on Zen 5 64 against 16: conv1 1.13x, 64 -> 64 @56
# 1.06x, 512 -> 512 @7 1.05x), while their partial sums take at most
# _PIECE_SCRATCH_BYTES (512 -> 512 @7: 5.5 MB of them, past L2, ran 0.94x).
_PIECE_CHUNKS = 64
_PIECE_SCRATCH_BYTES = 262144
# Batches of images of at most this many output pixels take the weight
# gradient's tiles as one tall image (_kernel_rows_stacked). Zen 4, float32,
# one thread, 64 images, 3x3, against the images one by one (leaving out
# the zero padding rows' products, which the tall image keeps): 128 -> 128
# @2x2 1.58x, 256 -> 256 @2x2 1.69x; @3x3, @4x4 1.02-1.05x; @8x8 and up
# 0.83-0.98x.
_STACKED_ROWS_PIXELS = 16
# ... while its stacked rows take at most this many bytes (R copies of the
# padded input's rows: larger batches go image by image, in no more memory).
_STACKED_ROWS_MAX_BYTES = 64 << 20


class _WeightTiles(NamedTuple):
    """What _grad_weight_tiles derives from a geometry alone."""
    PT: int                 # a tile's elements of a tap set
    KB: int                 # a block's output channels
    blocks: int
    channels_last: bool     # the input copied channels last (else read as padded planes)
    strides: tuple          # of that input: image, channel, row, column
    set_taps: int           # taps of a tap set (a kernel row's, or one)
    tall: bool              # the batch as one tall image (_kernel_rows_stacked)
    images: int
    rows: int
    row_step: int
    row_dilation: int
    band: int               # output rows of grad_output a pass copies
    passes: int
    chunks: list            # (group, first unit, end) pieces
    work: float
    copy_bands: bool        # pieces copy grad_output's bands (else all of it first)


# Weight-tile plans by geometry, kernel levels and the tuning constants
# (tests change them): a repeated weight gradient skips deriving its pieces
# (1 x 8 -> 16 3x3 @14x14: 7 of its 27 microseconds).
_weight_tiles: dict = {}


def _weight_tiles_plan(geo: _Geometry) -> _WeightTiles:
    """_plan_weight_tiles(geo), made once per geometry and tuning."""
    key = (geo, _FORCE_CHANNELS_LAST, _STACKED_ROWS_PIXELS, _STACKED_ROWS_MAX_BYTES,
           _BAND_BYTES, _PIECE_CHUNKS, _PIECE_SCRATCH_BYTES, _BAND_COPIES,
           _parallel.CHUNK_WORK, _parallel.MIN_WORK_PER_THREAD,
           _parallel.SPLIT_WORK_PER_THREAD, _parallel.PIECES_PER_THREAD) + _levels()
    plan = _weight_tiles.get(key)
    if plan is None:
        if len(_weight_tiles) >= _MAX_RESOLVED:
            _weight_tiles.clear()
        plan = _weight_tiles[key] = _plan_weight_tiles(geo)
    return plan


def _plan_weight_tiles(geo: _Geometry) -> _WeightTiles:
    N, C, K, Cg, R, S, G = geo.N, geo.C, geo.K, geo.Cg, geo.R, geo.S, geo.groups
    H, W, Ho, Wo, Kg = geo.H, geo.W, geo.Ho, geo.Wo, K // G
    (sh, _), (dh, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pad
    Hp, Wp = top + H + bottom, left + W + right
    dtype = geo.dtype
    # (a tap set's elements: the channels of a kernel row when they go last)
    PT, KB = _core.weight_grad_plan(Kg, Cg * (S if dw == 1 else 1), dtype == np.float64)
    blocks = -(-Kg // KB)
    # Channels last for rows of taps even where the channels fill tiles:
    # one stream of consecutive elements instead of PT planes, and sets of
    # S * Cg elements, whose last tile wastes less (Zen 5, float32, against
    # the planes: 64 x 16 -> 32 3x3 @14x14 1.18x, 8 x 32 -> 16 @56x56 1.23x,
    # 64 x 64 -> 64 @8x8 1.09x, ResNet's 3x3 layers 1.00-1.03x, 16 x 24 ->
    # 24 @28x28 0.98x). 1x1 layers gain no consecutive taps: the copy cost
    # them up to 2x.
    rows_of_taps = S > 1 and dw == 1
    if Cg >= PT and not rows_of_taps and not _FORCE_CHANNELS_LAST:
        channels_last, strides, set_taps = False, (C * Hp * Wp, Hp * Wp, Wp, 1), 1
    else:
        channels_last, strides = True, (Hp * Wp * Cg, 1, Wp * Cg, Cg)
        set_taps = S if dw == 1 else 1
    # The batch as one tall image (_kernel_rows_stacked): (R, images, rows).
    tall = (N > 1 and Ho * Wo <= _STACKED_ROWS_PIXELS and channels_last
            and not _FORCE_CHANNELS_LAST
            and R * N * Ho * Wp * C * dtype.itemsize <= _STACKED_ROWS_MAX_BYTES)
    sets = R * S // set_taps
    tiles = -(-set_taps * Cg // PT)
    # (tall: one image of N * Ho output rows, kernel row r's input rows
    # N * Ho rows after kernel row r - 1's)
    images, rows, row_step, row_dilation = (1, N * Ho, 1, N * Ho) if tall else (N, Ho, sh, dh)
    band = max(1, min(rows, _BAND_BYTES // (Wo * KB * dtype.itemsize)))
    passes = images * -(-rows // band)
    units = sets * blocks * tiles
    work_per_unit = float(N) * Ho * Wo * PT * KB
    # A piece streams grad_output's blocks through L2 once, band by band,
    # for all its units. Pieces of CHUNK_WORK held one unit each at batch 8
    # (conv1: 14 reads of a 12.8 MB block from memory): they take up to
    # _PIECE_CHUNKS times that, as long as their units' partial sums
    # (`scratch`, kept between passes) stay within _PIECE_SCRATCH_BYTES.
    fit = _PIECE_SCRATCH_BYTES // (PT * KB * dtype.itemsize) * work_per_unit
    piece_work = min(_PIECE_CHUNKS * _parallel.CHUNK_WORK, max(_parallel.CHUNK_WORK, fit))
    chunks = [(grp, u0, u1) for grp in range(G)
              for u0, u1 in _parallel.chunks_of(units, work_per_unit, geo.workers, piece_work)]
    # grad_output goes channels last in blocks of KB (zeros past Kg). Each
    # piece's passes copy the band of the blocks its units use (into L2), or
    # this thread copies it all first, into memory, when the pieces would
    # copy each block more than _BAND_COPIES times a thread (_band_copies).
    work = work_per_unit * units * G
    threads = _parallel.threads_for(geo.workers, work, len(chunks))
    copy_bands = _band_copies(chunks, tiles, blocks, threads) <= _BAND_COPIES
    return _WeightTiles(PT, KB, blocks, channels_last, strides, set_taps, tall, images, rows,
                        row_step, row_dilation, band, passes, chunks, work, copy_bands)


def _grad_weight_tiles(gout, x, geo: _Geometry) -> np.ndarray:
    """conv2d's blocked tiles with the roles turned (_core.weight_grad_tiles):
    a tile's pixels are PT elements of a tap set. With kernel rows of
    several taps and no column dilation, the input is copied channels last,
    where a kernel row's taps and channels are consecutive elements (a set);
    otherwise a set is the channels of one tap, read in place from the
    (padded) input when there are at least PT of them. grad_output,
    channels last in blocks (copied band by band by the pieces that read
    it, or all of it first: _band_copies), takes the place of the weights,
    and each sum runs over the output pixels, leaving out zero padding rows
    while grad_output is finite; tiny images' batch runs as one tall image
    (_kernel_rows_stacked). Tiles are shared among the threads, each sum in
    (n, y, x) order: the same bits for any thread count."""
    N, K, Cg, R, S, G = geo.N, geo.K, geo.Cg, geo.R, geo.S, geo.groups
    H, Ho, Wo, Kg = geo.H, geo.Ho, geo.Wo, K // G
    (_, sw), (_, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pad
    Hp, Wp = top + H + bottom, left + geo.W + right
    dtype = geo.dtype
    plan = _weight_tiles_plan(geo)
    PT, KB, blocks, tall, passes = plan.PT, plan.KB, plan.blocks, plan.tall, plan.passes
    if plan.channels_last:
        inputs = _channels_last(x, geo, PT)
    else:
        flat = np.ascontiguousarray(_padded(x, geo, "conv2d_grad.padded")).reshape(-1)
        inputs = [flat[grp * Cg * Hp * Wp:] for grp in range(G)]
    if tall:
        inputs = _kernel_rows_stacked(inputs, geo, PT)
    # The call's own arrays are scratch kept by the thread (_scratch): new
    # ones of 0.1-4 MB topped the heap, and glibc gave their pages back
    # after each call, to be faulted in again by the next (64 x 128 -> 128
    # 3x3 @4x4: 736 page faults a call).
    g = np.ascontiguousarray(gout).reshape(N, G, Kg, Ho * Wo)
    # The core writes each channel's taps first, channels last (one transpose below).
    grad = _memory.empty((G, Kg, Cg, R, S), dtype)
    taps_first = grad if R * S == 1 else _scratch.empty("conv2d_grad.taps_first",
                                                        (G, Kg, R, S, Cg), dtype)
    copy_bands = plan.copy_bands

    def job(_, grp, u0, u1):
        scratch = _scratch.empty("conv2d_grad.tile_sums",
                                 (PT * KB * (u1 - u0 if passes > 1 else 1),), dtype)
        stage = _scratch.empty("conv2d_grad.stage", (KB * (plan.set_taps * Cg + 48),), dtype)
        band_rows = _scratch.empty("conv2d_grad.band",
                                   (blocks * plan.band * Wo * KB if copy_bands else 1,), dtype)
        _core.weight_grad_tiles(inputs[grp], *plan.strides, gouts[grp], K * Ho * Wo, Ho,
                                copy_bands, plan.images, plan.rows, Wo, plan.row_step, sw,
                                plan.row_dilation, dw, S, Cg, plan.set_taps, plan.band, top, H,
                                skip, taps_first[grp].reshape(Kg, R * S * Cg),
                                scratch, stage, band_rows, u0, u1)

    if copy_bands:
        flat = g.reshape(-1)
        gouts = [flat[grp * Kg * Ho * Wo:] for grp in range(G)]
    else:
        packed = _scratch.empty("conv2d_grad.packed", (G, blocks, N, Ho * Wo, KB), dtype)
        if blocks * KB != Kg:
            packed[:, -1, :, :, Kg - (blocks - 1) * KB:] = 0
        for grp in range(G):
            for b in range(blocks):
                k0, k1 = b * KB, min(Kg, (b + 1) * KB)
                _core.transpose_batched(g[:, grp, k0:k1], packed[grp, b, :, :, :k1 - k0])
        gouts = [packed[grp].reshape(-1) for grp in range(G)]
    # Zero padding rows: each kernel row's sums leave out the output rows
    # that read them, unless an inf or NaN in grad_output would make those
    # products NaN (64 x 128 -> 128 3x3 @2x2: 4 of 6 rows' products). The
    # band copies check their bands as they go; the whole copy is checked here.
    skip = (_SKIP_PADDING_ROWS and not tall and geo.np_mode == "constant" and top + bottom > 0
            and (copy_bands or _core.all_finite(g.reshape(N * K, Ho * Wo))))
    _parallel.run_work(job, plan.chunks, plan.work, geo.workers)
    if R * S > 1:
        _core.transpose_batched(taps_first.reshape(K, R * S, Cg), grad.reshape(K, Cg, R * S))
    return grad.reshape(K, Cg, R, S)


# _grad_weight_tiles copies grad_output band by band in its pieces while
# they copy each block at most this many times a thread on average, else
# whole before them. Zen 4, float32, batch 8, band by band against whole,
# one thread: conv1 (one copy) 1.12-1.19x, 256 -> 64 1x1 @56x56 (one)
# 1.00-1.08x, 1024 -> 2048 1x1 @7x7 (1.4) 1.02-1.08x, 3x3 128 -> 128
# @28x28 (2.5) 0.98-1.02x, 256 -> 256 @14x14 (4.1) 0.85-1.03x, 512 -> 512
# @7x7 (4.7) 0.91-0.96x; two threads (whole: one thread copies while the
# other waits): conv1 (2.0) 1.12-1.21x, 3x3 64 -> 64 @56x56 (2.0) 0.95-1.15x.
_BAND_COPIES = 2.0


def _band_copies(chunks: list, tiles: int, blocks: int, threads: int) -> float:
    """How many times _grad_weight_tiles' pieces `chunks` ((group, u0, u1):
    units u = (set * blocks + block) * tiles + tile) would copy each block
    of grad_output's bands, on average, per thread they run on."""
    copies = sum(min(blocks, (u1 - 1) // tiles - u0 // tiles + 1) for _, u0, u1 in chunks)
    groups = len({grp for grp, _, _ in chunks})
    return copies / (blocks * groups * threads)


def _kernel_rows_stacked(inputs: list, geo: _Geometry, PT: int) -> list:
    """_channels_last's padded rows as each kernel row reads them: per group,
    (R, N * Ho) rows of Wp * Cg elements, row (r, n * Ho + y) padded row
    y * sh + r * dh of image n (and PT elements past the last). The batch's
    output rows are then one tall image's, and a tap set's sum over them
    one tile call instead of one per image: tiny images (2x2 outputs: 4
    pixels a call) spent their time loading and storing the tiles' sums.
    Each sum still runs in (n, y, x) order: the same bits."""
    N, Cg, G, R = geo.N, geo.Cg, geo.groups, geo.R
    top, bottom, left, right = geo.pad
    Hp, Wp = top + geo.H + bottom, left + geo.W + right
    (sh, _), (dh, _) = geo.stride, geo.dilation
    Ho, row = geo.Ho, Wp * Cg
    tail = -(-PT // Cg) * Cg
    out = _scratch.empty("conv2d_grad.kernel_rows", (G, R * N * Ho * row + tail), geo.dtype)
    out[:, R * N * Ho * row:] = 0
    for grp in range(G):
        body = inputs[grp][:N * Hp * row].reshape(N, Hp, row)
        stacked = out[grp, :R * N * Ho * row].reshape(R, N, Ho, row)
        for r in range(R):
            stacked[r] = body[:, r * dh:r * dh + (Ho - 1) * sh + 1:sh]
    return [out[grp] for grp in range(G)]


# _channels_last zeroes a copy of at most this many bytes whole, rather than
# its padding frame: one memset against four strided slices (1 x 8 -> 16
# 3x3 @14x14: 0.4 against 5 microseconds).
_ZEROED_BYTES = 64 << 10


def _channels_last(x, geo: _Geometry, PT: int) -> list:
    """The padded input channels last, one flat (pixels, Cg) array per group,
    with PT elements past the last pixel (read, not kept, by a tap set of
    fewer than PT elements)."""
    N, Cg, G, H, W = geo.N, geo.Cg, geo.groups, geo.H, geo.W
    top, bottom, left, right = geo.pad
    Hp, Wp = top + H + bottom, left + W + right
    zeros = geo.np_mode == "constant"
    if not zeros:
        x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=geo.np_mode)
        top = bottom = left = right = 0
    x = np.ascontiguousarray(x).reshape(N, G, Cg, Hp - top - bottom, Wp - left - right)
    tail = -(-PT // Cg)
    out = _scratch.empty("conv2d_grad.channels_last", (G, N * Hp * Wp + tail, Cg), geo.dtype)
    body = out[:, :N * Hp * Wp].reshape(G, N, Hp, Wp, Cg)
    if zeros and out.nbytes <= _ZEROED_BYTES:
        out.fill(0)   # the frame and the tail at once
    else:
        out[:, N * Hp * Wp:] = 0
        if zeros:   # (the pixels' channels go last: the frame is axes 2 and 3)
            zero_frame(body.transpose(0, 1, 4, 2, 3), (top, bottom), (left, right))
    if Cg == 1:   # the layout of the planes: one copy (a transpose per image cost 1 us)
        body[..., top:Hp - bottom, left:Wp - right, 0] = x[:, :, 0].transpose(1, 0, 2, 3)
        return [out[grp].reshape(-1) for grp in range(G)]
    for grp in range(G):
        _core.channels_last(x[:, grp], body[grp, :, top:Hp - bottom, left:Wp - right])
    return [out[grp].reshape(-1) for grp in range(G)]


def _grad_weight_depthwise_lanes(gout, x, geo: _Geometry) -> np.ndarray:
    """Depthwise layers (one input and one output channel per group): the
    core's channels-in-lanes reduction (_core.depthwise_weight_grad), which
    pads the input's rows by index maps as it reads them (no padded copy),
    groups of channels shared among the threads; each sum in (n, y, x)
    order, so the bits do not depend on the thread count."""
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    top, bottom, left, right = geo.pad
    C, R, S, Ho, Wo = geo.C, geo.R, geo.S, geo.Ho, geo.Wo
    row_map = _geometry.padded_map(geo.H, top, bottom, geo.np_mode)
    col_map = _geometry.padded_map(geo.W, left, right, geo.np_mode)
    x = aligned(np.asarray(x, geo.dtype))
    gout = np.ascontiguousarray(gout, geo.dtype)
    lanes, band, size = _core.depthwise_grad_plan(col_map.size, Wo, Ho, R, S, sh, dh,
                                                  geo.dtype == np.float64)
    grad = np.empty((C, R, S), geo.dtype)
    groups = -(-C // lanes)
    per_thread = max(1, -(-groups // max(1, geo.workers)))

    def job(scratch, g0, g1):
        _core.depthwise_weight_grad(x, row_map, col_map, left, gout, sh, sw, dh, dw, band, grad,
                                    scratch, g0 * lanes, min(g1 * lanes, C))

    chunks = [(g0, min(g0 + per_thread, groups)) for g0 in range(0, groups, per_thread)]
    work = float(geo.N) * C * Ho * Wo * R * S
    _parallel.run_work(job, chunks, work, geo.workers, lambda: np.empty(size, geo.dtype))
    return grad.reshape(C, 1, R, S)

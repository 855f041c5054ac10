"""Argument resolution shared by every function: integers, result types,
output shapes, padding, halos and index maps.

Everything here is a pure function of shapes, dtypes and scalar arguments
(no pixel data), returns a small frozen object or a tuple, and raises the
ValueError/TypeError the public functions document. The in-memory functions
(`_convolve`, `_conv2d`), `cyconv.dask` and any new front end resolve their
arguments here, so each rule and each error message exists once.

Every filter here is reduced to a *valid* filter of a padded input; one
axis of it is an `Axis`: `size` input samples, `before`/`after` padding,
a kernel that reaches `span` padded samples, outputs `stride` apart.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from . import _methods
from ._padding import index_map

# =========================================================================== integers

def as_int(value, name: str, what: str) -> int:
    """`value` as a Python int (anything with __index__, bools refused), or a
    TypeError "`name` must be `what`, got ...". Range checks are the caller's."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {what}, got {value!r}") from None


def int_at_least(value, name: str, minimum: int) -> int:
    """`value` as an int >= minimum (0 or 1), else TypeError/ValueError naming `name`."""
    what = "a positive integer" if minimum == 1 else "a non-negative integer"
    v = as_int(value, name, what)
    if v < minimum:
        raise ValueError(f"{name} must be {what}, got {v}")
    return v


def int_pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """An int, or a list/tuple of 1 or 2 ints (as torch.nn.functional.conv2d
    takes stride and dilation), as a pair of ints >= minimum."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            v = int_at_least(value[0], name, minimum)
            return v, v
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a sequence of 1 or 2 ints, "
                             f"got {value!r}")
        return int_at_least(value[0], name, minimum), int_at_least(value[1], name, minimum)
    v = int_at_least(value, name, minimum)
    return v, v


# =========================================================================== one axis

@dataclass(frozen=True)
class Axis:
    """One axis of a valid filter of a padded input: output i reads padded
    samples [i*stride, i*stride + span)."""
    size: int     # input samples
    before: int   # padding before sample 0
    after: int    # padding after the last sample
    span: int     # padded samples one output reads: dilation * (k - 1) + 1
    stride: int = 1

    @property
    def padded(self) -> int:
        return self.size + self.before + self.after

    @property
    def out(self) -> int:
        """Outputs along the axis (negative or 0 when the kernel does not fit)."""
        return (self.padded - self.span) // self.stride + 1

    @property
    def halo(self) -> tuple[int, int]:
        """(before, after): samples a chunk of outputs reads beyond its own
        chunk of padded input, in total max(span - stride, 0). The part
        before is the padding before the image (capped at the total), which
        makes output chunks start where input chunks start for stride 1
        (e.g. "same" with an even kernel is asymmetric)."""
        total = max(self.span - self.stride, 0)
        a = min(self.before, total)
        return a, total - a


@dataclass(frozen=True)
class AxisChunks:
    """How `split_axis` cut one axis for chunkwise filtering."""
    padded_chunks: tuple   # chunks of the padded axis (sum: Axis.padded)
    depth: tuple           # (before, after) halo every chunk receives from its neighbours
    out_chunks: tuple      # output chunks (sum: Axis.out), one per padded chunk


def split_axis(axis: Axis, chunks: Sequence[int]) -> AxisChunks:
    """Chunks of the padded axis and of the output for input `chunks`.

    An output chunk [u, v) reads padded [u*stride, (v-1)*stride + span):
    its own padded chunk [u*stride + a, v*stride + a) plus the halo (a, b)
    = axis.halo. Output chunk boundaries sit on input chunk boundaries
    (divided by the stride) where possible; chunks too small to hold the
    halo their neighbours take from them, or that would give no output,
    are merged into the previous one. Needs axis.out >= 1.
    """
    stride, before = axis.stride, axis.before
    total, padded = axis.out, axis.padded
    a, b = axis.halo
    # Every padded chunk must hold the halo its neighbours take from it
    # (dask.array.overlap only reaches the adjacent chunk).
    least = max(1, -(-max(a, b) // stride))
    bounds: list[int] = []
    edge = 0
    for c in chunks[:-1]:
        edge += c
        u = (edge + before - a) // stride
        if 0 < u < total and (not bounds or u > bounds[-1]):
            bounds.append(u)
    merged: list[int] = []
    pending = 0
    start = 0
    for u in [*bounds, total]:
        pending += u - start
        start = u
        if pending >= least:
            merged.append(pending)
            pending = 0
    if pending:
        if merged:
            merged[-1] += pending
        else:
            merged.append(pending)
    out_chunks = tuple(merged)
    if len(out_chunks) == 1:
        padded_chunks: tuple = (padded,)
    else:
        last_start = (total - out_chunks[-1]) * stride + a
        padded_chunks = (out_chunks[0] * stride + a,
                         *(o * stride for o in out_chunks[1:-1]),
                         padded - last_start)
    return AxisChunks(padded_chunks, (a, b), out_chunks)


# Index maps of up to this many entries are cached (read-only): small calls
# reuse them, big ones are cheap to rebuild compared with their filtering.
_CACHED_MAP_LENGTH = 1 << 12


@functools.lru_cache(maxsize=256)
def _cached_index_map(n: int, before: int, after: int, rule: str) -> np.ndarray:
    m = index_map(n, before, after, rule)
    m.flags.writeable = False
    return m


def axis_map(axis: Axis, rule: str) -> np.ndarray:
    """Source index of each padded sample of `axis` (-1 for the fill) under
    the np.pad mode `rule`; read-only, shared between calls."""
    return padded_map(axis.size, axis.before, axis.after, rule)


def padded_map(n: int, before: int, after: int, rule: str) -> np.ndarray:
    """index_map(n, before, after, rule), read-only, shared between calls."""
    if n + before + after <= _CACHED_MAP_LENGTH:
        return _cached_index_map(n, before, after, rule)
    m = index_map(n, before, after, rule)
    m.flags.writeable = False
    return m


# =========================================================================== convolve2d / correlate2d

MODES = ("full", "same", "valid")
# SciPy's boundary names and aliases -> the np.pad mode that extends the
# image the same way (through the index maps). np.pad's "symmetric" repeats
# the edge sample like SciPy's "symm"; both keep reflecting / wrapping when
# the kernel is larger than the image.
BOUNDARIES = {
    "fill": "constant", "pad": "constant",
    "wrap": "wrap", "circular": "wrap",
    "symm": "symmetric", "symmetric": "symmetric",
}


def check_method(method) -> str:
    """convolve2d's `method`, one of _methods.METHODS."""
    if not isinstance(method, str) or method not in _methods.METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, _methods.METHODS))}, "
                         f"got {method!r}")
    return method


def check_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of 'full', 'same', 'valid', got {mode!r}")
    return mode


def boundary_rule(boundary) -> str:
    """The np.pad mode of a SciPy `boundary` name."""
    if not isinstance(boundary, str) or boundary not in BOUNDARIES:
        raise ValueError("boundary must be 'fill' (or 'pad'), 'wrap' (or 'circular') or "
                         f"'symm' (or 'symmetric'), got {boundary!r}")
    return BOUNDARIES[boundary]


def valid_swap_needed(shape1, shape2) -> bool:
    """SciPy's "valid" rule: True when in2 is the larger input (swap them);
    ValueError when neither is at least as large in every dimension."""
    ok1 = all(a >= b for a, b in zip(shape1, shape2))
    ok2 = all(b >= a for a, b in zip(shape1, shape2))
    if not (ok1 or ok2):
        raise ValueError(f"For 'valid' mode, one must be at least as large as the other in "
                         f"every dimension, got shapes {tuple(shape1)} and {tuple(shape2)}")
    return not ok1


@dataclass(frozen=True)
class Filter2d:
    """convolve2d/correlate2d as a valid correlation of the padded image."""
    image_shape: tuple   # (H, W) of the image, after a "valid"-mode swap
    kernel_shape: tuple  # (M, N)
    out_shape: tuple     # (Ho, Wo), both >= 0
    rows: Axis           # span M, stride 1
    cols: Axis           # span N, stride 1
    rule: str            # np.pad mode of the boundary: constant, wrap or symmetric
    swapped: bool        # "valid" mode swapped in1 and in2
    convolve: bool

    @property
    def pads(self) -> tuple:
        """(top, bottom, left, right)."""
        return self.rows.before, self.rows.after, self.cols.before, self.cols.after

    @property
    def empty(self) -> bool:
        """Nothing to sum: the result is zeros (empty output or empty kernel)."""
        return min(self.out_shape) == 0 or min(self.kernel_shape) == 0

    def index_maps(self) -> tuple[np.ndarray, np.ndarray]:
        """(row_map, col_map): padded row/column -> image row/column, -1 for the fill."""
        return axis_map(self.rows, self.rule), axis_map(self.cols, self.rule)


def filter2d(shape1: tuple, shape2: tuple, mode, boundary, convolve: bool) -> Filter2d:
    """Resolve a convolve2d (`convolve`) or correlate2d call on 2-D inputs of
    these shapes: check_filter2d's checks, the valid-mode swap, padding per
    side, output shape. Errors are SciPy's (and cyconv's); a caller that also
    checks the result type and fill value does so between check_filter2d and
    this, as SciPy orders its errors.
    Results are cached (calls in loops resolve the same shapes again)."""
    if type(mode) is str and type(boundary) is str:  # hashable: cacheable
        return _filter2d_cached(tuple(shape1), tuple(shape2), mode, boundary, bool(convolve))
    return _resolve_filter2d(tuple(shape1), tuple(shape2), mode, boundary, bool(convolve))


def check_filter2d(shape1: tuple, shape2: tuple, mode, boundary, convolve: bool) -> str:
    """The checks of a convolve2d/correlate2d call that come before its
    result type and fill value (SciPy's order): 2-D inputs, mode, boundary.
    Returns the boundary's np.pad mode."""
    if len(shape1) != 2 or len(shape2) != 2:
        name = "convolve2d" if convolve else "correlate2d"
        raise ValueError(f"{name} inputs must both be 2-D arrays, got in1.ndim={len(shape1)} "
                         f"and in2.ndim={len(shape2)}")
    check_mode(mode)
    return boundary_rule(boundary)


def _resolve_filter2d(shape1, shape2, mode, boundary, convolve) -> Filter2d:
    name = "convolve2d" if convolve else "correlate2d"
    rule = check_filter2d(shape1, shape2, mode, boundary, convolve)
    swapped = mode == "valid" and valid_swap_needed(shape1, shape2)
    if swapped:
        shape1, shape2 = shape2, shape1
    (H, W), (M, N) = shape1, shape2
    if mode == "full":
        pads = (M - 1, M - 1, N - 1, N - 1)
    elif mode == "same":
        # Output (i, j) is centred on input (i, j) with offset (M-1)//2 for
        # convolution; correlation's flipped kernel moves the odd sample to
        # the other side.
        pads = (M // 2, (M - 1) // 2, N // 2, (N - 1) // 2) if convolve else \
               ((M - 1) // 2, M // 2, (N - 1) // 2, N // 2)
    else:
        pads = (0, 0, 0, 0)
    rows, cols = Axis(H, pads[0], pads[1], M), Axis(W, pads[2], pads[3], N)
    out_shape = (rows.out, cols.out)
    if min(out_shape) < 0:
        raise ValueError(f"{name}: in1 of shape {tuple(shape1)} and in2 of shape "
                         f"{tuple(shape2)} give a {mode!r} output of negative size {out_shape}")
    geometry = Filter2d(tuple(shape1), tuple(shape2), out_shape, rows, cols, rule, swapped,
                        convolve)
    if not geometry.empty and H * W == 0 and rule != "constant":
        raise ValueError(f"{name}: boundary={boundary!r} cannot extend an empty in1 of shape "
                         f"{tuple(shape1)}; use boundary='fill' or a non-empty in1")
    return geometry


_filter2d_cached = functools.lru_cache(maxsize=512)(_resolve_filter2d)


@functools.lru_cache(maxsize=256)
def filter2d_dtype(dt1: np.dtype, dt2: np.dtype, name: str) -> np.dtype:
    """The result type of `name` (convolve2d/correlate2d) for these input
    dtypes: NumPy's promotion, native byte order, or a ValueError."""
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


@functools.lru_cache(maxsize=64)
def _zero(dtype: np.dtype) -> np.ndarray:
    z = np.zeros((), dtype)
    z.flags.writeable = False
    return z


def fill_scalar(fillvalue, dtype: np.dtype) -> np.ndarray:
    """`fillvalue` cast to the result type as a read-only 0-d array, with
    SciPy's rules and errors."""
    if type(fillvalue) is int and fillvalue == 0:  # the default, every call
        return _zero(dtype)
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
    fill = fill.reshape(())
    fill.flags.writeable = False
    return fill


# =========================================================================== conv2d

# padding_mode -> the np.pad mode that extends an axis the same way.
PAD_MODES = {
    "zeros": "constant",
    "reflect": "reflect",      # mirror without repeating the edge (PyTorch, np.pad)
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",  # extension: mirror with the edge repeated (SciPy's 'symm')
}


def padding_rule(padding_mode) -> str:
    """The np.pad mode of a conv2d `padding_mode`."""
    if not isinstance(padding_mode, str) or padding_mode not in PAD_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(map(repr, PAD_MODES))}, "
                         f"got {padding_mode!r}")
    return PAD_MODES[padding_mode]


def padding_sides(padding, size, kernel, stride, dilation) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) for every form of conv2d's `padding`: an
    int, a list/tuple of 1, 2 (ph, pw) or 4 (left, right, top, bottom, as
    torch.nn.functional.pad) ints, "valid", or "same" (ceil(n / stride)
    outputs, the smaller half of the padding before)."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            sides = []
            for n, k, s, d in zip(size, kernel, stride, dilation):
                total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
                sides += [total // 2, total - total // 2]
            return tuple(sides)
        raise ValueError(f"padding must be an int, a pair, a 4-tuple, 'valid' or 'same', "
                         f"got {padding!r}")
    if isinstance(padding, (tuple, list)):
        p = [int_at_least(v, "padding", 0) for v in padding]
        if len(p) == 1:
            return p[0], p[0], p[0], p[0]
        if len(p) == 2:
            return p[0], p[0], p[1], p[1]
        if len(p) == 4:  # (left, right, top, bottom), as torch.nn.functional.pad
            return p[2], p[3], p[0], p[1]
        raise ValueError(f"padding must have 1 (p), 2 (ph, pw) or 4 (left, right, top, "
                         f"bottom) values, got {len(p)}")
    p = int_at_least(padding, "padding", 0)
    return p, p, p, p


def _check_pad_fits(padding_mode: str, pads: tuple[int, int], n: int, axis: str) -> None:
    if max(pads) == 0 or padding_mode == "zeros":
        return
    if n == 0:
        raise ValueError(f"padding_mode={padding_mode!r} cannot pad an input of {axis} 0")
    if padding_mode == "reflect" and max(pads) >= n:
        raise ValueError(f"padding_mode='reflect' needs padding smaller than the input "
                         f"{axis} ({n}), got {pads}")
    if padding_mode == "circular" and max(pads) > n:
        raise ValueError(f"padding_mode='circular' wraps at most once: padding must not exceed "
                         f"the input {axis} ({n}), got {pads}")


@dataclass(frozen=True)
class Conv2d:
    """A conv2d call: shapes, parsed arguments, padding and output size."""
    N: int                 # batch (1 for an unbatched input)
    C: int                 # input channels
    H: int
    W: int
    K: int                 # output channels
    Cg: int                # input channels per group (weight.shape[1])
    R: int                 # kernel height
    S: int                 # kernel width
    groups: int
    stride: tuple          # (sh, sw)
    dilation: tuple        # (dh, dw)
    padding: tuple         # (top, bottom, left, right)
    padding_mode: str
    rule: str              # np.pad mode of padding_mode
    rows: Axis             # span dh*(R-1)+1, stride sh
    cols: Axis             # span dw*(S-1)+1, stride sw
    unbatched: bool        # the input was (C, H, W)

    @property
    def Ho(self) -> int:
        return self.rows.out

    @property
    def Wo(self) -> int:
        return self.cols.out

    @property
    def out_shape(self) -> tuple:
        """(N, K, Ho, Wo), also for an unbatched input."""
        return self.N, self.K, self.rows.out, self.cols.out

    @property
    def result_shape(self) -> tuple:
        """The shape conv2d returns: (K, Ho, Wo) for an unbatched input."""
        return self.out_shape[1:] if self.unbatched else self.out_shape

    @property
    def empty_kernel(self) -> bool:
        """No taps (Cg, R or S is 0): the output is the bias alone."""
        return self.Cg == 0 or self.R == 0 or self.S == 0


def conv2d(input_shape: tuple, weight_shape: tuple, bias_shape: tuple | None, stride,
           padding, dilation, groups, padding_mode) -> Conv2d:
    """Check and resolve conv2d's arguments for arrays of these shapes (the
    input 3-D or 4-D); the errors conv2d documents."""
    if len(input_shape) not in (3, 4):
        raise ValueError(f"input must be 4-D (N, C, H, W) or 3-D (C, H, W), "
                         f"got shape {tuple(input_shape)}")
    if len(weight_shape) != 4:
        raise ValueError(f"weight must be 4-D (K, C/groups, R, S), got shape "
                         f"{tuple(weight_shape)}")
    unbatched = len(input_shape) == 3
    N, C, H, W = (1, *input_shape) if unbatched else input_shape
    K, Cg, R, S = weight_shape
    groups = int_at_least(groups, "groups", 1)
    if C % groups or K % groups:
        raise ValueError(f"groups={groups} must divide both the input channels ({C}) "
                         f"and the output channels ({K})")
    if Cg * groups != C:
        raise ValueError(f"weight of shape {tuple(weight_shape)} expects {Cg * groups} input "
                         f"channels with groups={groups}, but input has {C}")
    if bias_shape is not None and tuple(bias_shape) != (K,):
        raise ValueError(f"bias must have shape ({K},), one value per output channel, "
                         f"got shape {tuple(bias_shape)}")
    sh, sw = int_pair(stride, "stride")
    dh, dw = int_pair(dilation, "dilation")
    rule = padding_rule(padding_mode)
    top, bottom, left, right = padding_sides(padding, (H, W), (R, S), (sh, sw), (dh, dw))
    _check_pad_fits(padding_mode, (top, bottom), H, "height")
    _check_pad_fits(padding_mode, (left, right), W, "width")
    rows = Axis(H, top, bottom, dh * (R - 1) + 1, sh)
    cols = Axis(W, left, right, dw * (S - 1) + 1, sw)
    if rows.padded < rows.span or cols.padded < cols.span:
        raise ValueError(f"kernel of size ({R}, {S}) with dilation ({dh}, {dw}) spans "
                         f"({rows.span}, {cols.span}), larger than the padded input "
                         f"({rows.padded}, {cols.padded})")
    return Conv2d(N, C, H, W, K, Cg, R, S, groups, (sh, sw), (dh, dw),
                  (top, bottom, left, right), padding_mode, rule, rows, cols, unbatched)


def conv2d_dtype(input_dtype: np.dtype, weight_dtype: np.dtype,
                 bias_dtype: np.dtype | None) -> np.dtype:
    """conv2d's compute and result type: float32 when every array is float16
    or float32, else float64; TypeError for complex and non-numeric arrays."""
    if input_dtype == weight_dtype and (bias_dtype is None or bias_dtype == input_dtype):
        # (every array float32, or every one float64: a repeated layer's call)
        same = _NATIVE_FLOATS.get(input_dtype)
        if same is not None:
            return same
    dtypes = [("input", input_dtype), ("weight", weight_dtype)]
    if bias_dtype is not None:
        dtypes.append(("bias", bias_dtype))
    for name, dt in dtypes:
        if dt.kind == "c":
            raise TypeError(f"{name} is complex ({dt}); conv2d supports real "
                            "float, integer and bool arrays")
        if dt.kind not in "biuf":
            raise TypeError(f"{name} has unsupported dtype {dt}; conv2d supports "
                            "float, integer and bool arrays")
    if all(dt.kind == "f" and dt.itemsize <= 4 for _, dt in dtypes):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


_NATIVE_FLOATS = {np.dtype(t): np.dtype(t) for t in (np.float32, np.float64)}

_MAX_BYTES = 2 ** 62  # beyond this no allocation can succeed; refuse before trying


def check_size(shape, dtype: np.dtype, what: str) -> None:
    """ValueError if an array of `shape` and `dtype` could never be allocated."""
    n = 1
    for s in shape:
        n *= int(s)
    if n * dtype.itemsize >= _MAX_BYTES:
        raise ValueError(f"the {what} of shape {tuple(shape)} would need {n * dtype.itemsize} "
                         "bytes, more than can be allocated")

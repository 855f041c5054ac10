"""cyconv.ndimage: drop-in replacements for scipy.ndimage's convolution filters.

    correlate(input, weights, output, mode, cval, origin, axes=)   # = scipy.ndimage.correlate
    convolve(...)                                                 # = scipy.ndimage.convolve
    correlate1d / convolve1d(input, weights, axis, output, mode, cval, origin)
    uniform_filter(input, size, ...), uniform_filter1d(input, size, axis, ...)
    gaussian_filter(input, sigma, order, ..., truncate, radius=, axes=), gaussian_filter1d
    sobel, prewitt, laplace, gaussian_laplace, gaussian_gradient_magnitude,
    generic_laplace, generic_gradient_magnitude

Same signatures, defaults, output dtypes and errors as SciPy 1.17, plus a
keyword-only ``workers=`` (threads; results are bitwise identical for any
value). NumPy is the only dependency.

How results are computed (SciPy computes every output in double precision
and converts it to the output dtype with a C cast):

- float32 / float64 outputs run on cyconv's SIMD kernels (fused multiply-add
  where the CPU has it), in float32 when the output is float32 and the input
  converts to float32 exactly (float32, bool, 8- and 16-bit integers), in
  float64 otherwise: equal to SciPy's within rounding.
- integer and bool outputs are computed in double in exactly SciPy's order of
  operations (vectorized across independent outputs, no fused multiply-add)
  and converted like SciPy's C cast, so they equal SciPy's bit for bit,
  including truncation toward zero and the platform's wrap-around of
  out-of-range values. 1-D passes between 8/16-bit images and 8- to 32-bit
  outputs read and write them in place, a line at a time through double
  scratch (where every sum is below 2**30), and 2-D correlations of such
  images are padded by the core and written a row at a time; the others pad
  a double copy. Running means whose sums are whole numbers may add them in
  another order (exact in any) and truncate sum * r, r just above 1/size,
  for SciPy's sum / size: the same integers.
- multi-pass filters (uniform_filter, gaussian_filter, sobel, ...) write each
  pass in the output's dtype and read it back for the next, like SciPy, so
  they equal the same sequence of 1-D calls bit for bit and integer outputs
  are rounded between passes exactly as SciPy rounds them.
- weights of any dimension are supported: filters over one or two axes
  (any number of other axes is a stack) with float outputs run on the SIMD
  kernels; three or more filtered axes, and integer outputs, run on the
  exact N-d engine (double precision, vectorized along the last axis).

Repeated small calls (a filter in a loop over small images) skip their
Python: a call with plain arguments (a C-contiguous float or 8/16-bit image,
scalars and lists of numbers, the output None, a dtype or an array) whose
passes each were one core call keeps them, and a later call with the same
arguments makes the same core calls directly (the same bits).

Where SciPy raises RuntimeError for a bad argument, cyconv raises an error
that is both a ValueError (or TypeError, for unsupported dtypes) and a
RuntimeError, with SciPy's message.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import platform
import warnings
from collections.abc import Iterable
from fractions import Fraction
from typing import NamedTuple

import numpy as np
try:
    from numpy.lib.array_utils import normalize_axis_index
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import normalize_axis_index

from . import _core, _memory, _methods, _padding, _parallel, _scratch

__all__ = [
    "correlate", "convolve", "correlate1d", "convolve1d",
    "uniform_filter", "uniform_filter1d", "gaussian_filter", "gaussian_filter1d",
    "sobel", "prewitt", "laplace", "gaussian_laplace", "gaussian_gradient_magnitude",
    "generic_laplace", "generic_gradient_magnitude",
]


class NdimageArgumentError(ValueError, RuntimeError):
    """A bad argument where SciPy raises RuntimeError: also a ValueError."""


class NdimageTypeError(TypeError, RuntimeError):
    """An unsupported dtype (SciPy raises RuntimeError): also a TypeError."""


# scipy.ndimage's boundary modes for filters -> np.pad's rule of the index maps.
# (For filters, SciPy treats the grid-* names as the plain ones.)
MODES = {
    "reflect": "symmetric", "grid-mirror": "symmetric",
    "mirror": "reflect",
    "nearest": "edge",
    "wrap": "wrap", "grid-wrap": "wrap",
    "constant": "constant", "grid-constant": "constant",
}

# dtypes SciPy's filters read and write (complex ones go through their real parts).
_REAL_TYPES = frozenset(np.dtype(c) for c in "?bBhHiIlLqQfd")
# Inputs that convert to float32 without rounding.
_EXACT_IN_FLOAT32 = frozenset(np.dtype(c) for c in "?bBhHf")
# Lanes per block of a 1-D pass down a non-contiguous axis (cache-sized).
_LANE_BLOCK = 512


# ------------------------------------------------------------------ arguments

def _native(dtype: np.dtype) -> np.dtype:
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def _as_input(input) -> np.ndarray:
    a = np.asarray(input)
    if _native(a.dtype) not in _REAL_TYPES and _native(a.dtype) not in (np.complex64,
                                                                        np.complex128):
        raise NdimageTypeError(f"array type {a.dtype!r} not supported: cyconv.ndimage takes "
                               "bool, integer, float32/float64 and complex64/complex128 arrays")
    return a


def _extend_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise NdimageArgumentError(f"boundary mode not supported: {mode!r}; use one of "
                                   f"{', '.join(MODES)}")
    return MODES[mode]


def _normalize_sequence(value, rank: int) -> list:
    if not isinstance(value, str) and np.iterable(value):
        values = list(value)
        if len(values) != rank:
            raise NdimageArgumentError("sequence argument must have length equal to input rank")
        return values
    return [value] * rank


def _check_axes(axes, ndim: int) -> tuple:
    if axes is None:
        return tuple(range(ndim))
    if np.isscalar(axes):
        axes = (operator.index(axes),)
    elif isinstance(axes, Iterable):
        axes = tuple(operator.index(ax) for ax in axes)
        for ax in axes:
            if ax < -ndim or ax > ndim - 1:
                raise ValueError(f"specified axis: {ax} is out of range")
        axes = tuple(ax % ndim for ax in axes)
    else:
        raise ValueError("axes must be an integer, iterable of integers, or None")
    if len(set(axes)) != len(axes):
        raise ValueError("axes must be unique")
    return axes


def _get_output(output, input: np.ndarray, complex_output: bool = False,
                overwritten: bool = False) -> np.ndarray:
    """The array results go to, as scipy.ndimage makes it from `output`;
    `overwritten`: the caller writes every element, so a new one need not
    be zeroed."""
    shape = input.shape
    new = _memory.empty if overwritten else _memory.zeros
    if output is None:
        dtype = np.promote_types(input.dtype, np.complex64) if complex_output \
            else _native(input.dtype)
        out = new(shape, dtype, apart_from=input)
    elif isinstance(output, (type, np.dtype)):
        dtype = np.dtype(output)
        if complex_output and dtype.kind != "c":
            warnings.warn("promoting specified output dtype to complex", stacklevel=3)
            dtype = np.promote_types(dtype, np.complex64)
        out = new(shape, dtype, apart_from=input)
    elif isinstance(output, str):
        dtype = np.dtype(output)
        if complex_output and dtype.kind != "c":
            raise NdimageArgumentError("output must have complex dtype")
        if not issubclass(dtype.type, np.number):
            raise NdimageArgumentError("output must have numeric dtype")
        out = new(shape, dtype, apart_from=input)
    else:
        out = np.asarray(output)
        if out.shape != shape:
            raise NdimageArgumentError("output shape not correct")
        if complex_output and out.dtype.kind != "c":
            raise NdimageArgumentError("output must have complex dtype")
        if not out.flags.writeable:
            raise ValueError("output array is read-only")
    if _native(out.dtype) not in _REAL_TYPES and _native(out.dtype) not in (np.complex64,
                                                                            np.complex128):
        raise NdimageTypeError(f"output type {out.dtype!r} not supported: use bool, an "
                               "integer type, float32/float64 or complex64/complex128")
    return out


def _checked_workers(workers):
    """`workers` checked and resolved, or None (resolved by the pass that
    needs it: get_num_threads costs a system call)."""
    return None if workers is None else _parallel.resolve_workers(workers)


def _check_real_output(out: np.ndarray) -> None:
    if _native(out.dtype) not in _REAL_TYPES:
        raise NdimageTypeError(f"array type {out.dtype!r} not supported as the output of a "
                               "real input and real weights: use a real output dtype")


def _real_cval(cval) -> float:
    if type(cval) is float or type(cval) is int:
        return float(cval)
    if np.iscomplexobj(cval):
        raise ValueError("Cannot provide a complex-valued cval when the input is real.")
    try:
        return float(cval)
    except (TypeError, ValueError):
        raise TypeError(f"cval must be a number, got {cval!r}") from None


def _check_origin(origin, size: int, message: str) -> int:
    try:
        origin = operator.index(origin)
    except TypeError:
        raise TypeError(f"origin must be an integer, got {origin!r}") from None
    if origin < -(size // 2) or origin > (size - 1) // 2:
        raise ValueError(message)
    return origin


# ------------------------------------------------------------------ casting

def _store(result: np.ndarray, out: np.ndarray) -> None:
    """out[...] = result (float64 or the compute type) converted the way SciPy's
    C code converts a double: a C cast, i.e. truncation toward zero; values out
    of the type's range as the platform's C cast leaves them (NumPy's casts are
    the same C casts, except uint32, which C compilers convert through int64,
    and bool, which SciPy writes as the byte of a uint8 cast)."""
    kind = _native(out.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        if kind.kind == "f" or result.dtype == kind:
            out[...] = result
        elif kind == np.bool_:
            out.view(np.uint8)[...] = result.astype(np.uint8)
        elif kind == np.uint32:
            out[...] = result.astype(np.int64).astype(np.uint32)
        else:
            out[...] = result.astype(kind)


def _compute_type(src: np.dtype, out: np.dtype):
    """float32 / float64 for the SIMD path, None for the exact double path."""
    try:
        return _compute_types[src, out]
    except KeyError:
        ctype = _compute_types[src, out] = _find_compute_type(src, out)
        return ctype


_compute_types: dict = {}   # _compute_type's answers (a pass asks on every call)


def _find_compute_type(src: np.dtype, out: np.dtype):
    src, out = _native(src), _native(out)
    if out == np.float32:
        return np.dtype(np.float32) if src in _EXACT_IN_FLOAT32 else np.dtype(np.float64)
    if out == np.float64:
        return np.dtype(np.float64)
    return None


def _kernel_as(weights: np.ndarray, dtype) -> np.ndarray:
    """weights in the compute type. float32 weights are rounded with error
    diffusion (largest first, each absorbing the rounding so far), so their sum
    stays within half an ulp of the smallest weight of the float64 sum: plain
    rounding would bias every output by up to ~1e-7 (a blur would brighten or
    darken the image), where SciPy's double weights do not."""
    if dtype != np.float32:
        return np.ascontiguousarray(weights, dtype)
    key = (weights.dtype.str, weights.shape, weights.tobytes())
    rounded = _float32_weights.get(key)
    if rounded is None:
        if len(_float32_weights) >= 256:
            _float32_weights.clear()
        rounded = _float32_weights[key] = _diffused_float32(weights)
    return rounded


# _kernel_as's float32 weights by their dtype, shape and bytes: a filter in a loop
# rounds the same few kernels (the Python loop below is a tenth of a 64 x 64
# gaussian_filter). Read-only: the core only reads them.
_float32_weights: dict = {}


def _diffused_float32(weights: np.ndarray) -> np.ndarray:
    """_kernel_as's float32 rounding (error diffusion), read-only."""
    flat = weights.reshape(-1)
    rounded = np.empty(flat.shape, np.float32)
    exact = chosen = 0.0
    for i in np.argsort(-np.abs(flat), kind="stable"):
        exact += float(flat[i])
        rounded[i] = np.float32(exact - chosen)
        chosen += float(rounded[i])
    rounded.flags.writeable = False
    return rounded.reshape(weights.shape)


def _readable(src: np.ndarray) -> np.ndarray:
    """SciPy reads a bool array's bytes as unsigned chars: an earlier pass may
    have stored any byte in it (the C cast of its double result)."""
    return src.view(np.uint8) if src.dtype == np.bool_ else src


def _target(out: np.ndarray, dtype) -> np.ndarray:
    """A C-contiguous buffer of `dtype` to compute into: `out` itself if it is
    one, else this thread's scratch, valid until the next pass asks."""
    if out.dtype == dtype and out.dtype.isnative and out.flags.c_contiguous and out.flags.aligned:
        return out
    return _scratch.empty("ndimage.result", out.shape, dtype)


# ------------------------------------------------------------------ padding

def _pad_axis(src: np.ndarray, axis: int, before: int, after: int, rule: str, cval: float,
              dtype) -> np.ndarray:
    """src extended along `axis` by np.pad's `rule` (any depth), as a
    C-contiguous array of `dtype` in this thread's scratch (valid until the
    next pass asks): the interior is one strided copy, each border position
    one slice copied from the source position of the map. (Fresh arrays of
    a few hundred KB are faulted in anew by each call: a 256^2 uint8
    gaussian_filter spent half its time there.)"""
    n = src.shape[axis]
    shape = list(src.shape)
    shape[axis] = n + before + after
    padded = _scratch.empty("ndimage.padded", tuple(shape), dtype)

    def part(lo, hi):
        index = [slice(None)] * src.ndim
        index[axis] = slice(lo, hi)
        return tuple(index)

    padded[part(before, before + n)] = src
    if before or after:
        sources = _padding.index_map(n, before, after, rule)
        for lo, hi in ((0, before), (before + n, before + n + after)):
            if hi > lo:
                if rule == "constant":
                    padded[part(lo, hi)] = cval
                    continue
                for q in range(lo, hi):       # one slice copy per border position
                    padded[part(q, q + 1)] = src[part(sources[q], sources[q] + 1)]
    return padded


# ------------------------------------------------------------------ adapters to the shared core
# The only calls into code other engineers own: kept here so they are easy to
# adapt when its signatures change.

def _run_chunks(func, chunks, work_per_chunk: float, workers: int) -> None:
    """func(*chunk) for every chunk, on up to `workers` threads."""
    _parallel.run_work(lambda _, *chunk: func(*chunk), chunks, work_per_chunk * len(chunks),
                       workers)


def _correlate_plane_into(image, kernel, row_map, col_map, left, top, fill, out,
                          workers) -> None:
    """Valid correlation of a padded plane (index maps, `fill`, padding
    `left` and `top`) on the SIMD kernels, written into the C-contiguous
    float32/float64 `out` (a column-major plane is read as its transpose
    and the result copied back: see _methods.correlate_into)."""
    _methods.correlate_into(_padding.aligned(image), kernel, row_map, col_map, left, top,
                            fill, out, workers)


# ------------------------------------------------------------------ one 1-D pass

def _symmetry(weights: np.ndarray) -> int:
    """NI_Correlate1D's test: 1 symmetric, -1 antisymmetric, 0 neither (odd sizes only)."""
    L = len(weights)
    if L % 2 == 0:
        return 0
    c = L // 2
    eps = np.finfo(np.float64).eps
    right, left = weights[c + 1:], weights[:c][::-1]
    if np.all(np.abs(right - left) <= eps):
        return 1
    if np.all(np.abs(right + left) <= eps):
        return -1
    return 0


def _pass_1d(src: np.ndarray, weights: np.ndarray | None, size: int, axis: int, rule: str,
             cval: float, origin: int, out: np.ndarray, workers: int | None) -> None:
    """One correlation (weights) or running mean (weights None, `size`) of the
    real array `src` along `axis`, written into the real array `out`."""
    _check_real_output(out)
    if src.size == 0:
        return
    src = _readable(src)
    L = size if weights is None else len(weights)
    n = src.shape[axis]
    before = L // 2 + origin
    after = L - 1 - before
    ctype = _compute_type(src.dtype, out.dtype)
    if weights is None and ctype is not None:
        weights = _uniform_weights(size)    # float outputs: a plain correlation
    if ctype is not None and src.dtype != ctype:
        # the SIMD kernels read the compute type: convert once (the same C
        # casts a padded copy made), then read the copy in place
        converted = _scratch.empty("ndimage.converted", src.shape, ctype)
        converted[...] = src
        src = converted
    if ctype is not None and _pass_small(src, weights, axis, before, rule, cval, out, ctype):
        return
    if ctype is None and src.flags.aligned and out.flags.aligned:   # (C pointers of the type)
        plan = _line_plan(src.dtype, out.dtype, weights, size, n, before, rule, cval)
        if plan is not None:
            _pass_exact_lines(src, weights, size, axis, before, cval, out, plan, workers)
            return
    if workers is None:   # (left for here: a small pass needs no thread count)
        workers = _parallel.get_num_threads()
    if ctype is not None and _pass_in_place(src, weights, axis, before, rule, cval, out, ctype,
                                            workers):
        return
    padded = _pad_axis(src, axis, before, after, rule, cval,
                       np.float64 if ctype is None else ctype)
    result = _target(out, np.float64 if ctype is None else ctype)
    outer = math.prod(src.shape[:axis])
    lanes = math.prod(src.shape[axis + 1:])
    if lanes == 1:                                   # along rows: positions are the lanes
        p2 = padded.reshape(outer, n + L - 1)
        r2 = result.reshape(outer, n)
        chunks = _parallel.chunks_of(outer, n * L, workers)
        if ctype is not None:
            w = _kernel_as(weights, ctype)
            _run_chunks(lambda r0, r1: _core.ndimage_correlate1d_rows_fast(p2, w, r2, r0, r1),
                        chunks, n * L, workers)
        elif weights is None:
            _run_chunks(lambda r0, r1: _core.ndimage_uniform1d_rows(p2, size, r2, r0, r1),
                        chunks, n * 3, workers)
        else:
            sym = _symmetry(weights)
            _run_chunks(lambda r0, r1: _core.ndimage_correlate1d_rows(p2, weights, sym, r2, r0, r1),
                        chunks, n * L, workers)
    else:                                   # down an axis: neighbouring lines are the lanes
        p3 = padded.reshape(outer, n + L - 1, lanes)
        r3 = result.reshape(outer, n, lanes)
        block = _LANE_BLOCK
        chunks = [(o, o + 1, b, min(b + block, lanes))
                  for o in range(outer) for b in range(0, lanes, block)]
        work = n * min(block, lanes) * L
        if ctype is not None:
            w = _kernel_as(weights, ctype)
            _run_chunks(lambda o0, o1, b0, b1:
                        _core.ndimage_correlate1d_lanes_fast(p3, w, r3, o0, o1, b0, b1),
                        chunks, work, workers)
        elif weights is None:
            def uniform(o0, o1, b0, b1):
                _core.ndimage_uniform1d_lanes(p3, size, r3, np.empty(b1 - b0), o0, o1, b0, b1)
            _run_chunks(uniform, chunks, n * min(block, lanes) * 3, workers)
        else:
            sym = _symmetry(weights)
            _run_chunks(lambda o0, o1, b0, b1:
                        _core.ndimage_correlate1d_lanes(p3, weights, sym, r3, o0, o1, b0, b1),
                        chunks, work, workers)
    if result is not out:
        _store(result, out)


# ------------------------------------------------------------------ integer lines in place
# An exact pass between 8- and 16-bit images reads the image and writes the
# output in place, a line at a time through double scratch (_core's
# ndimage_exact_rows / _lanes), instead of a padded double copy of the image
# and a double result converted at the end: those moved about 35 MB per
# 1024^2 uint8 pass. The line kernels truncate through int32, so they serve
# only sums below 2**30 in magnitude; where C casts do not wrap like x86's
# (an out-of-range double into uint8 is 0 on ARM, its low byte on x86), only
# sums within the output type's range.

# The dtypes the line kernels read, and those they write.
_LINE_INPUTS = frozenset(np.dtype(c) for c in "bBhH")
_LINE_OUTPUTS = frozenset(np.dtype(c) for c in "bBhHi")
_CASTS_WRAP_LIKE_X86 = platform.machine().lower() in {"x86_64", "amd64", "i386", "i686", "x86"}
# A pass down an axis converts the input rows of a piece of at least
# _LINE_PIECE output rows (of L, if more) into double scratch, a block of
# lanes at a time: as many lanes as keep the L rows one output row reads in
# _LINE_L1_DOUBLES (half of a 48 KB L1), at most _LINE_LANES. (Zen 4, 1024^2
# uint8, L = 25: 1.6 ms in blocks of 128 lanes, 2.3 in blocks of 256; L = 9
# the other way round, 0.8 and 1.1.)
_LINE_PIECE = 64
_LINE_LANES = 512
_LINE_L1_DOUBLES = 3072


def _exact_in_lines(src: np.dtype, out: np.dtype, weights: np.ndarray, rule: str,
                    cval: float) -> bool:
    """Whether an exact pass from `src` to `out` can run on the line kernels
    (see above): every sum provably below 2**30 in magnitude, and in the
    output's range unless casts wrap like x86's."""
    if src not in _LINE_INPUTS or out not in _LINE_OUTPUTS:
        return False
    info = np.iinfo(src)
    low, high = float(info.min), float(info.max)
    if rule == "constant":
        low, high = min(low, cval), max(high, cval)
    magnitude = max(-low, high) * float(np.abs(weights).sum())
    if not magnitude < 2.0 ** 30:     # (False for NaN weights or fill)
        return False
    if _CASTS_WRAP_LIKE_X86:
        return True
    least = float(np.minimum(weights * low, weights * high).sum())
    most = float(np.maximum(weights * low, weights * high).sum())
    slack = magnitude * len(weights) * 2.0 ** -50   # rounding in the sums
    target = np.iinfo(out)
    return least - slack > target.min - 1 and most + slack < target.max + 1


# Running means on the line kernels take sizes below this (_reciprocal_above).
_QUOTIENT_SIZES = 2 ** 21


def _reciprocal_above(size: int) -> float:
    """The least double r >= 1/size: for an integer sum s whose mean s/size
    is below 2**30 in magnitude (_exact_in_lines), trunc(s * r) is the
    integer quotient of s by size, the integer SciPy's trunc(s / size) is.

    Why: let x = s/size. s * r = x (1 + e) with 0 <= e < 2**-52, so it lies
    between x and x + 2**-22, and rounding moves it by at most 2**-24. If x is
    an integer, the product is x or just above. If not, x is at least 1/size
    below the next integer, more than the 5 * 2**-24 the product can gain
    when size < 2**21 (_QUOTIENT_SIZES). SciPy's s / size truncates to the
    same integer, since rounding one division cannot cross an integer 1/size
    away. Negative sums are the mirror image."""
    r = 1.0 / size
    if Fraction(r) < Fraction(1, size):
        r = math.nextafter(r, math.inf)
    return r


def _int32_windows(src: np.dtype, size: int, rule: str, cval: float) -> bool:
    """Whether every window of a running mean of `size` over `src` sums to an
    integer below 2**31 in magnitude (a whole fill, if it is read), so that
    ndimage_window_means_rows may sum it in int32, in any order."""
    info = np.iinfo(src)
    largest = max(-float(info.min), float(info.max))
    if rule == "constant":
        if not float(cval).is_integer():
            return False
        largest = max(largest, abs(float(cval)))
    return largest * size < 2.0 ** 31


# The C type names of the line kernels' specializations, by dtype.
_LINE_TYPE_NAMES = {np.dtype(c): name for c, name in
                    (("b", "int8_t"), ("B", "uint8_t"), ("h", "int16_t"), ("H", "uint16_t"),
                     ("i", "int32_t"))}


class _LinePlan(NamedTuple):
    """What a pass on the line kernels needs besides the arrays."""
    index: np.ndarray      # the padded positions' source index, -1 the fill
    symmetry: int          # of the weights (correlations)
    rows: object           # _core's kernel along rows for the two dtypes
    lanes: object          # _core's kernel down an axis for them
    reciprocal: float      # a running mean's _reciprocal_above(size), 0 to divide
    window_means: bool     # rows is ndimage_window_means_rows (int32 prefix sums)


# _line_plan's answers (None: not on the line kernels). A filter in a loop asks
# the same question on every call, and the answer costs tens of microseconds
# (NumPy reductions, Cython's choice of a fused specialization).
_line_plans: dict = {}


def _line_plan(src: np.dtype, out: np.dtype, weights, size: int, n: int, before: int,
               rule: str, cval: float):
    """The _LinePlan of an exact pass over n samples, of `weights` or (None)
    a running mean of `size`, or None where the line kernels do not serve it
    (_exact_in_lines)."""
    key = (src, out, None if weights is None else weights.tobytes(), size, n, before, rule,
           cval)
    try:
        return _line_plans[key]
    except KeyError:
        pass
    plan = None
    taps = _uniform_weights(size) if weights is None else weights   # (same range of sums)
    if _exact_in_lines(src, out, taps, rule, cval) and (weights is not None
                                                        or size < _QUOTIENT_SIZES):
        types = _LINE_TYPE_NAMES[src], _LINE_TYPE_NAMES[out]
        index = _padding.index_map(n, before, len(taps) - 1 - before, rule)
        if weights is None:
            prefix = _int32_windows(src, size, rule, cval)
            rows = _core.ndimage_window_means_rows if prefix else _core.ndimage_uniform_rows
            plan = _LinePlan(index, 0, rows[types], _core.ndimage_uniform_lanes[types],
                             # (a fractional fill makes fractional sums)
                             _reciprocal_above(size) if float(cval).is_integer() else 0.0,
                             prefix)
        else:
            plan = _LinePlan(index, _symmetry(weights), _core.ndimage_exact_rows[types],
                             _core.ndimage_exact_lanes[types], 0.0, False)
    if len(_line_plans) >= _MAX_SHORT_PATHS:
        _line_plans.clear()
    _line_plans[key] = plan
    return plan


def _lines_view(a: np.ndarray, axis: int):
    """`a` as an (outer, n, inner) view (any strides), or None if that needs a copy."""
    if a.flags.c_contiguous:
        return a.reshape(math.prod(a.shape[:axis]), a.shape[axis], -1)
    v = a.view()
    try:
        v.shape = (math.prod(a.shape[:axis]), a.shape[axis], math.prod(a.shape[axis + 1:]))
    except AttributeError:
        return None
    return v


def _line_lanes(L: int) -> int:
    """Lanes a block of a pass down an axis takes (see _LINE_L1_DOUBLES)."""
    return min(_LINE_LANES, max(16, _LINE_L1_DOUBLES // L // 16 * 16))


def _pass_exact_lines(src, weights, size, axis, before, cval, out, plan, workers) -> None:
    """_pass_1d's exact correlation (`weights`) or running mean (`size`) on
    the line kernels, as `plan` says (workers None: the default count)."""
    L = size if weights is None else len(weights)
    if src.ndim == 2 and src.size * L < _parallel.MIN_WORK_PER_THREAD \
            and src.flags.c_contiguous and out.flags.c_contiguous:
        # a small image (a filter in a loop): one core call, no chunks
        kept = _small_lines(src.dtype, out.dtype, src.shape, weights, size, axis, before, cval,
                            plan)
        if kept is not None and kept.run(src, out):
            return
    n = src.shape[axis]
    index, symmetry, rows, down, reciprocal, _ = plan
    lines = 4 * (2 * n + L - 1) + 64     # ndimage_uniform_rows' scratch (the others need less)
    if workers is None:
        workers = _parallel.get_num_threads()
    o3 = _lines_view(out, axis)
    target = out if o3 is not None else np.empty(out.shape, out.dtype)
    if o3 is None:
        o3 = _lines_view(target, axis)
    outer, _, inner = o3.shape
    # A row pass reads each row whole before writing it, so it may run in
    # place; any other overlap reads a copy.
    if np.may_share_memory(src, target) and not (inner == 1 and src is target):
        src = src.copy()
    s3 = _lines_view(src, axis)
    if s3 is None:
        s3 = _lines_view(np.ascontiguousarray(src), axis)
    if inner == 1:
        s2, o2 = s3[:, :, 0], o3[:, :, 0]
        if weights is None:
            def run(scratch, r0, r1):
                rows(s2, index, before, cval, size, reciprocal, o2, scratch, r0, r1)
        else:
            def run(scratch, r0, r1):
                rows(s2, index, before, cval, weights, symmetry, o2, scratch, r0, r1)
        _parallel.run_work(run, _parallel.chunks_of(outer, n * L, workers), outer * n * L,
                           workers,
                           scratch=lambda: _scratch.empty("ndimage.row", (lines,), np.float64))
    else:
        lanes = min(_line_lanes(L), inner)
        piece = max(_LINE_PIECE, L)
        if weights is None:
            def run(scratch, o, b0, b1):
                down(s3, index, cval, size, reciprocal, o3, scratch, o, b0, b1)
            rows_kept = 2
        else:
            def run(scratch, o, b0, b1):
                down(s3, index, cval, weights, symmetry, o3, scratch, piece, o, b0, b1)
            rows_kept = piece + L
        chunks = [(o, b, min(b + lanes, inner)) for o in range(outer)
                  for b in range(0, inner, lanes)]
        _parallel.run_work(run, chunks, outer * n * inner * L, workers,
                           scratch=lambda: _scratch.empty("ndimage.rows",
                                                          (rows_kept * (lanes + 8),), np.float64))
    if target is not out:
        out[...] = target


def _small_lines(src, out, shape, weights, size, axis, before, cval, plan):
    """The kept _core.SmallLines of a small exact pass along `axis` between
    C-contiguous 2-D images of `shape` and the dtypes `src` and `out` (down
    axis 0: at most _line_lanes(L) lanes), or None for a pass that is not
    small."""
    L = size if weights is None else len(weights)
    rows, cols = shape
    if rows * cols * L >= _parallel.MIN_WORK_PER_THREAD or axis == 0 and cols > _line_lanes(L):
        return None
    key = (shape, src, out, None if weights is None else weights.tobytes(), size, axis, before,
           cval, plan.index.tobytes(), plan.symmetry, plan.reciprocal, plan.window_means)
    kept = _line_passes.get(key)
    if kept is None:
        piece = max(_LINE_PIECE, L)
        scratch = 4 * (2 * cols + L - 1) + 64 if axis == 1 \
            else (piece + L) * (cols + 8)    # (the most any kernel along / down needs)
        if scratch > _KEPT_SCRATCH_DOUBLES:  # (long rows: the general path's scratch)
            return None
        # (the weights are a copy: they may be the caller's array, changed later)
        kept = _core.SmallLines(_core.LINE_TYPES[src.char], _core.LINE_TYPES[out.char],
                                plan.index, None if weights is None else np.array(weights),
                                _kept_scratch(scratch, np.float64), rows, cols, axis,
                                before, cval, size, plan.reciprocal, plan.symmetry, piece,
                                plan.window_means)
        if len(_line_passes) >= _MAX_SHORT_PATHS:
            _line_passes.clear()
        _line_passes[key] = kept
    return kept


_line_passes: dict = {}   # _small_lines' answers
_KEPT_SCRATCH_DOUBLES = 1 << 17   # 1 MB: what a kept pass may own (up to 256 are kept)


def _kept_scratch(n: int, dtype) -> np.ndarray:
    """The scratch a kept small pass owns: n elements of `dtype`, aligned to
    a cache line like _scratch's (on np.empty's 16 bytes, half of the AVX2
    loads of a pass down 256 lanes split a line: 15 % slower). The memory
    bounds tests guard it."""
    nbytes = n * np.dtype(dtype).itemsize
    buffer = np.empty(nbytes + _scratch.ALIGN, np.uint8)
    start = -buffer.ctypes.data % _scratch.ALIGN
    scratch = buffer[start:start + nbytes].view(dtype)
    if _scratch.poison:
        scratch.view(np.uint8).fill(0xFF)
    return scratch


@functools.lru_cache(maxsize=64)
def _uniform_weights(size: int) -> np.ndarray:
    """A float output's mean of `size` as correlation weights (read-only)."""
    weights = np.full(size, 1.0 / size)
    weights.flags.writeable = False
    return weights


def _as_3d(a: np.ndarray, axis: int):
    """`a` as an (outer, n, inner) view with unit stride along inner, or None
    if that needs a copy."""
    outer = math.prod(a.shape[:axis])
    inner = math.prod(a.shape[axis + 1:])
    v = a.view()
    try:
        v.shape = (outer, a.shape[axis], inner)
    except AttributeError:
        return None
    if inner > 1 and v.strides[2] != a.itemsize or inner == 1 and v.strides[1] != a.itemsize:
        return None
    return v


# Down the rows: a block of columns whose window of L rows stays in L2
# (about 256 KiB, 2-8 KiB per row; measured on 2048² and 256³ float32), and
# border rows gathered at a time.
_DOWN_WINDOW_BYTES = 1 << 18
_DOWN_PIECE = 32


def _pass_in_place(src, weights, axis, before, rule, cval, out, ctype, workers) -> bool:
    """A float 1-D pass on the SIMD kernels reading `src` in place (no padded
    copy): only the border windows are gathered. False if `src` is not a
    native `ctype` array whose rows along the contiguous axis have unit stride."""
    if src.dtype != ctype or not src.dtype.isnative or not src.flags.aligned:
        return False
    s3 = _as_3d(src, axis)
    if s3 is None:
        return False
    outer, n, inner = s3.shape
    L = len(weights)
    o3 = _as_3d(out, axis) if out.dtype == ctype and out.dtype.isnative \
        and out.flags.aligned and not np.may_share_memory(src, out) else None
    result = None
    if o3 is None:
        result = _memory.empty(src.shape, ctype, apart_from=src)
        o3 = result.reshape(s3.shape)
    w = _kernel_as(weights, ctype)
    fill = np.full(1, cval, ctype)
    index = _padding.index_map(n, before, L - 1 - before, rule)
    stream = _core.streams(o3.nbytes, src.nbytes)   # more than the caches hold
    if inner == 1:
        rows_in, rows_out = s3[:, :, 0], o3[:, :, 0]
        segment = _along_scratch(n, L, before)
        chunks = _parallel.chunks_of(outer, n * L, workers)
        _parallel.run_work(lambda scratch, r0, r1: _core.ndimage_correlate_along_fast(
            rows_in, index, before, fill, w, rows_out, scratch, r0, r1, stream),
            chunks, outer * n * L, workers, scratch=lambda: np.empty(segment, ctype))
    else:
        # Threads share the columns, never the rows: a chunk of rows would
        # re-read L - 1 rows of input beyond its own.
        block = _down_block(L, ctype)
        cols = max(1, _parallel.CHUNK_WORK // (n * L * block)) * block
        chunks = [(o, c, min(c + cols, inner)) for o in range(outer)
                  for c in range(0, inner, cols)]
        _parallel.run_work(lambda scratch, o, c0, c1: _core.ndimage_correlate_down_fast(
            s3[o, :, c0:c1], index, before, fill, w, o3[o, :, c0:c1], scratch, _DOWN_PIECE,
            block, 0, n, stream),
            chunks, outer * n * inner * L, workers,
            scratch=lambda: np.empty((_DOWN_PIECE + L - 1) * block, ctype))
    if result is not None:
        _store(result, out)
    return True


# Small passes (a filter in a loop over small images) repeat the same shapes,
# weights and boundary: their index map, weights in the compute type, fill and
# scratch are kept in a _core.SmallPass, keyed by those, and the pass is one
# core call on the calling thread, without _pass_in_place's layout and chunk
# planning. The same core loops, so the same bits.

_pass_plans: dict = {}


def _pass_small(src, weights, axis, before, rule, cval, out, ctype) -> bool:
    """_pass_in_place of less than MIN_WORK_PER_THREAD multiply-adds between
    C-contiguous native arrays of the compute type, from a kept
    _core.SmallPass. False (nothing done) for any other call, and when the
    kept pass declines (overlapping arrays, or another thread is in it)."""
    if not (src.size * len(weights) < _parallel.MIN_WORK_PER_THREAD and src.dtype == ctype
            and out.dtype == ctype):   # (ctype is native: so are they)
        return False
    sf, of = src.flags, out.flags
    if not (sf.c_contiguous and of.c_contiguous and sf.aligned and of.aligned):
        return False
    return _small_pass(src.shape, ctype, axis, before, rule, cval, weights).run(src, out)


def _small_pass(shape, ctype, axis, before, rule, cval, weights):
    """The kept _core.SmallPass of a pass along `axis` of a C-contiguous
    `shape` array of the compute type."""
    key = (shape, ctype, axis, before, rule, cval, weights.tobytes())
    plan = _pass_plans.get(key)
    if plan is None:
        L = len(weights)
        outer, n = math.prod(shape[:axis]), shape[axis]
        inner = math.prod(shape[axis + 1:])
        block = _down_block(L, ctype)
        scratch = _along_scratch(n, L, before) if inner == 1 \
            else (_DOWN_PIECE + L - 1) * min(block, inner)
        # (the weights are a copy: float64 ones may be the caller's array,
        # changed later)
        plan = _core.SmallPass(_padding.index_map(n, before, L - 1 - before, rule),
                               np.array(_kernel_as(weights, ctype)),
                               _kept_scratch(max(scratch, 1), ctype), cval, outer, n, inner,
                               before, _DOWN_PIECE, block)
        if len(_pass_plans) >= _MAX_SHORT_PATHS:
            _pass_plans.clear()
        _pass_plans[key] = plan
    return plan


def _along_scratch(n: int, L: int, before: int) -> int:
    """Elements of ndimage_correlate_along_fast's scratch: its longest border
    segment (the whole row when the window is wider), for up to
    along_gather_rows() rows."""
    segment = n + L - 1 if n <= L - 1 else L - 1 + max(before, L - 1 - before)
    return segment * _ALONG_GATHER_ROWS


_ALONG_GATHER_ROWS = _core.along_gather_rows()


def _down_block(L: int, ctype) -> int:
    """Columns per block down the rows (see _DOWN_WINDOW_BYTES)."""
    return min(max(_DOWN_WINDOW_BYTES // L, 2048), 8192) // ctype.itemsize


# ------------------------------------------------------------------ N-d correlation

def _padded_double(input, weights_shape, origins, rule, cval) -> np.ndarray:
    """input extended by `rule` for a window of weights_shape at origins, in
    double: one converting copy into the interior, then each axis's borders
    gathered from what is already there (as np.pad extends axis by axis)."""
    befores = [L // 2 + o for L, o in zip(weights_shape, origins)]
    padded = np.empty([n + L - 1 for n, L in zip(input.shape, weights_shape)], np.float64)
    inner = [slice(b, b + n) for b, n in zip(befores, input.shape)]
    padded[tuple(inner)] = input
    done = [slice(None)] * input.ndim
    for ax, (n, L, b) in enumerate(zip(input.shape, weights_shape, befores)):
        if L > 1:
            sources = _padding.index_map(n, b, L - 1 - b, rule)
            for lo, hi in ((0, b), (b + n, n + L - 1)):
                if hi <= lo:
                    continue
                where = done[:ax] + [slice(lo, hi)] + inner[ax + 1:]
                if rule == "constant":
                    padded[tuple(where)] = cval
                    continue
                for q in range(lo, hi):       # one slice copy per border position
                    dst = done[:ax] + [q] + inner[ax + 1:]
                    src = done[:ax] + [b + sources[q]] + inner[ax + 1:]
                    padded[tuple(dst)] = padded[tuple(src)]
    return padded


def _terms(weights, pstrides):
    """(flat offsets, weights) of NI_Correlate's terms in a padded array of
    strides `pstrides` (elements): SciPy drops weights with |w| <= DBL_EPSILON
    and sums the rest in C order."""
    keep = np.abs(weights) > np.finfo(np.float64).eps
    terms = np.argwhere(keep)
    offsets = np.ascontiguousarray(terms @ pstrides if terms.size else np.zeros(0, np.int64),
                                   np.intp)
    return offsets, np.ascontiguousarray(weights[keep], np.float64)


class _ExactPlane(NamedTuple):
    """An exact 2-D correlation of an 8/16-bit image into an 8/16/32-bit
    output (the line kernels' bound holding), resolved once: the image is
    padded in double by the core and each output row truncated into place.
    Kept as a short path for repeated small calls."""
    pad: object              # _core.ndimage_pad_plane for the input type
    kernel: object           # _core.ndimage_correlate_lines_to for the output type
    row_map: np.ndarray
    col_map: np.ndarray
    left: int
    cval: float
    offsets: np.ndarray      # _terms
    weights: np.ndarray
    starts: np.ndarray       # each output row's first term
    dtype: np.dtype          # of the output


def _exact_plane(input, weights, origins, rule, cval, out_dtype):
    """The _ExactPlane of a 2-D exact correlation, or None where it does not serve."""
    src = np.dtype(np.uint8) if input.dtype == np.bool_ else input.dtype
    if input.ndim != 2 or src not in _LINE_INPUTS or out_dtype not in _LINE_OUTPUTS \
            or not input.flags.aligned:
        return None
    (H, W), (kh, kw) = input.shape, weights.shape
    offsets, w = _terms(weights, np.array([W + kw - 1, 1], np.int64))
    if not _exact_in_lines(src, out_dtype, w, rule, cval):
        return None
    top, left = kh // 2 + origins[0], kw // 2 + origins[1]
    return _ExactPlane(_core.ndimage_pad_plane[_LINE_TYPE_NAMES[src]],
                       _core.ndimage_correlate_lines_to[_LINE_TYPE_NAMES[out_dtype]],
                       _padding.index_map(H, top, kh - 1 - top, rule),
                       _padding.index_map(W, left, kw - 1 - left, rule), left, cval,
                       offsets, w, np.arange(H, dtype=np.int64) * (W + kw - 1), out_dtype)


def _run_exact_plane(plan: _ExactPlane, input, out, workers) -> None:
    """plan on `input` into the 2-D `out` (aligned, of plan.dtype)."""
    padded = _scratch.empty("ndimage.plane", (len(plan.row_map), len(plan.col_map)), np.float64)
    plan.pad(input.view(np.uint8) if input.dtype == np.bool_ else input, plan.row_map,
             plan.col_map, plan.left, plan.cval, padded)
    _lines_into(plan.kernel, padded.reshape(-1), plan.starts, plan.offsets, plan.weights, out,
                workers)


def _lines_into(kernel, flat, starts, offsets, weights, out_lines, workers) -> None:
    """kernel (an ndimage_correlate_lines_to) over the rows of the 2-D
    out_lines, split among the workers."""
    lines, n = out_lines.shape
    per_line = n * max(len(weights), 1)
    if per_line * lines < _parallel.MIN_WORK_PER_THREAD:   # one chunk: run_work's call, here
        kernel(flat, starts, offsets, weights, out_lines,
               _scratch.empty("ndimage.line", (n,), np.float64), 0, lines)
        return

    def chunk(scratch, r0, r1):
        kernel(flat, starts, offsets, weights, out_lines, scratch, r0, r1)

    _parallel.run_work(chunk, _parallel.chunks_of(lines, per_line, workers), per_line * lines,
                       workers, scratch=lambda: _scratch.empty("ndimage.line", (n,), np.float64))


def _correlate_exact(input, weights, origins, rule, cval, out, workers):
    """NI_Correlate's sums for any number of dimensions, in double, into `out`.
    Returns the _ExactPlane it ran, if it ran one."""
    if out.flags.aligned:
        plan = _exact_plane(input, weights, origins, rule, cval, out.dtype)
        if plan is not None:
            _run_exact_plane(plan, input, out, workers)
            return plan
    padded = _padded_double(input, weights.shape, origins, rule, cval)
    pstrides = np.array(padded.strides, np.int64) // 8
    offsets, w = _terms(weights, pstrides)
    n_last = input.shape[-1]
    lead = input.shape[:-1]
    starts = np.zeros(lead, np.int64)
    for ax, length in enumerate(lead):
        shape = [1] * len(lead)
        shape[ax] = length
        starts = starts + (np.arange(length, dtype=np.int64) * pstrides[ax]).reshape(shape)
    starts = np.ascontiguousarray(starts.reshape(-1))
    flat = padded.reshape(-1)
    lines = len(starts)
    per_line = n_last * max(len(w), 1)
    if _correlate_lines_into(input.dtype, flat, starts, offsets, w, rule, cval, out, workers):
        return None
    # Lines in pieces of ~64 KiB of doubles, each stored into `out` while in cache.
    piece = max(1, min(lines, (1 << 16) // (8 * max(n_last, 1))))
    out_lines = out.reshape(lines, n_last) if out.flags.c_contiguous else None  # any alignment:
    # _store writes through NumPy
    result = None if out_lines is not None else np.empty((lines, n_last), np.float64)

    def chunk(scratch, r0, r1):
        for a in range(r0, r1, piece):
            b = min(a + piece, r1)
            if result is not None:
                _core.ndimage_correlate_lines(flat, starts[a:b], offsets, w, result[a:b], 0, b - a)
            else:
                _core.ndimage_correlate_lines(flat, starts[a:b], offsets, w, scratch, 0, b - a)
                _store(scratch[:b - a], out_lines[a:b])

    chunks = _parallel.chunks_of(lines, per_line, workers)
    _parallel.run_work(chunk, chunks, per_line * lines, workers,
                       scratch=lambda: np.empty((piece, n_last), np.float64))
    if result is not None:
        _store(result.reshape(input.shape), out)
    return None


def _correlate_lines_into(src, flat, starts, offsets, w, rule, cval, out, workers) -> bool:
    """_correlate_exact's lines straight into an 8/16/32-bit integer `out`,
    each truncated from double scratch in the core, where the line kernels'
    bound holds (_exact_in_lines): no double result, no NumPy cast per piece.
    Returns False, doing nothing, where it does not apply."""
    src = np.dtype(np.uint8) if src == np.bool_ else src
    if out.dtype not in _LINE_OUTPUTS or not out.flags.aligned \
            or not _exact_in_lines(src, out.dtype, w, rule, cval):
        return False
    lines, n_last = len(starts), out.shape[-1]
    out_lines = out.view()
    try:
        out_lines.shape = (lines, n_last)
    except AttributeError:     # (rows that no strides reach)
        return False
    _lines_into(_core.ndimage_correlate_lines_to[_LINE_TYPE_NAMES[out.dtype]], flat, starts,
                offsets, w, out_lines, workers)
    return True


def _computes_into(target, ctype, input) -> bool:
    """Can the core write a plane of `ctype` straight into `target`?"""
    return target.dtype == ctype and target.dtype.isnative and target.flags.c_contiguous \
        and target.flags.aligned and not np.may_share_memory(target, input)


def _correlate_fast(input, weights, origins, rule, cval, out, ctype, workers):
    """A filter over at most two axes, on the SIMD kernels: every plane of the
    stack is one 2-D correlation with index maps (no padded copy). For a 2-D
    input written straight into a C-contiguous `out` of the compute type,
    returns the _ShortPath that repeats the call (else None)."""
    ndim = input.ndim
    filtered = [ax for ax in range(ndim) if weights.shape[ax] > 1]
    if len(filtered) == 2:
        ay, ax = filtered
    elif len(filtered) == 1:
        ax = filtered[0]
        ay = ax - 1 if ax == ndim - 1 else ndim - 1   # the filter runs down the rows or along them
        if ay < 0:                                    # 1-D input: a single row
            ay = None
    else:
        ay, ax = (ndim - 2 if ndim > 1 else None), ndim - 1
    if ay is not None and ay > ax:
        ay, ax = ax, ay
    plane_axes = [a for a in (ay, ax) if a is not None]
    others = [a for a in range(ndim) if a not in plane_axes]
    kernel = weights.reshape([weights.shape[a] for a in plane_axes] or [1])
    kernel = kernel.reshape((1,) * (2 - kernel.ndim) + kernel.shape)
    kernel = np.where(np.abs(kernel) <= np.finfo(np.float64).eps, 0, kernel)  # SciPy drops these
    kernel = _kernel_as(kernel, ctype)
    src = np.moveaxis(input, others + plane_axes, range(ndim))
    dst = np.moveaxis(out, others + plane_axes, range(ndim))
    if ay is None:
        src, dst = src[..., None, :], dst[..., None, :]
    H, W = src.shape[-2:]
    M, N = kernel.shape
    oy = origins[ay] if ay is not None else 0
    ox = origins[ax]
    top, left = M // 2 + oy, N // 2 + ox
    row_map = _padding.index_map(H, top, M - 1 - top, rule)
    col_map = _padding.index_map(W, left, N - 1 - left, rule)
    if input.ndim == 2 and _computes_into(out, ctype, input):
        # one plane straight into `out` (the moveaxis above kept its axes)
        _correlate_plane_into(input if input.dtype == ctype else input.astype(ctype), kernel,
                              row_map, col_map, left, top, cval, out, workers)
        fill = np.full(1, cval, ctype)
        fill.flags.writeable = False
        strip_rows = _methods._strip_rows(H, len(col_map), ctype.itemsize)
        return _ShortPath(kernel, row_map, col_map, left, top, cval, out.dtype, ctype,
                          _methods.correlate_plane_for(ctype), fill,
                          (strip_rows + M - 1, len(col_map)), H * W * M * N)
    plane_out = np.empty((H, W), ctype)
    for index in np.ndindex(*src.shape[:-2]):
        plane = src[index]
        if plane.dtype != ctype:
            plane = plane.astype(ctype)
        target = dst[index]
        direct = _computes_into(target, ctype, input)
        result = target if direct else plane_out
        _correlate_plane_into(plane, kernel, row_map, col_map, left, top, cval, result, workers)
        if not direct:
            _store(result, target)
    return None


def _correlate_real(input, weights, out, rule, cval, origins, workers):
    """Real input, float64 weights with input.ndim dimensions, validated origins.
    Returns _correlate_fast's _ShortPath or the _ExactPlane that took the
    call, else None."""
    _check_real_output(out)
    if input.size == 0:
        return None
    input = _readable(input)
    ctype = _compute_type(input.dtype, out.dtype)
    filtered = sum(1 for L in weights.shape if L > 1)
    if ctype is not None and filtered <= 2 and input.ndim >= 1:
        dropped = bool((np.abs(weights) <= np.finfo(np.float64).eps).any())
        # SciPy skips tiny weights, so a NaN or inf under one does not spread;
        # only the exact path skips them.
        if not dropped or np.isfinite(input).all():
            short = _correlate_fast(input, weights, origins, rule, cval, out, ctype, workers)
            # (with dropped weights the path depends on the input's values)
            return None if dropped else short
    if input.ndim == 0:
        _correlate_exact(input.reshape(1), weights.reshape(1), [0], rule, cval,
                         out.reshape(1), workers)
        return None
    return _correlate_exact(input, weights, origins, rule, cval, out, workers)


def _complex_via_real_parts(func, input, weights, output, cval, **kwargs):
    """A complex filter as real ones (SciPy's way): `func(input, weights, output=, cval=, ...)`."""
    complex_input = input.dtype.kind == "c"
    complex_weights = weights.dtype.kind == "c"
    if complex_input and complex_weights:
        func(input.real, weights.real, output=output.real, cval=np.real(cval), **kwargs)
        output.real -= func(input.imag, weights.imag, output=None, cval=np.imag(cval), **kwargs)
        func(input.real, weights.imag, output=output.imag, cval=np.real(cval), **kwargs)
        output.imag += func(input.imag, weights.real, output=None, cval=np.imag(cval), **kwargs)
    elif complex_input:
        func(input.real, weights, output=output.real, cval=np.real(cval), **kwargs)
        func(input.imag, weights, output=output.imag, cval=np.imag(cval), **kwargs)
    else:
        if np.iscomplexobj(cval):
            raise ValueError("Cannot provide a complex-valued cval when the input is real.")
        func(input, weights.real, output=output.real, cval=cval, **kwargs)
        func(input, weights.imag, output=output.imag, cval=cval, **kwargs)
    return output


def _weights_array(weights) -> np.ndarray:
    w = np.asarray(weights)
    if w.dtype.kind not in "biufc":
        raise TypeError(f"weights must be numbers, got an array of {w.dtype}")
    return w


# ------------------------------------------------------------------ repeated calls
# correlate/convolve of a 2-D float32/float64 array in a loop repeat the same
# shapes, weights and scalar arguments: everything that follows from them
# (validation, origins, modes, index maps, the kernel in the compute type) is
# resolved once by the full path and kept, keyed by those arguments and the
# weights' bytes. A later call with the same key allocates its output and makes
# the full path's one core call with the kept arguments: the same bits, for
# about a quarter of the time on small images (32 x 32, 3 x 3: 83 -> 20 us).

class _ShortPath(NamedTuple):
    kernel: np.ndarray      # in the compute type
    row_map: np.ndarray
    col_map: np.ndarray
    left: int
    top: int
    cval: float
    dtype: np.dtype         # of the output
    ctype: np.dtype         # the compute type (= the input's)
    correlate: object       # _core.correlate_plane for it
    fill: np.ndarray        # cval in it, the one element correlate reads
    strip_shape: tuple      # of _methods.correlate_into's strips
    work: int               # multiply-adds of a call


_short_paths: dict = {}
_MAX_SHORT_PATHS = 256
_SHORT_MAX_TAPS = 256
_SHORT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
_SHORT_INPUTS = frozenset(_SHORT_TYPES) | _LINE_INPUTS     # (8/16-bit: an _ExactPlane)


def _short_key(input, weights, output, mode, cval, origin, convolution, axes):
    """The key of a call the short path may repeat, or None."""
    if not (type(input) is np.ndarray and type(weights) is np.ndarray and output is None
            and axes is None and input.ndim == 2 and weights.ndim == 2
            and input.dtype in _SHORT_INPUTS and weights.dtype in _SHORT_TYPES
            and weights.size <= _SHORT_MAX_TAPS and type(mode) is str
            and type(cval) in (int, float) and type(origin) is int):
        return None
    if cval == 0 and math.copysign(1.0, cval) < 0:   # (as _plain: -0.0 is not 0.0's key)
        return None
    return (input.shape, input.dtype, weights.shape, weights.dtype, weights.tobytes(), mode,
            type(cval), cval, origin, convolution)


def _run_short(short, input, workers) -> np.ndarray:
    if isinstance(short, _ExactPlane):
        out = np.empty(input.shape, short.dtype)
        if input.flags.aligned:
            _run_exact_plane(short, input, out, _parallel.resolve_workers(workers))
            return out
        return None
    if short.work < _parallel.MIN_WORK_PER_THREAD:
        flags = input.flags
        if flags.c_contiguous and flags.aligned:
            # one core call here, as _methods.correlate_into makes it for one
            # chunk (its own argument handling is most of a 16 x 16 call)
            _parallel.resolve_workers(workers)
            out = np.empty(input.shape, short.dtype)
            short.correlate(input, short.row_map, short.col_map, short.left, short.fill,
                            short.kernel, out,
                            _scratch.empty("direct.strip", short.strip_shape, short.ctype),
                            0, input.shape[0], False)
            return out
    out = _memory.zeros(input.shape, short.dtype, apart_from=input)
    _correlate_plane_into(input, short.kernel, short.row_map, short.col_map, short.left,
                          short.top, short.cval, out, _parallel.resolve_workers(workers))
    return out


def _correlate_or_convolve(input, weights, output, mode, cval, origin, convolution, axes,
                           workers):
    key = _short_key(input, weights, output, mode, cval, origin, convolution, axes)
    if key is not None:
        short = _short_paths.get(key)
        if short is not None:
            result = _run_short(short, input, workers)
            if result is not None:
                return result
    input = _as_input(input)
    weights = _weights_array(weights)
    if input.dtype.kind == "c" or weights.dtype.kind == "c":
        if weights.dtype.kind == "c" and not convolution:
            weights = weights.conj()
        output = _get_output(output, input, complex_output=True)
        return _complex_via_real_parts(
            _correlate_or_convolve, input, weights, output, cval, mode=mode, origin=origin,
            convolution=convolution, axes=axes, workers=workers)
    workers = _parallel.resolve_workers(workers)
    axes = _check_axes(axes, input.ndim)
    weights = np.asarray(weights, np.float64)
    if len(axes) < input.ndim:
        if weights.ndim != len(axes):
            raise NdimageArgumentError(f"weights.ndim ({weights.ndim}) must match "
                                       f"len(axes) ({len(axes)})")
        weights = np.expand_dims(weights, tuple(a for a in range(input.ndim) if a not in axes))
    origins = _normalize_sequence(origin, len(axes))
    if len(axes) < input.ndim:
        full = [0] * input.ndim
        for o, ax in zip(origins, axes):
            full[ax] = o
        origins = full
    wshape = [s for s in weights.shape if s > 0]
    if len(wshape) != input.ndim:
        raise NdimageArgumentError(f"weights.ndim ({len(wshape)}) must match "
                                   f"len(axes) ({len(axes)})")
    origins = [operator.index(o) if not isinstance(o, (bool, np.bool_)) else int(o)
               for o in origins]
    if convolution:
        weights = weights[(slice(None, None, -1),) * weights.ndim]
        origins = [-o - (1 if not weights.shape[i] & 1 else 0) for i, o in enumerate(origins)]
    message = ("Invalid origin; origin must satisfy -(weights.shape[k] // 2) <= origin[k] "
               "<= (weights.shape[k]-1) // 2")
    origins = [_check_origin(o, L, message) for o, L in zip(origins, wshape)]
    output = _get_output(output, input)
    if not isinstance(mode, str) and isinstance(mode, Iterable):
        raise NdimageArgumentError("A sequence of modes is not supported")
    rule = _extend_mode(mode)
    cval = _real_cval(cval)
    target = output
    if np.may_share_memory(input, output):   # results go to a new array first, as in SciPy
        target = np.zeros(output.shape, output.dtype)
    short = _correlate_real(input, np.ascontiguousarray(weights), target, rule, cval, origins,
                            workers)
    if target is not output:
        output[...] = target
    elif key is not None and short is not None and (isinstance(short, _ExactPlane)
                                                     or short.ctype == input.dtype):
        if len(_short_paths) >= _MAX_SHORT_PATHS:
            _short_paths.clear()
        _short_paths[key] = short
    return output


def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *,
              axes=None, workers=None):
    """Multidimensional correlation, as scipy.ndimage.correlate.

    out[i] = sum_k weights[k] * input[i + k - (weights.shape // 2 + origin)], the
    input extended beyond its edges by `mode` ('reflect', 'constant', 'nearest',
    'mirror', 'wrap', and the 'grid-constant', 'grid-mirror', 'grid-wrap' aliases).
    `weights` has one dimension per axis in `axes` (default: all axes of input);
    `origin` is an int or one per filtered axis. `output` is an array or a dtype
    (default: input's dtype); complex inputs or weights give complex output.
    Filters over one or two axes with float outputs run on the SIMD kernels; all
    others (3-D+ weights, integer outputs) on the exact double-precision engine.
    ``workers`` (keyword-only): threads; results do not depend on it.
    """
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, False, axes,
                                  workers)


def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *,
             axes=None, workers=None):
    """Multidimensional convolution, as scipy.ndimage.convolve: correlate with the
    weights flipped along every axis and each origin negated (minus one for an
    even weight length). Arguments as in `correlate`."""
    return _correlate_or_convolve(input, weights, output, mode, cval, origin, True, axes,
                                  workers)


# ------------------------------------------------------------------ repeated small filters
# The 1-D-pass filters run in loops over small images too, where their Python
# (argument checks, the planning of each pass, the output's making) was most
# of a call: 4-6 us a pass at 16 x 16, where SciPy takes 5. A call with plain
# arguments (an aligned C-contiguous float or 8/16-bit image whose passes may
# be small, scalars and lists of numbers, an output that is None, a dtype or
# an array) is keyed by them. After its full path, its passes are kept if
# each was one core call (_small_pass, _small_lines), and a later call with
# the key makes the same core calls into its output: the same bits.

class _KeptFilter(NamedTuple):
    dtype: np.dtype     # of the output (a new one's; every pass writes it)
    passes: tuple       # run(src, dst) -> bool a pass; False: it declined, nothing done
    summed: bool        # every pass filters the input, and their results are added


_kept_filters: dict = {}    # key -> _KeptFilter, or None: the call is not kept
_KEPT_INPUTS = frozenset(np.dtype(c) for c in "bBhHfd")


class _NotPlain(Exception):
    pass


_PLAIN_ITEMS = frozenset((int, float, str, type(None)))


def _plain(value):
    """`value` as part of a kept filter's key: its type with it, or raise
    _NotPlain. (Types tell 3 from 3.0, and arrays are keyed by their bytes;
    a scalar -0.0 is not plain: it equals 0.0 but may give a sum the other
    sign.)"""
    t = type(value)
    if t is str or t is int or value is None:
        return t, value
    if t is float:
        if value == 0.0 and math.copysign(1.0, value) < 0:
            raise _NotPlain
        return t, value
    if t is list or t is tuple:   # of numbers, strings, None
        items = tuple(value)
        types = tuple(map(type, items))
        if not _PLAIN_ITEMS.issuperset(types) or 0.0 in items and any(
                math.copysign(1.0, v) < 0 for v in items if v == 0.0):
            raise _NotPlain
        return t, items, types
    if t is np.ndarray and value.dtype.kind in "biuf":
        return t, value.dtype, value.shape, value.tobytes()
    if isinstance(value, (np.floating, np.integer)):
        if value == 0 and np.signbit(value):
            raise _NotPlain
        return t, value
    raise _NotPlain


def _kept_key(input, output, mode, cval, workers, taps, *arguments):
    """The key of a call kept filters may repeat (`arguments`: the name of
    the filter and its own), or None. `taps`: a bound below the taps of
    each of its passes, so that a larger call, whose passes are not small,
    is not keyed (2 us)."""
    if not (type(input) is np.ndarray and input.dtype in _KEPT_INPUTS
            and 0 < input.size * taps < _parallel.MIN_WORK_PER_THREAD
            and (type(cval) is float or type(cval) is int)
            and (workers is None or type(workers) is int)):
        return None
    flags = input.flags
    if not (flags.c_contiguous and flags.aligned):
        return None
    if output is None or type(output) is type or isinstance(output, np.dtype):
        target = output
    elif type(output) is np.ndarray:     # (its shape and layout: _run_kept checks them)
        target = output.dtype
    else:
        return None
    try:
        return (input.shape, input.dtype, type(output), target, _plain(mode), _plain(cval),
                workers, *map(_plain, arguments))
    except _NotPlain:
        return None


def _taps(weights) -> int:
    """len(weights) where that is cheap and meaningful, else 1 (_kept_key's bound)."""
    t = type(weights)
    return len(weights) if (t is list or t is tuple or t is np.ndarray and weights.ndim == 1) \
        else 1


def _gaussian_taps(sigma, truncate, radius) -> int:
    """gaussian_filter's taps for a scalar sigma (and truncate, no radius),
    else 1 (_kept_key's bound)."""
    if type(sigma) in (int, float) and type(truncate) in (int, float) and radius is None \
            and 0 < sigma * truncate < 1e9:
        return 2 * int(truncate * sigma + 0.5) + 1
    return 1


def _run_kept(key, input, output=None):
    """The call `key` made by its kept filter from `input` into `output` (an
    array, or a new one), or None (no key, not kept, an output array the
    kernels cannot write in place or that shares memory with the input, or a
    pass declined: another thread is in it)."""
    kept = None if key is None else _kept_filters.get(key)
    if kept is None:
        return None
    passes = kept.passes
    if type(output) is np.ndarray:
        flags = output.flags
        if not (output.shape == input.shape and flags.c_contiguous and flags.aligned
                and flags.writeable) or np.may_share_memory(input, output):
            return None
        out = output
    else:
        out = np.empty(input.shape, kept.dtype)
    if len(passes) == 1:
        return out if passes[0](input, out) else None
    other = np.empty(input.shape, kept.dtype)
    if kept.summed:
        if not passes[0](input, out):
            return None
        for run in passes[1:]:
            if not run(input, other):
                return None
            out += other
        return out
    src = input
    for i, run in enumerate(passes):
        dst = out if (len(passes) - 1 - i) % 2 == 0 else other   # (the last into out)
        if not run(src, dst):
            return None
        src = dst
    return out


def _keeping(key) -> bool:
    """Whether the call `key` is still to be kept (or found not keepable)."""
    return key is not None and key not in _kept_filters


def _keep(key, input, output, passes, summed=False) -> None:
    """Keep the filter the call `key` ran from `input` into `output` as
    `passes` (weights or None, size, axis, before, rule, cval each, in
    _pass_1d's terms), if each pass was one core call; else remember that
    it is not kept. The first pass (every pass, if summed) reads the input's
    dtype, the others the output's."""
    runs = []
    for i, (weights, size, axis, before, rule, cval) in enumerate(passes):
        src = input.dtype if i == 0 or summed else output.dtype
        run = _kept_pass(src, output.dtype, output.shape, weights, size, axis, before, rule,
                         cval)
        if run is None:
            runs = []
            break
        runs.append(run)
    if len(_kept_filters) >= _MAX_SHORT_PATHS:
        _kept_filters.clear()
    _kept_filters[key] = _KeptFilter(output.dtype, tuple(runs), summed) if runs else None


def _kept_pass(src, out, shape, weights, size, axis, before, rule, cval):
    """run(source, dst) making _pass_1d's pass from a C-contiguous array of
    dtype `src` into one of dtype `out`, both of `shape`, through the core
    call its small path makes, or None where it takes another route."""
    ctype = _compute_type(src, out)
    if ctype is not None:
        taps = _uniform_weights(size) if weights is None else weights
        if out != ctype or math.prod(shape) * len(taps) >= _parallel.MIN_WORK_PER_THREAD:
            return None
        small = _small_pass(shape, ctype, axis, before, rule, cval, taps)
        if src == ctype:
            return small.run

        def run(source, dst):      # converted first, as _pass_1d does (the same C casts)
            return small.run(source.astype(ctype), dst)
        return run
    if len(shape) != 2:
        return None
    plan = _line_plan(src, out, weights, size, shape[axis], before, rule, cval)
    kept = None if plan is None else _small_lines(src, out, shape, weights, size, axis,
                                                  before, cval, plan)
    return None if kept is None else kept.run


# ------------------------------------------------------------------ 1-D filters

def correlate1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
                workers=None):
    """1-D correlation along `axis` of an N-d array, as scipy.ndimage.correlate1d:
    out[i] = sum_k weights[k] * input[i + k - (len(weights) // 2 + origin)]."""
    key = _kept_key(input, output, mode, cval, workers, _taps(weights), "correlate1d", weights,
                    axis, origin)
    kept = _run_kept(key, input, output)
    if kept is not None:
        return kept
    input = _as_input(input)
    weights = _weights_array(weights)
    if input.dtype.kind == "c" or weights.dtype.kind == "c":
        if weights.dtype.kind == "c":
            weights = weights.conj().astype(np.complex128, copy=False)
        output = _get_output(output, input, complex_output=True)
        return _complex_via_real_parts(correlate1d, input, weights, output, cval, axis=axis,
                                       mode=mode, origin=origin, workers=workers)
    output = _get_output(output, input, overwritten=True)
    weights = np.asarray(weights, np.float64)
    if weights.ndim != 1 or weights.shape[0] < 1:
        raise NdimageArgumentError("no filter weights given")
    workers = _checked_workers(workers)
    axis = normalize_axis_index(axis, input.ndim)
    origin = _check_origin(origin, len(weights),
                           "Invalid origin; origin must satisfy -(len(weights) // 2) <= origin "
                           "<= (len(weights)-1) // 2")
    rule = _extend_mode(mode)
    cval = _real_cval(cval)
    weights = np.ascontiguousarray(weights)
    _pass_1d(input, weights, 0, axis, rule, cval, origin, output, workers)
    if _keeping(key):
        _keep(key, input, output, [(weights, 0, axis, len(weights) // 2 + origin, rule, cval)])
    return output


def convolve1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
               workers=None):
    """1-D convolution along `axis`, as scipy.ndimage.convolve1d: correlate1d with
    the weights reversed and the origin negated (minus one for an even length)."""
    weights = _weights_array(weights)
    if weights.ndim != 1:
        raise NdimageArgumentError("no filter weights given")
    weights = weights[::-1]
    origin = -operator.index(origin)
    if not weights.shape[0] & 1:
        origin -= 1
    if weights.dtype.kind == "c":
        weights = weights.conj()    # undoes correlate1d's conjugate
    return correlate1d(input, weights, axis, output, mode, cval, origin, workers=workers)


def uniform_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
                     workers=None):
    """Mean over `size` neighbours along `axis`, as scipy.ndimage.uniform_filter1d.
    Integer outputs use SciPy's running sum (bitwise equal); float outputs sum
    each window directly (equal within rounding)."""
    key = _kept_key(input, output, mode, cval, workers, size if type(size) is int else 1,
                    "uniform_filter1d", size, axis, origin)
    kept = _run_kept(key, input, output)
    if kept is not None:
        return kept
    input = _as_input(input)
    workers = _checked_workers(workers)
    axis = normalize_axis_index(axis, input.ndim)
    size = operator.index(size)
    if size < 1:
        raise NdimageArgumentError("incorrect filter size")
    complex_output = input.dtype.kind == "c"
    output = _get_output(output, input, complex_output=complex_output, overwritten=True)
    origin = operator.index(origin)
    if size // 2 + origin < 0 or size // 2 + origin >= size:
        raise ValueError("invalid origin")
    rule = _extend_mode(mode)
    if not complex_output:
        cval = _real_cval(cval)
        _pass_1d(input, None, size, axis, rule, cval, origin, output, workers)
        if _keeping(key):
            _keep(key, input, output, [(None, size, axis, size // 2 + origin, rule, cval)])
    else:
        _pass_1d(input.real, None, size, axis, rule, float(np.real(cval)), origin, output.real,
                 workers)
        _pass_1d(input.imag, None, size, axis, rule, float(np.imag(cval)), origin, output.imag,
                 workers)
    return output


def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None,
                   workers=None):
    """Multidimensional mean filter, as scipy.ndimage.uniform_filter: one
    uniform_filter1d pass per axis (of `axes`) with size > 1, each written into
    the output and read back by the next. `size`, `origin`, `mode` may be per axis."""
    key = _kept_key(input, output, mode, cval, workers, 1, "uniform_filter", size, origin,
                    axes)
    kept = _run_kept(key, input, output)
    if kept is not None:
        return kept
    input = _as_input(input)
    output = _get_output(output, input, complex_output=input.dtype.kind == "c",
                         overwritten=True)
    axes = _check_axes(axes, input.ndim)
    sizes = _normalize_sequence(size, len(axes))
    origins = _normalize_sequence(origin, len(axes))
    modes = _normalize_sequence(mode, len(axes))
    passes = [(ax, None, int(s), o, m) for ax, s, o, m in zip(axes, sizes, origins, modes)
              if s > 1]
    if passes:
        made = _run_passes(input, output, passes, cval, workers)
        if _keeping(key):
            _keep(key, input, output, made)
    else:
        output[...] = input[...]
    return output


def _gaussian_kernel1d(sigma, order, radius) -> np.ndarray:
    """The sampled Gaussian (order 0, normalized to sum 1) or its order-th
    derivative on -radius..radius, computed with the same floating-point
    operations as SciPy so that the weights agree bit for bit."""
    if order < 0:
        raise ValueError("order must be non-negative")
    sigma2 = sigma * sigma
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / sigma2 * x ** 2)
    phi = phi / phi.sum()
    if order == 0:
        return phi
    # The derivative is q(x) * phi(x) with a polynomial q: q -> q' + q * p',
    # p'(x) = -x / sigma2, applied `order` times to the coefficients of q.
    powers = np.arange(order + 1)
    q = np.zeros(order + 1)
    q[0] = 1
    step = np.diag(powers[1:], 1) + np.diag(np.ones(order) / -sigma2, -1)
    for _ in range(order):
        q = step.dot(q)
    q = (x[:, None] ** powers).dot(q)
    return q * phi


def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0,
                      truncate=4.0, *, radius=None, workers=None):
    """1-D Gaussian filter (or its order-th derivative) along `axis`, as
    scipy.ndimage.gaussian_filter1d: radius = int(truncate * sigma + 0.5) unless
    `radius` is given."""
    weights = _gaussian_weights(sigma, order, truncate, radius)
    return correlate1d(input, weights, axis, output, mode, cval, 0, workers=workers)


def _gaussian_weights(sigma, order, truncate, radius) -> np.ndarray:
    """The correlation weights of gaussian_filter1d (the kernel reversed)."""
    sd = float(sigma)
    lw = int(truncate * sd + 0.5)
    if radius is not None:
        lw = radius
    if not isinstance(lw, numbers.Integral) or lw < 0:
        raise ValueError("Radius must be a nonnegative integer.")
    # SciPy computes with sigma and order as given: their types are part of the key
    key = (type(sigma), sigma, type(order), order, lw)
    try:
        weights = _gaussian_kept.get(key)
    except TypeError:   # an unhashable sigma (a 0-d array)
        return _gaussian_kernel1d(sigma, order, lw)[::-1]
    if weights is None:
        weights = _gaussian_kernel1d(sigma, order, lw)[::-1]
        weights.flags.writeable = False
        if len(_gaussian_kept) >= 256:
            _gaussian_kept.clear()
        _gaussian_kept[key] = weights
    return weights


# _gaussian_weights's results: a filter in a loop samples the same Gaussians
# (a fifth of a 16 x 16 gaussian_filter). Read-only.
_gaussian_kept: dict = {}


def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0,
                    *, radius=None, axes=None, workers=None):
    """Multidimensional Gaussian filter, as scipy.ndimage.gaussian_filter: one
    gaussian_filter1d pass per axis (of `axes`) with sigma > 1e-15, each written
    into the output and read back by the next. `sigma`, `order`, `mode`,
    `radius` may be per axis."""
    key = _kept_key(input, output, mode, cval, workers, _gaussian_taps(sigma, truncate, radius),
                    "gaussian_filter", sigma, order, truncate, radius, axes)
    kept = _run_kept(key, input, output)
    if kept is not None:
        return kept
    input = _as_input(input)
    output = _get_output(output, input, overwritten=True)
    axes = _check_axes(axes, input.ndim)
    n = len(axes)
    orders = _normalize_sequence(order, n)
    sigmas = _normalize_sequence(sigma, n)
    modes = _normalize_sequence(mode, n)
    radii = _normalize_sequence(radius, n)
    passes = [(axes[i], _gaussian_weights(sigmas[i], orders[i], truncate, radii[i]), 0, 0,
               modes[i]) for i in range(n) if sigmas[i] > 1e-15]
    if passes:
        made = _run_passes(input, output, passes, cval, workers)
        if _keeping(key):
            _keep(key, input, output, made)
    else:
        output[...] = input[...]
    return output


def _constant_weights(values) -> np.ndarray:
    """Weights a filter always uses, made once (a list made into an array
    costs about 1 us of a 10 us call on a small image)."""
    weights = np.array(values, np.float64)
    weights.flags.writeable = False
    return weights


_DIFFERENCE = _constant_weights([-1, 0, 1])
_SOBEL_SMOOTH = _constant_weights([1, 2, 1])
_PREWITT_SMOOTH = _constant_weights([1, 1, 1])
_SECOND_DIFFERENCE = _constant_weights([1, -2, 1])


def _derivative_filter(name, input, axis, output, mode, cval, derivative, smooth, workers):
    key = _kept_key(input, output, mode, cval, workers, 3, name, axis)
    kept = _run_kept(key, input, output)
    if kept is not None:
        return kept
    input = _as_input(input)
    axis = normalize_axis_index(axis, input.ndim)
    output = _get_output(output, input, overwritten=True)
    modes = _normalize_sequence(mode, input.ndim)
    passes = [(axis, derivative, 0, 0, modes[axis])]
    passes += [(ax, smooth, 0, 0, modes[ax]) for ax in range(input.ndim) if ax != axis]
    made = _run_passes(input, output, passes, cval, workers)
    if _keeping(key):
        _keep(key, input, output, made)
    return output


def _run_passes(input, output, passes, cval, workers) -> list:
    """1-D passes (axis, weights or None for a mean of `size`, size, origin,
    mode) one after the other, each written in the output's dtype and read
    back by the next, as SciPy runs them: the result equals the same
    sequence of correlate1d / uniform_filter1d calls bit for bit. The output
    alternates with one scratch array of its dtype so that no pass reads the
    array it writes (which would need a copy). Returns the passes in _keep's
    terms (empty for complex arrays)."""
    buffers = [output]
    if len(passes) > 1 and output.dtype.isnative and output.flags.c_contiguous:
        buffers = [output, _memory.empty(output.shape, output.dtype, apart_from=output)]
    real = input.dtype.kind != "c" and output.dtype.kind != "c"
    if real:   # each pass's checks here, in uniform_filter1d's / correlate1d's order
        workers = _checked_workers(workers)
    src = input
    made = []
    for i, (axis, weights, size, origin, mode) in enumerate(passes):
        dst = buffers[(len(passes) - 1 - i) % len(buffers)]
        if not real:
            if weights is None:
                uniform_filter1d(src, size, axis, dst, mode, cval, origin, workers=workers)
            else:
                correlate1d(src, weights, axis, dst, mode, cval, origin, workers=workers)
        else:
            if weights is None:
                origin = operator.index(origin)
                if size // 2 + origin < 0 or size // 2 + origin >= size:
                    raise ValueError("invalid origin")
            rule = _extend_mode(mode)
            if i == 0:
                cval = _real_cval(cval)
            if weights is not None:
                weights = np.ascontiguousarray(weights)
            _pass_1d(src, weights, size, axis, rule, cval, origin, dst, workers)
            L = size if weights is None else len(weights)
            made.append((weights, size, axis, L // 2 + origin, rule, cval))
        src = dst
    return made


def prewitt(input, axis=-1, output=None, mode="reflect", cval=0.0, *, workers=None):
    """Prewitt filter, as scipy.ndimage.prewitt: [-1, 0, 1] along `axis`, then
    [1, 1, 1] along every other axis, each pass into the output."""
    return _derivative_filter("prewitt", input, axis, output, mode, cval, _DIFFERENCE,
                              _PREWITT_SMOOTH, workers)


def sobel(input, axis=-1, output=None, mode="reflect", cval=0.0, *, workers=None):
    """Sobel filter, as scipy.ndimage.sobel: [-1, 0, 1] along `axis`, then
    [1, 2, 1] along every other axis, each pass into the output."""
    return _derivative_filter("sobel", input, axis, output, mode, cval, _DIFFERENCE,
                              _SOBEL_SMOOTH, workers)


def generic_laplace(input, derivative2, output=None, mode="reflect", cval=0.0,
                    extra_arguments=(), extra_keywords=None, *, axes=None):
    """Sum over `axes` of derivative2(input, axis, output, mode, cval, *extra_arguments,
    **extra_keywords), as scipy.ndimage.generic_laplace: the first axis writes into
    the output, the others into new arrays of the output's dtype that are added."""
    if extra_keywords is None:
        extra_keywords = {}
    input = _as_input(input)
    output = _get_output(output, input)
    axes = _check_axes(axes, input.ndim)
    if axes:
        modes = _normalize_sequence(mode, len(axes))
        derivative2(input, axes[0], output, modes[0], cval, *extra_arguments, **extra_keywords)
        for i in range(1, len(axes)):
            output += derivative2(input, axes[i], output.dtype, modes[i], cval,
                                  *extra_arguments, **extra_keywords)
    else:
        output[...] = input[...]
    return output


def laplace(input, output=None, mode="reflect", cval=0.0, *, axes=None, workers=None):
    """Laplace filter, as scipy.ndimage.laplace: the sum over `axes` of [1, -2, 1]
    along each axis."""
    key = _kept_key(input, output, mode, cval, workers, 3, "laplace", axes)
    kept = _run_kept(key, input, output)
    if kept is not None:
        return kept

    def derivative2(input, axis, output, mode, cval):
        return correlate1d(input, _SECOND_DIFFERENCE, axis, output, mode, cval, 0,
                           workers=workers)

    output = generic_laplace(input, derivative2, output, mode, cval, axes=axes)
    if _keeping(key):
        axes = _check_axes(axes, output.ndim)
        modes = _normalize_sequence(mode, len(axes))
        _keep(key, input, output, [(_SECOND_DIFFERENCE, 0, ax, 1, _extend_mode(m),
                                    _real_cval(cval)) for ax, m in zip(axes, modes)],
              summed=True)
    return output


def gaussian_laplace(input, sigma, output=None, mode="reflect", cval=0.0, *, axes=None,
                     workers=None, **kwargs):
    """Laplace filter with Gaussian second derivatives, as
    scipy.ndimage.gaussian_laplace; `kwargs` go to gaussian_filter."""
    input = _as_input(input)

    def derivative2(input, axis, output, mode, cval, sigma, **kwargs):
        order = [0] * input.ndim
        order[axis] = 2
        return gaussian_filter(input, sigma, order, output, mode, cval, workers=workers, **kwargs)

    axes = _check_axes(axes, input.ndim)
    sigma = _normalize_sequence(sigma, len(axes))
    if len(axes) < input.ndim:
        full = [0] * input.ndim
        for s, ax in zip(sigma, axes):
            full[ax] = s
        sigma = full
    return generic_laplace(input, derivative2, output, mode, cval, extra_arguments=(sigma,),
                           extra_keywords=kwargs, axes=axes)


def generic_gradient_magnitude(input, derivative, output=None, mode="reflect", cval=0.0,
                               extra_arguments=(), extra_keywords=None, *, axes=None):
    """sqrt of the sum over `axes` of derivative(input, axis, ...)**2, as
    scipy.ndimage.generic_gradient_magnitude: squares and sums in the output's
    dtype, the first axis written into the output."""
    if extra_keywords is None:
        extra_keywords = {}
    input = _as_input(input)
    output = _get_output(output, input)
    axes = _check_axes(axes, input.ndim)
    if axes:
        modes = _normalize_sequence(mode, len(axes))
        derivative(input, axes[0], output, modes[0], cval, *extra_arguments, **extra_keywords)
        np.multiply(output, output, output)
        for i in range(1, len(axes)):
            tmp = derivative(input, axes[i], output.dtype, modes[i], cval, *extra_arguments,
                             **extra_keywords)
            np.multiply(tmp, tmp, tmp)
            output += tmp
        np.sqrt(output, output, casting="unsafe")
    else:
        output[...] = input[...]
    return output


def gaussian_gradient_magnitude(input, sigma, output=None, mode="reflect", cval=0.0, *,
                                axes=None, workers=None, **kwargs):
    """Gradient magnitude with Gaussian first derivatives, as
    scipy.ndimage.gaussian_gradient_magnitude; `kwargs` go to gaussian_filter."""
    input = _as_input(input)

    def derivative(input, axis, output, mode, cval, sigma, **kwargs):
        order = [0] * input.ndim
        order[axis] = 1
        return gaussian_filter(input, sigma, order, output, mode, cval, workers=workers, **kwargs)

    return generic_gradient_magnitude(input, derivative, output, mode, cval,
                                      extra_arguments=(sigma,), extra_keywords=kwargs, axes=axes)

"""How a valid correlation of a padded image is computed: direct, separable
or FFT, and the cost model that chooses among them for method="auto".

A Plan describes the padded image without building it: `image` plus the
index maps (see _padding) and the fill value. The kernel is already flipped
(convolution) or conjugated (correlation).
"""

from __future__ import annotations

import functools
import math
import os
import weakref
from dataclasses import dataclass

import numpy as np

from . import _core, _cost_model, _fft, _memory, _parallel, _scratch

METHODS = ("auto", "direct", "separable", "fft")

def _l2_bytes() -> int | None:
    """The size of CPU 0's L2 cache, from Linux's sysfs; None elsewhere."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in sorted(os.listdir(base)):
            path = os.path.join(base, entry)
            if not entry.startswith("index"):
                continue
            with open(os.path.join(path, "level")) as f:
                level = f.read().strip()
            with open(os.path.join(path, "type")) as f:
                kind = f.read().strip()
            if level == "2" and kind in ("Unified", "Data"):
                with open(os.path.join(path, "size")) as f:
                    text = f.read().strip()
                scale = {"K": 1 << 10, "M": 1 << 20}.get(text[-1:], 1)
                return int(text.rstrip("KM")) * scale
    except (OSError, ValueError):
        pass
    return None


# Rows of padded input gathered at a time: half of L2, so that they stay in
# it beside the rows they are read from and written to. Larger strips redo
# fewer overlapping rows and cut fewer row blocks short (Zen 4, 1 MB L2, one
# thread, 512 KB against 128 KB: a column-strided 1024^2 float64 image, its
# rows gathered, 9x9 and 11x11 1.12-1.15x as fast; the separable path at 9x9
# 1.13-1.17x; in-place calls 0.99-1.01x). 256 KB where L2 is unknown: most
# current cores have 512 KB or more.
_STRIP_BYTES = min(max((_l2_bytes() or 1 << 19) // 2, 1 << 17), 1 << 19)

@dataclass(frozen=True)
class Plan:
    image: np.ndarray      # H x W, result dtype, any strides
    kernel: np.ndarray     # M x N, result dtype, flipped or conjugated already
    row_map: np.ndarray    # padded row -> image row, -1 for the fill
    col_map: np.ndarray    # padded col -> image col, -1 for the fill
    left: int              # padding before image column 0
    top: int               # padding before image row 0
    fill: np.ndarray       # 0-d, result dtype
    out_shape: tuple       # (Ho, Wo) = padded shape - kernel shape + 1
    swapped: bool          # valid mode swapped in1 and in2
    # The image in its own integer type where the result's is a wider
    # integer (`image` is its conversion): _direct's float route reads it.
    source: np.ndarray | None = None


def choose(plan: Plan, method: str) -> str:
    """Resolve "auto", and fall back where a requested method cannot apply."""
    dtype = plan.image.dtype
    if method == "direct":
        return "direct"
    if method == "separable":
        if _rank1_factors(plan.kernel) is None:
            raise ValueError("method='separable' needs a rank-1 (separable) float32 or "
                             "float64 kernel; use method='direct' or 'auto'")
        return "separable"
    if method == "fft":
        return "fft" if dtype.kind not in "iu" or _fft.is_exact_for_integers(plan) else "direct"
    # auto: only float32/float64 have a measured model; direct for the rest.
    if dtype not in (np.float32, np.float64):
        return "direct"
    M, N = plan.kernel.shape
    if direct_by_cost(dtype.itemsize, plan.out_shape, (M, N)):
        return "direct"   # cheaper than the fixed cost of any other method
    best = "direct"
    # Cheap estimates first; the rank-1 test and the NaN scan only when they could matter.
    best_cost, fft_cost, sep_cost = _auto_costs(plan)
    if M > 1 and N > 1 and sep_cost < min(best_cost, fft_cost) \
            and _rank1_factors(plan.kernel) is not None:
        best, best_cost = "separable", sep_cost
    if fft_cost < best_cost:
        best = "fft"
    # Only direct summation propagates NaN/inf like SciPy. (A kernel with
    # rank-1 factors is finite: _rank1_test refuses a non-finite one.)
    if best != "direct" and not (math.isfinite(plan.fill) and _all_finite(plan.image)
                                 and (best == "separable" or _all_finite(plan.kernel))):
        return "direct"
    return best


# "auto" takes the FFT only where the model has it this many times cheaper
# than the best exact-summing method. Its transforms' times swing most with
# the memory traffic of other jobs (a 10 MB tile 1.3-2.6x its modelled
# cost on Zen 4), and its errors scale with the largest term, not with each
# output. Replaying the picks on bench_methods.py's timings (Zen 4, one
# thread; images 64-2048, kernels 3-101, two runs): auto within 1.21x of
# the fastest method everywhere, against 1.57-1.72x with no margin (256^2
# float64 21x21 dense, whose FFT ran 1.6x its model; 1024^2 float64
# 101x101 Gaussian 1.27x). Margins of 1.15-1.3 replay the same; the 1.21x
# are 2048^2 float32 cases whose FFT was that much faster than modelled.
_FFT_MARGIN = 1.2


def _auto_costs(plan: Plan) -> tuple[float, float, float]:
    """The modelled costs of the direct, FFT and separable methods (shapes
    only), the FFT's times _FFT_MARGIN."""
    return _modelled_costs(plan.image.dtype, tuple(plan.out_shape), plan.kernel.shape,
                           len(plan.col_map), _fft.backend_name())


@functools.lru_cache(maxsize=512)
def _modelled_costs(dtype, out_shape, kernel_shape, width, backend):
    """_auto_costs, remembered by shapes (3 us of Python a call: a third of
    auto's own cost on a 64^2 image); `backend` keys the FFT's constants."""
    size = dtype.itemsize
    direct = _cost_model.cost(_cost_model.DIRECT[size],
                              _cost_model.direct_features(out_shape, kernel_shape))
    fft = _FFT_MARGIN * _fft.tile_shape(out_shape, kernel_shape, dtype)[2]
    separable = _cost_model.cost(_cost_model.SEPARABLE[size], _cost_model.separable_features(
        out_shape, kernel_shape, _strip_rows(out_shape[0], width, size)))
    return direct, fft, separable


def direct_from_shapes(plan: Plan) -> bool:
    """True when choose(plan, "auto") picks direct whatever the values: a
    float32/float64 plan whose direct cost is below the FFT's and, unless the
    kernel is a row or a column, below the separable method's (neither the
    rank-1 test nor the NaN scan then runs)."""
    M, N = plan.kernel.shape
    if direct_by_cost(plan.image.dtype.itemsize, plan.out_shape, (M, N)):
        return True
    direct, fft, separable = _auto_costs(plan)
    return fft >= direct and (M == 1 or N == 1 or separable >= min(direct, fft))


def direct_unless_rank1(plan: Plan) -> bool:
    """True when choose(plan, "auto") picks direct for every kernel of the
    plan's shape that is not rank-1: the FFT's modelled cost is not below
    direct's, so only the separable method could win, and only on a rank-1
    kernel (the NaN scan runs only when another method would win)."""
    direct, fft, _ = _auto_costs(plan)
    return fft >= direct


@functools.lru_cache(maxsize=512)
def direct_by_cost(itemsize: int, out_shape, kernel_shape) -> bool:
    """True when direct summation costs less than the fixed cost of any other
    method: then "auto" picks direct from the shapes alone, whatever the data."""
    direct = _cost_model.cost(_cost_model.DIRECT[itemsize],
                              _cost_model.direct_features(out_shape, kernel_shape))
    return direct <= min(_cost_model.SEPARABLE[itemsize]["call"], _cost_model.FFT_MIN_CALL)


def _all_finite(a: np.ndarray) -> bool:
    """np.isfinite(a).all() without an image-sized temporary. A float plane
    with a unit-stride axis goes to the core's exponent test (twice the speed
    of NumPy's sum on float32, which at 1024 x 1024 cost a tenth of a
    separable call); otherwise a finite sum proves it in one pass and an
    overflowing one falls back to a scan a block of rows at a time."""
    if a.ndim == 2 and a.dtype in (np.float32, np.float64):
        plane = a[::-1] if a.strides[0] < 0 else a
        plane = plane[:, ::-1] if plane.strides[1] < 0 else plane
        if a.itemsize in plane.strides:
            return _core.all_finite(plane)
    with np.errstate(all="ignore"):
        if np.isfinite(a.sum()):
            return True
    rows = max(1, (1 << 16) // max(a.shape[1], 1))
    return all(np.isfinite(a[i:i + rows]).all() for i in range(0, a.shape[0], rows))


def run(plan: Plan, method: str, workers: int) -> np.ndarray:
    if method == "fft":
        return _fft.run(plan, workers)
    if method == "separable":
        # A column-major image is read in place as its transpose; the result
        # comes back column-major.
        if _column_major_float(plan.image):
            return _separable_transposed(plan, workers)
        return _separable(plan, workers)
    return _direct(plan.image, plan.kernel, plan, plan.fill, workers)


def _column_major_float(image: np.ndarray) -> bool:
    """A float32/float64 image whose columns are its contiguous (or at least
    its shorter-stride) axis: Fortran order, or a transpose."""
    return image.dtype in (np.float32, np.float64) and _column_major(image)


def _column_major(image: np.ndarray) -> bool:
    """_column_major_float without the dtype test (for callers that know it)."""
    H, W = image.shape
    return H >= 2 and W >= 2 and abs(image.strides[1]) > abs(image.strides[0])


# ------------------------------------------------------------------ direct

def _strip_rows(Ho: int, width: int, itemsize: int) -> int:
    """Output rows per strip: about _STRIP_BYTES of padded input, a multiple of
    8 (the row kernels work on blocks of 4 or 8 rows), at least 16."""
    return min(Ho, max(16, _STRIP_BYTES // (width * itemsize) // 8 * 8))


def _direct(image, kernel, plan: Plan, fill, workers: int) -> np.ndarray:
    """Direct summation in the core, output rows shared among threads."""
    dtype = image.dtype
    if dtype.kind == "c":
        # One complex product per term (SciPy's NaN/inf rules), on (re, im) pairs.
        part = np.dtype(dtype.char.lower())  # F->f, D->d, G->g
        padded = np.ascontiguousarray(_padded(plan)).view(part)
        pairs = np.ascontiguousarray(kernel).view(part)
        out = _memory.empty(plan.out_shape, dtype)
        Ho, Wo = plan.out_shape
        _parallel.run_rows(
            lambda _, r0, r1: _core.correlate_complex(padded, pairs, out.view(part), r0, r1),
            Ho, Wo * kernel.size * 4, workers)
        return out
    Ho, Wo = plan.out_shape
    if dtype.kind in "iu" and Ho * Wo * kernel.size >= _INT_AS_FLOAT_MACS:
        # (a narrower source has a smaller bound, and less to read)
        source = plan.source if plan.source is not None and image is plan.image else image
        exact = _exact_float_type(source, kernel, fill)
        if exact is not None:
            exact, bound = exact
            image = source
            # Every product and partial sum is an integer the float type
            # holds exactly: the float kernels give the exact sums, which
            # then wrap like SciPy's (1024^2, one thread: uint8 3x3 into
            # int64 3.7x, int16 5x5 10x as fast as the 64-bit integer loop).
            sums = _direct(image.astype(exact), kernel.astype(exact), plan,
                           fill.astype(exact), workers)
            return _integer_result(sums, dtype, bound)
    if dtype.kind in "iu" and dtype != np.uint64:
        # Integer sums wrap like SciPy's: compute modulo 2**64, then truncate.
        wide = np.uint64
        out = _direct(image.astype(wide), kernel.astype(wide), plan, fill.astype(wide), workers)
        return out.astype(dtype)

    # A column-major image gets a column-major result: correlate_into then
    # writes the transposed problem's rows straight into it.
    out = _memory.empty(plan.out_shape, dtype, order="F" if _column_major_float(image) else "C",
                        apart_from=image)
    correlate_into(image, kernel, plan.row_map, plan.col_map, plan.left, plan.top, fill, out,
                   workers)
    return out


def _integer_result(sums: np.ndarray, dtype: np.dtype, bound: float) -> np.ndarray:
    """Exact integer sums held in floats, at most `bound` in magnitude, as a
    C-ordered `dtype` array wrapped like SciPy's: through int32 where that
    holds them (NumPy converts float32 to int32 4x as fast as to int64),
    else int64; float-to-integer conversions out of range are undefined."""
    result = _memory.empty(sums.shape, dtype)
    if bound <= np.iinfo(dtype).max and (dtype.itemsize <= 4 or bound >= 2.0 ** 31):
        np.copyto(result, sums, casting="unsafe")   # in range: no wrapping
    else:
        np.copyto(result, sums.astype(np.int32 if bound < 2.0 ** 31 else np.int64),
                  casting="unsafe")
    return result


# Integer correlations of fewer multiply-adds stay on the integer loop: the
# float path's bound and conversions cost 8-14 us (Zen 4, 16^2 3x3 and 5x5:
# 0.65-0.82x as fast), and at 64^2 3x3 (37K multiply-adds) it was 0.99-1.21x.
_INT_AS_FLOAT_MACS = 1 << 16


def _exact_float_type(image, kernel, fill):
    """(float type, bound) where float32 or float64 sums an integer
    correlation exactly: every product and partial sum is at most
    bound = max(|image|, |fill|) * sum(|kernel|) in magnitude, below 2**23
    (float32) or 2**52 (float64), half the types' exact range, which covers
    the rounding of the float64 estimate of sum(|kernel|). None otherwise.
    max|image| is the image dtype's bound where that is enough for float32
    (8-bit images, 16-bit ones with small kernels), else scanned."""
    if image.size == 0:
        return None
    taps = float(np.abs(kernel.astype(np.float64)).sum())
    info, filled = np.iinfo(image.dtype), abs(int(fill))
    bound = max(-int(info.min), int(info.max), filled) * taps   # the dtype's: no scan
    if bound >= 2.0 ** 23:
        bound = max(abs(int(image.min())), abs(int(image.max())), filled) * taps
    if bound < 2.0 ** 23:
        return np.dtype(np.float32), bound
    if bound < 2.0 ** 52:
        return np.dtype(np.float64), bound
    return None


# The core's fused functions are called through their specializations
# (fused["float"]): through the fused function itself, the dispatch on the
# arguments' types costs 1.4 us a call (a fifth of a small call).
_SPECIALIZATIONS = {np.dtype(np.float32): "float", np.dtype(np.float64): "double",
                    np.dtype(np.longdouble): "long double",
                    np.dtype(np.uint64): "unsigned long long"}


def core_function(fused, dtype: np.dtype):
    """The core's fused function `fused` specialized for arrays of `dtype`."""
    return fused[_SPECIALIZATIONS[dtype]]


def correlate_plane_for(dtype: np.dtype):
    """_core.correlate_plane for arrays of `dtype` (one of its four types)."""
    return core_function(_core.correlate_plane, dtype)


def correlate_into(image, kernel, row_map, col_map, left: int, top: int, fill, out,
                   workers: int) -> None:
    """Valid correlation of a padded image (index maps, `fill`, padding `left`
    and `top`) into `out` (Ho x Wo, C- or F-contiguous), output rows shared
    among threads; float32/float64, or the core's other real types.

    A column-major float image is read in place as its row-major transpose:
    the core then sums each pixel in the row-major kernel's order (taps
    transposed), so the bits are the row-major image's, without copying the
    image (a transposing copy costs more than a whole small-kernel call). Its
    result lands in `out` directly when `out` is column-major, else through
    a scratch plane copied back in 8 x 8 panels."""
    dtype = out.dtype
    fill = np.asarray(fill, dtype).reshape(1)
    kernel = np.ascontiguousarray(kernel, dtype)
    transposed = _column_major_float(image)
    if transposed:
        image, row_map, col_map, left = image.T, col_map, row_map, top
        result = out.T if out.flags.f_contiguous else _memory.empty(out.shape[::-1], dtype)
    else:
        result = out
    kernel_rows = kernel.shape[1] if transposed else kernel.shape[0]
    Ho, Wo = result.shape
    width = len(col_map)
    strip_rows = _strip_rows(Ho, width, dtype.itemsize)

    correlate = correlate_plane_for(dtype)

    def rows(strip, r0, r1):
        correlate(image, row_map, col_map, left, fill, kernel, result, strip, r0, r1,
                  transposed)

    strip_shape = (strip_rows + kernel_rows - 1, width)
    _parallel.run_rows(rows, Ho, Wo * kernel.size, workers,
                       scratch=lambda: _scratch.empty("direct.strip", strip_shape, dtype))
    if transposed and not out.flags.f_contiguous:
        _core.transpose_into(result, out)


# ------------------------------------------------------------------ separable

# Entries of a kernel looked at per step of the rank-1 test (a few hundred KB
# of float64 temporaries, whatever the kernel's size).
_RANK1_BLOCK = 1 << 15
# Separable factors must reproduce every kernel entry within this many
# machine epsilons of itself: a few ulps (an entry that is the rounded
# product of two factors, divided by a rounded norm, lands within 3).
_RANK1_ULPS = 4


def _row_blocks(a: np.ndarray):
    rows = max(1, _RANK1_BLOCK // max(a.shape[1], 1))
    for r in range(0, a.shape[0], rows):
        yield r, a[r:r + rows]


def _rank1_factors(kernel: np.ndarray):
    """_rank1_test, remembered for the last kernel: "auto" asks once to
    choose and once to run (0.15 ms each for a 9 x 9 kernel), and
    cyconv.image filters each channel with the same kernel array (a test
    of 25 M entries takes a fifth of a second). A small kernel is
    recognised by its bytes; a large one by its array, whose entry is
    dropped when the array is freed and reused only for equal contents.
    The factors are read-only: every caller shares them."""
    if kernel.size < _RANK1_CACHE_MIN:
        key = (kernel.shape, kernel.dtype.str, kernel.tobytes())
        last = _rank1_small[0]   # one read: another thread may replace it
        if last is not None and last[0] == key:
            return last[1]
        factors = _read_only(_rank1_test(kernel))
        _rank1_small[0] = (key, factors)
        return factors
    key = (kernel.__array_interface__["data"][0], kernel.shape, kernel.strides, kernel.dtype)
    cached = _rank1_cache.get(key)
    if cached is not None and np.array_equal(cached[0], kernel):
        return cached[1]
    factors = _read_only(_rank1_test(kernel))
    root = kernel
    while isinstance(root.base, np.ndarray):
        root = root.base
    _rank1_cache.clear()
    _rank1_cache[key] = (kernel.copy(), factors)
    weakref.finalize(root, _rank1_cache.pop, key, None)
    return factors


_RANK1_CACHE_MIN = 1 << 16
_rank1_cache: dict = {}
_rank1_small: list = [None]   # (key, factors) of the last small kernel


def _read_only(factors):
    if factors is not None:
        for f in factors:
            f.flags.writeable = False
    return factors


def _rank1_test(kernel: np.ndarray):
    """(column, row) of the kernel's dtype whose outer product reproduces
    every kernel entry to a few ulps of that entry (zeros exactly), or None.

    The factors are the kernel's pivot column, divided by the pivot, and its
    pivot row, the pivot being the entry of largest magnitude: the exact
    factors of an exact rank-1 kernel. They are accepted only if an
    entry-by-entry check passes. O(kernel entries) time, in blocks of rows
    (small temporaries); a kernel that is not rank 1 is usually rejected
    after its first block.
    """
    if kernel.dtype not in (np.float32, np.float64) or min(kernel.shape) < 1:
        return None
    M, N = kernel.shape
    pivot_value, i0, j0 = 0.0, 0, 0
    for r, block in _row_blocks(kernel):
        flat = int(np.argmax(np.abs(block)))
        value = abs(float(block.flat[flat]))
        if not value <= np.finfo(np.float64).max:   # inf or NaN: not separable
            return None
        if value > pivot_value:
            pivot_value, i0, j0 = value, r + flat // N, flat % N
    if pivot_value == 0:
        return None
    pivot = float(kernel[i0, j0])
    info = np.finfo(kernel.dtype)
    # Quick rejection of most kernels that are not rank 1: a few entries,
    # checked in Python with a tolerance much looser than the full check's.
    loose = 8 * _RANK1_ULPS * info.eps
    for i, j in ((0, 0), (0, N - 1), (M - 1, 0), (M - 1, N - 1), (M // 2, N // 3),
                 (M // 3, N // 2)):
        k_ij = float(kernel[i, j])
        if abs(float(kernel[i, j0]) * float(kernel[i0, j]) / pivot - k_ij) \
                > loose * abs(k_ij) + 64 * info.smallest_subnormal:
            return None
    column = (kernel[:, j0].astype(np.float64) / pivot).astype(kernel.dtype)
    row = np.array(kernel[i0], dtype=kernel.dtype)
    column64, row64 = column.astype(np.float64), row.astype(np.float64)
    with np.errstate(all="ignore"):
        for r, block in _row_blocks(kernel):
            k = block.astype(np.float64)
            product = column64[r:r + len(k), None] * row64   # exact for float32
            # A few ulps of each entry; an ulp is at least the smallest
            # subnormal, and a zero entry must come out exactly zero.
            tol = _RANK1_ULPS * (info.eps * np.abs(k) + np.where(k != 0, info.smallest_subnormal, 0))
            if not (np.abs(product - k) <= tol).all():
                return None
    return column, row


def _separable(plan: Plan, workers: int) -> np.ndarray:
    column, row = _rank1_factors(plan.kernel)
    dtype = plan.image.dtype
    fill = np.asarray(plan.fill, dtype).reshape(1)
    out = _memory.empty(plan.out_shape, dtype)
    M = len(column)
    Ho, Wo = plan.out_shape
    width = len(plan.col_map)
    strip_rows = _strip_rows(Ho, width, dtype.itemsize)

    def scratch():
        n = strip_rows + M - 1
        return (_scratch.empty("separable.strip", (n, width), dtype),
                _scratch.empty("separable.across", (n, Wo), dtype))

    def rows(buffers, r0, r1):
        strip, across = buffers
        _core.correlate_plane_separable(plan.image, plan.row_map, plan.col_map, plan.left,
                                        fill, row, column, out, strip, across, r0, r1)

    _parallel.run_rows(rows, Ho, Wo * (M + len(row)), workers, scratch)
    return out


def _separable_transposed(plan: Plan, workers: int) -> np.ndarray:
    """_separable for a column-major image, read in place as its transpose
    (see _core.correlate_plane_separable_t): the same two passes in the same
    order, so the row-major image's bits, in a column-major result."""
    column, row = _rank1_factors(plan.kernel)
    image = plan.image.T
    dtype = image.dtype
    fill = np.asarray(plan.fill, dtype).reshape(1)
    Ho, Wo = plan.out_shape
    out_t = _memory.empty((Wo, Ho), dtype)
    N = len(row)
    width = len(plan.row_map)
    strip_rows = _strip_rows(Wo, width, dtype.itemsize)

    def scratch():
        return (_scratch.empty("separable.strip", (strip_rows + N - 1, width), dtype),
                _scratch.empty("separable.across", (strip_rows, width), dtype))

    def rows(buffers, r0, r1):
        strip, across = buffers
        _core.correlate_plane_separable_t(image, plan.col_map, plan.row_map, plan.top, fill,
                                          row, column, out_t, strip, across, r0, r1)

    _parallel.run_rows(rows, Wo, Ho * (len(column) + N), workers, scratch)
    return out_t.T


# ------------------------------------------------------------------ padded image

def _padded(plan: Plan) -> np.ndarray:
    """The padded image itself (the complex direct kernel reads it whole)."""
    rows, cols = plan.row_map, plan.col_map
    if plan.image.size == 0:
        return np.full((len(rows), len(cols)), plan.fill, plan.image.dtype)
    padded = plan.image[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
    padded[rows < 0, :] = plan.fill
    padded[:, cols < 0] = plan.fill
    return padded

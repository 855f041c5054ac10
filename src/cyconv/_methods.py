"""How a valid correlation of a padded image is computed: direct, separable
or FFT, and the cost model that chooses among them for method="auto".

A Plan describes the padded image without building it: `image` plus the
index maps (see _padding) and the fill value. The kernel is already flipped
(convolution) or conjugated (correlation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _core, _parallel

METHODS = ("auto", "direct", "separable", "fft")

# Rows of padded input gathered at a time: small enough to stay in L2.
_STRIP_BYTES = 1 << 17

# Cost model, in seconds, fitted by `bench/bench_methods.py --fit` on one core
# of the development machine (AMD EPYC Zen 4, AVX-512; 1024x1024 image,
# kernels 3-63; see bench/RESULTS.md). Only the ratios matter: they place the
# crossovers.
_DIRECT_PER_MAC = {4: 1.0 / 30e9, 8: 1.0 / 15.5e9}   # per multiply-add, by itemsize
_DIRECT_PER_PIXEL = 0.4e-9                            # gather + store per output pixel
_SEPARABLE_PER_MAC = {4: 1.0 / 13.3e9, 8: 1.0 / 5.7e9}
_FFT_PER_POINT_LOG = {4: 1.58e-9, 8: 1.98e-9}        # per point * log2(points), rfft2 + irfft2


@dataclass(frozen=True)
class Plan:
    image: np.ndarray      # H x W, result dtype, any strides
    kernel: np.ndarray     # M x N, result dtype, flipped or conjugated already
    row_map: np.ndarray    # padded row -> image row, -1 for the fill
    col_map: np.ndarray    # padded col -> image col, -1 for the fill
    left: int              # padding before image column 0
    fill: np.ndarray       # 0-d, result dtype
    out_shape: tuple       # (Ho, Wo) = padded shape - kernel shape + 1
    swapped: bool          # valid mode swapped in1 and in2


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
        return "fft" if dtype.kind != "iu" or _fft_is_exact(plan) else "direct"
    # auto: only float32/float64 have a measured model; direct for the rest.
    if dtype not in (np.float32, np.float64):
        return "direct"
    Ho, Wo = plan.out_shape
    M, N = plan.kernel.shape
    Hp, Wp = len(plan.row_map), len(plan.col_map)
    size = dtype.itemsize
    if direct_by_cost(size, plan.out_shape, plan.kernel.shape, (Hp, Wp)):
        return "direct"  # small calls: no exact FFT sizes, no data scans
    best, best_cost = "direct", Ho * Wo * (M * N * _DIRECT_PER_MAC[size] + _DIRECT_PER_PIXEL)
    # Cheap estimates first; the SVD and the NaN scan only when they could matter.
    points = next_fast_len(Hp) * next_fast_len(Wp)
    fft_cost = points * math.log2(max(points, 2)) * _FFT_PER_POINT_LOG[size]
    sep_cost = (Hp * Wo * N + Ho * Wo * M) * _SEPARABLE_PER_MAC[size] + Ho * Wo * _DIRECT_PER_PIXEL
    if M > 1 and N > 1 and sep_cost < min(best_cost, fft_cost) \
            and _rank1_factors(plan.kernel) is not None:
        best, best_cost = "separable", sep_cost
    if fft_cost < best_cost:
        best = "fft"
    if best != "direct" and not (_all_finite(plan.image) and _all_finite(plan.kernel)
                                 and np.isfinite(plan.fill)):
        return "direct"  # only direct summation propagates NaN/inf like SciPy
    return best


def direct_by_cost(itemsize: int, out_shape, kernel_shape, padded_shape) -> bool:
    """True when the cost model puts direct summation at or below separable
    and at or below the least an FFT could cost (next_fast_len(n) >= n):
    then "auto" picks direct whatever the data (a decision from shapes alone)."""
    (Ho, Wo), (M, N), (Hp, Wp) = out_shape, kernel_shape, padded_shape
    direct = Ho * Wo * (M * N * _DIRECT_PER_MAC[itemsize] + _DIRECT_PER_PIXEL)
    separable = (Hp * Wo * N + Ho * Wo * M) * _SEPARABLE_PER_MAC[itemsize] \
        + Ho * Wo * _DIRECT_PER_PIXEL
    fft_least = Hp * Wp * math.log2(max(Hp * Wp, 2)) * _FFT_PER_POINT_LOG[itemsize]
    return direct <= separable and direct <= fft_least


def _all_finite(a: np.ndarray) -> bool:
    """np.isfinite(a).all(), a block of rows at a time (no image-sized temporary)."""
    rows = max(1, (1 << 16) // max(a.shape[1], 1))
    return all(np.isfinite(a[i:i + rows]).all() for i in range(0, a.shape[0], rows))


def run(plan: Plan, method: str, workers: int) -> np.ndarray:
    if method == "fft":
        return _fft(plan)
    if method == "separable":
        return _separable(plan, workers)
    return _direct(plan.image, plan.kernel, plan, plan.fill, workers)


# ------------------------------------------------------------------ direct

def _direct(image, kernel, plan: Plan, fill, workers: int) -> np.ndarray:
    """Direct summation in the core, output rows shared among threads."""
    dtype = image.dtype
    if dtype.kind == "c":
        # One complex product per term (SciPy's NaN/inf rules), on (re, im) pairs.
        part = np.dtype(dtype.char.lower())  # F->f, D->d, G->g
        padded = np.ascontiguousarray(_padded(plan)).view(part)
        pairs = np.ascontiguousarray(kernel).view(part)
        out = np.empty(plan.out_shape, dtype)
        Ho, Wo = plan.out_shape
        _parallel.run_rows(
            lambda _, r0, r1: _core.correlate_complex(padded, pairs, out.view(part), r0, r1),
            Ho, Wo * kernel.size * 4, workers)
        return out
    if dtype.kind in "iu" and dtype != np.uint64:
        # Integer sums wrap like SciPy's: compute modulo 2**64, then truncate.
        wide = np.uint64
        out = _direct(image.astype(wide), kernel.astype(wide), plan, fill.astype(wide), workers)
        return out.astype(dtype)

    kernel = np.ascontiguousarray(kernel)
    fill = np.asarray(fill, dtype).reshape(1)
    out = np.empty(plan.out_shape, dtype)
    M, width = kernel.shape[0], len(plan.col_map)
    Ho, Wo = plan.out_shape
    strip_rows = min(Ho, max(16, _STRIP_BYTES // (width * dtype.itemsize)))

    def rows(strip, r0, r1):
        _core.correlate_plane(image, plan.row_map, plan.col_map, plan.left, fill, kernel,
                              out, strip, r0, r1)

    _parallel.run_rows(rows, Ho, Wo * kernel.size, workers,
                       scratch=lambda: np.empty((strip_rows + M - 1, width), dtype))
    return out


# ------------------------------------------------------------------ separable

def _rank1_factors(kernel: np.ndarray):
    """(column, row) with outer(column, row) == kernel to rounding, or None."""
    if kernel.dtype not in (np.float32, np.float64) or min(kernel.shape) < 1:
        return None
    k = kernel.astype(np.float64)
    scale = np.abs(k).max()
    if not np.isfinite(scale) or scale == 0:
        return None
    # Quick rejection without an SVD: a rank-1 kernel equals the outer product
    # of its column and row through its largest entry.
    i0, j0 = np.unravel_index(np.argmax(np.abs(k)), k.shape)
    if np.abs(np.outer(k[:, j0], k[i0] / k[i0, j0]) - k).max() > 1e-3 * scale:
        return None
    u, s, vt = np.linalg.svd(k)
    column, row = u[:, 0] * math.sqrt(s[0]), vt[0] * math.sqrt(s[0])
    # Accept only if the product reproduces every entry to the dtype's rounding
    # (an SVD's reconstruction error grows about like the square root of the size).
    tol = 8 * np.finfo(kernel.dtype).eps * scale * math.sqrt(k.size)
    if np.abs(np.outer(column, row) - k).max() > tol:
        return None
    return column.astype(kernel.dtype), row.astype(kernel.dtype)


def _separable(plan: Plan, workers: int) -> np.ndarray:
    column, row = _rank1_factors(plan.kernel)
    dtype = plan.image.dtype
    fill = np.asarray(plan.fill, dtype).reshape(1)
    out = np.empty(plan.out_shape, dtype)
    M = len(column)
    Ho, Wo = plan.out_shape
    width = len(plan.col_map)
    strip_rows = min(Ho, max(16, _STRIP_BYTES // (width * dtype.itemsize)))

    def scratch():
        n = strip_rows + M - 1
        return np.empty((n, width), dtype), np.empty((n, Wo), dtype)

    def rows(buffers, r0, r1):
        strip, across = buffers
        _core.correlate_plane_separable(plan.image, plan.row_map, plan.col_map, plan.left,
                                        fill, row, column, out, strip, across, r0, r1)

    _parallel.run_rows(rows, Ho, Wo * (M + len(row)), workers, scratch)
    return out


# ------------------------------------------------------------------ FFT

def next_fast_len(n: int) -> int:
    """Smallest 2**a 3**b 5**c >= n: sizes numpy.fft (pocketfft) handles fastest."""
    if n <= 6:
        return max(n, 1)
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            # smallest power of two that lifts p35 to at least n
            p = p35 << max(0, (-(-n // p35) - 1).bit_length())
            best = min(best, p)
            p35 *= 3
        p5 *= 5
    return best


def _padded(plan: Plan) -> np.ndarray:
    """The padded image itself (FFT needs it whole)."""
    rows, cols = plan.row_map, plan.col_map
    if plan.image.size == 0:
        return np.full((len(rows), len(cols)), plan.fill, plan.image.dtype)
    padded = plan.image[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
    padded[rows < 0, :] = plan.fill
    padded[:, cols < 0] = plan.fill
    return padded


def _fft_is_exact(plan: Plan) -> bool:
    """Can a float64 FFT result be rounded back to the exact integer sums?"""
    a = np.abs(plan.image.astype(np.float64))
    k = np.abs(plan.kernel.astype(np.float64))
    peak = max(float(a.max(initial=0)), abs(float(plan.fill))) * float(k.sum())
    points = len(plan.row_map) * len(plan.col_map)
    # FFT convolution error is about eps * log2(points) * ||a||_2 ||k||_2;
    # bound ||a||_2 by sqrt(points) * max|a|, and ask for error < 1/4.
    norm = max(float(a.max(initial=0)), abs(float(plan.fill))) * math.sqrt(points) \
        * float(np.sqrt((k ** 2).sum()))
    err = 8 * np.finfo(np.float64).eps * math.log2(max(points, 2)) * norm
    return peak < 2.0 ** 52 and err < 0.25


def _fft(plan: Plan) -> np.ndarray:
    dtype = plan.image.dtype
    if dtype.kind in "iu":
        work = np.float64
    elif dtype.kind == "c":
        work = np.complex64 if dtype == np.complex64 else np.complex128
    else:
        work = np.float32 if dtype == np.float32 else np.float64
    padded = _padded(plan).astype(work, copy=False)
    kernel = plan.kernel.astype(work)
    (Hp, Wp), (M, N) = padded.shape, kernel.shape
    shape = (next_fast_len(Hp), next_fast_len(Wp))
    # Circular convolution of size >= the padded image with the flipped
    # kernel: rows/cols from M-1 (N-1) on never wrap, and are the valid correlation.
    flipped = kernel[::-1, ::-1]
    if np.dtype(work).kind == "c":
        full = np.fft.ifft2(np.fft.fft2(padded, shape) * np.fft.fft2(flipped, shape))
    else:
        full = np.fft.irfft2(np.fft.rfft2(padded, shape) * np.fft.rfft2(flipped, shape), shape)
    valid = full[M - 1:Hp, N - 1:Wp]
    if dtype.kind in "iu":
        # Exact by _fft_is_exact: round, then wrap into the type like the direct sums.
        return np.rint(valid).astype(np.int64).astype(dtype)
    return np.ascontiguousarray(valid, dtype=dtype)

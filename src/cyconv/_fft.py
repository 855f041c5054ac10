"""The FFT method: overlap-save over tiles of the padded image.

The valid correlation of the padded image (a Plan: image + index maps +
fill, see _methods) is cut into tiles of Th x Tw padded pixels, Th and Tw
fast FFT lengths chosen from the shapes by the cost model
(_cost_model.tile_shape).
Each tile's circular convolution with the flipped kernel holds
(Th - M + 1) x (Tw - N + 1) exact outputs (those that do not wrap). A band
of tiles (one row of tiles, gathered from the index maps: the padded image
is never built whole) goes through batched 2-D transforms, a cache-sized
group of tiles per call; the kernel's spectrum is computed once per call. Bands are independent chunks for
_parallel.run, so threads share them and Ctrl-C is seen between bands.

Transforms: scipy.fft when SciPy is installed (native float32), numpy.fft
otherwise (in float64 even for float32 data: NumPy's float32 transforms are
slower). A tile's arithmetic does not depend on the thread count, so the
result is the same for any `workers`.

Accuracy: every output has an absolute error of a few machine epsilons
times log2(Th * Tw) times the largest term scale, max|padded input| *
sum|kernel| (see `error_bound`); outputs much smaller than that scale lose
relative accuracy, unlike direct summation.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

from . import _cost_model, _memory, _parallel

# Bytes of tiles transformed per call: batched, but only as many as stay in
# cache (bigger batches thrash the L2 in the second, strided axis pass).
FFT_BATCH_BYTES = 256 << 10

# Error of an FFT convolution output, in units of
# eps * log2(tile points) * max|input| * sum|kernel| (see error_bound).
ERROR_FACTOR = 2.0

_backend = None
_scipy_found = None


def backend_name() -> str:
    """The name backend() gives, without importing SciPy if it has not yet.

    The cost model asks on calls that then run direct; importing scipy.fft
    there took 0.16 s on a first call and started SciPy's BLAS threads."""
    global _scipy_found
    if _backend is not None:
        return _backend[0]
    if _scipy_found is None:
        _scipy_found = importlib.util.find_spec("scipy") is not None
    return "scipy" if _scipy_found else "numpy"


def backend():
    """("scipy", scipy.fft) when SciPy is importable, else ("numpy", numpy.fft)."""
    global _backend
    if _backend is None:
        try:
            import scipy.fft
            _backend = ("scipy", scipy.fft)
        except ImportError:
            _backend = ("numpy", np.fft)
    return _backend


def next_fast_len(n: int) -> int:
    """Smallest 2**a 3**b 5**c >= n."""
    return next(p for p in _cost_model.fast_lengths(max(2 * n, 8)) if p >= n)


def _work_dtype(dtype: np.dtype, backend_name: str) -> np.dtype:
    """Real or complex float type the transforms run in."""
    if dtype.kind == "c":
        return np.dtype(np.complex64 if dtype == np.complex64 and backend_name == "scipy"
                        else np.complex128)
    if dtype == np.float32 and backend_name == "scipy":
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def tile_shape(out_shape, kernel_shape, dtype: np.dtype):
    """(Th, Tw, seconds): the tile shape of least modelled cost, and that cost."""
    name = backend_name()
    work = _work_dtype(dtype, name)
    real = work.itemsize // 2 if work.kind == "c" else work.itemsize
    return _cost_model.tile_shape(tuple(out_shape), tuple(kernel_shape), (name, real),
                                  work.kind == "c")


def error_bound(plan, tile_points: int) -> float:
    """Absolute error bound of the FFT method's outputs for this plan."""
    # The transforms' precision, or the result's if coarser (its final rounding).
    dtype = plan.image.dtype
    longdouble = dtype.itemsize > 8 * (1 + (dtype.kind == "c"))
    result = np.float64 if dtype.kind in "iu" or longdouble else dtype
    eps = max(np.finfo(_work_dtype(dtype, backend_name())).eps, np.finfo(result).eps)
    a = max(_max_abs(plan.image), float(np.abs(plan.fill)))
    s = float(np.abs(plan.kernel).sum(dtype=np.float64))
    return ERROR_FACTOR * eps * math.log2(max(tile_points, 2)) * a * s


def _max_abs(a: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    return float(max(np.abs(a[i:i + 256]).max() for i in range(0, a.shape[0], 256)))


def is_exact_for_integers(plan) -> bool:
    """Can float64 FFT outputs be rounded back to the exact integer sums?
    Needs every sum below 2**52 and an error bound below 1/4."""
    th, tw, _ = tile_shape(plan.out_shape, plan.kernel.shape, np.dtype(np.float64))
    a = max(_max_abs(plan.image), float(np.abs(plan.fill)))
    s = float(np.abs(plan.kernel.astype(np.float64)).sum())
    eps = np.finfo(np.float64).eps
    return a * s < 2.0 ** 52 and ERROR_FACTOR * eps * math.log2(th * tw) * a * s < 0.25


def _check_memory(shape, dtype, tiles_per_band, th, tw, work):
    """Fail before any work if the buffers cannot be had: MemoryError naming the size."""
    spectrum = np.dtype(np.complex64 if work in (np.float32, np.complex64) else np.complex128)
    cols = tw if work.kind == "c" else tw // 2 + 1
    need = (th * cols * spectrum.itemsize                        # kernel spectrum
            + tiles_per_band * th * cols * spectrum.itemsize * 2  # band spectra, product
            + tiles_per_band * th * tw * work.itemsize            # band's inverse
            + 2 * th * (tiles_per_band * tw) * work.itemsize)     # gathered rows, tiles
    try:
        probe = np.empty(need, np.uint8)
    except MemoryError:
        raise MemoryError(f"method='fft' needs about {need / 2**30:.1f} GiB of buffers for a "
                          f"{shape[0]}x{shape[1]} kernel (tiles of {th}x{tw}); "
                          "use a smaller kernel, or method='direct' or 'separable'") from None
    del probe


def run(plan, workers: int) -> np.ndarray:
    dtype = plan.image.dtype
    name, fft = backend()
    work = _work_dtype(dtype, name)
    (Ho, Wo), (M, N) = plan.out_shape, plan.kernel.shape
    th, tw, _ = tile_shape(plan.out_shape, plan.kernel.shape, dtype)
    sh, sw = th - M + 1, tw - N + 1                  # exact outputs per tile
    nh, nw = -(-Ho // sh), -(-Wo // sw)
    _check_memory((M, N), dtype, nw, th, tw, work)
    complex_ = work.kind == "c"
    forward = fft.fft2 if complex_ else fft.rfft2
    inverse = fft.ifft2 if complex_ else fft.irfft2
    # Threads: bands are shared among them; a single band uses SciPy's own.
    inner = {}
    if name == "scipy":
        inner["workers"] = workers if nh == 1 else 1
        inner["overwrite_x"] = True                  # the tiles are temporaries
    # plan.kernel may be a view of the caller's array: never transformed in place.
    kernel_spectrum = forward(np.asarray(plan.kernel[::-1, ::-1], dtype=work), s=(th, tw),
                              **{k: v for k, v in inner.items() if k != "overwrite_x"})
    gather = _Gather(plan, width=nw * sw + N - 1, work=work)
    out = _memory.empty((Ho, Wo), dtype)
    integer = dtype.kind in "iu"
    group = max(1, FFT_BATCH_BYTES // (th * tw * work.itemsize))

    def band(_, b):
        r0 = b * sh
        rows = min(sh, Ho - r0)
        # (tiles, th, tw) windows of the band's gathered rows.
        windows = np.lib.stride_tricks.sliding_window_view(
            gather.rows(r0, th), tw, axis=1)[:, ::sw].transpose(1, 0, 2)
        for j0 in range(0, nw, group):
            tiles = np.array(windows[j0:j0 + group])          # a writeable copy
            spectra = forward(tiles, **inner)
            spectra *= kernel_spectrum
            result = inverse(spectra, s=(th, tw), **inner)
            good = result[:, M - 1:M - 1 + rows, N - 1:]   # (tiles, rows, sw)
            if integer:
                good = np.rint(good).astype(np.int64)
            c0 = j0 * sw
            whole = min(len(good), (Wo - c0) // sw)         # tiles whose outputs all fit
            block = out[r0:r0 + rows, c0:]
            # out's rows seen as (rows, tile, column in tile), written in one copy.
            as_tiles = np.lib.stride_tricks.as_strided(
                block, (rows, whole, sw),
                (block.strides[0], sw * block.strides[1], block.strides[1]))
            np.copyto(as_tiles, good[:whole].transpose(1, 0, 2), casting="unsafe")
            if whole < len(good):
                rest = Wo - c0 - whole * sw
                np.copyto(block[:, whole * sw:], good[whole, :, :rest], casting="unsafe")

    per_band = nw * th * tw * max(math.log2(th * tw), 1)
    chunks = [(b,) for b in range(nh)]
    _parallel.run(band, chunks, _parallel.threads_for(workers, nh * per_band, nh))
    return out


class _Gather:
    """Rows of the padded image, `width` columns (zeros past its right edge),
    read through the plan's index maps: slices where the maps are runs of
    consecutive image indices, fancy indexing only for the boundary."""

    def __init__(self, plan, width: int, work: np.dtype):
        self.plan, self.width, self.work = plan, width, work
        self.fill = plan.fill.astype(work)
        H, W = plan.image.shape
        left = plan.left
        self.inner = (left, left + W)                # col_map is 0..W-1 there
        cols = plan.col_map
        self.outer_cols = np.r_[np.arange(left), np.arange(left + W, len(cols))]
        self.outer_src = cols[self.outer_cols]

    def rows(self, r0: int, count: int) -> np.ndarray:
        plan, image = self.plan, self.plan.image
        src = plan.row_map[r0:r0 + count]
        band = np.zeros((count, self.width), self.work)
        if image.size == 0:
            band[:len(src), :len(plan.col_map)] = self.fill
            return band
        c0, c1, n = *self.inner, len(src)
        valid = src >= 0
        if n and src[0] >= 0 and (np.diff(src) == 1).all():
            picked = image[src[0]:src[0] + n]         # a run of image rows: a view
        else:
            picked = image[np.maximum(src, 0)]
        band[:n, c0:c1] = picked
        if len(self.outer_cols):
            outer = self.outer_src
            part = picked[:, np.maximum(outer, 0)].astype(self.work)
            part[:, outer < 0] = self.fill
            band[:n, self.outer_cols] = part
        band[np.flatnonzero(~valid), :len(plan.col_map)] = self.fill
        return band

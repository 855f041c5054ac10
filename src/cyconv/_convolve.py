"""convolve2d / correlate2d: SciPy's semantics, cyconv's kernels.

This layer validates the arguments, works out the result type, reduces
every mode and boundary to one valid correlation of a padded image (a Plan:
the padding is described by index maps, never materialised here), and
hands the Plan to the chosen method in _methods. Argument resolution lives
in _geometry. Repeated small float calls take a short path (see the end of
this file) that skips everything already resolved for the same arguments.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, _geometry, _memory, _methods, _parallel, _scratch
from ._padding import aligned

Mode = Literal["full", "same", "valid"]
Boundary = Literal["fill", "pad", "wrap", "circular", "symm", "symmetric"]
Method = Literal["auto", "direct", "separable", "fft"]

# Outputs of more pixels than this are allocated once as a probe before any
# work, so that an impossible size fails early; smaller ones always fit.
_PROBE_PIXELS = 1 << 20


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
        :func:`choose_method`; the FFT only where modelled 1.2 times
        cheaper than the best exact method), keeps the result type, and
        stays direct when an input holds NaN or inf.
    workers : int, optional
        Threads to use (keyword only; not in SciPy). None: the process default
        (see :func:`set_num_threads`); negative counts back from all CPUs.
        The result is bitwise the same for any value.

    Returns
    -------
    ndarray
        Result of NumPy's type promotion of ``in1`` and ``in2``; integer sums
        are exact and wrap around in that type like SciPy's (summed on the
        float kernels where max|in1| * sum|in2| is below 2**23 or 2**52,
        else in 64-bit integers). Row-major (C order), except
        that the direct and separable methods give a column-major
        float32/float64 image (Fortran order, a transposed view) a
        column-major result: they read the image in place as its transpose,
        and the values are those of the row-major image to the bit.
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
    if type(in1) is np.ndarray and type(in2) is np.ndarray and type(fillvalue) is int \
            and (workers is None or type(workers) is int and workers > 0):
        try:
            short = _short_paths.get((in1.shape, in2.shape, in1.dtype, in2.dtype, mode,
                                      boundary, fillvalue, method, convolve))
        except TypeError:  # an unhashable argument: the full path explains what is wrong
            short = None
        if short is not None and in1.flags.aligned and in2.flags.aligned and not (
                short.rank1_check
                and _methods._rank1_factors(in2[::-1, ::-1] if convolve else in2) is not None):
            return _run_short(short, in1, in2, workers)
    _geometry.check_method(method)
    workers = _parallel.resolve_workers(workers)
    plan = _plan(in1, in2, mode, boundary, fillvalue, convolve)
    if isinstance(plan, np.ndarray):
        return plan
    chosen = _methods.choose(plan, method)
    _remember_short_path(in1, in2, mode, boundary, fillvalue, method, convolve, plan, chosen)
    out = _methods.run(plan, chosen, workers)
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
    rule = _geometry.check_filter2d(in1.shape, in2.shape, mode, boundary, convolve)
    dtype = _geometry.filter2d_dtype(in1.dtype, in2.dtype, name)
    fill = _geometry.fill_scalar(fillvalue if rule == "constant" else 0, dtype)
    geometry = _geometry.filter2d(in1.shape, in2.shape, mode, boundary, convolve)
    if geometry.empty:
        # An empty kernel sums over nothing: zeros, whatever the boundary.
        return np.zeros(geometry.out_shape, dtype)
    Ho, Wo = geometry.out_shape
    if Ho * Wo > _PROBE_PIXELS:
        # An output that cannot exist fails here, before any work or buffer
        # (np.empty reserves address space only; the methods allocate their own).
        np.empty(geometry.out_shape, dtype)
    if geometry.swapped:
        in1, in2 = in2, in1
    if convolve:
        kernel = in2[::-1, ::-1]
    else:
        kernel = np.conj(in2) if in2.dtype.kind == "c" else in2
    row_map, col_map = geometry.index_maps()
    narrower = dtype.kind in "iu" and in1.dtype.kind in "iu" and in1.dtype != dtype
    return _methods.Plan(
        image=aligned(np.asarray(in1, dtype=dtype)),  # native byte order; any strides
        kernel=aligned(np.asarray(kernel, dtype=dtype)),
        row_map=row_map, col_map=col_map, left=geometry.cols.before, top=geometry.rows.before,
        fill=fill,
        out_shape=geometry.out_shape, swapped=geometry.swapped,
        source=in1 if narrower else None)


# --------------------------------------------------------------------------- repeated calls
# A call in a loop repeats the same shapes, dtypes and scalar arguments: all
# that follows from them (validation, result type, padding, index maps,
# method) is resolved once by the full path and kept as a ShortPath, keyed
# by those arguments. A later call with the same key only allocates its
# output and runs the core: the same calls, in the same pieces, on the same
# buffers' values (for a column-major image on its transpose), that
# _methods.correlate_into makes, so the result is bitwise the same. The full
# path's Python costs 40-130 microseconds a call (more after a kernel has
# streamed megabytes through the caches): a third of a 256 x 256 5 x 5 call.

class ShortPath(NamedTuple):
    correlate: object      # _core.correlate_plane for the dtype (_methods.correlate_plane_for)
    row_map: np.ndarray    # read-only, shared
    col_map: np.ndarray
    left: int
    top: int
    fill: np.ndarray       # 1 element, read-only
    out_shape: tuple
    strip_shape: tuple     # (rows + M - 1, padded width): any rows give the same result
    strip_shape_t: tuple   # the same for the transpose: (rows + N - 1, padded height)
    dtype: np.dtype
    convolve: bool
    work: int              # multiply-adds: how _parallel.run_rows shares them out
    allocate: object       # _empty, or _memory.empty for a large output
    rank1_check: bool      # "auto" picks direct only if the kernel is not rank-1: test it


_short_paths: dict = {}
_MAX_SHORT_PATHS = 256
_SMALL_KERNEL_TAPS = _core.small_kernel_taps()


def _remember_short_path(in1, in2, mode, boundary, fillvalue, method, convolve, plan,
                         chosen) -> None:
    """Keep a ShortPath for this key when the call qualifies: float32/float64
    arrays already of the result type, not swapped, an int fillvalue, and
    direct chosen from the shapes alone, or from the shapes and a kernel
    that is not rank-1 (each call then tests its kernel: a rank-1 one takes
    the full path). The full path costs about 60 us a call (1024 x 1024,
    7 x 7: 5 % of the call)."""
    dtype = plan.image.dtype
    if not (type(in1) is np.ndarray and type(in2) is np.ndarray and type(fillvalue) is int
            and dtype in (np.float32, np.float64) and in1.dtype == dtype == in2.dtype
            and chosen == "direct" and not plan.swapped):
        return
    Ho, Wo = plan.out_shape
    M, N = plan.kernel.shape
    Wp = len(plan.col_map)
    rank1_check = method != "direct" and not _methods.direct_from_shapes(plan)
    if rank1_check and not _methods.direct_unless_rank1(plan):
        return
    if len(_short_paths) >= _MAX_SHORT_PATHS:
        _short_paths.clear()
    fill = plan.fill.reshape(1).copy()
    fill.flags.writeable = False
    Hp = len(plan.row_map)
    rows = _methods._strip_rows(Ho, Wp, dtype.itemsize)
    rows_t = _methods._strip_rows(Wo, Hp, dtype.itemsize)
    key = (in1.shape, in2.shape, in1.dtype, in2.dtype, mode, boundary, fillvalue, method,
           convolve)
    correlate = _methods.correlate_plane_for(dtype)
    _short_paths[key] = ShortPath(correlate, plan.row_map, plan.col_map, plan.left, plan.top,
                                  fill, plan.out_shape, (rows + M - 1, Wp),
                                  (rows_t + N - 1, Hp), dtype, convolve, Ho * Wo * M * N,
                                  _memory.empty if Ho * Wo * dtype.itemsize >= _memory.MIN_BYTES
                                  else _empty, rank1_check)


def _empty(shape, dtype, apart_from):
    """np.empty with _memory.empty's arguments, for outputs too small for the
    kept blocks (whose placement apart_from chooses): the short path calls
    either the same way."""
    return np.empty(shape, dtype)


def _run_short(short: ShortPath, image: np.ndarray, kernel: np.ndarray, workers) -> np.ndarray:
    correlate, row_map, col_map, left, top, fill, out_shape, strip_shape, strip_shape_t, \
        dtype, convolve, work, allocate, _ = short
    # The core flips (and packs) a small kernel itself, cheaper than a NumPy copy.
    flip = convolve
    if kernel.size > _SMALL_KERNEL_TAPS:
        kernel, flip = np.ascontiguousarray(kernel[::-1, ::-1] if convolve else kernel), False
    transposed = _methods._column_major(image)   # the dtype is float32/float64 here
    if work >= _parallel.MIN_WORK_PER_THREAD:
        return _run_short_pieces(short, image, kernel, flip, transposed, workers)
    # Less work: one core call here, as run_rows would make it (every
    # closure and keyword is a tenth of an 8 x 8 call).
    if transposed:
        out_t = allocate(out_shape[::-1], dtype, apart_from=image)
        correlate(image.T, col_map, row_map, top, fill, kernel, out_t,
                  _scratch.empty("direct.strip", strip_shape_t, dtype), 0, out_shape[1],
                  True, flip)
        return out_t.T
    out = allocate(out_shape, dtype, apart_from=image)
    correlate(image, row_map, col_map, left, fill, kernel, out,
              _scratch.empty("direct.strip", strip_shape, dtype), 0, out_shape[0], False, flip)
    return out


def _run_short_pieces(short: ShortPath, image, kernel, flip: bool, transposed: bool,
                      workers) -> np.ndarray:
    """_run_short's call of MIN_WORK_PER_THREAD or more: the pieces and
    threads of the full path (_methods.correlate_into, whose own argument
    handling made these calls 4-7 % slower at 200-512 pixels square)."""
    if transposed:
        out = _memory.empty(short.out_shape[::-1], short.dtype, apart_from=image)
        source, rows_map, cols_map, pad = image.T, short.col_map, short.row_map, short.top
        shape = short.strip_shape_t
    else:
        out = _memory.empty(short.out_shape, short.dtype, apart_from=image)
        source, rows_map, cols_map, pad = image, short.row_map, short.col_map, short.left
        shape = short.strip_shape

    def rows(strip, r0, r1):
        short.correlate(source, rows_map, cols_map, pad, short.fill, kernel, out, strip, r0, r1,
                        transposed, flip)

    _parallel.run_rows(rows, out.shape[0], short.work / out.shape[0],
                       _parallel.resolve_workers(workers),
                       scratch=lambda: _scratch.empty("direct.strip", shape, short.dtype))
    return out.T if transposed else out

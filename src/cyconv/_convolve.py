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

from . import _geometry, _methods, _parallel
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
        (float32/float64; ``ValueError`` if the kernel is not rank 1).
        ``"fft"`` uses the convolution theorem through ``numpy.fft``: a NaN
        or inf then spreads over the whole output, integer results are
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
    _geometry.check_method(method)
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
    geometry = _geometry.filter2d(in1.shape, in2.shape, mode, boundary, convolve)
    dtype = _geometry.filter2d_dtype(in1.dtype, in2.dtype, name)
    fill = _geometry.fill_scalar(fillvalue if geometry.rule == "constant" else 0, dtype)
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
    return _methods.Plan(
        image=aligned(np.asarray(in1, dtype=dtype)),  # native byte order; any strides
        kernel=aligned(np.asarray(kernel, dtype=dtype)),
        row_map=row_map, col_map=col_map, left=geometry.cols.before, fill=fill,
        out_shape=geometry.out_shape, swapped=geometry.swapped)

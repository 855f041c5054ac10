"""conv2d: torch.nn.functional.conv2d semantics on NumPy arrays.

This layer validates the arguments, resolves padding into per-side amounts
and source-index maps, packs the weights, allocates the output and the
scratch buffers, and calls the compiled core once.
"""

from __future__ import annotations

from typing import Literal, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, _geometry, _parallel
from ._padding import aligned

IntPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], Literal["valid", "same"]]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular", "symmetric"]


def conv2d(input: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None,
           stride: IntPair = 1, padding: Padding = 0, dilation: IntPair = 1,
           groups: int = 1, *, padding_mode: PaddingMode = "zeros",
           out: NDArray | None = None, workers: int | None = None) -> NDArray:
    """2-D convolution layer (cross-correlation), like ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    input : array_like, (N, C, H, W) or unbatched (C, H, W)
    weight : array_like, (K, C // groups, R, S)
    bias : array_like (K,), optional
    stride, dilation : int, (int,) or (int, int), positive
        An int or a list/tuple of one or two ints, as PyTorch accepts (a
        one-element sequence applies to both axes); NumPy integers work, bools
        and floats raise TypeError.
    padding : int, (p,), (ph, pw), (left, right, top, bottom), "valid" or "same"
        "same" keeps ``ceil(H / stride)`` rows: with stride 1 exactly
        PyTorch's padding (total ``dilation * (R - 1)``, the smaller half
        before); with stride > 1 TensorFlow's ``SAME`` rule. The 4-tuple
        (asymmetric padding, in ``torch.nn.functional.pad`` order) is an
        extension.
    groups : int
        Splits input and output channels into this many independent groups.
    padding_mode : {"zeros", "reflect", "replicate", "circular", "symmetric"}
        As ``torch.nn.Conv2d``; "symmetric" (edge sample repeated) is an extension.
    out : ndarray, optional
        Writeable array of the exact result shape and dtype, not overlapping
        the inputs; filled and returned.
    workers : int, optional
        Threads to use; None: the process default (see :func:`set_num_threads`).
        Threads share out images, or output rows, never a sum: the result
        is bitwise the same for any value.

    Returns
    -------
    ndarray (N, K, Ho, Wo) or (K, Ho, Wo)
        float32 when every array argument is float32 or float16, else float64.
    """
    x = np.asarray(input)
    w = np.asarray(weight)
    b = None if bias is None else np.asarray(bias)
    dtype = _geometry.conv2d_dtype(x.dtype, w.dtype, None if b is None else b.dtype)
    geo = _geometry.conv2d(x.shape, w.shape, None if b is None else b.shape, stride, padding,
                           dilation, groups, padding_mode)
    workers = _parallel.resolve_workers(workers)
    _geometry.check_size(geo.out_shape, dtype, "output")

    result = _check_out(out, geo.result_shape, dtype, (x, w, b))
    out4 = result[np.newaxis] if geo.unbatched else result
    if geo.unbatched:
        x = x[np.newaxis]
    if out4.size == 0:
        return result
    if geo.empty_kernel:
        # A reduction over nothing: only the bias remains.
        out4[...] = 0 if b is None else b.astype(dtype)[:, None, None]
        return result

    if x.dtype != dtype:  # also fixes a non-native byte order; any strides are fine
        x = x.astype(dtype)
    x, w = aligned(x), aligned(w)
    bias_arr = np.empty(0, dtype) if b is None else aligned(np.ascontiguousarray(b, dtype=dtype))

    N, C, K, Cg, R, S = geo.N, geo.C, geo.K, geo.Cg, geo.R, geo.S
    Ho, Wo = geo.Ho, geo.Wo
    plan = _core.conv2d_plan((N, C, geo.H, geo.W), K, (R, S), geo.groups, geo.stride,
                             geo.dilation, geo.padding, dtype == np.float64,
                             zero_padding=geo.rule == "constant")
    Hb, Wb = plan.Hb, plan.Wb
    _geometry.check_size((C, Hb, Wb), dtype, "padded input")
    if plan.blocked:
        weights = np.empty(plan.packed_shape, dtype)
        _core.pack_weights(plan, w.astype(dtype, copy=False), weights)
    else:
        weights = np.ascontiguousarray(w, dtype=dtype)
    # Rows past the padded input (small-image tiles' zero rows, a spare row) map to -1.
    row_map = np.concatenate([_geometry.axis_map(geo.rows, geo.rule),
                              np.full(Hb - geo.rows.padded, -1, np.int64)])
    col_map = _geometry.axis_map(geo.cols, geo.rule)

    def scratch():
        # Each thread pads its own copy of one image at a time.
        return (np.empty((C, Hb, Wb), dtype), np.empty(plan.scratch, dtype),
                np.empty(plan.edge, dtype))

    def job(buffers, n0, n1, y0, y1):
        padded, tiles, edge = buffers
        _core.conv2d(plan, x, row_map, col_map, weights, bias_arr, out4, padded, tiles, edge,
                     n0, n1, y0, y1)

    # Pieces of about CHUNK_WORK: whole images when they are small, else row ranges.
    per_row = K * Wo * Cg * R * S
    rows = max(plan.min_rows, int(_parallel.CHUNK_WORK // per_row))
    if rows >= Ho:
        images = rows // Ho
        chunks = [(n, min(n + images, N), 0, Ho) for n in range(0, N, images)]
    else:
        chunks = [(n, n + 1, y, min(y + rows, Ho)) for n in range(N) for y in range(0, Ho, rows)]
    nthreads = _parallel.threads_for(workers, N * Ho * per_row, len(chunks))
    _parallel.run(job, chunks, nthreads, scratch)
    return result


def _check_out(out, shape, dtype, inputs) -> np.ndarray:
    if out is None:
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape) or out.dtype != dtype:
        raise ValueError(f"out must have shape {tuple(shape)} and dtype {dtype}, "
                         f"got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.aligned:
        raise ValueError("out must be aligned for its dtype (it is written through typed pointers)")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    if any(a is not None and np.may_share_memory(out, a) for a in inputs):
        raise ValueError("out must not overlap input, weight or bias")
    return out

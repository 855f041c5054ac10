"""cyconv on Dask arrays: lazy, chunkwise ``convolve2d``, ``correlate2d`` and ``conv2d``.

Install with ``pip install 'cyconv[dask]'``. The functions take the same
arguments as their in-memory counterparts, accept a ``dask.array.Array`` as
the image (``in1`` / ``input``; anything else is wrapped with
``dask.array.asarray``) and return a lazy ``dask.array.Array`` whose values,
shape and dtype are those of the in-memory cyconv function:

    import dask.array as da, numpy as np
    import cyconv.dask as cd

    img = da.random.random((20000, 20000), chunks=(2048, 2048))
    smooth = cd.convolve2d(img, np.ones((5, 5)) / 25, mode="same", boundary="symm")
    smooth[:100, :100].compute()    # reads and filters only the chunks it needs

How it works
------------
Every mode and boundary is reduced to a "valid" filter of a padded image,
as in the in-memory code:

1. The image is cast to the result type and padded along each axis exactly
   like the in-memory function pads it (fill value, periodic, mirrored with
   the edge repeated, ...; at any depth, also deeper than the image). The
   padding is assembled lazily from slices of the image's own edge chunks,
   so only the chunks at the array edges change: interior chunks are used
   as they are.
2. ``dask.array.map_overlap`` hands each chunk its halo from its neighbours:
   exactly the rows and columns the kernel reaches, ``dilation*(R-1)+1 -
   stride`` along each axis (``M - 1`` for convolve2d), split asymmetrically
   ``(before, after)`` with the ``boundary="none"`` that asymmetric halos need
   (the array edges are already padded in step 1). For ``mode="same"`` and
   stride 1 the split follows the "same" centring of even-sized kernels, so
   the output chunks line up with the input chunks.
3. Each task calls the in-memory cyconv function in ``"valid"`` mode (no
   padding) on its chunk plus halo; every output pixel is the same sum of
   the same products as in the in-memory call.

Chunks too small for the halo (and any that would give an empty output
block) are merged into their neighbours before mapping; other chunks are
kept. ``conv2d`` maps over the batch chunks and the spatial chunks; the
channel axis is made a single chunk (every output channel needs all input
channels of its group).

Kernels stay in memory
----------------------
``in2`` / ``weight`` / ``bias`` must be in-memory arrays (NumPy or array-likes):
they are small and every task needs all of them. A Dask collection there
raises ``TypeError`` rather than being computed behind your back; call
``.compute()`` on it first if that is what you want.

Threads: ``workers``
--------------------
Dask's threaded scheduler and each ``distributed`` worker already run one
task per core (``nthreads``). So by default each task calls cyconv with
``workers=1``: Dask supplies the parallelism, one cyconv thread per Dask
thread, and the machine is never oversubscribed. Pass ``workers=n`` (or
``None`` for :func:`cyconv.get_num_threads` in the worker process) when
Dask runs fewer tasks than there are cores, e.g. a ``LocalCluster`` with
``threads_per_worker=1`` and fewer workers than cores, or a single huge
chunk. The result is bitwise the same for any ``workers``.

Results
-------
Shape and dtype are always those of the in-memory call; integer results
(any method) are bitwise equal. Floating results agree to rounding: every
output pixel is the same sum of the same products in the same order, but
the core computes most of each output row with SIMD vectors and its last
few pixels with scalar code, which can round differently, and which pixels
are "last" depends on the chunk width. With ``method="direct"`` and chunks
that span whole rows the result is bitwise equal. With ``method="auto"``
each chunk chooses its own method (the cost model sees the chunk, not the
whole image), which also only changes the rounding.

Reading and writing ``.npy`` files
----------------------------------
Since Dask 2024.12, ``dask.array.from_array`` copies a ``np.memmap`` (such
as ``np.load(path, mmap_mode="r")``) into memory (dask/dask#11850), and a
memmap sent to a worker process is pickled with all its data. Wrap the
file in a small object with ``shape``, ``dtype``, ``ndim``, ``__getitem__``
and ``__setitem__`` that maps the file on each access instead (see the
README); it serves as the source of ``from_array`` and the target of
``dask.array.store``.
"""

from __future__ import annotations

import math
from functools import partial

import numpy as np
from numpy.typing import ArrayLike

try:
    import dask
    from dask.base import tokenize
    import dask.array as da
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("cyconv.dask needs Dask: pip install 'cyconv[dask]' "
                      "(or pip install 'dask[array]')") from exc

from . import _conv2d, _convolve, _geometry, _parallel

__all__ = ["convolve2d", "correlate2d", "conv2d"]

# =========================================================================== public API

def convolve2d(in1, in2: ArrayLike, mode: str = "full", boundary: str = "fill",
               fillvalue: complex = 0, *, method: str = "auto",
               workers: int | None = 1) -> da.Array:
    """Lazy :func:`cyconv.convolve2d` of a Dask array with an in-memory kernel.

    Parameters
    ----------
    in1 : dask.array.Array, 2-D
        The image. Other array-likes are wrapped with ``dask.array.asarray``.
        Chunks smaller than the kernel's halo are merged with a neighbour.
    in2 : array_like, 2-D, in memory
        The kernel. A Dask collection raises ``TypeError`` (compute it first).
    mode, boundary, fillvalue, method
        As :func:`cyconv.convolve2d`, with the same validation and errors,
        raised when the graph is built. The boundary applies at the edges of
        the whole array only; chunks see their neighbours' data.
    workers : int or None, default 1
        cyconv threads inside each Dask task. The default 1 lets Dask's one
        task per core supply the parallelism without oversubscription; see
        the module docstring.

    Returns
    -------
    dask.array.Array
        Lazy; the shape and dtype of the in-memory result, values bitwise
        equal for integers and to rounding for floats (see the module
        docstring). For ``"same"`` the
        chunks are those of ``in1`` (after merging too-small ones); ``"full"``
        grows the last chunk by ``M - 1`` and ``"valid"`` shrinks it.
        ``"valid"`` with a kernel larger than the image (SciPy swaps the two)
        is computed as one task: the image is then smaller than the kernel.
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, method, workers, convolve=True)


def correlate2d(in1, in2: ArrayLike, mode: str = "full", boundary: str = "fill",
                fillvalue: complex = 0, *, method: str = "auto",
                workers: int | None = 1) -> da.Array:
    """Lazy :func:`cyconv.correlate2d` of a Dask array with an in-memory kernel.

    Same arguments, chunking and result as :func:`convolve2d`; ``in2`` is
    conjugated like in :func:`cyconv.correlate2d`.
    """
    return _filter2d(in1, in2, mode, boundary, fillvalue, method, workers, convolve=False)


def conv2d(input, weight: ArrayLike, bias: ArrayLike | None = None, stride=1, padding=0,
           dilation=1, groups: int = 1, *, padding_mode: str = "zeros",
           workers: int | None = 1) -> da.Array:
    """Lazy :func:`cyconv.conv2d` (``torch.nn.functional.conv2d``) of a Dask array.

    Parameters
    ----------
    input : dask.array.Array, (N, C, H, W) or unbatched (C, H, W)
        Other array-likes are wrapped with ``dask.array.asarray``. Tasks run
        over the batch chunks and the spatial (H, W) chunks, each spatial
        chunk with the halo its outputs need; the channel axis is rechunked
        to one chunk.
    weight, bias : array_like, in memory
        A Dask collection raises ``TypeError`` (compute it first).
    stride, padding, dilation, groups, padding_mode
        As :func:`cyconv.conv2d` (including 4-tuple padding, TensorFlow-style
        ``"same"`` with stride and ``"symmetric"``), with the same validation,
        raised when the graph is built. Padding applies at the edges of the
        whole image only.
    workers : int or None, default 1
        cyconv threads inside each Dask task; see the module docstring.

    Returns
    -------
    dask.array.Array (N, K, Ho, Wo) or (K, Ho, Wo)
        Lazy; the shape and dtype of the in-memory result (float32 or
        float64), values equal to rounding (see the module docstring). The
        batch chunks are those of ``input``; K is one chunk; spatial output
        chunks follow the input chunks (divided by the stride). There is no
        ``out=``: write the result with ``dask.array.store``.
    """
    x = _as_dask(input, "input")
    w = _in_memory(weight, "weight")
    b = None if bias is None else _in_memory(bias, "bias")
    _check_known_chunks(x)
    # Every argument is checked here, as the in-memory function checks it.
    dtype = _geometry.conv2d_dtype(x.dtype, w.dtype, None if b is None else b.dtype)
    geo = _geometry.conv2d(x.shape, w.shape, None if b is None else b.shape, stride, padding,
                           dilation, groups, padding_mode)
    _parallel.resolve_workers(workers)  # validate now; resolved again in each task
    if geo.unbatched:
        x = x[np.newaxis]
    N, K, Ho, Wo = geo.out_shape
    top, bottom, left, right = geo.padding
    out_batched = geo.out_shape
    meta = np.empty((0, 0, 0, 0), dtype)
    kwargs = dict(weight=w, bias=b, stride=geo.stride, dilation=geo.dilation,
                  groups=geo.groups, workers=workers)

    if N == 0 or K == 0:
        result = da.zeros(out_batched, dtype=dtype, chunks=(x.chunks[0], -1, -1, -1))
    elif geo.empty_kernel:
        # Degenerate kernels (no taps): the output is the bias alone, which
        # the in-memory function produces; one task per batch chunk.
        whole = x.astype(dtype).rechunk({1: -1, 2: -1, 3: -1})
        result = da.map_blocks(_conv2d_block, whole, dtype=dtype, meta=meta,
                               chunks=(x.chunks[0], (K,), (Ho,), (Wo,)),
                               name=_key("cyconv-conv2d", whole, kwargs, padding,
                                         padding_mode),
                               **dict(kwargs, padding=(left, right, top, bottom),
                                      padding_mode=padding_mode))
    else:
        rows = _geometry.split_axis(geo.rows, x.chunks[2])
        cols = _geometry.split_axis(geo.cols, x.chunks[3])
        xp = x.astype(dtype).rechunk({1: -1})
        zero = np.zeros((), dtype)
        xp = _pad_axis(xp, 2, top, bottom, geo.rule, zero)
        xp = _pad_axis(xp, 3, left, right, geo.rule, zero)
        xp = xp.rechunk({2: rows.padded_chunks, 3: cols.padded_chunks})
        result = da.map_overlap(
            _conv2d_block, xp, depth={0: 0, 1: 0, 2: rows.depth, 3: cols.depth},
            boundary="none", trim=False, allow_rechunk=False, dtype=dtype, meta=meta,
            chunks=(xp.chunks[0], (K,), rows.out_chunks, cols.out_chunks),
            name=_key("cyconv-conv2d", xp, kwargs, rows, cols),
            **dict(kwargs, padding=0, padding_mode="zeros"))
    return result[0] if geo.unbatched else result


# =========================================================================== convolve2d

def _filter2d(in1, in2, mode, boundary, fillvalue, method, workers, *, convolve):
    name = "convolve2d" if convolve else "correlate2d"
    func = _convolve.convolve2d if convolve else _convolve.correlate2d
    x = _as_dask(in1, "in1")
    k = _in_memory(in2, "in2")
    _check_known_chunks(x)
    # Every argument is checked here, as the in-memory function checks it.
    _geometry.check_method(method)
    _parallel.resolve_workers(workers)  # validate now; resolved again in each task
    rule = _geometry.check_filter2d(x.shape, k.shape, mode, boundary, convolve)
    dtype = _geometry.filter2d_dtype(x.dtype, k.dtype, name)
    fill = _geometry.fill_scalar(fillvalue if rule == "constant" else 0, dtype)
    geo = _geometry.filter2d(x.shape, k.shape, mode, boundary, convolve)
    if method == "separable" and k.size:
        # Whether the kernel qualifies depends on it alone: ask on a stand-in
        # image of the kernel's shape, now rather than in every task.
        func(np.broadcast_to(np.zeros((), dtype), k.shape), k, "valid", method=method)
    call = partial(func, boundary=boundary, fillvalue=fillvalue, method=method,
                   workers=workers)
    meta = np.empty((0, 0), dtype)
    key = partial(_key, f"cyconv-{name}", k, mode, boundary, fillvalue, method, workers)

    if geo.swapped:
        # SciPy swaps the inputs: the image is smaller than the in-memory
        # kernel in every dimension, so one task computes it whole.
        return da.map_blocks(_whole_block, x.rechunk(-1), kernel=k, mode=mode, call=call,
                             chunks=tuple((n,) for n in geo.out_shape), dtype=dtype,
                             meta=meta, name=key(x))
    if geo.empty:
        return da.zeros(geo.out_shape, dtype=dtype)  # an empty sum: zeros, like in memory
    if x.size == 0:
        # Nothing to read: the output is all fill; the in-memory function
        # computes it from a zero-size stand-in of the image.
        stand_in = np.broadcast_to(np.zeros((), x.dtype), x.shape)
        return da.from_array(call(stand_in, k, mode))

    rows = _geometry.split_axis(geo.rows, x.chunks[0])
    cols = _geometry.split_axis(geo.cols, x.chunks[1])
    top, bottom, left, right = geo.pads
    xp = x.astype(dtype)
    xp = _pad_axis(xp, 0, top, bottom, geo.rule, fill)
    xp = _pad_axis(xp, 1, left, right, geo.rule, fill)
    xp = xp.rechunk((rows.padded_chunks, cols.padded_chunks))
    return da.map_overlap(
        _valid_block, xp, depth={0: rows.depth, 1: cols.depth}, boundary="none", trim=False,
        allow_rechunk=False, chunks=(rows.out_chunks, cols.out_chunks), dtype=dtype,
        meta=meta, name=key(xp, rows, cols), kernel=np.asarray(k, dtype=dtype), call=call)


# =========================================================================== tasks

def _valid_block(block, *, kernel, call):
    """One chunk plus its halo, already padded: the in-memory valid filter."""
    return call(block, kernel, "valid")


def _whole_block(block, *, kernel, mode, call):
    return call(block, kernel, mode)


def _conv2d_block(block, *, weight, bias, stride, padding, dilation, groups, padding_mode,
                  workers):
    return _conv2d.conv2d(block, weight, bias, stride, padding, dilation, groups,
                          padding_mode=padding_mode, workers=workers)


# =========================================================================== padding

def _pad_axis(x: da.Array, axis: int, before: int, after: int, np_mode: str,
              fill: np.ndarray) -> da.Array:
    """x extended along `axis` like np.pad(..., np_mode), at any depth, lazily.

    The padding is the source index map of np.pad on an index range (what
    the in-memory code gathers from), cut into runs of consecutive (or
    reversed, or repeated) indices: each run is one slice of x, the fill is
    a constant block. The chunks of x itself are untouched.
    """
    if before == 0 and after == 0:
        return x
    n = x.shape[axis]
    if np_mode == "constant":
        src = np.pad(np.arange(n), (before, after), mode="constant", constant_values=-1)
    else:
        src = np.pad(np.arange(n), (before, after), mode=np_mode)
    pieces = _runs(x, axis, src[:before], fill) + [x] + _runs(x, axis, src[before + n:], fill)
    return da.concatenate(pieces, axis=axis)


def _runs(x: da.Array, axis: int, src: np.ndarray, fill: np.ndarray) -> list[da.Array]:
    def take(sl):
        return x[(slice(None),) * axis + (sl,)]

    pieces = []
    i, m = 0, len(src)
    while i < m:
        start = int(src[i])
        step = int(src[i + 1]) - start if i + 1 < m and src[i + 1] >= 0 else 1
        if start < 0 or step not in (-1, 0, 1):
            step = 1
        j = i + 1
        if start < 0:
            while j < m and src[j] < 0:
                j += 1
        else:
            while j < m and src[j] == src[j - 1] + step:
                j += 1
        length = j - i
        if start < 0:
            shape = x.shape[:axis] + (length,) + x.shape[axis + 1:]
            chunks = x.chunks[:axis] + ((length,),) + x.chunks[axis + 1:]
            pieces.append(da.full(shape, fill, dtype=x.dtype, chunks=chunks))
        elif step == 1:
            pieces.append(take(slice(start, start + length)))
        elif step == -1:
            pieces.append(take(slice(start - length + 1, start + 1))
                          [(slice(None),) * axis + (slice(None, None, -1),)])
        else:
            pieces.append(da.repeat(take(slice(start, start + 1)), length, axis=axis))
        i = j
    return pieces


# =========================================================================== helpers

def _key(prefix: str, *args) -> str:
    """The output's name: the prefix and a hash of everything it depends on."""
    return f"{prefix}-{tokenize(*args)}"


def _as_dask(a, name: str) -> da.Array:
    if isinstance(a, da.Array):
        return a
    if dask.is_dask_collection(a):
        raise TypeError(f"{name} must be a dask.array.Array or an in-memory array, "
                        f"got the Dask collection {type(a).__name__}")
    return da.asarray(a)


def _in_memory(a, name: str) -> np.ndarray:
    if dask.is_dask_collection(a):
        raise TypeError(f"{name} must be an in-memory array (it is small and every task "
                        f"needs all of it), got the Dask collection {type(a).__name__}; "
                        f"call .compute() on it first")
    return np.asarray(a)


def _check_known_chunks(x: da.Array) -> None:
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError("the input has unknown chunk sizes (NaN); call "
                         ".compute_chunk_sizes() on it first")

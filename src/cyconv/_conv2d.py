"""conv2d: torch.nn.functional.conv2d semantics on NumPy arrays.

This layer validates the arguments, resolves padding into per-side amounts
and source-index maps, packs the weights, allocates the output and the
scratch buffers, and calls the compiled core for each piece of the work.
Strided layers with many channels first gather their pixels' patches
(_core.patches) and run as 1x1 layers on them (_prepare says when).
"""

from __future__ import annotations

import math
import threading
from typing import Literal, NamedTuple, Sequence, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core, _geometry, _memory, _methods, _parallel, _scratch
from ._padding import aligned, padded_planes

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
    prep = _prepared_call(x, w, b, stride, padding, dilation, groups, padding_mode, workers)
    workers = _parallel.resolve_workers(workers)
    result = _check_out(out, prep.result_shape, prep.dtype, (x, w, b))
    if prep.small is not None and _ran_small(prep.small, x, w, b, result):
        return result
    if prep.geo.unbatched:
        _execute_planned(prep, x[np.newaxis], w, b, result[np.newaxis], workers)
    else:
        _execute_planned(prep, x, w, b, result, workers)
    return result


def _execute(prep: _Prepared, x, w, b, out4, workers: int) -> None:
    """The prepared call on the 4-D input x (weights w, bias b or None)
    into out4: the rest of conv2d once its arguments are checked. Callers
    within the package that hold a call's _Prepared (conv_transpose2d's
    phases) run it here, without conv2d's argument checks."""
    if prep.small is None or not _ran_small(prep.small, x, w, b, out4):
        _execute_planned(prep, x, w, b, out4, workers)


def _execute_planned(prep: _Prepared, x, w, b, out4, workers: int) -> None:
    """_execute without the kept one-piece call."""
    geo, dtype, plan = prep.geo, prep.dtype, prep.plan
    if plan is None:
        if out4.size and geo.empty_kernel:
            # A reduction over nothing: only the bias remains.
            out4[...] = 0 if b is None else b.astype(dtype)[:, None, None]
        return

    if prep.pixel is not None:
        _pixel_conv(x, w, b, geo, dtype, out4, workers, prep.pixel)
        return
    if prep.taken is not None:
        # A strided 1x1 layer reads only these pixels: one contiguous copy,
        # read in place by every piece (each piece gathered them from the
        # strided view: 256 -> 512 @56/2 ran 4-12 % slower).
        x = x[..., prep.taken[0], prep.taken[1]].astype(dtype, order="C")
    if x.dtype != dtype:  # also fixes a non-native byte order; any strides are fine
        x = x.astype(dtype)
    x, w = aligned(x), aligned(w)
    bias_arr = _NO_BIAS[dtype] if b is None else aligned(np.ascontiguousarray(b, dtype=dtype))
    if prep.lowered is not None:   # as a 1x1 layer on the pixels' patches (_prepare)
        w = w.reshape(geo.K, -1, 1, 1)
    packing = None
    if plan.pack_inline or plan.weight_stage:   # packed or staged as it runs: any layout
        weights = w.astype(dtype, copy=False)
    elif plan.blocked:   # packed by the pieces that need them (_Packing)
        weights = _scratch.empty("conv2d.packed", plan.packed_shape, dtype)
        packing = _Packing(plan, w.astype(dtype, copy=False), weights,
                           once=prep.lowered is None)
    else:
        weights = np.ascontiguousarray(w, dtype=dtype)
    if prep.lowered is None:
        _run(prep, x, weights, bias_arr, out4, workers, packing)
        return
    low = prep.lowered
    plane = _scratch.empty("conv2d.plane", (low.plan.Hp, low.plan.Wp), dtype)
    for n0 in range(0, geo.N, low.images):
        n1 = min(n0 + low.images, geo.N)
        if low.stacked:   # the group's patches as one image of n * Ho rows (_prepare)
            n, Ho, Wo = n1 - n0, geo.Ho, geo.Wo
            band = low.band if n == low.images else low.last
            cols = _scratch.empty("conv2d.patches", (1, low.patches, n * Ho, Wo), dtype)
            _core.patches(low.plan, x[n0:n1], low.row_map, low.col_map, cols[0], plane, 0)
            rows = _scratch.empty("conv2d.stacked", (1, geo.K, n * Ho, Wo), dtype)
            _run(band, cols, weights, bias_arr, rows, workers, packing)
            out4[n0:n1] = rows[0].reshape(geo.K, n, Ho, Wo).transpose(1, 0, 2, 3)
            continue
        for y0 in range(0, geo.Ho, low.band.Ho):
            band = low.band if y0 + low.band.Ho <= geo.Ho else low.last
            cols = _scratch.empty("conv2d.patches", (n1 - n0, low.patches, band.Ho, geo.Wo),
                                  dtype)
            for i in range(n1 - n0):
                _core.patches(low.plan, x[n0 + i:n0 + i + 1], low.row_map, low.col_map, cols[i],
                              plane, y0)
            _run(band, cols, weights, bias_arr, out4[n0:n1, :, y0:y0 + band.Ho], workers,
                 packing)


class _Packing:
    """A blocked plan's weights, packed block by block as the pieces first
    run them, rather than all of them before any piece starts (512 -> 512
    3x3: 9.4 MB written to memory and read back). On several threads each
    piece packs its blocks here first (blocks()), so that the threads share
    the packing; on one, the core packs each block as its tiles start, and
    they read it from L2. `done` holds the packed blocks' marks (nonzero
    once packed; the core reads them: _core.pack_weights). A block's bits
    are the same whoever packs it."""

    def __init__(self, plan, source, packed, once=False):
        self.plan, self.source, self.packed = plan, source, packed
        self.once = once   # the weights serve a single _run (which may then pack into one slot)
        self.done = bytearray(packed.shape[0])   # (the core's uint8 marks)
        self.locks = None   # one per block, once threads share the pieces

    def share(self) -> None:
        """Before threads call blocks()."""
        if self.locks is None:
            self.locks = [threading.Lock() for _ in range(len(self.done))]

    def blocks(self, b0: int, b1: int) -> None:
        """Make blocks b0 <= b < b1 packed (b1 = -1: up to the last). Blocks
        another piece is packing are waited for last, after packing the
        others (two pieces that start together then share their blocks)."""
        busy = []
        for b in range(b0, len(self.done) if b1 < 0 else b1):
            if not self.done[b]:
                if self.locks[b].acquire(blocking=False):
                    self._pack(b)
                else:
                    busy.append(b)
        for b in busy:
            self.locks[b].acquire()
            self._pack(b)

    def _pack(self, b: int) -> None:
        # Block b, its lock held (released here).
        try:
            if not self.done[b]:
                self.done[b] = _core.pack_weights(self.plan, self.source, self.packed, b, b + 1)
        finally:
            self.locks[b].release()


def _run(prep: _Prepared, x, weights, bias_arr, out4, workers: int,
         packing: _Packing | None = None) -> None:
    """The prepared layer on input x (N images) into out4, in pieces over
    `workers` threads; `packing` packs `weights` as the pieces need them."""
    plan, N, Ho, per_row = prep.plan, x.shape[0], prep.Ho, prep.per_row
    Hb, Wb = plan.Hb, plan.Wb
    dtype = weights.dtype
    edge = plan.edge
    if plan.weight_stage and weights.strides != _c_strides(weights.shape, dtype.itemsize):
        edge = max(edge, plan.weight_stage)   # the core stages each block's weights there

    padded_shape = plan.padded_shape
    core = _methods.core_function(_core.conv2d, dtype)
    if N * Ho * per_row < min(_parallel.MIN_WORK_PER_THREAD, _parallel.CHUNK_WORK):
        # Microseconds of work, a single piece: no CPU slot (as _parallel.run_rows).
        if plan.gathers:   # its tiles run across the images: the core pads them all
            padded_shape = (padded_shape[0] * N,) + padded_shape[1:]
        packed_blocks = () if packing is None else (packing.source, packing.done)
        core(plan, x, prep.row_map, prep.col_map, weights, bias_arr, out4,
             *_buffers(padded_shape, plan.scratch, edge, dtype), 0, N, 0, Ho, 0, -1,
             *packed_blocks)
        return

    def scratch():
        # Each thread pads its own copy of one image at a time (or of each
        # image of a piece whose blocks run outer: padded_shape set below).
        return _buffers(padded_shape, plan.scratch, edge, dtype)

    # The core packs the blocks as it runs them while one thread runs the
    # pieces (_Packing); set below when the pieces share threads.
    threads_pack = False

    def job(buffers, n0, n1, y0, y1, b0=0, b1=-1):
        padded, tiles, edge = buffers
        packed_blocks = ()   # (source to pack from, or None; the blocks' marks)
        if packing is not None:
            if threads_pack:
                packing.blocks(b0, b1)
                packed_blocks = (None, packing.done)
            else:   # the core packs them
                packed_blocks = (packing.source, packing.done)
        core(plan, x, prep.row_map, prep.col_map, weights, bias_arr, out4, padded, tiles, edge,
             n0, n1, y0, y1, b0, b1, *packed_blocks)

    # Pieces of about CHUNK_WORK: whole images when they are small, else row
    # ranges. When the weights exceed L2 (the blocks run outer), each piece
    # streams them from memory once: then pieces take as many rows as one
    # block's CHUNK_WORK allows and a range of the blocks (512 -> 512 3x3/2
    # @14x14: 4 pieces of every block read the 9.4 MB of weights 4 times).
    blocks = plan.packed_shape[0] if plan.splits_blocks else 1
    rows = max(plan.min_rows, int(_parallel.CHUNK_WORK * blocks // per_row))
    # Fewer pieces than the threads could share: PIECES_PER_THREAD each.
    wanted = _parallel.pieces_for(workers, N * Ho * per_row, N * Ho)
    if -(-N * Ho // rows) < wanted:
        rows = max(plan.min_rows, -(-N * Ho // wanted))
    gathered_pieces = 0
    if 1 < plan.gather_images <= N and rows < plan.gather_images * Ho:
        # Tiles gathered across images leave out columns of zero padding in
        # pieces of gather_images images only: the batch goes in pieces of
        # at least that many, as many for each thread. Zen 4, one thread,
        # 32 x 64 -> 64 3x3 @7x7 padding 2 (an input gradient of a "valid"
        # layer): 2 pieces of 16 images against 3 of 11, 1.16x.
        threads = _parallel.threads_for(workers, N * Ho * per_row, N)
        gathered_pieces = threads * max(1, N // (threads * plan.gather_images))
        rows = -(-N // gathered_pieces) * Ho
    slot = (workers == 1 and packing is not None and packing.once and blocks > 1 and N > 1
            and weights.nbytes >= ONE_SLOT_MIN_WEIGHT_BYTES
            and N * math.prod(padded_shape) * dtype.itemsize <= ONE_SLOT_PADDED_BYTES)
    if slot:
        # One thread, weights past L2: the first piece packed each block
        # into memory as it ran it, and any other piece read them back
        # (9.4 MB for 512 -> 512 3x3). Instead the batch is one piece and
        # the core packs each block into one slot, where its tiles read it
        # from L2. The same bits either way. Zen 4, one thread: 8 x 512 ->
        # 512 3x3 @7x7 1.10x, 4 x 1.16x, 2 x 1.17x; 8 x 256 -> 256 @14x14
        # 1.03-1.07x; tiles gathered across the images: 8 x 512 -> 512
        # 3x3/2 @14x14 1.02-1.11x, @4x4 1.18x, 2 x 3x3/2 @14x14 1.14-1.3x;
        # 8 x 1x1 layers of 1-4 MB 0.99-1.05x; 32 x 512 -> 512 @7x7 (5.3
        # MB of padded images) about even. Batches past
        # ONE_SLOT_PADDED_BYTES stay in pieces: in groups that packed each
        # block again, 64 x 256 -> 256 @14x14 ran 0.92-0.98x.
        rows = N * Ho
        weights = _scratch.empty("conv2d.slot", (1,) + weights.shape[1:], dtype)
        padded_shape = (padded_shape[0] * N,) + padded_shape[1:]
    if gathered_pieces and not slot:
        # (the first N % gathered_pieces pieces an image more: the first has the most)
        q, r = divmod(N, gathered_pieces)
        ends = [q * i + min(i, r) for i in range(gathered_pieces + 1)]
        chunks = [(n0, n1, 0, Ho) for n0, n1 in zip(ends, ends[1:])]
    elif rows >= Ho:
        images = rows // Ho
        chunks = [(n, min(n + images, N), 0, Ho) for n in range(0, N, images)]
    else:
        chunks = [(n, n + 1, y, min(y + rows, Ho)) for n in range(N) for y in range(0, Ho, rows)]
    # Pieces share the blocks out between threads. With one thread, a piece
    # whose input is padded runs all of them: split into ranges of blocks,
    # each would pad the same input again (256 -> 256 3x3 @14x14: 1.02-1.03x).
    if blocks > 1 and (workers > 1 or (Hb, Wb) == x.shape[2:]):
        chunks = _split_blocks(chunks, blocks, per_row)
    piece_images = chunks[0][1] - chunks[0][0]   # (the first piece has the most)
    if (plan.splits_blocks or plan.gathers) and piece_images > 1 and not slot:
        # Pieces of several images whose blocks run outer, or whose tiles
        # run across images: the core pads them all, and runs each block
        # over them while its weights stay in cache (_core._conv2d_range).
        padded_shape = (padded_shape[0] * piece_images,) + padded_shape[1:]
    nthreads = _parallel.threads_for(workers, N * Ho * per_row, len(chunks))
    threads_pack = packing is not None and nthreads > 1 and len(chunks) > 1
    if threads_pack:
        packing.share()
    _parallel.run(job, chunks, nthreads, scratch)


def _ran_small(small, x, w, b, out) -> bool:
    """Whether the kept one-piece call `small` (_core.SmallConv2d) ran the
    call; else nothing was done. It declines what _run would not run as
    one piece now (tests change the limits)."""
    return (small.work < min(_parallel.MIN_WORK_PER_THREAD, _parallel.CHUNK_WORK)
            and small.run(x, w, b, out, _scratch.poison))


def _small_call(geo, dtype, plan, row_map, col_map, per_row: int):
    """A _core.SmallConv2d for a call _run makes in one piece (per_row
    multiply-adds an output row), with its own scratch of at most
    SMALL_CALL_BYTES; else None."""
    if geo.N * geo.Ho * per_row >= min(_parallel.MIN_WORK_PER_THREAD, _parallel.CHUNK_WORK):
        return None
    packs = plan.blocked and not plan.pack_inline and not plan.weight_stage   # as _execute
    sizes = (math.prod(plan.padded_shape) * (geo.N if plan.gathers else 1), plan.scratch,
             max(plan.edge, plan.weight_stage), math.prod(plan.packed_shape) if packs else 0)
    if sum(sizes) * dtype.itemsize > SMALL_CALL_BYTES:
        return None
    buffers = [_scratch.aligned_bytes(max(1, n) * dtype.itemsize) for n in sizes]
    marks = np.zeros(plan.packed_shape[0] if packs else 1, np.uint8)
    return _core.SmallConv2d(plan, row_map, col_map, geo.N, *buffers, marks)


# The most scratch a kept one-piece call holds (bytes): up to _MAX_PREPARED are
# kept, 16 MB at most.
SMALL_CALL_BYTES = 64 << 10


def _buffers(padded_shape, tiles: int, edge: int, dtype) -> tuple:
    """The core conv2d's scratch, kept by this thread: the padded input,
    the tiles' sums and the edge columns."""
    return (_scratch.empty("conv2d.padded", padded_shape, dtype),
            _scratch.empty("conv2d.tiles", (tiles,), dtype),
            _scratch.empty("conv2d.edge", (edge,), dtype))


# One thread runs a batch as one piece, its weights packed block by block
# into one slot (_run), when they are at least ONE_SLOT_MIN_WEIGHT_BYTES
# (past L2: pieces read them back from memory) and the batch's padded
# copies at most ONE_SLOT_PADDED_BYTES.
ONE_SLOT_MIN_WEIGHT_BYTES = 1 << 20
ONE_SLOT_PADDED_BYTES = 8 << 20


def _c_strides(shape, itemsize: int) -> tuple:
    """Byte strides of a C-contiguous array of this shape (whatever its
    extents: the core compares all four)."""
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _split_blocks(chunks, blocks: int, per_row: int) -> list:
    """Pieces (n0, n1, y0, y1) as (n0, n1, y0, y1, b0, b1): their `blocks`
    channel blocks split into ranges of about CHUNK_WORK. Each block computes
    the same bits whichever piece it is in."""
    pieces = []
    for n0, n1, y0, y1 in chunks:
        work = (n1 - n0) * (y1 - y0) * per_row
        step = -(-blocks // min(blocks, max(1, int(work // _parallel.CHUNK_WORK))))
        pieces += [(n0, n1, y0, y1, b, min(b + step, blocks)) for b in range(0, blocks, step)]
    return pieces


class _Prepared(NamedTuple):
    """What conv2d derives from the shapes, dtypes and arguments alone
    (result_shape, Ho and per_row are geo's, kept as values: geo's
    properties recompute them on every read)."""
    geo: _geometry.Conv2d
    dtype: np.dtype
    plan: object            # _core.Conv2dPlan, or None when there is nothing to compute
    row_map: np.ndarray     # padded buffer rows -> input rows (-1: padding), read-only
    col_map: np.ndarray     # padded columns -> input columns, read-only
    result_shape: tuple
    Ho: int
    per_row: int            # multiply-adds per output row of one image
    taken: tuple | None = None   # (rows, cols) slices of the input the plan reads, or all
    lowered: _Lowered | None = None   # plan is the 1x1 layer on the patches, or None
    pixel: _PixelConv | None = None   # runs _pixel_conv instead of the plan, or None
    small: object = None   # _core.SmallConv2d: the call kept as one piece, or None


# Prepared calls by _key: a repeated call (a layer in a training loop) skips
# the argument checks and the plan, about 25 of conv2d's 40 microseconds on
# small layers. Only calls whose arguments passed every check are kept.
_prepared: dict = {}
_MAX_PREPARED = 256


def _typed(value):
    # Type and value, so that 2, 2.0, True and np.int64(2) (equal, with equal
    # hashes) stay apart: the checks accept some of them and reject others.
    if type(value) is tuple or type(value) is list:
        return type(value), tuple(_typed(v) for v in value)
    return type(value), value


def _prepared_call(x, w, b, stride, padding, dilation, groups, padding_mode,
                   workers) -> _Prepared:
    """The call's checked arguments and plan, made once per key."""
    key = _key(x, w, b, stride, padding, dilation, groups, padding_mode)
    prep = _prepared.get(key) if key is not None else None
    if prep is None:
        prep = _prepare(x, w, b, stride, padding, dilation, groups, padding_mode, workers)
        if key is not None:
            if len(_prepared) >= _MAX_PREPARED:
                _prepared.clear()
            _prepared[key] = prep
    return prep


def reads_weight_views(x, w, stride, padding, dilation, groups, once=False) -> bool:
    """Whether conv2d(x, w, ...) takes weights of any layout without a
    NumPy copy: small-image tiles stage each block of a view, and blocked
    tiles pack it (_core._pack_block transposes the input gradient's
    flipped view channel by channel). Other plans want them C-contiguous,
    and NumPy's copy of a view with flipped taps runs an inner loop per row
    of taps. once: only where the view is read once a call (small-image
    tiles stage each block of it again for every image)."""
    prep = _prepared_call(x, w, None, stride, padding, dilation, groups, "zeros", None)
    if prep.plan is None or prep.lowered is not None:
        return False
    if prep.plan.weight_stage > 0:
        return not once or x.shape[0] == 1
    return prep.plan.blocked


def _key(x, w, b, stride, padding, dilation, groups, padding_mode):
    """The _prepared key of a call, or None when an argument is unhashable."""
    arrays = x.shape, x.dtype, w.shape, w.dtype, None if b is None else (b.shape, b.dtype)
    if (type(stride) is int and type(padding) is int and type(dilation) is int
            and type(groups) is int and type(padding_mode) is str):
        # The common call, without _typed's calls: its ints and string in
        # place, where other calls' keys hold (type, value) pairs.
        return arrays + (stride, padding, dilation, groups, padding_mode) + _levels()
    key = arrays + (_typed(stride), _typed(padding), _typed(dilation), _typed(groups),
                    _typed(padding_mode)) + _levels()
    try:
        hash(key)
    except TypeError:   # e.g. an array as stride: the full checks explain what is wrong
        return None
    return key


def _levels() -> tuple:
    """The kernel choices a plan depends on (tests switch them)."""
    return (_core.level_name(), _core.depthwise_lanes(), _core.gathered_tiles(),
            _core.rows_512(), _PIXEL_CONV)


def _prepare(x, w, b, stride, padding, dilation, groups, padding_mode, workers) -> _Prepared:
    """Check every argument but `out` (raising what is wrong) and plan the call."""
    dtype = _geometry.conv2d_dtype(x.dtype, w.dtype, None if b is None else b.dtype)
    geo = _geometry.conv2d(x.shape, w.shape, None if b is None else b.shape, stride, padding,
                           dilation, groups, padding_mode)
    _parallel.resolve_workers(workers)   # checked here too: the errors keep their order
    _geometry.check_size(geo.out_shape, dtype, "output")
    shape, per_row = geo.result_shape, geo.K * geo.Wo * geo.Cg * geo.R * geo.S
    if geo.N * geo.K * geo.Ho * geo.Wo == 0 or geo.empty_kernel:
        return _Prepared(geo, dtype, None, None, None, shape, geo.Ho, per_row)
    rows, cols, stride, taken = geo.rows, geo.cols, geo.stride, None
    if geo.R == geo.S == 1 and geo.stride != (1, 1) and geo.rule == "constant":
        # A strided 1x1 layer (ResNet's downsampling shortcuts) reads every
        # sh-th row and sw-th column: it is the unit-stride 1x1 layer of
        # those pixels, whose flat tiles waste nothing (row tiles of strided
        # layers waste the end of each output row: 5 of 12 pixels at 7 wide).
        # Each output is the same sum over the channels, to the bit.
        (rows, row_slice), (cols, col_slice) = _sampled_axis(rows), _sampled_axis(cols)
        stride, taken = (1, 1), (row_slice, col_slice)
    plan, row_map, col_map = _plan(geo, dtype, geo.C, rows, cols, (geo.R, geo.S), stride,
                                   geo.dilation)
    lowered = None
    patches = geo.C * geo.R * geo.S
    row_bytes = patches * geo.Wo * dtype.itemsize   # one output row's patches
    block_bytes = np.prod(plan.packed_shape[1:]) * dtype.itemsize if plan.blocked else 0
    if (geo.stride != (1, 1) and geo.R * geo.S > 1 and plan.blocked
            and row_bytes <= LOWER_MAX_BYTES and block_bytes > LOWER_MIN_BLOCK_BYTES
            and _lowering_pays(geo.Wo, plan.tile_pixels, block_bytes)):
        # A strided layer's tiles stream each channel block's weights from
        # L2 for every tile, and its rows' last tiles are narrow (3x3/2
        # @14x14: rows of 7 in tiles of 6 + 2). As a 1x1 layer on the
        # pixels' patches (input channels (c, r, s)) its flat tiles run
        # across the rows and its weights go in chunks that stay in L1
        # (_plan_chunks). Measured on Zen 3, patches included: 512 -> 512
        # 3x3/2 @14x14 1.35x faster, 256 -> 256 @28x28 1.2x, @112x112
        # 1.2x; 128 channels gain on rows of 7-14 pixels (1.0-1.25x) and
        # lose on rows of 32-112 (0.8-0.9x); with 64 channels about even,
        # with 32 up to 2x slower. Rows of 17-31 pixels that end in a narrow
        # tile (Wo not a multiple of the tile's pixels) gain too: a narrow
        # tile streams the block's weights as a whole one does (2026-12-02,
        # scratch kept: 128-224 channels 1.02-1.29x at Wo = 17, 19, 20, 22,
        # 23, 25, 26, 28, 31; lowered, Wo = 18, 24, 30 lost 0.83-0.89x, and
        # Wo = 32 0.90-1.07x).
        # Since the direct tiles pack each block as they start and the
        # packing prefetches (2026-12-03, Zen 4, one image, direct against
        # lowered): rows of whole tiles run direct (AVX-512's 14 pixels:
        # 128-160 channels @14 1.10-1.15x; AVX2's 6 and 12: 1.11-1.15x),
        # and on any rows the weights a tile streams decide: up to 16 KB a
        # tile pixel direct (AVX-512, 128 channels: 147 KB / 14, rows of
        # 28 and 42 1.04-1.09x), more lowered (AVX-512, 256 channels: 21
        # KB, rows of 42 and 56 0.92-0.94x direct; AVX2, 256: 24.5 KB,
        # 0.93x; AVX2, 192: 18 KB, rows of 32-56 0.89-1.2x). Those
        # AVX-512 figures no longer hold on Zen 4: see _lowering_pays.
        # Each pixel's sum is the same, to the bit.
        # Patches of at most LOWER_MAX_BYTES at a time: groups of images (no
        # more than the batch), or bands of rows of one image. A plan for
        # the images there are lets a lone image's 1x1 layer pack its
        # weights chunk by chunk as it runs (_core._plan_chunks); planned
        # for 9 images, 512 -> 512 3x3/2 @14x14 packed all 9.4 MB of them
        # first and ran 1.28x slower (Zen 4).
        # Images of fewer pixels than the layer has output channels are
        # stacked, as many as keep that so: their patches as one image's
        # rows (image i's after image i - 1's), the result gathered back
        # into the batch. The 1x1 layer's strips then run across the
        # images, and pack its weights as they run as for a lone image
        # (512 -> 512 3x3/2 @14x14 in twos 1.29x faster, in fours 1.2x,
        # eights 1.15x; 256 -> 256 @28x28 in twos, stacked past that
        # limit: 0.94-0.98x).
        rows = min(geo.Ho, LOWER_MAX_BYTES // row_bytes)
        images = (min(geo.N, max(1, LOWER_MAX_BYTES // (row_bytes * geo.Ho))) if rows == geo.Ho
                  else 1)
        stack = min(images, geo.K // (geo.Ho * geo.Wo))
        if stack > 1:   # groups of `stack` images, the last of the rest
            images, heights = stack, (stack * geo.Ho, (geo.N % stack or stack) * geo.Ho)
        else:   # `images` per group, or bands of `rows`, the last of the rest
            stack, heights = 0, (rows, (geo.Ho - 1) % rows + 1)
        band, last = (_band(geo, dtype, patches, 1 if stack else images, h, rows < geo.Ho,
                            per_row) for h in heights)
        if band.plan.pack_inline != last.plan.pack_inline:
            # Every run takes the weights conv2d prepared for band's plan:
            # packed first, or as given to pack as it goes. A last group of
            # fewer rows that planned otherwise read the packed weights as
            # the given ones, out of bounds (320 -> 400 3x3/(2, 1) @14x7,
            # 8 images stacked in groups of 5 and 3). Both pack first then.
            band, last = (_band(geo, dtype, patches, 1 if stack else images, h, True, per_row)
                          for h in heights)
        lowered = _Lowered(plan, row_map, col_map, patches, images, stack > 1, band, last)
        plan = band.plan   # how to pack the weights
    pixel = None
    if lowered is None and taken is None and _pixel_conv_fits(geo, dtype):
        pixel = _pixel_conv_plan(geo)
    small = None
    if lowered is None and taken is None and pixel is None:
        small = _small_call(geo, dtype, plan, row_map, col_map, per_row)
    return _Prepared(geo, dtype, plan, row_map, col_map, shape, geo.Ho, per_row, taken, lowered,
                     pixel, small)


# Layers of at most this many taps a group (Cg * R * S, R * S > 1) and at
# least PIXEL_CONV_CHANNELS output channels a group (a block of the kernel's;
# fewer repeat some: 32 x 1 -> 6 5x5 @28x28 0.96x the tiles' speed, AVX2
# 0.70x), at unit column stride, on rows of at least one vector, run
# _pixel_conv. Zen 5, float32, one thread, against the tiles: 64 x 1 -> 16
# 3x3 @28x28 1.23x (with a bias 1.32x), 3 -> 16 @32x32 1.36x, 3 -> 64
# 1.57x, 8 x 1 -> 16 @64x64 1.65x; AVX2 level 1.20-1.73x.
PIXEL_CONV_TAPS = 27
PIXEL_CONV_CHANNELS = 8
# False: no layer does (tests compare the plans).
_PIXEL_CONV = True


def _pixel_conv_fits(geo, dtype) -> bool:
    lanes = _core.tile_sizes()["row_lanes_f64" if dtype == np.float64 else "row_lanes_f32"]
    return (_PIXEL_CONV and geo.stride[1] == 1 and geo.R * geo.S > 1 and geo.Wo >= lanes
            and geo.K // geo.groups >= PIXEL_CONV_CHANNELS
            and geo.Cg * geo.R * geo.S <= min(PIXEL_CONV_TAPS, _core.PIXEL_TAPS_MAX))


class _PixelConv(NamedTuple):
    """_pixel_conv's layout of the padded input."""
    Hp: int
    Wp: int
    offsets: np.ndarray     # each tap's (c, r, s) element offset in a padded image
    row_step: int           # elements from one output row's input to the next's


def _pixel_conv_plan(geo) -> _PixelConv:
    Hp = geo.rows.before + geo.rows.size + geo.rows.after
    Wp = geo.cols.before + geo.cols.size + geo.cols.after
    (sh, _), (dh, dw) = geo.stride, geo.dilation
    offsets = np.array([(c * Hp + r * dh) * Wp + s * dw for c in range(geo.Cg)
                        for r in range(geo.R) for s in range(geo.S)], np.int64)
    offsets.flags.writeable = False
    # (a lone output row: any stride, even 2**62)
    return _PixelConv(Hp, Wp, offsets, sh * Wp if geo.Ho > 1 else 0)


def _pixel_conv(x, w, b, geo, dtype, out4, workers: int, pixel: _PixelConv) -> None:
    """A layer of few taps (a first layer: 1-3 input channels) with the
    output pixels in the vector lanes (_core.pixel_conv): blocks of output
    channels by two vectors of a row, each tap's input vector loaded once
    for the block, the results stored straight into the planes. The input
    is padded first (a copy, small for few channels). Per pixel the sum runs
    in (c, r, s) order from zero and the bias is added once: the tiles' bits."""
    N, C, K, Cg, G = geo.N, geo.C, geo.K, geo.Cg, geo.groups
    Ho, Wo, Kg = geo.Ho, geo.Wo, K // G
    rows, cols = geo.rows, geo.cols
    Hp, Wp, offsets, row_step = pixel
    padded = np.ascontiguousarray(padded_planes(x, (rows.before, rows.after),
                                                (cols.before, cols.after), geo.rule,
                                                dtype)).reshape(-1)
    # (G, taps, Kg): each group's taps x channels, channels innermost
    wt = np.ascontiguousarray(np.asarray(w, dtype).reshape(G, Kg, -1).transpose(0, 2, 1))
    bias = _NO_BIAS[dtype] if b is None else np.ascontiguousarray(b, dtype)
    direct = out4.flags.c_contiguous
    dest = out4 if direct else np.empty(out4.shape, dtype)
    flat = dest.reshape(-1)

    def job(_, n0, n1):
        for grp in range(G):
            _core.pixel_conv(padded[(n0 * C + grp * Cg) * Hp * Wp:], C * Hp * Wp, row_step,
                             offsets, wt[grp], bias[grp * Kg:(grp + 1) * Kg],
                             flat[(n0 * K + grp * Kg) * Ho * Wo:], K * Ho * Wo, Ho * Wo, Wo,
                             n1 - n0, Ho, Wo)

    work = float(Ho) * Wo * K * offsets.size
    if work * N < _parallel.MIN_WORK_PER_THREAD:   # microseconds: no CPU slot
        job(None, 0, N)
    else:
        chunks = _parallel.chunks_of(N, work, workers)
        _parallel.run(job, chunks, _parallel.threads_for(workers, work * N, len(chunks)))
    if not direct:
        out4[...] = dest


_NO_BIAS = {np.dtype(np.float32): np.zeros(0, np.float32),
            np.dtype(np.float64): np.zeros(0, np.float64)}


def _band(geo, dtype, patches, images, rows, pack_first, per_row) -> _Prepared:
    """The 1x1 layer on `images` images' patches of `rows` output rows (a
    band of an image's, or a group of images' stacked as one image); with
    pack_first (it runs more than once) its weights are packed first."""
    axes = _geometry.Axis(rows, 0, 0, 1), _geometry.Axis(geo.Wo, 0, 0, 1)
    plan, row_map, col_map = _plan(geo, dtype, patches, *axes, (1, 1), (1, 1), (1, 1),
                                   images=images, pack_first=pack_first)
    return _Prepared(geo, dtype, plan, row_map, col_map, geo.result_shape, rows, per_row)


# Strided layers are lowered (_prepare) when one channel block's packed
# weights exceed LOWER_MIN_BLOCK_BYTES (twice L1: 128 input channels at 3x3)
# and _lowering_pays says so. Their patches are made LOWER_MAX_BYTES at a
# time (groups of images, or bands of rows).
LOWER_MIN_BLOCK_BYTES = 64 << 10
LOWER_SHORT_ROWS = 32
LOWER_BLOCK_BYTES_PER_PIXEL = 16 << 10
LOWER_MAX_BYTES = 8 << 20
# ... on tiles of at least LOWER_WIDE_TILE_PIXELS pixels at double-pumped
# 512-bit FMAs: rows of LOWER_LONG_ROWS pixels or more, past
# LOWER_BLOCK_BYTES_PER_PIXEL of a block's weights per tile pixel.
LOWER_WIDE_TILE_PIXELS = 14
LOWER_LONG_ROWS = 56


def _lowering_pays(Wo: int, tile_pixels: int, block_bytes: int) -> bool:
    """Does a strided layer with output rows of Wo pixels, whose tiles hold
    tile_pixels pixels and stream block_bytes of weights a channel block,
    run faster as a 1x1 layer on its patches (_prepare)?"""
    if tile_pixels >= LOWER_WIDE_TILE_PIXELS and not _core.rows_512():
        # AVX-512's 14-pixel tiles where 512-bit FMAs are double-pumped
        # (Zen 4): since the direct tiles read the image in place at stride
        # 2, pack in wider panels and gather narrow strided rows across
        # images (2026-12-05), direct beats lowered on rows of 7-42 pixels
        # at 128-512 channels (3x3/2, one image, float32: 1.02-1.29x,
        # float64 1.09-1.17x; eight images at 7 and 14: 1.0-1.43x;
        # ResNet-50's 256 -> 256 @28x28 1.12x, 512 -> 512 @14x14 1.14x).
        # Lowering still wins on rows of 56-64 pixels from 256 channels
        # (direct 0.77-0.99x; 256 channels at 56 0.93-1.06x between runs);
        # at 48, direct measured 0.92-1.09x.
        return Wo >= LOWER_LONG_ROWS and block_bytes > LOWER_BLOCK_BYTES_PER_PIXEL * tile_pixels
    # Elsewhere (measured on Zen 3, and on AVX2 and Zen 4 on 2026-12-03,
    # before the changes above): rows of fewer than LOWER_SHORT_ROWS
    # pixels that end in a narrow tile, or LOWER_BLOCK_BYTES_PER_PIXEL of
    # weights a tile pixel on any rows.
    return bool((Wo < LOWER_SHORT_ROWS and Wo % tile_pixels)
                or block_bytes > LOWER_BLOCK_BYTES_PER_PIXEL * tile_pixels)


class _Lowered(NamedTuple):
    """A strided layer run as a 1x1 layer on its pixels' patches."""
    plan: object            # the layer's own plan, for _core.patches
    row_map: np.ndarray
    col_map: np.ndarray
    patches: int            # C*R*S: patch channels
    images: int             # images per patches array (1 when banded)
    stacked: bool           # those images' patches as one image's rows
    band: _Prepared         # the 1x1 layer on one patches array (band.Ho rows, all
                            # images' when stacked)
    last: _Prepared         # the same for the last band or group (fewer rows, or band itself)


def _plan(geo, dtype, C, rows, cols, kernel, stride, dilation, *, images=None,
          pack_first=False):
    """The core plan of geo's layer (or its 1x1 lowering) on `images` (geo's
    N) images of C channels of rows x cols, and its padded rows' and
    columns' source maps."""
    plan = _core.conv2d_plan((geo.N if images is None else images, C, rows.size, cols.size),
                             geo.K, kernel, geo.groups, stride, dilation,
                             (rows.before, rows.after, cols.before, cols.after),
                             dtype == np.float64, zero_padding=geo.rule == "constant",
                             pack_first=pack_first)
    _geometry.check_size((C, plan.Hb, plan.Wb), dtype, "padded input")
    # Rows past the padded input (small-image tiles' zero rows, a spare row) map to -1.
    row_map = np.concatenate([_geometry.axis_map(rows, geo.rule),
                              np.full(plan.Hb - rows.padded, -1, np.int64)])
    row_map.flags.writeable = False
    return plan, row_map, _geometry.axis_map(cols, geo.rule)


def _sampled_axis(axis: _geometry.Axis) -> tuple[_geometry.Axis, slice]:
    """A 1x1 kernel's zero-padded strided axis as a unit-stride axis of the
    samples it reads: (that axis, the slice of the input that holds them).
    Output i reads input sample i*stride - before, or the padding."""
    stride, out = axis.stride, axis.out
    first = -axis.before % stride                     # the first sample read
    before = min((first + axis.before) // stride, out)  # outputs reading padding first
    size = max(0, min(len(range(first, axis.size, stride)), out - before))
    sampled = _geometry.Axis(size, before, out - before - size, 1, 1)
    return sampled, slice(first, first + (size - 1) * stride + 1 if size else first, stride)


def _check_out(out, shape, dtype, inputs) -> np.ndarray:
    if out is None:
        return _memory.empty(shape, dtype)
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

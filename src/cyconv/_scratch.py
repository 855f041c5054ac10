"""Scratch arrays kept per thread from one call to the next.

A call's scratch (a padded image, tiles, packed weights) freed at its end
lets glibc give the pages back to the OS when they top the heap, and the
next call faults them in again, zeroed by the kernel: 10-25 % of a 64 -> 64
3x3 layer at 56x56 (bench/RESULTS.md). So each thread keeps, per purpose,
the largest buffer it has used (up to KEEP_BYTES; larger ones are not
kept) and hands out views of it.

A purpose's array is valid until the same thread asks for that purpose
again: only the code that asked holds it, never a caller. Tests set
`poison` so that every array handed out starts as NaN (all bits set): a
kernel that reads scratch it did not write then shows.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from . import _memory

KEEP_BYTES = 16 << 20
ALIGN = 64          # a cache line: vector loads never straddle one needlessly
poison = False

_local = threading.local()   # .kept: {purpose: (buffer, the array last handed out)}


def aligned_bytes(nbytes: int) -> np.ndarray:
    """A new uninitialized uint8 array of `nbytes`, `ALIGN`-byte aligned
    (scratch its owner keeps, not this thread)."""
    buffer = np.empty(nbytes + ALIGN, np.uint8)
    start = -buffer.ctypes.data % ALIGN
    return buffer[start:start + nbytes]


def empty(purpose: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialized C-contiguous array of `shape` (a tuple) and `dtype`,
    made from this thread's kept buffer for `purpose`, `ALIGN`-byte aligned."""
    kept = getattr(_local, "kept", None)
    if kept is None:
        kept = _local.kept = {}
    buffer, array = kept.get(purpose, (None, None))
    if array is None or array.shape != shape or array.dtype != dtype:
        # (the same shape again, the common case, reuses the last array as it is)
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes > KEEP_BYTES:   # (a block kept by _memory, if one is free)
            return _memory.empty(shape, dtype)
        if buffer is None or buffer.nbytes < nbytes + ALIGN:
            buffer = np.empty(nbytes + ALIGN, np.uint8)
        start = -buffer.ctypes.data % ALIGN
        array = buffer[start:start + nbytes].view(dtype).reshape(shape)
        kept[purpose] = buffer, array
    if poison:
        array.view(np.uint8).fill(0xFF)
    return array

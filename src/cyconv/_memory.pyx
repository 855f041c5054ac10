"""Large arrays in blocks kept from one call to the next (see
_csrc/block_cache.h): a NumPy memory handler that keeps a few freed blocks
of 4 MB and more, up to a byte limit, so that a loop over large images
writes each result into pages already mapped instead of fresh ones the
kernel faults in and zeroes. Like NumPy's own allocator, it asks Linux for
huge pages for them. Arrays made here own their data as any NumPy array
does, and go back to the handler when they are freed."""

import math
import os

import numpy as np

cdef extern from "block_cache.h":
    size_t CYC_CACHE_MIN_BYTES
    int cyc_cache_init(size_t limit) except -1
    object cyc_cache_handler()
    object cyc_cache_swap_handler(object handler)
    size_t cyc_cache_set_limit(size_t limit) noexcept nogil
    size_t cyc_cache_kept() noexcept nogil
    size_t cyc_cache_limit() noexcept nogil
    void cyc_cache_after_fork() noexcept nogil
    void cyc_cache_place_apart(object array)
    void cyc_cache_set_hugepages(int enabled) noexcept nogil

# Blocks kept by default, at most: a few large results (4096 x 4096 float32
# is 64 MB).
DEFAULT_LIMIT = 256 << 20
MIN_BYTES = CYC_CACHE_MIN_BYTES

cyc_cache_init(DEFAULT_LIMIT)
_handler = cyc_cache_handler()

# NumPy's switch for asking Linux for huge pages (on unless a user or an old
# kernel turned it off), which new blocks follow as NumPy's allocations do.
try:
    from numpy._core.multiarray import _get_madvise_hugepage
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _get_madvise_hugepage


def _after_fork():
    cyc_cache_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


cdef _new(make, shape, dtype, order, apart_from):
    # make(shape, dtype, order), through the handler when it is large
    if type(dtype) not in _dtype_classes:
        dtype = np.dtype(dtype)
        _dtype_classes.add(type(dtype))
    if not _is_large(shape, dtype):
        return make(shape, dtype, order)
    cyc_cache_set_hugepages(bool(_get_madvise_hugepage()))
    old = cyc_cache_swap_handler(_handler)
    try:
        if apart_from is not None:
            cyc_cache_place_apart(apart_from)
        return make(shape, dtype, order)
    finally:
        cyc_cache_swap_handler(old)


def empty(shape, dtype, order="C", apart_from=None):
    """np.empty(shape, dtype, order); from a kept block when it is large.

    apart_from: an array a kernel will read while it writes this one (its
    input). A large result then starts 1536 bytes further into its 4 KB
    page than that array, so that rows of the two a multiple of 4 KB apart
    do not compete for the same L1 sets (block_cache.h)."""
    return _new(np.empty, shape, dtype, order, apart_from)


def zeros(shape, dtype, order="C", apart_from=None):
    """np.zeros(shape, dtype, order); from a kept block when it is large
    (apart_from: see empty)."""
    return _new(np.zeros, shape, dtype, order, apart_from)


# The classes of the dtypes seen (np.dtype's per-kind subclasses): a set
# lookup tells a dtype for a tenth of isinstance(x, np.dtype)'s cost.
cdef set _dtype_classes = set()


cdef bint _is_large(shape, dtype):
    # (a bad shape is small here: NumPy's own call then raises its error)
    try:
        if type(shape) is tuple:   # the common case, without math.prod's call
            count = 1
            for n in shape:
                count *= n
        else:
            count = shape if isinstance(shape, int) else math.prod(shape)
        return count * dtype.itemsize >= MIN_BYTES
    except Exception:
        return False


def set_limit(size_t limit):
    """Keep freed blocks up to `limit` bytes in all (0: none); frees what no
    longer fits and returns the old limit."""
    return cyc_cache_set_limit(limit)


def limit():
    """The byte limit set_limit set (DEFAULT_LIMIT at first)."""
    return cyc_cache_limit()


def kept_bytes():
    """Bytes of freed blocks kept now."""
    return cyc_cache_kept()

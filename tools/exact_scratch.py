"""pytest plugin for tools/sanitize.sh: every scratch array exactly its size.

The package keeps each thread's largest scratch buffer per purpose and hands
out views of it, and keeps freed large blocks for the next result. Under a
sanitizer that hides overruns: the bytes past an array are the kept
buffer's slack, not a redzone. (Two of the three out-of-bounds accesses
fixed on 2026-12-05 stayed inside such slack in most runs.) With this plugin each scratch array is a
fresh allocation that ends at most 63 bytes (the alignment) before its
buffer's end, and no freed block is kept. The tests of the keeping itself
(tests/test_scratch.py, tests/test_memory.py) run unpatched.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cyconv import _memory, _scratch

_KEEPING_TESTS = ("test_scratch.py", "test_memory.py")


def _exact(purpose, shape, dtype):
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    buffer = np.empty(nbytes + _scratch.ALIGN, np.uint8)
    start = -buffer.ctypes.data % _scratch.ALIGN
    array = buffer[start:start + nbytes].view(dtype).reshape(shape)
    if _scratch.poison:
        array.view(np.uint8).fill(0xFF)
    return array


@pytest.fixture(autouse=True)
def _exact_scratch(request, monkeypatch):
    if request.node.path.name in _KEEPING_TESTS:
        yield
        return
    monkeypatch.setattr(_scratch, "empty", _exact)
    old = _memory.set_limit(0)
    try:
        yield
    finally:
        _memory.set_limit(old)

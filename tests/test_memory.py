"""Large results in blocks kept between calls (cyconv._memory, set_cache_limit)."""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal

import cyconv
from cyconv import _memory

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import get_handler_name

HANDLER = "cyconv_block_cache"
BIG = (1536, 1024)          # 6 MB of float32: over _memory.MIN_BYTES


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with nothing kept and the default limit."""
    old = cyconv.set_cache_limit(0)
    cyconv.set_cache_limit(_memory.DEFAULT_LIMIT)
    yield
    cyconv.set_cache_limit(old)


def _handler(a):
    """The handler that made the memory of `a` (of its owner, for a view)."""
    while a.base is not None:
        a = a.base
    return get_handler_name(a)


def _image(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape).astype(dtype)


def test_large_results_come_from_the_handler_and_own_their_data():
    out = cyconv.convolve2d(_image(BIG), np.ones((3, 3), np.float32), "same")
    assert get_handler_name(out) == HANDLER
    assert out.flags.owndata and out.base is None and out.flags.writeable
    assert out.ctypes.data % 64 == 0
    small = cyconv.convolve2d(_image((64, 64)), np.ones((3, 3), np.float32), "same")
    assert get_handler_name(small) != HANDLER


def test_a_freed_result_is_reused_and_fully_overwritten():
    image, kernel = _image(BIG), _image((5, 5), seed=1)
    expected = scipy.signal.convolve2d(image, kernel, "same")
    first = cyconv.convolve2d(image, kernel, "same")
    address = first.ctypes.data
    first[...] = np.nan          # a stale block: every output must be written again
    del first
    assert _memory.kept_bytes() >= image.nbytes
    second = cyconv.convolve2d(image, kernel, "same")
    assert second.ctypes.data == address
    np.testing.assert_array_equal(second, expected)
    assert _memory.kept_bytes() == 0


def _image_at(offset, shape=BIG, dtype=np.float32):
    """An image whose data starts `offset` bytes into a 4 KB page."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(size + 8192, np.uint8)
    start = (offset - raw.ctypes.data) % 4096
    image = raw[start:start + size].view(dtype).reshape(shape)
    image[...] = _image(shape, dtype)
    return image


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_start_apart_from_their_image_within_the_page(dtype):
    # Each offset reuses the previous result's block, placed anew each time.
    kernel = _image((5, 5), dtype, seed=1)
    for offset in [0, 16, 1536, 2560, 4032, 8, 3000]:
        image = _image_at(offset, dtype=dtype)
        expected = scipy.signal.convolve2d(image, kernel, "same")
        for method in ["auto", "direct"]:
            out = cyconv.convolve2d(image, kernel, "same", method=method)
            assert out.ctypes.data % 4096 == (offset + 1536) % 4096 // 64 * 64
            assert out.flags.owndata and get_handler_name(out) == HANDLER
            np.testing.assert_array_equal(out, expected)
            out[...] = np.nan        # a stale block for the next placement
            del out


def test_placement_apart_from_anything_else_is_the_default():
    a = _memory.empty(BIG, np.float32, apart_from=None)
    b = _memory.empty(BIG, np.float32, apart_from=[1, 2])     # not an array: ignored
    c = _memory.empty(BIG, np.float32, apart_from=_image_at(64, (4, 4)))
    assert a.ctypes.data % 64 == 0 and b.ctypes.data % 64 == 0
    assert c.ctypes.data % 4096 == 1600
    c[...] = 1.0
    assert c.sum() == c.size


@pytest.mark.parametrize("call", [
    lambda x: cyconv.correlate2d(x, np.ones((3, 3), x.dtype), "same", boundary="symm"),
    lambda x: cyconv.convolve2d(np.asfortranarray(x), np.ones((3, 3), x.dtype), "same"),
    lambda x: cyconv.convolve2d(x, np.outer([1, 2, 1], [1, 0, -1]).astype(x.dtype), "same"),
    lambda x: cyconv.ndimage.gaussian_filter(x, 2.0),
    lambda x: cyconv.ndimage.correlate1d(x, [1.0, 2.0, 1.0], axis=0),
    lambda x: cyconv.ndimage.uniform_filter(x, 3),
    lambda x: cyconv.ndimage.sobel(x),
    lambda x: cyconv.conv2d(x[None, None], np.ones((2, 1, 3, 3), x.dtype), padding=1),
], ids=["correlate2d-symm", "fortran", "separable", "gaussian_filter", "correlate1d",
        "uniform_filter", "sobel", "conv2d"])
def test_stale_blocks_do_not_leak_into_results(call):
    image = _image(BIG)
    expected = call(image).copy()
    assert _handler(call(image)) == HANDLER
    for _ in range(2):           # results freed dirty, then made again in their blocks
        stale = call(image)
        stale.view(np.uint32)[...] = 0x7FC00000   # NaN
        del stale
        np.testing.assert_array_equal(call(image), expected)


def test_reference_results_through_kept_blocks():
    image = _image(BIG, np.float64)
    kernel = _image((3, 3), np.float64, seed=2)
    for _ in range(3):
        np.testing.assert_allclose(cyconv.ndimage.correlate(image, kernel, mode="reflect"),
                                   scipy.ndimage.correlate(image, kernel, mode="reflect"),
                                   rtol=1e-13)
        np.testing.assert_array_equal(cyconv.correlate2d(image, kernel, "valid"),
                                      scipy.signal.correlate2d(image, kernel, "valid"))


def test_zeros_from_a_dirty_block_are_zero_and_resize_keeps_the_data():
    a = _memory.empty(BIG, np.float32)
    a.fill(7.0)
    address = a.ctypes.data
    del a
    z = _memory.zeros(BIG, np.float32)
    assert z.ctypes.data == address and not z.any()
    z[:] = np.arange(BIG[1], dtype=np.float32)
    z.resize((2 * BIG[0], BIG[1]), refcheck=False)     # a larger block: realloc
    np.testing.assert_array_equal(z[: BIG[0]], np.broadcast_to(np.arange(BIG[1]), BIG))
    assert not z[BIG[0]:].any()


_HUGE_PAGE_PROBE = r"""
import json, sys
import numpy as np
try:
    from numpy._core.multiarray import _set_madvise_hugepage
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _set_madvise_hugepage
from cyconv import _memory

def mapping_flags(address):
    # the VmFlags of the mapping that holds `address`
    inside = False
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(a, 16) for a in head.split("-"))
                inside = lo <= address < hi
            elif inside and head == "VmFlags:":
                return line.split()[1:]

_set_madvise_hugepage(sys.argv[1] == "on")
image = np.empty(4 << 10, np.uint8)
image = image[(64 - image.ctypes.data) % 4096:][:16].view(np.float32).reshape(2, 2)
found = []
for apart_from in [None, image]:
    _memory.set_limit(0)                        # a new block each time
    a = _memory.empty((1536, 1024), np.float32, apart_from=apart_from)
    a[...] = 1.0
    found.append([a.ctypes.data, "hg" in mapping_flags(a.ctypes.data), float(a.sum())])
    del a
print(json.dumps(found))
"""


@pytest.mark.skipif(not os.path.exists("/sys/kernel/mm/transparent_hugepage/enabled"),
                    reason="Linux with transparent huge pages only")
@pytest.mark.parametrize("advise", [True, False])
def test_new_blocks_ask_for_huge_pages_when_numpy_does(advise):
    """A fresh interpreter (where no earlier block advised the heap) makes a
    block without, then with, an image to keep apart from; NumPy's switch
    decides whether the mapping is advised (VmFlags "hg")."""
    proc = subprocess.run([sys.executable, "-c", _HUGE_PAGE_PROBE, "on" if advise else "off"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (plain, plain_advised, plain_sum), (apart, apart_advised, apart_sum) = \
        json.loads(proc.stdout)
    assert plain_advised == apart_advised == advise
    assert plain_sum == apart_sum == 1536 * 1024
    assert plain % 64 == 0 and apart % 4096 == 1600        # 64 + 1536
    if advise:   # on a 2 MB boundary (plus the phase): all of it can be huge pages
        assert plain % (2 << 20) == 0 and apart % (2 << 20) == 1600


def test_blocks_of_other_sizes_are_not_taken():
    a = _memory.empty((4096, 1024), np.float32)        # 16 MB
    address = a.ctypes.data
    del a
    b = _memory.empty((1100, 1024), np.float32)        # 4.3 MB: would pin 16 MB
    assert b.ctypes.data != address
    assert _memory.kept_bytes() == 16 << 20


def test_limit_and_slots_bound_what_is_kept():
    arrays = [_memory.empty((1024, 1024 + 16 * i), np.float32) for i in range(6)]
    del arrays
    assert 0 < _memory.kept_bytes() <= 4 * 1024 * 1088 * 4     # at most 4 blocks
    cyconv.set_cache_limit(5 << 20)                              # one block of ~4-5 MB
    assert _memory.kept_bytes() <= 5 << 20
    assert cyconv.set_cache_limit(0) == 5 << 20
    assert _memory.kept_bytes() == 0
    c = _memory.empty(BIG, np.float32)
    del c
    assert _memory.kept_bytes() == 0                             # limit 0: nothing kept


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), (True, TypeError),
                                        ("256", TypeError), (None, TypeError)])
def test_set_cache_limit_rejects_bad_values(bad, error):
    with pytest.raises(error, match="nbytes must be a non-negative integer"):
        cyconv.set_cache_limit(bad)


def test_threads_never_share_a_block():
    failures = []

    def work(value):
        for _ in range(40):
            a = _memory.empty(BIG, np.float32)
            a.fill(value)
            if not (a == value).all():
                failures.append(value)
            del a

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert _memory.kept_bytes() <= 4 * np.prod(BIG) * 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_kept_blocks_work_after_fork():
    """A child forked while a block is kept (and the pool runs) makes and frees
    large arrays; in a fresh interpreter, as fork() from a threaded pytest
    process warns on Python 3.12+."""
    code = r"""
import os, sys
import numpy as np, cyconv
from cyconv import _memory
shape = (1536, 1024)
ref = cyconv.convolve2d(np.ones(shape, np.float32), np.ones((3, 3), np.float32), "same",
                        workers=2)
kept = _memory.empty(shape, np.float32)
del kept
assert _memory.kept_bytes() > 0
pid = os.fork()
if pid == 0:
    a = _memory.empty(shape, np.float32)
    a.fill(4.0)
    ok = float(a.sum()) == 4.0 * a.size
    del a
    out = cyconv.convolve2d(np.ones(shape, np.float32), np.ones((3, 3), np.float32), "same",
                            workers=2)
    ok = ok and np.array_equal(out, ref)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == 0

"""Scratch arrays kept per thread between calls (cyconv._scratch)."""

import threading

import numpy as np
import pytest

import cyconv
from cyconv import _conv2d, _scratch


@pytest.fixture
def fresh_thread_scratch(monkeypatch):
    """An empty store for this test's thread, and no poison unless asked."""
    monkeypatch.setattr(_scratch, "_local", threading.local())
    monkeypatch.setattr(_scratch, "poison", False)


def test_same_purpose_and_shape_is_the_same_array(fresh_thread_scratch):
    a = _scratch.empty("t.a", (3, 5), np.float32)
    assert a.shape == (3, 5) and a.dtype == np.float32 and a.flags.c_contiguous
    assert a.ctypes.data % _scratch.ALIGN == 0
    assert _scratch.empty("t.a", (3, 5), np.float32) is a
    # Another purpose never shares its memory.
    assert not np.shares_memory(_scratch.empty("t.b", (3, 5), np.float32), a)


@pytest.mark.parametrize("shape,dtype", [((2, 7), np.float64), ((0, 4), np.float32),
                                         ((15,), np.float32), ((1, 1, 1, 3), np.int16)])
def test_smaller_or_retyped_requests_reuse_the_buffer(fresh_thread_scratch, shape, dtype):
    big = _scratch.empty("t.a", (4, 8), np.float64)
    small = _scratch.empty("t.a", shape, dtype)
    assert small.shape == shape and small.dtype == dtype and small.flags.c_contiguous
    if small.size:   # (an empty array's data pointer is NumPy's choice)
        assert small.ctypes.data % _scratch.ALIGN == 0
        assert np.shares_memory(small, big)


def test_a_larger_request_grows_the_kept_buffer(fresh_thread_scratch):
    small = _scratch.empty("t.a", (4,), np.float32)
    big = _scratch.empty("t.a", (1000, 10), np.float64)
    assert not np.shares_memory(small, big)
    big[...] = 7.0
    again = _scratch.empty("t.a", (4,), np.float32)
    assert np.shares_memory(again, big)


def test_buffers_over_the_limit_are_not_kept(fresh_thread_scratch, monkeypatch):
    monkeypatch.setattr(_scratch, "KEEP_BYTES", 1024)
    kept = _scratch.empty("t.a", (16,), np.float64)        # 128 bytes: kept
    over = _scratch.empty("t.a", (200,), np.float64)       # 1600 bytes: not kept
    assert over.shape == (200,) and not np.shares_memory(over, kept)
    assert np.shares_memory(_scratch.empty("t.a", (16,), np.float64), kept)
    assert not np.shares_memory(_scratch.empty("t.a", (200,), np.float64), over)


def test_threads_never_share_scratch(fresh_thread_scratch):
    mine = _scratch.empty("t.a", (64,), np.float32)
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(_scratch.empty("t.a", (64,),
                                                                          np.float32)))
    thread.start()
    thread.join()
    assert not np.shares_memory(mine, theirs[0])


def test_poison_sets_every_bit(fresh_thread_scratch, monkeypatch):
    a = _scratch.empty("t.a", (3, 4), np.float64)
    a[...] = 1.0
    monkeypatch.setattr(_scratch, "poison", True)
    b = _scratch.empty("t.a", (3, 4), np.float64)
    assert np.isnan(b).all()
    assert (b.view(np.uint8) == 0xFF).all()


def _kept_buffers():
    """purpose -> id of this thread's kept buffer."""
    return {purpose: id(buffer)
            for purpose, (buffer, _) in getattr(_scratch._local, "kept", {}).items()}


@pytest.mark.parametrize("kwargs,shape", [
    (dict(padding=1), (2, 8, 12, 13)),                # blocked tiles, padded per image
    (dict(), (1, 4, 9, 9)),                            # 1x1 on pixel tiles, in place
    (dict(stride=2, padding=1), (1, 300, 9, 9)),      # lowered: patches
])
def test_repeated_calls_reuse_their_scratch(fresh_thread_scratch, monkeypatch, kwargs, shape):
    """A second call of the same shapes runs on the first's kept buffers (no
    allocation, so no pages to fault in), and gives the same bits."""
    # (These calls are one piece each: kept with their own scratch, they
    # would not ask for this thread's. test_conv2d_prepared tests those.)
    monkeypatch.setattr(_conv2d, "_ran_small", lambda *args: False)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    K = 16
    R = 1 if not kwargs else 3
    w = rng.standard_normal((K, shape[1], R, R)).astype(np.float32)
    first = cyconv.conv2d(x, w, **kwargs, workers=1)
    before = _kept_buffers()
    assert {"conv2d.padded", "conv2d.tiles"} <= before.keys()
    second = cyconv.conv2d(x, w, **kwargs, workers=1)
    assert _kept_buffers() == before
    assert second.tobytes() == first.tobytes()
    # a call of another shape in between, then the first again: same bits
    cyconv.conv2d(x[:, :, :-1], w, **kwargs, workers=1)
    assert cyconv.conv2d(x, w, **kwargs, workers=1).tobytes() == first.tobytes()

"""Threads: results independent of `workers`, the GIL released, fork-safe pool."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import cyconv


def _rng():
    return np.random.default_rng(1234)


def _identical(a, b):
    """Bitwise equality of the values (longdouble's padding bytes are not part
    of the value and may hold anything, so those compare by value and sign)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype in (np.longdouble, np.clongdouble) and a.dtype.itemsize > 8 * (1 + (a.dtype.kind == "c")):
        parts = (a.real, a.imag, b.real, b.imag) if a.dtype.kind == "c" else (a, a, b, b)
        ar, ai, br, bi = parts
        return (np.array_equal(ar, br, equal_nan=True) and np.array_equal(ai, bi, equal_nan=True)
                and np.array_equal(np.signbit(ar), np.signbit(br))
                and np.array_equal(np.signbit(ai), np.signbit(bi)))
    return a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.complex64, np.longdouble])
@pytest.mark.parametrize("shape", [(300, 257), (5, 2000), (1, 1)])
def test_convolve2d_bitwise_identical_for_any_workers(dtype, shape):
    rng = _rng()
    a = (rng.standard_normal(shape) * 50).astype(dtype)
    k = (rng.standard_normal((7, 5)) * 5).astype(dtype)
    ref = cyconv.convolve2d(a, k, "same", "symm", workers=1)
    for workers in (2, 3, 8, -1):
        got = cyconv.convolve2d(a, k, "same", "symm", workers=workers)
        assert _identical(got, ref), workers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, groups, k, stride", [
    (1, 1, 48, 1), (3, 1, 40, 1), (4, 2, 64, 1), (2, 16, 16, 1),
    (1, 16, 16, 2), (2, 16, 16, (1, 3)),   # depthwise, channels in the lanes
])
def test_conv2d_bitwise_identical_for_any_workers(dtype, n, groups, k, stride):
    rng = _rng()
    x = rng.standard_normal((n, 16, 45, 51)).astype(dtype)
    w = rng.standard_normal((k, 16 // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    ref = cyconv.conv2d(x, w, b, stride, padding=1, groups=groups, workers=1)
    for workers in (2, 3, 5):
        got = cyconv.conv2d(x, w, b, stride, padding=1, groups=groups, workers=workers)
        assert _identical(got, ref), workers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_weight_gradient_bitwise_identical_for_any_workers(dtype):
    """Depthwise weight gradients: groups of channels shared among the
    threads, each channel's sums in one order."""
    rng = _rng()
    x = rng.standard_normal((2, 200, 60, 61)).astype(dtype)
    w = rng.standard_normal((200, 1, 3, 3)).astype(dtype)
    g = rng.standard_normal((2, 200, 30, 31)).astype(dtype)
    kw = dict(stride=2, padding=1, groups=200, output_mask=(False, True, False))
    ref = cyconv.conv2d_backward(g, x, w, workers=1, **kw)[1]
    for workers in (2, 3, 5):
        got = cyconv.conv2d_backward(g, x, w, workers=workers, **kw)[1]
        assert _identical(got, ref), workers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_depthwise_input_gradient_bitwise_identical_for_any_workers(dtype):
    """Strided depthwise input gradients (channels in the lanes): (image,
    group of channels) units shared among the threads."""
    rng = _rng()
    w = rng.standard_normal((40, 1, 3, 3)).astype(dtype)
    g = rng.standard_normal((3, 40, 60, 61)).astype(dtype)
    kw = dict(stride=2, padding=1, groups=40, output_mask=(True, False, False))
    x = np.empty((3, 40, 120, 122), dtype)   # (4M multiply-adds: 3 threads)
    ref = cyconv.conv2d_backward(g, x, w, workers=1, **kw)[0]
    for workers in (2, 3, 5):
        got = cyconv.conv2d_backward(g, x, w, workers=workers, **kw)[0]
        assert _identical(got, ref), workers


def test_calls_of_less_than_a_chunk_are_cut_for_their_threads(monkeypatch):
    """A call of less work than CHUNK_WORK but more than SPLIT_WORK_PER_THREAD
    runs on the threads it is worth, in PIECES_PER_THREAD pieces each (it
    used to be one piece, on one thread), with the bits of one piece."""
    from cyconv import _parallel
    cuts = []
    run = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda f, chunks, n, *a: (cuts.append((len(chunks), n)),
                                                                    run(f, chunks, n, *a)))
    rng = _rng()
    a = rng.standard_normal((1024, 1024)).astype(np.float32)   # 26M multiply-adds at 5 x 5
    k = rng.standard_normal((5, 5)).astype(np.float32)
    assert 3 * _parallel.SPLIT_WORK_PER_THREAD <= a.size * k.size < _parallel.CHUNK_WORK
    ref = cyconv.convolve2d(a, k, "same", workers=1)
    assert cuts == [(1, 1)]
    # (the pieces then run on as many threads as threads_for allows, as any
    # call's chunks do; the CPU slots bound how many run at once)
    for workers, expected in ((2, (4, 2)), (3, (6, 3)), (8, (6, 6))):
        cuts.clear()
        got = cyconv.convolve2d(a, k, "same", workers=workers)
        assert cuts == [expected] and _identical(got, ref), workers
    # conv2d: 64 -> 64 3 x 3 at 28 x 28, 29M multiply-adds
    x = rng.standard_normal((1, 64, 28, 28)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    ref = cyconv.conv2d(x, w, padding=1, workers=1)
    cuts.clear()
    got = cyconv.conv2d(x, w, padding=1, workers=2)
    assert len(cuts) == 1 and cuts[0][0] >= 4 and cuts[0][1] == 2
    assert _identical(got, ref)
    # less work than that stays one piece on one thread
    small = a[:256]
    cuts.clear()
    cyconv.convolve2d(small, k, "same", workers=2)
    assert cuts == [(1, 1)]


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two CPUs")
def test_a_helper_on_the_callers_cpu_moves_off_it():
    """_parallel._leave_cpu(c), called on CPU c, moves the thread to another
    CPU and gives it back its affinity (in a thread of its own, first pinned
    to c)."""
    from cyconv import _core, _parallel
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    found = {}

    def probe():
        try:
            os.sched_setaffinity(0, {cpu})
            found["pinned"] = _core.current_cpu()
            os.sched_setaffinity(0, allowed)    # a running thread stays where it is
            _parallel._leave_cpu(cpu)
            found["after"] = _core.current_cpu()
            found["affinity"] = os.sched_getaffinity(0)
        finally:
            os.sched_setaffinity(0, allowed)

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    assert found == {"pinned": cpu, "after": found["after"], "affinity": allowed}
    assert found["after"] != cpu and found["after"] in allowed


def test_thread_count_controls():
    default = cyconv.get_num_threads()
    assert default >= 1
    old = cyconv.set_num_threads(1)
    try:
        assert old == default
        assert cyconv.get_num_threads() == 1
        with cyconv.num_threads(3):
            assert cyconv.get_num_threads() == 3
        assert cyconv.get_num_threads() == 1
    finally:
        cyconv.set_num_threads(None)
    assert cyconv.get_num_threads() == default


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (1.5, TypeError), ("2", TypeError),
                                      (True, TypeError), (-10_000, ValueError)])
def test_bad_workers(bad, exc):
    a = np.ones((4, 4))
    with pytest.raises(exc, match="workers"):
        cyconv.convolve2d(a, a, workers=bad)
    with pytest.raises(exc, match="workers"):
        cyconv.conv2d(a[None], a[None, None], workers=bad)
    with pytest.raises(exc):
        cyconv.set_num_threads(bad)


def _python_progress_during(call):
    """Iterations a pure-Python loop on this thread makes while one `call`
    runs on another thread, relative to what it makes alone in the same time.

    If the call held the GIL, this thread could not run during it (apart
    from at most one 5 ms switch interval before the call starts)."""
    def spin(duration):
        n, end = 0, time.perf_counter() + duration
        while time.perf_counter() < end:
            n += 1
        return n

    alone = spin(0.05) / 0.05  # iterations per second with the GIL to ourselves
    busy = threading.Event()

    span = []

    def worker():
        busy.set()
        span.append(time.perf_counter())
        call()
        span.append(time.perf_counter())
        busy.clear()

    t = threading.Thread(target=worker)
    t.start()
    busy.wait()
    n = 0
    while busy.is_set():
        n += 1
    t.join()
    return n / (alone * (span[1] - span[0]))


@pytest.mark.parametrize("which", ["convolve2d", "conv2d", "complex"])
def test_gil_released(which):
    """Python code keeps running on one thread while another is inside cyconv."""
    rng = _rng()
    # Each call takes well over 0.1 s on one core.
    if which == "convolve2d":
        a = rng.standard_normal((2500, 2500))
        k = rng.standard_normal((15, 15))
        call = lambda: cyconv.convolve2d(a, k, "same", method="direct", workers=1)  # noqa: E731
    elif which == "complex":
        a = rng.standard_normal((500, 500)) + 1j
        call = lambda: cyconv.correlate2d(a, a[:15, :15], "same", workers=1)  # noqa: E731
    else:
        x = rng.standard_normal((8, 128, 64, 64)).astype(np.float32)
        w = rng.standard_normal((128, 128, 3, 3)).astype(np.float32)
        call = lambda: cyconv.conv2d(x, w, padding=1, workers=1)  # noqa: E731
    # Held, the GIL would leave this thread at most a 5 ms switch interval
    # (a few percent of its speed); released, it runs at its share of a core.
    share = max(_python_progress_during(call) for _ in range(2))
    assert share > 0.25, f"Python on another thread ran at {share:.0%} of its speed"


def test_cpu_slots_bound_concurrent_calls_and_come_back():
    """Calls from more Python threads than CPUs, each on its calling thread
    alone, run at most one chunk per CPU at once; every slot comes back,
    also from a chunk that raises."""
    from cyconv import _core, _parallel
    cpus = _parallel.available_cpus()
    lock = threading.Lock()
    running = peak = 0

    def counted(state, i, j):
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    start = threading.Barrier(3 * cpus)

    def caller():
        start.wait()
        _parallel.run(counted, [(0, 1), (1, 2)], 1)

    callers = [threading.Thread(target=caller) for _ in range(3 * cpus)]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    assert peak == cpus, f"{peak} chunks ran at once on {cpus} CPUs"

    def fails(state, i, j):
        raise ValueError("in a chunk")

    for nthreads in (1, 2):
        with pytest.raises(ValueError, match="in a chunk"):
            _parallel.run(fails, [(0, 1), (1, 2)], nthreads)
    assert _core.free_cpu_slots() == cpus


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_after_use():
    """Call (starting the pool), fork, and call again with threads in the child."""
    code = r"""
import os, sys
import numpy as np, cyconv
a = np.random.default_rng(0).standard_normal((600, 600))
k = np.ones((5, 5))
ref = cyconv.convolve2d(a, k, "same", workers=2)
pid = os.fork()
if pid == 0:
    ok = np.array_equal(cyconv.convolve2d(a, k, "same", workers=2), ref)
    x = np.ones((2, 8, 32, 32)); w = np.ones((16, 8, 3, 3))
    ok = ok and np.allclose(cyconv.conv2d(x, w, workers=2), 72.0)
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
"""
    proc = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert proc.returncode == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("level_offset", range(0, 40, 7))
def test_pixel_values_do_not_depend_on_where_the_row_is_cut(dtype, level_offset):
    """Vector lanes and the scalar remainder of a row round alike, so a pixel's
    value is the same whichever part of the row computes it (what chunked
    callers such as cyconv.dask rely on)."""
    rng = _rng()
    a = rng.standard_normal((40, 301)).astype(dtype)
    k = rng.standard_normal((5, 6)).astype(dtype)
    whole = cyconv.correlate2d(a, k, "valid", method="direct")
    part = cyconv.correlate2d(a[:, level_offset:], k, "valid", method="direct")
    assert part.tobytes() == np.ascontiguousarray(whole[:, level_offset:]).tobytes()

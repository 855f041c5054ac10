"""Threads for the GIL-free kernels: a process-wide pool of Python threads.

Each compiled call releases the GIL, so plain threads run the kernels truly
in parallel. The work is cut into independent chunks (output rows or
images, never a reduction) handed out one at a time; a chunk's pixels are
computed the same way whichever thread takes it, so results do not depend
on the thread count.
A pool inherited through fork() has no live threads in the child: the pool
remembers its process id and is rebuilt in a new process.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Callable, Iterator, Sequence

from . import _core, _geometry

try:   # the C module: signal.signal's enum wrapping costs 7 microseconds a call
    import _signal
except ImportError:  # pragma: no cover - not CPython
    import signal as _signal
_SIGINT = int(_signal.SIGINT)

# Below this many multiply-adds a call stays on the calling thread: waking
# the pool costs tens of microseconds.
MIN_WORK_PER_THREAD = 1_000_000
# Work is handed out in pieces of about this many multiply-adds (a few ms):
# enough to balance threads and to answer Ctrl-C quickly, few enough that
# the Python overhead per piece stays negligible.
CHUNK_WORK = 1 << 25
# A call that CHUNK_WORK would leave in fewer pieces than it has threads is
# cut into PIECES_PER_THREAD pieces per thread instead (so that a thread that
# starts late leaves the others pieces to take), one thread per
# SPLIT_WORK_PER_THREAD multiply-adds: a 1024 x 1024 5 x 5 convolution (26M)
# then runs on 2 CPUs. Less work per thread measured slower on 2 (Zen 3 VM:
# 1024 x 1024 3 x 3, 9M, 0.83x; 512 x 512 5 x 5 0.80x; 64 -> 64 1 x 1 @56x56
# 0.74x): waking a thread and the second CPU's caches cost more.
PIECES_PER_THREAD = 2
SPLIT_WORK_PER_THREAD = 1 << 23

_global_threads: int | None = None
_scoped_threads: ContextVar[int | None] = ContextVar("cyconv_threads", default=None)
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_pid = -1
_pool_lock = threading.Lock()


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _check_count(n, name: str) -> int:
    """A thread count as SciPy's `workers`: positive, or negative counting back from all CPUs."""
    n = _geometry.as_int(n, name, "an int or None")
    if n == 0:
        raise ValueError(f"{name} must be a positive int, or negative to count back from "
                         f"the {available_cpus()} available CPUs (-1 = all); got 0")
    if n < 0:
        total = available_cpus()
        if n < -total:
            raise ValueError(f"{name}={n} asks for fewer than one of the {total} available CPUs")
        n = total + 1 + n
    return n


def get_num_threads() -> int:
    """Threads a call with ``workers=None`` uses (default: all available CPUs)."""
    scoped = _scoped_threads.get()
    if scoped is not None:
        return scoped
    return _global_threads if _global_threads is not None else available_cpus()


def set_num_threads(n: int | None) -> int:
    """Set the default thread count for this process (None: all CPUs); returns the old one."""
    global _global_threads
    old = get_num_threads()
    _global_threads = None if n is None else _check_count(n, "n")
    return old


@contextlib.contextmanager
def num_threads(n: int | None) -> Iterator[None]:
    """Context manager: calls in this block (in this thread or task) use `n` threads."""
    token = _scoped_threads.set(None if n is None else _check_count(n, "n"))
    try:
        yield
    finally:
        _scoped_threads.reset(token)


def resolve_workers(workers) -> int:
    return get_num_threads() if workers is None else _check_count(workers, "workers")


def chunks_of(total: int, work_per_item: float, workers: int = 1,
              chunk_work: float | None = None) -> list[tuple[int, int]]:
    """`total` items as ranges of about `chunk_work` (default CHUNK_WORK)
    multiply-adds each, or PIECES_PER_THREAD per thread when that gives more
    (see pieces_for)."""
    chunk_work = CHUNK_WORK if chunk_work is None else chunk_work
    per_chunk = max(1, int(chunk_work // max(work_per_item, 1)))
    wanted = pieces_for(workers, total * work_per_item, total)
    if -(-total // per_chunk) < wanted:
        per_chunk = -(-total // wanted)
    return [(i, min(i + per_chunk, total)) for i in range(0, total, per_chunk)]


def pieces_for(workers: int, work: float, items: int) -> int:
    """The fewest pieces a call of `work` multiply-adds over `items` items
    should be cut into for `workers` threads: PIECES_PER_THREAD for each
    SPLIT_WORK_PER_THREAD of work, one when that is one thread."""
    threads = max(1, min(workers, items, int(work // SPLIT_WORK_PER_THREAD)))
    return 1 if threads == 1 else min(items, threads * PIECES_PER_THREAD)


def threads_for(workers: int, work: float, chunks: int) -> int:
    """How many threads a call with `work` multiply-adds in `chunks` pieces should use."""
    return max(1, min(workers, chunks, int(work // MIN_WORK_PER_THREAD) or 1))


def _get_pool(size: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid() or _pool_size < size:
            if _pool is not None and _pool_pid == os.getpid():
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="cyconv")
            _pool_size, _pool_pid = size, os.getpid()
        return _pool


def _reset_after_fork() -> None:
    # Threads do not survive fork(): slots they held would never come back.
    _core.reset_cpu_slots(available_cpus())


_core.reset_cpu_slots(available_cpus())
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def run(func: Callable[..., None], chunks: Sequence[tuple], nthreads: int,
        scratch: Callable[[], object] | None = None) -> None:
    """Call func(state, *chunk) for every chunk on up to `nthreads` threads.

    The calling thread takes part. Chunks are handed out one at a time, and
    each runs while holding one of the process's CPU slots, so concurrent
    calls from many Python threads never run more kernels at once than there
    are CPUs. A chunk takes its slot and gives it back inside one C call
    (_core.run_in_cpu_slot), so Ctrl-C never leaves one taken. On the
    calling thread alone, Ctrl-C then raises KeyboardInterrupt as it comes,
    once the running chunk's kernel returns. With helper threads it is held
    back to the gaps between chunks (see _ctrl_c_deferred): no thread then
    takes another chunk, running ones finish, and KeyboardInterrupt is raised.
    `state` is scratch() made once per thread (None without `scratch`).
    """
    if nthreads <= 1 or len(chunks) <= 1:
        # No pool, no hand-out lock, nothing to defer Ctrl-C for (the
        # deferral cost a 256^2 float32 5x5 call about 7 us, a Python
        # semaphore 4 more: the kernel's data push theirs out of the caches).
        state = scratch() if scratch is not None else None
        for chunk in chunks:
            _core.run_in_cpu_slot(func, state, chunk)
        return
    interrupted: list = []
    with _ctrl_c_deferred(interrupted):
        _run_chunks(func, chunks, nthreads, scratch, interrupted)
    if interrupted:
        raise KeyboardInterrupt


def _run_chunks(func, chunks, nthreads, scratch, interrupted: list) -> None:
    lock = threading.Lock()
    todo = iter(chunks)
    failed = False
    helpers = min(nthreads, len(chunks)) - 1
    caller_cpu = _core.current_cpu()

    def work(avoid_cpu: int = -1) -> None:
        if avoid_cpu >= 0:
            _leave_cpu(avoid_cpu)
        state = scratch() if scratch is not None else None
        while True:
            with lock:
                chunk = None if failed or interrupted else next(todo, None)
            if chunk is None:
                return
            _core.run_in_cpu_slot(func, state, chunk)

    futures = []
    try:
        if helpers > 0:
            pool = _get_pool(helpers)
            futures = [pool.submit(work, caller_cpu) for _ in range(helpers)]
        work()
        for f in futures:
            f.result()
    except BaseException:
        failed = True
        for f in futures:
            try:
                f.result()
            except BaseException:
                pass
        raise


def _leave_cpu(cpu: int) -> None:
    """Move the calling thread (a pool helper) off `cpu`, the CPU of the
    thread that woke it, if it runs there.

    Linux may place a woken thread on its waker's CPU even while another CPU
    is idle (in a KVM guest a halted vCPU counts as preempted, and the
    scheduler avoids it). The helper and the caller then share one CPU until
    the load balancer moves one of them, which for a call of a few
    milliseconds often comes too late: the helper's piece finished only after
    all of the caller's. Narrowing the helper's affinity to the other CPUs
    moves it at once, and restoring the affinity leaves it where it now runs.
    Measured (Zen 4 VM, 2 vCPUs, calls back to back, two workers against
    one): convolve2d 1024 x 1024 5x5 float32 1.48x -> 1.61x, float64 1.54x ->
    1.67x, 2048 x 2048 float32 1.45x -> 1.54x; conv2d 8 x 256 -> 256 3x3
    @14x14 1.90x -> 1.93x (bench/RESULTS.md)."""
    if _core.current_cpu() != cpu:
        return
    try:
        allowed = os.sched_getaffinity(0)
        others = allowed - {cpu}
        if others:
            os.sched_setaffinity(0, others)
            os.sched_setaffinity(0, allowed)
    except (AttributeError, OSError):   # no affinity on this system, or not allowed
        pass


@contextlib.contextmanager
def _ctrl_c_deferred(interrupted: list) -> Iterator[None]:
    """While the block runs, Ctrl-C only appends to `interrupted`.

    Python's default handler raises KeyboardInterrupt wherever the main
    thread is, also inside threading's own Lock and Future code, between a
    lock's acquire and its release: the hand-out lock then stays taken and
    a helper waits forever (a Python semaphore for the CPU slots left a slot
    taken the same way; they are in C now). Only the default
    handler is deferred, and only on the main thread (the only one Python
    runs signal handlers on); any other handler is left as it is.
    """
    deferred = False
    try:
        if _signal.getsignal(_SIGINT) is _signal.default_int_handler:
            _signal.signal(_SIGINT, lambda signum, frame: interrupted.append(signum))
            deferred = True
    except ValueError:   # not the main thread of the main interpreter
        pass
    try:
        yield
    finally:
        if deferred:
            _signal.signal(_SIGINT, _signal.default_int_handler)


def run_work(func: Callable[..., None], chunks: Sequence[tuple], work: float, workers: int,
             scratch: Callable[[], object] | None = None) -> None:
    """run() of `chunks` holding `work` multiply-adds in all, on up to `workers`
    threads. Under MIN_WORK_PER_THREAD they run on the calling thread without
    a CPU slot: they last microseconds, less than the slot's bookkeeping."""
    if work < MIN_WORK_PER_THREAD:
        state = scratch() if scratch is not None else None
        for chunk in chunks:
            func(state, *chunk)
        return
    run(func, chunks, threads_for(workers, work, len(chunks)), scratch)


def run_rows(func: Callable[..., None], rows: int, work_per_row: float, workers: int,
             scratch: Callable[[], object] | None = None) -> None:
    """run_work() over output rows 0..rows-1, in chunks_of(): func(state, r0, r1).
    A call of less than MIN_WORK_PER_THREAD multiply-adds is one chunk."""
    work = rows * work_per_row
    chunks = [(0, rows)] if work < MIN_WORK_PER_THREAD else chunks_of(rows, work_per_row, workers)
    run_work(func, chunks, work, workers, scratch)

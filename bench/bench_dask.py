#!/usr/bin/env python3
"""Benchmark ``cyconv.dask``: a large on-disk image filtered chunkwise vs in memory.

The image is a SIZE x SIZE float32 ``.npy`` file (16384: 1 GiB) of random
values; the filter is ``convolve2d(x, k, "same", "symm")`` with a 7x7
Gaussian (``--kernel``, any name of ``cyconv.kernels.get``). Four runs, each
in a fresh interpreter so that memory figures do not mix:

``memory``
    ``np.load`` the whole file, one ``cyconv.convolve2d(..., workers=W)``
    call, ``np.save`` the result. The times of the three steps are reported
    too, and the time of a second identical call ("again"): the first call
    writes 1 GiB of freshly allocated memory, whose first touch is slow on
    a VM.
``naive``
    The usual pattern: ``da.from_array(np.load(path, mmap_mode="r"))`` and ``da.store`` into a ``np.lib.format.open_memmap``,
    Dask's threaded scheduler. Current Dask copies the memmap into memory in
    ``from_array`` (dask/dask#11850): see its peak.
``threads``
    Dask's local threaded scheduler (``num_workers=W``), the files read and
    written through ``NpyFile`` (below; the README's ``Npy``), which maps the
    file on each access: ``da.from_array(NpyFile(input))``,
    ``cyconv.dask.convolve2d`` (one cyconv thread per task), ``da.store``
    into ``NpyFile(output, "r+")``.
``cluster``
    A ``dask.distributed`` LocalCluster of W worker processes with one
    thread each, the same ``NpyFile`` source and target: each task maps
    the files itself (a memmap cannot be sent to another process without
    copying its data).

Wall times are end to end: read, filter, write; the files are in the page
cache after the first run (the machine has enough memory), so this measures
the filtering and the chunk traffic, not the disk. Peak memory is the peak
anonymous memory (``RssAnon``: heap and array buffers, not the page cache
behind the mapped files) above the level just before the work, sampled every
2 ms: of the process for ``memory``, ``naive`` and ``threads``, of each
worker process for ``cluster``.
The dask outputs are compared with the in-memory result (max |difference|
relative to max |result|).

    python bench/bench_dask.py [--size 16384 | --quick] [--chunk 2048]
                               [--workers 2] [--kernel gaussian:7,1.5]
                               [--runs memory,naive,threads,cluster]
                               [--dir DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
RUNS = ("memory", "naive", "threads", "cluster")


# =========================================================================== helpers (all processes)

def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class PeakSampler:
    """Peak anonymous resident memory (RssAnon: heap and array buffers, not
    the pages of mapped files) of this process, sampled every 2 ms by a
    daemon thread, above its level at start()."""

    def __init__(self):
        import threading
        self.base = _status_kib("RssAnon") * 1024
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _status_kib("RssAnon") * 1024)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_kib("RssAnon") * 1024)
        return self.peak - self.base

    # For client.run, one sampler per worker process, kept on the worker
    # (this class is pickled by value: a class attribute would not persist).
    @staticmethod
    def start_on(dask_worker) -> None:
        dask_worker.cyconv_bench_sampler = PeakSampler()

    @staticmethod
    def finish_on(dask_worker) -> int:
        return dask_worker.cyconv_bench_sampler.stop()


class NpyFile:
    """A .npy file that Dask reads and writes in place, a block at a time: a
    source for ``da.from_array`` and a target for ``da.store``. Each access
    maps the file afresh, so it pickles as its path and works in any process.
    (Dask >= 2024.12 copies a np.memmap passed to ``da.from_array`` into
    memory -- dask/dask#11850 -- and pickling a memmap copies its data too.)"""

    def __init__(self, path, mode="r"):
        import numpy as np
        self.path, self.mode = str(path), mode
        mapped = np.load(self.path, mmap_mode="r")  # reads the header only
        self.shape, self.dtype, self.ndim = mapped.shape, mapped.dtype, mapped.ndim

    def __getitem__(self, index):
        import numpy as np
        return np.load(self.path, mmap_mode=self.mode)[index]

    def __setitem__(self, index, value):
        import numpy as np
        np.load(self.path, mmap_mode=self.mode)[index] = value

    def __dask_tokenize__(self):
        stat = os.stat(self.path)
        return (self.path, self.mode, stat.st_size, stat.st_mtime_ns)


def _kernel(name):
    import numpy as np
    import cyconv
    return np.asarray(cyconv.kernels.get(name), dtype=np.float32)


# =========================================================================== the three runs

def run_memory(args) -> dict:
    import numpy as np
    import cyconv
    k = _kernel(args.kernel)
    sampler = PeakSampler()
    t0 = time.perf_counter()
    img = np.load(args.input)
    t1 = time.perf_counter()
    out = cyconv.convolve2d(img, k, "same", "symm", workers=args.workers)
    t2 = time.perf_counter()
    np.save(args.output, out)
    t3 = time.perf_counter()
    peak_bytes = sampler.stop()
    del out
    # Again, in memory this process has touched before: on a VM the first
    # touch of fresh memory can cost more than the filtering itself.
    t4 = time.perf_counter()
    cyconv.convolve2d(img, k, "same", "symm", workers=args.workers)
    t5 = time.perf_counter()
    return {"wall_s": t3 - t0, "compute_s": t2 - t1, "compute_again_s": t5 - t4,
            "load_s": t1 - t0, "save_s": t3 - t2, "peak_bytes": peak_bytes,
            "method": cyconv.choose_method(img, k, "same", "symm")}


def run_naive(args) -> dict:
    """np.load(mmap_mode="r") -> da.from_array -> da.store into open_memmap."""
    import dask
    import dask.array as da
    import numpy as np
    import cyconv.dask as cd
    k = _kernel(args.kernel)
    sampler = PeakSampler()
    t0 = time.perf_counter()
    src = da.from_array(np.load(args.input, mmap_mode="r"), chunks=(args.chunk, args.chunk))
    y = cd.convolve2d(src, k, mode="same", boundary="symm")
    out = np.lib.format.open_memmap(args.output, mode="w+", dtype=y.dtype, shape=y.shape)
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        da.store(y, out, lock=False)
    out.flush()
    del out
    t1 = time.perf_counter()
    return {"wall_s": t1 - t0, "peak_bytes": sampler.stop()}


def run_threads(args) -> dict:
    """NpyFile source and target, Dask's local threaded scheduler."""
    import dask
    import dask.array as da
    import numpy as np
    import cyconv.dask as cd
    k = _kernel(args.kernel)
    sampler = PeakSampler()
    t0 = time.perf_counter()
    src = da.from_array(NpyFile(args.input), chunks=(args.chunk, args.chunk))
    y = cd.convolve2d(src, k, mode="same", boundary="symm")
    np.lib.format.open_memmap(args.output, mode="w+", dtype=y.dtype, shape=y.shape).flush()
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        da.store(y, NpyFile(args.output, "r+"), lock=False)
    t1 = time.perf_counter()
    return {"wall_s": t1 - t0, "peak_bytes": sampler.stop(), "tasks": len(y.__dask_graph__()),
            "chunks": [len(c) for c in y.chunks]}


def run_cluster(args) -> dict:
    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster
    import cyconv.dask as cd
    k = _kernel(args.kernel)
    src_file = NpyFile(args.input)
    np.lib.format.open_memmap(args.output, mode="w+", dtype=np.float32,
                              shape=src_file.shape).flush()  # create the output file
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, worker_dashboard_address=None,
                      memory_limit=0) as cluster, Client(cluster) as client:
        client.run(lambda: __import__("cyconv.dask"))  # imports outside the timing
        client.run(PeakSampler.start_on)
        t0 = time.perf_counter()
        src = da.from_array(src_file, chunks=(args.chunk, args.chunk))
        y = cd.convolve2d(src, k, mode="same", boundary="symm")
        da.store(y, NpyFile(args.output, "r+"), lock=False)
        t1 = time.perf_counter()
        peaks = client.run(PeakSampler.finish_on)
    return {"wall_s": t1 - t0, "tasks": len(y.__dask_graph__()),
            "worker_peak_bytes": sorted(peaks.values())}


def compare(reference, candidate) -> float:
    """max |candidate - reference| / max |reference|, in row blocks."""
    import numpy as np
    a = np.load(reference, mmap_mode="r")
    b = np.load(candidate, mmap_mode="r")
    diff = scale = 0.0
    for r in range(0, a.shape[0], 1024):
        x = np.asarray(a[r:r + 1024], dtype=np.float64)
        y = np.asarray(b[r:r + 1024], dtype=np.float64)
        diff = max(diff, float(np.max(np.abs(x - y))))
        scale = max(scale, float(np.max(np.abs(x))))
    return diff / scale if scale else diff


# =========================================================================== driver

def make_input(path: Path, size: int) -> None:
    import numpy as np
    rng = np.random.default_rng(0)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(size, size))
    step = max(1, (64 << 20) // (4 * size))
    for r in range(0, size, step):
        out[r:r + step] = rng.standard_normal((min(step, size - r), size), dtype=np.float32)
    out.flush()


def child(run: str, args) -> dict:
    """Run one case in a fresh interpreter; returns its JSON result."""
    cmd = [sys.executable, __file__, "--_child", run, "--_input", str(args.input),
           "--_output", str(args.output), "--chunk", str(args.chunk),
           "--workers", str(args.workers), "--kernel", args.kernel]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(SRC)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{run} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def gib(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MiB"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=16384, help="image side (default 16384: 1 GiB)")
    p.add_argument("--quick", action="store_true", help="size 2048 (a smoke run)")
    p.add_argument("--chunk", type=int, default=None,
                   help="chunk side (default 2048: 16 MiB; 512 with --quick)")
    p.add_argument("--workers", type=int, default=2,
                   help="threads for 'memory' and 'threads', worker processes for 'cluster'")
    p.add_argument("--kernel", default="gaussian:7,1.5", help="a cyconv.kernels.get name")
    p.add_argument("--runs", default=",".join(RUNS), help="comma-separated subset of "
                   + ", ".join(RUNS))
    p.add_argument("--dir", type=Path, default=None, help="where the .npy files go "
                   "(default: a temporary directory, removed afterwards)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--_child", choices=RUNS, help=argparse.SUPPRESS)
    p.add_argument("--_input", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--_output", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args._child:
        args.input, args.output = args._input, args._output
        result = {"memory": run_memory, "naive": run_naive, "threads": run_threads,
                  "cluster": run_cluster}[args._child](args)
        print(json.dumps(result))
        return 0

    size = 2048 if args.quick else args.size
    chunk = min(args.chunk or (512 if args.quick else 2048), size)
    runs = [r.strip() for r in args.runs.split(",") if r.strip()]
    unknown = set(runs) - set(RUNS)
    if unknown:
        p.error(f"unknown runs {sorted(unknown)}; choose from {', '.join(RUNS)}")
    args.chunk = chunk

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        args.input = tmp / "input.npy"
        t = time.perf_counter()
        make_input(args.input, size)
        print(f"input: {size}x{size} float32 ({gib(4 * size * size)}) written in "
              f"{time.perf_counter() - t:.1f} s; chunks {chunk}x{chunk} "
              f"({gib(4 * chunk * chunk)}); kernel {args.kernel}; {args.workers} workers; "
              f"{os.cpu_count()} CPUs; {platform.processor() or platform.machine()}",
              flush=True)
        results = {}
        for run in runs:
            args.output = tmp / f"{run}.npy"
            results[run] = child(run, args)
            line = f"{run:8s} wall {results[run]['wall_s']:7.2f} s"
            if run == "memory":
                r = results[run]
                line += (f" (load {r['load_s']:.2f} s, compute {r['compute_s']:.2f} s [again: "
                         f"{r['compute_again_s']:.2f} s], save {r['save_s']:.2f} s; method "
                         f"{r['method']})  peak {gib(r['peak_bytes'])}")
            elif run in ("naive", "threads"):
                line += f"  peak {gib(results[run]['peak_bytes'])} (process)"
            else:
                line += "  peak per worker " + ", ".join(
                    gib(b) for b in results[run]["worker_peak_bytes"])
            print(line, flush=True)
        if "memory" in results:
            for run in results:
                if run != "memory":
                    results[run]["max_rel_diff"] = compare(tmp / "memory.npy", tmp / f"{run}.npy")
                    print(f"{run:8s} vs memory: max relative difference "
                          f"{results[run]['max_rel_diff']:.1e}")
    if args.json:
        args.json.write_text(json.dumps({"size": size, "chunk": chunk, "kernel": args.kernel,
                                         "workers": args.workers, "results": results},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Shared helpers for cyconv's benchmark suites.

Timing
    :func:`time_interleaved` runs the callables of one case round-robin
    (peer A, peer B, ..., then again), so a burst of machine noise hits all
    of them alike, and quotes the median of the per-run times.  Calls that
    are shorter than ``min_sample`` seconds are batched (``number`` calls per
    timed sample) so the timer's resolution does not matter.  Each sample is
    timed on two clocks, process CPU time and wall time; the quoted median
    is CPU time by default (see ``CLOCK``): on this shared 2-core machine
    other jobs regularly take a core, which inflates wall time of a
    single-threaded run but not its CPU time.  :func:`wall_over_cpu`
    reports how much they differed.

Threads
    :func:`single_thread` must be called *before* numpy / torch / cv2 are
    imported: it sets the usual thread-count variables to 1 and then, once
    the libraries are imported, :func:`limit_threads` pins them at run time
    (threadpoolctl for the BLAS / OpenMP pools, ``torch.set_num_threads(1)``,
    ``cv2.setNumThreads(1)``, ``cyconv.set_num_threads(1)``).
    ``OPENBLAS_CORETYPE`` is *not* changed: it is recorded in the machine
    info as found, so numpy's OpenBLAS picks its
    kernels for this CPU by itself (see ``blas`` in :func:`machine_info`).

Memory
    :func:`tracemalloc_peak` measures the peak of *traced* allocations during
    one call above the level before it.  NumPy reports every array buffer to
    tracemalloc (``PyTraceMalloc_Track``), so for cyconv, whose scratch
    buffers are NumPy arrays, this is exactly "bytes of arrays alive at the
    worst moment of the call" (the output array included).  Memory that C
    code takes with plain malloc (torch, OpenCV, BLAS packing buffers) is
    invisible to it; :func:`subprocess_peak_rss` covers those: it runs the
    case in a fresh interpreter and reports how far the resident set size
    peaks above its level just before the call (``VmHWM`` after a reset via
    ``/proc/self/clear_refs``), to within a page.
"""

from __future__ import annotations

import argparse

import dataclasses
import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Callable, Mapping, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
SRC = REPO / "src"

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "BLIS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


# --------------------------------------------------------------------------- setup

def single_thread() -> None:
    """Ask every library for one thread; call before importing numpy & co."""
    for var in _THREAD_VARS:
        os.environ[var] = "1"


def _src_is_built() -> bool:
    return any((SRC / "cyconv").glob("_core*.so")) or any((SRC / "cyconv").glob("_core*.pyd"))


def use_source_tree() -> None:
    """Put src/ first on sys.path: the in-place build is what we benchmark.

    Not done when src/ has no built extension and a cyconv is installed
    elsewhere (e.g. CI that pip-installed the package): that one is used.
    """
    if str(SRC) in sys.path:
        return
    if not _src_is_built():
        import importlib.util
        spec = importlib.util.find_spec("cyconv")
        if spec is not None and spec.origin and SRC not in Path(spec.origin).resolve().parents:
            return
    sys.path.insert(0, str(SRC))


def _probe(cyconv) -> None:
    """Tiny calls that fail if src/ is half-rebuilt (Python newer than the .so)."""
    import numpy as np
    x = np.arange(20.0).reshape(4, 5)
    cyconv.convolve2d(x, np.ones((2, 3)), "same", "symm")
    cyconv.convolve2d(x.astype(np.float32), np.ones((3, 3), np.float32), "same")
    if hasattr(cyconv, "conv2d"):
        cyconv.conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((4, 2, 3, 3), np.float32),
                      padding=1)


def import_cyconv(wait: float = 1800.0):
    """Import cyconv once it works, waiting while src/ is being rebuilt.

    The check runs in a fresh interpreter each time: a compiled extension
    cannot be re-imported in the same process, so only a new process sees
    a rebuilt ``_core``.
    """
    use_source_tree()
    code = ("import sys; sys.path[:0] = {!r}; import _common, cyconv; "
            "_common._probe(cyconv)").format(
                [str(BENCH_DIR)] + ([str(SRC)] if str(SRC) in sys.path else []))
    deadline = time.monotonic() + wait
    while True:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if proc.returncode == 0 or time.monotonic() > deadline:
            break
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        progress(f"cyconv not usable ({last}); src/ being rebuilt? retrying in 30 s")
        time.sleep(30)
    import cyconv  # noqa: F401
    _probe(cyconv)
    return cyconv


def optional_import(name: str):
    try:
        return __import__(name)
    except Exception:  # ImportError, or a broken wheel
        return None


_limiter = None


def limit_threads() -> dict:
    """Pin the thread pools of the libraries imported so far to one thread."""
    global _limiter
    done = {}
    tpc = optional_import("threadpoolctl")
    if tpc is not None:
        _limiter = tpc.threadpool_limits(limits=1)   # kept alive: process-wide
        done["threadpoolctl"] = [
            {k: p.get(k) for k in ("internal_api", "prefix", "version", "architecture",
                                   "num_threads")}
            for p in tpc.threadpool_info()
        ]
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
        done["torch_threads"] = torch.get_num_threads()
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(1)
        done["cv2_threads"] = cv2.getNumThreads()
    cyconv = sys.modules.get("cyconv")
    if cyconv is not None and hasattr(cyconv, "set_num_threads"):
        cyconv.set_num_threads(1)        # cyconv's own pool defaults to all CPUs
        done["cyconv_threads"] = cyconv.get_num_threads()
    return done


# --------------------------------------------------------------------------- timing

# Which clock the quoted median comes from: "cpu" (time.process_time: CPU
# time of all threads of this process, which leaves out the time the process
# waits for a core while other processes load the machine -- every peer is
# pinned to one thread, so for them CPU time is the single-core time) or
# "wall" (time.perf_counter).  Both are always recorded (JSON: cpu_median_s,
# wall_median_s); --clock changes this.
CLOCK = "cpu"


@dataclasses.dataclass
class Timing:
    median: float           # seconds per call, on the CLOCK clock
    best: float
    runs: int               # timed samples
    number: int             # calls per sample
    wall: list              # per-sample seconds per call
    cpu: list

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def as_dict(self) -> dict:
        return {"median_s": self.median, "min_s": self.best, "clock": CLOCK,
                "wall_median_s": self.wall_median, "wall_min_s": min(self.wall),
                "cpu_median_s": self.cpu_median, "cpu_min_s": min(self.cpu),
                "runs": self.runs, "number": self.number}


_EVICTION_BUFFER = None   # a NumPy array, made on first use (see limit_threads)


def evict_caches(nbytes: int = 64 << 20) -> None:
    """Read ``nbytes`` of other data (more than most last-level caches hold),
    so that the next call finds its own data in memory, as a call on an image
    that other work has just pushed out of the caches does."""
    global _EVICTION_BUFFER
    import numpy as np
    if _EVICTION_BUFFER is None or _EVICTION_BUFFER.nbytes != nbytes:
        _EVICTION_BUFFER = np.ones(nbytes // 8)
    _EVICTION_BUFFER.sum()


def time_interleaved(fns: Mapping[str, Callable[[], object]], *,
                     repeat: int | Mapping[str, int] = 7,
                     budget: float | None = None,
                     warmup: int = 1,
                     min_sample: float = 0.01,
                     before_each: Callable[[], object] | None = None) -> dict[str, Timing]:
    """Time ``fns`` round-robin and return the median per call of each.

    repeat : samples per callable (a mapping gives each its own count;
             a callable with fewer samples drops out of later rounds).
    budget : if given, each callable's repeat count is also capped so that
             its samples take about ``budget`` seconds (never below 1).
    warmup : untimed calls of each callable first (also used to calibrate;
             at least two: a callable's first call can carry one-time costs
             such as planning, and calibrated on it alone the callable got
             samples of one call each, every one after another peer's call
             had cooled the caches: 1.4x the time of the same call batched).
    min_sample : calls faster than this are batched into one sample.
    before_each : if given, called (untimed) before every sample, which is
             then one call (e.g. evict_caches, for calls out of cache).
    """
    names = list(fns)
    reps = {n: (repeat[n] if isinstance(repeat, Mapping) else repeat) for n in names}
    number = {}
    for n in names:
        t = math.inf
        for _ in range(max(warmup, 2)):
            c0 = time.process_time()
            fns[n]()
            t = min(t, time.process_time() - c0)
        number[n] = 1 if t >= min_sample or before_each is not None \
            else min(1000, max(1, math.ceil(min_sample / max(t, 1e-7))))
        if budget is not None:
            reps[n] = max(1, min(reps[n], int(budget / max(t * number[n], 1e-9))))
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for r in range(max(reps.values())):
            # rotate the starting peer each round so none is always first
            order = names[r % len(names):] + names[:r % len(names)]
            for n in order:
                if r >= reps[n]:
                    continue
                f, k = fns[n], number[n]
                if before_each is not None:
                    before_each()
                c0 = time.process_time()
                t0 = time.perf_counter()
                for _ in range(k):
                    f()
                t1 = time.perf_counter()
                c1 = time.process_time()
                wall[n].append((t1 - t0) / k)
                cpu[n].append((c1 - c0) / k)
    finally:
        if gc_was:
            gc.enable()
    out = {}
    for n in names:
        s = cpu[n] if CLOCK == "cpu" else wall[n]
        out[n] = Timing(statistics.median(s), min(s), len(s), number[n], wall[n], cpu[n])
    return out


def wall_over_cpu(cases) -> float | None:
    """Geometric mean of wall/CPU median time over every timed peer of every case.

    1.00: the process never waited for a core; 1.3: timings are inflated
    by ~30 % on average because other processes competed for the CPUs.
    """
    r = [p["wall_median_s"] / p["cpu_median_s"] for c in cases for p in c["peers"].values()
         if p.get("cpu_median_s")]
    return math.exp(sum(map(math.log, r)) / len(r)) if r else None


def noise_note(result: dict) -> str:
    """One line on the clock and how loaded the machine was during a suite."""
    la = result.get("loadavg") or [None, None]
    wc = result.get("wall_over_cpu")
    clock = {"wall": "wall-clock time", "cpu": "process CPU time"}[result.get("clock", "wall")]
    text = (f"Medians of {clock}. Load average (1/5/15 min) before → after: "
            f"{la[0]} → {la[1]} on {os.cpu_count()} CPUs")
    if wc:
        text += f"; wall/CPU time ratio (geometric mean over all timings) {wc:.2f}"
        if wc > 1.1:
            text += " — other processes were competing for the cores"
    return text + "."


def loadavg() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


# --------------------------------------------------------------------------- memory

def tracemalloc_peak(fn: Callable[[], object]) -> int:
    """Peak bytes of traced (Python + NumPy) allocations during ``fn()``.

    The result object is kept alive until after the measurement, so it is
    part of the peak.  Returns bytes above the traced level before the call.
    """
    gc.collect()
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        tracemalloc.clear_traces()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if started:
            tracemalloc.stop()
    return max(0, peak - base)


_RSS_CHILD = r"""
import os, sys, resource, json
for v in {thread_vars!r}:
    os.environ[v] = "1"
sys.path[:0] = {paths!r}
{setup}
import gc; gc.collect()

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])      # KiB

try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                             # reset VmHWM to the current RSS
    before, how = status("VmRSS"), "VmHWM"
except OSError:
    before, how = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
result = ({call})
after = status("VmHWM") if how == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"before_kib": before, "after_kib": after, "how": how}}))
"""


def subprocess_peak_rss(setup: str, call: str, timeout: float = 300.0) -> int | None:
    """Growth of peak RSS (bytes) caused by evaluating ``call`` once after ``setup``.

    Runs in a fresh interpreter (same executable, thread variables set to 1).
    ``setup`` must create the inputs.  On Linux the peak is the kernel's
    high-water mark ``VmHWM``, first reset to the current RSS by writing 5 to
    ``/proc/self/clear_refs``, so the result is "peak RSS during the call
    minus RSS just before it".  (``ru_maxrss`` is the fallback; it is not
    used on Linux because a child inherits its parent's value across
    fork+exec.)  Returns None if the child fails.
    """
    code = _RSS_CHILD.format(thread_vars=_THREAD_VARS, paths=[str(BENCH_DIR), str(SRC)],
                             setup=setup, call=call)
    proc = None
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout)
        line = proc.stdout.strip().splitlines()[-1]
        d = json.loads(line)
    except Exception as exc:
        progress(f"peak-RSS child failed ({exc!r}): " + (proc.stderr[-500:] if proc else ""))
        return None
    return max(0, d["after_kib"] - d["before_kib"]) * 1024


# --------------------------------------------------------------------------- checks

def max_rel_err(a, b) -> float:
    """max|a - b| / max|b| (b is the reference); inf on a shape mismatch."""
    import numpy as np
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    err = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if b.size else 0.0
    return err / scale if scale > 0 else err


def tolerance(dtype) -> float:
    import numpy as np
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-10


# --------------------------------------------------------------------------- machine

def _cpuinfo() -> dict:
    info: dict = {}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    first = text.split("\n\n")[0]
    for line in first.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            info.setdefault(k.strip(), v.strip())
    mhz = [float(l.split(":")[1]) for l in text.splitlines() if l.startswith("cpu MHz")]
    if mhz:
        info["cpu MHz (all)"] = mhz
    return info


def _version(name: str) -> str | None:
    mod = sys.modules.get(name) or optional_import(name)
    if mod is None:
        return None
    return getattr(mod, "__version__", "?")


def machine_info() -> dict:
    versions = {n: _version(n) for n in ("numpy", "scipy", "cv2", "torch", "threadpoolctl")}
    limit_threads()     # _version may have imported a library: pin it before reporting
    ci = _cpuinfo()
    flags = set(ci.get("flags", "").split())
    mhz = ci.get("cpu MHz (all)") or []
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": ci.get("model name", platform.processor() or "?"),
        "cpu_family_model": f"family {ci.get('cpu family', '?')} model {ci.get('model', '?')}"
                            f" stepping {ci.get('stepping', '?')}",
        "flags": [f for f in ("avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512_bf16",
                              "avx512_vnni", "avx_vnni") if f in flags],
        "hypervisor": "hypervisor" in flags,
        "cores": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_mhz": round(statistics.median(mhz), 1) if mhz else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", *_THREAD_VARS,
                                               "CYCONV_CPU")},
    }
    cyconv = sys.modules.get("cyconv")
    if cyconv is not None:
        info["versions"]["cyconv"] = cyconv.__version__
        info["cyconv_kernel_level"] = cyconv.kernel_level()
        info["cyconv_cpu_features"] = cyconv.cpu_features()
        info["cyconv_path"] = str(Path(cyconv.__file__).parent)
        try:
            info["cyconv_git"] = subprocess.run(
                ["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                capture_output=True, text=True, timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            info["cyconv_git"] = None
        if hasattr(cyconv, "get_num_threads"):
            info["cyconv_threads"] = cyconv.get_num_threads()
    tpc = optional_import("threadpoolctl")
    if tpc is not None:
        info["blas"] = [f"{p.get('internal_api')} {p.get('version')} "
                        f"({p.get('architecture', '-')}, {p.get('num_threads')} thr, "
                        f"{Path(p.get('filepath', '')).name})"
                        for p in tpc.threadpool_info()]
    if sys.modules.get("torch") is not None:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    if sys.modules.get("cv2") is not None:
        info["cv2_threads"] = sys.modules["cv2"].getNumThreads()
    return info


def machine_markdown(info: dict) -> str:
    v = info["versions"]
    rows = [
        ("date", info["date"]),
        ("CPU", f"{info['cpu']} ({info['cpu_family_model']}), "
                f"{'VM, ' if info['hypervisor'] else ''}{info['cores']} cores, "
                f"{info['cpu_mhz']} MHz reported"),
        ("CPU flags (subset)", ", ".join(info["flags"])),
        ("OS / Python", f"{info['os']} / Python {info['python']}"),
        ("versions", ", ".join(f"{k} {val}" for k, val in v.items() if val)
                     + ("; not installed: " + ", ".join(k for k, val in v.items() if not val)
                        if any(not val for val in v.values()) else "")),
        ("cyconv kernel level", info.get("cyconv_kernel_level", "?")),
        ("cyconv source", f"{info.get('cyconv_path', '?')} (git {info.get('cyconv_git') or '?'})"),
        ("BLAS / OpenMP pools", "; ".join(info.get("blas", [])) or "?"),
        ("threads", f"1 everywhere (cyconv {info.get('cyconv_threads', '-')}, "
                    f"torch {info.get('torch_threads', '-')}, "
                    f"cv2 {info.get('cv2_threads', '-')}, BLAS/OpenMP "
                    + ("via threadpoolctl" if info.get("blas") else "via *_NUM_THREADS=1") + ")"),
        ("OPENBLAS_CORETYPE", info["env"].get("OPENBLAS_CORETYPE") or "unset (left alone)"),
    ]
    return markdown_table(["", ""], rows, align="ll")


# --------------------------------------------------------------------------- output

def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]],
                   align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one letter per column (l/r/c)."""
    align = align or "l" + "r" * (len(headers) - 1)
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    cells = [[("" if c is None else str(c)).replace("|", "\\|") for c in row] for row in rows]
    out = ["| " + " | ".join(headers) + " |",
           "| " + " | ".join(sep[a] for a in align) + " |"]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(out)


def fmt_ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def fmt_ratio(x: float | None) -> str:
    return "-" if x is None else (f"{x:.2f}×" if x < 10 else f"{x:.1f}×")


def fmt_gflops(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def write_json(path: str | os.PathLike, data) -> None:
    Path(path).write_text(json.dumps(data, indent=1, default=str) + "\n")


def progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def argument_parser(doc: str, quick_help: str = "tiny sizes, one run: checks every case runs"
                    ) -> argparse.ArgumentParser:
    """The options every bench script takes: --quick, --json, --markdown, --clock
    (a script adds its own before calling parse_arguments)."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help=quick_help)
    ap.add_argument("--json", metavar="PATH", help="write the raw results as JSON")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables to stdout")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="clock of the quoted medians (both are recorded in the JSON)")
    return ap


def parse_arguments(ap: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse, and set the clock the medians are quoted on."""
    global CLOCK
    args = ap.parse_args(argv)
    CLOCK = args.clock
    return args


def report(args: argparse.Namespace, result: dict, markdown: Callable[[dict], str]) -> None:
    """Write --json and print --markdown (machine first, then the script's tables)."""
    if args.json:
        write_json(args.json, result)
    if args.markdown:
        print(machine_markdown(result["machine"]))
        print()
        print(markdown(result))

#!/usr/bin/env python3
"""GFLOP/s of 2-D convolution against kernel size, cyconv and its peers, one thread.

A 1024x1024 image, square kernels k = 3, 5, ..., 15, mode "same", boundary
"fill" (zeros), float32 and float64; random (not separable) kernels.
Peers, each giving the same array as ``cyconv.convolve2d(x, k, "same")``:
``scipy.signal.convolve2d``, ``scipy.ndimage.convolve`` (``mode="constant"``),
``cv2.filter2D`` (flipped kernel, ``BORDER_CONSTANT``) and, when installed,
``torch.nn.functional.conv2d`` on one channel (flipped kernel, ``padding="same"``).
GFLOP/s = 2*H*W*k*k / median process-CPU time of interleaved runs.

It also measures cyconv alone on what the direct kernel must keep level
(``--extras``): boundaries wrap/symm against fill, Fortran-ordered and
column-strided images against C-ordered, 4096x4096 against 1024x1024, and
two threads against one.

Writes ``bench/results.png`` (one panel per dtype, the measured FMA peak as a
line; needs matplotlib, skipped with a message otherwise) and prints markdown.

    python bench/bench_kernel_sizes.py [--quick] [--extras] [--json PATH] [--png PATH]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

SIZE = 1024
KERNELS = (3, 5, 7, 9, 11, 13, 15)
DTYPES = ("float32", "float64")
PEERS = ("cyconv", "cv2.filter2D", "scipy.signal", "scipy.ndimage", "torch")


def _callables(libs, x, k) -> dict:
    M, N = k.shape
    kf = np.ascontiguousarray(k[::-1, ::-1])
    fns = {"cyconv": lambda: libs["cyconv"].convolve2d(x, k, "same", workers=1)}
    if libs["cv2"] is not None:
        cv2 = libs["cv2"]
        fns["cv2.filter2D"] = lambda: cv2.filter2D(x, -1, kf, anchor=(N // 2, M // 2),
                                                   borderType=cv2.BORDER_CONSTANT)
    if libs["signal"] is not None:
        fns["scipy.signal"] = lambda: libs["signal"].convolve2d(x, k, "same")
    if libs["ndimage"] is not None:
        fns["scipy.ndimage"] = lambda: libs["ndimage"].convolve(x, k, mode="constant")
    if libs["torch"] is not None:
        torch = libs["torch"]
        tx = torch.from_numpy(x)[None, None]
        tk = torch.from_numpy(kf.copy())[None, None]
        fns["torch"] = lambda: torch.nn.functional.conv2d(tx, tk, padding="same")
    return fns


def _as_array(out) -> np.ndarray:
    return out.numpy()[0, 0] if hasattr(out, "numpy") else np.asarray(out)


def measure_sizes(libs, size: int, quick: bool, log=C.progress) -> list:
    rng = np.random.default_rng(20261130)
    cases = []
    for dtype in DTYPES:
        for ks in KERNELS:
            x = rng.standard_normal((size, size)).astype(dtype)
            k = rng.standard_normal((ks, ks)).astype(dtype)
            fns = _callables(libs, x, k)
            ref = fns["cyconv"]()
            errs = {n: C.max_rel_err(_as_array(f()), ref) for n, f in fns.items() if n != "cyconv"}
            if quick:
                t = C.time_interleaved(fns, repeat=1, warmup=1, min_sample=0.0)
            else:
                repeat = {n: (3 if n == "scipy.signal" else 15) for n in fns}
                t = C.time_interleaved(fns, repeat=repeat, budget=2.0, warmup=1)
            flops = 2.0 * size * size * ks * ks
            cases.append({"dtype": dtype, "k": ks, "flops": flops,
                          "median_s": {n: v.median for n, v in t.items()},
                          "gflops": {n: flops / v.median / 1e9 for n, v in t.items()},
                          "max_rel_err": errs})
            log(f"{dtype} k={ks:2d}: " + ", ".join(
                f"{n} {flops / v.median / 1e9:.1f}" for n, v in t.items()) + " GFLOP/s")
    return cases


def measure_extras(cyconv, quick: bool, log=C.progress) -> dict:
    """cyconv alone: boundaries, layouts, big images, threads (ratios of medians)."""
    rng = np.random.default_rng(7)
    n = 64 if quick else SIZE
    reps = 1 if quick else 15
    out = {}
    for dtype in DTYPES:
        x = rng.standard_normal((n, n)).astype(dtype)
        for ks in (3, 5, 7, 9, 11, 15):
            k = rng.standard_normal((ks, ks)).astype(dtype)
            xf = np.asfortranarray(x)
            xs = rng.standard_normal((n, 2 * n)).astype(dtype)[:, ::2]
            xs[...] = x
            fns = {f"{b}": (lambda b=b: cyconv.convolve2d(x, k, "same", b, workers=1))
                   for b in ("fill", "wrap", "symm")}
            fns["F-order"] = lambda: cyconv.convolve2d(xf, k, "same", workers=1)
            fns["col-strided"] = lambda: cyconv.convolve2d(xs, k, "same", workers=1)
            t = C.time_interleaved(fns, repeat=reps, warmup=1)
            base = t["fill"].median
            out[f"{dtype} k={ks}"] = {name: v.median / base for name, v in t.items()}
            log(f"extras {dtype} k={ks}: " + ", ".join(
                f"{name} {v.median / base:.2f}x" for name, v in t.items()))
    big = 256 if quick else 4096
    for dtype in DTYPES:
        k = rng.standard_normal((5, 5)).astype(dtype)
        xs = rng.standard_normal((n, n)).astype(dtype)
        xb = rng.standard_normal((big, big)).astype(dtype)
        t = C.time_interleaved({"small": lambda: cyconv.convolve2d(xs, k, "same", workers=1),
                                "big": lambda: cyconv.convolve2d(xb, k, "same", workers=1)},
                               repeat=1 if quick else 5, warmup=1)
        g_small = 2 * n * n * 25 / t["small"].median / 1e9
        g_big = 2 * big * big * 25 / t["big"].median / 1e9
        out[f"{dtype} {big}² vs {n}² k=5"] = {"gflops_small": g_small, "gflops_big": g_big,
                                              "ratio": g_big / g_small}
        log(f"extras {dtype} k=5: {n}² {g_small:.1f}, {big}² {g_big:.1f} GFLOP/s")
        # threads: wall clock (CPU time adds up over threads), best of a few,
        # one and two workers taking turns (so a busy spell hits both alike)
        walls = {1: math.inf, 2: math.inf}
        for _ in range(1 if quick else 7):
            for w in (1, 2):
                t0 = time.perf_counter()
                cyconv.convolve2d(xb, k, "same", workers=w)
                walls[w] = min(walls[w], time.perf_counter() - t0)
        out[f"{dtype} {big}² k=5 threads"] = {"t1_s": walls[1], "t2_s": walls[2],
                                             "speedup": walls[1] / walls[2]}
        log(f"extras {dtype} {big}² k=5: 2 threads {walls[1] / walls[2]:.2f}x (wall, best)")
    return out


def fma_peak() -> dict:
    """The measured per-core FMA peak from bench/run.py's fma_peak.c, if it builds."""
    import run as bench_run  # noqa: E402  (bench/run.py, beside this file)
    m = bench_run.fma_peak(quick=False).get("measured", {})
    f32 = max((v for key, v in m.items() if key.endswith("f32")), default=None)
    f64 = max((v for key, v in m.items() if key.endswith("f64")), default=None)
    return {"float32": f32, "float64": f64}


def plot(cases: list, peak: dict, path: Path, title: str) -> bool:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        C.progress("matplotlib is not installed: no picture (pip install matplotlib)")
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharex=True)
    styles = {"cyconv": ("C3", "o", 2.4), "cv2.filter2D": ("C0", "s", 1.4),
              "torch": ("C1", "^", 1.4), "scipy.ndimage": ("C2", "v", 1.4),
              "scipy.signal": ("C7", "D", 1.4)}
    for ax, dtype in zip(axes, DTYPES):
        cs = [c for c in cases if c["dtype"] == dtype]
        for name in PEERS:
            pts = [(c["k"], c["gflops"][name]) for c in cs if name in c["gflops"]]
            if not pts:
                continue
            color, marker, lw = styles[name]
            ax.plot(*zip(*pts), color=color, marker=marker, lw=lw, label=name)
        if peak.get(dtype):
            ax.axhline(peak[dtype], color="k", ls="--", lw=1)
            ax.text(KERNELS[0], peak[dtype], f" FMA peak {peak[dtype]:.0f}", va="bottom",
                    fontsize=8)
        ax.set_title(f"{dtype}")
        ax.set_xlabel("kernel size k (k×k)")
        ax.set_xticks(KERNELS)
        ax.set_yscale("log")
        ax.set_ylim(0.1, (peak.get(dtype) or 100) * 1.6)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("GFLOP/s (2·H·W·k² / time)")
    axes[1].legend(fontsize=8, loc="lower right")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    C.progress(f"wrote {path}")
    return True


def markdown(result: dict) -> str:
    cases, peak = result["cases"], result["peak"]
    peers = [p for p in PEERS if any(p in c["gflops"] for c in cases)]
    rows = []
    for c in cases:
        g = c["gflops"]
        pk = peak.get(c["dtype"])
        rows.append([c["dtype"], c["k"]] + [C.fmt_gflops(g.get(n)) for n in peers]
                    + [f"{100 * g['cyconv'] / pk:.0f} %" if pk else "-"]
                    + [C.fmt_ratio(g["cyconv"] / g[n]) if n in g else "-"
                       for n in peers if n != "cyconv"])
    head = (["dtype", "k"] + [f"{n} GFLOP/s" for n in peers] + ["cyconv % of peak"]
            + [f"vs {n}" for n in peers if n != "cyconv"])
    out = [C.markdown_table(head, rows, align="lr" + "r" * (len(head) - 2)), ""]
    for dtype in DTYPES:
        cs = [c for c in cases if c["dtype"] == dtype]
        for n in peers[1:]:
            r = [c["gflops"]["cyconv"] / c["gflops"][n] for c in cs if n in c["gflops"]]
            if r:
                out.append(f"- {dtype} vs {n}: geometric mean {math.prod(r) ** (1 / len(r)):.2f}×"
                           f" (min {min(r):.2f}×)")
    if result.get("extras"):
        out += ["", "cyconv alone (time ratios to the first column; threads: wall-clock speed-up):", ""]
        for key, val in result["extras"].items():
            out.append(f"- {key}: " + ", ".join(f"{a} {b:.3g}" for a, b in val.items()))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one run")
    ap.add_argument("--extras", action="store_true", help="also boundaries, layouts, sizes, threads")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--png", metavar="PATH", default=str(C.BENCH_DIR / "results.png"))
    args = ap.parse_args(argv)
    cyconv = C.import_cyconv()
    libs = {"cyconv": cyconv,
            "signal": C.optional_import("scipy.signal") and sys.modules.get("scipy.signal"),
            "ndimage": C.optional_import("scipy.ndimage") and sys.modules.get("scipy.ndimage"),
            "cv2": C.optional_import("cv2"), "torch": C.optional_import("torch")}
    C.limit_threads()
    size = 64 if args.quick else SIZE
    peak = fma_peak()
    result = {"machine": C.machine_info(), "size": size, "peak": peak,
              "loadavg": [C.loadavg()], "cases": measure_sizes(libs, size, args.quick)}
    if args.extras:
        result["extras"] = measure_extras(cyconv, args.quick)
    result["loadavg"].append(C.loadavg())
    info = result["machine"]
    from cyconv import _config
    title = (f"convolve2d {size}×{size} \"same\" fill, one thread; {info.get('cpu', 'CPU')}, "
             f"cyconv kernels: {_config.kernel_level()}")
    if not args.quick:
        plot(result["cases"], peak, Path(args.png), title)
    if args.json:
        C.write_json(args.json, result)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

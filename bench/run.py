#!/usr/bin/env python3
"""Run cyconv's benchmark suites and write bench/RESULTS.md.

    python bench/run.py            # full run, single thread: writes bench/RESULTS.md
    python bench/run.py --quick    # tiny sizes, one run each: checks every case runs (CI)

Steps: machine info; the FMA peak of one core (bench/fma_peak.c built with
the system C compiler and run, plus the clock-based estimate
2 FMA pipes x 16 fp32 lanes x 2 flops x 'cpu MHz'); single-thread BLAS GEMM
as a practical reference; then bench_convolve2d.py and bench_conv2d.py.

The report replaces the part of the output file above LOG_MARKER; the
measurements recorded below it by hand (one section per session) are kept.

Options: --json PATH (all raw results), --output PATH (markdown; default
bench/RESULTS.md for a full run, nothing for --quick), --no-rss (skip the
per-peer peak-RSS subprocesses), --only convolve2d|conv2d, --strict (exit 1
if a peer's result disagrees with cyconv's).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

import bench_conv2d  # noqa: E402
import bench_convolve2d  # noqa: E402


NOTES = """\
- **Peak.** The per-core peak used for the "% of peak" figures is the measured FMA
  loop (thread CPU time), not the clock estimate; see the per-core peak section.
- **Clock.** Medians are of process CPU time because other jobs share the two cores;
  the wall/CPU ratio printed above each suite says how much they competed. Every
  peer runs on the calling thread, so CPU time is its single-core time (JSON keeps both).
- **Allocator state.** Calls that allocate big per-call buffers depend on glibc
  malloc's dynamic mmap/trim thresholds, i.e. on what ran earlier in the process:
  a buffer is either reused from the heap or freshly mmapped and page-faulted on
  every call. torch's grouped RGB 5×5 case (an unfold buffer of ~26 MB per group)
  has been measured anywhere from ~5 ms to ~23 ms in different runs of this suite
  (it drops to ~7 ms with `MALLOC_TOP_PAD_=134217728 MALLOC_MMAP_THRESHOLD_=67108864`).
  cyconv's per-call scratch (table above) is exposed the same way but is far smaller.
- **Equivalent peer settings.** ndimage `mode="constant"` / `"reflect"`, origin 0
  (odd kernels; -1 on an even axis) and cv2 `BORDER_CONSTANT` / `BORDER_REFLECT` with
  the flipped kernel and anchor `(N//2, M//2)` reproduce scipy.signal's "same" output
  exactly; the agreement tables check this on every case."""


def fma_peak(quick: bool) -> dict:
    """Measured single-core FMA GFLOP/s (if a C compiler is there) and the estimate."""
    info = C.machine_info()
    mhz = info["cpu_mhz"]
    res: dict = {"cpu_mhz": mhz,
                 "estimate_f32": 2 * 16 * 2 * mhz / 1e3 if mhz else None,
                 "estimate_f64": 2 * 8 * 2 * mhz / 1e3 if mhz else None,
                 "measured": {}}
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        res["note"] = "no C compiler: peak not measured"
        return res
    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "fma_peak"
        try:
            subprocess.run([cc, "-O2", "-o", str(exe), str(C.BENCH_DIR / "fma_peak.c")],
                           check=True, capture_output=True, text=True, timeout=120)
            out = subprocess.run([str(exe), "200000" if quick else "20000000"], check=True,
                                 capture_output=True, text=True, timeout=300).stdout
        except (subprocess.SubprocessError, OSError) as exc:
            res["note"] = f"fma_peak.c failed: {exc}"
            return res
    for line in out.splitlines():
        name, val = line.split()
        res["measured"][name] = float(val)
    m = res["measured"]
    if "avx2_f32" in m:
        # AVX2 FMAs: 2 pipes x 8 lanes x 2 flops = 32 flops/cycle on every x86 with 2 FMA pipes
        res["implied_ghz"] = m["avx2_f32"] / 32
    return res


def blas_reference(quick: bool) -> dict:
    """Single-thread GEMM GFLOP/s (numpy's BLAS, and torch's if present)."""
    n = 256 if quick else 2048
    rng = np.random.default_rng(1)
    out = {"n": n}
    torch = sys.modules.get("torch") or C.optional_import("torch")
    C.limit_threads()
    for dt in ("float32", "float64"):
        a = rng.standard_normal((n, n)).astype(dt)
        b = rng.standard_normal((n, n)).astype(dt)
        fns = {"numpy": lambda a=a, b=b: a @ b}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns["torch"] = lambda ta=ta, tb=tb: ta @ tb
        t = C.time_interleaved(fns, repeat=1 if quick else 7, warmup=1,
                               min_sample=0.0 if quick else 0.02)
        for k, v in t.items():
            out[f"{k}_{dt}"] = 2.0 * n ** 3 / v.median / 1e9
    return out


def peak_markdown(peak: dict, blas: dict) -> str:
    m = peak.get("measured", {})
    rows = []
    if peak.get("estimate_f32"):
        rows.append(["estimate: 2 FMA pipes × 16 lanes × 2 flops × "
                     f"{peak['cpu_mhz']:.0f} MHz ('cpu MHz')",
                     f"{peak['estimate_f32']:.0f}", f"{peak['estimate_f64']:.0f}"])
    for isa in ("avx512", "avx2"):
        if f"{isa}_f32" in m:
            rows.append([f"measured: {isa.upper()} FMA loop (bench/fma_peak.c)",
                         f"{m[isa + '_f32']:.0f}", f"{m[isa + '_f64']:.0f}"])
    for lib in ("numpy", "torch"):
        if f"{lib}_float32" in blas:
            rows.append([f"{lib} GEMM {blas['n']}², 1 thread",
                         f"{blas[lib + '_float32']:.0f}", f"{blas[lib + '_float64']:.0f}"])
    text = C.markdown_table(["one core", "GFLOP/s float32", "GFLOP/s float64"], rows,
                            align="lrr")
    if "implied_ghz" in peak:
        text += (f"\n\nThe clock-based line is only an estimate: the VM reports its nominal "
                 f"clock ({peak['cpu_mhz']:.0f} MHz) and assumes full-width 512-bit FMA pipes. "
                 f"The measured AVX2 loop implies {peak['implied_ghz']:.2f} GHz "
                 "(32 fp32 flops/cycle)")
        if "avx512_f32" in m:
            ratio = m["avx512_f32"] / m["avx2_f32"]
            text += (f"; AVX-512 gives {ratio:.2f}× the AVX2 rate, so "
                     + ("512-bit FMAs run at full width here." if ratio > 1.5 else
                        "512-bit FMAs are executed as two 256-bit halves here (Zen 4 style): "
                        "the real per-core peak is the measured line, not the estimate."))
        else:
            text += "."
    elif peak.get("note"):
        text += f"\n\n{peak['note']}"
    return text


def headline(peak: dict, r1: dict | None, r2: dict | None) -> str:
    m = peak.get("measured", {})
    p32 = m.get("avx512_f32") or m.get("avx2_f32") or peak.get("estimate_f32")
    p64 = m.get("avx512_f64") or m.get("avx2_f64") or peak.get("estimate_f64")
    lines = []

    def pct(g, dtype):
        p = p32 if dtype == "float32" else p64
        return f" ({100 * g / p:.0f} % of the {p:.0f} GFLOP/s peak)" if p else ""

    for res, what in ((r1, "convolve2d"), (r2, "conv2d")):
        if not res:
            continue
        for dtype in ("float32", "float64"):
            cs = [c for c in res["cases"]
                  if (c.get("dtype") or c["case"]["dtype"]) == dtype]
            if not cs:
                continue
            best = max(cs, key=lambda c: c["peers"]["cyconv"]["gflops"])
            g = best["peers"]["cyconv"]["gflops"]
            label = best.get("label") or (f"{best['boundary']} {best['kernel'][0]}×"
                                          f"{best['kernel'][1]}")
            lines.append(f"- {what} {dtype}: best cyconv rate {g:.1f} GFLOP/s on {label}"
                         + pct(g, dtype))
            for peer in res["peers"]:
                if peer == "cyconv":
                    continue
                sp = [c["peers"][peer]["speedup_of_cyconv"] for c in cs if peer in c["peers"]]
                if sp:
                    gm = float(np.exp(np.mean(np.log(sp))))
                    lines.append(f"  - vs {peer}: geometric-mean speed-up {gm:.2f}× "
                                 f"(range {min(sp):.2f}×–{max(sp):.2f}×)")
    return "\n".join(lines)


def mismatches(res: dict | None) -> list:
    if not res:
        return []
    return [(c.get("label") or f"{c['dtype']} {c['boundary']} k={c['kernel'][0]}", n,
             p["check"]["max_rel_err"])
            for c in res["cases"] for n, p in c["peers"].items()
            if "check" in p and not p["check"]["ok"]]


LOG_MARKER = ("<!-- Everything above is written by bench/run.py; "
              "everything below is kept by it. -->")


def with_kept_log(report: str, path: Path) -> str:
    """The new report followed by the log an existing file holds below LOG_MARKER."""
    old = path.read_text() if path.exists() else ""
    log = old[old.index(LOG_MARKER):] if LOG_MARKER in old else LOG_MARKER + "\n"
    return report.rstrip("\n") + "\n\n" + log


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes, one run each: only checks that every case runs")
    ap.add_argument("--json", metavar="PATH", help="write all raw results as JSON")
    ap.add_argument("--output", metavar="PATH",
                    help="markdown report (default: bench/RESULTS.md unless --quick)")
    ap.add_argument("--no-rss", action="store_true", help="skip per-peer peak-RSS subprocesses")
    ap.add_argument("--only", choices=("convolve2d", "conv2d"), help="run one suite only")
    ap.add_argument("--strict", action="store_true",
                    help="exit 1 if any peer's output disagrees with cyconv's")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="clock of the quoted medians (both are recorded in the JSON)")
    args = ap.parse_args(argv)
    C.CLOCK = args.clock
    t0 = time.time()

    C.progress("FMA peak ...")
    peak = fma_peak(args.quick)
    C.progress("BLAS reference ...")
    blas = blas_reference(args.quick)
    r1 = r2 = None
    if args.only in (None, "convolve2d"):
        C.progress("convolve2d suite ...")
        r1 = bench_convolve2d.run(quick=args.quick)
    if args.only in (None, "conv2d"):
        C.progress("conv2d suite ...")
        r2 = bench_conv2d.run(quick=args.quick, rss=not args.no_rss)
    machine = C.machine_info()
    elapsed = time.time() - t0
    clock_name = {"cpu": "process CPU time", "wall": "wall-clock time"}[C.CLOCK]
    clock_why = (" (other jobs share this machine's 2 cores; CPU time leaves out the time "
                 "spent waiting for a core, wall-clock medians are in the JSON)"
                 if C.CLOCK == "cpu" else "")

    md = ["# cyconv benchmark results", ""]
    if args.quick:
        md += ["**Quick run (tiny sizes, one run each): the numbers mean nothing.**", ""]
    md += [
          f"Generated by `python bench/run.py` in {elapsed / 60:.1f} min. Everything runs on "
          "**one thread** (cyconv, torch, OpenCV, BLAS); times are the **median** of "
          "interleaved runs (the peers of one case take turns, so machine noise hits "
          f"all alike), measured in **{clock_name}**{clock_why}. Speed-up = t_peer / "
          "t_cyconv (> 1: cyconv is faster). The machine is a shared 2-core VM: expect "
          "±10 % run-to-run noise.", "",
          "## Machine", "", C.machine_markdown(machine), "",
          "## Per-core peak", "", peak_markdown(peak, blas), "",
          "## Summary", "", headline(peak, r1, r2), ""]
    bad = mismatches(r1) + mismatches(r2)
    md += ["**Peer mismatches:** " + ("none — every peer's output agrees with cyconv's "
                                      "within tolerance." if not bad else
                                      "; ".join(f"{c}: {n} (rel. err {e:.1e})"
                                                for c, n, e in bad)), ""]
    if r1:
        md += ["## convolve2d", "", bench_convolve2d.__doc__.split("\n\n", 1)[1].split(
            "\n    python")[0].strip(), "", bench_convolve2d.markdown(r1), ""]
    if r2:
        md += ["## conv2d", "", bench_conv2d.__doc__.split("\n\n", 1)[1].split(
            "\n    python")[0].strip(), "", bench_conv2d.markdown(r2), ""]
    md += ["## Notes", "", NOTES, ""]
    md += ["## How to run", "", "```",
           "python3 -m venv /tmp/benchvenv",
           "/tmp/benchvenv/bin/pip install numpy scipy opencv-python-headless threadpoolctl "
           "cython setuptools torch",
           "PYTHONPATH=src /tmp/benchvenv/bin/python bench/run.py          # full, writes "
           "bench/RESULTS.md",
           "PYTHONPATH=src /tmp/benchvenv/bin/python bench/run.py --quick  # smoke test, < 1 min",
           "python bench/bench_convolve2d.py --markdown [--json PATH] [--quick]",
           "python bench/bench_conv2d.py --markdown [--json PATH] [--quick] [--no-rss]",
           "```", ""]
    text = "\n".join(md)

    output = args.output or (None if args.quick else str(C.BENCH_DIR / "RESULTS.md"))
    if output:
        Path(output).write_text(with_kept_log(text, Path(output)))
        C.progress(f"wrote {output}")
    if args.json:
        C.write_json(args.json, {"machine": machine, "peak": peak, "blas": blas,
                                 "convolve2d": r1, "conv2d": r2, "elapsed_s": elapsed})
    if args.quick and not output:
        print(headline(peak, r1, r2))
    if bad:
        C.progress(f"PEER MISMATCH: {bad}")
    C.progress(f"done in {elapsed:.1f} s")
    return 1 if (bad and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())

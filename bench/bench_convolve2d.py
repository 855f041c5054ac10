#!/usr/bin/env python3
"""Benchmark ``cyconv.convolve2d`` (mode "same") against its peers, one thread.

Cases: a 1024x1024 image, square kernels 3, 5, 7, 9, 11, 15 (or the
shapes --kernels names, e.g. ``--kernels 3x5,7x5``), float32 and float64,
boundary "fill" (zeros) and "symm".  Peers, each set up to give the
*same array* as ``cyconv.convolve2d(x, k, "same", boundary)``:

``scipy.signal.convolve2d(x, k, "same", boundary)``
    the reference semantics; direct summation, slow for big kernels, so it
    gets at most 3 timed runs.
``scipy.ndimage.convolve(x, k, mode=..., origin=...)``
    ``mode="constant"`` (cval 0) for "fill", ``mode="reflect"`` for "symm"
    (ndimage's "reflect", d c b a | a b c d | d c b a, repeats the edge sample
    exactly like signal's "symm").  ``origin`` is 0 along an odd kernel axis
    and -1 along an even one, which puts the output on signal's "same" grid.
``cv2.filter2D(x, -1, k[::-1, ::-1], anchor=(N//2, M//2), borderType=...)``
    filter2D correlates, so the kernel is flipped (once, outside the timing);
    anchor ``(N//2, M//2)`` gives signal's "same" alignment for odd and even
    kernels; ``BORDER_CONSTANT`` (zeros) for "fill", ``BORDER_REFLECT``
    (fedcba|abcdefgh|hgfedcb, edge repeated) for "symm".  OpenCV switches to
    a DFT for large kernels, which is allowed: it is the user-visible cost.

Every peer's output is compared with cyconv's once per case (max relative
error ``max|peer - cyconv| / max|cyconv|``, tolerance 1e-4 for float32,
1e-10 for float64) and a mismatch is reported, never hidden.

Timing: peers of one case run round-robin (see ``_common.time_interleaved``),
median of the runs; GFLOP/s = 2*H*W*M*N / t; "speed-up" = t_peer / t_cyconv
(> 1: cyconv is faster). The peers read the same image, so each call
usually finds it in cache; with --cold, 64 MB of other data is read before
every call (``_common.evict_caches``), as when other work has just pushed
the image out.

    python bench/bench_convolve2d.py [--quick] [--cold] [--kernels MxN,...] [--json PATH] [--markdown]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

SIZE = 1024
KERNELS = (3, 5, 7, 9, 11, 15)
DTYPES = ("float32", "float64")
BOUNDARIES = ("fill", "symm")
PEERS = ("cyconv", "scipy.signal", "scipy.ndimage", "cv2.filter2D")


def _load():
    cyconv = C.import_cyconv()
    libs = {"cyconv": cyconv,
            "signal": C.optional_import("scipy.signal") and sys.modules.get("scipy.signal"),
            "ndimage": C.optional_import("scipy.ndimage") and sys.modules.get("scipy.ndimage"),
            "cv2": C.optional_import("cv2")}
    C.limit_threads()
    return libs


def make_callables(libs, x: np.ndarray, k: np.ndarray, boundary: str) -> dict:
    """name -> zero-argument callable returning the "same"-mode convolution."""
    M, N = k.shape
    fns = {}
    cyconv = libs["cyconv"]
    fns["cyconv"] = lambda: cyconv.convolve2d(x, k, "same", boundary)
    if libs["signal"] is not None:
        signal = libs["signal"]
        fns["scipy.signal"] = lambda: signal.convolve2d(x, k, "same", boundary)
    if libs["ndimage"] is not None:
        ndimage = libs["ndimage"]
        mode = {"fill": "constant", "symm": "reflect"}[boundary]
        origin = (-1 if M % 2 == 0 else 0, -1 if N % 2 == 0 else 0)
        fns["scipy.ndimage"] = lambda: ndimage.convolve(x, k, mode=mode, cval=0.0, origin=origin)
    if libs["cv2"] is not None:
        cv2 = libs["cv2"]
        kf = np.ascontiguousarray(k[::-1, ::-1])
        border = {"fill": cv2.BORDER_CONSTANT, "symm": cv2.BORDER_REFLECT}[boundary]
        anchor = (N // 2, M // 2)   # (x, y)
        fns["cv2.filter2D"] = lambda: cv2.filter2D(x, -1, kf, anchor=anchor, borderType=border)
    return fns


def parse_kernels(text: str) -> list:
    """"3,5x7" -> [(3, 3), (5, 7)]: K is a square K x K kernel, MxN an M-row one."""
    shapes = []
    for item in text.split(","):
        M, _, N = item.strip().lower().partition("x")
        shapes.append((int(M), int(N or M)))
    return shapes


def run(quick: bool = False, cold: bool = False, kernels=None, log=C.progress) -> dict:
    libs = _load()
    load_before = C.loadavg()
    size = 64 if quick else SIZE
    rng = np.random.default_rng(20240601)
    cases = []
    for dtype in DTYPES:
        for boundary in BOUNDARIES:
            for M, N in kernels or [(ks, ks) for ks in KERNELS]:
                x = rng.standard_normal((size, size)).astype(dtype)
                k = rng.standard_normal((M, N)).astype(dtype)
                fns = make_callables(libs, x, k, boundary)
                # correctness, once per case, against cyconv's output
                ref = fns["cyconv"]()
                checks = {}
                for name, fn in fns.items():
                    if name == "cyconv":
                        continue
                    out = fn()
                    err = C.max_rel_err(out, ref)
                    checks[name] = {"max_rel_err": err, "ok": bool(err <= C.tolerance(dtype)),
                                    "dtype": str(np.asarray(out).dtype)}
                before_each = C.evict_caches if cold else None
                if quick:
                    timings = C.time_interleaved(fns, repeat=1, warmup=1, min_sample=0.0,
                                                 before_each=before_each)
                else:
                    repeat = {n: (3 if n == "scipy.signal" else 25) for n in fns}
                    timings = C.time_interleaved(fns, repeat=repeat, budget=2.5, warmup=1,
                                                 before_each=before_each)
                flops = 2.0 * size * size * M * N
                t_cy = timings["cyconv"].median
                peers = {}
                for name, t in timings.items():
                    peers[name] = {**t.as_dict(), "gflops": flops / t.median / 1e9,
                                   **({"check": checks[name]} if name in checks else {})}
                    if name != "cyconv":
                        peers[name]["speedup_of_cyconv"] = t.median / t_cy
                case = {"size": [size, size], "kernel": [M, N], "dtype": dtype,
                        "boundary": boundary, "flops": flops, "peers": peers}
                cases.append(case)
                bad = [n for n, c in checks.items() if not c["ok"]]
                log(f"convolve2d {dtype} {boundary:4s} k={M}x{N}: "
                    + ", ".join(f"{n} {C.fmt_ms(t.median)} ms" for n, t in timings.items())
                    + (f"  MISMATCH: {', '.join(bad)}" if bad else ""))
    return {"suite": "convolve2d", "quick": quick, "cold": cold, "machine": C.machine_info(),
            "clock": C.CLOCK, "loadavg": [load_before, C.loadavg()],
            "wall_over_cpu": C.wall_over_cpu(cases),
            "peers": [p for p in PEERS if any(p in c["peers"] for c in cases)],
            "cases": cases}


def markdown(result: dict) -> str:
    peers = result["peers"]
    others = [p for p in peers if p != "cyconv"]
    cases = result["cases"]
    H, W = cases[0]["size"]
    cold = ", out of cache (64 MB read before each call)" if result.get("cold") else ""
    out = [f"### convolve2d, mode \"same\", {H}×{W} image, single thread{cold}",
           "", C.noise_note(result), "",
           "Median time per call (ms) and cyconv's speed-up over each peer "
           "(t_peer / t_cyconv; > 1 means cyconv is faster).",
           ""]
    rows = []
    for c in cases:
        p = c["peers"]
        rows.append([c["dtype"], c["boundary"], f"{c['kernel'][0]}×{c['kernel'][1]}"]
                    + [C.fmt_ms(p[n]["median_s"]) if n in p else "-" for n in peers]
                    + [C.fmt_ratio(p[n].get("speedup_of_cyconv")) if n in p else "-"
                       for n in others])
    out.append(C.markdown_table(["dtype", "boundary", "kernel"] + [f"{n} ms" for n in peers]
                                + [f"vs {n}" for n in others], rows, align="lll" + "r" * (len(peers) + len(others))))
    out += ["", "GFLOP/s (2·H·W·M·N / median time):", ""]
    rows = []
    for c in cases:
        p = c["peers"]
        rows.append([c["dtype"], c["boundary"], f"{c['kernel'][0]}×{c['kernel'][1]}"]
                    + [C.fmt_gflops(p[n]["gflops"]) if n in p else "-" for n in peers])
    out.append(C.markdown_table(["dtype", "boundary", "kernel"] + peers, rows,
                                align="lll" + "r" * len(peers)))
    out += ["", "Agreement with cyconv's output (max |peer − cyconv| / max |cyconv|, "
                "tolerance 1e-4 float32 / 1e-10 float64):", ""]
    rows = []
    for n in others:
        for dtype in DTYPES:
            cs = [c for c in cases if c["dtype"] == dtype and n in c["peers"]]
            if not cs:
                continue
            errs = [c["peers"][n]["check"]["max_rel_err"] for c in cs]
            bad = [f"{c['boundary']} k={c['kernel'][0]}x{c['kernel'][1]}" for c in cs
                   if not c["peers"][n]["check"]["ok"]]
            rows.append([n, dtype, f"{len(cs) - len(bad)}/{len(cs)}", f"{max(errs):.1e}",
                         ", ".join(bad) or "none"])
    out.append(C.markdown_table(["peer", "dtype", "cases matching", "worst rel. error",
                                 "mismatches"], rows, align="llrrl"))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = C.argument_parser(__doc__)
    ap.add_argument("--cold", action="store_true",
                    help="read 64 MB of other data before every call: images out of cache")
    ap.add_argument("--kernels", type=parse_kernels, metavar="MxN,...",
                    help="kernel shapes, e.g. 3x5,5x3,7 (default: square 3-15)")
    args = C.parse_arguments(ap, argv)
    result = run(quick=args.quick, cold=args.cold, kernels=args.kernels)
    C.report(args, result, markdown)
    bad = [(c["dtype"], c["boundary"], tuple(c["kernel"]), n) for c in result["cases"]
           for n, p in c["peers"].items() if "check" in p and not p["check"]["ok"]]
    if bad:
        C.progress(f"{len(bad)} peer mismatch(es): {bad}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

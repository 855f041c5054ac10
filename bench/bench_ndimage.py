#!/usr/bin/env python3
"""Benchmark ``cyconv.ndimage`` against ``scipy.ndimage`` (and cv2.GaussianBlur), one thread.

Suites (issue 14's targets):

``correlate``
    ``correlate`` and ``convolve`` of a 1024x1024 image with a random k x k
    weight, k = 3, 5, 7, 11, float32 and float64, modes "reflect" and
    "constant"; and a uint8 image into a uint8 output with a normalized weight
    (the exact, integer-output path).
``gaussian``
    ``gaussian_filter`` of a 2048x2048 float32 image, sigma = 1, 2, 4, 8, next
    to ``cv2.GaussianBlur(x, (ks, ks), sigma, borderType=BORDER_REFLECT)`` with
    ks = 2*int(4*sigma + 0.5) + 1 (SciPy's kernel size; BORDER_REFLECT is
    ndimage's "reflect"); and a 256x256x256 float32 volume (three 1-D passes).
``uniform``
    ``uniform_filter`` of a 2048x2048 float32 image, size 3, 5, 9, 15, 21, 31.
``integer``
    the 1-D-pass filters on uint8 images into uint8 outputs (SciPy's default
    output dtype, bitwise): ``gaussian_filter`` sigma = 1, 3, ``uniform_filter``
    size 3, 9, ``sobel`` (into uint8 and int16), ``correlate1d`` along each
    axis, and ``correlate`` with a 3x3 blur, at 16x16, 256x256 and 1024x1024.

Each case checks cyconv's output against scipy.ndimage's (max relative error,
1e-4 float32 / 1e-10 float64, bitwise for uint8) and cv2's against cyconv's.
Timing: the peers of a case run round-robin (``_common.time_interleaved``),
medians of process CPU time; "speed-up" = t_peer / t_cyconv.

    python bench/bench_ndimage.py [--quick] [--suite correlate,gaussian,uniform]
                                  [--json PATH] [--markdown]
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

SUITES = ("correlate", "gaussian", "uniform", "integer")
TAPS = [0.1, 0.2, 0.4, 0.2, 0.1]   # the integer suite's correlate1d weights
BLUR_3X3 = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0   # and its 2-D weights


def _load():
    cyconv = C.import_cyconv()
    import cyconv.ndimage as cnd
    ndi = C.optional_import("scipy.ndimage") and sys.modules.get("scipy.ndimage")
    if ndi is None:
        raise SystemExit("bench_ndimage needs scipy (the reference peer)")
    cv2 = C.optional_import("cv2")
    C.limit_threads()
    return cyconv, cnd, ndi, cv2


def _check(out, ref) -> dict:
    out, ref = np.asarray(out), np.asarray(ref)
    if ref.dtype.kind in "iub":
        ok = out.dtype == ref.dtype and np.array_equal(out, ref)
        return {"max_rel_err": 0.0 if ok else math.inf, "ok": bool(ok)}
    err = C.max_rel_err(out, ref)
    return {"max_rel_err": err, "ok": bool(err <= C.tolerance(ref.dtype))}


def _case(fns, label, params, quick, log, reference="scipy.ndimage"):
    ref = fns[reference]()
    mine = fns["cyconv"]()
    checks = {"cyconv": _check(mine, ref)}
    for name, fn in fns.items():
        if name not in ("cyconv", reference):
            checks[name] = _check(fn(), mine)
    if quick:
        timings = C.time_interleaved(fns, repeat=1, warmup=1, min_sample=0.0)
    else:
        timings = C.time_interleaved(fns, repeat=15, budget=3.0, warmup=1)
    t_cy = timings["cyconv"].median
    peers = {}
    for name, t in timings.items():
        peers[name] = {**t.as_dict(), **({"check": checks[name]} if name in checks else {})}
        if name != "cyconv":
            peers[name]["speedup_of_cyconv"] = t.median / t_cy
    bad = [n for n, c in checks.items() if not c["ok"]]
    log(f"{label}: " + ", ".join(f"{n} {C.fmt_ms(t.median)} ms" for n, t in timings.items())
        + (f"  MISMATCH: {', '.join(bad)}" if bad else ""))
    return {"label": label, **params, "peers": peers}


def run(quick: bool = False, suites=SUITES, log=C.progress) -> dict:
    cyconv, cnd, ndi, cv2 = _load()
    cyconv.set_num_threads(1)
    load_before = C.loadavg()
    rng = np.random.default_rng(20261130)
    cases = []
    if "correlate" in suites:
        n = 64 if quick else 1024
        for dtype in ("float32", "float64"):
            x = rng.standard_normal((n, n)).astype(dtype)
            for k in (3, 5, 7, 11):
                w = rng.standard_normal((k, k))
                for mode in ("reflect", "constant"):
                    for func in ("correlate", "convolve"):
                        fns = {"cyconv": lambda f=func, m=mode: getattr(cnd, f)(x, w, mode=m),
                               "scipy.ndimage":
                                   lambda f=func, m=mode: getattr(ndi, f)(x, w, mode=m)}
                        cases.append(_case(fns, f"{func} {dtype} {n}² k={k} {mode}",
                                           {"suite": "correlate", "func": func, "dtype": dtype,
                                            "size": n, "k": k, "mode": mode}, quick, log))
        x = rng.integers(0, 256, (n, n), dtype=np.uint8)
        for k in (3, 5, 7, 11):
            w = rng.random((k, k))
            w /= w.sum()
            fns = {"cyconv": lambda: cnd.correlate(x, w),
                   "scipy.ndimage": lambda: ndi.correlate(x, w)}
            cases.append(_case(fns, f"correlate uint8->uint8 {n}² k={k} reflect",
                               {"suite": "correlate", "func": "correlate", "dtype": "uint8",
                                "size": n, "k": k, "mode": "reflect"}, quick, log))
    if "gaussian" in suites:
        n = 64 if quick else 2048
        x = rng.random((n, n), dtype=np.float32)
        for sigma in (1, 2, 4, 8):
            ks = 2 * int(4 * sigma + 0.5) + 1
            fns = {"cyconv": lambda s=sigma: cnd.gaussian_filter(x, s),
                   "scipy.ndimage": lambda s=sigma: ndi.gaussian_filter(x, s)}
            if cv2 is not None:
                fns["cv2.GaussianBlur"] = lambda s=sigma, ks=ks: cv2.GaussianBlur(
                    x, (ks, ks), s, borderType=cv2.BORDER_REFLECT)
            cases.append(_case(fns, f"gaussian_filter float32 {n}² sigma={sigma}",
                               {"suite": "gaussian", "dtype": "float32", "shape": [n, n],
                                "sigma": sigma}, quick, log))
        n = 16 if quick else 256
        v = rng.random((n, n, n), dtype=np.float32)
        for sigma in (1, 2, 4, 8):
            fns = {"cyconv": lambda s=sigma: cnd.gaussian_filter(v, s),
                   "scipy.ndimage": lambda s=sigma: ndi.gaussian_filter(v, s)}
            cases.append(_case(fns, f"gaussian_filter float32 {n}³ sigma={sigma}",
                               {"suite": "gaussian", "dtype": "float32", "shape": [n, n, n],
                                "sigma": sigma}, quick, log))
    if "uniform" in suites:
        n = 64 if quick else 2048
        x = rng.random((n, n), dtype=np.float32)
        for size in (3, 5, 9, 15, 21, 31):
            fns = {"cyconv": lambda s=size: cnd.uniform_filter(x, s),
                   "scipy.ndimage": lambda s=size: ndi.uniform_filter(x, s)}
            cases.append(_case(fns, f"uniform_filter float32 {n}² size={size}",
                               {"suite": "uniform", "dtype": "float32", "size": n,
                                "filter_size": size}, quick, log))
    if "integer" in suites:
        calls = [
            ("gaussian_filter sigma=1", lambda m, x: m.gaussian_filter(x, 1)),
            ("gaussian_filter sigma=3", lambda m, x: m.gaussian_filter(x, 3)),
            ("uniform_filter size=3", lambda m, x: m.uniform_filter(x, 3)),
            ("uniform_filter size=9", lambda m, x: m.uniform_filter(x, 9)),
            ("sobel axis=0", lambda m, x: m.sobel(x, 0)),
            ("sobel axis=0 -> int16", lambda m, x: m.sobel(x, 0, output=np.int16)),
            ("correlate1d 5 taps axis=1", lambda m, x: m.correlate1d(x, TAPS, axis=1)),
            ("correlate1d 5 taps axis=0", lambda m, x: m.correlate1d(x, TAPS, axis=0)),
            ("correlate 3x3", lambda m, x: m.correlate(x, BLUR_3X3)),
        ]
        for n in ((16,) if quick else (16, 256, 1024)):
            x = rng.integers(0, 256, (n, n), dtype=np.uint8)
            for label, call in calls:
                fns = {"cyconv": lambda c=call: c(cnd, x),
                       "scipy.ndimage": lambda c=call: c(ndi, x)}
                cases.append(_case(fns, f"{label} uint8 {n}²",
                                   {"suite": "integer", "dtype": "uint8", "size": n,
                                    "func": label}, quick, log))
    return {"suite": "ndimage", "quick": quick, "machine": C.machine_info(), "clock": C.CLOCK,
            "loadavg": [load_before, C.loadavg()], "wall_over_cpu": C.wall_over_cpu(cases),
            "cases": cases}


def _geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def markdown(result: dict) -> str:
    out = ["### cyconv.ndimage vs scipy.ndimage, single thread", "", C.noise_note(result), "",
           "Median time per call (ms) and cyconv's speed-up (t_peer / t_cyconv; > 1: cyconv "
           "is faster). \"ok\": cyconv's output matches SciPy's (bitwise for uint8).", ""]
    rows = []
    for c in result["cases"]:
        p = c["peers"]
        cv = p.get("cv2.GaussianBlur")
        rows.append([c["label"], C.fmt_ms(p["cyconv"]["median_s"]),
                     C.fmt_ms(p["scipy.ndimage"]["median_s"]),
                     C.fmt_ratio(p["scipy.ndimage"]["speedup_of_cyconv"]),
                     C.fmt_ms(cv["median_s"]) if cv else "-",
                     C.fmt_ratio(cv["speedup_of_cyconv"]) if cv else "-",
                     "ok" if p["cyconv"]["check"]["ok"] else "MISMATCH"])
    out.append(C.markdown_table(["case", "cyconv ms", "scipy.ndimage ms", "vs scipy",
                                 "cv2 ms", "vs cv2", "check"], rows, align="lrrrrrl"))
    out += ["", "Summary:", ""]
    groups = {}
    for c in result["cases"]:
        key = (c["suite"], c.get("dtype"), len(c.get("shape", [0, 0])))
        groups.setdefault(key, []).append(c["peers"]["scipy.ndimage"]["speedup_of_cyconv"])
    rows = [[f"{s} {d}" + (" 3-D" if nd == 3 else ""), C.fmt_ratio(_geomean(v)),
             C.fmt_ratio(min(v))] for (s, d, nd), v in groups.items()]
    out.append(C.markdown_table(["group", "geomean vs scipy", "worst vs scipy"], rows,
                                align="lrr"))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = C.argument_parser(__doc__, "tiny sizes, one run")
    ap.add_argument("--suite", default=",".join(SUITES),
                    help="comma-separated: " + ", ".join(SUITES))
    args = C.parse_arguments(ap, argv)
    result = run(quick=args.quick, suites=args.suite.split(","))
    C.report(args, result, markdown)
    bad = [c["label"] for c in result["cases"]
           for p in c["peers"].values() if "check" in p and not p["check"]["ok"]]
    if bad:
        C.progress(f"{len(bad)} mismatch(es): {bad}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

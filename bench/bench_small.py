#!/usr/bin/env python3
"""Small calls: the fixed cost of ``cyconv.convolve2d`` per call, one thread.

Case: a C-contiguous float32 image of 8², 16², 32², 64², 128² with a 3x3
kernel, mode "same", boundary "fill" — what numerical code calls in loops.
Callables, timed round-robin (``_common.time_interleaved``, medians of
process CPU time, each sample a batch of calls):

``kernel``
    the compiled core alone: ``_core.correlate_plane`` called directly with
    prebuilt index maps, fill, flipped kernel, output and strip buffers —
    what no Python layer can go below.
``cyconv w=1`` / ``cyconv w=None``
    ``cyconv.convolve2d(x, k, "same", workers=1)`` and with ``workers=None``
    (the process default; the work is too small for a second thread).
``scipy.signal``, ``cv2.filter2D``
    the peers, set up as in ``bench_convolve2d.py`` (same array as cyconv).

"overhead" = cyconv - kernel: the whole Python layer (checks, result type,
plan, index maps, method, thread decision, output allocation).

A third table times ``cyconv.ndimage`` filters against ``scipy.ndimage`` on
float32 and uint8 images of 16², 32², 64², 128² (default arguments: mode
"reflect", the output in the input's dtype; ``correlate`` with a 3x3 kernel,
``correlate1d`` with [1, 2, 1] / 4).

A second table times ``cyconv.conv2d`` on small layers (padding 1, one
thread) against ``torch.nn.functional.conv2d`` when PyTorch is installed:
``conv2d`` is a repeated call (what a training loop makes: the checks and
plan are remembered), ``conv2d first`` the same call with nothing
remembered (``_conv2d._prepared`` cleared before each call).

    python bench/bench_small.py [--json PATH] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

SIZES = (8, 16, 32, 64, 128)
PEERS = ("kernel", "cyconv w=1", "cyconv w=None", "scipy.signal", "cv2.filter2D")
NDIMAGE_SIZES = (16, 32, 64, 128)
NDIMAGE_FILTERS = {
    "correlate 3x3": lambda m, x: m.correlate(x, NDIMAGE_KERNEL),
    "correlate1d": lambda m, x: m.correlate1d(x, [0.25, 0.5, 0.25]),
    "uniform_filter 3": lambda m, x: m.uniform_filter(x, 3),
    "gaussian_filter σ=1": lambda m, x: m.gaussian_filter(x, 1.0),
    "sobel": lambda m, x: m.sobel(x),
    "laplace": lambda m, x: m.laplace(x),
}
NDIMAGE_KERNEL = np.full((3, 3), 1 / 9, np.float32)
# conv2d layers: (N, C, H, W), (K, C, R, S)
LAYERS = (((1, 1, 8, 8), (1, 1, 3, 3)), ((1, 3, 28, 28), (8, 3, 3, 3)),
          ((16, 8, 14, 14), (16, 8, 3, 3)), ((1, 16, 32, 32), (32, 16, 3, 3)))


def make_callables(cyconv, signal, cv2, x, k) -> dict:
    from cyconv import _core
    from cyconv._padding import index_map

    H, W = x.shape
    kf = np.ascontiguousarray(k[::-1, ::-1])
    rows, cols = index_map(H, 1, 1, "constant"), index_map(W, 1, 1, "constant")
    fill = np.zeros(1, x.dtype)
    out = np.empty((H, W), x.dtype)
    strip = np.empty((H + 2, W + 2), x.dtype)

    def kernel():
        _core.correlate_plane(x, rows, cols, 1, fill, kf, out, strip, 0, H)
        return out

    fns = {"kernel": kernel,
           "cyconv w=1": lambda: cyconv.convolve2d(x, k, "same", workers=1),
           "cyconv w=None": lambda: cyconv.convolve2d(x, k, "same")}
    if signal is not None:
        fns["scipy.signal"] = lambda: signal.convolve2d(x, k, "same")
    if cv2 is not None:
        fns["cv2.filter2D"] = lambda: cv2.filter2D(x, -1, kf, anchor=(1, 1),
                                                   borderType=cv2.BORDER_CONSTANT)
    return fns


def check_and_time(fns: dict, reference: str, case: str, repeat: int) -> dict:
    """Check every callable against fns[reference] (float32 tolerance), then time them."""
    ref = fns[reference]()
    for name, fn in fns.items():
        err = C.max_rel_err(np.asarray(fn()), ref)
        if err > C.tolerance(np.float32):
            raise SystemExit(f"{name} differs from {reference} at {case}: {err}")
    return C.time_interleaved(fns, repeat=repeat, warmup=3, min_sample=0.02)


def run(log=C.progress, repeat: int = 41) -> dict:
    cyconv = C.import_cyconv()
    signal = C.optional_import("scipy.signal") and sys.modules.get("scipy.signal")
    cv2 = C.optional_import("cv2")
    C.limit_threads()
    load_before = C.loadavg()
    rng = np.random.default_rng(11)
    cases = []
    for n in SIZES:
        x = rng.standard_normal((n, n)).astype(np.float32)
        k = rng.standard_normal((3, 3)).astype(np.float32)
        fns = make_callables(cyconv, signal, cv2, x, k)
        timings = check_and_time(fns, "cyconv w=1", f"{n}²", repeat)
        peers = {name: t.as_dict() for name, t in timings.items()}
        cases.append({"size": n, "peers": peers})
        log(f"small {n:3d}²: " + ", ".join(f"{name} {t.median * 1e6:.2f} µs"
                                           for name, t in timings.items()))
    layers = run_conv2d(cyconv, rng, repeat, log)
    filters = run_ndimage(cyconv, rng, repeat, log)
    return {"suite": "small", "machine": C.machine_info(), "clock": C.CLOCK,
            "loadavg": [load_before, C.loadavg()], "wall_over_cpu": C.wall_over_cpu(cases),
            "peers": [p for p in PEERS if p in cases[0]["peers"]], "cases": cases,
            "conv2d": layers, "ndimage": filters}


def run_ndimage(cyconv, rng, repeat: int, log) -> list:
    ndi = C.optional_import("scipy.ndimage") and sys.modules.get("scipy.ndimage")
    if ndi is None:
        return []
    import cyconv.ndimage as cnd
    cases = []
    for dtype in ("float32", "uint8"):
        for name, f in NDIMAGE_FILTERS.items():
            for n in NDIMAGE_SIZES:
                x = (rng.random((n, n)) * (255 if dtype == "uint8" else 1)).astype(dtype)
                fns = {"cyconv": lambda f=f, x=x: f(cnd, x),
                       "scipy": lambda f=f, x=x: f(ndi, x)}
                timings = check_and_time(fns, "cyconv", f"{name} {dtype} {n}²", repeat)
                cases.append({"filter": name, "dtype": dtype, "size": n,
                              "peers": {p: t.as_dict() for p, t in timings.items()}})
                log(f"ndimage {name} {dtype} {n}²: " + ", ".join(
                    f"{p} {t.median * 1e6:.2f} µs" for p, t in timings.items()))
    return cases


def run_conv2d(cyconv, rng, repeat: int, log) -> list:
    from cyconv import _conv2d
    torch = C.optional_import("torch")
    layers = []
    for xshape, wshape in LAYERS:
        x = rng.standard_normal(xshape).astype(np.float32)
        w = rng.standard_normal(wshape).astype(np.float32)

        def first(x=x, w=w):
            _conv2d._prepared.clear()
            return cyconv.conv2d(x, w, padding=1, workers=1)

        fns = {"conv2d": lambda x=x, w=w: cyconv.conv2d(x, w, padding=1, workers=1),
               "conv2d first": first}
        if torch is not None:
            tx, tw = torch.from_numpy(x), torch.from_numpy(w)
            fns["torch"] = lambda tx=tx, tw=tw: torch.nn.functional.conv2d(tx, tw, padding=1)
        timings = check_and_time(fns, "conv2d", str(xshape), repeat)
        layers.append({"input": xshape, "weight": wshape,
                       "peers": {name: t.as_dict() for name, t in timings.items()}})
        log(f"conv2d {xshape} * {wshape}: " + ", ".join(
            f"{name} {t.median * 1e6:.2f} µs" for name, t in timings.items()))
    return layers


def markdown(result: dict) -> str:
    def us(case, name):
        p = case["peers"].get(name)
        return p["median_s"] * 1e6 if p else None

    headers = ["image", "kernel µs", "cyconv w=1 µs", "overhead", "cyconv w=None µs",
               "overhead", "scipy.signal µs", "vs scipy", "cv2 µs", "vs cv2"]
    rows = []
    for c in result["cases"]:
        kern, c1, cn = us(c, "kernel"), us(c, "cyconv w=1"), us(c, "cyconv w=None")
        sp, cv = us(c, "scipy.signal"), us(c, "cv2.filter2D")
        rows.append([f"{c['size']}²", f"{kern:.2f}", f"{c1:.2f}", f"+{c1 - kern:.2f}",
                     f"{cn:.2f}", f"+{cn - kern:.2f}",
                     f"{sp:.2f}" if sp else "–", f"{sp / c1:.2f}×" if sp else "–",
                     f"{cv:.2f}" if cv else "–", f"{c1 / cv:.2f}×" if cv else "–"])
    table = C.markdown_table(headers, rows)
    layers = []
    for c in result.get("conv2d", []):
        repeated, first, torch = us(c, "conv2d"), us(c, "conv2d first"), us(c, "torch")
        layers.append(["×".join(map(str, c["input"])), "×".join(map(str, c["weight"])),
                       f"{repeated:.2f}", f"{first:.2f}", f"{torch:.2f}" if torch else "–",
                       f"{torch / repeated:.2f}×" if torch else "–"])
    conv = C.markdown_table(["input", "weight", "conv2d µs", "conv2d first µs", "torch µs",
                             "vs torch"], layers) if layers else ""
    filters = [[c["filter"], c.get("dtype", "float32"), f"{c['size']}²",
                f"{us(c, 'cyconv'):.1f}", f"{us(c, 'scipy'):.1f}",
                f"{us(c, 'scipy') / us(c, 'cyconv'):.2f}×"] for c in result.get("ndimage", [])]
    nd = C.markdown_table(["filter", "dtype", "image", "cyconv.ndimage µs", "scipy.ndimage µs",
                           "vs scipy"], filters) if filters else ""
    return (table + "\n\n"
            + "vs scipy: t_scipy / t_cyconv (> 1: cyconv faster); vs cv2: t_cyconv / t_cv2 "
              "(< 2: within 2× of OpenCV). " + C.noise_note(result)
            + ("\n\n" + conv + "\n\nconv2d, padding 1, one thread; vs torch: t_torch / "
               "t_cyconv of the repeated call." if conv else "")
            + ("\n\n" + nd + "\n\nndimage filters, default arguments; vs scipy: "
               "t_scipy / t_cyconv." if nd else ""))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="write the raw results here")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--repeat", type=int, default=41, help="samples per callable")
    args = ap.parse_args(argv)
    result = run(repeat=args.repeat)
    if args.json:
        C.write_json(args.json, result)
    if args.markdown:
        print(markdown(result))


if __name__ == "__main__":
    main()

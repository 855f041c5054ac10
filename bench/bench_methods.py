"""Where method="auto" should switch: direct vs separable vs FFT vs peers.

For a 1024x1024 image and square kernels from 3 to 63 (a dense random
kernel, and a separable Gaussian), times cyconv's three methods, what
"auto" picks, scipy.signal.fftconvolve and cv2.filter2D, single-threaded
and interleaved. Reports the crossovers, auto's ratio to the best peer, and
(--fit) the cost-model constants these timings imply for _methods.py.

    python bench/bench_methods.py [--quick] [--json PATH] [--fit]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

_common.single_thread()
import numpy as np  # noqa: E402


def gaussian(size: int) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-x ** 2 / (2 * (size / 5) ** 2))
    return np.outer(g, g) / g.sum() ** 2


def run(quick: bool) -> dict:
    cyconv = _common.import_cyconv()
    from cyconv import _methods  # noqa: F401  (the model being checked)
    _common.limit_threads()
    scipy_signal = _common.optional_import("scipy.signal")
    if scipy_signal is not None:
        import scipy.signal as scipy_signal
    cv2 = _common.optional_import("cv2")
    n = 256 if quick else 1024
    sizes = [3, 15] if quick else [3, 5, 7, 9, 11, 15, 21, 31, 45, 63]
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        image = rng.standard_normal((n, n)).astype(dtype)
        for size in sizes:
            for kind in ("dense", "separable"):
                k = (rng.standard_normal((size, size)) if kind == "dense"
                     else gaussian(size)).astype(dtype)
                fns = {m: (lambda m=m: cyconv.convolve2d(image, k, "same", method=m, workers=1))
                       for m in ("direct", "fft", "auto")}
                if kind == "separable":
                    fns["separable"] = lambda: cyconv.convolve2d(image, k, "same",
                                                                 method="separable", workers=1)
                if scipy_signal is not None:
                    fns["scipy.fftconvolve"] = lambda: scipy_signal.fftconvolve(image, k, "same")
                if cv2 is not None:
                    flipped = np.ascontiguousarray(k[::-1, ::-1])
                    fns["cv2.filter2D"] = lambda: cv2.filter2D(
                        image, -1, flipped, anchor=(size // 2, size // 2),
                        borderType=cv2.BORDER_CONSTANT)
                times = _common.time_interleaved(fns, repeat=3 if quick else 7,
                                                 budget=1.0 if quick else 4.0)
                ms = {name: t.median for name, t in times.items()}
                peers = {name: ms[name] for name in ms if name != "auto"}
                best = min(peers, key=peers.get)
                rows.append(dict(dtype=np.dtype(dtype).name, size=size, kind=kind, seconds=ms,
                                 auto_picks=cyconv.choose_method(image, k, "same"),
                                 best=best, auto_vs_best=ms["auto"] / peers[best]))
                _common.progress(f"{np.dtype(dtype).name} {kind} {size}: best {best}, auto "
                                 f"{rows[-1]['auto_picks']} at {rows[-1]['auto_vs_best']:.2f}x")
    return dict(machine=_common.machine_info(), image=n, rows=rows)


def fit(result: dict) -> None:
    """Per-unit costs implied by the timings (medians over the sizes)."""
    n = result["image"]
    for dtype in ("float32", "float64"):
        direct, sep, fft = [], [], []
        for r in result["rows"]:
            if r["dtype"] != dtype:
                continue
            s, t = r["size"], r["seconds"]
            direct.append(t["direct"] / (n * n * s * s))
            if "separable" in t:
                sep.append(t["separable"] / (n * n * 2 * s))
            points = (n + s - 1) ** 2
            fft.append(t["fft"] / (points * math.log2(points)))
        med = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
        print(f"{dtype}: direct {1 / med(direct) / 1e9:.1f} G MAC/s, separable "
              f"{1 / med(sep) / 1e9:.1f} G MAC/s, fft {med(fft) * 1e9:.2f} ns per point*log2")


def markdown(result: dict) -> str:
    names = ["direct", "separable", "fft", "auto", "scipy.fftconvolve", "cv2.filter2D"]
    headers = ["dtype", "kernel", "size"] + [f"{m} ms" for m in names] + ["auto picks", "best",
                                                                          "auto / best"]
    table = []
    for r in result["rows"]:
        t = r["seconds"]
        table.append([r["dtype"], r["kind"], r["size"]]
                     + [_common.fmt_ms(t.get(m)) for m in names]
                     + [r["auto_picks"], r["best"], f"{r['auto_vs_best']:.2f}"])
    return _common.markdown_table(headers, table)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check every case runs")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--fit", action="store_true", help="print cost-model constants")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(markdown(result))
    if args.fit:
        fit(result)
    if args.json:
        _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

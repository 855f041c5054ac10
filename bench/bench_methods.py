"""cyconv's own methods against each other: where method="auto" should switch.

For square images (64..4096) and square kernels (3..101), dense random and
rank-1 (a Gaussian), float32 and float64, mode "same", times the forced
methods (direct, separable for rank-1 kernels, fft) and "auto",
single-threaded and interleaved. Reports what auto picks and its ratio to
the fastest forced method, and (--fit) the cost-model constants these
timings imply, printed as the lines to paste into src/cyconv/_methods.py
(_DIRECT_PER_MAC, _DIRECT_PER_PIXEL, _SEPARABLE_PER_MAC) and
src/cyconv/_fft.py (FFT_PER_POINT_LOG).

    python bench/bench_methods.py [--quick] [--images 256 1024] [--kernels 3 15 51]
                                  [--json PATH] [--fit]

Cases whose direct method the current model puts above --max-seconds are
not timed for direct (they could not be auto's choice).
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


def modelled(cyconv, image, k):
    """The cost model's seconds per method for this case (None: not applicable)."""
    from cyconv import _fft, _methods
    from cyconv._convolve import _plan
    plan = _plan(image, k, "same", "fill", 0, True)
    size = image.dtype.itemsize
    (Ho, Wo), (M, N) = plan.out_shape, plan.kernel.shape
    Hp = len(plan.row_map)
    th, tw, fft = _fft.tile_shape(plan.out_shape, plan.kernel.shape, image.dtype)
    return dict(
        direct=Ho * Wo * (M * N * _methods._DIRECT_PER_MAC[size] + _methods._DIRECT_PER_PIXEL),
        separable=(Hp * Wo * N + Ho * Wo * M) * _methods._SEPARABLE_PER_MAC[size]
        + Ho * Wo * _methods._DIRECT_PER_PIXEL,
        fft=fft, tile=(th, tw),
        macs=Ho * Wo * M * N, sep_macs=Hp * Wo * N + Ho * Wo * M, pixels=Ho * Wo)


def run(args) -> dict:
    cyconv = _common.import_cyconv()
    _common.limit_threads()
    from cyconv import _fft
    rng = np.random.default_rng(0)
    rows = []
    for n in args.images:
        for dtype in (np.float32, np.float64):
            image = rng.standard_normal((n, n)).astype(dtype)
            for size in args.kernels:
                for kind in ("dense", "rank-1"):
                    k = (rng.standard_normal((size, size)) if kind == "dense"
                         else gaussian(size)).astype(dtype)
                    model = modelled(cyconv, image, k)
                    methods = ["fft", "auto"]
                    if model["direct"] < args.max_seconds:
                        methods.append("direct")
                    if kind == "rank-1" and size > 1:
                        methods.append("separable")
                    fns = {m: (lambda m=m: cyconv.convolve2d(image, k, "same", method=m,
                                                             workers=1)) for m in methods}
                    times = _common.time_interleaved(fns, repeat=args.repeat, budget=args.budget)
                    sec = {m: t.median for m, t in times.items()}
                    own = {m: s for m, s in sec.items() if m != "auto"}
                    best = min(own, key=own.get)
                    picks = cyconv.choose_method(image, k, "same")
                    rows.append(dict(image=n, dtype=np.dtype(dtype).name, size=size, kind=kind,
                                     seconds=sec, model=model, auto_picks=picks, best=best,
                                     auto_vs_best=sec["auto"] / own[best],
                                     backend=_fft.backend()[0]))
                    _common.progress(f"{n}^2 {np.dtype(dtype).name} {kind} {size}: best {best}, "
                                     f"auto picks {picks} at {rows[-1]['auto_vs_best']:.2f}x")
    return dict(machine=_common.machine_info(), rows=rows)


def _ratio_fit(pairs):
    """Scale c minimising the geometric spread of time / (c * units): exp(mean log)."""
    pairs = [(t, u) for t, u in pairs if t and u]
    return math.exp(sum(math.log(t / u) for t, u in pairs) / len(pairs)) if pairs else None


def fit(result: dict) -> None:
    """Per-unit costs implied by the timings, as lines for the source."""
    print("\n# fitted on this machine (see the JSON for its description)")
    direct, sep, fft = {}, {}, {}
    for size in (4, 8):
        name = "float32" if size == 4 else "float64"
        rows = [r for r in result["rows"] if r["dtype"] == name]
        # direct: time = pixels * (macs/pixel * c_mac + c_pixel); fit c_mac on
        # kernels >= 7, c_pixel from the remainder on 3x3.
        c_mac = _ratio_fit([(r["seconds"].get("direct"), r["model"]["macs"])
                            for r in rows if r["size"] >= 7])
        small = [(r["seconds"].get("direct", 0) - r["model"]["macs"] * c_mac,
                  r["model"]["pixels"]) for r in rows if r["size"] == 3 and c_mac]
        c_pix = max(_ratio_fit([(t, u) for t, u in small if t > 0]) or 0.0, 0.0)
        direct[size] = (c_mac, c_pix)
        sep[size] = _ratio_fit([(r["seconds"].get("separable"), r["model"]["sep_macs"])
                                for r in rows])
        # fft: the model's tile cost is linear in FFT_PER_POINT_LOG once the
        # per-point part (a fixed fraction of it) is included: rescale.
        fft[size] = _ratio_fit([(r["seconds"]["fft"], r["model"]["fft"]) for r in rows])
    print("_DIRECT_PER_MAC = {4: 1.0 / %.1fe9, 8: 1.0 / %.1fe9}"
          % (1e-9 / direct[4][0], 1e-9 / direct[8][0]))
    print("_DIRECT_PER_PIXEL = %.2ge-9" % (1e9 * (direct[4][1] + direct[8][1]) / 2))
    if sep[4] and sep[8]:
        print("_SEPARABLE_PER_MAC = {4: 1.0 / %.1fe9, 8: 1.0 / %.1fe9}"
              % (1e-9 / sep[4], 1e-9 / sep[8]))
    from cyconv import _fft
    name = result["rows"][0]["backend"]
    print(f"# _fft.py, backend {name}: multiply the current FFT_PER_POINT_LOG and "
          "FFT_PER_POINT entries by")
    for size in (4, 8):
        print(f"#   itemsize {size}: {fft[size]:.2f}  ->  FFT_PER_POINT_LOG[{name!r}, {size}] = "
              f"{_fft.FFT_PER_POINT_LOG[name, size] * fft[size]:.3g}, FFT_PER_POINT[{name!r}, "
              f"{size}] = {_fft.FFT_PER_POINT[name, size] * fft[size]:.3g}")


def markdown(result: dict) -> str:
    names = ["direct", "separable", "fft", "auto"]
    headers = ["image", "dtype", "kernel", "k"] + [f"{m} ms" for m in names] + [
        "auto picks", "fastest", "auto / fastest"]
    table = []
    for r in result["rows"]:
        t = r["seconds"]
        table.append([r["image"], r["dtype"], r["kind"], r["size"]]
                     + [_common.fmt_ms(t.get(m)) for m in names]
                     + [r["auto_picks"], r["best"], f"{r['auto_vs_best']:.2f}"])
    worst = max(r["auto_vs_best"] for r in result["rows"])
    return _common.markdown_table(headers, table) + f"\n\nworst auto / fastest: {worst:.2f}\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check every case runs")
    parser.add_argument("--images", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--kernels", type=int, nargs="+",
                        default=[3, 5, 7, 11, 15, 21, 31, 51, 75, 101])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=2.0,
                        help="about this many seconds of samples per method and case")
    parser.add_argument("--max-seconds", type=float, default=3.0,
                        help="skip forced direct where the model predicts more")
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--fit", action="store_true", help="print cost-model constants")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.kernels, args.repeat, args.budget = [64], [3, 15], 2, 0.2
    result = run(args)
    print(markdown(result))
    if args.fit:
        fit(result)
    if args.json:
        _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

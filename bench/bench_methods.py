"""cyconv's own methods against each other: where method="auto" should switch.

For square images (64..4096) and square kernels (3..101), dense random and
rank-1 (a Gaussian), float32 and float64, mode "same", times the forced
methods (direct, separable for rank-1 kernels, fft) and "auto",
single-threaded and interleaved. Reports what auto picks and its ratio to
the fastest forced method, and (--fit) the cost-model constants these
timings imply, printed as the DIRECT, SEPARABLE and FFT dicts to paste
into src/cyconv/_cost_model.py (FFT's under the backend measured:
--fft-backend numpy gives NumPy's where SciPy is installed).

    python bench/bench_methods.py [--quick] [--images 256 1024] [--kernels 3 15 51]
                                  [--json PATH] [--fit] [--fft-backend numpy]

Cases whose direct method the current model puts above --max-seconds are
not timed for direct (they could not be auto's choice).
"""

from __future__ import annotations

import argparse
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


def features(image, k):
    """The cost model's features and modelled seconds of each method for this case."""
    from cyconv import _cost_model as cm, _fft, _methods
    from cyconv._convolve import _plan
    plan = _plan(image, k, "same", "fill", 0, True)
    size = image.dtype.itemsize
    shapes = plan.out_shape, plan.kernel.shape
    th, tw, fft = _fft.tile_shape(*shapes, image.dtype)
    f = dict(direct=cm.direct_features(*shapes),
             separable=cm.separable_features(
                 *shapes, _methods._strip_rows(plan.out_shape[0], len(plan.col_map), size)),
             fft=cm.fft_features(*shapes, (th, tw), size))
    return dict(features=f, tile=(th, tw), fft=fft,
                direct=cm.cost(cm.DIRECT[size], f["direct"]),
                separable=cm.cost(cm.SEPARABLE[size], f["separable"]))


def run(args) -> dict:
    cyconv = _common.import_cyconv()
    _common.limit_threads()
    from cyconv import _fft
    if args.fft_backend == "numpy":   # as where SciPy is not installed
        _fft._backend, _fft._scipy_found = ("numpy", np.fft), False
    rng = np.random.default_rng(0)
    rows = []
    for n in args.images:
        for dtype in (np.float32, np.float64):
            image = rng.standard_normal((n, n)).astype(dtype)
            for size in args.kernels:
                for kind in ("dense", "rank-1"):
                    k = (rng.standard_normal((size, size)) if kind == "dense"
                         else gaussian(size)).astype(dtype)
                    model = features(image, k)
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


def _fit_relative(rows, method, names):
    """Non-negative constants c minimising sum ((c . features - t) / t)^2."""
    feats = [(r["seconds"][method], r["model"]["features"][method]) for r in rows
             if r["seconds"].get(method)]
    if len(feats) < len(names):
        return None
    A = np.array([[f[n] / t for n in names] for t, f in feats])
    active = list(range(len(names)))
    while True:   # least squares, dropping constants that come out negative
        c, *_ = np.linalg.lstsq(A[:, active], np.ones(len(A)), rcond=None)
        if (c >= 0).all():
            break
        active.pop(int(np.argmin(c)))
    out = dict.fromkeys(names, 0.0)
    out.update({names[i]: float(v) for i, v in zip(active, c)})
    return out


def fit(result: dict) -> None:
    """Least-squares constants for src/cyconv/_cost_model.py, printed as source."""
    print("\n# bench/bench_methods.py --fit: paste into src/cyconv/_cost_model.py")
    backend = result["rows"][0]["backend"]
    for table, method, names in (("DIRECT", "direct", ("call", "pixel", "mac")),
                                 ("SEPARABLE", "separable", ("call", "pixel", "mac")),
                                 ("FFT", "fft", ("call", "band", "point", "point_log"))):
        print(f"{table} = {{")
        for size, dtype in ((4, "float32"), (8, "float64")):
            if method == "fft" and backend == "numpy" and size == 4:
                continue   # NumPy transforms float32 in float64: the model has no such row
            c = _fit_relative([r for r in result["rows"] if r["dtype"] == dtype], method, names)
            if c is None:
                continue
            key = f"({backend!r}, {size})" if method == "fft" else str(size)
            body = ", ".join(f'"{n}": {v:.3g}' for n, v in c.items())
            print(f"    {key}: {{{body}}},")
        print("}")


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
    parser.add_argument("--fft-backend", choices=["auto", "numpy"], default="auto",
                        help="numpy: NumPy's FFT even where SciPy is installed")
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

"""Big dense kernels: cyconv's method="auto" against OpenCV and SciPy's FFTs.

Dense random kernels k in {15, 21, 31, 51, 75, 101}, square images, float32
and float64, modes "same" and "full", boundary fill, one thread, peers
interleaved in one process: cyconv.convolve2d (auto), cv2.filter2D (its
DFT path for big kernels; "full" through a zero-padded copy, as a user
would), scipy.signal.fftconvolve and scipy.signal.oaconvolve. Reports
auto / fastest peer per case and the geometric mean.

    python bench/bench_big_kernels.py [--images 512 1024] [--kernels 15 51]
                                      [--numpy-fft] [--json PATH]

--numpy-fft makes cyconv use numpy.fft as when SciPy is not installed
(the peers still use SciPy and OpenCV).
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


def run(args) -> dict:
    cyconv = _common.import_cyconv()
    import cv2
    import scipy.signal
    _common.limit_threads()
    from cyconv import _fft
    if args.numpy_fft:
        _fft._backend = ("numpy", np.fft)
    rng = np.random.default_rng(0)
    rows = []
    for n in args.images:
        for dtype in (np.float32, np.float64):
            image = rng.standard_normal((n, n)).astype(dtype)
            for size in args.kernels:
                k = rng.standard_normal((size, size)).astype(dtype)
                flipped = np.ascontiguousarray(k[::-1, ::-1])
                for mode in args.modes:
                    def cv_call(mode=mode):
                        if mode == "same":
                            return cv2.filter2D(image, -1, flipped, anchor=(size // 2, size // 2),
                                                borderType=cv2.BORDER_CONSTANT)
                        big = cv2.copyMakeBorder(image, size - 1, size - 1, size - 1, size - 1,
                                                 cv2.BORDER_CONSTANT, value=0)
                        return cv2.filter2D(big, -1, flipped, anchor=(size // 2, size // 2),
                                            borderType=cv2.BORDER_CONSTANT)[
                            size // 2: size // 2 + n + size - 1,
                            size // 2: size // 2 + n + size - 1]
                    fns = {"cyconv auto": lambda mode=mode: cyconv.convolve2d(
                               image, k, mode, workers=1),
                           "cv2.filter2D": cv_call,
                           "scipy.fftconvolve": lambda mode=mode: scipy.signal.fftconvolve(
                               image, k, mode),
                           "scipy.oaconvolve": lambda mode=mode: scipy.signal.oaconvolve(
                               image, k, mode)}
                    times = _common.time_interleaved(fns, repeat=args.repeat, budget=args.budget)
                    sec = {m: t.median for m, t in times.items()}
                    peers = {m: s for m, s in sec.items() if m != "cyconv auto"}
                    best = min(peers, key=peers.get)
                    rows.append(dict(image=n, dtype=np.dtype(dtype).name, size=size, mode=mode,
                                     seconds=sec, best_peer=best,
                                     picks=cyconv.choose_method(image, k, mode),
                                     ratio=sec["cyconv auto"] / peers[best]))
                    _common.progress(f"{n}^2 {np.dtype(dtype).name} k={size} {mode}: "
                                     f"{rows[-1]['picks']} {sec['cyconv auto'] * 1e3:.1f} ms, "
                                     f"{best} {peers[best] * 1e3:.1f} ms, "
                                     f"ratio {rows[-1]['ratio']:.2f}")
    geo = math.exp(sum(math.log(r["ratio"]) for r in rows) / len(rows))
    return dict(machine=_common.machine_info(), backend=_fft.backend()[0], rows=rows,
                geomean=geo, worst=max(r["ratio"] for r in rows))


def markdown(result: dict) -> str:
    names = ["cyconv auto", "cv2.filter2D", "scipy.fftconvolve", "scipy.oaconvolve"]
    headers = ["image", "dtype", "k", "mode"] + [f"{m} ms" for m in names] + [
        "auto picks", "auto / fastest peer"]
    table = [[r["image"], r["dtype"], r["size"], r["mode"]]
             + [_common.fmt_ms(r["seconds"][m]) for m in names]
             + [r["picks"], f"{r['ratio']:.2f}"] for r in result["rows"]]
    return (_common.markdown_table(headers, table)
            + f"\n\ncyconv FFT backend: {result['backend']}; geomean auto / fastest peer "
              f"{result['geomean']:.2f}, worst {result['worst']:.2f}\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[512, 1024, 4096])
    parser.add_argument("--kernels", type=int, nargs="+", default=[15, 21, 31, 51, 75, 101])
    parser.add_argument("--modes", nargs="+", default=["same", "full"])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--numpy-fft", action="store_true")
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args(argv)
    result = run(args)
    print(markdown(result))
    if args.json:
        _common.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())

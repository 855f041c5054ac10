#!/usr/bin/env python3
"""Integer images: ``cyconv.convolve2d`` against ``scipy.signal.convolve2d``, one thread.

Cases: a 1024x1024 image of 8-bit values (0-255) stored as uint8, int16,
int32 or int64, square kernels 3, 5 and 7 of small integers (-3..3; 0..3
for unsigned), mode "same", boundary "fill"; the kernel's dtype is the
image's, or int64 for a uint8 image (what ``np.array([[...]])`` gives:
the result is then int64). These sums fit float32's exact range, so cyconv
runs them on its float32 kernels; a fifth row per kernel size, int64 values
of 40 bits, needs float64's.

Only SciPy is a peer: ``scipy.ndimage`` computes in double and casts into
the input's type, and OpenCV saturates, so neither returns SciPy's array.
Every result is compared with SciPy's, bit for bit, once per case.

Timing: round-robin (``_common.time_interleaved``), median per call;
"speed-up" = t_scipy / t_cyconv.

    python bench/bench_integers.py [--quick] [--json PATH] [--markdown]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

C.single_thread()

import numpy as np  # noqa: E402

SIZE = 1024
KERNELS = (3, 5, 7)
# (image dtype, kernel dtype, bits of the image's values)
CASES = (("uint8", "uint8", 8), ("uint8", "int64", 8), ("int16", "int16", 8),
         ("int32", "int32", 8), ("int64", "int64", 8), ("int64", "int64", 40))


def run(quick: bool = False, log=C.progress) -> dict:
    cyconv = C.import_cyconv()
    import scipy.signal
    size = 64 if quick else SIZE
    rng = np.random.default_rng(20261207)
    cases = []
    for ks in KERNELS:
        for image_dtype, kernel_dtype, bits in CASES:
            x = rng.integers(0, 2 ** bits, (size, size)).astype(image_dtype)
            low = 0 if np.dtype(kernel_dtype).kind == "u" else -3
            k = rng.integers(low, 3, (ks, ks), endpoint=True).astype(kernel_dtype)
            fns = {"cyconv": lambda: cyconv.convolve2d(x, k, "same", workers=1),
                   "scipy.signal": lambda: scipy.signal.convolve2d(x, k, "same")}
            ref, got = fns["scipy.signal"](), fns["cyconv"]()
            same = bool(got.dtype == ref.dtype and np.array_equal(got, ref))
            repeat = 1 if quick else {"cyconv": 25, "scipy.signal": 3}
            t = C.time_interleaved(fns, repeat=repeat, budget=None if quick else 2.0,
                                   min_sample=0.0 if quick else 0.01)
            case = {"size": size, "kernel": ks, "image": image_dtype, "kernel_dtype":
                    kernel_dtype, "bits": bits, "result": str(got.dtype), "bitwise": same,
                    "seconds": {n: v.median for n, v in t.items()}}
            cases.append(case)
            log(f"{image_dtype} x {kernel_dtype} ({bits}-bit values) {ks}x{ks}: "
                + ", ".join(f"{n} {C.fmt_ms(v.median)} ms" for n, v in t.items())
                + ("" if same else "  MISMATCH"))
    return {"suite": "integers", "quick": quick, "machine": C.machine_info(),
            "clock": C.CLOCK, "cases": cases}


def markdown(result: dict) -> str:
    rows = []
    for c in result["cases"]:
        s = c["seconds"]
        rows.append([f"{c['image']} × {c['kernel_dtype']}", c["bits"],
                     f"{c['kernel']}×{c['kernel']}", c["result"],
                     C.fmt_ms(s["cyconv"]), C.fmt_ms(s["scipy.signal"]),
                     C.fmt_ratio(s["scipy.signal"] / s["cyconv"]),
                     "yes" if c["bitwise"] else "**no**"])
    n = result["cases"][0]["size"]
    return (f"### convolve2d on integer images, {n}×{n}, mode \"same\", one thread\n\n"
            + C.markdown_table(["image × kernel", "value bits", "kernel", "result",
                                "cyconv ms", "scipy.signal ms", "speed-up", "bitwise"], rows))


def main(argv=None) -> int:
    args = C.parse_arguments(C.argument_parser(__doc__), argv)
    result = run(quick=args.quick)
    C.report(args, result, markdown)
    bad = [c for c in result["cases"] if not c["bitwise"]]
    if bad:
        C.progress(f"{len(bad)} case(s) differ from SciPy")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

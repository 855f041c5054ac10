#!/usr/bin/env python3
"""Benchmark ``cyconv.image`` on 8-bit images against OpenCV and Pillow, one thread.

Cases: a 2048x2048 RGB uint8 image and the same as one band (mode "L"),
kernels sharpen (3x3), box:5, gaussian:7,1.5, gaussian:15,3, boundary "symm"
(the default of ``filter_image``).  Peers, side by side in one process:

arrays, uint8 in -> uint8 out
    ``cyconv.image.filter_image(a, k, out_dtype=np.uint8)`` against
    ``cv2.filter2D(a, -1, k[::-1, ::-1], anchor=(N//2, M//2),
    borderType=cv2.BORDER_REFLECT)`` (filter2D correlates: the kernel is
    flipped once, outside the timing; BORDER_REFLECT repeats the edge
    sample like "symm").
Pillow images, conversions in and out included
    ``filter_image(img, k)`` against the same OpenCV call wrapped in
    ``Image.fromarray(cv2.filter2D(np.asarray(img), ...))``, and Pillow's own
    filters where it has the kernel: ``ImageFilter.Kernel`` (3x3 and 5x5
    only: sharpen, box:5), ``ImageFilter.BoxBlur(2)`` (= box:5) and
    ``ImageFilter.GaussianBlur(sigma)`` (Pillow approximates the Gaussian by
    box passes: a cheaper, different filter, listed for reference).
``cyconv filter`` on a folder of 20 JPEG photos (the bundled sample
    upscaled to 2048x2048 and shifted, so no two files are equal)
    wall time of ``python -m cyconv filter --workers 1 --out-dir ...``
    against a short OpenCV script doing the same work in a fresh interpreter:
    decode (``cv2.imread``), filter (as above), encode (``cv2.imwrite`` at
    Pillow's default JPEG quality 75).

Every peer's uint8 result is compared with cyconv's: the count of pixels
that differ and the largest difference are reported (OpenCV and cyconv
both round to nearest; they may differ by one level near ties).

Timing: round-robin (see ``_common.time_interleaved``), median process CPU
time per call; ratio = t_peer / t_cyconv (> 1: cyconv is faster). The CLI
case is timed on the wall clock (several processes), median of 3 runs.

    python bench/bench_image.py [--quick] [--json PATH] [--markdown]
"""

from __future__ import annotations

import math
import os
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

SIZE = 2048
KERNELS = ("sharpen", "box:5", "gaussian:7,1.5", "gaussian:15,3")
N_FILES = 20


def _load():
    cyconv = C.import_cyconv()
    libs = {"cyconv": cyconv, "cv2": C.optional_import("cv2"),
            "PIL": C.optional_import("PIL.Image") and sys.modules.get("PIL.Image")}
    if libs["PIL"] is not None:
        from PIL import ImageFilter
        libs["ImageFilter"] = ImageFilter
    C.limit_threads()
    return libs


def _photo(size: int, shift: int = 0) -> np.ndarray:
    """The bundled sample upscaled to size x size (bicubic), as an RGB uint8 array."""
    from PIL import Image
    import cyconv
    with Image.open(Path(cyconv.__file__).parent / "data" / "sample.png") as im:
        im = im.convert("RGB").resize((size, size), Image.BICUBIC)
    a = np.asarray(im)
    return np.roll(a, shift, axis=1) if shift else a


def _cv2_call(cv2, k):
    M, N = k.shape
    kf = np.ascontiguousarray(k[::-1, ::-1], dtype=np.float32)
    return lambda a: cv2.filter2D(a, -1, kf, anchor=(N // 2, M // 2),
                                  borderType=cv2.BORDER_REFLECT)


def _pillow_filters(IF, name, k):
    """name -> Pillow filter object for the kernels Pillow has."""
    out = {}
    M, N = k.shape
    if (M, N) in ((3, 3), (5, 5)):
        # ImageFilter.Kernel correlates; our kernels here are symmetric
        out["Pillow Kernel"] = IF.Kernel((N, M), k[::-1, ::-1].ravel().tolist(), scale=1)
    if name.startswith("box:"):
        out["Pillow BoxBlur"] = IF.BoxBlur((M - 1) // 2)
    if name.startswith("gaussian:"):
        sigma = float(name.split(",")[1])
        out["Pillow GaussianBlur (approx.)"] = IF.GaussianBlur(sigma)
    return out


def _compare(out, ref) -> dict:
    d = np.abs(np.asarray(out).astype(np.int16) - np.asarray(ref).astype(np.int16))
    return {"max_abs_diff": int(d.max()), "differing": int((d > 0).sum()), "size": int(d.size)}


def run_filters(libs, quick: bool, log=C.progress) -> list:
    from cyconv import image as cimage
    from cyconv import kernels as K
    cv2, Image, IF = libs["cv2"], libs["PIL"], libs.get("ImageFilter")
    size = 128 if quick else SIZE
    rgb = _photo(size)
    cases = []
    for layout, a in (("RGB", rgb), ("L", np.ascontiguousarray(rgb[..., 1]))):
        img = Image.fromarray(a) if Image is not None else None
        for name in KERNELS:
            k = K.get(name)
            for kind in ("array", "PIL"):
                if kind == "PIL" and img is None:
                    continue
                fns = {}
                if kind == "array":
                    fns["cyconv"] = lambda: cimage.filter_image(a, k, out_dtype=np.uint8,
                                                                workers=1)
                    if cv2 is not None:
                        f = _cv2_call(cv2, k)
                        fns["cv2.filter2D"] = lambda: f(a)
                else:
                    fns["cyconv"] = lambda: cimage.filter_image(img, k, workers=1)
                    if cv2 is not None:
                        f = _cv2_call(cv2, k)
                        fns["cv2.filter2D"] = lambda: Image.fromarray(f(np.asarray(img)))
                    for pname, flt in _pillow_filters(IF, name, k).items():
                        fns[pname] = (lambda flt=flt: img.filter(flt))
                ref = np.asarray(fns["cyconv"]())
                checks = {n: _compare(fn(), ref) for n, fn in fns.items() if n != "cyconv"}
                if quick:
                    timings = C.time_interleaved(fns, repeat=1, warmup=1, min_sample=0.0)
                else:
                    timings = C.time_interleaved(fns, repeat=15, budget=4.0, warmup=1)
                t_cy = timings["cyconv"].median
                peers = {}
                for n, t in timings.items():
                    peers[n] = {**t.as_dict(), **({"check": checks[n]} if n in checks else {})}
                    if n != "cyconv":
                        peers[n]["speedup_of_cyconv"] = t.median / t_cy
                cases.append({"layout": layout, "kernel": name, "input": kind,
                              "size": [size, size], "peers": peers})
                log(f"image {kind:5s} {layout:3s} {name:15s}: "
                    + ", ".join(f"{n} {C.fmt_ms(t.median)} ms" for n, t in timings.items()))
    return cases


CV2_SCRIPT = """
import sys, cv2, numpy as np
from pathlib import Path
cv2.setNumThreads(1)
k = np.load(sys.argv[1]).astype(np.float32)[::-1, ::-1].copy()
M, N = k.shape
out = Path(sys.argv[2])
for p in sys.argv[3:]:
    a = cv2.imread(p, cv2.IMREAD_UNCHANGED)
    r = cv2.filter2D(a, -1, k, anchor=(N // 2, M // 2), borderType=cv2.BORDER_REFLECT)
    cv2.imwrite(str(out / Path(p).name), r, [cv2.IMWRITE_JPEG_QUALITY, 75])
"""


def run_cli(libs, quick: bool, log=C.progress) -> list:
    if libs["cv2"] is None or libs["PIL"] is None:
        return []
    from PIL import Image
    from cyconv import kernels as K
    size, n_files = (128, 3) if quick else (SIZE, N_FILES)
    tmp = Path(tempfile.mkdtemp(prefix="cyconv-bench-image-"))
    env = dict(os.environ, PYTHONPATH=str(C.SRC) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cases = []
    try:
        src = tmp / "in"
        src.mkdir()
        files = []
        for i in range(n_files):
            p = src / f"photo{i:02d}.jpg"
            Image.fromarray(_photo(size, shift=37 * i)).save(p, quality=90)
            files.append(str(p))
        for name in ("box:5", "gaussian:7,1.5"):
            kfile = tmp / "kernel.npy"
            np.save(kfile, K.get(name))
            cmds = {
                "cyconv filter": [sys.executable, "-m", "cyconv", "filter", *files, "-k", name,
                                  "--workers", "1", "--out-dir", str(tmp / "out_cy")],
                "OpenCV script": [sys.executable, "-c", CV2_SCRIPT, str(kfile),
                                  str(tmp / "out_cv"), *files],
            }
            (tmp / "out_cv").mkdir(exist_ok=True)
            times = {n: [] for n in cmds}
            for _ in range(1 if quick else 3):
                for n, cmd in cmds.items():
                    t0 = time.perf_counter()
                    subprocess.run(cmd, env=env, check=True, capture_output=True)
                    times[n].append(time.perf_counter() - t0)
            med = {n: sorted(v)[len(v) // 2] for n, v in times.items()}
            a = np.asarray(Image.open(tmp / "out_cy" / "photo00.jpg"))
            b = np.asarray(Image.open(tmp / "out_cv" / "photo00.jpg"))
            cases.append({"kernel": name, "files": n_files, "size": [size, size],
                          "wall_median_s": med, "runs": {n: v for n, v in times.items()},
                          "ratio_cyconv_over_opencv": med["cyconv filter"] / med["OpenCV script"],
                          "jpeg_mean_abs_diff": float(np.abs(a.astype(int) - b).mean())})
            log(f"cli {name}: " + ", ".join(f"{n} {v:.2f} s" for n, v in med.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return cases


def run(quick: bool = False) -> dict:
    libs = _load()
    load_before = C.loadavg()
    cases = run_filters(libs, quick)
    cli = run_cli(libs, quick)
    return {"suite": "image", "quick": quick, "machine": C.machine_info(), "clock": C.CLOCK,
            "loadavg": [load_before, C.loadavg()], "wall_over_cpu": C.wall_over_cpu(cases),
            "cases": cases, "cli": cli}


def _geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(map(math.log, xs)) / len(xs)) if xs else None


def markdown(result: dict) -> str:
    cases = result["cases"]
    H, W = cases[0]["size"]
    out = [f"### cyconv.image on {H}×{W} uint8 images, single thread", "",
           C.noise_note(result), "",
           "Median time per call (ms); ratio = t_peer / t_cyconv (> 1: cyconv is faster); "
           "'diff' = pixels differing from cyconv's result / largest difference.", ""]
    for kind, title in (("array", "uint8 array → uint8 array"),
                        ("PIL", "Pillow image → Pillow image (conversions included)")):
        sel = [c for c in cases if c["input"] == kind]
        peers = [p for p in dict.fromkeys(n for c in sel for n in c["peers"]) if p != "cyconv"]
        rows = []
        for c in sel:
            p = c["peers"]
            row = [c["layout"], c["kernel"], C.fmt_ms(p["cyconv"]["median_s"])]
            for n in peers:
                if n in p:
                    chk = p[n]["check"]
                    row += [C.fmt_ms(p[n]["median_s"]), C.fmt_ratio(p[n]["speedup_of_cyconv"]),
                            f"{chk['differing']}/{chk['max_abs_diff']}"]
                else:
                    row += ["-", "-", "-"]
            rows.append(row)
        heads = ["image", "kernel", "cyconv ms"]
        for n in peers:
            heads += [f"{n} ms", "ratio", "diff"]
        out += [f"**{title}**", "", C.markdown_table(heads, rows, align="ll" + "r" * (len(heads) - 2)), ""]
        for n in peers:
            g = _geomean([c["peers"][n].get("speedup_of_cyconv") for c in sel if n in c["peers"]])
            out.append(f"- geometric mean ratio vs {n}: {C.fmt_ratio(g)}")
        out.append("")
    if result.get("cli"):
        c0 = result["cli"][0]
        out += [f"**`cyconv filter` on {c0['files']} JPEG files of {c0['size'][0]}×{c0['size'][1]}"
                "** (wall time of the whole command, median of 3; decode + filter + encode)", ""]
        rows = [[c["kernel"], f"{c['wall_median_s']['cyconv filter']:.2f}",
                 f"{c['wall_median_s']['OpenCV script']:.2f}",
                 f"{c['ratio_cyconv_over_opencv']:.2f}", f"{c['jpeg_mean_abs_diff']:.2f}"]
                for c in result["cli"]]
        out.append(C.markdown_table(["kernel", "cyconv filter s", "OpenCV script s",
                                     "cyconv / OpenCV", "mean |Δ| of decoded JPEGs"], rows,
                                    align="lrrrr"))
    return "\n".join(out)


def main(argv=None) -> int:
    args = C.parse_arguments(C.argument_parser(__doc__), argv)
    result = run(quick=args.quick)
    C.report(args, result, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())

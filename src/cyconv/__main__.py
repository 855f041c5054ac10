"""The `cyconv` command line: `cyconv demo`, `cyconv info`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).with_name("data") / "sample.png"


def _kernels() -> dict[str, np.ndarray]:
    box = np.ones((5, 5)) / 25  # dividing by the size m keeps the brightness
    sobel_x = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
    sharpen = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], float)
    return {"blur (box 5x5 / 25)": box, "sobel x": sobel_x, "sobel y": sobel_x.T.copy(),
            "sharpen": sharpen}


def _filter_rgb(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from . import convolve2d

    return np.stack([convolve2d(img[..., c], kernel, mode="same", boundary="symm")
                     for c in range(img.shape[-1])], axis=-1)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _stretch(a: np.ndarray) -> np.ndarray:
    """Map a feature map's range onto 0..255 for display."""
    lo, hi = float(a.min()), float(a.max())
    return _to_uint8((a - lo) * (255.0 / (hi - lo if hi > lo else 1.0)))


def _fft_convolve_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """'same' convolution with zero fill through the convolution theorem."""
    (H, W), (M, N) = image.shape, kernel.shape
    shape = (H + M - 1, W + N - 1)
    full = np.fft.irfft2(np.fft.rfft2(image, shape) * np.fft.rfft2(kernel, shape), shape)
    return full[M // 2:M // 2 + H, N // 2:N // 2 + W]


def demo(out_dir: Path) -> int:
    try:
        from PIL import Image
    except ImportError:
        print("cyconv demo needs Pillow: pip install 'cyconv[image]'", file=sys.stderr)
        return 1
    from . import conv2d, convolve2d, kernel_level

    out_dir.mkdir(parents=True, exist_ok=True)
    img = np.asarray(Image.open(SAMPLE).convert("RGB"), dtype=np.float64)
    print(f"sample image {SAMPLE.name}: {img.shape[1]}x{img.shape[0]} RGB, "
          f"kernels at level {kernel_level()}")
    written = []
    kernels = _kernels()

    blur = _filter_rgb(img, kernels["blur (box 5x5 / 25)"])
    print(f"  blur keeps brightness: mean {img.mean():.2f} -> {blur.mean():.2f}")
    gx = _filter_rgb(img, kernels["sobel x"])
    gy = _filter_rgb(img, kernels["sobel y"])
    edges = np.hypot(gx, gy).max(axis=-1)
    sharp = _filter_rgb(img, kernels["sharpen"])
    for name, arr in (("blur.png", _to_uint8(blur)), ("sobel_edges.png", _stretch(edges)),
                      ("sharpen.png", _to_uint8(sharp))):
        Image.fromarray(arr).save(out_dir / name)
        written.append(out_dir / name)

    # Feature maps: one conv2d layer, every kernel on every channel (groups=3).
    # Centre every kernel in 5x5 so they stack into one weight tensor.
    bank = np.stack([np.pad(k, (5 - k.shape[0]) // 2) for k in kernels.values()])
    weight = np.repeat(bank[None], 3, axis=0).reshape(-1, 1, 5, 5)  # (3*4, 1, 5, 5)
    chw = np.ascontiguousarray(img.transpose(2, 0, 1))
    maps = conv2d(chw, weight, padding="same", groups=3, padding_mode="symmetric")
    rows = [np.hstack([_stretch(maps[c * len(kernels) + k]) for c in range(3)])
            for k in range(len(kernels))]
    Image.fromarray(np.vstack(rows)).save(out_dir / "feature_maps.png")
    written.append(out_dir / "feature_maps.png")
    print(f"  feature maps: rows {', '.join(kernels)}; columns R, G, B")

    # A large kernel: direct summation vs the convolution theorem.
    yy, xx = np.mgrid[-15:16, -15:16]
    gauss = np.exp(-(xx ** 2 + yy ** 2) / (2 * 6.0 ** 2))
    gauss /= gauss.sum()
    gray = img.mean(axis=-1)
    t0 = time.perf_counter()
    direct = convolve2d(gray, gauss, mode="same")
    t1 = time.perf_counter()
    via_fft = _fft_convolve_same(gray, gauss)
    t2 = time.perf_counter()
    print(f"  31x31 Gaussian: direct {1e3 * (t1 - t0):.2f} ms, FFT {1e3 * (t2 - t1):.2f} ms, "
          f"max difference {np.abs(direct - via_fft).max():.2e}")
    Image.fromarray(_to_uint8(direct)).save(out_dir / "gaussian31.png")
    written.append(out_dir / "gaussian31.png")

    print("wrote:")
    for path in written:
        print(f"  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cyconv", description="Fast 2-D convolution.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="filter the bundled sample image and save the results")
    p_demo.add_argument("--out", type=Path, default=Path("cyconv-demo"),
                        help="output folder (default: ./cyconv-demo)")
    sub.add_parser("info", help="print the CPU features, kernel level and threads")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.out)
    from . import show_config

    show_config()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The `cyconv` command line: `cyconv demo`, `cyconv filter`, `cyconv kernels`, `cyconv info`.

Errors are one line on stderr (``cyconv: error: ...``) and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

SAMPLE = Path(__file__).with_name("data") / "sample.png"
KERNEL_FILE_SUFFIXES = (".npy", ".txt", ".csv", ".tsv", ".dat")


class CLIError(Exception):
    """A user error: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, like every other cyconv error
        sys.stderr.write(f"cyconv: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def _need_pil(command: str):
    from .image import PIL_HINT

    try:
        from PIL import Image
    except ImportError:
        raise CLIError(f"'cyconv {command}' needs Pillow: {PIL_HINT}") from None
    return Image


# ---------------------------------------------------------------------------
# cyconv demo

def demo(out_dir: Path) -> int:
    Image = _need_pil("demo")
    from . import convolve2d, kernel_level
    from . import kernels as K
    from .image import _stretch, feature_maps, filter_image, save_feature_grid, sobel_edges

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CLIError(f"cannot create output directory {out_dir}: "
                       f"{exc.strerror or exc}") from None
    with Image.open(SAMPLE) as im:
        rgb = im.convert("RGB")
    img = np.asarray(rgb, dtype=np.float64)
    print(f"sample image {SAMPLE.name}: {img.shape[1]}x{img.shape[0]} RGB, "
          f"kernels at level {kernel_level()}")
    written = []

    def save(image, name):
        try:
            image.save(out_dir / name)
        except OSError as exc:
            raise CLIError(f"cannot write {out_dir / name}: {exc.strerror or exc}") from None
        written.append(out_dir / name)

    blur = filter_image(rgb, "box:5")  # dividing by the size keeps the brightness
    print(f"  blur (box:5) keeps brightness: mean {img.mean():.2f} -> "
          f"{np.asarray(blur, dtype=float).mean():.2f}")
    save(blur, "blur.png")
    save(Image.fromarray(_stretch(sobel_edges(img))), "sobel_edges.png")
    save(filter_image(rgb, "sharpen"), "sharpen.png")

    # Feature maps: every kernel on every channel, one depthwise conv2d layer per kernel size.
    bank = ["box:5", "sobel_x", "sobel_y", "sharpen"]
    maps = feature_maps(rgb, bank)
    path = out_dir / "feature_maps.png"
    try:
        save_feature_grid(maps, path, labels=bank, channel_labels=["R", "G", "B"])
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    written.append(path)
    print(f"  feature maps: rows {', '.join(bank)}; columns R, G, B")

    # A large kernel: direct summation costs 31*31 multiply-adds per pixel,
    # the convolution theorem (method="fft") a few per pixel whatever the
    # kernel size; method="auto" (the default) picks by a cost model.
    # Mirrored borders ("symm") keep the brightness up to the edge.
    from . import choose_method

    gauss = K.gaussian(31, 6.0)
    gray = img.mean(axis=-1)
    times = {}
    for method in ("direct", "fft", "auto"):
        times[method] = float("inf")
        for _ in range(3):  # best of 3: the first FFT call also imports and plans
            t0 = time.perf_counter()
            result = convolve2d(gray, gauss, mode="same", boundary="symm", method=method)
            times[method] = min(times[method], 1e3 * (time.perf_counter() - t0))
        if method == "direct":
            direct = result
        elif method == "fft":
            via_fft = result
    picked = choose_method(gray, gauss, "same", "symm")
    print(f"  31x31 Gaussian: direct {times['direct']:.2f} ms, FFT {times['fft']:.2f} ms "
          f"(max difference {np.abs(direct - via_fft).max():.1e}); "
          f"auto picks {picked}: {times['auto']:.2f} ms")
    save(Image.fromarray(np.clip(np.rint(direct), 0, 255).astype(np.uint8)), "gaussian31.png")

    print("wrote:")
    for p in written:
        print(f"  {p}")
    return 0


# ---------------------------------------------------------------------------
# cyconv kernels

def list_kernels() -> int:
    from . import kernels as K

    # A family whose size must be given (box:SIZE) has no shape of its own.
    rows = [(syntax, "any" if K._REGISTRY[name].required else f"{shape[0]}x{shape[1]}", text)
            for name, (syntax, shape, text) in zip(K.names(), K.describe())]
    w0 = max(len(r[0]) for r in rows + [("NAME", "", "")])
    w1 = max(len(r[1]) for r in rows + [("", "SHAPE", "")])
    print(f"{'NAME':<{w0}}  {'SHAPE':<{w1}}  DESCRIPTION")
    for syntax, shape, text in rows:
        print(f"{syntax:<{w0}}  {shape:<{w1}}  {text}")
    print("\nParameters follow a colon, comma-separated (gaussian:7,1.5; box:3x5); "
          "-k also takes a .npy file or a text file of numbers.")
    return 0


# ---------------------------------------------------------------------------
# cyconv filter

def _parse_text_kernel(path: Path) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CLIError(f"malformed kernel file {path}: not a text file of numbers") from None
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f for f in re.split(r"[,;\s]+", line) if f]
        try:
            rows.append([float(f) for f in fields])
        except ValueError:
            raise CLIError(f"malformed kernel file {path}: line {lineno} is not a row of "
                           f"numbers: {line[:40]!r}") from None
    if not rows:
        raise CLIError(f"malformed kernel file {path}: no numbers in it")
    if len({len(r) for r in rows}) != 1:
        raise CLIError(f"malformed kernel file {path}: rows have different lengths "
                       f"{sorted({len(r) for r in rows})}")
    return np.array(rows, dtype=np.float64)


def _load_kernel(spec: str) -> tuple[np.ndarray, str]:
    """(kernel, display name) from a -k argument: a kernel name or a file."""
    from . import kernels as K

    name = spec.partition(":")[0].strip().lower()
    path = Path(spec)
    looks_like_file = (path.suffix.lower() in KERNEL_FILE_SUFFIXES or os.sep in spec
                       or (os.altsep is not None and os.altsep in spec))
    if name in K.names() or not (looks_like_file or path.is_file()):
        try:
            return K.get(spec), spec
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    if not path.exists():
        raise CLIError(f"kernel file {spec} not found")
    if not path.is_file():
        raise CLIError(f"kernel file {spec} is not a file")
    try:
        if path.suffix.lower() == ".npy":
            try:
                k = np.load(path, allow_pickle=False)
            except (ValueError, EOFError) as exc:
                raise CLIError(f"malformed kernel file {spec}: not a NumPy .npy array "
                               f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                               ) from None
        else:
            k = _parse_text_kernel(path)
    except OSError as exc:
        raise CLIError(f"cannot read kernel file {spec}: {exc.strerror or exc}") from None
    if not isinstance(k, np.ndarray) or k.dtype.kind not in "biuf":
        raise CLIError(f"malformed kernel file {spec}: needs real numbers, "
                       f"got {getattr(k, 'dtype', type(k).__name__)}")
    if k.ndim != 2 or k.size == 0:
        raise CLIError(f"malformed kernel file {spec}: needs a non-empty 2-D array, "
                       f"got shape {k.shape}")
    k = k.astype(np.float64)
    if not np.isfinite(k).all():
        raise CLIError(f"malformed kernel file {spec}: contains NaN or infinity")
    return k, path.name


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:
        return False


def _check_input(path: Path, Image) -> None:
    if not path.exists():
        raise CLIError(f"cannot read image {path}: no such file")
    if path.is_dir():
        raise CLIError(f"cannot read image {path}: it is a directory")
    try:
        with Image.open(path) as im:
            im.size  # the header parsed
    except OSError as exc:  # includes PIL.UnidentifiedImageError
        reason = exc.strerror or ("not an image Pillow can read"
                                  if type(exc).__name__ == "UnidentifiedImageError" else exc)
        raise CLIError(f"cannot read image {path}: {reason}") from None


def _check_out_dir(directory: Path, create: bool) -> None:
    if create and not directory.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError(f"cannot create output directory {directory}: "
                           f"{exc.strerror or exc}") from None
    if not directory.exists():
        raise CLIError(f"output directory {directory} does not exist")
    if not directory.is_dir():
        raise CLIError(f"output directory {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CLIError(f"output directory {directory} is not writable")


def _missing_dirs(directory: Path) -> list[Path]:
    """`directory` and its missing ancestors that would have to be created,
    outermost first; a CLIError if one of them exists but is not a folder."""
    missing = []
    for d in [directory, *directory.parents]:
        if d.exists():
            if not d.is_dir():
                raise CLIError(f"output directory {directory} cannot be created: "
                               f"{d} is not a directory")
            break
        missing.append(d)
    return missing[::-1]


def _outputs(inputs: list[Path], args) -> list[Path]:
    """Output paths, checked. Missing output folders (of -o or --out-dir
    alike) are created later by filter_files, once every check has passed."""
    if args.output is not None:
        if len(inputs) > 1:
            raise CLIError(f"-o/--output names one file but {len(inputs)} inputs were given; "
                           "use --out-dir DIR")
        outs = [args.output]
    elif args.out_dir is not None:
        outs = [args.out_dir / p.name for p in inputs]
    else:
        outs = [p.with_name(f"{p.stem}-filtered{p.suffix}") for p in inputs]
        for d in {o.parent for o in outs}:
            _check_out_dir(d, False)
    seen: dict[Path, Path] = {}
    for out, inp in zip(outs, inputs):
        if out.is_dir():
            raise CLIError(f"output {out} is a directory")
        for other in inputs:
            if _same_file(out, other):
                raise CLIError(f"output {out} is the input {other}; refusing to overwrite "
                               "an input (choose -o or --out-dir)")
        key = out.resolve()
        if key in seen:
            raise CLIError(f"inputs {seen[key]} and {inp} would both be written to {out}")
        seen[key] = inp
    return outs


def _format_for(path: Path, Image) -> str:
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise CLIError(f"cannot tell the image format of {path} from its extension "
                       "(use e.g. .png or .tif)")
    return fmt


class _Progress:
    """A one-line progress bar on a stream: [#####-----] 3/10 name."""

    def __init__(self, total: int, stream, width: int = 24):
        self.total, self.stream, self.width, self.last = total, stream, width, 0

    def show(self, done: int, label: str = "") -> None:
        filled = self.width * done // max(self.total, 1)
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {done}/{self.total} {label}"
        line = line[:79]
        pad = " " * max(self.last - len(line), 0)
        self.stream.write(f"\r{line}{pad}")
        self.stream.flush()
        self.last = len(line)

    def end(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _normalized(kernel: np.ndarray, spec: str) -> np.ndarray:
    total = float(kernel.sum())
    if total == 0:
        raise CLIError(f"--normalize: kernel {spec} sums to 0 (an edge or Laplacian kernel "
                       "keeps no brightness to preserve); drop --normalize")
    return kernel / total


def _clipped_share(result, mode: str) -> float:
    """Fraction of channel values at the ends of an integer image's range."""
    if mode not in ("L", "RGB", "RGBA", "I;16"):
        return 0.0
    a = np.asarray(result)
    if mode == "RGBA":
        a = a[..., :3]
    top = np.iinfo(a.dtype).max
    return float(np.count_nonzero((a == 0) | (a == top))) / max(a.size, 1)


def filter_files(args) -> int:
    Image = _need_pil("filter")
    from .image import filter_image

    kernel, name = _load_kernel(args.kernel)
    if args.normalize:
        kernel = _normalized(kernel, name)
    inputs = list(args.inputs)
    for p in inputs:
        _check_input(p, Image)
    outputs = _outputs(inputs, args)
    formats = [_format_for(o, Image) for o in outputs]
    # Missing output folders are created only once everything else checked out.
    for d in sorted({d for o in outputs for d in _missing_dirs(o.parent)}):
        _check_out_dir(d, True)
        print(f"created folder {d}")
    for d in {o.parent for o in outputs}:
        _check_out_dir(d, False)

    # A blur given as integer weights (sum 9, 16) saturates most pixels; an
    # edge kernel (sum 0) clips its negative half by design and gets no hint.
    total = float(kernel.sum())
    hint_on_clipping = abs(total) > 1e-9 and not 0.5 <= total <= 2.0
    progress = None
    if args.progress or (len(inputs) > 1 and sys.stderr.isatty()):
        progress = _Progress(len(inputs), sys.stderr)
    clipped = []
    try:
        for i, (inp, out, fmt) in enumerate(zip(inputs, outputs, formats)):
            if progress:
                progress.show(i, inp.name)
            try:
                with Image.open(inp) as im:
                    im.load()
                    before = _clipped_share(im, im.mode) if hint_on_clipping else 0.0
                    result = filter_image(im, kernel, boundary=args.boundary, mode=args.mode,
                                          correlate=args.correlate, workers=args.workers)
            except OSError as exc:
                raise CLIError(f"cannot read image {inp}: {exc.strerror or exc}") from None
            except MemoryError as exc:
                raise CLIError(f"cannot filter {inp}: out of memory ({exc})") from None
            except ValueError as exc:
                raise CLIError(f"cannot filter {inp}: {exc}") from None
            if hint_on_clipping:
                after = _clipped_share(result, result.mode)
                if after > 0.5 and after > 2 * before:
                    clipped.append((out, after))
            tmp = out.with_name(f".{out.name}.cyconv-{os.getpid()}.tmp")
            try:
                result.save(tmp, format=fmt)
                os.replace(tmp, out)
            except (OSError, ValueError, KeyError) as exc:
                tmp.unlink(missing_ok=True)
                reason = getattr(exc, "strerror", None) or exc
                raise CLIError(f"cannot write {out}: {reason}") from None
            if not progress:
                print(f"wrote {out}")
        if progress:
            progress.show(len(inputs), "done")
    finally:
        if progress:
            progress.end()
    if progress:
        print(f"wrote {len(outputs)} images: {', '.join(map(str, outputs))}")
    for out, share in clipped:
        # The usual cause: integer weights (a sum of 9 or 16) where a blur wants sum 1.
        print(f"cyconv: note: {share:.0%} of the values in {out} hit the ends of the range; "
              f"the kernel sums to {total:g}: --normalize divides it by its sum",
              file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------

def _workers(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid thread count {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(prog="cyconv", description="Fast 2-D convolution.")
    parser.add_argument("--version", action="version", version=f"cyconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_demo = sub.add_parser("demo", help="filter the bundled sample image and save the results")
    p_demo.add_argument("--out", type=Path, default=Path("cyconv-demo"),
                        help="output folder (default: ./cyconv-demo)")
    sub.add_parser("info", help="print the CPU features, kernel level and threads")
    sub.add_parser("kernels", help="list the named kernels")
    p_filter = sub.add_parser(
        "filter", help="filter image files with a kernel",
        description="Filter every channel of each INPUT image (alpha left as is) and save the "
                    "result in the same mode. Default output: INPUT-filtered.EXT next to it.")
    p_filter.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    p_filter.add_argument("-k", "--kernel", required=True,
                          help="kernel name (see 'cyconv kernels', e.g. gaussian:7,1.5) or a "
                               ".npy / whitespace- or comma-separated text file")
    where = p_filter.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT",
                       help="output file (one input only); format from the extension")
    where.add_argument("--out-dir", type=Path, metavar="DIR",
                       help="write each result under its input's file name into DIR")
    p_filter.add_argument("--boundary", choices=("fill", "wrap", "symm"), default="symm",
                          help="edge handling (default: symm)")
    p_filter.add_argument("--mode", choices=("same", "full", "valid"), default="same",
                          help="output size (default: same)")
    p_filter.add_argument("--normalize", action="store_true",
                          help="divide the kernel by its sum (keeps the brightness of blurs "
                               "given as integer weights, e.g. a .txt of ones)")
    p_filter.add_argument("--correlate", action="store_true",
                          help="correlate instead of convolve (kernel not flipped)")
    p_filter.add_argument("--workers", type=_workers, default=None, metavar="N",
                          help="threads (default: all CPUs)")
    p_filter.add_argument("--progress", action="store_true",
                          help="show a progress bar on stderr even when it is not a terminal")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            return demo(args.out)
        if args.command == "filter":
            return filter_files(args)
        if args.command == "kernels":
            return list_kernels()
        from . import show_config

        show_config()
        return 0
    except CLIError as exc:
        print(f"cyconv: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""Ready-made 2-D filter kernels for :func:`cyconv.convolve2d` and friends.

Every function returns a fresh float64 array (changing it never affects a
later call).

Orientation convention
----------------------
Kernels are written as *correlation masks*: the array is laid over the image
as printed, ``kernel[0, 0]`` on the top-left neighbour. Rows grow downward
(image convention), columns to the right. So under
:func:`cyconv.correlate2d`:

- ``sobel_x``, ``scharr_x``, ``prewitt_x`` (right column positive) respond
  **positively** where intensity increases to the **right**;
- ``sobel_y``, ``scharr_y``, ``prewitt_y`` (bottom row positive) respond
  **positively** where intensity increases **downward**;
- ``emboss`` lights up edges where intensity increases towards the
  bottom-right.

:func:`cyconv.convolve2d` flips the kernel in both axes, which negates every
antisymmetric kernel (the ``_x``/``_y`` derivatives): under convolution
``sobel_x`` responds positively where intensity increases to the *left*.
Symmetric kernels (``box``, ``gaussian``, ``laplacian``, ``sharpen``,
``outline``, ``identity``) give the same result either way. Gradient
magnitudes (:func:`cyconv.image.sobel_edges`) do not depend on the sign.

Sizes
-----
``box`` and ``gaussian`` accept any positive size, odd or even, as an int or
an ``(h, w)`` pair. An even-sized kernel has no centre sample; in
``mode="same"`` it is placed as :func:`cyconv.convolve2d` places it (the
output is shifted by half a pixel towards the bottom-right under convolution).
``identity`` needs an odd size (a delta must sit on a centre sample).

Lookup by name
--------------
:func:`get` parses the ``NAME[:PARAMS]`` strings used by the ``cyconv``
command line: ``get("box:5")``, ``get("box:5x7")``, ``get("gaussian:7,1.5")``,
``get("gaussian:9")`` (default sigma), ``get("sobel_x")``,
``get("laplacian:8")``, ``get("identity:5")``; parameters may also be given
as keywords (``get("gaussian:size=7,sigma=1.5")``). :func:`names` lists the
names.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple, Sequence, Union

import numpy as np
from numpy.typing import NDArray

from ._geometry import as_int, int_at_least

Size = Union[int, Sequence[int]]

__all__ = [
    "box", "gaussian", "sobel_x", "sobel_y", "scharr_x", "scharr_y", "prewitt_x",
    "prewitt_y", "laplacian", "sharpen", "emboss", "outline", "identity", "get", "names",
    "describe",
]


# ---------------------------------------------------------------------------
# argument checking

def _size(size, name: str = "size", *, odd: bool = False) -> tuple[int, int]:
    if isinstance(size, (tuple, list, np.ndarray)):
        if len(size) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {size!r}")
        h, w = int_at_least(size[0], name, 1), int_at_least(size[1], name, 1)
    else:
        h = w = int_at_least(size, name, 1)
    if odd and (h % 2 == 0 or w % 2 == 0):
        raise ValueError(f"{name} must be odd (the kernel needs a centre sample), "
                         f"got {size!r}")
    return h, w


def _positive_real(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive real number, got {value!r}")
    v = float(value)
    if not (v > 0 and math.isfinite(v)):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


# ---------------------------------------------------------------------------
# smoothing

def box(size: Size) -> NDArray[np.float64]:
    """Normalized box (mean) filter: ``size`` ones divided by their count, sum 1.

    ``size``: a positive int (square) or ``(h, w)``; even sizes are allowed.
    Symmetric, so convolution and correlation agree.
    """
    h, w = _size(size)
    return np.full((h, w), 1.0 / (h * w))


def _gauss1d(n: int, sigma: float) -> np.ndarray:
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def gaussian(size: Size, sigma: float | Sequence[float] | None = None) -> NDArray[np.float64]:
    """Normalized Gaussian blur, sum 1.

    Samples ``exp(-x**2 / (2 sigma**2))`` at offsets ``i - (n - 1) / 2`` from
    the kernel's centre (so even sizes are symmetric about a half-pixel
    centre), separable, divided by the sum.

    ``size``: positive int or ``(h, w)``. ``sigma``: positive number or
    ``(sigma_y, sigma_x)``, in pixels; None picks OpenCV's default for the
    size, ``0.3 * ((n - 1) / 2 - 1) + 0.8``. Symmetric, so convolution and
    correlation agree.
    """
    h, w = _size(size)
    if sigma is None:
        sy, sx = (0.3 * ((n - 1) * 0.5 - 1) + 0.8 for n in (h, w))
    elif isinstance(sigma, (tuple, list, np.ndarray)):
        if len(sigma) != 2:
            raise ValueError(f"sigma must be a number or a pair (sigma_y, sigma_x), "
                             f"got {sigma!r}")
        sy, sx = _positive_real(sigma[0], "sigma"), _positive_real(sigma[1], "sigma")
    else:
        sy = sx = _positive_real(sigma, "sigma")
    k = np.outer(_gauss1d(h, sy), _gauss1d(w, sx))
    return k / k.sum()


def identity(size: Size = 3) -> NDArray[np.float64]:
    """A delta: zeros with a 1 in the centre; ``size`` odd (int or ``(h, w)``).

    Filtering with it (``mode="same"``, either function) returns the image unchanged.
    """
    h, w = _size(size, odd=True)
    k = np.zeros((h, w))
    k[h // 2, w // 2] = 1.0
    return k


# ---------------------------------------------------------------------------
# derivatives (antisymmetric: the sign depends on convolve vs correlate)

def sobel_x() -> NDArray[np.float64]:
    """Sobel horizontal derivative ``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]``, sum 0.

    Under ``correlate2d``: positive where intensity increases to the right
    (responds to vertical edges). Negated under ``convolve2d``.
    """
    return np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def sobel_y() -> NDArray[np.float64]:
    """Sobel vertical derivative (``sobel_x().T``), sum 0.

    Under ``correlate2d``: positive where intensity increases downward
    (responds to horizontal edges). Negated under ``convolve2d``.
    """
    return sobel_x().T.copy()


def scharr_x() -> NDArray[np.float64]:
    """Scharr horizontal derivative ``[[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]``, sum 0.

    Better rotational symmetry than Sobel. Orientation as :func:`sobel_x`.
    """
    return np.array([[-3.0, 0.0, 3.0], [-10.0, 0.0, 10.0], [-3.0, 0.0, 3.0]])


def scharr_y() -> NDArray[np.float64]:
    """Scharr vertical derivative (``scharr_x().T``), sum 0. Orientation as :func:`sobel_y`."""
    return scharr_x().T.copy()


def prewitt_x() -> NDArray[np.float64]:
    """Prewitt horizontal derivative ``[[-1, 0, 1]] * 3 rows``, sum 0.

    Orientation as :func:`sobel_x`.
    """
    return np.array([[-1.0, 0.0, 1.0]] * 3)


def prewitt_y() -> NDArray[np.float64]:
    """Prewitt vertical derivative (``prewitt_x().T``), sum 0. Orientation as :func:`sobel_y`."""
    return prewitt_x().T.copy()


def laplacian(neighbours: int = 4) -> NDArray[np.float64]:
    """Discrete Laplacian, sum 0, centre negative.

    ``neighbours=4``: ``[[0, 1, 0], [1, -4, 1], [0, 1, 0]]``;
    ``neighbours=8``: ones with ``-8`` in the centre. Symmetric.
    """
    n = as_int(neighbours, "neighbours", "4 or 8")
    if n == 4:
        return np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    if n == 8:
        k = np.ones((3, 3))
        k[1, 1] = -8.0
        return k
    raise ValueError(f"neighbours must be 4 or 8, got {n}")


# ---------------------------------------------------------------------------
# effects

def sharpen() -> NDArray[np.float64]:
    """Sharpen ``[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]`` (identity minus the
    4-neighbour Laplacian), sum 1: keeps brightness. Symmetric."""
    return np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])


def emboss() -> NDArray[np.float64]:
    """Emboss ``[[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]``, sum 1.

    Under ``correlate2d`` edges where intensity increases towards the
    bottom-right come out bright (lit from the bottom-right); under
    ``convolve2d`` the light comes from the top-left.
    """
    return np.array([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])


def outline() -> NDArray[np.float64]:
    """Outline ``[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]`` (minus the
    8-neighbour Laplacian), sum 0: flat areas go to 0, edges stand out. Symmetric."""
    return np.array([[-1.0, -1.0, -1.0], [-1.0, 8.0, -1.0], [-1.0, -1.0, -1.0]])


# ---------------------------------------------------------------------------
# lookup by name

class _Entry(NamedTuple):
    func: Callable[..., np.ndarray]
    params: tuple[str, ...]      # parameter names, in positional order
    required: int                # how many of them must be given
    syntax: str                  # e.g. "gaussian:SIZE[,SIGMA]"
    example: str                 # a spec whose shape `cyconv kernels` shows
    summary: str


_REGISTRY: dict[str, _Entry] = {
    "box": _Entry(box, ("size",), 1, "box:SIZE", "box:5",
                  "normalized mean blur, sum 1; SIZE is N or HxW (box:5, box:3x7)"),
    "gaussian": _Entry(gaussian, ("size", "sigma"), 1, "gaussian:SIZE[,SIGMA]", "gaussian:7,1.5",
                       "normalized Gaussian blur, sum 1 (gaussian:7,1.5; default sigma "
                       "from the size)"),
    "sobel_x": _Entry(sobel_x, (), 0, "sobel_x", "sobel_x",
                      "Sobel d/dx; correlate: + where brighter to the right"),
    "sobel_y": _Entry(sobel_y, (), 0, "sobel_y", "sobel_y",
                      "Sobel d/dy; correlate: + where brighter downward"),
    "scharr_x": _Entry(scharr_x, (), 0, "scharr_x", "scharr_x",
                       "Scharr d/dx (more isotropic than Sobel); orientation as sobel_x"),
    "scharr_y": _Entry(scharr_y, (), 0, "scharr_y", "scharr_y",
                       "Scharr d/dy; orientation as sobel_y"),
    "prewitt_x": _Entry(prewitt_x, (), 0, "prewitt_x", "prewitt_x",
                        "Prewitt d/dx; orientation as sobel_x"),
    "prewitt_y": _Entry(prewitt_y, (), 0, "prewitt_y", "prewitt_y",
                        "Prewitt d/dy; orientation as sobel_y"),
    "laplacian": _Entry(laplacian, ("neighbours",), 0, "laplacian[:4|8]", "laplacian",
                        "discrete Laplacian with 4 or 8 neighbours, sum 0"),
    "sharpen": _Entry(sharpen, (), 0, "sharpen", "sharpen",
                      "identity minus the 4-neighbour Laplacian, sum 1"),
    "emboss": _Entry(emboss, (), 0, "emboss", "emboss",
                     "relief effect along the diagonal, sum 1"),
    "outline": _Entry(outline, (), 0, "outline", "outline",
                      "edges on black: minus the 8-neighbour Laplacian, sum 0"),
    "identity": _Entry(identity, ("size",), 0, "identity[:SIZE]", "identity",
                       "delta in the centre of an odd-sized kernel (leaves the image as is)"),
}


def names() -> list[str]:
    """Names of the kernels :func:`get` knows, in a stable order."""
    return list(_REGISTRY)


def describe() -> list[tuple[str, tuple[int, int], str]]:
    """``(syntax, example shape, one-line description)`` for every kernel.

    Used by ``cyconv kernels``.
    """
    return [(e.syntax, get(e.example).shape, e.summary) for e in _REGISTRY.values()]


def _parse_value(text: str, param: str, spec: str):
    """A parameter value from a spec: int, float, or an HxW size."""
    t = text.strip().lower()
    if param == "size" and "x" in t:
        parts = t.split("x")
        if len(parts) == 2:
            return (_parse_value(parts[0], param, spec), _parse_value(parts[1], param, spec))
    try:
        return int(t)
    except ValueError:
        pass
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"kernel {spec!r}: {param} must be a number, got {text.strip()!r}") \
            from None


def get(spec: str) -> NDArray[np.float64]:
    """A kernel from a ``NAME[:PARAMS]`` string, e.g. ``"gaussian:7,1.5"``.

    PARAMS are comma-separated, positional in the order of the function's
    arguments or ``key=value``; a size may be ``N`` or ``HxW``. Raises
    ``ValueError`` for an unknown name (listing the known ones) or bad
    parameters (naming the parameter).
    """
    if not isinstance(spec, str):
        raise TypeError(f"kernel spec must be a string like 'gaussian:7,1.5', "
                        f"got {type(spec).__name__}")
    name, sep, rest = spec.strip().partition(":")
    name = name.strip().lower()
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ValueError(f"unknown kernel {spec!r}; available kernels: "
                         f"{', '.join(e.syntax for e in _REGISTRY.values())}")
    args: list = []
    kwargs: dict = {}
    items = [s for s in rest.split(",")] if sep else []
    if sep and not rest.strip():
        raise ValueError(f"kernel {spec!r}: empty parameter list after ':' "
                         f"(syntax: {entry.syntax})")
    for item in items:
        key, eq, value = item.partition("=")
        if eq:
            key = key.strip().lower()
            if key not in entry.params:
                raise ValueError(f"kernel {spec!r}: unknown parameter {key!r} "
                                 f"(syntax: {entry.syntax})")
            if key in kwargs:
                raise ValueError(f"kernel {spec!r}: {key} given twice")
            kwargs[key] = _parse_value(value, key, spec)
        else:
            if kwargs:
                raise ValueError(f"kernel {spec!r}: positional parameter after a keyword")
            if len(args) >= len(entry.params):
                raise ValueError(f"kernel {spec!r}: too many parameters "
                                 f"(syntax: {entry.syntax})")
            args.append(_parse_value(item, entry.params[len(args)], spec))
    given = set(entry.params[:len(args)])
    for key in kwargs:
        if key in given:
            raise ValueError(f"kernel {spec!r}: {key} given twice")
        given.add(key)
    missing = [p for p in entry.params[:entry.required] if p not in given]
    if missing:
        raise ValueError(f"kernel {name!r} needs {', '.join(missing)} "
                         f"(syntax: {entry.syntax}, e.g. {entry.example!r})")
    try:
        return entry.func(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"kernel {spec!r}: {exc}") from None

"""Boundary rules as index maps, shared by every function.

The compiled core pads by gathering: padded position i along an axis reads
source index map[i], or a fill value where map[i] is -1. The maps follow
np.pad's extension rules (and so SciPy's and PyTorch's) at any depth; the
core builds them, so the C-level API shares them.
"""

from __future__ import annotations

import numpy as np

from . import _core, _scratch

# np.pad's names for the ways to extend an axis -> the core's rules (the
# numbers are defined once, by the cpdef enum in _core.pyx).
_Rule = _core.BoundaryRule
RULES = {"constant": _Rule.RULE_CONSTANT, "wrap": _Rule.RULE_WRAP,
         "symmetric": _Rule.RULE_SYMMETRIC, "reflect": _Rule.RULE_REFLECT, "edge": _Rule.RULE_EDGE}


def index_map(n: int, before: int, after: int, np_mode: str) -> np.ndarray:
    """Source index of each of the n + before + after padded positions, -1 for
    the fill; like np.pad(np.arange(n), (before, after), np_mode), at any depth."""
    out = np.empty(n + before + after, np.int64)
    _core.index_map(n, before, RULES[np_mode], out)
    return out


def padded_planes(x: np.ndarray, rows: tuple, cols: tuple, np_mode: str,
                  dtype: np.dtype, purpose: str | None = None) -> np.ndarray:
    """x (..., H, W) as dtype with its planes padded by `rows` and `cols`
    ((before, after) each) under np.pad's rule; x itself without padding.
    Zero padding is a copy into a zeroed frame: np.pad costs tens of
    microseconds more on small layers. With `purpose`, zero padding goes
    into this thread's scratch array for it (_scratch: valid until the
    thread asks for that purpose again), not a new array."""
    (top, bottom), (left, right) = rows, cols
    if not (top or bottom or left or right):
        return np.asarray(x, dtype)
    if np_mode == "constant":
        H, W = x.shape[-2:]
        shape = x.shape[:-2] + (top + H + bottom, left + W + right)
        if purpose is None:
            out = np.zeros(shape, dtype)
        else:
            out = _scratch.empty(purpose, shape, dtype)
            zero_frame(out, rows, cols)
        out[..., top:top + H, left:left + W] = x
        return out
    pad = ((0, 0),) * (x.ndim - 2) + ((top, bottom), (left, right))
    return np.pad(np.asarray(x, dtype), pad, mode=np_mode)


def zero_frame(planes: np.ndarray, rows: tuple, cols: tuple) -> None:
    """Zero the `rows` and `cols` ((before, after) each) around the planes
    (the last two axes) of `planes`, leaving the inside as it is."""
    (top, bottom), (left, right) = rows, cols
    Hp, Wp = planes.shape[-2:]
    planes[..., :top, :] = 0
    planes[..., Hp - bottom:, :] = 0
    planes[..., top:Hp - bottom, :left] = 0
    planes[..., top:Hp - bottom, Wp - right:] = 0


def aligned(a: np.ndarray) -> np.ndarray:
    """`a`, or an aligned copy if its data is not aligned for its dtype (the
    core reads elements through typed pointers)."""
    return a if a.flags.aligned else a.copy()

"""Boundary rules as index maps, shared by every function.

The compiled core pads by gathering: padded position i along an axis reads
source index map[i], or a fill value where map[i] is -1. Building the map
with np.pad on an index range gives exactly NumPy's (and so SciPy's and
PyTorch's) extension rules at any depth.
"""

from __future__ import annotations

import numpy as np

# np.pad modes that extend an axis; "constant" means the fill value.
NP_MODES = ("constant", "wrap", "symmetric", "reflect", "edge")


def index_map(n: int, before: int, after: int, np_mode: str) -> np.ndarray:
    """Source index of each of the n + before + after padded positions, -1 for the fill."""
    idx = np.arange(n, dtype=np.int64)
    if np_mode == "constant":
        return np.pad(idx, (before, after), mode="constant", constant_values=-1)
    return np.pad(idx, (before, after), mode=np_mode)

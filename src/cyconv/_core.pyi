# Type stubs for the compiled core (internal: called only by cyconv's Python layer,
# which validates every argument and allocates every buffer first).
import numpy as np
from numpy.typing import NDArray

def detect_level() -> int: ...
def detect_features() -> int: ...
def set_level(level: int) -> None: ...
def level_name() -> str: ...
def blocked_geometry(double_precision: bool) -> tuple[int, int]: ...
def conv2d(
    image: NDArray,
    row_map: NDArray[np.int64],
    col_map: NDArray[np.int64],
    weights: NDArray,
    bias: NDArray,
    out: NDArray,
    padded: NDArray,
    scratch: NDArray,
    edge: NDArray,
    blocked: bool,
    flat: bool,
    groups: int,
    R: int,
    S: int,
    sh: int,
    sw: int,
    dh: int,
    dw: int,
    left: int,
    n0: int,
    n1: int,
    y0: int,
    y1: int,
) -> None: ...
def correlate_plane(
    image: NDArray, row_map: NDArray[np.int64], col_map: NDArray[np.int64], left: int,
    fill: NDArray, kernel: NDArray, out: NDArray, strip: NDArray, row0: int, row1: int,
) -> None: ...
def correlate_plane_separable(
    image: NDArray, row_map: NDArray[np.int64], col_map: NDArray[np.int64], left: int,
    fill: NDArray, krow: NDArray, kcol: NDArray, out: NDArray, strip: NDArray,
    across: NDArray, row0: int, row1: int,
) -> None: ...
def correlate_complex(padded: NDArray, kernel: NDArray, out: NDArray, row0: int, row1: int) -> None: ...
def pack_weights(weight: NDArray, groups: int, packed: NDArray) -> None: ...

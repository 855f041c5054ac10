# Type stubs for the compiled core (internal: called only by cyconv's Python layer,
# which validates every argument and allocates every buffer first). The C-level
# API for other Cython packages is declared in _core.pxd.
import numpy as np
from numpy.typing import NDArray

def detect_level() -> int: ...
def detect_features() -> int: ...
def set_level(level: int) -> None: ...
def level_name() -> str: ...
def index_map(n: int, before: int, rule: int, out: NDArray[np.int64]) -> None: ...
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
def conv2d_plan(
    N: int, C: int, H: int, W: int, K: int, R: int, S: int, groups: int,
    sh: int, sw: int, dh: int, dw: int, top: int, bottom: int, left: int, right: int,
    double_precision: bool,
) -> dict: ...
def pack_weights(weight: NDArray, groups: int, packed: NDArray) -> None: ...
def conv2d(
    image: NDArray, row_map: NDArray[np.int64], col_map: NDArray[np.int64],
    weights: NDArray, bias: NDArray, out: NDArray, padded: NDArray, scratch: NDArray,
    edge: NDArray, R: int, S: int, groups: int, sh: int, sw: int, dh: int, dw: int,
    top: int, bottom: int, left: int, right: int, n0: int, n1: int, y0: int, y1: int,
) -> None: ...

class PixelPlan:
    """Geometry and weights of the fused 8/16-bit image filter (built by cyconv.image)."""
    M: int
    N: int
    left: int
    Wp: int
    Wo: int
    alpha_top: int
    alpha_left: int
    separable: bool
    fill: float
    def __init__(
        self, row_map: NDArray[np.int64], col_map: NDArray[np.int64], left: int, fill: float,
        weights: NDArray[np.float32], M: int, N: int, separable: bool, alpha_top: int,
        alpha_left: int,
    ) -> None: ...
    def scratch_size(self, group: int) -> int: ...

def filter_pixels(
    plan: PixelPlan, image: NDArray, out: NDArray, colour: int, interleaved: bool,
    scratch: NDArray[np.float32], y0: int, y1: int,
) -> None: ...

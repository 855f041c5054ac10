"""cyconv: fast, SciPy-exact 2-D convolution and PyTorch-style conv2d for NumPy.

    convolve2d(in1, in2, mode, boundary, fillvalue)   # = scipy.signal.convolve2d
    correlate2d(in1, in2, mode, boundary, fillvalue)  # = scipy.signal.correlate2d
    choose_method(in1, in2, mode, boundary)           # what method='auto' will use
    conv2d(input, weight, bias, stride, padding, dilation, groups)  # = torch.nn.functional.conv2d
    conv2d_backward(grad_output, input, weight, ...)  # conv2d's (grad_input, grad_weight, grad_bias)
    conv_transpose2d(input, weight, bias, stride, padding, output_padding)  # = torch's
    show_config()                                     # CPU features, kernel level, threads
    set_cache_limit(nbytes)                           # freed large arrays kept for reuse
    set_num_threads(n) / get_num_threads() / with num_threads(n): ...
    kernels.get("gaussian:7,1.5"), kernels.sobel_x(), ...  # named kernels
    image.filter_image(img, kernel), image.feature_maps(...)  # Pillow images and arrays
    ndimage.gaussian_filter(img, 2), ndimage.correlate(...), ...  # = scipy.ndimage's filters
"""

from ._version import __version__
from ._config import show_config, kernel_level, cpu_features, set_cache_limit
from ._convolve import choose_method, convolve2d, correlate2d
from ._conv2d import conv2d
from ._conv2d_grad import conv2d_backward, conv_transpose2d
from ._parallel import get_num_threads, set_num_threads, num_threads
from . import image, kernels, ndimage


def get_include() -> str:
    """Folder of cyconv's C headers, for extensions that build against cyconv.

    Cython code needs only ``cimport cyconv`` (the .pxd files are installed
    with the package); see the README's "Using cyconv from Cython".
    """
    import os

    return os.path.join(os.path.dirname(__file__), "_csrc")

__all__ = [
    "__version__",
    "convolve2d",
    "correlate2d",
    "choose_method",
    "conv2d",
    "conv2d_backward",
    "conv_transpose2d",
    "get_num_threads",
    "set_num_threads",
    "num_threads",
    "image",
    "kernels",
    "ndimage",
    "show_config",
    "kernel_level",
    "cpu_features",
    "set_cache_limit",
    "get_include",
]

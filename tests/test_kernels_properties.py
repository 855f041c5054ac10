"""Property tests of cyconv.kernels (hypothesis): shapes, sums, symmetry and
values of the parametrized kernels against their definitions, get() against
the functions, and the orientation of the derivative kernels on random ramps.

The budget per property is CYCONV_HYPOTHESIS_EXAMPLES (default 100 here).
"""

from __future__ import annotations

import os

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import cyconv
from cyconv import kernels

MAX_EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "100"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None)

lengths = st.integers(1, 15)
sizes = st.one_of(lengths, st.tuples(lengths, lengths))
sigmas = st.floats(0.05, 20.0)


def pair(size):
    return size if isinstance(size, tuple) else (size, size)


@SETTINGS
@given(size=sizes, sigma=st.one_of(st.none(), sigmas, st.tuples(sigmas, sigmas)))
def test_gaussian_is_its_definition(size, sigma):
    k = kernels.gaussian(size, sigma)
    h, w = pair(size)
    assert k.shape == (h, w) and k.dtype == np.float64
    if sigma is None:   # OpenCV's default for the size
        sy, sx = (0.3 * ((n - 1) / 2 - 1) + 0.8 for n in (h, w))
    else:
        sy, sx = sigma if isinstance(sigma, tuple) else (sigma, sigma)
    # exp(-x^2 / (2 sigma^2)) at offsets from the (half-pixel for even sizes) centre, sum 1.
    # The exponents are shifted by their largest before exp, which the sum cancels:
    # unshifted, tiny sigmas made subnormal values that lost digits (sigma 0.0625 x 0.051
    # at 4x4: a corner of 6.4e-281 came out 5e-10 off).
    exponent = np.array([[-((i - (h - 1) / 2) ** 2) / (2 * sy * sy)
                          - ((j - (w - 1) / 2) ** 2) / (2 * sx * sx)
                          for j in range(w)] for i in range(h)])
    raw = np.exp(exponent - exponent.max())
    np.testing.assert_allclose(k, raw / raw.sum(), rtol=1e-12, atol=1e-300)
    assert abs(k.sum() - 1) <= 1e-12
    assert (k >= 0).all()
    np.testing.assert_allclose(k, k[::-1, ::-1], rtol=1e-14, atol=0)   # symmetric
    assert np.linalg.matrix_rank(k, tol=1e-12 * k.max()) == 1          # separable


@SETTINGS
@given(size=sizes)
def test_box_is_a_normalized_mean(size):
    k = kernels.box(size)
    h, w = pair(size)
    assert k.shape == (h, w)
    assert (k == k.flat[0]).all() and k.flat[0] == 1.0 / (h * w)
    assert abs(k.sum() - 1) <= 1e-12


@SETTINGS
@given(h=st.integers(0, 7), w=st.integers(0, 7), H=st.integers(1, 10), W=st.integers(1, 10),
       boundary=st.sampled_from(["fill", "wrap", "symm"]), correlate=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_identity_leaves_any_image(h, w, H, W, boundary, correlate, seed):
    k = kernels.identity((2 * h + 1, 2 * w + 1))
    assert k.sum() == 1 and k[h, w] == 1
    img = np.random.default_rng(seed).standard_normal((H, W))
    fn = cyconv.correlate2d if correlate else cyconv.convolve2d
    np.testing.assert_array_equal(fn(img, k, "same", boundary), img)


@SETTINGS
@given(size=sizes, sigma=st.one_of(st.none(), sigmas))
def test_get_builds_what_the_functions_build(size, sigma):
    h, w = pair(size)
    text = f"{h}x{w}" if isinstance(size, tuple) else str(h)
    np.testing.assert_array_equal(kernels.get(f"box:{text}"), kernels.box(size))
    spec = f"gaussian:{text}" if sigma is None else f"gaussian:{text},{sigma!r}"
    np.testing.assert_array_equal(kernels.get(spec), kernels.gaussian(size, sigma))
    if h % 2 and w % 2:
        np.testing.assert_array_equal(kernels.get(f"identity:{text}"), kernels.identity(size))


DERIVATIVES = {"sobel": (kernels.sobel_x, kernels.sobel_y),
               "scharr": (kernels.scharr_x, kernels.scharr_y),
               "prewitt": (kernels.prewitt_x, kernels.prewitt_y)}


@SETTINGS
@given(family=st.sampled_from(sorted(DERIVATIVES)), H=st.integers(3, 12), W=st.integers(3, 12),
       slope_x=st.integers(-20, 20), slope_y=st.integers(-20, 20), offset=st.integers(-50, 50))
def test_derivative_kernels_measure_their_own_axis(family, H, W, slope_x, slope_y, offset):
    """Correlating a ramp (brighter to the right by slope_x per pixel, downward
    by slope_y) with d/dx gives a positive multiple of slope_x only, with
    d/dy of slope_y only, everywhere in 'valid' (integers: exact)."""
    y, x = np.mgrid[0:H, 0:W]
    ramp = slope_x * x + slope_y * y + offset
    kx, ky = (make() for make in DERIVATIVES[family])
    np.testing.assert_array_equal(kx, ky.T)
    gain = float((kx * (np.arange(3) - 1)).sum())   # the response to a unit slope in x
    assert gain > 0
    gx = cyconv.correlate2d(ramp.astype(float), kx, "valid")
    gy = cyconv.correlate2d(ramp.astype(float), ky, "valid")
    np.testing.assert_allclose(gx, gain * slope_x, rtol=0, atol=1e-9)
    np.testing.assert_allclose(gy, gain * slope_y, rtol=0, atol=1e-9)
    # convolution flips the kernel, and so the sign
    np.testing.assert_allclose(cyconv.convolve2d(ramp.astype(float), kx, "valid"),
                               -gain * slope_x, rtol=0, atol=1e-9)

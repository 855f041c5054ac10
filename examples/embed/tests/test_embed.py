import numpy as np

import cyconv
from embed_demo import sobel_magnitude


def test_matches_cyconv_python_api():
    rng = np.random.default_rng(0)
    image = rng.random((37, 53)) * 255
    kx = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], float)
    gx = cyconv.correlate2d(image, kx, "same", "symm")
    gy = cyconv.correlate2d(image, kx.T, "same", "symm")
    np.testing.assert_allclose(sobel_magnitude(image), np.hypot(gx, gy), rtol=1e-12, atol=1e-9)


def test_flat_image_has_no_edges():
    assert np.abs(sobel_magnitude(np.full((8, 9), 7.0))).max() == 0

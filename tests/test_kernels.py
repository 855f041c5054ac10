"""cyconv.kernels: values, sums, orientation convention, lookup by name, errors."""

import numpy as np
import pytest

import cyconv
from cyconv import kernels as K

ALL = ["box", "gaussian", "sobel_x", "sobel_y", "scharr_x", "scharr_y", "prewitt_x",
       "prewitt_y", "laplacian", "sharpen", "emboss", "outline", "identity"]
DERIVATIVES = {"x": [K.sobel_x, K.scharr_x, K.prewitt_x], "y": [K.sobel_y, K.scharr_y, K.prewitt_y]}


def test_names_lists_every_kernel():
    assert K.names() == ALL
    names = K.names()
    names.append("junk")  # a fresh list every time
    assert "junk" not in K.names()


@pytest.mark.parametrize("kernel, total", [
    (K.box(5), 1), (K.box((3, 4)), 1), (K.box(1), 1), (K.box(2), 1),
    (K.gaussian(7, 1.5), 1), (K.gaussian((5, 4), (1.0, 2.5)), 1), (K.gaussian(9), 1),
    (K.gaussian(1, 3.0), 1),
    (K.sobel_x(), 0), (K.sobel_y(), 0), (K.scharr_x(), 0), (K.scharr_y(), 0),
    (K.prewitt_x(), 0), (K.prewitt_y(), 0), (K.laplacian(), 0), (K.laplacian(8), 0),
    (K.laplacian(4), 0), (K.sharpen(), 1), (K.emboss(), 1), (K.outline(), 0),
    (K.identity(), 1), (K.identity(5), 1),
])
def test_sums_and_dtype(kernel, total):
    assert kernel.dtype == np.float64
    assert kernel.ndim == 2
    assert kernel.sum() == pytest.approx(total, abs=1e-12)


def test_values():
    np.testing.assert_array_equal(K.box(5), np.ones((5, 5)) / 25)
    assert K.box((2, 3)).shape == (2, 3)
    np.testing.assert_array_equal(K.sobel_x(), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(K.sobel_y(), K.sobel_x().T)
    np.testing.assert_array_equal(K.scharr_x(), [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]])
    np.testing.assert_array_equal(K.prewitt_y(), [[-1, -1, -1], [0, 0, 0], [1, 1, 1]])
    np.testing.assert_array_equal(K.laplacian(4), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    np.testing.assert_array_equal(K.laplacian(8), [[1, 1, 1], [1, -8, 1], [1, 1, 1]])
    np.testing.assert_array_equal(K.sharpen(), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    np.testing.assert_array_equal(K.outline(), -K.laplacian(8))
    ident = K.identity(5)
    assert ident[2, 2] == 1 and np.count_nonzero(ident) == 1
    assert K.identity((3, 7)).shape == (3, 7) and K.identity((3, 7))[1, 3] == 1


def test_gaussian_shape():
    g = K.gaussian(7, 1.5)
    assert g.shape == (7, 7)
    assert np.unravel_index(g.argmax(), g.shape) == (3, 3)
    np.testing.assert_allclose(g, g[::-1, ::-1])
    np.testing.assert_allclose(g, g.T)
    # separable: rank one, ratio of neighbours follows exp(-x^2 / 2 sigma^2)
    assert np.linalg.matrix_rank(g) == 1
    row = g[3]
    assert row[4] / row[3] == pytest.approx(np.exp(-0.5 / 1.5 ** 2))
    even = K.gaussian(4, 1.0)  # symmetric about a half-pixel centre
    np.testing.assert_allclose(even, even[::-1, ::-1])
    aniso = K.gaussian((9, 9), (1.0, 3.0))
    assert aniso[4, 0] > aniso[0, 4]  # wider along x
    # default sigma (OpenCV's rule): 0.3 * ((n - 1) / 2 - 1) + 0.8
    np.testing.assert_allclose(K.gaussian(9), K.gaussian(9, 0.3 * 3 + 0.8))


@pytest.mark.parametrize("make", [lambda: K.box(3), lambda: K.gaussian(5, 1.0), K.sobel_x,
                                  K.sobel_y, K.scharr_x, K.prewitt_y, K.laplacian, K.sharpen,
                                  K.emboss, K.outline, K.identity, lambda: K.get("box:3"),
                                  lambda: K.get("sobel_x")])
def test_fresh_copies(make):
    a = make()
    before = a.copy()
    a[...] = 42
    b = make()
    np.testing.assert_array_equal(b, before)
    assert not np.shares_memory(a, b)


def _edge(axis, n=12):
    """A step image: 0 then 1 along `axis` (increasing to the right / downward)."""
    img = np.zeros((n, n))
    if axis == "x":
        img[:, n // 2:] = 1.0
    else:
        img[n // 2:, :] = 1.0
    return img


@pytest.mark.parametrize("axis", ["x", "y"])
def test_derivative_orientation(axis):
    """Documented convention: under correlate2d the _x kernels are positive where
    intensity increases to the right, the _y kernels where it increases downward;
    convolve2d negates them. The other direction gives nothing."""
    img = _edge(axis)
    other = "y" if axis == "x" else "x"
    for make in DERIVATIVES[axis]:
        k = make()
        corr = cyconv.correlate2d(img, k, "same", "symm")
        conv = cyconv.convolve2d(img, k, "same", "symm")
        assert corr.min() >= 0 and corr.max() > 0
        np.testing.assert_allclose(conv, -corr)
        # the response sits on the edge
        profile = corr.sum(axis=0 if axis == "x" else 1)
        assert set(np.flatnonzero(profile)) == {5, 6}
        # reversed edge flips the sign
        assert cyconv.correlate2d(img[::-1, ::-1], k, "same", "symm").max() <= 0
    for make in DERIVATIVES[other]:
        np.testing.assert_array_equal(cyconv.correlate2d(img, make(), "same", "symm"), 0)


def test_emboss_orientation():
    img = np.zeros((10, 10))
    img[5:, 5:] = 1.0  # brighter towards the bottom-right
    flat = cyconv.correlate2d(np.ones((10, 10)), K.emboss(), "same", "symm")
    np.testing.assert_allclose(flat, 1.0)  # sum 1: flat areas keep their value
    corr = cyconv.correlate2d(img, K.emboss(), "same", "symm") - cyconv.correlate2d(
        img, K.identity(), "same", "symm")
    conv = cyconv.convolve2d(img, K.emboss(), "same", "symm") - img
    assert corr.min() >= 0 and corr.max() > 0   # lit: a bright rim
    assert conv.max() <= 0 and conv.min() < 0   # flipped under convolution


@pytest.mark.parametrize("make", [K.laplacian, lambda: K.laplacian(8), K.sharpen, K.outline,
                                  lambda: K.box(3), lambda: K.gaussian(5, 1.0)])
def test_symmetric_kernels_ignore_the_flip(make):
    rng = np.random.default_rng(1)
    img = rng.random((9, 11))
    np.testing.assert_allclose(cyconv.convolve2d(img, make(), "same", "symm"),
                               cyconv.correlate2d(img, make(), "same", "symm"), atol=1e-12)


def test_laplacian_responds_to_curvature_not_slope():
    ramp = np.tile(np.arange(8.0), (8, 1))
    for n in (4, 8):
        np.testing.assert_allclose(cyconv.convolve2d(ramp, K.laplacian(n), "valid"), 0)
    bump = np.zeros((5, 5))
    bump[2, 2] = 1.0
    assert cyconv.convolve2d(bump, K.laplacian(), "same")[2, 2] == -4  # peak -> negative


@pytest.mark.parametrize("size", [1, 3, 5, (3, 5)])
def test_identity_leaves_the_image(size):
    img = np.random.default_rng(2).random((7, 8))
    for fn in (cyconv.convolve2d, cyconv.correlate2d):
        for boundary in ("fill", "wrap", "symm"):
            np.testing.assert_array_equal(fn(img, K.identity(size), "same", boundary), img)


@pytest.mark.parametrize("spec, expected", [
    ("box:5", K.box(5)), ("box:3x5", K.box((3, 5))), ("BOX: 4 ", K.box(4)),
    ("gaussian:7,1.5", K.gaussian(7, 1.5)), ("gaussian:7", K.gaussian(7)),
    ("gaussian:size=7,sigma=1.5", K.gaussian(7, 1.5)), ("gaussian:5x3,2", K.gaussian((5, 3), 2)),
    ("sobel_x", K.sobel_x()), ("sobel_y", K.sobel_y()), ("scharr_x", K.scharr_x()),
    ("scharr_y", K.scharr_y()), ("prewitt_x", K.prewitt_x()), ("prewitt_y", K.prewitt_y()),
    ("laplacian", K.laplacian(4)), ("laplacian:8", K.laplacian(8)),
    ("laplacian:neighbours=4", K.laplacian(4)), ("sharpen", K.sharpen()),
    ("emboss", K.emboss()), ("outline", K.outline()), ("identity", K.identity()),
    ("identity:5", K.identity(5)),
])
def test_get(spec, expected):
    got = K.get(spec)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, expected)


def test_describe_covers_every_name():
    rows = K.describe()
    assert len(rows) == len(K.names())
    for (syntax, shape, text), name in zip(rows, K.names()):
        assert syntax.startswith(name)
        assert len(shape) == 2 and text and "\n" not in text


def test_get_unknown_lists_names():
    with pytest.raises(ValueError, match="unknown kernel 'blur'") as info:
        K.get("blur")
    for name in ALL:
        assert name in str(info.value)


@pytest.mark.parametrize("spec, word", [
    ("box", "size"), ("gaussian", "size"), ("box:0", "size"), ("box:-3", "size"),
    ("box:2.5", "size"), ("box:x", "size"), ("box:3x0", "size"), ("box:5,3", "too many"),
    ("gaussian:5,0", "sigma"), ("gaussian:5,-1", "sigma"), ("gaussian:5,nan", "sigma"),
    ("gaussian:5,inf", "sigma"), ("gaussian:5,abc", "sigma"), ("laplacian:6", "neighbours"),
    ("laplacian:4.5", "neighbours"), ("identity:4", "size"), ("identity:3x2", "size"),
    ("sobel_x:3", "too many"), ("box:", "empty"), ("box:size=3,size=4", "twice"),
    ("box:3,size=4", "twice"), ("gaussian:sigma=1", "size"), ("box:width=3", "width"),
])
def test_get_bad_params(spec, word):
    with pytest.raises(ValueError, match=word):
        K.get(spec)


def test_get_needs_a_string():
    with pytest.raises(TypeError):
        K.get(np.ones((3, 3)))


@pytest.mark.parametrize("call, exc, word", [
    (lambda: K.box(0), ValueError, "size"), (lambda: K.box(-1), ValueError, "size"),
    (lambda: K.box(2.0), TypeError, "size"), (lambda: K.box(True), TypeError, "size"),
    (lambda: K.box((3, 0)), ValueError, "size"), (lambda: K.box((3, 3, 3)), ValueError, "size"),
    (lambda: K.box("3"), TypeError, "size"),
    (lambda: K.gaussian(0, 1.0), ValueError, "size"),
    (lambda: K.gaussian(5, 0), ValueError, "sigma"),
    (lambda: K.gaussian(5, -2.0), ValueError, "sigma"),
    (lambda: K.gaussian(5, float("nan")), ValueError, "sigma"),
    (lambda: K.gaussian(5, "1"), TypeError, "sigma"),
    (lambda: K.gaussian(5, (1.0, 0.0)), ValueError, "sigma"),
    (lambda: K.gaussian(5, (1.0, 2.0, 3.0)), ValueError, "sigma"),
    (lambda: K.laplacian(6), ValueError, "neighbours"),
    (lambda: K.laplacian(4.0), TypeError, "neighbours"),
    (lambda: K.laplacian(True), TypeError, "neighbours"),
    (lambda: K.identity(2), ValueError, "size"), (lambda: K.identity(0), ValueError, "size"),
    (lambda: K.identity((3, 4)), ValueError, "size"),
])
def test_bad_arguments(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


def test_numpy_integer_sizes():
    np.testing.assert_array_equal(K.box(np.int64(3)), K.box(3))
    np.testing.assert_array_equal(K.gaussian(np.int32(5), np.float32(1.5)), K.gaussian(5, 1.5))

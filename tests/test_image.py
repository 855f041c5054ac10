"""cyconv.image against per-channel scipy.signal references."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

from cyconv import image as cimage
from cyconv import kernels as K

Image = pytest.importorskip("PIL.Image")

RNG = np.random.default_rng(1234)
KERNEL = RNG.standard_normal((3, 5))  # asymmetric, so a flip would show


def _ref(planes, k, *, mode="same", boundary="symm", fillvalue=0, correlate=False):
    fn = scipy.signal.correlate2d if correlate else scipy.signal.convolve2d
    return np.stack([fn(planes[..., c].astype(np.float64), k, mode, boundary, fillvalue)
                     for c in range(planes.shape[-1])], axis=-1)


def _round_clip(a, lo, hi, dtype):
    return np.clip(np.rint(a), lo, hi).astype(dtype)


def _random_pil(mode, h=13, w=17):
    if mode in ("L", "RGB", "RGBA", "LA", "CMYK", "YCbCr"):
        bands = len(Image.new(mode, (1, 1)).getbands())
        a = RNG.integers(0, 256, (h, w, bands), dtype=np.uint8)
        return Image.frombytes(mode, (w, h), a.tobytes())
    if mode == "I;16":
        return Image.frombytes(mode, (w, h), RNG.integers(0, 65536, (h, w)).astype("<u2")
                               .tobytes())
    if mode == "I":
        return Image.frombytes(mode, (w, h), RNG.integers(-2 ** 31, 2 ** 31, (h, w))
                               .astype("=i4").tobytes())
    if mode == "F":
        return Image.frombytes(mode, (w, h), (RNG.standard_normal((h, w)) * 100)
                               .astype("=f4").tobytes())
    raise AssertionError(mode)


RANGES = {"L": (0, 255, np.uint8), "LA": (0, 255, np.uint8), "RGB": (0, 255, np.uint8),
          "RGBA": (0, 255, np.uint8), "CMYK": (0, 255, np.uint8), "YCbCr": (0, 255, np.uint8),
          "I;16": (0, 65535, np.uint16), "I": (-2 ** 31, 2 ** 31 - 1, np.int32)}
ALPHA = {"LA": 1, "RGBA": 3}


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "CMYK", "YCbCr", "I;16", "I", "F"])
@pytest.mark.parametrize("correlate", [False, True])
def test_pil_modes(mode, correlate):
    im = _random_pil(mode)
    before = np.asarray(im).copy()
    k = KERNEL * (1000 if mode in ("I", "I;16") else 1)  # push values out of range
    out = cimage.filter_image(im, k, correlate=correlate)
    assert isinstance(out, Image.Image)
    assert out.mode == mode and out.size == im.size
    np.testing.assert_array_equal(np.asarray(im), before)  # input untouched
    data = np.asarray(im)
    data3 = data[..., None] if data.ndim == 2 else data
    got = np.asarray(out)
    got3 = got[..., None] if got.ndim == 2 else got
    colour = ALPHA.get(mode, data3.shape[-1])
    ref = _ref(data3[..., :colour], k, correlate=correlate)
    if mode == "F":
        assert got.dtype == np.float32
        np.testing.assert_allclose(got3, ref, rtol=1e-4, atol=1e-3)
    else:
        lo, hi, dt = RANGES[mode]
        expected = _round_clip(ref, lo, hi, dt)
        # rounding of values within float error of .5 may differ by one
        assert np.abs(got3[..., :colour].astype(np.int64) - expected).max() <= 1
        assert np.mean(got3[..., :colour] == expected) > 0.99
        assert got3.min() >= lo and got3.max() <= hi
        if mode in ("I", "I;16"):
            assert (expected == lo).any() and (expected == hi).any()  # clipping exercised
    if mode in ALPHA:
        np.testing.assert_array_equal(got3[..., -1], data3[..., -1])  # alpha untouched


@pytest.mark.parametrize("mode, fmt", [("L", "PNG"), ("RGB", "PNG"), ("RGBA", "PNG"),
                                       ("I;16", "PNG"), ("I", "TIFF"), ("F", "TIFF")])
def test_file_round_trip(tmp_path, mode, fmt):
    im = _random_pil(mode)
    src = tmp_path / f"in.{fmt.lower()}"
    im.save(src, format=fmt)
    with Image.open(src) as loaded:
        assert loaded.mode == mode
        out = cimage.filter_image(loaded, "box:3")
    dst = tmp_path / f"out.{fmt.lower()}"
    out.save(dst, format=fmt)
    with Image.open(dst) as back:
        assert back.mode == mode
        np.testing.assert_array_equal(np.asarray(back), np.asarray(out))


def test_pil_integer_results_exact():
    """Integer kernels on 8-bit images: exact integers, so compare exactly."""
    im = _random_pil("RGB", 20, 30)
    k = np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    for boundary in ("fill", "wrap", "symm"):
        out = np.asarray(cimage.filter_image(im, k, boundary=boundary, fillvalue=7))
        ref = _round_clip(_ref(np.asarray(im), k, boundary=boundary, fillvalue=7), 0, 255,
                          np.uint8)
        np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("mode", ["full", "valid"])
@pytest.mark.parametrize("correlate", [False, True])
def test_pil_rgba_full_valid(mode, correlate):
    im = _random_pil("RGBA", 12, 15)
    data = np.asarray(im)
    k = K.gaussian((3, 5), 1.0)
    out = cimage.filter_image(im, k, mode=mode, boundary="fill", correlate=correlate)
    got = np.asarray(out)
    ref = _round_clip(_ref(data[..., :3], k, mode=mode, boundary="fill", correlate=correlate),
                      0, 255, np.uint8)
    assert got.shape[:2] == ref.shape[:2]
    assert np.abs(got[..., :3].astype(int) - ref).max() <= 1
    alpha = data[..., 3]
    if mode == "valid":  # the alpha under each kernel centre
        np.testing.assert_array_equal(got[..., 3], alpha[1:-1, 2:-2])
    else:  # transparent outside the image
        np.testing.assert_array_equal(got[1:-1, 2:-2, 3], alpha)
        assert got[0, :, 3].max() == 0 and got[:, :2, 3].max() == 0


def test_pil_conversions():
    one = Image.frombytes("L", (8, 6), (RNG.random((6, 8)) > 0.5).astype(np.uint8).tobytes() * 1)
    one = one.point(lambda v: 255 * v).convert("1")
    out = cimage.filter_image(one, "box:3")
    assert out.mode == "L"
    ref = _round_clip(_ref(np.asarray(one.convert("L"))[..., None], K.box(3)), 0, 255, np.uint8)
    assert np.abs(np.asarray(out).astype(int) - ref[..., 0]).max() <= 1
    pal = _random_pil("RGB").convert("P")
    out = cimage.filter_image(pal, "sharpen")
    assert out.mode == "RGB"
    np.testing.assert_array_equal(
        np.asarray(out), np.asarray(cimage.filter_image(pal.convert("RGB"), "sharpen")))
    pal.info["transparency"] = 0
    assert cimage.filter_image(pal, "sharpen").mode == "RGBA"


@pytest.mark.parametrize("mode", ["HSV", "I;16B", "RGBX", "La"])
def test_pil_unsupported_modes(mode):
    im = Image.new(mode, (4, 4))
    with pytest.raises(ValueError, match=f"mode '{mode}'"):
        cimage.filter_image(im, "box:3")


def test_pil_out_dtype_refused():
    with pytest.raises(TypeError, match="out_dtype"):
        cimage.filter_image(_random_pil("L"), "box:3", out_dtype=np.uint8)


# --- arrays -------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32, np.float64, bool])
@pytest.mark.parametrize("shape", [(11, 9), (11, 9, 3), (11, 9, 1)])
def test_arrays(dtype, shape):
    a = (RNG.random(shape) * 200).astype(dtype)
    before = a.copy()
    out = cimage.filter_image(a, KERNEL, boundary="wrap")
    assert out.shape == shape
    assert out.dtype == (np.float32 if dtype == np.float32 else np.float64)
    ref = _ref(a.reshape(shape[:2] + (-1,)), KERNEL, boundary="wrap").reshape(shape)
    tol = 1e-3 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(out, ref, rtol=tol, atol=tol)
    np.testing.assert_array_equal(a, before)


def test_array_modes_and_correlate():
    a = RNG.random((10, 14, 2))
    for mode in ("full", "same", "valid"):
        for correlate in (False, True):
            out = cimage.filter_image(a, KERNEL, mode=mode, boundary="fill", fillvalue=0.5,
                                      correlate=correlate, workers=1)
            ref = _ref(a, KERNEL, mode=mode, boundary="fill", fillvalue=0.5,
                       correlate=correlate)
            np.testing.assert_allclose(out, ref, atol=1e-12)


def test_array_out_dtype():
    a = np.array([[0.0, 100.0, 250.0], [10.0, 20.0, 30.0]])
    k = np.array([[2.0]])
    np.testing.assert_array_equal(cimage.filter_image(a, k, out_dtype=np.uint8),
                                  [[0, 200, 255], [20, 40, 60]])
    np.testing.assert_array_equal(cimage.filter_image(a - 100, k, out_dtype="int8"),
                                  [[-128, 0, 127], [-128, -128, -128]])
    half = cimage.filter_image(np.array([[0.5, 1.5, 2.5]]), np.array([[1.0]]), out_dtype=np.int32)
    np.testing.assert_array_equal(half, [[0, 2, 2]])  # rint: half to even
    big = cimage.filter_image(np.array([[1e30, -1e30, np.nan]]), np.array([[1.0]]),
                              out_dtype=np.int64)
    assert big.tolist() == [[np.iinfo(np.int64).max - 1023, np.iinfo(np.int64).min, 0]]
    assert cimage.filter_image(a, k, out_dtype=np.float32).dtype == np.float32
    with pytest.raises(TypeError, match="out_dtype"):
        cimage.filter_image(a, k, out_dtype=complex)


@pytest.mark.parametrize("img, kernel, exc", [
    (np.ones((4, 4)), np.ones((3, 3, 3)), ValueError),
    (np.ones((4, 4)), np.ones(3), ValueError),
    (np.ones((4, 4)), np.ones((0, 3)), ValueError),
    (np.ones((4, 4)), np.ones((3, 3), complex), TypeError),
    (np.ones((4, 4)), "no_such_kernel", ValueError),
    (np.ones((4, 4, 2, 2)), np.ones((3, 3)), ValueError),
    (np.ones(4), np.ones((3, 3)), ValueError),
    (np.ones((4, 4), complex), np.ones((3, 3)), TypeError),
    (np.array([["a"]]), np.ones((3, 3)), TypeError),
])
def test_bad_inputs(img, kernel, exc):
    with pytest.raises(exc):
        cimage.filter_image(img, kernel)


# --- feature maps ---------------------------------------------------------------------------

def _ref_maps(planes, ks):
    return np.stack([_ref(planes, k).transpose(2, 0, 1) for k in ks])


def test_feature_maps_odd_and_even_kernels():
    a = RNG.random((15, 18, 3))
    ks = [K.sobel_x(), RNG.random((4, 4)), RNG.random((2, 5)), K.box(5), RNG.random((6, 1)),
          RNG.random((1, 1)), RNG.random((4, 4))]
    maps = cimage.feature_maps(a, ks)
    assert maps.shape == (len(ks), 3, 15, 18) and maps.dtype == np.float64
    np.testing.assert_allclose(maps, _ref_maps(a, ks), atol=1e-12)
    # and equal to filter_image's default
    for i, k in enumerate(ks):
        np.testing.assert_allclose(maps[i], cimage.filter_image(a, k).transpose(2, 0, 1),
                                   atol=1e-12)


def test_feature_maps_inputs():
    a = RNG.random((9, 7))
    maps = cimage.feature_maps(a, ["sobel_x", "gaussian:4,1"])  # names; 2-D image -> C = 1
    assert maps.shape == (2, 1, 9, 7)
    np.testing.assert_allclose(maps, _ref_maps(a[..., None], [K.sobel_x(), K.gaussian(4, 1)]),
                               atol=1e-12)
    bank = {"b": K.box(3), "a": K.laplacian()}  # dict order is kept
    np.testing.assert_allclose(cimage.feature_maps(a, bank),
                               _ref_maps(a[..., None], list(bank.values())), atol=1e-12)
    stack = RNG.random((3, 3, 3))
    np.testing.assert_allclose(cimage.feature_maps(a, stack),
                               _ref_maps(a[..., None], list(stack)), atol=1e-12)
    f32 = cimage.feature_maps(a.astype(np.float32), [K.box(3)])
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, _ref_maps(a[..., None], [K.box(3)]), atol=1e-5)
    assert cimage.feature_maps(a, []).shape == (0, 1, 9, 7)
    with pytest.raises(ValueError):
        cimage.feature_maps(a, ["sobel_x", "nope"])


def test_feature_maps_pil_rgba_skips_alpha():
    im = _random_pil("RGBA", 10, 12)
    maps = cimage.feature_maps(im, ["emboss"])
    assert maps.shape == (1, 3, 10, 12)
    np.testing.assert_allclose(maps, _ref_maps(np.asarray(im)[..., :3], [K.emboss()]),
                               atol=1e-10)


# --- grid -----------------------------------------------------------------------------------

def _panels(grid, n, C, H, W, top, left, gap):
    return [[grid[top + i * (H + gap):top + i * (H + gap) + H,
                  left + c * (W + gap):left + c * (W + gap) + W] for c in range(C)]
            for i in range(n)]


def test_save_feature_grid(tmp_path):
    maps = cimage.feature_maps(RNG.random((20, 30, 3)), ["box:3", "sobel_x"])
    path = cimage.save_feature_grid(maps, tmp_path / "grid.png", labels=["box:3", "sobel_x"],
                                    channel_labels=["R", "G", "B"])
    assert path == tmp_path / "grid.png"
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "L"
        grid = np.asarray(im)
    plain_path = cimage.save_feature_grid(maps, str(tmp_path / "plain.png"))
    with Image.open(plain_path) as im:
        plain = np.asarray(im)
    gap = 4
    assert plain.shape == (2 * 20 + gap, 3 * 30 + 2 * gap)  # no labels: no margins
    top, left = grid.shape[0] - plain.shape[0], grid.shape[1] - plain.shape[1]
    assert top > 6 and left > 6  # room for the labels, outside the maps
    # the maps are the same with or without labels: labels never cover them
    np.testing.assert_array_equal(grid[top:, left:], plain)
    panels = _panels(plain, 2, 3, 20, 30, 0, 0, gap)
    # the gaps are mid-gray
    assert (plain[20:20 + gap] == 96).all() and (plain[:, 30:30 + gap] == 96).all()
    # blur row (one-signed): percentiles stretched onto the full range
    box = np.stack(panels[0])
    assert box.min() == 0 and box.max() == 255
    # sobel row (signed): zero is mid-gray, shared scale over the channels
    want = maps[1]
    s = np.percentile(np.abs(want), 99.5)
    expect = np.clip(np.rint(128 + 127 * want / s), 0, 255)
    np.testing.assert_array_equal(np.stack(panels[1]), expect)
    # label ink (white on black) is in the margins, fully inside the image
    margin = grid[top:, :left]
    assert (margin == 255).any() and (margin[:, -2:] == 0).all()  # nothing cut at the edge
    header = grid[:top, left:]
    assert (header == 255).any()


def test_feature_grid_labels_are_not_clipped(tmp_path):
    """Every label is drawn whole: the ink of each label, rendered alone, appears
    in the grid pixel for pixel."""
    words = ["gaussian:7,1.5", "W", "sharpen"]
    maps = np.random.default_rng(1).random((3, 2, 24, 24))
    path = cimage.save_feature_grid(maps, tmp_path / "g.png", labels=words,
                                    channel_labels=["left", "right"])
    with Image.open(path) as im:
        grid = np.asarray(im)
    for word in words + ["left", "right"]:
        ink = cimage._text_image(word)
        h, w = ink.shape
        hits = [(y, x) for y in range(grid.shape[0] - h + 1) for x in range(grid.shape[1] - w + 1)
                if grid[y, x:x + w].tobytes() == ink[0].tobytes()
                and (grid[y:y + h, x:x + w] == ink).all()]
        assert hits, word
        # and the drawn text fills its whole measured box: the last column has ink
        assert (ink[:, -1] == 255).any() and (ink[:, 0] == 255).any()


def test_save_feature_grid_shapes_and_errors(tmp_path):
    path = cimage.save_feature_grid(np.zeros((2, 5, 6)), tmp_path / "g.png")
    with Image.open(path) as im:
        assert im.size == (6, 10 + 4)  # (n, H, W): one column; constant maps -> 0
        assert (np.asarray(im)[5:9] == 96).all()
    with pytest.raises(ValueError, match="labels"):
        cimage.save_feature_grid(np.zeros((2, 1, 5, 6)), tmp_path / "x.png", labels=["a"])
    with pytest.raises(ValueError, match="channel_labels"):
        cimage.save_feature_grid(np.zeros((2, 3, 5, 6)), tmp_path / "x.png",
                                 channel_labels=["R", "G"])
    with pytest.raises(TypeError, match="channel_labels"):
        cimage.save_feature_grid(np.zeros((2, 3, 5, 6)), tmp_path / "x.png",
                                 channel_labels="RGB")
    with pytest.raises(ValueError, match="gap"):
        cimage.save_feature_grid(np.zeros((2, 3, 5, 6)), tmp_path / "x.png", gap=-1)
    with pytest.raises(ValueError):
        cimage.save_feature_grid(np.zeros((5, 6)), tmp_path / "x.png")
    with pytest.raises(ValueError):
        cimage.save_feature_grid(np.zeros((0, 1, 5, 6)), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    # gap=0 packs the panels
    path = cimage.save_feature_grid(np.zeros((2, 3, 5, 6)), tmp_path / "g0.png", gap=0)
    with Image.open(path) as im:
        assert im.size == (18, 10)


# --- sobel edges ----------------------------------------------------------------------------

def _ref_sobel(planes):
    gx = _ref(planes, K.sobel_x(), correlate=True)
    gy = _ref(planes, K.sobel_y(), correlate=True)
    return np.hypot(gx, gy)


def test_sobel_edges_arrays():
    a = RNG.random((12, 10, 3))
    mag = _ref_sobel(a)
    np.testing.assert_allclose(cimage.sobel_edges(a), mag.max(axis=-1), atol=1e-12)
    np.testing.assert_allclose(cimage.sobel_edges(a, reduce="mean"), mag.mean(axis=-1),
                               atol=1e-12)
    gray = a[..., 0]
    out = cimage.sobel_edges(gray.astype(np.float32))
    assert out.dtype == np.float32 and out.shape == gray.shape
    np.testing.assert_allclose(out, _ref_sobel(gray[..., None])[..., 0], atol=1e-5)
    with pytest.raises(ValueError, match="reduce"):
        cimage.sobel_edges(a, reduce="sum")


def test_sobel_edges_step():
    step = np.zeros((8, 8))
    step[:, 4:] = 10.0
    edges = cimage.sobel_edges(step)
    assert edges[:, 3:5].min() == 40 and edges[:, :3].max() == 0 and edges[:, 5:].max() == 0


@pytest.mark.parametrize("mode, out_mode", [("RGB", "L"), ("RGBA", "L"), ("L", "L"),
                                            ("I;16", "I;16"), ("F", "F")])
def test_sobel_edges_pil(mode, out_mode):
    im = _random_pil(mode)
    out = cimage.sobel_edges(im, scale=0.25)
    assert out.mode == out_mode and out.size == im.size
    data = np.asarray(im)
    data3 = data[..., None] if data.ndim == 2 else data
    ref = _ref_sobel(data3[..., :3]).max(axis=-1) * 0.25
    if mode == "F":
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-4, atol=1e-2)
    else:
        lo, hi, dt = RANGES[mode]
        expected = _round_clip(ref, lo, hi, dt)
        assert np.abs(np.asarray(out).astype(np.int64) - expected).max() <= 1


def test_without_pillow():
    """import cyconv.image and array inputs work without Pillow; the grid says what to install."""
    code = """
import sys
sys.modules['PIL'] = None  # any 'import PIL...' now fails
import numpy as np
import cyconv.image as ci
a = np.random.default_rng(0).random((8, 9, 3))
assert ci.filter_image(a, 'box:3').shape == (8, 9, 3)
assert ci.feature_maps(a, ['sobel_x']).shape == (1, 3, 8, 9)
assert ci.sobel_edges(a).shape == (8, 9)
try:
    ci.save_feature_grid(np.zeros((1, 1, 4, 4)), 'never.png')
except ImportError as exc:
    print(exc)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'cyconv[image]'" in proc.stdout

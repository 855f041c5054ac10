"""Property tests of cyconv.image against SciPy on random images and kernels
(hypothesis): filter_image, feature_maps and sobel_edges for arrays of any
channel count and dtype, and Pillow images against the same arrays.

The budget per property is CYCONV_HYPOTHESIS_EXAMPLES (default 60 here).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cyconv import kernels
from cyconv.image import feature_maps, filter_image, sobel_edges
from convolve2d_reference import error_bound

MAX_EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "60"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")


@st.composite
def images(draw, dtypes=(np.float64, np.float32, np.uint8, np.uint16, np.int16)):
    """(array H x W or H x W x C, dtype) with random values of the dtype's range."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    shape = (h, w) if draw(st.booleans()) else (h, w, draw(st.integers(1, 4)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 50).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


@st.composite
def random_kernels(draw, max_size=5):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.standard_normal((draw(st.integers(1, max_size)), draw(st.integers(1, max_size))))


def planes_of(img):
    return img[:, :, None] if img.ndim == 2 else img


def scipy_filter(img, k, *, mode, boundary, fillvalue, correlate, dtype):
    """Per channel with scipy.signal, in the compute dtype cyconv.image uses;
    returns (H' x W' x C result, elementwise error bound)."""
    name = "correlate2d" if correlate else "convolve2d"
    outs, bounds = [], []
    for c in range(planes_of(img).shape[2]):
        plane = planes_of(img)[:, :, c].astype(dtype)
        kk = k.astype(dtype)
        outs.append(getattr(scipy.signal, name)(plane, kk, mode, boundary, fillvalue))
        bounds.append(error_bound(name, plane, kk, mode, boundary, fillvalue))
    return np.stack(outs, axis=-1), np.stack(bounds, axis=-1)


def assert_within(got, expected, bound):
    assert got.shape == expected.shape, (got.shape, expected.shape)
    err = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    assert (err <= bound).all(), f"max error {err.max()} > bound {bound[err > bound].min()}"


@SETTINGS
@given(img=images(), k=random_kernels(), mode=st.sampled_from(MODES),
       boundary=st.sampled_from(BOUNDARIES), correlate=st.booleans(),
       fillvalue=st.sampled_from([0.0, -3.5, 200.0]))
def test_filter_image_is_scipy_per_channel(img, k, mode, boundary, correlate, fillvalue):
    if mode == "valid" and (img.shape[0] < k.shape[0] or img.shape[1] < k.shape[1]):
        k = k[:img.shape[0], :img.shape[1]]
    dtype = np.float32 if img.dtype == np.float32 else np.float64
    got = filter_image(img, k, mode=mode, boundary=boundary, fillvalue=fillvalue,
                       correlate=correlate)
    expected, bound = scipy_filter(img, k, mode=mode, boundary=boundary, fillvalue=fillvalue,
                                   correlate=correlate, dtype=dtype)
    assert got.dtype == dtype
    if img.ndim == 2:
        expected, bound = expected[:, :, 0], bound[:, :, 0]
    assert_within(got, expected, bound)


@SETTINGS
@given(img=images(dtypes=(np.float64, np.uint8)), k=random_kernels(),
       out_dtype=st.sampled_from([np.uint8, np.int16, np.uint16, np.float32]),
       boundary=st.sampled_from(BOUNDARIES))
def test_filter_image_out_dtype_rounds_and_clips(img, k, out_dtype, boundary):
    got = filter_image(img, k, boundary=boundary, out_dtype=out_dtype)
    expected, bound = scipy_filter(img, k, mode="same", boundary=boundary, fillvalue=0,
                                   correlate=False, dtype=np.float64)
    if img.ndim == 2:
        expected, bound = expected[:, :, 0], bound[:, :, 0]
    assert got.dtype == out_dtype
    info = np.iinfo(out_dtype) if np.dtype(out_dtype).kind in "iu" else None
    if img.dtype == np.uint8 and out_dtype in (np.float32, np.uint8, np.uint16):
        # 8-bit samples to float32, uint8 or uint16 take the fused path: float32
        # weights and sums (cyconv.image's documented contract: an integer
        # output may be one level off within float32's bound of a tie), so
        # float32 arithmetic's bound
        _, bound32 = scipy_filter(img, k, mode="same", boundary=boundary, fillvalue=0,
                                  correlate=False, dtype=np.float32)
        bound = bound + (bound32[:, :, 0] if img.ndim == 2 else bound32)
    if info is None:   # a floating out_dtype: and the cast's rounding
        bound = bound + np.abs(expected) * np.finfo(np.float32).eps
    else:              # rounded to the nearest integer, then clipped
        expected = np.clip(expected, info.min, info.max)
        bound = bound + 0.5
    assert_within(got, expected, bound)


@SETTINGS
@given(img=images(), mode=st.sampled_from(["L", "RGB", "RGBA", "I;16", "F"]),
       k=random_kernels(), boundary=st.sampled_from(BOUNDARIES), correlate=st.booleans())
def test_pil_image_is_the_array_result_rounded(img, mode, k, boundary, correlate):
    """A Pillow image gives what its pixel array gives, rounded to its mode's
    depth (alpha carried over unchanged in 'same' mode)."""
    Image = pytest.importorskip("PIL.Image")
    dtype = {"L": np.uint8, "RGB": np.uint8, "RGBA": np.uint8, "I;16": np.uint16,
             "F": np.float32}[mode]
    bands = {"RGB": 3, "RGBA": 4}.get(mode, 1)
    data = np.resize(planes_of(img), img.shape[:2] + (bands,))
    data = np.clip(data, 0, 255 if dtype == np.uint8 else 65535).astype(dtype)
    pil = Image.fromarray(data if bands > 1 else data[:, :, 0])
    assert pil.mode == mode
    got = np.asarray(filter_image(pil, k, boundary=boundary, correlate=correlate))
    colour = data[:, :, :3] if mode == "RGBA" else data
    expected = filter_image(colour if bands > 1 else colour[:, :, 0], k, boundary=boundary,
                            correlate=correlate, out_dtype=dtype)
    if mode == "RGBA":
        np.testing.assert_array_equal(got[:, :, :3], expected)
        np.testing.assert_array_equal(got[:, :, 3], data[:, :, 3])
    else:
        np.testing.assert_array_equal(got, expected)


@SETTINGS
@given(img=images(dtypes=(np.float64, np.float32, np.uint8)),
       ks=st.lists(random_kernels(), min_size=1, max_size=4))
def test_feature_maps_are_filter_image_per_kernel_and_channel(img, ks):
    maps = feature_maps(img, ks)
    # float32 maps for float32 and (the fused path) 8/16-bit inputs, else float64
    dtype = np.float32 if img.dtype in (np.float32, np.uint8) else np.float64
    H, W = img.shape[:2]
    C = planes_of(img).shape[2]
    assert maps.shape == (len(ks), C, H, W) and maps.dtype == dtype
    for i, k in enumerate(ks):
        expected, bound = scipy_filter(img, k, mode="same", boundary="symm", fillvalue=0,
                                       correlate=False, dtype=dtype)
        # both cyconv and the reference are within `bound` of the exact sums
        assert_within(maps[i].transpose(1, 2, 0), expected, 2 * bound)


@SETTINGS
@given(img=images(dtypes=(np.float64, np.uint8)), reduce=st.sampled_from(["max", "mean"]),
       scale=st.sampled_from([1.0, 0.25, 3.0]))
def test_sobel_edges_is_the_gradient_magnitude(img, reduce, scale):
    got = sobel_edges(img, reduce=reduce, scale=scale)
    opts = dict(mode="same", boundary="symm", fillvalue=0, correlate=True, dtype=np.float64)
    gx, bx = scipy_filter(img, kernels.sobel_x(), **opts)
    gy, by = scipy_filter(img, kernels.sobel_y(), **opts)
    mag = np.hypot(gx, gy)
    expected = mag.max(axis=-1) if reduce == "max" else mag.mean(axis=-1)
    # hypot, max and mean are 1-Lipschitz: the inputs' bounds carry over
    bound = ((bx + by).max(axis=-1) + 4 * np.finfo(np.float64).eps * mag.max(axis=-1)) * scale
    assert got.shape == img.shape[:2]
    assert_within(got, expected * scale, bound)

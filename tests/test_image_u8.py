"""The fused 8/16-bit path of cyconv.image against the float64 reference.

Reference: scipy.signal.convolve2d / correlate2d per channel in float64,
rounded half to even and clipped. The fused path computes in float32: it
must match exactly for integer kernels (all sums exact), and elsewhere may
differ by one level only where the float64 value lies within float32
rounding of a tie (the bound below is derived here, independently of
cyconv's own).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from cyconv import _core, _parallel
from cyconv import image as cimage
from cyconv import kernels as K

RNG = np.random.default_rng(2026)
U = 2.0 ** -24  # float32 unit roundoff

KERNELS = {
    "sharpen": K.sharpen(),                      # integer, odd
    "sobel_x": K.sobel_x(),                      # integer, rank 1
    "ones4": np.ones((4, 4)),                    # integer box sum, even
    "box5": K.box(5),                            # floating, rank 1
    "gauss7": K.gaussian(7, 1.5),                # floating, rank 1
    "gauss4x6": K.gaussian((4, 6), (1.0, 2.0)),  # floating, rank 1, even
    "rand3": RNG.standard_normal((3, 3)),        # floating, full rank
    "rand2x5": RNG.standard_normal((2, 5)),      # floating, even rows
    "row1x4": RNG.random((1, 4)),
    "col5x1": RNG.random((5, 1)),
    "zeros2x3": np.zeros((2, 3)),                # no taps at all
}


def reference(planes, k, *, mode="same", boundary="symm", fillvalue=0, correlate=False):
    """float64 result per channel, H' x W' x C."""
    fn = scipy.signal.correlate2d if correlate else scipy.signal.convolve2d
    return np.stack([fn(planes[..., c].astype(np.float64), k, mode, boundary, fillvalue)
                     for c in range(planes.shape[-1])], axis=-1)


def rounded(ref, dtype):
    info = np.iinfo(dtype)
    return np.clip(np.rint(ref), info.min, info.max).astype(dtype)


def float32_bound(k, peak):
    """|float32 result - float64 result| for samples (and fill) of size <= peak:
    weights rounded to float32, at most M*N + M + N + 2 rounded steps (direct
    or separable), plus a rank-1 factorisation residual of <= 1e-9 max|k|."""
    steps = k.size + sum(k.shape) + 4
    return (steps * U / (1 - steps * U)) * np.abs(k).sum() * peak \
        + 1e-9 * np.abs(k).max() * k.size * peak


def is_integer_exact(k, peak):
    return np.array_equal(k, np.rint(k)) and np.abs(k).sum() * peak < 2 ** 24


def check(got, ref, k, dtype, peak):
    """Exact for integer kernels; else within one level, and only near ties."""
    want = rounded(ref, dtype)
    assert got.dtype == want.dtype and got.shape == want.shape
    if is_integer_exact(k, peak):
        np.testing.assert_array_equal(got, want)
        return
    diff = got.astype(np.int64) - want.astype(np.int64)
    assert np.abs(diff).max(initial=0) <= 1
    off = diff != 0
    if off.any():
        near_tie = np.abs(ref[off] - (np.floor(ref[off]) + 0.5))
        assert near_tie.max() <= float32_bound(k, peak), \
            f"differences away from ties: {near_tie.max()}"


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts calls of the fused core driver (proves which path ran)."""
    calls = []
    real = _core.filter_pixels

    def spy(*args):
        calls.append(args[1].dtype)
        return real(*args)

    monkeypatch.setattr(_core, "filter_pixels", spy)
    return calls


# --- arrays: every kernel x mode x boundary x orientation x layout ------------------------

def _layouts(a):
    """The same H x W x C image in several memory layouts."""
    planar = np.ascontiguousarray(np.moveaxis(a, -1, 0))
    big = np.zeros((a.shape[0] * 2, a.shape[1] * 3, a.shape[2] + 1), a.dtype)
    big[::2, ::3, :a.shape[2]] = a
    return {
        "interleaved": a,
        "planar": np.moveaxis(planar, 0, -1),
        "strided": big[::2, ::3, :a.shape[2]],
        "reversed": np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1],
        "fortran": np.asfortranarray(a),
    }


@pytest.mark.parametrize("kname", list(KERNELS))
@pytest.mark.parametrize("mode", ["same", "full", "valid"])
@pytest.mark.parametrize("boundary", ["symm", "fill", "wrap"])
@pytest.mark.parametrize("correlate", [False, True])
def test_uint8_arrays(kname, mode, boundary, correlate, fused_calls):
    k = KERNELS[kname]
    a = RNG.integers(0, 256, (11, 14, 3), dtype=np.uint8)
    fill = 37 if boundary == "fill" else 0
    ref = reference(a, k, mode=mode, boundary=boundary, fillvalue=fill, correlate=correlate)
    for name, view in _layouts(a).items():
        got = cimage.filter_image(view, k, mode=mode, boundary=boundary, fillvalue=fill,
                                  correlate=correlate, out_dtype=np.uint8, workers=1)
        check(got, ref, k, np.uint8, 255)
    assert len(fused_calls) == 5


@pytest.mark.parametrize("kname", ["sharpen", "gauss7", "rand2x5", "ones4"])
@pytest.mark.parametrize("boundary", ["symm", "fill", "wrap"])
@pytest.mark.parametrize("channels", [None, 1, 2, 4])
def test_uint16_and_channel_counts(kname, boundary, channels, fused_calls):
    k = KERNELS[kname]
    shape = (9, 12) if channels is None else (9, 12, channels)
    a = RNG.integers(0, 65536, shape, dtype=np.uint16)
    planes = a if channels else a[..., None]
    ref = reference(planes, k, boundary=boundary, fillvalue=1000)
    got = cimage.filter_image(a, k, boundary=boundary, fillvalue=1000, out_dtype=np.uint16)
    check(got if channels else got[..., None], ref, k, np.uint16, 65535)
    # and the cross-depth outputs: uint8 samples to uint16, uint16 to uint8
    got8 = cimage.filter_image(a, k, boundary=boundary, fillvalue=1000, out_dtype=np.uint8)
    check(got8 if channels else got8[..., None], ref, k, np.uint8, 65535)
    small = (a >> 8).astype(np.uint8)
    ref_small = reference(small if channels else small[..., None], k, boundary=boundary,
                          fillvalue=1000)
    got16 = cimage.filter_image(small, k, boundary=boundary, fillvalue=1000,
                                out_dtype=np.uint16)
    check(got16 if channels else got16[..., None], ref_small, k, np.uint16, 1000)
    assert len(fused_calls) == 3


def test_other_dtypes_keep_the_float64_path(fused_calls):
    a = RNG.integers(0, 256, (8, 9, 3), dtype=np.uint8)
    k = KERNELS["rand3"]
    # float output, signed or big-endian input, or an integer output other than uint8/16
    np.testing.assert_allclose(cimage.filter_image(a, k), reference(a, k), atol=1e-12)
    np.testing.assert_array_equal(cimage.filter_image(a.astype(np.int16), k, out_dtype=np.uint8),
                                  rounded(reference(a, k), np.uint8))
    np.testing.assert_array_equal(cimage.filter_image(a.astype(">u2"), k, out_dtype=np.uint8),
                                  rounded(reference(a, k), np.uint8))
    np.testing.assert_array_equal(cimage.filter_image(a, k, out_dtype=np.int16),
                                  rounded(reference(a, k), np.int16))
    assert fused_calls == []


def test_large_kernels_fall_back_to_float64(fused_calls):
    """Where float32 could be off by half a level, the float64 path runs: exact."""
    a = RNG.integers(0, 65536, (10, 12, 1), dtype=np.uint16)
    k = RNG.standard_normal((9, 9)) * 300.0
    assert float32_bound(k, 65535) > 0.5
    got = cimage.filter_image(a, k, out_dtype=np.uint16)
    np.testing.assert_array_equal(got, rounded(reference(a, k), np.uint16))
    # a non-finite kernel, too
    kn = np.array([[1.0, np.inf]])
    np.testing.assert_array_equal(cimage.filter_image(a, kn, out_dtype=np.uint8),
                                  rounded(np.nan_to_num(reference(a, kn), nan=0.0,
                                                        posinf=255), np.uint8))
    assert fused_calls == []


def test_integer_kernels_are_exact_below_2_pow_24():
    """Integer weights with sum |k| * 65535 < 2**24: every partial sum is an
    integer below 2**24, exact in float32; above that, the float32 rule applies."""
    b = RNG.integers(0, 65536, (20, 23), dtype=np.uint16)
    exact = np.full((15, 17), 1.0) - np.eye(15, 17) * 2   # 255 * 65535 < 2**24, not rank 1
    assert is_integer_exact(exact, 65535)
    ref = reference(b[..., None], exact / 16)[..., 0]      # scaled into the output range
    got = cimage.filter_image(b, exact / 16, out_dtype=np.uint16)
    check(got[..., None], ref[..., None], exact / 16, np.uint16, 65535)
    ref = reference(b[..., None], exact)[..., 0]
    np.testing.assert_array_equal(cimage.filter_image(b, exact, out_dtype=np.uint16),
                                  rounded(ref, np.uint16))
    over = np.full((17, 16), 1.0)                          # 272 * 65535 > 2**24
    assert not is_integer_exact(over, 65535)
    check(cimage.filter_image(b, over / 300, out_dtype=np.uint16)[..., None],
          reference(b[..., None], over / 300), over / 300, np.uint16, 65535)


# --- Pillow images --------------------------------------------------------------------------

Image = pytest.importorskip("PIL.Image")


def _pil(mode, h=13, w=16):
    if mode == "I;16":
        return Image.frombytes(mode, (w, h), RNG.integers(0, 65536, (h, w)).astype("<u2")
                               .tobytes())
    if mode == "I":
        return Image.frombytes(mode, (w, h), RNG.integers(-2 ** 20, 2 ** 20, (h, w))
                               .astype("=i4").tobytes())
    if mode == "F":
        return Image.frombytes(mode, (w, h), (RNG.standard_normal((h, w)) * 100)
                               .astype("=f4").tobytes())
    bands = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, (w, h), RNG.integers(0, 256, (h, w, bands), np.uint8)
                           .tobytes())


def _carried_alpha(alpha, k, mode, boundary, correlate):
    """Alpha of the input pixel under the kernel's centre (0 outside for 'fill')."""
    m, n = k.shape
    delta = np.zeros((m, n))
    delta[(m - 1) // 2, (n - 1) // 2] = 1.0
    fn = scipy.signal.correlate2d if correlate else scipy.signal.convolve2d
    return np.rint(fn(alpha.astype(np.float64), delta, mode, boundary, 0)).astype(np.uint8)


FAST_MODES = {"L": np.uint8, "LA": np.uint8, "RGB": np.uint8, "RGBA": np.uint8,
              "CMYK": np.uint8, "I;16": np.uint16}


@pytest.mark.parametrize("pmode", ["L", "LA", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
@pytest.mark.parametrize("kname", ["sharpen", "gauss4x6", "rand3", "box5"])
@pytest.mark.parametrize("mode,boundary", [("same", "symm"), ("same", "fill"), ("full", "wrap"),
                                           ("valid", "symm"), ("full", "fill")])
@pytest.mark.parametrize("correlate", [False, True])
def test_pil_modes(pmode, kname, mode, boundary, correlate, fused_calls):
    im = _pil(pmode)
    k = KERNELS[kname] * (100 if pmode in ("I", "F") else 1)
    data = np.asarray(im)
    planes = data if data.ndim == 3 else data[..., None]
    colour = {"LA": 1, "RGBA": 3}.get(pmode, planes.shape[2])
    fill = 3 if boundary == "fill" else 0
    out = cimage.filter_image(im, k, mode=mode, boundary=boundary, fillvalue=fill,
                              correlate=correlate)
    assert isinstance(out, Image.Image) and out.mode == pmode
    got = np.asarray(out)
    got = got if got.ndim == 3 else got[..., None]
    ref = reference(planes[..., :colour], k, mode=mode, boundary=boundary, fillvalue=fill,
                    correlate=correlate)
    if pmode in FAST_MODES:
        dtype = FAST_MODES[pmode]
        check(got[..., :colour], ref, k, dtype, np.iinfo(dtype).max)
        for c in range(colour, planes.shape[2]):
            np.testing.assert_array_equal(
                got[..., c], _carried_alpha(planes[..., c], k, mode, boundary, correlate))
        assert len(fused_calls) == 1
    elif pmode == "I":
        np.testing.assert_array_equal(got, rounded(ref, np.int32))
        assert fused_calls == []
    else:
        np.testing.assert_allclose(got, ref.astype(np.float32), rtol=1e-5, atol=1e-2)
        assert fused_calls == []
    np.testing.assert_array_equal(np.asarray(im), data)  # the input is untouched


def test_pil_matches_array_path():
    im = _pil("RGB", 40, 50)
    for k in ("gaussian:7,1.5", "box:5", "sharpen", "emboss"):
        np.testing.assert_array_equal(
            np.asarray(cimage.filter_image(im, k)),
            cimage.filter_image(np.asarray(im), k, out_dtype=np.uint8))


# --- threads, chunking, levels --------------------------------------------------------------

@pytest.mark.parametrize("kname", ["sharpen", "gauss7", "rand2x5"])
def test_identical_for_any_workers_and_chunking(kname, monkeypatch):
    a = RNG.integers(0, 256, (150, 61, 3), dtype=np.uint8)
    k = KERNELS[kname]
    one = cimage.filter_image(a, k, out_dtype=np.uint8, workers=1)
    planar = np.moveaxis(np.ascontiguousarray(np.moveaxis(a, -1, 0)), 0, -1)
    np.testing.assert_array_equal(cimage.filter_image(planar, k, out_dtype=np.uint8), one)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 5000)   # many small row ranges
    monkeypatch.setattr(_parallel, "MIN_WORK_PER_THREAD", 1)
    for workers in (1, 2, 3):
        np.testing.assert_array_equal(
            cimage.filter_image(a, k, out_dtype=np.uint8, workers=workers), one)


LEVEL_SCRIPT = """
import numpy as np, scipy.signal
from cyconv import image as ci, kernels as K, show_config
rng = np.random.default_rng(7)
for dtype in (np.uint8, np.uint16):
    hi = np.iinfo(dtype).max
    a = rng.integers(0, hi + 1, (37, 45, 3), dtype=dtype)
    for k in (K.sharpen(), K.gaussian(7, 1.5), rng.standard_normal((4, 5)), K.box(3)):
        got = ci.filter_image(a, k, out_dtype=dtype)
        ref = np.stack([scipy.signal.convolve2d(a[..., c].astype(float), k, 'same', 'symm')
                        for c in range(3)], -1)
        want = np.clip(np.rint(ref), 0, hi)
        d = np.abs(got.astype(np.int64) - want)
        assert d.max() <= 1, d.max()
        near = np.abs(ref - np.floor(ref) - 0.5)[d > 0]
        assert (near <= 1e-3 * hi / 255).all(), near.max()
        if np.array_equal(k, np.rint(k)):
            assert d.max() == 0
print("ok")
"""


@pytest.mark.parametrize("level", ["baseline", "avx2", "avx512"])
def test_every_kernel_level(level):
    levels = ["baseline", "avx2", "avx512"]
    if levels.index(level) > _core.detect_level():
        pytest.skip(f"this CPU has no {level}")
    env = dict(os.environ, CYCONV_CPU=level)
    res = subprocess.run([sys.executable, "-c", LEVEL_SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


# --- the conversions themselves (rounding, saturation, NaN) ---------------------------------

@pytest.mark.parametrize("out_type", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("strided_out", [False, True])
@pytest.mark.parametrize("weight", [0.5, -0.5, 1.5, 257.0, 300.0, 1e30, -np.inf, np.inf, np.nan,
                                    0.1, 2.5])
def test_round_and_saturate(out_type, strided_out, weight):
    """1x1 kernel `weight` on every uint16 value class: ties go to even, the
    range saturates, NaN becomes 0 (driving the core directly: the public
    path would send such kernels to float64)."""
    x = np.concatenate([np.arange(0, 600), [65534, 65535]]).astype(np.uint16)
    a = np.ascontiguousarray(np.broadcast_to(x, (3, len(x))))[..., None]
    H, W, _ = a.shape
    w32 = np.float32(weight)
    plan = _core.PixelPlan(np.arange(H, dtype=np.int64), np.arange(W, dtype=np.int64), 0, 0.0,
                           np.array([w32], np.float32), 1, 1, False, 0, 0)
    out = np.zeros((H, W, 2), out_type)[..., :1] if strided_out else np.zeros((H, W, 1),
                                                                               out_type)
    scratch = np.empty(plan.scratch_size(1), np.float32)
    _core.filter_pixels(plan, a, out, 1, False, scratch, 0, H)
    with np.errstate(invalid="ignore", over="ignore"):
        exact = a.astype(np.float32) * w32          # one rounding, as the kernel's
    if out_type == np.float32:
        np.testing.assert_array_equal(out, exact)
    else:
        hi = np.iinfo(out_type).max
        want = np.clip(np.rint(np.nan_to_num(exact.astype(np.float64), nan=0.0, posinf=hi,
                                             neginf=0)), 0, hi).astype(out_type)
        np.testing.assert_array_equal(out, want)


# --- feature maps and Sobel -----------------------------------------------------------------

def test_feature_maps_uint8_is_float32():
    a = RNG.integers(0, 256, (21, 19, 3), dtype=np.uint8)
    ks = [K.sobel_x(), K.gaussian(5, 1.0), RNG.standard_normal((4, 4)), K.box(2)]
    maps = cimage.feature_maps(a, ks)
    assert maps.dtype == np.float32 and maps.shape == (4, 3, 21, 19)
    for i, k in enumerate(ks):
        ref = reference(a, k).transpose(2, 0, 1)
        np.testing.assert_allclose(maps[i], ref, rtol=0,
                                   atol=float32_bound(k, 255) + 1e-6 * np.abs(ref).max())
    np.testing.assert_array_equal(maps[0], reference(a, ks[0]).transpose(2, 0, 1))  # exact
    im16 = Image.frombytes("I;16", (19, 21), RNG.integers(0, 65536, (21, 19)).astype("<u2")
                           .tobytes())
    m16 = cimage.feature_maps(im16, ["laplacian"])
    np.testing.assert_array_equal(m16[0, 0], reference(np.asarray(im16)[..., None],
                                                       K.laplacian())[..., 0])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_sobel_edges_fused_equals_float64(dtype, fused_calls):
    hi = np.iinfo(dtype).max
    a = RNG.integers(0, hi + 1, (17, 23, 3), dtype=dtype)
    gx = reference(a, K.sobel_x(), correlate=True)
    gy = reference(a, K.sobel_y(), correlate=True)
    mag = np.hypot(gx, gy)
    np.testing.assert_array_equal(cimage.sobel_edges(a), mag.max(axis=-1))
    np.testing.assert_array_equal(cimage.sobel_edges(a, reduce="mean", out_dtype=dtype),
                                  rounded(mag.mean(axis=-1), dtype))
    assert len(fused_calls) == 4


# --- properties ------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), c=st.integers(1, 4),
       m=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 2 ** 32 - 1),
       depth=st.sampled_from([np.uint8, np.uint16]),
       kind=st.sampled_from(["normal", "integer", "rank1", "positive"]),
       mode=st.sampled_from(["same", "full"]), boundary=st.sampled_from(["symm", "wrap", "fill"]),
       correlate=st.booleans(), planar=st.booleans())
def test_property_against_float64(h, w, c, m, n, seed, depth, kind, mode, boundary, correlate,
                                  planar):
    rng = np.random.default_rng(seed)
    hi = np.iinfo(depth).max
    a = rng.integers(0, hi + 1, (h, w, c), dtype=depth)
    if planar:
        a = np.moveaxis(np.ascontiguousarray(np.moveaxis(a, -1, 0)), 0, -1)
    if kind == "integer":
        k = rng.integers(-4, 5, (m, n)).astype(np.float64)
    elif kind == "rank1":
        k = np.outer(rng.random(m), rng.random(n)) / (m * n)
    elif kind == "positive":
        k = rng.random((m, n))
        k /= k.sum()
    else:
        k = rng.standard_normal((m, n))
    fill = int(rng.integers(0, hi + 1)) if boundary == "fill" else 0
    ref = reference(a, k, mode=mode, boundary=boundary, fillvalue=fill, correlate=correlate)
    got = cimage.filter_image(a, k, mode=mode, boundary=boundary, fillvalue=fill,
                              correlate=correlate, out_dtype=depth)
    check(got, ref, k, depth, hi)


def test_one_level_differences_happen_only_near_ties():
    """A blur of many pixels meets near-ties; every difference found is one
    of them, and the exact ties themselves (x.5 in float64) are resolved to even."""
    a = RNG.integers(0, 256, (300, 300), dtype=np.uint8)
    k = K.gaussian(9, 2.0)
    ref = reference(a[..., None], k)[..., 0]
    got = cimage.filter_image(a, k, out_dtype=np.uint8)
    check(got[..., None], ref[..., None], k, np.uint8, 255)
    # exact ties: box of 2 on values that sum to an odd number
    b = np.array([[1, 2, 3, 4, 5, 250, 251]], np.uint8)
    half = cimage.filter_image(b, np.array([[0.5, 0.5]]), out_dtype=np.uint8, mode="valid")
    np.testing.assert_array_equal(half, np.rint((b[:, 1:] + b[:, :-1].astype(np.int64)) / 2.0).astype(np.uint8))

"""cyconv.ndimage against scipy.ndimage: a parity grid over every function,
mode, origin, dtype (uint8 ... complex128), output= array or dtype, odd and
even weights, 1-D to 4-D inputs and non-contiguous layouts; hypothesis
properties; thread independence; bad arguments.

Integer and bool results must equal SciPy's bit for bit (SciPy truncates a
double; cyconv computes the same double in the same order). Float results
must agree within a bound of the rounding of their sums.
"""

from __future__ import annotations

import functools
import math
import os
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

ndi = pytest.importorskip("scipy.ndimage")

import cyconv.ndimage as cnd  # noqa: E402

MODES = ["reflect", "constant", "nearest", "mirror", "wrap",
         "grid-constant", "grid-mirror", "grid-wrap"]
INT_TYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64"]
REAL_TYPES = ["bool"] + INT_TYPES + ["float32", "float64"]
ALL_TYPES = REAL_TYPES + ["complex64", "complex128"]
MAX_EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "200"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None)


def sample(shape, dtype, seed=0):
    """Values that exercise a dtype: full range for small integers, moderate
    magnitudes otherwise (so sums stay exact in double, as SciPy's do)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) > 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -1000), min(info.max, 1000)
        if dtype.itemsize == 1:
            lo, hi = info.min, info.max
        return rng.integers(lo, hi, shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.normal(size=shape) * 50 + 1j * rng.normal(size=shape) * 50).astype(dtype)
    return (rng.normal(size=shape) * 50).astype(dtype)


def assert_matches(got, ref, scale=None):
    """Same dtype and shape; integers/bool bitwise; floats within rounding."""
    assert got.dtype == ref.dtype, (got.dtype, ref.dtype)
    assert got.shape == ref.shape
    if ref.dtype.kind in "biu":
        np.testing.assert_array_equal(got.view(np.uint8) if ref.dtype == np.bool_ else got,
                                      ref.view(np.uint8) if ref.dtype == np.bool_ else ref)
        return
    real = np.finfo(ref.dtype).eps
    finite = np.abs(ref[np.isfinite(ref)])
    peak = float(finite.max(initial=0)) if scale is None else scale
    np.testing.assert_allclose(got, ref, rtol=256 * real, atol=256 * real * max(peak, 1.0),
                               equal_nan=True)


def both(name, *args, **kwargs):
    """(cyconv result, SciPy result) of the same call; arrays are never shared."""
    copy = lambda v: v.copy() if isinstance(v, np.ndarray) else v  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        warnings.filterwarnings("ignore", "promoting specified output dtype to complex")
        ref = getattr(ndi, name)(*map(copy, args), **{k: copy(v) for k, v in kwargs.items()})
        got = getattr(cnd, name)(*args, **kwargs)
    return got, ref


def peak_bound(x, w):
    """max|input| * sum|weights|: a bound on every term sum."""
    return float(np.abs(x).max(initial=0)) * float(np.abs(np.asarray(w)).sum())


# ------------------------------------------------------------------ correlate / convolve

# (input shape, weights shape, axes)
GEOMETRIES = [
    ((17,), (5,), None),
    ((17,), (4,), None),
    ((13, 16), (3, 3), None),
    ((13, 16), (4, 2), None),
    ((13, 16), (1, 6), None),
    ((13, 16), (7, 1), None),
    ((4, 9, 10), (3, 4), (1, 2)),
    ((4, 9, 10), (3, 2), (0, 2)),
    ((4, 9, 10), (5,), (1,)),
    ((4, 9, 10), (2, 3, 3), None),
    ((2, 3, 5, 6), (3, 3), (2, 3)),
    ((2, 3, 5, 6), (2, 2, 1, 3), None),
    ((3, 2), (5, 7), None),          # weights larger than the image
    ((1, 9), (3, 3), None),          # a size-1 axis
]


@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape,wshape,axes", GEOMETRIES)
def test_correlate_geometry_modes(func, mode, shape, wshape, axes):
    x = sample(shape, np.float64, 1)
    w = sample(wshape, np.float64, 2) / 50
    got, ref = both(func, x, w, mode=mode, cval=1.25, axes=axes)
    assert_matches(got, ref, peak_bound(x, w))


@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("wshape", [(3, 3), (4, 5), (5,)])
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap"])
def test_correlate_dtypes(func, dtype, wshape, mode):
    x = sample((11, 14), dtype, 3)
    axes = (1,) if len(wshape) == 1 else None
    for w in (np.arange(np.prod(wshape)).reshape(wshape) % 3 - 1,     # integer weights
              sample(wshape, np.float64, 4) / 50):                     # fractional weights
        got, ref = both(func, x, w, mode=mode, cval=3, axes=axes)
        assert_matches(got, ref, peak_bound(x, w))


@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("origin", [0, -1, 1, (1, -1), (-2, 0), (0, 1)])
@pytest.mark.parametrize("wshape", [(3, 5), (4, 4), (5, 2)])
def test_correlate_origins(func, origin, wshape):
    x = sample((12, 13), np.float64, 5)
    w = sample(wshape, np.float64, 6)
    try:
        ref = getattr(ndi, func)(x, w, origin=origin)
    except ValueError:
        with pytest.raises(ValueError, match="Invalid origin"):
            getattr(cnd, func)(x, w, origin=origin)
        return
    assert_matches(getattr(cnd, func)(x, w, origin=origin), ref, peak_bound(x, w))


@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("in_type,out_type", [
    ("uint8", "uint8"), ("uint8", "float32"), ("uint8", "int16"), ("int16", "uint8"),
    ("float64", "uint8"), ("float64", "int8"), ("float64", "uint32"), ("float64", "int64"),
    ("float64", "uint64"), ("float64", "bool"), ("float32", "float64"), ("float64", "float32"),
    ("int32", "float32"), ("uint16", "float32"), ("float32", "int32"),
    ("complex64", "complex128"), (">f8", "<f4"), ("<i2", ">f8"), (">u2", ">i4"),
])
@pytest.mark.parametrize("as_array", [False, True])
def test_output_argument(func, in_type, out_type, as_array):
    x = sample((9, 12), in_type, 7)
    if np.dtype(in_type).kind == "f":
        x = x * 7                         # values beyond the output range: wrap like C
    w = sample((3, 4), np.float64, 8) / 10
    if as_array:
        out_c, out_s = np.full(x.shape, 7, out_type), np.full(x.shape, 7, out_type)
        got, ref = getattr(cnd, func)(x, w, out_c), getattr(ndi, func)(x, w, out_s)
        assert got is out_c
    else:
        got, ref = both(func, x, w, output=np.dtype(out_type))
    assert_matches(got, ref, peak_bound(x, w))


def test_integer_output_conversion():
    """Double results stored in integer outputs as SciPy's C cast stores them:
    truncation, and out-of-range values wrapped as x86-64's conversions do.
    (Below -2**63, at or above 2**64, and NaN/inf, a C conversion to a 64-bit
    integer is undefined, and SciPy's own functions disagree there.)"""
    values = np.array([300.7, -1.5, -0.5, 255.9, 256.0, -300.2, 1e10, -1e10, 70000.3, -70000.3,
                       2.0 ** 31 + 5, 2.0 ** 32 + 7, 1e19, -1e18, 2.0 ** 63, np.nan, np.inf,
                       -np.inf])
    for dtype in INT_TYPES + ["bool"]:
        if np.dtype(dtype).itemsize == 8:
            values = values[np.isfinite(values)]
        for name, args in [("correlate1d", ([1.0],)), ("correlate", (np.ones(1),))]:
            got, ref = both(name, values, *args, output=np.dtype(dtype))
            assert_matches(got, ref)


LAYOUTS = {
    "C": lambda a: a,
    "F": np.asfortranarray,
    "strided": lambda a: np.repeat(np.repeat(a, 2, 0), 3, 1)[::2, ::3],
    "negative": lambda a: a[::-1, ::-1].copy()[::-1, ::-1],
    "big-endian": lambda a: a.astype(a.dtype.newbyteorder(">")),
    "read-only": lambda a: np.lib.stride_tricks.as_strided(a, writeable=False),
    "unaligned": lambda a: np.frombuffer(b"\0" + a.tobytes(), a.dtype, offset=1).reshape(a.shape),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64", "complex128"])
def test_layouts(layout, dtype):
    base = sample((14, 11), dtype, 9)
    x = LAYOUTS[layout](base)
    w = sample((3, 4), np.float64, 10) / 10
    for name, args, kwargs in [("correlate", (w,), {}), ("convolve", (w,), {"mode": "mirror"}),
                               ("correlate1d", (w[0],), {"axis": 0}),
                               ("gaussian_filter", (1.5,), {}), ("uniform_filter", (4,), {}),
                               ("sobel", (), {"axis": 0})]:
        before = x.copy()
        got = getattr(cnd, name)(x, *args, **kwargs)
        assert_matches(got, getattr(ndi, name)(base, *args, **kwargs), peak_bound(x, w))
        np.testing.assert_array_equal(x, before)    # the input is never modified


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(1024, 37), (53, 40), (6, 29, 31)])
def test_column_major_planes_give_the_row_major_bits(dtype, shape):
    # Column-major planes are read in place as their transposes (the core
    # keeps the row-major sum order) and the result copied back transposed:
    # the same bits as the C-ordered input, in a C-ordered output. 1024
    # float32 rows are a 4096-byte pitch, where wide kernels take gathered
    # strips instead.
    x = sample(shape, dtype, 31)
    for w in (sample((3, 3), np.float64, 32), sample((5, 2), np.float64, 33),
              sample((7, 6), np.float64, 34)):
        w = w.reshape((1,) * (len(shape) - 2) + w.shape)
        for name, kwargs in [("correlate", {}), ("convolve", {"mode": "wrap"}),
                             ("correlate", {"mode": "constant", "cval": 1.5})]:
            expected = getattr(cnd, name)(x, w, **kwargs)
            for workers in (1, 2):
                got = getattr(cnd, name)(np.asfortranarray(x), w, workers=workers, **kwargs)
                assert got.flags.c_contiguous
                assert np.array_equal(got, expected), (name, kwargs, w.shape, workers)


def _line_aligned_empty(shape, dtype):
    """An empty array starting on a 64-byte line (where streamed stores apply)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    return raw[start:start + nbytes].view(dtype).reshape(shape)


@pytest.mark.parametrize("width", [256, 150])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streamed_results_are_bitwise_the_cached_ones(dtype, width):
    # Results larger than the caches are written with non-temporal stores
    # where whole aligned lines are (width 256: every row starts on a line;
    # 150: rows at other offsets), streamed here whatever their size: the
    # same bits as plain stores, along and down the rows, 2-D and 3-D, one
    # worker or two. (Large enough not to take the small-call path.)
    from cyconv import _core
    x = sample((1400, width), dtype, 31)
    volume = sample((3, 480, width), dtype, 32)
    w = sample((9,), dtype, 33)
    calls = [(name, image, args, kwargs) for image in (x, volume)
             for name, args, kwargs in [("correlate1d", (w,), {"axis": 0}),
                                        ("correlate1d", (w,), {"axis": -1}),
                                        ("convolve1d", (w[:4],), {"axis": 0, "mode": "wrap"}),
                                        ("gaussian_filter", (1.5,), {}),
                                        ("uniform_filter", (5,), {"mode": "nearest"}),
                                        ("sobel", (), {"axis": 0})]
             for kwargs in (dict(kwargs, workers=1), dict(kwargs, workers=2))]

    def run(name, image, args, kwargs):
        out = _line_aligned_empty(image.shape, dtype)
        getattr(cnd, name)(image, *args, output=out, **kwargs)
        return out

    # (and the next input rows prefetched whatever the image's size)
    old = _core.set_stream_min_bytes(0), _core.set_prefetch_min_bytes(0)
    try:
        streamed = [run(*call) for call in calls]
    finally:
        _core.set_stream_min_bytes(old[0])
        _core.set_prefetch_min_bytes(old[1])
    for got, call in zip(streamed, calls):
        assert np.array_equal(got, run(*call)), (call[0], call[1].shape, call[3])


def test_unaligned_output():
    x = sample((13, 17), np.float64, 26)
    w = sample((3, 4), np.float64, 27)
    for dtype in ("float32", "float64", "int32"):
        raw = np.zeros(x.size * np.dtype(dtype).itemsize + 1, np.uint8)
        out = raw[1:].view(dtype).reshape(x.shape)
        assert not out.flags.aligned
        for name, args in [("correlate", (w,)), ("correlate1d", (w[0],)),
                           ("gaussian_filter", (1.0,)), ("uniform_filter", (3,))]:
            got = getattr(cnd, name)(x, *args, output=out)
            assert_matches(got, getattr(ndi, name)(x, *args, output=np.dtype(dtype)),
                           peak_bound(x, w))


def test_in_place_output():
    x = sample((20, 21), np.float64, 11)
    w = sample((3, 3), np.float64, 12)
    ref = ndi.correlate(x, w)
    y = x.copy()
    assert cnd.correlate(y, w, output=y) is y
    assert_matches(y, ref)
    for name, args in [("correlate1d", ([1, 2, 3],)), ("gaussian_filter", (2,)),
                       ("uniform_filter", (5,))]:
        y = x.copy()
        getattr(cnd, name)(y, *args, output=y)
        assert_matches(y, getattr(ndi, name)(x, *args))


# ------------------------------------------------------------------ 1-D filters

SHAPES_1D_TO_4D = [(19,), (8, 13), (5, 6, 7), (3, 4, 5, 6)]


@pytest.mark.parametrize("func", ["correlate1d", "convolve1d"])
@pytest.mark.parametrize("shape", SHAPES_1D_TO_4D)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length", [1, 4, 5, 12])
def test_correlate1d_axes(func, shape, mode, length):
    x = sample(shape, np.float64, 13)
    w = sample((length,), np.float64, 14)
    for axis in range(-1, len(shape)):
        got, ref = both(func, x, w, axis=axis, mode=mode, cval=-2.0, origin=(length - 1) // 2)
        assert_matches(got, ref, peak_bound(x, w))


@pytest.mark.parametrize("func", ["correlate1d", "convolve1d"])
@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("weights", [[1, 2, 1], [-1, 0, 1], [0.25, 0.5, 0.125, 0.3],
                                     [1 / 3, 1 / 3, 1 / 3], [1, 2j, 3]])
def test_correlate1d_dtypes(func, dtype, weights):
    x = sample((6, 9, 10), dtype, 15)
    for axis in range(3):
        got, ref = both(func, x, weights, axis=axis, mode="nearest")
        assert_matches(got, ref, peak_bound(x, weights))


@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("size", [1, 2, 3, 6, 9])
@pytest.mark.parametrize("mode", ["reflect", "constant", "wrap", "mirror"])
def test_uniform_filter1d(dtype, size, mode):
    x = sample((7, 10, 11), dtype, 16)
    for axis in range(3):
        for origin in {0, -(size // 2), (size - 1) // 2}:
            got, ref = both("uniform_filter1d", x, size, axis=axis, mode=mode, cval=2,
                            origin=origin)
            assert_matches(got, ref, peak_bound(x, [1]))


@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("sigma,order", [(0.7, 0), (1.5, 0), (2.0, 1), (1.2, 2), (3.0, 3)])
def test_gaussian_filter1d(dtype, sigma, order):
    x = sample((8, 30), dtype, 17)
    for axis in (0, 1):
        got, ref = both("gaussian_filter1d", x, sigma, axis=axis, order=order, truncate=3.0)
        assert_matches(got, ref, peak_bound(x, [4]))
    got, ref = both("gaussian_filter1d", x, sigma, radius=2)
    assert_matches(got, ref, peak_bound(x, [4]))


# ------------------------------------------------------------------ multi-pass filters

MULTI = [
    ("uniform_filter", (3,), {}),
    ("uniform_filter", ((2, 5, 3, 4)[:0] or 5,), {"origin": 1}),
    ("gaussian_filter", (1.3,), {}),
    ("gaussian_filter", (2.0,), {"order": 1, "truncate": 2.5}),
    ("gaussian_filter", (1.0,), {"radius": 3}),
    ("sobel", (), {"axis": 0}),
    ("sobel", (), {}),
    ("prewitt", (), {"axis": 1}),
    ("laplace", (), {}),
    ("gaussian_laplace", (1.5,), {}),
    ("gaussian_gradient_magnitude", (1.2,), {}),
]


@pytest.mark.parametrize("name,args,kwargs", MULTI, ids=lambda v: str(v)[:20])
@pytest.mark.parametrize("dtype", ALL_TYPES)
@pytest.mark.parametrize("shape", SHAPES_1D_TO_4D)
def test_multipass_filters(name, args, kwargs, dtype, shape):
    if dtype.startswith("complex") and name not in ("uniform_filter",):
        pytest.skip("SciPy supports complex input only for uniform and the correlations")
    if kwargs.get("axis", 0) >= len(shape):
        pytest.skip("no such axis")
    x = sample(shape, dtype, 18)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)   # sqrt of wrapped integers
        got, ref = both(name, x, *args, mode="mirror", **kwargs)
    assert_matches(got, ref, peak_bound(x, [16]))


@pytest.mark.parametrize("name,args", [("uniform_filter", (4,)), ("gaussian_filter", (1.5,)),
                                       ("sobel", ()), ("laplace", ()),
                                       ("gaussian_gradient_magnitude", (1.0,))])
@pytest.mark.parametrize("in_type,out_type", [("uint8", "float32"), ("float64", "uint8"),
                                              ("uint8", "int16"), ("int16", "uint8"),
                                              ("float32", "float64"), ("float64", "float32")])
def test_multipass_output_dtype(name, args, in_type, out_type):
    """Each pass is written into the output and read back, as in SciPy."""
    x = sample((12, 15), in_type, 19)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got, ref = both(name, x, *args, output=np.dtype(out_type))
    assert_matches(got, ref, peak_bound(x, [16]))


def test_per_axis_arguments():
    x = sample((9, 10, 11), np.float64, 20)
    cases = [
        ("gaussian_filter", (x, [1.0, 0.0, 2.0]), {"order": [0, 0, 1], "radius": [2, None, 5],
                                                   "mode": ["wrap", "constant", "mirror"]}),
        ("gaussian_filter", (x, [1.0, 2.0]), {"axes": (2, 0), "order": [1, 2]}),
        ("uniform_filter", (x, [3, 1, 4]), {"origin": [1, 0, -2],
                                            "mode": ["nearest", "reflect", "wrap"]}),
        ("uniform_filter", (x, 3), {"axes": (-1,)}),
        ("sobel", (x, 1), {"mode": ["constant", "wrap", "mirror"]}),
        ("laplace", (x,), {"axes": (0, 2)}),
        ("gaussian_laplace", (x, [1.0, 2.0]), {"axes": (0, 1)}),
        ("gaussian_gradient_magnitude", (x, 1.5), {"axes": (1, 2), "mode": ["wrap", "nearest"]}),
        ("correlate", (x, np.ones((2, 3))), {"axes": (2, 0), "origin": (1, 0)}),
    ]
    for name, args, kwargs in cases:
        got, ref = both(name, *args, **kwargs)
        assert_matches(got, ref, peak_bound(x, [16]))


def test_generic_laplace_and_gradient_magnitude():
    x = sample((10, 12), np.float64, 21)

    def d2(inp, axis, output, mode, cval, scale):
        return cnd.correlate1d(inp, [scale, -2 * scale, scale], axis, output, mode, cval)

    def d2_ref(inp, axis, output, mode, cval, scale):
        return ndi.correlate1d(inp, [scale, -2 * scale, scale], axis, output, mode, cval)

    got = cnd.generic_laplace(x, d2, extra_arguments=(0.5,), mode="nearest")
    ref = ndi.generic_laplace(x, d2_ref, extra_arguments=(0.5,), mode="nearest")
    assert_matches(got, ref)
    got = cnd.generic_gradient_magnitude(x, lambda *a: cnd.sobel(*a[:5]))
    ref = ndi.generic_gradient_magnitude(x, lambda *a: ndi.sobel(*a[:5]))
    assert_matches(got, ref)


def test_empty_and_tiny_inputs():
    for shape in [(0,), (0, 5), (3, 0), (1,), (1, 1)]:
        x = np.ones(shape, np.float32)
        for name, args in [("correlate1d", ([1, 2, 3],)), ("uniform_filter", (3,)),
                           ("gaussian_filter", (1.0,))]:
            got, ref = both(name, x, *args)
            assert_matches(got, ref)
        got, ref = both("correlate", x, np.ones((2,) * len(shape)))
        assert_matches(got, ref)


def test_nan_under_zero_weights_does_not_spread():
    """SciPy's N-d correlation skips zero weights (|w| <= DBL_EPSILON)."""
    x = sample((8, 9), np.float64, 22)
    x[3, 4] = np.nan
    x[6, 1] = np.inf
    w = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
    for out in (np.float32, np.float64, np.int32):
        got, ref = both("correlate", x, w, output=out)
        assert_matches(got, ref)


# ------------------------------------------------------------------ properties

@st.composite
def filter_cases(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 7)) for _ in range(ndim))
    naxes = draw(st.integers(1, min(ndim, 3)))
    # sorted: SciPy matches weights to sorted axes but origins to the given order
    axes = tuple(sorted(draw(st.permutations(range(ndim)))[:naxes]))
    wshape = tuple(draw(st.integers(1, 6)) for _ in axes)
    origin = tuple(draw(st.integers(-(n // 2), (n - 1) // 2)) for n in wshape)
    return dict(shape=shape, axes=axes, wshape=wshape, origin=origin,
                mode=draw(st.sampled_from(MODES)),
                dtype=draw(st.sampled_from(REAL_TYPES)),
                out=draw(st.sampled_from([None] + REAL_TYPES)),
                seed=draw(st.integers(0, 2 ** 32 - 1)),
                integer_weights=draw(st.booleans()))


@SETTINGS
@given(filter_cases(), st.sampled_from(["correlate", "convolve"]))
def test_property_correlate(case, func):
    x = sample(case["shape"], case["dtype"], case["seed"])
    rng = np.random.default_rng(case["seed"])
    w = rng.integers(-3, 4, case["wshape"]) if case["integer_weights"] \
        else rng.normal(size=case["wshape"])
    out = None if case["out"] is None else np.dtype(case["out"])
    got, ref = both(func, x, w, output=out, mode=case["mode"], cval=1.5, origin=case["origin"],
                    axes=case["axes"])
    assert_matches(got, ref, peak_bound(x, w))


@SETTINGS
@given(filter_cases(), st.integers(1, 7), st.floats(0.3, 4.0))
def test_property_separable(case, size, sigma):
    x = sample(case["shape"], case["dtype"], case["seed"])
    out = None if case["out"] is None else np.dtype(case["out"])
    axis = case["axes"][0]
    for name, args, kwargs in [
        ("uniform_filter1d", (size,), {"axis": axis, "origin": -(size // 2)}),
        ("uniform_filter", (size,), {"axes": case["axes"]}),
        ("gaussian_filter", (sigma,), {"axes": case["axes"]}),
        ("gaussian_filter1d", (sigma,), {"axis": axis, "order": size % 3}),
        ("sobel", (), {"axis": axis}),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            got, ref = both(name, x, *args, output=out, mode=case["mode"], **kwargs)
        assert_matches(got, ref, peak_bound(x, [16]))


# ------------------------------------------------------------------ integer lines in place

LINE_IN = ["uint8", "int8", "uint16", "int16", "bool"]
LINE_OUT = ["uint8", "int8", "uint16", "int16", "int32"]
LINE_WEIGHTS = [
    [0.25, 0.5, 0.25],                     # symmetric, sums within an 8-bit range
    [-1.5, 0.0, 1.5],                      # antisymmetric: negative sums
    [0.3, -0.7, 1.9, 0.4],                 # neither (even length)
    [120.5, -3.25, 77.0, 0.125, 9.0],      # sums far out of 8- and 16-bit ranges
]


def _count_line_passes(monkeypatch) -> list:
    """Record each pass of the full path that runs on the line kernels (no
    call is repeated by kept filters, which call the kernels directly)."""
    runs = []
    original = cnd._pass_exact_lines

    def spy(*args, **kwargs):
        runs.append(args[3])    # the axis
        return original(*args, **kwargs)

    monkeypatch.setattr(cnd, "_pass_exact_lines", spy)
    monkeypatch.setattr(cnd, "_run_kept", lambda *args: None)
    return runs


@pytest.mark.parametrize("in_type", LINE_IN)
@pytest.mark.parametrize("out_type", LINE_OUT)
@pytest.mark.parametrize("wraps", [True, False])
def test_integer_lines_are_scipys_bits(in_type, out_type, wraps, monkeypatch):
    """8- and 16-bit images into 8- to 32-bit outputs read and written in
    place, a line at a time through double scratch (correlations and running
    means): SciPy's bits for every
    axis, mode, origin, fill, weight shape and layout (pieces and lane blocks
    made small so that every call has several, with short last ones).
    wraps=False is the route of CPUs whose casts do not wrap like x86's: only
    sums within the output's range go on the line kernels."""
    monkeypatch.setattr(cnd, "_CASTS_WRAP_LIKE_X86", wraps)
    monkeypatch.setattr(cnd, "_LINE_PIECE", 7)
    monkeypatch.setattr(cnd, "_LINE_LANES", 24)
    monkeypatch.setattr(cnd, "_line_plans", {})
    runs = _count_line_passes(monkeypatch)
    x = sample((23, 53), in_type, 31)
    v = sample((3, 17, 30), in_type, 32)
    out = np.dtype(out_type)
    cases = [(x, 0, "reflect", 0.0, 0), (x, 1, "constant", -3.7, 0), (x, 1, "wrap", 0.0, -1),
             (x.T, 0, "nearest", 0.0, 1), (x[::2, ::-3], 1, "mirror", 0.0, 0),
             (x[:, ::2], 0, "constant", 300.2, 0),
             (v, 1, "reflect", 0.0, 0), (v, 2, "grid-wrap", 0.0, 0), (v, 0, "constant", 5.5, 0)]
    for weights in LINE_WEIGHTS:
        for image, axis, mode, cval, origin in cases:
            origin = min(origin, (len(weights) - 1) // 2)
            got, ref = both("correlate1d", image, weights, axis=axis, output=out, mode=mode,
                            cval=cval, origin=origin)
            assert_matches(got, ref)
            # into a strided output, and in place where the types agree
            target = np.zeros(image.shape[::-1], out).T
            cnd.correlate1d(image, weights, axis, target, mode, cval, origin)
            assert_matches(target, ref)
            if out == image.dtype:
                inplace = image.copy()
                cnd.correlate1d(inplace, weights, axis, inplace, mode, cval, origin)
                assert_matches(inplace, ref)
    for size in (1, 2, 5):
        for image, axis, mode, cval, origin in cases:
            origin = max(min(origin, (size - 1) // 2), -(size // 2))
            got, ref = both("uniform_filter1d", image, size, axis=axis, output=out, mode=mode,
                            cval=cval, origin=origin)
            assert_matches(got, ref)
    source = np.iinfo(np.uint8 if in_type == "bool" else in_type)
    holds = np.iinfo(out).min <= source.min and source.max <= np.iinfo(out).max
    if wraps:
        assert set(runs) == {0, 1, 2}
    elif holds:     # the first weights' averages stay in range, on every axis
        assert set(runs) == {0, 1, 2}


def test_integer_lines_hold_only_sums_below_2_to_the_30(monkeypatch):
    """Sums of 2**30 or more go back to the padded double route (the line
    kernels truncate through int32); both routes give SciPy's bits."""
    runs = _count_line_passes(monkeypatch)
    x = np.array([[-32768, 32767, -32768, 1, 5, -32768, 0]], np.int16)
    for weights, on_lines in [([16383.5, 16383.5], True), ([16384.0, 16384.5], False),
                              ([np.nan, 1.0], False)]:
        del runs[:]
        got, ref = both("correlate1d", x, weights, output=np.int32, mode="constant",
                        cval=-32768)
        assert_matches(got, ref)
        assert bool(runs) == on_lines
    del runs[:]     # the fill counts: 40000 * 32767 > 2**30
    got, ref = both("correlate1d", x, [16383.5, 16383.5], output=np.int32, mode="constant",
                    cval=40000.0)
    assert_matches(got, ref)
    assert not runs


@pytest.mark.parametrize("dtype", ["int16", "uint16", "int8", "uint8"])
def test_integer_running_means_are_scipys_for_every_size(dtype, monkeypatch):
    """Running means into integer outputs on the line kernels: SciPy's bits
    for sizes 1-70, sums at and beside multiples of the size, the type's
    extremes, negative sums, integer and non-integer fills, along and down
    the rows."""
    runs = _count_line_passes(monkeypatch)
    info = np.iinfo(dtype)
    rng = np.random.default_rng(36)
    x = rng.integers(info.min, info.max, (8, 157), endpoint=True).astype(dtype)
    x[1] = info.max
    x[2] = info.min
    x[3, ::2], x[3, 1::2] = info.max, info.max - 1
    x[4, ::2], x[4, 1::2] = info.min, info.max
    x[5] = rng.integers(max(info.min, -3), 4, 157)
    x[6, :] = rng.integers(0, 2, 157) + (info.min // 2)
    for size in range(1, 71):
        for mode, cval in [("reflect", 0.0), ("constant", -7.0), ("constant", 2.5),
                           ("wrap", 0.0)]:
            for axis in (0, 1):
                got, ref = both("uniform_filter1d", x, size, axis=axis, mode=mode, cval=cval)
                assert_matches(got, ref)
    assert set(runs) == {0, 1}


@SETTINGS
@example(size=49, quotient=1, step=0, seed=0)       # 49 * fl(1/49) < 1
@example(size=1602597, quotient=1007049128, step=0, seed=0)
@example(size=cnd._QUOTIENT_SIZES - 1, quotient=-(2**30 - 1), step=-1, seed=0)
@given(size=st.integers(1, cnd._QUOTIENT_SIZES - 1), quotient=st.integers(-2**30 + 1, 2**30 - 1),
       step=st.sampled_from([-1, 0, 1, None]), seed=st.integers(0, 2**32 - 1))
def test_reciprocal_above_truncates_like_scipys_division(size, quotient, step, seed):
    """trunc(s * _reciprocal_above(size)) is trunc(s / size) for every
    integer sum s whose mean is below 2**30 in magnitude: at and beside
    multiples of the size (the hard cases) and anywhere between."""
    if step is None:
        s = int(np.random.default_rng(seed).integers(-(2**30 - 1) * size, (2**30 - 1) * size))
    else:
        s = quotient * size + step
    if abs(s) >= 2**30 * size:
        return
    exact = abs(s) // size * (1 if s >= 0 else -1)
    assert math.trunc(float(s) / size) == exact          # SciPy's division
    assert math.trunc(float(s) * cnd._reciprocal_above(size)) == exact


def test_running_means_near_the_bounds(monkeypatch):
    """Means near 2**30 (a large integer fill into int32), window sums on
    either side of 2**31 (int32 prefix sums or double running sums), rows
    whose prefix sums pass 2**32, and sizes beside _QUOTIENT_SIZES, where the
    line kernels stop taking running means: the same bits as SciPy on every
    side."""
    runs = _count_line_passes(monkeypatch)
    x = np.array([[0, 65535, 1, 65534, 7], [65535] * 5], np.uint16)
    for cval in (2.0**30 - 1, -(2.0**30 - 1), 2.0**30 - 65536, 3.0):
        for size in (2, 3, 641, 65537):
            for axis in (0, 1):
                got, ref = both("uniform_filter1d", x, size, axis=axis, output=np.int32,
                                mode="constant", cval=cval)
                assert_matches(got, ref)
    assert len(runs) == 32
    # Window sums below 2**31 run in int32 (prefix sums mod 2**32); larger
    # ones, or a fractional fill, sum in double in SciPy's order.
    for size, cval, kernel in [(2, 2.0**30 - 1, "window_means"), (3, 2.0**30 - 1, "uniform"),
                               (641, 3.0, "window_means"), (65537, 3.0, "uniform"),
                               (3, 2.5, "uniform")]:
        plan = cnd._line_plan(x.dtype, np.dtype(np.int32), None, size, 5, size // 2,
                              "constant", cval)
        assert f"ndimage_{kernel}_rows" in plan.rows.__name__
    long_rows = np.random.default_rng(37).integers(65000, 65536, (3, 70001)).astype(np.uint16)
    for size in (1, 4, 9):          # the prefix sums pass 2**32 after 65537 samples
        got, ref = both("uniform_filter1d", long_rows, size, axis=1, mode="nearest")
        assert_matches(got, ref)
    runs.clear()
    for size in (cnd._QUOTIENT_SIZES - 1, cnd._QUOTIENT_SIZES):
        got, ref = both("uniform_filter1d", x, size, axis=1, output=np.int32,
                        mode="constant", cval=-12345.0)
        assert_matches(got, ref)
    assert runs == [1]          # the size below the bound only


@pytest.mark.parametrize("in_type", LINE_IN)
@pytest.mark.parametrize("out_type", LINE_OUT)
def test_integer_correlations_write_their_lines_in_place(in_type, out_type, monkeypatch):
    """N-d correlations into 8/16/32-bit outputs truncate each line into
    `out` in the core where every sum is below 2**30 (2-D images padded by
    the core too), else through a double result: SciPy's bits either way,
    for 1-3 dimensions, strided and transposed outputs (a transposed 3-D
    one is not a stack of lines), in place, and a fill that breaks the
    bound."""
    taken = []      # whether each of the two in-place routes served
    plane, lines = cnd._exact_plane, cnd._correlate_lines_into

    def spy_plane(*args):
        plan = plane(*args)
        taken.append(plan is not None)
        return plan

    def spy_lines(*args):
        taken.append(lines(*args))
        return taken[-1]

    monkeypatch.setattr(cnd, "_exact_plane", spy_plane)
    monkeypatch.setattr(cnd, "_correlate_lines_into", spy_lines)
    rng = np.random.default_rng(38)
    weights = {1: rng.standard_normal(4) * 3, 2: rng.standard_normal((3, 4)) * 3,
               3: rng.standard_normal((2, 3, 3)) * 3}
    for shape in [(23,), (9, 17), (4, 6, 11)]:
        image = sample(shape, in_type, 39)
        w = weights[len(shape)]
        for mode, cval in [("reflect", 0.0), ("constant", -3.5), ("constant", 2.0**29)]:
            got, ref = both("correlate", image, w, output=np.dtype(out_type), mode=mode,
                            cval=cval)
            assert_matches(got, ref)
            assert any(taken) == (cval < 2.0**29)
            taken.clear()
            strided = np.zeros(shape[:-1] + (2 * shape[-1],), out_type)[..., ::2]
            cnd.correlate(image, w, strided, mode=mode, cval=cval)
            assert_matches(strided, ref)
            taken.clear()
        if len(shape) == 3:
            transposed = np.zeros(shape[::-1], out_type).T
            cnd.convolve(image, w, transposed)
            assert_matches(transposed, ndi.convolve(image, w, np.dtype(out_type)))
            assert not any(taken)
        if in_type == out_type:
            inplace = image.copy()
            cnd.correlate(inplace, w, inplace)
            assert_matches(inplace, ndi.correlate(image, w))


def test_unaligned_16_bit_lines_go_the_padded_way(monkeypatch):
    """A 16-bit image or output off its alignment is not handed to the line
    kernels (C pointers of its type); the result is SciPy's either way."""
    runs = _count_line_passes(monkeypatch)
    a = sample((19, 41), "int16", 35)

    def unaligned(v):
        return np.frombuffer(bytearray(b"\0" + v.tobytes()), v.dtype, offset=1).reshape(v.shape)

    for image, out in [(unaligned(a), np.zeros_like(a)), (a, unaligned(np.zeros_like(a))),
                       (a, np.zeros_like(a))]:
        for axis in (0, 1):
            ref = ndi.correlate1d(a, [0.2, -0.5, 0.3], axis)
            cnd.correlate1d(image, [0.2, -0.5, 0.3], axis, out)
            assert_matches(out, ref)
    assert runs == [0, 1]      # the aligned pair only


@pytest.mark.parametrize("name,args,kwargs", [
    ("gaussian_filter", (1.5,), {}), ("gaussian_filter", (3.0,), {"mode": "constant"}),
    ("sobel", (0,), {}), ("sobel", (1,), {"output": np.int16}), ("laplace", (), {}),
    ("prewitt", (1,), {"output": np.int32}), ("gaussian_laplace", (1.0,), {}),
    ("uniform_filter", (3,), {}), ("uniform_filter", (8,), {"mode": "wrap"}),
])
@pytest.mark.parametrize("in_type", ["uint8", "int16", "uint16"])
def test_integer_multipass_filters_on_lines(name, args, kwargs, in_type, monkeypatch):
    """Filters whose passes run on the line kernels, the later passes in place
    in their output, as SciPy's own functions give them; any thread count."""
    runs = _count_line_passes(monkeypatch)
    x = sample((70, 300), in_type, 33)
    v = sample((9, 40, 33), in_type, 34)
    for image in (x, v):
        got, ref = both(name, image, *args, **kwargs)
        assert_matches(got, ref)
        for workers in (2, 3):
            np.testing.assert_array_equal(getattr(cnd, name)(image, *args, workers=workers,
                                                             **kwargs), got)
    assert runs


# ------------------------------------------------------------------ threads

@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_workers_bitwise_identical(dtype):
    x = sample((300, 257), dtype, 23)
    v = sample((40, 33, 35), dtype, 24)
    w = sample((5, 6), np.float64, 25) / 10
    calls = [
        ("correlate", (x, w), {}), ("convolve", (x, w), {"mode": "constant"}),
        ("correlate", (v, np.ones((3, 2, 3))), {}),
        ("correlate1d", (v, [1, 2, 3, 4]), {"axis": 1}),
        ("gaussian_filter", (v, 2.0), {}), ("uniform_filter", (x, 9), {}),
        ("sobel", (v, 0), {}), ("gaussian_gradient_magnitude", (x, 1.5), {}),
    ]
    for name, args, kwargs in calls:
        results = [getattr(cnd, name)(*args, workers=n, **kwargs) for n in (1, 2, 3, -1)]
        for r in results[1:]:
            np.testing.assert_array_equal(r, results[0])


# ------------------------------------------------------------------ bad arguments

x2 = np.ones((5, 6))
BAD = [
    ("correlate", (x2, np.ones((3, 3))), {"mode": "edge"}, ValueError, "boundary mode"),
    ("correlate", (x2, np.ones((3, 3))), {"mode": ["reflect", "wrap"]}, ValueError,
     "sequence of modes"),
    ("correlate", (x2, np.ones((3, 3))), {"origin": 2}, ValueError, "Invalid origin"),
    ("correlate", (x2, np.ones((3, 3))), {"origin": (0, 0, 0)}, ValueError, "length"),
    ("correlate", (x2, np.ones(3)), {}, ValueError, "must match"),
    ("correlate", (x2, np.ones((3, 3))), {"axes": (0, 0)}, ValueError, "unique"),
    ("correlate", (x2, np.ones((3, 3))), {"axes": (0, 5)}, ValueError, "out of range"),
    ("correlate", (x2, np.ones((3, 3))), {"output": np.ones((5, 5))}, ValueError,
     "output shape"),
    ("correlate", (x2, np.ones((3, 3))), {"output": np.float16}, TypeError, "not supported"),
    ("correlate", (x2.astype(np.float16), np.ones((3, 3))), {}, TypeError, "not supported"),
    ("correlate", (x2.astype(object), np.ones((3, 3))), {}, TypeError, "not supported"),
    ("correlate", (x2, np.ones((3, 3))), {"cval": 1j}, ValueError, "complex-valued cval"),
    ("correlate", (x2, np.ones((3, 3))), {"workers": 0}, ValueError, "workers"),
    ("correlate", (x2, np.ones((3, 3))), {"workers": 1.5}, TypeError, "workers"),
    ("correlate", (x2, np.ones((3, 3)) + 1j), {"output": "f8"}, ValueError, "complex dtype"),
    ("correlate", (x2, np.ones((3, 3))), {"output": np.complex64}, TypeError, "not supported"),
    ("uniform_filter", (x2, 3), {"output": np.zeros((5, 6), complex)}, TypeError,
     "not supported"),
    ("correlate1d", (x2, []), {}, ValueError, "no filter weights"),
    ("correlate1d", (x2, np.ones((2, 2))), {}, ValueError, "no filter weights"),
    ("correlate1d", (x2, [1, 2, 3]), {"origin": -2}, ValueError, "Invalid origin"),
    ("correlate1d", (x2, [1, 2, 3]), {"axis": 2}, ValueError, "axis"),
    ("convolve1d", (x2, [1, 2, 3]), {"mode": "bogus"}, ValueError, "boundary mode"),
    ("uniform_filter1d", (x2, 0), {}, ValueError, "incorrect filter size"),
    ("uniform_filter1d", (x2, 3), {"origin": 2}, ValueError, "invalid origin"),
    ("uniform_filter", (x2, (3, 3, 3)), {}, ValueError, "length"),
    ("gaussian_filter1d", (x2, 1.0), {"radius": -1}, ValueError, "Radius"),
    ("gaussian_filter1d", (x2, 1.0), {"radius": 1.5}, ValueError, "Radius"),
    ("gaussian_filter", (x2, 1.0), {"order": -1}, ValueError, "order"),
    ("gaussian_filter", (x2, [1.0, 2.0, 3.0]), {}, ValueError, "length"),
    ("sobel", (x2,), {"axis": 3}, ValueError, "axis"),
    ("laplace", (x2,), {"mode": ["wrap"]}, ValueError, "length"),
]


@pytest.mark.parametrize("name,args,kwargs,error,match", BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_arguments(name, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(cnd, name)(*args, **kwargs)
    scipy_kwargs = {k: v for k, v in kwargs.items() if k != "workers"}
    if "workers" not in kwargs:
        with pytest.raises(Exception):         # SciPy refuses the same call
            getattr(ndi, name)(*args, **scipy_kwargs)


def test_runtime_error_compatibility():
    """Where SciPy raises RuntimeError, cyconv's error is also a RuntimeError."""
    with pytest.raises(RuntimeError):
        cnd.correlate(x2, np.ones((3, 3)), output=np.ones((2, 2)))
    with pytest.raises(RuntimeError):
        cnd.uniform_filter1d(x2, 0)


def test_float32_weights_are_rounded_once_per_kernel():
    """A float32 filter's weights are rounded with error diffusion once per
    kernel and kept: a kept kernel gives the rounding of a fresh one, read-only,
    and the store stays bounded."""
    from cyconv import ndimage as module
    module._float32_weights.clear()
    rng = np.random.default_rng(8)
    weights = rng.standard_normal(7)
    first = module._kernel_as(weights, np.float32)
    assert not first.flags.writeable
    assert module._kernel_as(weights.copy(), np.float32) is first      # the kept one
    np.testing.assert_array_equal(first, module._diffused_float32(weights))
    # the diffused sum stays within half an ulp of the float64 sum
    assert abs(float(first.astype(np.float64).sum()) - weights.sum()) \
        <= np.spacing(np.float32(np.abs(weights).min()))
    plane = rng.standard_normal((2, 2))
    assert module._kernel_as(plane, np.float32).shape == (2, 2)   # keyed by shape too
    for i in range(300):
        module._kernel_as(np.full(3, float(i)), np.float32)
    assert len(module._float32_weights) <= 256
    img = rng.standard_normal((20, 30)).astype(np.float32)
    once = cnd.correlate1d(img, weights, workers=1)
    np.testing.assert_array_equal(cnd.correlate1d(img, weights, workers=1), once)


def test_gaussian_weights_are_kept_per_sigma_type_order_and_radius():
    from cyconv import ndimage as module
    module._gaussian_kept.clear()
    first = module._gaussian_weights(1.5, 0, 4.0, None)
    assert module._gaussian_weights(1.5, 0, 4.0, None) is first and not first.flags.writeable
    # SciPy's arithmetic follows sigma's type: a float32 sigma is its own entry
    single = module._gaussian_weights(np.float32(1.5), 0, 4.0, None)
    assert single is not first
    np.testing.assert_array_equal(single, module._gaussian_kernel1d(np.float32(1.5), 0, 6)[::-1])
    assert module._gaussian_weights(1.5, 1, 4.0, None) is not first           # order
    assert module._gaussian_weights(1.5, 0, 4.0, 3).shape == (7,)             # radius
    assert module._gaussian_weights(np.array(1.5), 0, 4.0, None).shape == first.shape  # unhashable
    with pytest.raises(ValueError, match="order must be non-negative"):
        module._gaussian_weights(1.5, -1, 4.0, None)
    with pytest.raises(ValueError, match="order must be non-negative"):  # never kept
        module._gaussian_weights(1.5, -1, 4.0, None)
    for i in range(300):
        module._gaussian_weights(1.0 + i / 100, 0, 4.0, None)
    assert len(module._gaussian_kept) <= 256


# ------------------------------------------------------------------ repeated calls (short path)

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("mode, cval, origin", [
    ("reflect", 0.0, 0), ("constant", 2.5, 0), ("constant", 3, -1), ("nearest", 0.0, 1),
    ("mirror", 0.0, 0), ("wrap", 0.0, -1), ("grid-constant", -1.5, 0),
])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_repeated_calls_give_the_full_path_s_bits(dtype, func, mode, cval, origin, layout):
    rng = np.random.default_rng(5)
    base = rng.standard_normal((23, 31)).astype(dtype)
    image = {"C": base, "F": np.asfortranarray(base), "strided": base[::1, ::2]}[layout]
    weights = rng.standard_normal((3, 4)).astype(dtype)
    cnd._short_paths.clear()
    f = getattr(cnd, func)
    first = f(image, weights, mode=mode, cval=cval, origin=origin)
    assert len(cnd._short_paths) == 1            # the call is kept ...
    again = f(image, weights, mode=mode, cval=cval, origin=origin)
    # ... and repeated: the full path (axes given: no short path) has the same bits
    full = f(image, weights, mode=mode, cval=cval, origin=origin, axes=(0, 1))
    assert again.dtype == first.dtype == full.dtype == dtype
    assert again.tobytes() == first.tobytes() == full.tobytes()
    expected = getattr(ndi, func)(image.astype(np.float64), weights.astype(np.float64),
                                  mode=mode, cval=cval, origin=origin)
    np.testing.assert_allclose(again, expected, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize("func", ["correlate", "convolve"])
@pytest.mark.parametrize("layout", ["C", "F", "strided"])
def test_repeated_integer_calls_give_scipy_s_bits(dtype, func, layout):
    """8/16-bit images are kept too (an _ExactPlane): a repeated call gives
    SciPy's bits for every mode, fill and origin; a fill that breaks the
    line kernels' bound is not kept, and an unaligned image with a kept key
    goes the full way."""
    rng = np.random.default_rng(40)
    base = sample((23, 31), dtype, 41)
    image = {"C": base, "F": np.asfortranarray(base), "strided": base[::1, ::2]}[layout]
    weights = rng.standard_normal((3, 4)) * 2
    f, g = getattr(cnd, func), getattr(ndi, func)
    for mode, cval, origin in [("reflect", 0.0, 0), ("constant", -7.0, 1), ("constant", 2.5, -1),
                               ("wrap", 0.0, 0), ("constant", 2.0**29, 0)]:
        cnd._short_paths.clear()
        for _ in range(2):
            got = f(image, weights, mode=mode, cval=cval, origin=origin)
            assert_matches(got, g(image, weights, mode=mode, cval=cval, origin=origin))
        assert len(cnd._short_paths) == (cval != 2.0**29)
    if dtype in ("uint16", "int16"):
        unaligned = np.frombuffer(bytearray(b"\0" + image.tobytes()), dtype, offset=1)
        unaligned = unaligned.reshape(image.shape)
        f(image, weights, mode="wrap")
        assert len(cnd._short_paths) == 1        # the key the unaligned call finds
        assert_matches(f(unaligned, weights, mode="wrap"), g(image, weights, mode="wrap"))


def test_repeated_calls_follow_the_weights_values():
    rng = np.random.default_rng(6)
    image = rng.standard_normal((20, 20))
    weights = rng.standard_normal((3, 3))
    cnd._short_paths.clear()
    for _ in range(3):
        np.testing.assert_allclose(cnd.correlate(image, weights), ndi.correlate(image, weights),
                                   rtol=1e-12, atol=1e-12)
        weights[1, 1] += 1.0                   # changed in place: a new key
    assert len(cnd._short_paths) == 3


def test_repeated_calls_keep_scipy_s_tiny_weight_rule():
    # A tiny weight is skipped by SciPy, so a NaN under it does not spread:
    # such calls are not repeated on the fast path, whose result depends on it.
    weights = np.array([[0.0, 1e-20, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    finite = np.arange(25.0).reshape(5, 5)
    with_nan = finite.copy()
    with_nan[0, 2] = np.nan
    cnd._short_paths.clear()
    for image in (finite, with_nan, finite, with_nan):
        np.testing.assert_array_equal(cnd.correlate(image, weights), ndi.correlate(image, weights))


# ------------------------------------------------------------------ small 1-D passes (kept plans)

def forget_small_passes():
    """Forget the kept small passes and the kept filters that call them."""
    cnd._pass_plans.clear()
    cnd._line_passes.clear()
    cnd._kept_filters.clear()


SMALL_PASS_CALLS = {
    "correlate1d": lambda m, a, mode, cval: m.correlate1d(a, [0.5, -1.0, 2.0, 0.25], axis=-1,
                                                          mode=mode, cval=cval, origin=1),
    "correlate1d axis 0": lambda m, a, mode, cval: m.correlate1d(a, [1.0, 2.0, 1.0], axis=0,
                                                                 mode=mode, cval=cval),
    "convolve1d": lambda m, a, mode, cval: m.convolve1d(a, [3.0, -1.0], axis=1, mode=mode,
                                                        cval=cval),
    "uniform_filter1d": lambda m, a, mode, cval: m.uniform_filter1d(a, 4, axis=0, mode=mode,
                                                                    cval=cval, origin=-1),
    "gaussian_filter1d": lambda m, a, mode, cval: m.gaussian_filter1d(a, 1.5, mode=mode,
                                                                      cval=cval),
    "gaussian_filter": lambda m, a, mode, cval: m.gaussian_filter(a, 0.8, mode=mode, cval=cval),
    "uniform_filter": lambda m, a, mode, cval: m.uniform_filter(a, 3, mode=mode, cval=cval,
                                                                origin=-1),
    "sobel": lambda m, a, mode, cval: m.sobel(a, axis=0, mode=mode, cval=cval),
    "prewitt": lambda m, a, mode, cval: m.prewitt(a, mode=mode, cval=cval),
    "laplace": lambda m, a, mode, cval: m.laplace(a, mode=mode, cval=cval),
    "gaussian_gradient_magnitude": lambda m, a, mode, cval: m.gaussian_gradient_magnitude(
        a, 1.0, mode=mode, cval=cval),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", sorted(SMALL_PASS_CALLS))
@pytest.mark.parametrize("mode, cval", [("reflect", 0.0), ("constant", 2.5), ("nearest", 0),
                                        ("wrap", 0.0), ("grid-constant", -1.5)])
@pytest.mark.parametrize("shape", [(9, 13), (4, 6, 5), (1, 7)])
def test_small_passes_give_the_planned_path_s_bits(dtype, call, mode, cval, shape, monkeypatch):
    # A small float pass runs from a kept plan: the same core calls as the
    # pass planned in full, so the same bits, call after call.
    image = sample(shape, dtype, seed=3)
    f = SMALL_PASS_CALLS[call]
    forget_small_passes()
    first = f(cnd, image, mode, cval)
    assert cnd._pass_plans                        # the passes were kept ...
    again = f(cnd, image, mode, cval)             # ... and run from their plans
    with monkeypatch.context() as m:
        m.setattr(cnd, "_pass_small", lambda *args: False)
        m.setattr(cnd, "_run_kept", lambda *args: None)
        full = f(cnd, image, mode, cval)
    assert again.dtype == first.dtype == full.dtype == dtype
    assert again.tobytes() == first.tobytes() == full.tobytes()
    expected = f(ndi, image.astype(np.float64), mode, cval)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(again, expected, rtol=tol, atol=tol * np.abs(expected).max())


def test_small_pass_plans_are_told_apart():
    # Calls on one shape that differ in one argument each: a plan kept for one
    # must never serve another.
    rng = np.random.default_rng(8)
    image = rng.standard_normal((12, 10))
    calls = [dict(weights=[1.0, 2.0, 1.0], axis=0), dict(weights=[1.0, 2.0, 1.0], axis=1),
             dict(weights=[1.0, 2.0, 1.5], axis=1), dict(weights=[1.0, 2.0, 1.0], axis=1,
                                                         origin=1),
             dict(weights=[1.0, 2.0, 1.0], axis=1, mode="constant", cval=1.0),
             dict(weights=[1.0, 2.0, 1.0], axis=1, mode="constant", cval=2.0),
             dict(weights=[1.0, 2.0, 1.0], axis=1, mode="wrap")]
    forget_small_passes()
    for _ in range(2):
        for kwargs in calls:
            for a in (image, image.astype(np.float32), image[:, :7]):
                np.testing.assert_allclose(cnd.correlate1d(a, **kwargs),
                                           ndi.correlate1d(a.astype(np.float64), **kwargs),
                                           rtol=1e-5, atol=1e-5)
    # one plan per call and dtype; image[:, :7] (not C-contiguous) is planned in full
    assert len(cnd._pass_plans) == 2 * len(calls)


def test_small_pass_plans_follow_the_weights_values():
    # float64 weights changed in place after a call, then the old values in
    # a new array: every call filters with the values it was given.
    rng = np.random.default_rng(9)
    image = rng.standard_normal((10, 11))
    changed = np.array([1.0, 2.0, 1.0])
    forget_small_passes()
    for value in (5.0, -1.0):
        cnd.correlate1d(image, changed)
        changed[1] = value
        for weights in (changed, np.array([1.0, 2.0, 1.0])):
            np.testing.assert_allclose(cnd.correlate1d(image, weights),
                                       ndi.correlate1d(image, weights), rtol=1e-12, atol=1e-12)
    assert len(cnd._pass_plans) == 3


@pytest.mark.parametrize("axis", [0, 1])
def test_small_pass_with_an_overlapping_output(axis):
    # The output a row further on in the same buffer as the input: the kept
    # pass declines and the general path (which copies first) runs.
    rng = np.random.default_rng(10)
    buffer = rng.standard_normal((13, 12))
    x, y = buffer[:12], buffer[1:]
    expected = ndi.correlate1d(x.copy(), [1.0, -2.0, 0.5], axis=axis)
    forget_small_passes()
    cnd.correlate1d(x.copy(), [1.0, -2.0, 0.5], axis=axis)        # keep the plan
    cnd.correlate1d(x, [1.0, -2.0, 0.5], axis=axis, output=y)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_small_passes_from_threads():
    # Threads filtering with one kept plan at once: a plan's scratch serves
    # one call at a time (the others take the general path), so every result
    # has the bits of a call made alone.
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(11)
    images = [rng.standard_normal((40, 30)).astype(np.float32) for _ in range(8)]
    weights = np.array([0.25, 0.5, -1.0, 0.5, 0.25])
    forget_small_passes()
    alone = [cnd.correlate1d(a, weights, mode="wrap").tobytes() for a in images]

    def filter_all(_):
        return [cnd.correlate1d(a, weights, mode="wrap").tobytes()
                for _ in range(200) for a in images]

    with ThreadPoolExecutor(4) as pool:
        for results in pool.map(filter_all, range(4)):
            assert results == alone * 200


# ------------------------------------------------------------------ repeated small filters (kept)

KEPT_CALLS = {
    "correlate1d list": lambda m, a, mode, cval: m.correlate1d(a, [0.5, -1.0, 2.0, 0.25],
                                                               mode=mode, cval=cval, origin=1),
    "correlate1d array axis 0": lambda m, a, mode, cval: m.correlate1d(
        a, np.array([1.0, 2.0, 1.0]), axis=0, mode=mode, cval=cval),
    "convolve1d": lambda m, a, mode, cval: m.convolve1d(a, [3, -1], axis=0, mode=mode,
                                                        cval=cval),
    "uniform_filter1d": lambda m, a, mode, cval: m.uniform_filter1d(a, 4, axis=0, mode=mode,
                                                                    cval=cval, origin=-1),
    "uniform_filter": lambda m, a, mode, cval: m.uniform_filter(a, [3, 5], mode=mode, cval=cval),
    "gaussian_filter1d": lambda m, a, mode, cval: m.gaussian_filter1d(a, 1.5, mode=mode,
                                                                      cval=cval),
    "gaussian_filter": lambda m, a, mode, cval: m.gaussian_filter(a, (0.8, 2), mode=mode,
                                                                  cval=cval, order=(1, 0)),
    "sobel": lambda m, a, mode, cval: m.sobel(a, axis=0, mode=mode, cval=cval),
    "prewitt": lambda m, a, mode, cval: m.prewitt(a, mode=mode, cval=cval),
    "laplace": lambda m, a, mode, cval: m.laplace(a, mode=mode, cval=cval),
}


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize("call", sorted(KEPT_CALLS))
@pytest.mark.parametrize("mode, cval", [("reflect", 0.0), ("constant", 3), ("constant", -2.5),
                                        ("wrap", 0.0), ("mirror", 0)])
def test_kept_filters_give_the_full_path_s_bits(dtype, call, mode, cval, monkeypatch):
    # A small filter repeated from its kept passes: the full path's bits,
    # and (8/16-bit images) SciPy's.
    image = sample((13, 17), dtype, seed=21)
    f = KEPT_CALLS[call]
    forget_small_passes()
    first = f(cnd, image, mode, cval)
    assert any(kept is not None and kept.dtype == image.dtype      # the call is kept ...
               for kept in cnd._kept_filters.values())
    calls = []
    with monkeypatch.context() as m:   # ... and repeated by its kept passes alone
        m.setattr(cnd, "_pass_1d", lambda *args: calls.append(args))
        again = f(cnd, image, mode, cval)
    assert calls == []
    with monkeypatch.context() as m:
        m.setattr(cnd, "_run_kept", lambda *args: None)
        full = f(cnd, image, mode, cval)
    assert again.dtype == first.dtype == full.dtype == image.dtype
    assert again.tobytes() == first.tobytes() == full.tobytes()
    assert_matches(again, f(ndi, image, mode, cval))


def test_kept_filters_are_told_apart(monkeypatch):
    # Calls on one image that differ in one argument each (its value or its
    # type, a zero's sign): a filter kept for one never serves another (the
    # full path's bits, zeros' signs too), and a call SciPy rejects is
    # rejected after a kept one that differs only in a type.
    image = sample((12, 10), "float64", seed=22)
    image[3:6, 2:5] = -0.0
    calls = [dict(weights=[1.0, 2.0, 1.0]), dict(weights=[1.0, 2.0, 1.5]),
             dict(weights=np.array([1.0, 2.0, 1.0]), axis=0), dict(weights=[1, 2, 1], origin=1),
             dict(weights=[1.0, 2.0, 1.0], mode="constant", cval=1),
             dict(weights=[1.0, 2.0, 1.0], mode="constant", cval=2.0),
             dict(weights=[1.0, 2.0, 1.0], mode="constant", cval=-0.0),
             dict(weights=[1.0, -0.0, 1.0], mode="constant"),
             dict(weights=[1.0, 0.0, 1.0], mode="constant"),
             dict(weights=[1.0, 2.0, 1.0], mode="wrap")]
    forget_small_passes()
    for _ in range(2):
        for kwargs in calls:
            for a in (image, image.astype(np.float32), image.astype(np.int16)):
                got = cnd.correlate1d(a, **kwargs)
                with monkeypatch.context() as m:
                    m.setattr(cnd, "_run_kept", lambda *args: None)
                    assert got.tobytes() == cnd.correlate1d(a, **kwargs).tobytes()
                assert_matches(got, ndi.correlate1d(a, **kwargs))
    # one kept filter per call and dtype, but for the two with a -0.0 scalar
    assert len(cnd._kept_filters) == (len(calls) - 2) * 3
    # the output's dtype, however given, is part of the key
    small = sample((9, 8), "uint8", seed=29)
    outputs = [None, np.int16, np.float32, np.dtype(np.int16), np.dtype(np.float64), np.uint8,
               np.empty((9, 8), np.int32), np.empty((9, 8), np.float32)]
    for _ in range(2):
        for output in outputs:
            got = cnd.sobel(small, output=output)
            expected = ndi.sobel(small, output=output if not isinstance(output, np.ndarray)
                                 else np.empty_like(output))
            assert_matches(got, expected)
    cnd.uniform_filter1d(image, 3)
    for bad in (dict(size=3.0), dict(size=3, axis=1.0), dict(size=3, origin=0.0)):
        with pytest.raises(TypeError):
            cnd.uniform_filter1d(image, **bad)
    cnd.sobel(image, workers=2)
    with pytest.raises(ValueError):
        cnd.sobel(image, workers=0)


def test_kept_integer_filters_follow_the_weights_values():
    # The weights array changed in place after a kept call, then the old
    # values in a new array: every call filters with the values it was given.
    image = sample((10, 11), "uint8", seed=23)
    changed = np.array([1.0, 2.0, 1.0]) / 4
    forget_small_passes()
    for value in (0.75, -0.25):
        for axis in (0, 1):
            cnd.correlate1d(image, changed, axis=axis)
        changed[1] = value
        for weights in (changed, np.array([1.0, 2.0, 1.0]) / 4):
            for axis in (0, 1):
                assert_matches(cnd.correlate1d(image, weights, axis=axis),
                               ndi.correlate1d(image, weights, axis=axis))


def test_kept_filters_skip_what_they_do_not_serve():
    # Larger images, other layouts, given outputs and complex or bool images
    # take the full path (and give SciPy's results); only plain calls are kept.
    forget_small_passes()
    rng = np.random.default_rng(24)
    base = rng.standard_normal((40, 30))
    for a in (np.asfortranarray(base), base[:, ::2], base.astype(np.complex128), base > 0,
              rng.standard_normal((1100, 1000)), np.zeros((0, 5))):
        assert_matches(cnd.sobel(a), ndi.sobel(a))
        out = np.empty(a.shape, np.float64 if a.dtype != np.complex128 else a.dtype)
        assert_matches(cnd.uniform_filter(a, 3, output=out), ndi.uniform_filter(a, 3, output=out))
    assert not any(cnd._kept_filters.values())
    # a long row is small work but would pin megabytes of scratch: not kept
    row = sample((1, 300_000), "uint8", seed=28)
    for _ in range(2):
        assert_matches(cnd.uniform_filter1d(row, 3), ndi.uniform_filter1d(row, 3))
    assert not cnd._line_passes and not any(cnd._kept_filters.values())
    # a call whose passes are too large to be small is not even keyed
    forget_small_passes()
    mid = sample((256, 256), "uint8", seed=25)
    for call in (lambda m: m.gaussian_filter(mid, 2.0), lambda m: m.correlate1d(mid, [1.0] * 17),
                 lambda m: m.uniform_filter1d(mid, 17, axis=0)):
        assert_matches(call(cnd), call(ndi))
    assert cnd._kept_filters == {}


def test_kept_filters_from_threads():
    # Threads repeating kept filters at once: float passes serve one call at
    # a time (the others take the full path), integer ones take scratch of
    # their own thread; every result has the bits of a call made alone.
    from concurrent.futures import ThreadPoolExecutor
    images = [sample((24, 20), dtype, seed=s) for s in range(4)
              for dtype in ("uint8", "int16", "float32")]
    forget_small_passes()
    calls = [lambda a: cnd.sobel(a, mode="wrap"), lambda a: cnd.uniform_filter(a, 5),
             lambda a: cnd.correlate1d(a, [0.25, 0.5, 0.25], axis=0)]
    alone = [f(a).tobytes() for f in calls for a in images]

    def filter_all(_):
        return [f(a).tobytes() for _ in range(50) for f in calls for a in images]

    with ThreadPoolExecutor(4) as pool:
        for results in pool.map(filter_all, range(4)):
            assert results == alone * 50


def test_repeated_calls_tell_a_negative_zero_fill_apart():
    # A fill of -0.0 equals 0.0 but may give -0.0 sums where 0.0 gives 0.0
    # (SciPy's do, on an image of -0.0): a call kept with one never serves
    # the other (and workers are still checked).
    image = np.full((9, 12), -0.0)
    weights = np.array([[0.5, 1.0], [1.5, 2.0]])
    cnd._short_paths.clear()
    for cval in (0.0, -0.0, 0.0, -0.0):
        got = cnd.correlate(image, weights, mode="constant", cval=cval)
        full = cnd.correlate(image, weights, mode="constant", cval=cval, axes=(0, 1))
        assert got.tobytes() == full.tobytes()
    assert len(cnd._short_paths) == 1
    with pytest.raises(ValueError):
        cnd.correlate(image, weights, mode="constant", workers=0)


@pytest.mark.parametrize("src, out", [("uint8", np.int16), ("uint8", np.float32),
                                      ("int16", np.dtype(np.float64)), ("int8", np.int32),
                                      ("uint16", np.uint8), ("float64", np.float32),
                                      ("float32", np.float64)])
@pytest.mark.parametrize("call", ["sobel", "uniform_filter", "gaussian_filter", "laplace",
                                  "correlate1d list", "uniform_filter1d"])
def test_kept_filters_into_an_output_dtype(src, out, call, monkeypatch):
    # `output` given as a dtype: kept too where each pass is one core call
    # (8/16-bit images into other integer types, any image into its float
    # compute type), with the full path's bits; SciPy's bits for integer
    # outputs, its values within rounding for float ones.
    image = sample((11, 14), src, seed=26)
    f = KEPT_CALLS[call]
    forget_small_passes()

    def run(m):
        with monkeypatch.context() as patch:
            patch.setattr(m, call.split()[0], functools.partial(getattr(m, call.split()[0]),
                                                                output=out))
            return f(m, image, "reflect", 0.0)

    first, again = run(cnd), run(cnd)
    with monkeypatch.context() as m:
        m.setattr(cnd, "_run_kept", lambda *args: None)
        full = run(cnd)
    assert first.dtype == again.dtype == full.dtype == np.dtype(out)
    assert again.tobytes() == first.tobytes() == full.tobytes()
    assert_matches(again, run(ndi))
    # not kept: float64 into float32 (computed in float64, then stored), and
    # a second pass reading int32 (no line kernel reads it)
    multipass = call in ("sobel", "uniform_filter", "gaussian_filter")
    kept = not (src == "float64" and out == np.float32 or multipass and out == np.int32)
    assert any(cnd._kept_filters.values()) == kept


@pytest.mark.parametrize("src, out", [("uint8", np.uint8), ("uint8", np.int16),
                                      ("uint8", np.float32), ("float32", np.float32),
                                      ("float64", np.float64), ("int16", np.int16)])
@pytest.mark.parametrize("call", sorted(KEPT_CALLS))
def test_kept_filters_into_an_output_array(src, out, call, monkeypatch):
    # An output array (a loop reusing its buffer) is written by the kept
    # passes and returned, with the full path's bits; one in Fortran order,
    # or the input itself, takes the full path.
    image = sample((12, 15), src, seed=27)
    name = call.split()[0]
    f = KEPT_CALLS[call]
    forget_small_passes()

    def run(m, output):
        with monkeypatch.context() as patch:
            patch.setattr(m, name, functools.partial(getattr(m, name), output=output))
            return f(m, image, "wrap", 0.0)

    buffer = np.empty(image.shape, out)
    first = run(cnd, buffer).copy()
    calls = []
    with monkeypatch.context() as m:
        m.setattr(cnd, "_pass_1d", lambda *args: calls.append(args))
        again = run(cnd, buffer)
    assert calls == [] and again is buffer
    assert again.tobytes() == first.tobytes()
    assert_matches(buffer, run(ndi, np.empty(image.shape, out)))
    fortran = np.asfortranarray(np.empty(image.shape, out))
    assert_matches(run(cnd, fortran), run(ndi, np.empty(image.shape, out)))
    if np.dtype(out) == image.dtype:   # in place, as SciPy runs it (laplace reads its output)
        results = []
        for m in (cnd, ndi):
            inplace = image.copy()
            with monkeypatch.context() as patch:
                patch.setattr(m, name, functools.partial(getattr(m, name), output=inplace))
                results.append(KEPT_CALLS[call](m, inplace, "wrap", 0.0))
        assert_matches(*results)

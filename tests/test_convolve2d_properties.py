"""Property tests: cyconv.convolve2d / correlate2d against scipy.signal.

Hypothesis draws shapes (0 and 1 sizes included), dtypes (with promotion,
including operands of unsupported types), modes, all six boundary names, fill
values (valid and invalid), layouts (Fortran order, strided, negative strides,
byte-swapped, read-only) and data (full-range integers that overflow,
integers of random bit widths whose sums fall on either side of the float
kernels' exact range, NaN/inf for floating types). Each example is checked
against SciPy where SciPy can be called safely, and against a brute-force
implementation of the definitions, which also covers the documented
differences:

* an empty ``in1`` with wrap/symm: ValueError when the output is non-empty
  (SciPy would die with SIGFPE, so it is never called), otherwise the empty
  result / zeros of SciPy's shape and dtype;
* complex ``correlate2d`` in "valid" mode with the inputs swapped: the true
  correlation, i.e. the conjugate of SciPy's result.

The budget per property is CYCONV_HYPOTHESIS_EXAMPLES (default 200).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import scipy.signal
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import cyconv
from cyconv import _methods
from convolve2d_reference import NUMPY_1, FILL_BOUNDARIES, error_bound, reference

MAX_EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "200"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

FUNCS = ("convolve2d", "correlate2d")
MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "pad", "wrap", "circular", "symm", "symmetric")
SUPPORTED = tuple(np.dtype(t) for t in (
    np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble))
# operands whose type is not supported on its own but may promote to a supported one
EXTRA_OPERANDS = (np.dtype(bool), np.dtype(np.float16))
LAYOUTS = ("C", "F", "strided", "reversed", "byteswapped", "readonly", "readonly-reversed-F")
INT_AS_FLOAT_MACS = _methods._INT_AS_FLOAT_MACS


def supported_result(dtype):
    return dtype in SUPPORTED


# ---------------------------------------------------------------------------
# oracles
# ---------------------------------------------------------------------------

def scipy_call(name, in1, in2, mode, boundary, fillvalue):
    if np.asarray(in1).size == 0 and boundary not in FILL_BOUNDARIES:
        raise AssertionError("never call SciPy with an empty in1 and wrap/symm (SIGFPE)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return getattr(scipy.signal, name)(in1, in2, mode=mode, boundary=boundary,
                                           fillvalue=fillvalue)


def numpy_1_wraps(fill, dtype) -> bool:
    """Does NumPy 1.x wrap the out-of-range Python int `fill` into `dtype`
    (with a DeprecationWarning, and SciPy with it)? NumPy 2 refuses them all."""
    dtype = np.dtype(dtype)
    if not (NUMPY_1 and isinstance(fill, int) and dtype.kind in "iu"):
        return False
    info = np.iinfo(dtype)
    if info.min <= fill <= info.max:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            np.array(fill, dtype)
        except (OverflowError, ValueError):
            return False
    return True


def scipy_wrapped_fill(name, in1, in2, mode, boundary, fillvalue):
    """SciPy's result for an int fill NumPy 1.x wraps (numpy_1_wraps), or None."""
    if boundary not in FILL_BOUNDARIES or not numpy_1_wraps(fillvalue, np.result_type(in1, in2)):
        return None
    return scipy_call(name, in1, in2, mode, boundary, fillvalue)


def valid_shape(s1, s2):
    (H, W), (M, N) = s1, s2
    if H >= M and W >= N:
        return (H - M + 1, W - N + 1), False
    if M >= H and N >= W:
        return (M - H + 1, N - W + 1), True
    return None, None


def assert_same(got, expected, bound=None):
    assert isinstance(got, np.ndarray)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    if got.dtype.kind not in "fc" or bound is None:
        assert np.array_equal(got, expected, equal_nan=got.dtype.kind in "fc"), (got, expected)
        return
    pairs = [(got.real, expected.real), (got.imag, expected.imag)] if got.dtype.kind == "c" \
        else [(got, expected)]
    for g, e in pairs:
        assert np.array_equal(np.isnan(g), np.isnan(e)), (got, expected)
        inf = np.isinf(g) | np.isinf(e)
        assert np.array_equal(g[inf], e[inf]), (got, expected)
        fin = np.isfinite(g) & np.isfinite(e)
        err = np.abs(g[fin].astype(np.longdouble) - e[fin].astype(np.longdouble))
        assert (err <= bound[fin]).all(), (err.max(), got, expected)


# ---------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------

# sizes 1..7, and 0 now and then (hypothesis shrinks towards 0)
dims = st.sampled_from([0] + list(range(1, 8)) * 3)
shapes = st.tuples(dims, dims)


def make_values(shape, dtype, rng, style):
    if dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if style == "small":
            return rng.integers(max(info.min, -5), min(info.max, 5), size=shape, dtype=dtype,
                                endpoint=True)
        if style == "scaled":   # sums on either side of float32's and float64's exact range
            top = min(info.max, 2 ** int(rng.integers(1, info.bits)))
            return rng.integers(max(info.min, -top), top, size=shape, dtype=dtype,
                                endpoint=True)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    scale = 1.0 if style == "small" else 1e3
    x = rng.standard_normal(shape) * scale
    if style == "small":
        x = np.round(x * 4) / 4
    if dtype.kind == "c":
        y = rng.standard_normal(shape) * scale
        return (x + 1j * y).astype(dtype)
    return x.astype(dtype)


def inject_nonfinite(x, rng, count):
    x = x.copy()
    flat = x.reshape(-1)
    if flat.size == 0:
        return x
    choices = [np.nan, np.inf, -np.inf]
    if x.dtype.kind == "c":
        choices += [complex(np.inf, 2.0), complex(1.0, np.nan), complex(-np.inf, -np.inf)]
    for _ in range(count):
        flat[rng.integers(flat.size)] = choices[rng.integers(len(choices))]
    return x


def to_layout(x, layout):
    """An array equal to x, laid out as `layout`."""
    if layout == "C":
        return np.ascontiguousarray(x)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "strided":
        big = np.zeros((2 * x.shape[0] + 1, 3 * x.shape[1] + 2), x.dtype)
        big[1::2, 2::3] = x
        return big[1::2, 2::3][:x.shape[0], :x.shape[1]]
    if layout == "reversed":
        return np.ascontiguousarray(x[::-1, ::-1])[::-1, ::-1]
    if layout == "byteswapped":
        if x.dtype.itemsize == 1 or x.dtype.kind == "b":
            return x.copy()
        return x.astype(x.dtype.newbyteorder("S"))
    if layout == "readonly":
        y = x.copy()
        y.setflags(write=False)
        return y
    if layout == "readonly-reversed-F":
        y = np.asfortranarray(x[::-1, ::-1])[::-1, ::-1]
        y.setflags(write=False)
        return y
    raise AssertionError(layout)


@st.composite
def operands(draw, complex_nonfinite=False):
    """(in1, in2) values and dtypes; result type may be unsupported. NaN/inf are
    injected for real floating results (and complex ones if `complex_nonfinite`)."""
    pick = st.sampled_from(SUPPORTED * 4 + EXTRA_OPERANDS)
    dt1 = draw(pick)
    dt2 = dt1 if draw(st.booleans()) else draw(pick)
    s1, s2 = draw(shapes), draw(shapes)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    style = draw(st.sampled_from(["small", "scaled", "large"]))
    a = make_values(s1, dt1, rng, style)
    b = make_values(s2, dt2, rng, style)
    kinds = "fc" if complex_nonfinite else "f"
    if np.result_type(a, b).kind in kinds and draw(st.integers(0, 4)) == 0:
        if dt1.kind in "fc":
            a = inject_nonfinite(a, rng, draw(st.integers(1, 3)))
        if dt2.kind in "fc" and draw(st.booleans()):
            b = inject_nonfinite(b, rng, 1)
    return a, b


def fill_values(dtype):
    """Fill values SciPy accepts for result type `dtype` and ones it rejects."""
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = int(info.min), int(info.max)
        valid = st.one_of(
            st.integers(lo, hi), st.sampled_from([lo, hi, 0]),
            st.floats(max(lo, -100), min(hi, 100)).filter(lambda v: v >= 0 or lo < 0),
            st.integers(lo, hi).map(lambda v: [v]),
            st.integers(max(lo, -100), min(hi, 100)).map(lambda v: np.array(v, dtype)[()]))
        invalid = st.one_of(
            st.integers(hi + 1, hi + 2**70), st.integers(lo - 2**70, lo - 1),
            st.complex_numbers(max_magnitude=10), st.just([1, 2]), st.just([]))
    else:
        real = dtype.kind == "f"
        finite = st.floats(-1e6, 1e6) if real else st.complex_numbers(max_magnitude=1e6)
        valid = st.one_of(
            finite, st.integers(-2**70, 2**70), st.sampled_from([np.nan, np.inf, -np.inf]),
            finite.map(lambda v: [v]),
            finite.map(lambda v: np.array(v).astype(dtype)[()]))
        invalid = st.one_of(st.just([1.0, 2.0]), st.just([]), st.just([[]]))
        if real:
            # any Python complex, even with a zero imaginary part
            invalid = st.one_of(invalid, st.complex_numbers(max_magnitude=10))
    return valid, invalid


def cast_fill(fill, dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(fill).reshape(-1)[0].astype(dtype) if np.ndim(fill) else \
            np.asarray(fill).astype(dtype)


# ---------------------------------------------------------------------------
# the main property
# ---------------------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_matches_scipy_or_documented_behaviour(data):
    name = data.draw(st.sampled_from(FUNCS), label="function")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    boundary = data.draw(st.sampled_from(BOUNDARIES), label="boundary")
    a, b = data.draw(operands(), label="operands")
    la = data.draw(st.sampled_from(LAYOUTS), label="layout1")
    lb = data.draw(st.sampled_from(LAYOUTS), label="layout2")
    xa, xb = to_layout(a, la), to_layout(b, lb)
    before = (xa.copy(), xb.copy())
    dtype = np.result_type(a, b)
    fill_is_valid = True
    if supported_result(dtype):
        valid, invalid = fill_values(dtype)
        fill_is_valid = data.draw(st.integers(0, 5), label="fill kind") > 0
        fill = data.draw(valid if fill_is_valid else invalid, label="fill")
    else:
        fill = data.draw(st.integers(0, 3), label="fill")

    func = getattr(cyconv, name)
    scipy_safe = a.size > 0 or boundary in FILL_BOUNDARIES
    # Integer sums run on the float kernels where exact, from a size on:
    # these small examples take either route.
    int_as_float = data.draw(st.sampled_from([0, INT_AS_FLOAT_MACS]), label="int as float from")

    def call():
        with warnings.catch_warnings():
            if numpy_1_wraps(fill, dtype):   # NumPy 1.x's DeprecationWarning, as SciPy's
                warnings.simplefilter("ignore", DeprecationWarning)
            _methods._INT_AS_FLOAT_MACS = int_as_float
            try:
                return func(xa, xb, mode=mode, boundary=boundary, fillvalue=fill)
            finally:
                _methods._INT_AS_FLOAT_MACS = INT_AS_FLOAT_MACS

    try:
        if not supported_result(dtype):
            event("unsupported result dtype")
            with pytest.raises(ValueError):
                call()
            if scipy_safe:
                with pytest.raises((ValueError, TypeError)):
                    scipy_call(name, a, b, mode, boundary, fill)
            return

        if mode == "valid" and valid_shape(a.shape, b.shape)[0] is None:
            event("valid mode: neither input contains the other")
            bad_fill = boundary in FILL_BOUNDARIES and not fill_is_valid
            with pytest.raises(ValueError, match="valid|fillvalue" if bad_fill else "valid"):
                call()
            if scipy_safe:
                with pytest.raises(ValueError):
                    scipy_call(name, a, b, mode, boundary, fill)
            return

        if boundary in FILL_BOUNDARIES and not fill_is_valid and numpy_1_wraps(fill, dtype):
            event("out-of-range int fill wrapped by NumPy 1.x")
            try:
                expected = scipy_call(name, a, b, mode, boundary, fill)
            except ValueError:   # for another reason (a negative 'full' size)
                with pytest.raises(ValueError):
                    call()
                return
            np.testing.assert_array_equal(call(), expected)
            return
        if boundary in FILL_BOUNDARIES and not fill_is_valid:
            event("invalid fillvalue")
            with pytest.raises(ValueError):
                scipy_call(name, a, b, mode, boundary, fill)
            with pytest.raises(ValueError, match="fillvalue"):
                call()
            return

        if scipy_safe:
            try:
                expected = scipy_call(name, a, b, mode, boundary, fill)
            except ValueError:
                # Only a negative 'full' size makes SciPy reject valid arguments.
                event("negative full size")
                assert mode == "full" and min(a.shape[0] + b.shape[0],
                                              a.shape[1] + b.shape[1]) == 0
                with pytest.raises(ValueError):
                    call()
                return
            swapped = mode == "valid" and valid_shape(a.shape, b.shape)[1]
            if name == "correlate2d" and swapped and dtype.kind == "c":
                event("complex valid correlation, swapped")
                expected = np.conj(expected)   # documented difference (2)
        else:
            expected = None

        fill_cast = cast_fill(fill, dtype) if boundary in FILL_BOUNDARIES else \
            np.zeros((), dtype)
        try:
            with np.errstate(all="ignore"):
                derived = reference(name, a, b, mode, boundary, fill_cast)
        except ValueError:
            derived = None
        if derived is None:
            # documented difference (1) (or a negative full size)
            event("empty in1 with wrap/symm: ValueError")
            assert expected is None
            with pytest.raises(ValueError):
                call()
            return

        with warnings.catch_warnings():
            # a fill SciPy accepts with a RuntimeWarning/ComplexWarning (NaN or
            # complex scalar cast) may warn here too
            warnings.simplefilter("ignore")
            got = call()
        event("result compared: " + ("empty" if got.size == 0 else
                                     "zeros (empty operand)" if 0 in a.shape + b.shape else
                                     "non-finite" if dtype.kind == "f" and not (
                                         np.isfinite(a).all() and np.isfinite(b).all()) else
                                     f"{dtype.kind}, {'scipy' if expected is not None else 'derived only'}"))
        bound = error_bound(name, a, b, mode, boundary, fill_cast, dtype) \
            if dtype.kind in "fc" else None
        if expected is not None:
            assert_same(got, expected, bound)
        if dtype.kind != "c" or (np.isfinite(a).all() and np.isfinite(b).all()):
            # brute force (NaN patterns of non-finite complex products are SciPy's business)
            assert_same(got, derived, bound)
        else:
            assert got.shape == derived.shape and got.dtype == derived.dtype
    finally:
        assert np.array_equal(xa, before[0], equal_nan=xa.dtype.kind in "fc")
        assert np.array_equal(xb, before[1], equal_nan=xb.dtype.kind in "fc")
        assert xa.dtype == before[0].dtype and xb.dtype == before[1].dtype


# ---------------------------------------------------------------------------
# smaller properties
# ---------------------------------------------------------------------------

@SETTINGS
@given(data=st.data())
def test_nonfinite_complex_matches_scipy(data):
    """NaN/inf in complex inputs propagate exactly as in SciPy, whose complex
    products follow C99 Annex G (e.g. (4+0j) * (-inf-infj) = -inf-infj)."""
    name = data.draw(st.sampled_from(FUNCS), label="function")
    mode = data.draw(st.sampled_from(MODES), label="mode")
    boundary = data.draw(st.sampled_from(BOUNDARIES), label="boundary")
    cdt = data.draw(st.sampled_from([d for d in SUPPORTED if d.kind == "c"]), label="dtype")
    other = data.draw(st.sampled_from([cdt, np.dtype(np.float64), np.dtype(np.int32)]),
                      label="other dtype")
    s1 = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 5)), label="shape1")
    s2 = data.draw(st.tuples(st.integers(1, 4), st.integers(1, 4)), label="shape2")
    if mode == "valid" and valid_shape(s1, s2)[0] is None:
        mode = "full"
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    a = make_values(s1, other if data.draw(st.booleans(), label="swap") else cdt, rng, "small")
    b = make_values(s2, cdt if a.dtype != cdt else other, rng, "small")
    values = [complex(np.inf, np.inf), complex(-np.inf, np.inf), complex(np.inf, 0),
              complex(0, -np.inf), complex(np.nan, 0), complex(np.inf, np.nan), 0j]
    for x in (a, b):
        if x.dtype.kind == "c":
            flat = x.reshape(-1)
            for i in data.draw(st.lists(st.integers(0, flat.size - 1), max_size=3),
                               label="positions"):
                flat[i] = data.draw(st.sampled_from(values), label="value")
    expected = scipy_call(name, a, b, mode, boundary, 0.5)
    if name == "correlate2d" and mode == "valid" and valid_shape(s1, s2)[1]:
        expected = np.conj(expected)
    with np.errstate(all="ignore"):
        got = getattr(cyconv, name)(a, b, mode=mode, boundary=boundary, fillvalue=0.5)
    dtype = expected.dtype
    assert_same(got, expected, error_bound(name, a, b, mode, boundary, 0.5, dtype))


@SETTINGS
@given(data=st.data())
def test_complex_valid_correlation_smaller_in1_is_true_correlation(data):
    """Documented difference (2): with in1 smaller than in2 (so the inputs are
    swapped), complex correlate2d 'valid' is the true correlation (brute force),
    which is the conjugate of SciPy's result."""
    H = data.draw(st.integers(1, 4), label="H")
    W = data.draw(st.integers(1, 4), label="W")
    M = data.draw(st.integers(H, 7), label="M")
    N = data.draw(st.integers(W, 7), label="N")
    if (H, W) == (M, N):
        M += 1
    dt1 = data.draw(st.sampled_from(SUPPORTED), label="dtype1")
    dt2 = data.draw(st.sampled_from([d for d in SUPPORTED if d.kind == "c"]
                                    if dt1.kind != "c" else SUPPORTED), label="dtype2")
    if data.draw(st.booleans(), label="complex in1"):
        dt1, dt2 = dt2, dt1
    boundary = data.draw(st.sampled_from(BOUNDARIES), label="boundary")
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    a = to_layout(make_values((H, W), dt1, rng, "small"),
                  data.draw(st.sampled_from(LAYOUTS), label="layout1"))
    b = to_layout(make_values((M, N), dt2, rng, "small"),
                  data.draw(st.sampled_from(LAYOUTS), label="layout2"))
    dtype = np.result_type(a, b)
    got = cyconv.correlate2d(a, b, mode="valid", boundary=boundary, fillvalue=1)
    bound = error_bound("correlate2d", a, b, "valid", "fill", 0, dtype)
    assert_same(got, reference("correlate2d", a, b, "valid", "fill", np.zeros((), dtype)), bound)
    assert_same(got, np.conj(scipy_call("correlate2d", a, b, "valid", boundary, 1)), bound)
    # brute force from the definition: z[k, l] = sum a[i, j] conj(b[i + M-H-k, j + N-W-l])
    bc = np.conj(b.astype(np.clongdouble))
    for k, l in [(0, 0), (M - H, N - W), (rng.integers(M - H + 1), rng.integers(N - W + 1))]:
        z = (a.astype(np.clongdouble) * bc[M - H - k:M - k, N - W - l:N - l]).sum()
        assert abs(complex(got[k, l]) - complex(z)) <= bound[k, l], (k, l, got[k, l], z)


@SETTINGS
@given(data=st.data())
def test_layout_does_not_change_result(data):
    name = data.draw(st.sampled_from(FUNCS))
    mode = data.draw(st.sampled_from(MODES))
    boundary = data.draw(st.sampled_from(BOUNDARIES))
    dtype = data.draw(st.sampled_from(SUPPORTED))
    s1 = data.draw(st.tuples(st.integers(1, 8), st.integers(1, 8)))
    s2 = data.draw(st.tuples(st.integers(1, 8), st.integers(1, 8)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = make_values(s1, dtype, rng, "large")
    b = make_values(s2, dtype, rng, "large")
    if mode == "valid" and valid_shape(s1, s2)[0] is None:
        mode = "same"
    base = getattr(cyconv, name)(a, b, mode, boundary, 1)
    for la, lb in data.draw(st.lists(st.tuples(st.sampled_from(LAYOUTS),
                                               st.sampled_from(LAYOUTS)), min_size=1,
                                     max_size=4)):
        xa, xb = to_layout(a, la), to_layout(b, lb)
        got = getattr(cyconv, name)(xa, xb, mode, boundary, 1)
        assert got.dtype == base.dtype
        assert np.array_equal(got, base, equal_nan=True), (la, lb)
        assert np.array_equal(xa, a) and np.array_equal(xb, b)


@SETTINGS
@given(s1=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       s2=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       dtype=st.sampled_from([d for d in SUPPORTED if d.kind in "iu"]),
       seed=st.integers(0, 2**32 - 1))
def test_integer_algebra_is_exact(s1, s2, dtype, seed):
    """Convolution commutes and correlation is convolution with the flipped kernel,
    bitwise, even when every sum overflows."""
    rng = np.random.default_rng(seed)
    a = make_values(s1, dtype, rng, "large")
    b = make_values(s2, dtype, rng, "large")
    ab = cyconv.convolve2d(a, b)
    assert np.array_equal(ab, cyconv.convolve2d(b, a))
    assert np.array_equal(cyconv.correlate2d(a, b), cyconv.convolve2d(a, b[::-1, ::-1]))
    assert np.array_equal(ab, scipy_call("convolve2d", a, b, "full", "fill", 0))


@SETTINGS
@given(mode=st.text(max_size=8).filter(lambda s: s not in MODES), name=st.sampled_from(FUNCS))
def test_unknown_mode_raises(mode, name):
    a = np.ones((3, 3))
    with pytest.raises(ValueError, match="mode"):
        getattr(cyconv, name)(a, a, mode=mode)


@SETTINGS
@given(boundary=st.text(max_size=10).filter(lambda s: s not in BOUNDARIES),
       name=st.sampled_from(FUNCS), mode=st.sampled_from(MODES))
def test_unknown_boundary_raises(boundary, name, mode):
    a = np.ones((3, 3))
    with pytest.raises(ValueError, match="boundary"):
        getattr(cyconv, name)(a, a, mode=mode, boundary=boundary)
    with pytest.raises(ValueError):
        scipy_call(name, a, a, mode, boundary, 0)


@SETTINGS
@given(dtype=st.sampled_from([d for d in SUPPORTED if d.kind in "iu"]),
       offset=st.integers(1, 2**80), below=st.booleans(), name=st.sampled_from(FUNCS),
       boundary=st.sampled_from(BOUNDARIES))
def test_out_of_range_integer_fill(dtype, offset, below, name, boundary):
    info = np.iinfo(dtype)
    fill = int(info.min) - offset if below else int(info.max) + offset
    a = np.arange(6, dtype=dtype).reshape(2, 3)
    wrapped = scipy_wrapped_fill(name, a, a, "full", boundary, fill)
    if boundary in FILL_BOUNDARIES and wrapped is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            assert np.array_equal(getattr(cyconv, name)(a, a, boundary=boundary, fillvalue=fill),
                                  wrapped)
    elif boundary in FILL_BOUNDARIES:
        with pytest.raises(ValueError):
            scipy_call(name, a, a, "full", boundary, fill)
        with pytest.raises(ValueError, match="fillvalue"):
            getattr(cyconv, name)(a, a, boundary=boundary, fillvalue=fill)
    else:   # not validated for wrap/symm, like SciPy
        assert np.array_equal(getattr(cyconv, name)(a, a, boundary=boundary, fillvalue=fill),
                              scipy_call(name, a, a, "full", boundary, fill))


@SETTINGS
@given(ndim1=st.integers(0, 4), ndim2=st.integers(0, 4), name=st.sampled_from(FUNCS),
       boundary=st.sampled_from(BOUNDARIES))
def test_non_2d_raises(ndim1, ndim2, name, boundary):
    if ndim1 == ndim2 == 2:
        ndim1 = 3
    a = np.ones((2,) * ndim1)
    b = np.ones((1,) * ndim2)
    with pytest.raises(ValueError, match="2-D"):
        getattr(cyconv, name)(a, b, boundary=boundary)

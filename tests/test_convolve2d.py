"""cyconv.convolve2d / cyconv.correlate2d against scipy.signal.

The contract: same shape, same dtype and same values as
``scipy.signal.convolve2d`` / ``correlate2d`` (bitwise for integer results,
within a rounding bound for floating results) for every input SciPy accepts,
the same ValueErrors for the inputs SciPy rejects, and two documented
differences (empty inputs never crash; complex ``correlate2d`` in ``"valid"``
mode with a smaller ``in1`` is the true correlation, not its conjugate).

SciPy dies with SIGFPE for an empty ``in1`` with ``boundary="wrap"``/``"symm"``,
so :func:`scipy_call` refuses to make that call: those cases are checked
against :func:`reference`, a brute-force implementation of the definitions.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import numpy.testing as npt
import pytest
import scipy.signal

import cyconv
from cyconv import _convolve, _methods
from convolve2d_reference import (NUMPY_1, FILL_BOUNDARIES, error_bound, output_shape,
                                  reference)

FUNCS = ("convolve2d", "correlate2d")
MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "pad", "wrap", "circular", "symm", "symmetric")

INT_DTYPES = tuple(np.dtype(t) for t in (np.int8, np.int16, np.int32, np.int64,
                                         np.uint8, np.uint16, np.uint32, np.uint64))
REAL_FLOAT_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.longdouble))
COMPLEX_DTYPES = tuple(np.dtype(t) for t in (np.complex64, np.complex128, np.clongdouble))
FLOAT_DTYPES = REAL_FLOAT_DTYPES + COMPLEX_DTYPES
SUPPORTED_DTYPES = INT_DTYPES + FLOAT_DTYPES


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def cy(name):
    return getattr(cyconv, name)


def scipy_call(name, in1, in2, mode="full", boundary="fill", fillvalue=0):
    """scipy.signal.<name>, refusing the calls that kill the interpreter."""
    in1 = np.asarray(in1)
    if in1.size == 0 and boundary not in FILL_BOUNDARIES:
        raise AssertionError("scipy crashes (SIGFPE) for an empty in1 with wrap/symm")
    return getattr(scipy.signal, name)(in1, in2, mode=mode, boundary=boundary,
                                       fillvalue=fillvalue)


def scipy_quiet(name, *args, **kwargs):
    """scipy call with its warnings (ComplexWarning on a rejected fill) silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return scipy_call(name, *args, **kwargs)


def make_data(shape, dtype, rng, *, small=False):
    """Seeded test data of `dtype`: negative values for signed types, values that
    overflow integer sums, true complex values, extra precision for longdouble."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if small:
            lo, hi = max(info.min, -9), min(info.max, 9)
        else:
            lo, hi = info.min, info.max
        return rng.integers(lo, hi, size=shape, dtype=dt, endpoint=True)
    if dt.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    scale = 1.0 if small else 4.0
    if dt.kind == "f":
        x = (rng.standard_normal(shape) * scale).astype(dt)
        if dt.itemsize > 8:   # bits below double precision, so a double-precision
            x += (rng.standard_normal(shape) * 2.0 ** -40).astype(dt)  # core is caught
        return x
    if dt.kind == "c":
        re = (rng.standard_normal(shape) * scale).astype(dt)
        im = (rng.standard_normal(shape) * scale).astype(dt)
        x = re + 1j * im
        if dt.itemsize > 16:
            x += (rng.standard_normal(shape) * 2.0 ** -40).astype(dt)
        return x.astype(dt)
    raise TypeError(dt)


def fill_for(dtype):
    """A non-zero fill value representable in `dtype` (large for integers)."""
    dt = np.dtype(dtype)
    if dt.kind == "u":
        return int(np.iinfo(dt).max) - 2
    if dt.kind == "i":
        return int(np.iinfo(dt).min) + 3
    if dt.kind == "c":
        return 1.5 - 2.25j
    return -1.75


def assert_same_result(got, expected, *, bound=None, exact_float=False):
    """Same type, shape and dtype; integer values bitwise, floating values within
    `bound` (elementwise); NaN where the other has NaN, same infinities."""
    assert isinstance(got, np.ndarray), type(got)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    assert got.dtype == expected.dtype, (got.dtype, expected.dtype)
    if got.dtype.kind not in "fc" or exact_float or bound is None:
        assert np.array_equal(got, expected, equal_nan=got.dtype.kind in "fc"), \
            _diff_report(got, expected)
        return
    parts = ((got.real, expected.real), (got.imag, expected.imag)) if got.dtype.kind == "c" \
        else ((got, expected),)
    for g, e in parts:
        assert np.array_equal(np.isnan(g), np.isnan(e)), _diff_report(got, expected)
        inf = np.isinf(e) | np.isinf(g)
        assert np.array_equal(g[inf], e[inf]), _diff_report(got, expected)
        fin = np.isfinite(g) & np.isfinite(e)
        err = np.abs(g[fin].astype(np.longdouble) - e[fin].astype(np.longdouble))
        tol = np.broadcast_to(bound, got.shape)[fin]
        bad = err > tol
        assert not bad.any(), (f"max error {err.max()} > tolerance; "
                               + _diff_report(got, expected))


def _diff_report(got, expected):
    with np.printoptions(precision=20, threshold=200):
        return f"\ngot:\n{got!r}\nexpected:\n{expected!r}"


def check_against_scipy(name, in1, in2, mode="full", boundary="fill", fillvalue=0):
    """cyconv's result is SciPy's (bitwise for integers, within the rounding bound
    for floating types); returns cyconv's result."""
    expected = scipy_call(name, in1, in2, mode, boundary, fillvalue)
    got = cy(name)(in1, in2, mode=mode, boundary=boundary, fillvalue=fillvalue)
    bound = None
    if expected.dtype.kind in "fc":
        bound = error_bound(name, in1, in2, mode, boundary, fillvalue)
    assert_same_result(got, expected, bound=bound)
    return got


# ---------------------------------------------------------------------------
# the reference itself agrees with scipy (so it can stand in where scipy can't)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
@pytest.mark.parametrize("shapes", [((5, 6), (3, 2)), ((2, 3), (7, 8)), ((4, 4), (4, 4)),
                                    ((1, 5), (4, 1)), ((3, 2), (2, 5))])
def test_reference_matches_scipy(name, mode, boundary, shapes):
    rng = np.random.default_rng(12345)
    a = make_data(shapes[0], np.complex128, rng)
    b = make_data(shapes[1], np.complex128, rng)
    if output_shape(shapes[0], shapes[1], mode) is None:
        with pytest.raises(ValueError):
            reference(name, a, b, mode, boundary, 0.5 + 1j)
        return
    expected = scipy_call(name, a, b, mode, boundary, 0.5 + 1j)
    (H, W), (M, N) = shapes
    if name == "correlate2d" and mode == "valid" and not (H >= M and W >= N):
        expected = np.conj(expected)   # documented difference: the true correlation
    got = reference(name, a, b, mode, boundary, 0.5 + 1j)
    assert_same_result(got, expected, bound=error_bound(name, a, b, mode, boundary, 0.5 + 1j))


# ---------------------------------------------------------------------------
# the grid: function x mode x boundary x dtype x shapes
# ---------------------------------------------------------------------------

SHAPE_PAIRS = {
    "odd-kernel": ((7, 8), (3, 3)),
    "even-kernel": ((6, 7), (2, 4)),
    "odd-even-kernel": ((5, 6), (4, 3)),
    "1xN": ((1, 9), (1, 3)),
    "Nx1": ((9, 1), (3, 1)),
    "1xN-image-Nx1-kernel": ((1, 7), (3, 1)),
    "kernel-equal": ((5, 6), (5, 6)),
    "kernel-taller": ((4, 5), (6, 3)),
    "kernel-wider": ((5, 2), (2, 4)),
    "kernel-larger-both": ((3, 4), (7, 9)),
    "kernel-much-larger": ((2, 3), (9, 11)),
    "1x1-both": ((1, 1), (1, 1)),
    "1x1-kernel": ((6, 5), (1, 1)),
    "1x1-image": ((1, 1), (3, 4)),
}


# The three boundaries; their aliases (pad, circular, symmetric) are proven
# identical to them by test_boundary_aliases_are_identical.
@pytest.mark.parametrize("shapes", list(SHAPE_PAIRS.values()), ids=list(SHAPE_PAIRS))
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", FUNCS)
def test_grid_matches_scipy(name, mode, boundary, dtype, shapes):
    seed = [FUNCS.index(name), MODES.index(mode), BOUNDARIES.index(boundary),
            SUPPORTED_DTYPES.index(dtype), list(SHAPE_PAIRS.values()).index(shapes)]
    rng = np.random.default_rng(seed)
    a = make_data(shapes[0], dtype, rng)
    b = make_data(shapes[1], dtype, rng)
    fill = fill_for(dtype)
    a0, b0 = a.copy(), b.copy()
    if output_shape(shapes[0], shapes[1], mode) is None:
        with pytest.raises(ValueError):
            scipy_call(name, a, b, mode, boundary, fill)
        with pytest.raises(ValueError, match="valid"):
            cy(name)(a, b, mode=mode, boundary=boundary, fillvalue=fill)
        return
    (H, W), (M, N) = shapes
    swapped = mode == "valid" and not (H >= M and W >= N)
    if name == "correlate2d" and swapped and dtype.kind == "c":
        # The documented difference: the conjugate of SciPy's result.
        expected = np.conj(scipy_call(name, a, b, mode, boundary, fill))
        got = cyconv.correlate2d(a, b, mode=mode, boundary=boundary, fillvalue=fill)
        assert_same_result(got, expected,
                           bound=error_bound(name, a, b, mode, boundary, fill))
    else:
        check_against_scipy(name, a, b, mode, boundary, fill)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_default_arguments_match_scipy(name, dtype):
    rng = np.random.default_rng(7)
    a = make_data((6, 7), dtype, rng)
    b = make_data((3, 2), dtype, rng)
    expected = getattr(scipy.signal, name)(a, b)
    got = cy(name)(a, b)
    bound = error_bound(name, a, b, "full", "fill", 0) if dtype.kind in "fc" else None
    assert_same_result(got, expected, bound=bound)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.int32], ids=str)
def test_larger_arrays_match_scipy(name, mode, boundary, dtype):
    """Sizes past any small-array fast path / SIMD tail handling."""
    rng = np.random.default_rng(99)
    a = make_data((37, 45), dtype, rng)
    b = make_data((5, 7), dtype, rng)
    check_against_scipy(name, a, b, mode, boundary, fill_for(dtype))
    check_against_scipy(name, a, a[:20, 3:33].copy(), mode, boundary, fill_for(dtype))


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
@pytest.mark.parametrize("kernel", ["random", "rank-1"])
def test_big_arrays_match_scipy(name, dtype, kernel):
    """Sizes where a fast implementation may evaluate differently (transforms,
    separable passes): still SciPy's values within rounding."""
    rng = np.random.default_rng(101)
    a = make_data((200, 180), dtype, rng)
    if kernel == "rank-1":
        b = np.outer(make_data(17, dtype, rng), make_data(13, dtype, rng)).astype(dtype)
    else:
        b = make_data((31, 31), dtype, rng)
    for mode, boundary in [("full", "fill"), ("same", "symm"), ("valid", "wrap"),
                           ("same", "fill")]:
        check_against_scipy(name, a, b, mode, boundary, 0.25)


@pytest.mark.skipif(np.finfo(np.longdouble).eps >= np.finfo(np.float64).eps,
                    reason="long double is double on this platform")
@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.longdouble, np.clongdouble], ids=str)
def test_longdouble_keeps_extended_precision(name, dtype):
    """1 + 2**-60 is exact in long double (64-bit mantissa) but not in double."""
    tiny = np.longdouble(2) ** -60
    a = np.array([[1, tiny, 3]], dtype)
    k = np.array([[1, 1]], dtype)
    got = cy(name)(a, k)
    # full: [a0, a0 + a1, a1 + a2, a2] (the kernel is symmetric)
    assert got.dtype == np.dtype(dtype)
    assert got[0, 1] == np.longdouble(1) + tiny
    assert got[0, 2] == np.longdouble(3) + tiny
    assert_same_result(got, scipy_call(name, a, k), exact_float=True)
    got = cy(name)(a, k, mode="same", boundary="fill", fillvalue=tiny)
    assert_same_result(got, scipy_call(name, a, k, "same", "fill", tiny), exact_float=True)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("boundary", ("wrap", "symm"))
@pytest.mark.parametrize("mode", ("full", "same"))
@pytest.mark.parametrize("shapes", [((1, 1), (7, 9)), ((2, 1), (11, 4)), ((3, 2), (13, 13)),
                                    ((2, 5), (1, 16))])
def test_boundary_extension_deeper_than_image(name, mode, boundary, shapes):
    """Kernels many times larger than the image: the extension repeats."""
    rng = np.random.default_rng(5)
    a = make_data(shapes[0], np.float64, rng)
    b = make_data(shapes[1], np.float64, rng)
    got = check_against_scipy(name, a, b, mode, boundary)
    assert_same_result(got, reference(name, a, b, mode, boundary),
                       bound=error_bound(name, a, b, mode, boundary, 0))


def test_boundary_aliases_are_identical():
    rng = np.random.default_rng(3)
    a = make_data((6, 5), np.float64, rng)
    b = make_data((4, 3), np.float64, rng)
    for name, mode in itertools.product(FUNCS, MODES):
        for x, y in (("fill", "pad"), ("wrap", "circular"), ("symm", "symmetric")):
            r1 = cy(name)(a, b, mode=mode, boundary=x, fillvalue=2.5)
            r2 = cy(name)(a, b, mode=mode, boundary=y, fillvalue=2.5)
            assert np.array_equal(r1, r2), (name, mode, x, y)


# ---------------------------------------------------------------------------
# integer wrap-around
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", INT_DTYPES, ids=str)
def test_integer_sums_wrap_like_scipy(name, dtype):
    info = np.iinfo(dtype)
    a = np.full((4, 5), info.max, dtype)
    a[1, ::2] = info.min
    a[2, 1] = info.max - 1
    b = np.full((3, 3), info.max, dtype)
    b[1, 1] = info.min if info.min < 0 else 3
    for mode, boundary in itertools.product(MODES, ("fill", "wrap", "symm")):
        got = check_against_scipy(name, a, b, mode, boundary, int(info.max))
        exact = reference(name, a, b, mode, boundary, int(info.max))
        assert np.array_equal(got, exact), (mode, boundary)


def _exact_bound_case(dtype, bits, rng):
    """An image and kernel of `dtype` whose correlation's bound, max|image| *
    sum|kernel|, is just below 2**bits (the image holds the peak)."""
    info = np.iinfo(dtype)
    k = rng.integers(0 if info.min == 0 else -3, 3, size=(3, 5), endpoint=True)
    k[1, 2] = 3
    ksum = int(np.abs(k).sum())
    peak = (2 ** bits - 1) // ksum
    assert peak <= info.max
    # (64 x 80: enough multiply-adds for the float route, _INT_AS_FLOAT_MACS)
    a = rng.integers(max(info.min, -peak), peak, size=(64, 80), endpoint=True)
    a[40, 50] = peak
    assert 2 ** (bits - 1) < peak * ksum < 2 ** bits
    return a.astype(dtype), k.astype(dtype), peak


@pytest.mark.parametrize("dtype, bits", [
    (dt, bits) for dt in INT_DTYPES for bits in (8, 23, 24, 40, 52, 53, 62)
    if 2 ** bits // 3 <= np.iinfo(dt).max], ids=str)   # (kernels sum to 3 or more)
def test_integer_sums_through_float_kernels_are_scipys_bits(dtype, bits):
    """Integer correlations whose sums stay below 2**23 run on the float32
    kernels, below 2**52 on the float64 ones, above on 64-bit integers: at
    each side of both thresholds the result is SciPy's to the bit, wrapping
    into narrow types included, with every boundary and fill."""
    a, k, peak = _exact_bound_case(dtype, bits, np.random.default_rng(bits))
    plan = _convolve._plan(a, k, "same", "fill", 0, True)
    chosen = _methods._exact_float_type(plan.image, plan.kernel, plan.fill)
    expected = np.float32 if bits <= 23 else np.float64 if bits <= 52 else None
    assert (chosen and chosen[0]) == (expected and np.dtype(expected)), chosen
    fill = -peak if np.iinfo(dtype).min < 0 else peak
    for name, mode, boundary in itertools.product(FUNCS, MODES, ("fill", "wrap", "symm")):
        got = check_against_scipy(name, a, k, mode, boundary, fill)
        assert got.flags.c_contiguous
        got_f = cy(name)(np.asfortranarray(a), k, mode, boundary, fill)
        assert got_f.flags.c_contiguous and np.array_equal(got_f, got)


@pytest.mark.parametrize("fill", [0, 255, -2**20, 2**40, -2**61])
def test_narrow_integer_image_into_a_wide_result_counts_the_fill(fill):
    """A uint8 image with an int64 kernel (an int64 result) is bounded by
    its own type, 255, and by the fill value, which may be far larger."""
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (64, 80), dtype=np.uint8)
    k = rng.integers(-3, 4, (5, 5))
    for name, mode in itertools.product(FUNCS, MODES):
        got = check_against_scipy(name, a, k, mode, "fill", fill)
        assert got.dtype == np.int64


def test_integer_overflow_example():
    a = np.array([[200, 100]], np.uint8)
    b = np.array([[2, 1]], np.uint8)
    # full: [200*2, 200*1 + 100*2, 100*1] = [400, 400, 100] mod 256
    expected = np.array([[400 % 256, 400 % 256, 100]], np.uint8)
    assert np.array_equal(cyconv.convolve2d(a, b), expected)
    assert np.array_equal(scipy.signal.convolve2d(a, b), expected)
    big = np.array([[2**62, 2**62]], np.int64)
    got = cyconv.correlate2d(big, np.array([[2, 2]], np.int64), mode="valid")
    assert got.dtype == np.int64
    assert got.tolist() == [[0]]   # 2**64 wraps to 0


# ---------------------------------------------------------------------------
# layouts, byte order, read-only inputs, non-mutation
# ---------------------------------------------------------------------------

def _layouts(x):
    """(label, array with the values of x) in assorted memory layouts."""
    out = [("C", np.ascontiguousarray(x)), ("F", np.asfortranarray(x))]
    big = np.zeros((x.shape[0] * 2, x.shape[1] * 3), x.dtype)
    big[::2, ::3] = x
    out.append(("strided", big[::2, ::3]))
    wide = np.zeros((x.shape[0], x.shape[1] * 2), x.dtype)
    wide[:, ::2] = x
    out.append(("every-other-column", wide[:, ::2]))
    rev = np.ascontiguousarray(x[::-1, ::-1])
    out.append(("negative-strides", rev[::-1, ::-1]))
    out.append(("negative-row-stride", np.ascontiguousarray(x[::-1])[::-1]))
    out.append(("transposed-view", np.ascontiguousarray(x.T).T))
    if x.dtype.itemsize > 1:
        out.append(("byteswapped", x.astype(x.dtype.newbyteorder(">" if np.little_endian
                                                                 else "<"))))
    ro = x.copy()
    ro.setflags(write=False)
    out.append(("read-only", ro))
    ro_strided = big.copy()[::2, ::3]
    ro_strided.setflags(write=False)
    out.append(("read-only-strided", ro_strided))
    for label, arr in out:
        assert np.array_equal(arr, x, equal_nan=x.dtype.kind in "fc"), label
    return out


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128, np.int32, np.uint8,
                                   np.longdouble], ids=str)
def test_layouts_give_same_result(name, mode, boundary, dtype):
    rng = np.random.default_rng(11)
    a = make_data((6, 7), dtype, rng)
    b = make_data((3, 4), dtype, rng)
    fill = fill_for(dtype)
    reference_result = check_against_scipy(name, a, b, mode, boundary, fill)
    for (la, xa), (lb, xb) in itertools.product(_layouts(a), _layouts(b)):
        before_a, before_b = xa.copy(), xb.copy()
        got = cy(name)(xa, xb, mode=mode, boundary=boundary, fillvalue=fill)
        assert got.dtype == reference_result.dtype.newbyteorder("="), (la, lb, got.dtype)
        assert np.array_equal(got, reference_result), (la, lb)
        assert np.array_equal(xa, before_a) and np.array_equal(xb, before_b), (la, lb)
        assert xa.dtype == before_a.dtype and xb.dtype == before_b.dtype


@pytest.mark.parametrize("shape", [(37, 50), (16, 16), (70, 33), (1, 40), (40, 2)])
@pytest.mark.parametrize("method", ["direct", "separable"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
def test_column_major_images_give_the_row_major_result(shape, method, dtype):
    # Column-major float images are read in place as their transposes, the
    # sums kept in the row-major order, and give column-major results: split
    # among threads, they must have the same bits as the row-major image's.
    rng = np.random.default_rng(23)
    x = rng.standard_normal(shape).astype(dtype)
    k = np.outer(rng.standard_normal(3), rng.standard_normal(4)).astype(dtype)
    for boundary in ("fill", "symm"):
        expected = cyconv.convolve2d(x, k, "same", boundary, method=method, workers=1)
        npt.assert_allclose(expected, scipy.signal.convolve2d(x, k, "same", boundary),
                            rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-5)
        for layout in (np.asfortranarray(x), np.ascontiguousarray(x.T).T,
                       np.asfortranarray(x)[::-1][::-1], np.asfortranarray(x[:, ::-1])[:, ::-1]):
            for workers in (1, 2):
                got = cyconv.convolve2d(layout, k, "same", boundary, method=method,
                                        workers=workers)
                assert np.array_equal(got, expected), (boundary, layout.strides, workers)
                assert got.flags.f_contiguous, (boundary, layout.strides)


@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (9, 9), (11, 4), (2, 9), (1, 6),
                                    (7, 1), (4, 4), (3, 5), (7, 3), (5, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
@pytest.mark.parametrize("pitch", ["4096-byte", "odd"])
def test_column_major_direct_reads_the_transpose(kshape, dtype, pitch):
    # The direct method reads a column-major float image in place as its
    # transpose, with the taps summed in the row-major kernel's order, and
    # returns a column-major result: bitwise the row-major image's result,
    # for any workers. Columns of 4096 bytes put every row of the transpose
    # in one L1 set, so larger kernels read it through gathered strips,
    # except the square ones whose shifts the level makes in registers:
    # every route, boundary and mode. (R x S kernels of 3, 5 and 7 taps
    # shift in registers too.)
    rng = np.random.default_rng(31)
    rows = 4096 // np.dtype(dtype).itemsize if pitch == "4096-byte" else 203
    x = rng.standard_normal((rows, 45)).astype(dtype)
    k = rng.standard_normal(kshape).astype(dtype)
    for got in _direct_on_view_matches(x, np.asfortranarray(x), k):
        assert got.flags.f_contiguous


def _direct_on_view_matches(x, view, k):
    """The direct method on `view` (x's values in another layout) against
    x's own result, bitwise, for both functions, four mode/boundary pairs and
    one or two workers (x's result checked against SciPy's first); yields
    each result for the caller's own checks."""
    tol = dict(rtol=1e-4 if x.dtype == np.float32 else 1e-12, atol=1e-4)
    for name in ("convolve2d", "correlate2d"):
        for mode, boundary in [("same", "fill"), ("full", "wrap"), ("valid", "fill"),
                               ("same", "symm")]:
            expected = cy(name)(x, k, mode, boundary, method="direct")
            npt.assert_allclose(expected, getattr(scipy.signal, name)(x, k, mode, boundary),
                                **tol)
            for workers in (1, 2):
                got = cy(name)(view, k, mode, boundary, method="direct", workers=workers)
                assert got.dtype == expected.dtype
                assert np.array_equal(got, expected), (name, mode, boundary, workers)
                yield got


@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (9, 9), (3, 5), (1, 6)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
def test_every_other_column_direct_reads_in_place(kshape, dtype):
    # A column-strided float image (a[:, ::2]) is read in place where the
    # level has row kernels for every other element (square 3x3-7x7 on
    # AVX-512), else through gathered strips: bitwise the contiguous
    # image's result either way, for any workers, every boundary and mode.
    rng = np.random.default_rng(37)
    x = rng.standard_normal((29, 150)).astype(dtype)
    wide = rng.standard_normal((29, 300)).astype(dtype)
    wide[:, ::2] = x
    k = rng.standard_normal(kshape).astype(dtype)
    assert len(list(_direct_on_view_matches(x, wide[:, ::2], k))) == 16


@pytest.mark.parametrize("kshape", [(9, 9), (11, 11), (4, 7), (13, 2)])
@pytest.mark.parametrize("step", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
def test_rows_gathered_in_several_strips_give_the_in_place_bits(kshape, step, dtype):
    # Strided images whose rows the kernels cannot read in place are
    # gathered a strip at a time, in whole row batches where a strip holds
    # one: over several strips and a short last one, bitwise the C-ordered
    # image's result.
    from cyconv import _methods
    rng = np.random.default_rng(41)
    width = 2100 // np.dtype(dtype).itemsize
    strip = _methods._strip_rows(10**6, width + kshape[1] - 1, np.dtype(dtype).itemsize)
    x = rng.standard_normal((2 * strip + 13, width)).astype(dtype)
    wide = np.repeat(x, step, axis=1)
    k = rng.standard_normal(kshape).astype(dtype)
    for mode, boundary in [("same", "fill"), ("full", "symm"), ("valid", "wrap")]:
        expected = cyconv.correlate2d(x, k, mode, boundary, method="direct", workers=1)
        for workers in (1, 2):
            got = cyconv.correlate2d(wide[:, ::step], k, mode, boundary, method="direct",
                                     workers=workers)
            assert np.array_equal(got, expected), (mode, boundary, workers)


@pytest.fixture
def stream_and_prefetch_always():
    """Results written with non-temporal stores, and the next input rows
    asked for ahead, whatever the sizes."""
    old = cyconv._core.set_stream_min_bytes(0), cyconv._core.set_prefetch_min_bytes(0)
    yield
    cyconv._core.set_stream_min_bytes(old[0])
    cyconv._core.set_prefetch_min_bytes(old[1])


def _in_layout(c_image, layout):
    """c_image as a C-ordered, a Fortran-ordered or a column-strided array."""
    if layout == "F":
        return np.asfortranarray(c_image)
    if layout == "cols::2":
        return np.repeat(c_image, 2, axis=1)[:, ::2]
    return c_image


@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (9, 9), (11, 11), (1, 6), (2, 9),
                                    (5, 1), (4, 7), (3, 5), (7, 3), (9, 5)])
@pytest.mark.parametrize("width", [256, 150])
@pytest.mark.parametrize("layout", ["C", "F", "cols::2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
def test_streamed_results_are_bitwise_the_cached_ones(stream_and_prefetch_always, dtype, layout,
                                                      width, kshape):
    # Results larger than the caches are written with non-temporal stores
    # where whole aligned cache lines are (width 256: every row starts on a
    # line; 150: rows at other offsets), and images larger than L2 have
    # their next rows prefetched. The same bits as plain stores without
    # prefetches, for every layout, mode and boundary, with one worker or
    # two, direct and, for a rank-1 kernel, separable.
    rng = np.random.default_rng(41)
    image = _in_layout(rng.standard_normal((67, width)).astype(dtype), layout)
    kernel = rng.standard_normal(kshape).astype(dtype)
    rank1 = np.outer(rng.standard_normal(kshape[0]), rng.standard_normal(kshape[1])).astype(dtype)
    cases = [(k, m, b, w, method) for k, method in ((kernel, "direct"), (rank1, "separable"))
             for m in MODES for b in ("fill", "wrap", "symm") for w in (1, 2)]
    streamed = [cyconv.convolve2d(image, k, m, b, method=method, workers=w)
                for k, m, b, w, method in cases]
    cyconv._core.set_stream_min_bytes(1 << 62)
    cyconv._core.set_prefetch_min_bytes(1 << 62)
    for got, (k, m, b, w, method) in zip(streamed, cases):
        expected = cyconv.convolve2d(image, k, m, b, method=method, workers=w)
        assert np.array_equal(got, expected), (m, b, w, method)


@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (11, 11), (4, 7), (7, 3), (1, 5)])
@pytest.mark.parametrize("width", [9, 16, 17, 31, 40, 64, 101, 150])
@pytest.mark.parametrize("layout", ["C", "F", "cols::2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
@pytest.mark.parametrize("streamed", [False, True])
def test_border_strips_give_the_interior_bits(dtype, layout, width, kshape, streamed):
    # The direct method reads the interior of a padded image in place and
    # its border columns through narrow gathered strips, whose width
    # depends on the dtype, the kernel and where the result's cache lines
    # start. Every pixel is summed in the same order either way: "full"
    # with zeros around the image gives, bit for bit, "valid" on the image
    # padded by hand (no border strips), for every width around the
    # strips' and the vectors' sizes.
    rng = np.random.default_rng(47)
    image = rng.standard_normal((23, width)).astype(dtype)
    kernel = rng.standard_normal(kshape).astype(dtype)
    M, N = kshape
    padded = np.pad(image, ((M - 1, M - 1), (N - 1, N - 1)))
    old = cyconv._core.set_stream_min_bytes(0 if streamed else 1 << 62)
    try:
        for workers in (1, 2):
            expected = cyconv.correlate2d(padded, kernel, "valid", method="direct",
                                          workers=workers)
            got = cyconv.correlate2d(_in_layout(image, layout), kernel, "full",
                                     method="direct", workers=workers)
            assert np.array_equal(got, expected), workers
    finally:
        cyconv._core.set_stream_min_bytes(old)
    npt.assert_allclose(expected, scipy.signal.correlate2d(image, kernel, "full"),
                        rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-4)


@pytest.mark.skipif(cyconv.kernel_level() != "avx512", reason="the choice exists on AVX-512 only")
@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (7, 7), (9, 9), (3, 5), (4, 4), (6, 6),
                                    (1, 7), (2, 9), (5, 1), (1, 3), (3, 1), (7, 3), (5, 7),
                                    (11, 11), (12, 12)])
@pytest.mark.parametrize("layout", ["C", "F", "cols::2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=str)
def test_rows_512_wide_or_mixed_give_the_same_bits(rows_512_restored, dtype, layout, kshape):
    # AVX-512 CPUs run every row kernel 512 bits wide where 512-bit FMAs
    # are full width (Zen 5), else 256 bits for the kernels that measured
    # faster so (Zen 4), and float64 square kernels of 10+ taps in blocks
    # of 8 rows or 6: whichever this CPU picks, the other must agree.
    rng = np.random.default_rng(43)
    image = _in_layout(rng.standard_normal((41, 150)).astype(dtype), layout)
    kernel = rng.standard_normal(kshape).astype(dtype)
    # (and rows narrower than one 512-bit vector, which stay 256-bit)
    small = image[:max(9, kshape[0]), :max(12, kshape[1])]
    cases = [(x, m, b, w) for x in (image, small) for m in MODES
             for b in ("fill", "symm") for w in (1, 2)]
    results = {}
    for wide in (False, True):
        cyconv._core.set_rows_512(wide)
        results[wide] = [cyconv.convolve2d(x, kernel, m, b, method="direct", workers=w)
                         for x, m, b, w in cases]
    for a, b, (x, *case) in zip(results[False], results[True], cases):
        assert np.array_equal(a, b), (x.shape, case)


@pytest.mark.parametrize("dtype", [">f8", ">i4", ">c16", ">f4", ">u2", ">i8", "<f8", "=c8"])
@pytest.mark.parametrize("name", FUNCS)
def test_byte_order_matches_scipy(name, dtype):
    rng = np.random.default_rng(17)
    native = np.dtype(dtype).newbyteorder("=")
    a = make_data((5, 6), native, rng).astype(dtype)
    b = make_data((3, 2), native, rng).astype(dtype)
    for mode, boundary in itertools.product(MODES, ("fill", "wrap", "symm")):
        got = check_against_scipy(name, a, b, mode, boundary, fill_for(native))
        assert got.dtype.isnative


@pytest.mark.parametrize("name", FUNCS)
def test_mixed_byte_order_and_layout_pair(name):
    rng = np.random.default_rng(23)
    a = make_data((8, 9), np.float64, rng)
    b = make_data((3, 5), np.float32, rng)
    xa = a.astype(">f8")[::-1, ::-1]
    xb = np.asfortranarray(b.astype(">f4"))
    xb.setflags(write=False)
    expected = scipy.signal.correlate2d(a, b, "same", "symm")
    got = cyconv.correlate2d(xa, xb, "same", "symm")
    assert_same_result(got, scipy.signal.correlate2d(xa, xb, "same", "symm"),
                       bound=error_bound("correlate2d", a, b, "same", "symm", 0))
    assert np.array_equal(cyconv.correlate2d(a[::-1, ::-1], b, "same", "symm"), got)
    assert expected.dtype == got.dtype == np.float64


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_inputs_are_not_modified(name, mode, boundary):
    rng = np.random.default_rng(29)
    for dtype in (np.float64, np.complex64, np.int16):
        a = make_data((5, 4), dtype, rng)
        b = make_data((6, 5), dtype, rng)   # larger: exercises the valid-mode swap
        fa, fb = np.asfortranarray(a), b[::-1]
        copies = [x.copy() for x in (a, b, fa, fb)]
        flags = [(x.flags.c_contiguous, x.flags.f_contiguous, x.strides) for x in (a, b, fa, fb)]
        cy(name)(a, b, mode=mode, boundary=boundary, fillvalue=1)
        cy(name)(fa, fb, mode=mode, boundary=boundary, fillvalue=1)
        for x, c, f in zip((a, b, fa, fb), copies, flags):
            assert np.array_equal(x, c)
            assert (x.flags.c_contiguous, x.flags.f_contiguous, x.strides) == f
            assert x.flags.writeable


def test_result_does_not_alias_inputs():
    a = np.arange(12.0).reshape(3, 4)
    k = np.ones((1, 1))
    for name, mode in itertools.product(FUNCS, MODES):
        out = cy(name)(a, k, mode=mode)
        assert not np.shares_memory(out, a) and not np.shares_memory(out, k)
        out[...] = -1
        assert a[0, 1] == 1.0 and k[0, 0] == 1.0


# ---------------------------------------------------------------------------
# dtypes and promotion
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dt2", SUPPORTED_DTYPES, ids=str)
@pytest.mark.parametrize("dt1", SUPPORTED_DTYPES, ids=str)
def test_mixed_dtypes_promote_like_scipy(dt1, dt2):
    rng = np.random.default_rng([SUPPORTED_DTYPES.index(dt1), SUPPORTED_DTYPES.index(dt2)])
    a = make_data((5, 4), dt1, rng, small=True)
    b = make_data((2, 3), dt2, rng, small=True)
    result_type = np.result_type(dt1, dt2)
    for name in FUNCS:
        got = check_against_scipy(name, a, b, "same", "symm")
        assert got.dtype == result_type
        got = check_against_scipy(name, a, b, "full", "fill", 3)
        assert got.dtype == result_type


@pytest.mark.parametrize("pair, result", [
    ((np.bool_, np.uint8), np.uint8),
    ((np.uint8, np.bool_), np.uint8),
    ((np.bool_, np.float64), np.float64),
    ((np.bool_, np.complex64), np.complex64),
    ((np.float16, np.float32), np.float32),
    ((np.float16, np.int16), np.float32),
    ((np.float16, np.complex64), np.complex64),
    ((np.uint64, np.int64), np.float64),
    ((np.uint32, np.int8), np.int64),
    ((np.int8, np.uint8), np.int16),
    ((np.float32, np.int64), np.float64),
    ((np.complex64, np.float64), np.complex128),
    ((np.longdouble, np.complex64), np.clongdouble),
], ids=str)
def test_promotion_through_unsupported_operand(pair, result):
    rng = np.random.default_rng(31)
    a = make_data((4, 4), pair[0], rng, small=True)
    b = make_data((2, 3), pair[1], rng, small=True)
    for name, mode in itertools.product(FUNCS, MODES):
        got = check_against_scipy(name, a, b, mode, "wrap")
        assert got.dtype == np.dtype(result)


UNSUPPORTED = [
    (np.bool_, np.bool_), (np.float16, np.float16), (np.float16, np.int8),
    (np.uint8, np.float16), (np.bool_, np.float16), (object, object), (object, np.float64),
    (np.float64, object), ("datetime64[s]", "datetime64[s]"), ("timedelta64[s]", np.int64),
    ("U3", "U3"), ("U3", np.float64), ("S2", "S2"),
]


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("pair", UNSUPPORTED, ids=str)
def test_unsupported_dtypes_raise_value_error(name, pair):
    a = np.ones((3, 3)).astype(np.dtype(pair[0])) if np.dtype(pair[0]).kind != "M" \
        else np.full((3, 3), 1, dtype=pair[0])
    b = np.ones((2, 2)).astype(np.dtype(pair[1])) if np.dtype(pair[1]).kind != "M" \
        else np.full((2, 2), 1, dtype=pair[1])
    for mode, boundary in itertools.product(MODES, ("fill", "symm")):
        with pytest.raises((ValueError, TypeError)):   # SciPy's correlate2d: TypeError
            scipy_quiet(name, a, b, mode, boundary)    # from in2.conj() for some
        with pytest.raises(ValueError, match="dtype|type"):
            cy(name)(a, b, mode=mode, boundary=boundary)


def test_python_lists_become_arrays_first():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    for name in FUNCS:
        got = check_against_scipy(name, img, [[1, 1]])
        assert got.dtype == np.int64   # the list is an int64 array, not a weak scalar
        got = check_against_scipy(name, img, [[1.5, -2]])
        assert got.dtype == np.float64
        got = check_against_scipy(name, img, [[1j, 2]])
        assert got.dtype == np.complex128
        got = check_against_scipy(name, img, [[True, False]])
        assert got.dtype == np.uint8
        got = check_against_scipy(name, [[1, 2, 3], [4, 5, 6]], [[1, -1]], "same", "wrap")
        assert got.dtype == np.int64
        got = check_against_scipy(name, [[1, 2.5], [3, 4]], ((2, 1),), "valid")
        assert got.dtype == np.float64
        for big in ([[2**63, 1]], [[2**63]], [[2**64 - 1, 2]]):
            for k in ([[1]], np.ones((1, 1), np.uint8), [[0.5, 1]]):
                got = check_against_scipy(name, big, k)
                assert got.dtype == np.result_type(np.asarray(big), np.asarray(k))
        got = check_against_scipy(name, np.float32([[1, 2], [3, 4]]), [[0.5]])
        assert got.dtype == np.float64
        got = check_against_scipy(name, [[1 + 2j, 3], [4, 5j]], np.ones((2, 2), np.float32),
                                  "same", "symm")
        assert got.dtype == np.complex128


def test_python_int_too_large_in_list_raises():
    for name in FUNCS:
        with pytest.raises((ValueError, TypeError)):
            cy(name)([[2**70, 1]], [[1]])
        with pytest.raises((ValueError, TypeError)):
            scipy_quiet(name, [[2**70, 1]], [[1]])


# ---------------------------------------------------------------------------
# fillvalue
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
@pytest.mark.parametrize("fill", [0, 1, 7, -1, 127, 255, 2**31 - 1, 2**63 - 1, 2**64 - 1,
                                  -2**63, 1.5, -0.5, 2.75, 1e10, 1 + 2j, 3j, 0j,
                                  np.float32(2.5), np.int8(-3), np.uint16(65535),
                                  np.float64(-1.25), np.longdouble(1) / 3, [4], (6,), [2.5],
                                  float("inf"), float("-inf"), float("nan")], ids=repr)
def test_fillvalue_matches_scipy(dtype, fill):
    """Any fill SciPy accepts gives SciPy's result; any it rejects raises ValueError."""
    rng = np.random.default_rng(41)
    a = make_data((3, 4), dtype, rng, small=True)
    b = make_data((2, 3), dtype, rng, small=True)
    for name, mode, boundary in itertools.product(FUNCS, ("full", "same"), FILL_BOUNDARIES):
        with warnings.catch_warnings(record=True) as w_scipy:
            warnings.simplefilter("always")
            try:
                expected = scipy_call(name, a, b, mode, boundary, fill)
            except ValueError:
                expected = None
        with warnings.catch_warnings(record=True) as w_cy:
            warnings.simplefilter("always")
            if expected is None:
                with pytest.raises(ValueError, match="fillvalue"):
                    cy(name)(a, b, mode=mode, boundary=boundary, fillvalue=fill)
                continue
            got = cy(name)(a, b, mode=mode, boundary=boundary, fillvalue=fill)
        # cyconv warns (e.g. NaN cast to int) only where SciPy warns too.
        assert {x.category for x in w_cy} <= {x.category for x in w_scipy}
        bound = error_bound(name, a, b, mode, boundary, fill) if expected.dtype.kind in "fc" \
            else None
        assert_same_result(got, expected, bound=bound)


@pytest.mark.parametrize("name", FUNCS)
def test_fillvalue_is_cast_to_result_type(name):
    one = np.zeros((1, 1))
    k = np.ones((2, 1))
    # full output (2, 1): each sums one image sample and one fill sample
    for dtype, fill, expect in [
        (np.uint8, 255, 255), (np.int8, -128, -128), (np.int64, 2**63 - 1, 2**63 - 1),
        (np.uint64, 2**64 - 1, 2**64 - 1), (np.int32, 2.9, 2), (np.uint8, 7.99, 7),
        (np.float32, 0.1, np.float32(0.1)), (np.float64, 2**60 + 1, float(2**60)),
        (np.complex64, 1 + 1j, np.complex64(1 + 1j)), (np.float64, [5], 5.0),
    ]:
        got = cy(name)(one.astype(dtype), k.astype(dtype), fillvalue=fill)
        ref = scipy_call(name, one.astype(dtype), k.astype(dtype), fillvalue=fill)
        assert got.dtype == np.dtype(dtype)
        assert np.array_equal(got, ref), (dtype, fill, got, ref)
        assert got[0, 0] == expect and got[1, 0] == expect, (dtype, fill, got)
    # long double keeps the bits of a long-double fill
    fill = np.longdouble(1) + np.finfo(np.longdouble).eps
    got = cy(name)(one.astype(np.longdouble), k.astype(np.longdouble), fillvalue=fill)
    assert got.dtype == np.longdouble
    assert got[0, 0] == fill and got[1, 0] == fill


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype, fill", [
    (np.uint8, -1), (np.uint8, 256), (np.int8, 128), (np.int8, -129), (np.int16, 2**15),
    (np.uint16, -5), (np.int32, 2**31), (np.uint32, 2**32), (np.int64, 2**70),
    (np.int64, 2**63), (np.int64, -2**63 - 1), (np.uint64, 2**64), (np.uint64, -1),
    (np.uint8, 1j), (np.int64, 1 + 0j), (np.float32, 2 - 1j), (np.float64, 1j),
    (np.longdouble, 0.5j), (np.float64, 0j), (np.int32, complex(3, 0)),
    (np.uint8, float("nan")), (np.int32, float("inf")), (np.int64, 1e30),
    (np.float64, [1, 2]), (np.int32, [[1], [2]]), (np.complex128, [1, 2, 3]),
    (np.float64, []), (np.uint8, []), (np.complex64, [[]]),
    (np.float64, "abc"), (np.int64, "x"),
], ids=repr)
def test_invalid_fillvalue_raises_like_scipy(name, dtype, fill):
    a = np.ones((3, 3), dtype)
    b = np.ones((2, 2), dtype)
    try:
        wrapped = scipy_quiet(name, a, b, "full", "fill", fill)
    except ValueError:
        wrapped = None
    if wrapped is not None:
        # NumPy 1.x wraps some out-of-range Python ints into the type (with a
        # DeprecationWarning), and SciPy with it; NumPy 2 refuses them all.
        assert NUMPY_1 and np.dtype(dtype).kind in "iu" and isinstance(fill, int)
        for boundary in FILL_BOUNDARIES:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                got = cy(name)(a, b, mode="full", boundary=boundary, fillvalue=fill)
            np.testing.assert_array_equal(got, scipy_quiet(name, a, b, "full", boundary, fill))
        return
    for boundary in FILL_BOUNDARIES:
        for mode in MODES:
            with pytest.raises(ValueError, match="fillvalue"):
                cy(name)(a, b, mode=mode, boundary=boundary, fillvalue=fill)


@pytest.mark.parametrize("fill", [object(), None], ids=repr)
def test_unconvertible_fillvalue_raises(fill):
    a = np.ones((3, 3), np.uint8)
    for name in FUNCS:
        with pytest.raises((ValueError, TypeError)):
            scipy_quiet(name, a, a, "full", "fill", fill)
        with pytest.raises((ValueError, TypeError), match="fillvalue"):
            cy(name)(a, a, fillvalue=fill)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("boundary", ("wrap", "circular", "symm", "symmetric"))
@pytest.mark.parametrize("fill", [-1, 2**70, 1j, [1, 2], [], "abc", None, float("nan")],
                         ids=repr)
def test_fillvalue_only_validated_for_fill_boundary(name, boundary, fill):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    b = np.ones((2, 2), np.uint8)
    for mode in MODES:
        expected = scipy_quiet(name, a, b, mode, boundary, fill)
        got = cy(name)(a, b, mode=mode, boundary=boundary, fillvalue=fill)
        assert_same_result(got, expected)
        assert np.array_equal(got, cy(name)(a, b, mode=mode, boundary=boundary))


# ---------------------------------------------------------------------------
# NaN and infinity
# ---------------------------------------------------------------------------

def _with_nonfinite(x, rng, count=3):
    x = x.copy()
    values = [np.nan, np.inf, -np.inf]
    if x.dtype.kind == "c":
        values += [complex(np.inf, 1), complex(0, np.nan), complex(-np.inf, np.inf)]
    flat = x.reshape(-1)
    for v, i in zip(itertools.cycle(values), rng.choice(flat.size, size=min(count, flat.size),
                                                        replace=False)):
        flat[i] = v
    return x


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
@pytest.mark.parametrize("where", ["in1", "in2", "both"])
def test_nan_inf_propagate_like_scipy(name, mode, boundary, dtype, where):
    rng = np.random.default_rng([MODES.index(mode), FLOAT_DTYPES.index(dtype), len(where)])
    a = make_data((7, 6), dtype, rng)
    b = make_data((3, 4), dtype, rng)
    b[0, 1] = 0   # 0 * inf = nan
    if where in ("in1", "both"):
        a = _with_nonfinite(a, rng)
    if where in ("in2", "both"):
        b = _with_nonfinite(b, rng, count=2)
    with np.errstate(invalid="ignore", over="ignore"):
        got = check_against_scipy(name, a, b, mode, boundary, 0.5)
    assert not np.isfinite(got).all()


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("fill", [float("nan"), float("inf"), float("-inf")], ids=repr)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_nonfinite_fillvalue_like_scipy(name, fill, dtype):
    rng = np.random.default_rng(43)
    a = make_data((4, 5), dtype, rng)
    b = make_data((3, 2), dtype, rng)
    for mode in MODES:
        got = check_against_scipy(name, a, b, mode, "fill", fill)
        if mode == "valid":
            assert np.isfinite(got).all()
        else:
            assert not np.isfinite(got).all()


COMPLEX_INF_CASES = {
    # SciPy multiplies complex numbers like C99/C++ (Annex G): a product whose
    # naive real and imaginary parts are both NaN but has an infinite factor is
    # recovered as an infinity.
    "real-int-image-x-inf-inf-kernel": (np.array([[4, -2], [1, 3]], np.int32),
                                        np.array([[complex(-np.inf, -np.inf)]], np.complex64)),
    "real-image-x-inf-inf-kernel": (np.array([[4.0, 1.5, -2.0]]),
                                    np.array([[complex(np.inf, np.inf), 1 + 1j]])),
    "inf-inf-image-x-real-kernel": (np.array([[complex(np.inf, np.inf), 2 + 0j]]),
                                    np.array([[2.0, 1.0]])),
    "imaginary-image-x-inf-inf-kernel": (np.array([[1j, 3j]], np.complex128),
                                         np.array([[complex(-np.inf, -np.inf)]])),
    "clongdouble": (np.array([[complex(np.inf, np.inf), 0.5]], np.clongdouble),
                    np.array([[3.0]], np.longdouble)),
}


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("case", list(COMPLEX_INF_CASES.values()), ids=list(COMPLEX_INF_CASES))
def test_complex_infinity_products_like_scipy(name, case):
    a, b = case
    for mode in ("full", "same"):
        expected = scipy_call(name, a, b, mode)
        with np.errstate(invalid="ignore"):
            got = cy(name)(a, b, mode=mode)
        assert got.dtype == expected.dtype
        for part in ("real", "imag"):
            g, e = getattr(got, part), getattr(expected, part)
            assert np.array_equal(np.isnan(g), np.isnan(e)), (mode, part, got, expected)
            assert np.array_equal(g[np.isinf(e)], e[np.isinf(e)]), (mode, part, got, expected)


def test_nan_example():
    a = np.array([[1.0, np.nan, 2.0]])
    got = cyconv.convolve2d(a, [[1.0, 1.0]])
    np.testing.assert_allclose(got, [[1.0, np.nan, np.nan, 2.0]], equal_nan=True)
    got = cyconv.correlate2d(np.array([[np.inf, 1.0]]), [[1.0, 0.0]], mode="valid")
    # valid: inf*1 + 1*0 = inf; the kernel's 0 multiplies the finite sample
    assert got.tolist() == [[np.inf]]
    got = cyconv.correlate2d(np.array([[np.inf, 1.0]]), [[0.0, 1.0]], mode="valid")
    assert np.isnan(got[0, 0])   # inf * 0


# ---------------------------------------------------------------------------
# correlation conjugates in2
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", COMPLEX_DTYPES, ids=str)
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
def test_correlate_conjugates_in2(dtype, boundary):
    rng = np.random.default_rng(47)
    a = make_data((6, 5), dtype, rng)
    b = make_data((3, 3), dtype, rng)   # odd, so 'same' centring is the same for both
    for mode in ("full", "same"):
        corr = cyconv.correlate2d(a, b, mode, boundary, 1 - 1j)
        conv = cyconv.convolve2d(a, np.conj(b)[::-1, ::-1], mode, boundary, 1 - 1j)
        assert_same_result(corr, conv, bound=error_bound("correlate2d", a, b, mode, boundary,
                                                         1 - 1j))
        # and conjugation really happens: differs from the unconjugated sum
        no_conj = cyconv.convolve2d(a, b[::-1, ::-1], mode, boundary, 1 - 1j)
        assert not np.allclose(corr, no_conj)
    small = np.array([[1j]], dtype)
    assert cyconv.correlate2d(small, small).tolist() == [[1 + 0j]]   # i * conj(i) = 1
    assert cyconv.convolve2d(small, small).tolist() == [[-1 + 0j]]   # i * i = -1


# ---------------------------------------------------------------------------
# documented difference (2): complex correlate2d, valid mode, in1 smaller
# ---------------------------------------------------------------------------

def _brute_force_valid_correlation(small, big):
    """z[k, l] = sum_{i, j} small[i, j] * conj(big[i + p, j + q]) with the lag
    (p, q) = (M - H - k, N - W - l), i.e. the 'full' correlation restricted to
    the lags where `small` lies entirely inside `big`."""
    H, W = small.shape
    M, N = big.shape
    out = np.zeros((M - H + 1, N - W + 1), np.clongdouble)
    for k in range(M - H + 1):
        for l in range(N - W + 1):
            p, q = M - H - k, N - W - l
            s = np.clongdouble(0)
            for i in range(H):
                for j in range(W):
                    s += np.clongdouble(small[i, j]) * np.conj(np.clongdouble(big[i + p, j + q]))
            out[k, l] = s
    return out


@pytest.mark.parametrize("dtype", COMPLEX_DTYPES, ids=str)
@pytest.mark.parametrize("shapes", [((2, 3), (5, 6)), ((1, 1), (3, 4)), ((3, 3), (3, 5)),
                                    ((2, 2), (4, 2)), ((1, 4), (6, 4))])
@pytest.mark.parametrize("boundary", ("fill", "wrap", "symm"))
def test_complex_valid_correlation_with_smaller_in1_is_true_correlation(dtype, shapes, boundary):
    rng = np.random.default_rng(53)
    small = make_data(shapes[0], dtype, rng)
    big = make_data(shapes[1], dtype, rng)
    got = cyconv.correlate2d(small, big, mode="valid", boundary=boundary, fillvalue=2j)
    bound = error_bound("correlate2d", small, big, "valid", boundary, 0)
    # 1. brute force from the definition
    brute = _brute_force_valid_correlation(small, big).astype(dtype)
    assert_same_result(got, brute, bound=bound)
    # 2. the 'valid' part of the full correlation (which SciPy gets right)
    (H, W), (M, N) = shapes
    full = scipy.signal.correlate2d(small, big, mode="full")
    assert_same_result(got, np.ascontiguousarray(full[H - 1:M, W - 1:N]), bound=bound)
    # 3. the conjugate of SciPy's valid result; equal to SciPy's for real parts
    scipy_valid = scipy.signal.correlate2d(small, big, mode="valid", boundary=boundary,
                                           fillvalue=2j)
    assert_same_result(got, np.conj(scipy_valid), bound=bound)
    # 4. via the swapped correlation: corr(small, big) = conj(corr(big, small))[::-1, ::-1]
    swapped = cyconv.correlate2d(big, small, mode="valid")
    assert_same_result(got, np.ascontiguousarray(np.conj(swapped)[::-1, ::-1]), bound=bound)
    # and equal shapes (no swap) agree with SciPy exactly as usual
    check_against_scipy("correlate2d", big, big[::-1].copy(), "valid", boundary)


@pytest.mark.parametrize("dtype", REAL_FLOAT_DTYPES + INT_DTYPES, ids=str)
def test_real_valid_correlation_with_smaller_in1_matches_scipy(dtype):
    rng = np.random.default_rng(59)
    small = make_data((2, 3), dtype, rng)
    big = make_data((5, 7), dtype, rng)
    got = check_against_scipy("correlate2d", small, big, "valid")
    assert_same_result(got, reference("correlate2d", small, big, "valid"),
                       bound=error_bound("correlate2d", small, big, "valid", "fill", 0)
                       if got.dtype.kind == "f" else None)


def test_complex_valid_correlation_swap_example():
    a = np.array([[1j]])
    b = np.array([[1.0, 2j]])
    # lags where a lies inside b: z[l] = a * conj(b[1 - l]) -> [1j * conj(2j), 1j * 1]
    got = cyconv.correlate2d(a, b, mode="valid")
    assert got.tolist() == [[2 + 0j, 1j]]
    assert np.conj(scipy.signal.correlate2d(a, b, mode="valid")).tolist() == [[2 + 0j, 1j]]


@pytest.mark.parametrize("name", FUNCS)
def test_valid_mode_swap_rules(name):
    rng = np.random.default_rng(61)
    a = make_data((3, 5), np.float64, rng)
    for b_shape, out_shape in [((3, 5), (1, 1)), ((4, 5), (2, 1)), ((3, 9), (1, 5)),
                               ((6, 7), (4, 3)), ((2, 2), (2, 4)), ((3, 1), (1, 5))]:
        b = make_data(b_shape, np.float64, rng)
        got = check_against_scipy(name, a, b, "valid")
        assert got.shape == out_shape
    for b_shape in [(4, 4), (2, 6), (1, 9), (7, 1)]:
        b = make_data(b_shape, np.float64, rng)
        with pytest.raises(ValueError):
            scipy_call(name, a, b, "valid")
        with pytest.raises(ValueError, match="valid"):
            cy(name)(a, b, mode="valid")


# ---------------------------------------------------------------------------
# documented difference (1): empty inputs
# ---------------------------------------------------------------------------

EMPTY_SHAPES = [(0, 0), (0, 3), (3, 0), (0, 1), (1, 0), (2, 0)]
NONEMPTY_SHAPES = [(1, 1), (2, 3), (4, 2)]


def _empty_cases():
    for s1, s2 in itertools.product(EMPTY_SHAPES + NONEMPTY_SHAPES, repeat=2):
        if 0 in s1 + s2:
            yield s1, s2


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", [np.float64, np.int16, np.complex64, np.uint8], ids=str)
@pytest.mark.parametrize("shapes", list(_empty_cases()), ids=str)
def test_empty_inputs_with_fill_match_scipy(name, mode, dtype, shapes):
    """SciPy is safe with empty arrays and boundary='fill': compare directly."""
    a = np.arange(1, 1 + int(np.prod(shapes[0])), dtype=dtype).reshape(shapes[0])
    b = np.arange(2, 2 + int(np.prod(shapes[1])), dtype=dtype).reshape(shapes[1])
    try:
        expected = scipy_call(name, a, b, mode, "fill", 3)
    except ValueError:
        expected = None
    shape = output_shape(shapes[0], shapes[1], mode)
    if expected is None:
        # SciPy: 'valid' with neither input containing the other, or a
        # negative 'full' size; cyconv raises ValueError too.
        assert shape is None or min(shape) < 0
        with pytest.raises(ValueError):
            cy(name)(a, b, mode=mode, boundary="fill", fillvalue=3)
        return
    got = cy(name)(a, b, mode=mode, boundary="fill", fillvalue=3)
    assert_same_result(got, expected)
    assert got.shape == shape
    assert_same_result(got, reference(name, a, b, mode, "fill", 3))


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", ("wrap", "circular", "symm", "symmetric"))
@pytest.mark.parametrize("shapes", list(_empty_cases()), ids=str)
def test_empty_inputs_with_wrap_symm(name, mode, boundary, shapes):
    """Derived expectation (SciPy is never called with an empty in1 here):
    - 'valid' with neither input containing the other: ValueError;
    - negative 'full' size: ValueError;
    - an empty output, or an empty in2 (the sum over nothing): zeros of
      SciPy's shape and dtype;
    - otherwise an empty in1 cannot be extended: ValueError."""
    dtype = np.float32
    a = np.ones(shapes[0], dtype)
    b = np.ones(shapes[1], dtype)
    before = (a.copy(), b.copy())
    shape = output_shape(shapes[0], shapes[1], mode)
    if shape is None:
        with pytest.raises(ValueError, match="valid"):
            cy(name)(a, b, mode=mode, boundary=boundary)
        return
    if min(shape) < 0:
        with pytest.raises(ValueError):
            cy(name)(a, b, mode=mode, boundary=boundary)
        return
    # the operand that ends up as the kernel ('valid' swaps)
    (H, W), (M, N) = shapes
    swap = mode == "valid" and not (H >= M and W >= N)
    kernel_shape = shapes[0] if swap else shapes[1]
    image_shape = shapes[1] if swap else shapes[0]
    if min(shape) == 0 or 0 in kernel_shape:
        got = cy(name)(a, b, mode=mode, boundary=boundary)
        assert_same_result(got, np.zeros(shape, dtype))
        if a.size:   # safe for SciPy: compare
            assert_same_result(got, scipy_call(name, a, b, mode, boundary))
    else:
        assert 0 in image_shape
        with pytest.raises(ValueError, match="in1|boundary|empty"):
            cy(name)(a, b, mode=mode, boundary=boundary)
    assert np.array_equal(a, before[0]) and np.array_equal(b, before[1])


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=str)
def test_empty_examples_from_contract(name, dtype):
    a03 = np.zeros((0, 3), dtype)
    k = np.ones((2, 2), dtype)
    # non-empty output with an empty in1 and wrap/symm: ValueError, never SIGFPE
    for boundary in ("wrap", "circular", "symm", "symmetric"):
        with pytest.raises(ValueError):
            cy(name)(a03, k, mode="full", boundary=boundary)
        # mode 'same' with in1 (0, 3): the empty result
        got = cy(name)(a03, k, mode="same", boundary=boundary)
        assert got.shape == (0, 3) and got.dtype == np.dtype(dtype)
    assert_same_result(cy(name)(a03, k, mode="same"), scipy_call(name, a03, k, "same"))
    # full mode, fill: every output sees only fill values -> fill * sum(kernel)
    got = cy(name)(a03, k, mode="full", fillvalue=2)
    assert_same_result(got, scipy_call(name, a03, k, "full", "fill", 2))
    assert got.shape == (1, 4) and np.all(got == 8)
    # empty in2: zeros of SciPy's output shape
    img = make_data((4, 5), dtype, np.random.default_rng(67))
    for e in ((0, 3), (2, 0), (0, 0)):
        for mode, boundary in itertools.product(MODES, BOUNDARIES):
            got = cy(name)(img, np.ones(e, dtype), mode=mode, boundary=boundary, fillvalue=1)
            assert_same_result(got, scipy_call(name, img, np.ones(e, dtype), mode, boundary, 1))
            assert not got.any()
    # negative full size
    for boundary in BOUNDARIES:
        with pytest.raises(ValueError):
            cy(name)(a03, np.ones((0, 3), dtype), mode="full", boundary=boundary)
        with pytest.raises(ValueError):
            cy(name)(np.ones((3, 0), dtype), np.ones((2, 0), dtype), boundary=boundary)


def test_empty_in1_wrap_full_example_message():
    with pytest.raises(ValueError, match="in1|boundary"):
        cyconv.convolve2d(np.zeros((0, 3)), np.ones((2, 2)), boundary="wrap")
    with pytest.raises(ValueError, match="in1|boundary"):
        cyconv.correlate2d(np.zeros((3, 0)), np.ones((1, 2)), mode="full", boundary="symm")


# ---------------------------------------------------------------------------
# argument errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("mode", ["FULL", "Same", "", "fulll", "reflect", None, 1, b"full",
                                  ["full"]], ids=repr)
def test_invalid_mode_raises(name, mode):
    a = np.ones((3, 3))
    with pytest.raises((ValueError, TypeError)):
        scipy_quiet(name, a, a, mode)
    with pytest.raises(ValueError, match="mode"):
        cy(name)(a, a, mode=mode)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("boundary", ["reflect", "Fill", "constant", "edge", "mirror", "",
                                      None, 0, b"fill", ["fill"]], ids=repr)
def test_invalid_boundary_raises(name, boundary):
    a = np.ones((3, 3))
    with pytest.raises((ValueError, TypeError)):
        scipy_quiet(name, a, a, "full", boundary)
    for mode in MODES:
        with pytest.raises(ValueError, match="boundary"):
            cy(name)(a, a, mode=mode, boundary=boundary)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("shapes", [((3,), (2, 2)), ((3, 3), (2,)), ((), (2, 2)),
                                    ((2, 2), ()), ((2, 2, 2), (2, 2)), ((2, 2), (1, 2, 2)),
                                    ((1, 3, 3), (1, 2, 2)), ((0,), (0,)), ((4,), (2,))], ids=str)
def test_non_2d_inputs_raise(name, shapes):
    a = np.ones(shapes[0])
    b = np.ones(shapes[1])
    with pytest.raises(ValueError):
        scipy_quiet(name, a, b)
    for boundary in ("fill", "wrap"):
        with pytest.raises(ValueError, match="2-D"):
            cy(name)(a, b, boundary=boundary)


@pytest.mark.parametrize("name", FUNCS)
def test_non_2d_python_objects_raise(name):
    for a, b in [([1, 2, 3], [[1]]), ([[1]], 5), (5, 5), ([[[1]]], [[1]])]:
        with pytest.raises(ValueError, match="2-D"):
            cy(name)(a, b)


def test_all_errors_are_value_or_type_errors():
    """A sweep of bad calls: each raises ValueError/TypeError, never anything else."""
    a = np.ones((3, 3))
    bad_calls = [
        dict(in1=a, in2=a, mode="nope"),
        dict(in1=a, in2=a, boundary="reflect"),
        dict(in1=a, in2=a, fillvalue=[1, 2]),
        dict(in1=a, in2=a, fillvalue=[]),
        dict(in1=a, in2=a, fillvalue=1j),
        dict(in1=a.astype(np.int64), in2=a.astype(np.int64), fillvalue=2**70),
        dict(in1=a.astype(bool), in2=a.astype(bool)),
        dict(in1=a.astype(np.float16), in2=a.astype(np.float16)),
        dict(in1=a.astype(object), in2=a),
        dict(in1=a.astype("U1"), in2=a),
        dict(in1=np.ones(3), in2=a),
        dict(in1=a, in2=np.ones((4, 1)), mode="valid"),
        dict(in1=np.ones((0, 3)), in2=np.ones((0, 3))),
        dict(in1=np.ones((0, 3)), in2=a, boundary="wrap"),
        dict(in1=np.ones((2, 0)), in2=a, boundary="symm"),
    ]
    if not NUMPY_1:   # (NumPy 1.x wraps -1 into uint8, and SciPy with it)
        bad_calls.append(dict(in1=a.astype(np.uint8), in2=a.astype(np.uint8), fillvalue=-1))
    for name, kw in itertools.product(FUNCS, bad_calls):
        with pytest.raises((ValueError, TypeError)):
            cy(name)(**kw)
            pytest.fail(f"{name} did not raise for {kw}")


@pytest.mark.parametrize("name", FUNCS)
def test_keyword_and_positional_arguments(name):
    rng = np.random.default_rng(71)
    a = make_data((5, 5), np.float64, rng)
    b = make_data((2, 3), np.float64, rng)
    r1 = cy(name)(a, b, "same", "fill", 1.5)
    r2 = cy(name)(in1=a, in2=b, mode="same", boundary="fill", fillvalue=1.5)
    assert np.array_equal(r1, r2)
    assert_same_result(r1, scipy_call(name, a, b, "same", "fill", 1.5),
                       bound=error_bound(name, a, b, "same", "fill", 1.5))

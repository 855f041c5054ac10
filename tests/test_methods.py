"""The `method` argument: every method against SciPy, auto's decisions, and
each method's accuracy contract (see README, "convolve2d / correlate2d").

- direct: SciPy's element-wise rounding (the grid in test_convolve2d.py);
- separable: factors that reproduce every kernel entry to a few ulps;
- fft: absolute error within _fft.error_bound (relative to the largest
  term); integer results only when provably exact (else direct).
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
import scipy.signal

import cyconv
from cyconv import _convolve, _core, _fft, _methods
from convolve2d_reference import output_shape
from test_convolve2d import (assert_same_result, error_bound, fill_for, make_data,
                             scipy_call)

METHODS = ("auto", "direct", "separable", "fft")
FUNCS = ("convolve2d", "correlate2d")
DTYPES = tuple(np.dtype(t) for t in (np.int16, np.int64, np.uint8, np.float32, np.float64,
                                     np.longdouble, np.complex64, np.complex128))
SHAPES = {"odd": ((7, 8), (3, 3)), "even": ((6, 7), (2, 4)), "1xN": ((1, 9), (1, 3)),
          "kernel-larger": ((3, 4), (7, 9)), "1x1-kernel": ((6, 5), (1, 1)),
          "big": ((40, 37), (9, 8))}


def rank1(shape, dtype, rng):
    """A rank-1 kernel of `dtype` (outer product of two random vectors)."""
    col = make_data((shape[0], 1), dtype, rng, small=True)
    row = make_data((1, shape[1]), dtype, rng, small=True)
    return (col * row).astype(dtype)


@pytest.mark.parametrize("shapes", list(SHAPES.values()), ids=list(SHAPES))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("mode,boundary", list(itertools.product(
    ("full", "same", "valid"), ("fill", "wrap", "symm"))))
@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_matches_scipy(method, name, mode, boundary, dtype, shapes):
    rng = np.random.default_rng([METHODS.index(method), FUNCS.index(name),
                                 DTYPES.index(dtype), list(SHAPES).index(str_key(shapes))])
    (H, W), (M, N) = shapes
    if method == "separable":   # both: 'valid' mode may swap them
        a, b = rank1((H, W), dtype, rng), rank1((M, N), dtype, rng)
    else:
        a = make_data((H, W), dtype, rng, small=dtype.kind in "iu" and method == "fft")
        b = make_data((M, N), dtype, rng)
    fill = fill_for(dtype)
    if output_shape((H, W), (M, N), mode) is None:
        with pytest.raises(ValueError, match="valid"):
            getattr(cyconv, name)(a, b, mode, boundary, fill, method=method)
        return
    if method == "separable" and dtype not in (np.float32, np.float64):
        with pytest.raises(ValueError, match="separable"):
            getattr(cyconv, name)(a, b, mode, boundary, fill, method=method)
        return
    a0, b0 = a.copy(), b.copy()
    got = getattr(cyconv, name)(a, b, mode, boundary, fill, method=method)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)   # inputs untouched
    expected = scipy_call(name, a, b, mode, boundary, fill)
    swapped = mode == "valid" and not (H >= M and W >= N)
    if name == "correlate2d" and swapped and dtype.kind == "c":
        expected = np.conj(expected)   # the documented difference
    bound = None
    if expected.dtype.kind in "fc":
        if method == "fft" and dtype.itemsize > 8 * (1 + (dtype.kind == "c")):
            # longdouble transforms run in double precision (documented)
            lower = np.complex128 if dtype.kind == "c" else np.float64
            bound = error_bound(name, a.astype(lower), b.astype(lower), mode, boundary, fill)
        else:
            bound = error_bound(name, a, b, mode, boundary, fill)
        if method == "separable":   # two rounded passes, then a rank-1 product
            bound = bound * 4
    assert_same_result(got, expected, bound=bound)


def str_key(shapes):
    return next(k for k, v in SHAPES.items() if v == shapes)


# ------------------------------------------------------------------ auto's decisions

def test_choose_method_tiny_inputs_are_direct():
    assert cyconv.choose_method(np.ones((8, 8)), np.ones((3, 3))) == "direct"
    assert cyconv.choose_method(np.ones((64, 64)), np.ones((3, 3)), "same") == "direct"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_choose_method_large_dense_kernel_is_fft(dtype):
    rng = np.random.default_rng(0)
    k = rng.standard_normal((51, 51)).astype(dtype)
    assert cyconv.choose_method(np.ones((1024, 1024), dtype), k, "same") == "fft"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_choose_method_rank1_kernel_is_separable_when_cheapest(dtype):
    g = cyconv.kernels.gaussian(15).astype(dtype)
    assert cyconv.choose_method(np.ones((512, 512), dtype), g, "same") == "separable"
    # The same kernel with one entry changed is not rank 1.
    g2 = g.copy()
    g2[3, 4] *= 1 + 1e-6
    assert cyconv.choose_method(np.ones((512, 512), dtype), g2, "same") != "separable"


def test_choose_method_non_float_and_non_finite_are_direct():
    k = np.random.default_rng(1).standard_normal((31, 31))
    assert cyconv.choose_method(np.ones((512, 512), np.int64), k.astype(np.int64),
                                "same") == "direct"
    img = np.ones((512, 512))
    assert cyconv.choose_method(img, k, "same") == "fft"
    img[100, 100] = np.nan
    assert cyconv.choose_method(img, k, "same") == "direct"


def test_auto_takes_the_fft_only_with_a_margin(monkeypatch):
    """1024^2 float64 with a 101 x 101 Gaussian: the model has the FFT and
    the separable passes within 1 % (the FFT measured 1.3-2.3x slower):
    auto stays with separable, and would take the FFT without the margin."""
    g = cyconv.kernels.gaussian(101)
    image = np.ones((1024, 1024))
    assert cyconv.choose_method(image, g, "same") == "separable"
    monkeypatch.setattr(_methods, "_FFT_MARGIN", 1.0)
    _methods._modelled_costs.cache_clear()
    try:
        assert cyconv.choose_method(image, g, "same") == "fft"
    finally:
        monkeypatch.undo()
        _methods._modelled_costs.cache_clear()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_stays_direct_for_every_non_finite_input(dtype):
    """Whatever the shapes favour (separable or FFT), a NaN or inf in the
    image, the kernel or the fill value keeps auto direct."""
    g = cyconv.kernels.gaussian(15).astype(dtype)
    dense = np.random.default_rng(3).standard_normal((31, 31)).astype(dtype)
    image = np.ones((512, 512), dtype)
    assert cyconv.choose_method(image, g, "same") == "separable"
    assert cyconv.choose_method(image, dense, "same") == "fft"
    for bad in (np.nan, np.inf, -np.inf):
        spoilt = image.copy()
        spoilt[200, 300] = bad
        assert cyconv.choose_method(spoilt, g, "same") == "direct"
        assert cyconv.choose_method(spoilt, dense, "same") == "direct"
        for k in (g, dense):
            k2 = k.copy()
            k2[7, 7] = bad
            assert cyconv.choose_method(image, k2, "same") == "direct"
        for k in (g, dense):   # the fill value (choose_method has none)
            plan = _convolve._plan(image, k, "same", "fill", bad, True)
            assert _methods.choose(plan, "auto") == "direct"


_SPECIALS = [np.nan, np.inf, -np.inf, -np.nan]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["C", "F", "cols::2", "rows::2", "reversed", "row"])
def test_all_finite_matches_isfinite_everywhere(dtype, layout):
    rng = np.random.default_rng(7)
    big = np.finfo(dtype).max
    base = (rng.uniform(-1, 1, (37, 45)) * (big / 2)).astype(dtype)  # sums overflow
    views = {"C": lambda a: a, "F": lambda a: np.asfortranarray(a), "row": lambda a: a[3:4],
             "cols::2": lambda a: a[:, ::2], "rows::2": lambda a: a[::2],
             "reversed": lambda a: a[::-1, ::-1]}
    view = views[layout]
    assert _methods._all_finite(view(base)) and _core.all_finite(view(base))
    for trial in range(40):
        a = base.copy()
        i, j = rng.integers(0, a.shape[0]), rng.integers(0, a.shape[1])
        a[i, j] = _SPECIALS[trial % 4]
        v = view(a)
        expected = bool(np.isfinite(v).all())
        assert _methods._all_finite(v) == expected
        assert _core.all_finite(v) == expected
    # NaNs with payloads, and the largest finite and subnormal values
    bits = np.uint32 if dtype == np.float32 else np.uint64
    a = base.copy()
    a.view(bits)[5, 6] = np.asarray(a[5, 6] * 0 + np.inf, dtype).view(bits) | bits(1)  # a NaN
    assert not _core.all_finite(a)
    a = np.full((3, 17), big, dtype)
    a[1, 1], a[2, 2] = -big, np.finfo(dtype).smallest_subnormal
    assert _core.all_finite(a) and _core.all_finite(a.T)
    assert _core.all_finite(np.empty((0, 5), dtype)) and _core.all_finite(np.empty((5, 0), dtype))



@pytest.mark.parametrize("level", range(_core.detect_level() + 1))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_finite_vector_scan_finds_every_position_at_every_level(level, dtype):
    """Rows long enough for the scan's steps of four vectors, then one, then
    single values: one inf or NaN is found wherever it sits in a row, at
    every kernel level this CPU has."""
    from cyconv import _config
    rng = np.random.default_rng(11)
    width = 4 * 16 + 16 + 7   # four AVX-512 float32 vectors, one more, a tail
    base = rng.uniform(-3, 3, (3, width)).astype(dtype)
    base[0, 0], base[2, -1] = np.finfo(dtype).max, -np.finfo(dtype).max
    _core.set_level(level)
    try:
        assert _core.all_finite(base)
        for j in range(width):
            a = base.copy()
            a[1, j] = _SPECIALS[j % 4]
            assert not _core.all_finite(a), (j, a[1, j])
            assert not _core.all_finite(a[:, j:]) and _core.all_finite(a[:, j + 1:])
    finally:
        _core.set_level(_config._choose_level())

def test_auto_decides_a_huge_rank1_kernel_fast():
    import time
    g = cyconv.kernels.gaussian(2001)
    t0 = time.perf_counter()
    method = cyconv.choose_method(np.ones((64, 64)), g, "same")
    assert method in ("separable", "fft")
    # Not a timed test of speed: an SVD of 2001x2001 would take many seconds.
    assert time.perf_counter() - t0 < 30


# ------------------------------------------------------------------ integers

@pytest.mark.parametrize("dtype", [np.int64, np.uint64, np.int32])
def test_fft_on_integers_is_exact_or_falls_back(dtype):
    rng = np.random.default_rng(5)
    hi = min(2 ** 40, np.iinfo(dtype).max)
    a = rng.integers(0, hi, (64, 64), dtype=dtype, endpoint=True)
    k = rng.integers(0, min(2 ** 20, np.iinfo(dtype).max), (9, 9), dtype=dtype)
    for mode in ("full", "same", "valid"):
        got = cyconv.convolve2d(a, k, mode, method="fft")   # warnings are errors here
        np.testing.assert_array_equal(got, scipy.signal.convolve2d(a, k, mode))
    small_a, small_k = a % 1000, k % 100   # provably exact: the FFT really runs
    assert _fft.is_exact_for_integers(_plan_for(small_a, small_k))
    assert not _fft.is_exact_for_integers(_plan_for(a, k))
    got = cyconv.correlate2d(small_a, small_k, "same", "symm", method="fft")
    np.testing.assert_array_equal(got, scipy.signal.correlate2d(small_a, small_k, "same", "symm"))


def _plan_for(a, k, mode="same", boundary="fill", fillvalue=0, convolve=True):
    from cyconv._convolve import _plan
    return _plan(a, k, mode, boundary, fillvalue, convolve)


# ------------------------------------------------------------------ separable

def _impulse_response(k, method):
    M, N = k.shape
    img = np.zeros((2 * M + 1, 2 * N + 1), k.dtype)
    img[M, N] = 1
    out = cyconv.convolve2d(img, k, "same", method=method)
    return out[M - (M - 1) // 2 - 0: M - (M - 1) // 2 + M, N - (N - 1) // 2: N - (N - 1) // 2 + N]


def _firwin_2d_hamming():
    """scipy.signal.firwin_2d((31, 31), ("hamming", "hamming"), fc=0.4): SciPy
    1.15 (the last for Python 3.10) lacks it; it is the outer product of the
    1-D design (equal to the bit under SciPy 1.17)."""
    if hasattr(scipy.signal, "firwin_2d"):
        return scipy.signal.firwin_2d((31, 31), ("hamming", "hamming"), fc=0.4)
    taps = scipy.signal.firwin(31, 0.4, window="hamming")
    return np.outer(taps, taps)


def _rank1_kernels(dtype):
    rng = np.random.default_rng(3)
    tiny = np.outer(np.logspace(-150, 0, 9), rng.uniform(0.5, 2, 7))
    yield cyconv.kernels.gaussian(7)
    yield cyconv.kernels.gaussian((9, 4), (1.3, 2.0))
    yield _firwin_2d_hamming()
    if dtype == np.float64:
        yield tiny
    else:
        yield np.outer(np.logspace(-15, 0, 9), rng.uniform(0.5, 2, 7))
    yield np.outer([1.0, 0.0, -2.0, 1e-10], [3.0, 0.0, 1e-5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_separable_reproduces_every_entry_of_an_impulse_response(dtype):
    eps = np.finfo(dtype).eps
    for k in _rank1_kernels(dtype):
        k = k.astype(dtype)
        got = _impulse_response(k, "separable")
        expected = cyconv.convolve2d(np.eye(1, dtype=dtype), k)   # the kernel itself
        # Entry-wise: a few ulps of each entry, zeros exactly zero.
        err = np.abs(got.astype(np.float64) - expected)
        assert (err <= 8 * eps * np.abs(expected)).all(), (k.shape, (err / np.abs(expected)).max())


def test_scipy_firwin_2d_impulse_response_with_auto():
    taps = _firwin_2d_hamming()
    impulse = np.zeros((63, 63))
    impulse[31, 31] = 1
    response = cyconv.convolve2d(impulse, taps, mode="same")
    np.testing.assert_allclose(response[16:47, 16:47], taps, rtol=1e-5)


def test_rank1_test_accepts_exact_products_and_rejects_perturbed_ones():
    rng = np.random.default_rng(9)
    for _ in range(20):
        k = np.outer(rng.standard_normal(rng.integers(1, 30)),
                     rng.standard_normal(rng.integers(1, 30)))
        assert _methods._rank1_factors(k) is not None
        if k.size > 1:
            k2 = k.copy()
            i, j = rng.integers(0, k.shape[0]), rng.integers(0, k.shape[1])
            k2[i, j] = k2[i, j] * (1 + 1e-9) + 1e-300
            assert _methods._rank1_factors(k2) is None
    assert _methods._rank1_factors(np.zeros((3, 3))) is None
    assert _methods._rank1_factors(np.array([[1.0, np.nan], [1.0, 1.0]])) is None
    assert _methods._rank1_factors(np.array([[1.0, np.inf], [1.0, 1.0]])) is None
    # A zero entry must be reproduced exactly: 1e-300 * 1e-300 underflows to 0 in the
    # outer product, but the kernel's 0 next to non-zeros in its row and column is not rank 1.
    assert _methods._rank1_factors(np.array([[1.0, 2.0], [3.0, 0.0]])) is None


def test_separable_rejects_a_kernel_that_is_not_rank1():
    with pytest.raises(ValueError, match="separable"):
        cyconv.convolve2d(np.ones((5, 5)), [[1.0, 2.0], [3.0, 5.0]], method="separable")


def test_small_rank1_memo_follows_the_kernel_contents():
    """The last small kernel's factors are remembered by its bytes: a kernel
    changed in place, or another one, gets its own factors."""
    rng = np.random.default_rng(5)
    img = rng.standard_normal((512, 512))
    k = np.outer(rng.standard_normal(15), rng.standard_normal(15))
    for _ in range(3):
        assert cyconv.choose_method(img, k, "same") == "separable"
        got = cyconv.convolve2d(img, k, "same")
        np.testing.assert_allclose(got, scipy.signal.convolve2d(img, k, "same"),
                                   rtol=1e-10, atol=1e-10)
        k[:] = np.outer(rng.standard_normal(15), rng.standard_normal(15))   # in place
    column, row = _methods._rank1_factors(k)
    assert not column.flags.writeable and not row.flags.writeable
    np.testing.assert_allclose(np.outer(column, row), k, rtol=1e-14, atol=1e-300)


def test_rank1_cache_notices_a_changed_kernel():
    k = cyconv.kernels.gaussian(301)
    assert _methods._rank1_factors(k[::-1, ::-1]) is not None
    assert _methods._rank1_factors(k[::-1, ::-1]) is not None   # from the cache
    k[7, 9] += 1e-3
    assert _methods._rank1_factors(k[::-1, ::-1]) is None


# ------------------------------------------------------------------ fft accuracy

@pytest.mark.parametrize("backend", ["scipy", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("shapes", [((200, 150), (31, 17)), ((64, 300), (5, 61)),
                                    ((30, 20), (40, 45)), ((260, 211), (15, 15))])
@pytest.mark.parametrize("mode,boundary", [("full", "fill"), ("same", "wrap"),
                                           ("same", "symm"), ("valid", "fill")])
def test_fft_error_within_documented_bound(dtype, shapes, mode, boundary, backend, monkeypatch):
    if backend == "numpy":
        monkeypatch.setattr(_fft, "_backend", ("numpy", np.fft))
    rng = np.random.default_rng(11)
    a = make_data(shapes[0], dtype, rng)
    k = make_data(shapes[1], dtype, rng)
    # Outputs of very different sizes: a slope, so most are far below the scale.
    a = (a * np.linspace(1e-3, 1, shapes[0][1])).astype(dtype)
    got = cyconv.correlate2d(a, k, mode, boundary, 2.5, method="fft")
    exact = cyconv.correlate2d(a.astype(np.clongdouble), k.astype(np.clongdouble), mode,
                               boundary, 2.5, method="direct")
    plan = _plan_for(a, k, mode, boundary, 2.5, convolve=False)
    th, tw, _ = _fft.tile_shape(plan.out_shape, plan.kernel.shape, plan.image.dtype)
    bound = _fft.error_bound(plan, th * tw)
    err = float(np.abs(got.astype(np.clongdouble) - exact).max())
    assert err <= bound, (err, bound)


def test_fft_results_do_not_depend_on_workers():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((700, 650)).astype(np.float32)
    k = rng.standard_normal((21, 21)).astype(np.float32)
    one = cyconv.convolve2d(a, k, "same", "symm", method="fft", workers=1)
    for w in (2, 3, 7):
        assert np.array_equal(one, cyconv.convolve2d(a, k, "same", "symm", method="fft",
                                                     workers=w))


def test_fft_with_numpy_backend(monkeypatch):
    monkeypatch.setattr(_fft, "_backend", ("numpy", np.fft))
    rng = np.random.default_rng(4)
    for dtype in (np.float32, np.float64, np.complex64):
        a = make_data((90, 70), dtype, rng)
        k = make_data((13, 11), dtype, rng)
        got = cyconv.convolve2d(a, k, "full", method="fft")
        assert got.dtype == dtype
        expected = scipy.signal.convolve2d(a, k, "full")
        assert_same_result(got, expected, bound=error_bound("convolve2d", a, k, "full",
                                                            "fill", 0))


_DIRECT_CALLS_LEAVE_SCIPY_ALONE = """
import sys
import numpy as np
import cyconv, cyconv.ndimage
from cyconv import _fft
rng = np.random.default_rng(0)
a = rng.standard_normal((300, 280))
k = rng.standard_normal((7, 7))
cyconv.convolve2d(a, k, "same")
cyconv.correlate2d(a.astype(np.float32), k.astype(np.float32), "valid", method="auto")
cyconv.convolve2d(a, np.outer(k[0], k[1]), "full")
cyconv.conv2d(rng.standard_normal((1, 3, 40, 40)), rng.standard_normal((4, 3, 3, 3)))
cyconv.ndimage.gaussian_filter(a, 2.0)
assert "scipy" not in sys.modules, sorted(m for m in sys.modules if m.startswith("scipy"))
assert _fft.backend_name() == "scipy"
big = cyconv.convolve2d(a, rng.standard_normal((41, 41)), "same", method="fft")
assert "scipy.fft" in sys.modules and _fft.backend()[0] == _fft.backend_name() == "scipy"
print("ok")
"""


def test_calls_that_run_direct_do_not_import_scipy():
    # auto's cost model needs only to know SciPy is there; importing
    # scipy.fft (a first call 0.16 s slower, SciPy's BLAS threads started)
    # waits for the first FFT. A fresh interpreter: this one has SciPy.
    proc = subprocess.run([sys.executable, "-c", _DIRECT_CALLS_LEAVE_SCIPY_ALONE],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


# ------------------------------------------------------------------ memory

def test_fft_request_too_large_raises_memory_error_before_work():
    huge = np.broadcast_to(np.float64(1.0), (300_000, 300_000))   # no memory behind it
    with pytest.raises(MemoryError, match=r"GiB"):
        cyconv.convolve2d(np.ones((4, 4)), huge, "same", method="fft")

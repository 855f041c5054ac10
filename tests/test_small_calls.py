"""The short path of convolve2d/correlate2d for repeated small calls: the
same results (bitwise) and the same errors as the full path."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import cyconv
from cyconv import _convolve, _methods

FUNCS = {"convolve2d": (cyconv.convolve2d, scipy.signal.convolve2d, True),
         "correlate2d": (cyconv.correlate2d, scipy.signal.correlate2d, False)}


def full_path(in1, in2, mode, boundary, fillvalue, convolve, method="direct"):
    """The result the full path computes (plan, chosen method, _methods.run)."""
    plan = _convolve._plan(in1, in2, mode, boundary, fillvalue, convolve)
    return _methods.run(plan, _methods.choose(plan, method), 1)


@pytest.fixture(autouse=True)
def fresh_cache():
    _convolve._short_paths.clear()
    yield
    _convolve._short_paths.clear()


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,kshape", [((8, 8), (3, 3)), ((64, 64), (3, 3)),
                                          ((17, 30), (4, 5)), ((1, 9), (1, 2)),
                                          ((5, 5), (5, 5)), ((40, 3), (2, 7))])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("boundary", ["fill", "wrap", "symm"])
def test_repeated_calls_are_bitwise_the_full_path(name, dtype, shape, kshape, mode, boundary):
    func, ref, convolve = FUNCS[name]
    rng = np.random.default_rng(hash((shape, kshape, mode, boundary)) % 2**32)
    k = rng.standard_normal(kshape).astype(dtype)
    if mode == "valid" and not all(a >= b for a, b in zip(shape, kshape)):
        shape = tuple(max(a, b) for a, b in zip(shape, kshape))
    images = [rng.standard_normal(shape).astype(dtype) for _ in range(3)]
    for i, a in enumerate(images):
        for workers in (None, 1, 2):
            got = func(a, k, mode, boundary, 3 if i == 1 else 0, workers=workers)
            expected = full_path(a, k, mode, boundary, 3 if i == 1 else 0, convolve)
            assert got.dtype == expected.dtype and got.shape == expected.shape
            assert got.tobytes() == expected.tobytes()
            tol = 1e-4 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(got, ref(a, k, mode, boundary, 3 if i == 1 else 0),
                                       rtol=tol, atol=tol * 10)
    assert _convolve._short_paths, "small float calls should be remembered"


def test_short_path_keeps_the_kernel_and_image_unchanged_and_output_fresh():
    a = np.arange(64.0).reshape(8, 8)
    k = np.arange(9.0).reshape(3, 3)
    a0, k0 = a.copy(), k.copy()
    first = cyconv.convolve2d(a, k, "same")
    second = cyconv.convolve2d(a, k, "same")
    assert first is not second and not np.shares_memory(first, second)
    second[...] = 0
    assert cyconv.convolve2d(a, k, "same").tobytes() == first.tobytes()
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(k, k0)
    assert first.flags.writeable and first.flags.c_contiguous


def test_layouts_take_the_short_path_with_the_same_result():
    # (a column-major image's result is column-major, on both paths)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 24)).astype(np.float32)
    k = rng.standard_normal((3, 3)).astype(np.float32)
    expected = full_path(a, k, "same", "fill", 0, True)
    for view in (a, np.asfortranarray(a), np.ascontiguousarray(a[::-1])[::-1],
                 np.ascontiguousarray(np.pad(a, 1)[1:-1, 1:-1])):
        for kview in (k, np.asfortranarray(k), k[::-1][::-1]):
            for _ in range(2):
                got = cyconv.convolve2d(view, kview, "same")
                assert got.tobytes() == expected.tobytes()
                assert got.flags.f_contiguous == (abs(view.strides[0]) < abs(view.strides[1]))


def test_errors_are_the_same_after_a_call_was_remembered():
    a = np.ones((8, 8), np.float32)
    k = np.ones((3, 3), np.float32)
    cyconv.convolve2d(a, k, "same")
    assert _convolve._short_paths
    with pytest.raises(ValueError, match="workers must be a positive int"):
        cyconv.convolve2d(a, k, "same", workers=0)
    with pytest.raises(TypeError, match="workers must be an int or None, got True"):
        cyconv.convolve2d(a, k, "same", workers=True)
    with pytest.raises(ValueError, match="mode must be one of"):
        cyconv.convolve2d(a, k, ["same"])
    with pytest.raises(ValueError, match="method must be one of"):
        cyconv.convolve2d(a, k, "same", method="winograd")
    with pytest.raises(ValueError, match="fillvalue"):
        cyconv.convolve2d(a, k, "same", fillvalue=1j)
    with pytest.raises(ValueError, match="fillvalue"):
        cyconv.convolve2d(a, k, "same", fillvalue=np.ones(2))
    with pytest.raises(ValueError, match="inputs must both be 2-D"):
        cyconv.convolve2d(a[0], k, "same")


def test_distinct_arguments_never_share_a_short_path():
    """Equal-comparing but different arguments (a bool fill, another dtype or
    byte order, another method) must not reuse a remembered call."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((10, 10))
    k = rng.standard_normal((3, 3))
    cyconv.convolve2d(a, k, "same", "fill", 0)
    with_true = cyconv.convolve2d(a, k, "same", "fill", True)
    assert with_true.tobytes() == full_path(a, k, "same", "fill", 1, True).tobytes()
    assert with_true.tobytes() != cyconv.convolve2d(a, k, "same", "fill", 0).tobytes()
    np.testing.assert_array_equal(cyconv.convolve2d(a, k, "same", "fill", 1),
                                  full_path(a, k, "same", "fill", 1, True))
    big = a.astype(">f8")
    assert cyconv.convolve2d(big, k, "same").tobytes() == \
        cyconv.convolve2d(a, k, "same").tobytes()
    got32 = cyconv.convolve2d(a.astype(np.float32), k.astype(np.float32), "same")
    assert got32.dtype == np.float32
    assert cyconv.correlate2d(a, k, "same").tobytes() == \
        full_path(a, k, "same", "fill", 0, False).tobytes()


def test_no_short_path_for_swaps_integers_or_big_work():
    a = np.ones((4, 5))
    k = np.ones((7, 9))
    cyconv.correlate2d(a, k, "valid")                 # swapped
    cyconv.convolve2d(np.ones((8, 8), int), np.ones((3, 3), int))
    cyconv.convolve2d(np.ones((400, 400)), np.ones((9, 9)), "same")   # > 1M multiply-adds
    assert not _convolve._short_paths


def test_the_cache_is_bounded():
    k = np.ones((2, 2))
    for n in range(1, _convolve._MAX_SHORT_PATHS + 40):
        cyconv.convolve2d(np.ones((1, n)), k)
    assert 0 < len(_convolve._short_paths) <= _convolve._MAX_SHORT_PATHS


def test_remembered_maps_are_read_only():
    cyconv.convolve2d(np.ones((8, 8)), np.ones((3, 3)), "same", "symm")
    (short,) = _convolve._short_paths.values()
    for a in (short.row_map, short.col_map, short.fill):
        with pytest.raises(ValueError):
            a[0] = 7


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("kshape", [(16, 16), (17, 17), (3, 90), (1, 300)])
def test_kernels_around_the_core_s_stack_copy(name, kshape):
    # The short path hands convolve2d's kernel to the core unflipped (the
    # core flips a copy on its stack) up to SMALL_KERNEL_TAPS taps, and
    # flips it with NumPy beyond: both give the full path's bits, also for a
    # kernel that is not C-contiguous.
    func, _, convolve = FUNCS[name]
    rng = np.random.default_rng(kshape[0] * 1000 + kshape[1])
    a = rng.standard_normal((12, 200)).astype(np.float32)   # under 1M multiply-adds
    k = rng.standard_normal(kshape).astype(np.float32)
    for kview in (k, np.asfortranarray(k), np.ascontiguousarray(k[::-1])[::-1]):
        expected = full_path(a, kview, "same", "fill", 0, convolve)
        for _ in range(2):
            assert func(a, kview, "same", method="direct").tobytes() == expected.tobytes()
    assert _convolve._short_paths


def test_the_core_refuses_a_big_flipped_kernel_instead_of_overflowing():
    from cyconv import _core
    n = 17                                    # 289 taps > SMALL_KERNEL_TAPS
    assert n * n > _core.small_kernel_taps()
    image = np.ones((4, 4), np.float32)
    maps = np.full(4 + n - 1, -1, np.int64)
    out = np.empty((4, 4), np.float32)
    strip = np.empty((4 + n - 1, 4 + n - 1), np.float32)
    fill = np.zeros(1, np.float32)
    k = np.ones((n, n), np.float32)
    for kernel, flip in ((k, True), (np.asfortranarray(k), False)):
        with pytest.raises(ValueError, match="at most 256 taps"):
            _core.correlate_plane(image, maps, maps, 8, fill, kernel, out, strip, 0, 4,
                                  flip=flip)
    _core.correlate_plane(image, maps, maps, 8, fill, k, out, strip, 0, 4)   # contiguous: fine
    assert not out.any()

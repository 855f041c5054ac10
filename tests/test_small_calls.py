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


def test_no_short_path_for_swaps_integers_or_a_choice_that_depends_on_values():
    a = np.ones((4, 5))
    k = np.ones((7, 9))
    cyconv.correlate2d(a, k, "valid")                 # swapped
    cyconv.convolve2d(np.ones((8, 8), int), np.ones((3, 3), int))
    # "auto" would weigh the separable method: its rank-1 test reads the kernel
    cyconv.convolve2d(np.ones((500, 500)), np.ones((9, 9)), "same")
    assert not _convolve._short_paths


@pytest.mark.parametrize("order", ["C", "F"])
def test_remembered_calls_make_the_full_path_s_core_calls(order, monkeypatch):
    # A remembered call of any size makes the full path's core calls (the
    # same row pieces, for any `workers`), so it gives the same bits.
    from cyconv import _parallel
    pieces = []
    specialized = _methods.correlate_plane_for

    def recording(dtype):   # the core function both paths call, recording its rows
        core = specialized(dtype)
        return lambda *a: (pieces.append(a[8:10]), core(*a))[1]

    monkeypatch.setattr(_methods, "correlate_plane_for", recording)
    _convolve._short_paths.clear()   # (a kept call holds its core function)
    monkeypatch.setattr(_parallel, "SPLIT_WORK_PER_THREAD", 1 << 18)   # 2 threads from 0.5M
    rng = np.random.default_rng(3)
    k = rng.standard_normal((5, 5)).astype(np.float32)
    for shape in ((300, 301), (120, 130), (7, 500)):   # 2.3M, 0.4M, 0.09M multiply-adds
        a = np.asarray(rng.standard_normal(shape).astype(np.float32), order=order)
        for workers in (1, 2, 3):
            plan = _convolve._plan(a, k, "same", "symm", 0, True)
            pieces.clear()
            expected = _methods.run(plan, "direct", workers)
            full = sorted(pieces)
            cyconv.convolve2d(a, k, "same", "symm", workers=workers, method="direct")
            pieces.clear()
            got = cyconv.convolve2d(a, k, "same", "symm", workers=workers, method="direct")
            assert sorted(pieces) == full and got.tobytes() == expected.tobytes()
            assert got.flags.f_contiguous == (order == "F")
        assert len(full) > 1 or shape != (300, 301)   # that one is cut into pieces
    assert len(_convolve._short_paths) == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_auto_is_remembered_only_where_the_shapes_decide(dtype):
    # "auto" is kept on the short path as it is when direct wins by the
    # shapes alone: then neither a separable kernel nor a NaN changes the
    # choice (where only a rank-1 kernel could change it, the kept call tests
    # each kernel: the next test).
    rng = np.random.default_rng(11)
    decided = 0
    for shape, kshape in (((64, 64), (3, 3)), ((300, 301), (5, 5)), ((1024, 1024), (3, 3)),
                          ((600, 600), (5, 5)), ((400, 400), (9, 9)), ((200, 3000), (1, 7)),
                          ((128, 128), (15, 15)), ((900, 700), (2, 2))):
        a = rng.standard_normal(shape).astype(dtype)
        column, row = rng.standard_normal((kshape[0], 1)), rng.standard_normal((1, kshape[1]))
        separable = (column @ row).astype(dtype)
        plan = _convolve._plan(a, separable, "same", "fill", 0, True)
        if not _methods.direct_from_shapes(plan):
            continue
        decided += 1
        assert _methods.choose(plan, "auto") == "direct"
        a[3, 5] = np.nan
        nan_plan = _convolve._plan(a, separable, "same", "fill", 0, True)
        assert _methods.choose(nan_plan, "auto") == "direct"
        _convolve._short_paths.clear()
        first = cyconv.convolve2d(a, separable, "same")
        assert len(_convolve._short_paths) == (1 if shape[0] * shape[1] * separable.size
                                               < 16_000_000 else 0)
        again = cyconv.convolve2d(a, separable, "same")
        assert again.tobytes() == first.tobytes()
    assert decided >= 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("convolve", [True, False])
def test_auto_kept_with_a_rank1_test_where_only_separable_could_win(dtype, convolve):
    # Where the FFT cannot win by the shapes but the separable method could
    # (400 x 400, 9 x 9), "auto" is kept on the short path with its kernel
    # tested on every call: a kernel that is not rank-1 runs direct, a
    # rank-1 one the full path's choice (separable): each the bits of the
    # method the full path picks.
    rng = np.random.default_rng(5)
    a = rng.standard_normal((400, 400)).astype(dtype)
    dense = rng.standard_normal((9, 9)).astype(dtype)
    rank1 = (rng.standard_normal((9, 1)) @ rng.standard_normal((1, 9))).astype(dtype)
    plan = _convolve._plan(a, dense, "same", "fill", 0, convolve)
    assert not _methods.direct_from_shapes(plan) and _methods.direct_unless_rank1(plan)
    rank1_plan = _convolve._plan(a, rank1, "same", "fill", 0, convolve)
    assert _methods.choose(rank1_plan, "auto") == "separable"
    direct = _methods.run(plan, "direct", 1).tobytes()
    separable = _methods.run(rank1_plan, "separable", 1).tobytes()
    assert separable != _methods.run(rank1_plan, "direct", 1).tobytes()   # (telling apart)
    _convolve._short_paths.clear()
    call = cyconv.convolve2d if convolve else cyconv.correlate2d
    for kernel, expected in ((dense, direct), (rank1, separable), (dense, direct),
                             (rank1, separable)):
        assert call(a, kernel, "same").tobytes() == expected
    (short,) = _convolve._short_paths.values()
    assert short.rank1_check

"""conv2d keeps what it derives from the shapes and arguments of a call
(_conv2d._prepared) for the next call with the same ones: repeated calls
give the bits of a first call, and every error of the full checks stays."""

from __future__ import annotations

import numpy as np
import pytest

import cyconv
from cyconv import _conv2d, _parallel

from conv2d_reference import conv2d_reference


@pytest.fixture(autouse=True)
def fresh_cache():
    _conv2d._prepared.clear()
    yield
    _conv2d._prepared.clear()


def first_call(*args, **kwargs):
    """conv2d's result with nothing remembered (the full checks and plan)."""
    _conv2d._prepared.clear()
    return cyconv.conv2d(*args, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xshape,wshape,kwargs", [
    ((1, 1, 3, 3), (1, 1, 1, 1), {}),
    ((2, 3, 28, 28), (8, 3, 3, 3), {"padding": 1}),
    ((3, 9, 9), (16, 3, 3, 3), {"stride": 2, "padding": "same"}),          # unbatched
    ((1, 4, 12, 10), (8, 2, 3, 2), {"groups": 2, "dilation": (2, 1), "padding": (1, 2)}),
    ((2, 8, 6, 7), (32, 8, 3, 3), {"padding": 2, "padding_mode": "reflect"}),
    ((1, 64, 20, 20), (64, 64, 3, 3), {"padding": 1}),                   # several pieces
])
def test_repeated_calls_are_bitwise_a_first_call(dtype, xshape, wshape, kwargs):
    rng = np.random.default_rng(sum(xshape) + sum(wshape))
    w = rng.standard_normal(wshape).astype(dtype)
    b = rng.standard_normal(wshape[0]).astype(dtype)
    for i in range(3):   # new data each time: nothing of the data is kept
        x = rng.standard_normal(xshape).astype(dtype)
        w = w + 1 if i == 2 else w
        for workers in (None, 1, 2):
            expected = first_call(x, w, b, workers=workers, **kwargs)
            for _ in range(2):
                got = cyconv.conv2d(x, w, b, workers=workers, **kwargs)
                assert got.dtype == expected.dtype and got.shape == expected.shape
                assert got.tobytes() == expected.tobytes()
            assert len(_conv2d._prepared) == 1
        x4, squeeze = (x, False) if x.ndim == 4 else (x[None], True)
        ref = conv2d_reference(x4.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                               **kwargs)
        ref = ref[0] if squeeze else ref
        tol = 1e-4 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * 10)


def test_pieces_follow_the_chunk_size_of_each_call(monkeypatch):
    # The pieces are cut per call, so a smaller CHUNK_WORK still splits a
    # remembered call into as many pieces as a call planned afresh (the
    # same bits).
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 16, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    whole = cyconv.conv2d(x, w, padding=1, workers=1)
    cuts = []
    run = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda f, chunks, *a: (cuts.append(len(chunks)),
                                                                 run(f, chunks, *a)))
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    pieces = cyconv.conv2d(x, w, padding=1, workers=1)
    monkeypatch.setattr(_conv2d, "_prepared", {})
    afresh = cyconv.conv2d(x, w, padding=1, workers=1)
    assert cuts[0] > 1 and cuts == [cuts[0]] * 2
    assert pieces.tobytes() == whole.tobytes() == afresh.tobytes()


def test_output_is_fresh_and_inputs_unchanged():
    x = np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5)
    w = np.ones((4, 3, 2, 2), np.float32)
    x0, w0 = x.copy(), w.copy()
    first = cyconv.conv2d(x, w)
    second = cyconv.conv2d(x, w)
    assert not np.shares_memory(first, second)
    second[...] = 0
    assert cyconv.conv2d(x, w).tobytes() == first.tobytes()
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.parametrize("good,bad,error", [
    ({"stride": 2}, {"stride": 2.0}, TypeError),
    ({"stride": 1}, {"stride": True}, TypeError),
    ({"stride": (1, 1)}, {"stride": (1, 1.0)}, TypeError),
    ({"padding": 1}, {"padding": 1.0}, TypeError),
    ({"groups": 1}, {"groups": 1.0}, TypeError),
    ({"dilation": [1, 1]}, {"dilation": [1, True]}, TypeError),
    ({"padding_mode": "zeros"}, {"padding_mode": "zero"}, ValueError),
    ({"workers": 1}, {"workers": 0}, ValueError),
    ({"workers": 1}, {"workers": 1.5}, TypeError),
])
def test_errors_stay_after_a_call_was_remembered(good, bad, error):
    x = np.ones((1, 2, 6, 6), np.float32)
    w = np.ones((4, 2, 3, 3), np.float32)
    with pytest.raises(error) as full:
        first_call(x, w, **bad)
    cyconv.conv2d(x, w, **good)
    cyconv.conv2d(x, w, **good)
    assert _conv2d._prepared
    with pytest.raises(error) as remembered:
        cyconv.conv2d(x, w, **bad)
    assert str(remembered.value) == str(full.value)


def test_out_is_checked_on_every_call():
    x = np.ones((1, 2, 6, 6))
    w = np.ones((3, 2, 3, 3))
    cyconv.conv2d(x, w)
    with pytest.raises(ValueError, match="out must have shape"):
        cyconv.conv2d(x, w, out=np.empty((1, 3, 4, 5)))
    with pytest.raises(ValueError, match="out must not overlap"):
        cyconv.conv2d(x, w, out=x.reshape(-1)[:48].reshape(1, 3, 4, 4))
    out = np.empty((1, 3, 4, 4))
    assert cyconv.conv2d(x, w, out=out) is out
    np.testing.assert_array_equal(out, cyconv.conv2d(x, w))


def test_unhashable_arguments_take_the_full_path():
    x = np.ones((1, 2, 6, 6))
    w = np.ones((3, 2, 3, 3))
    cyconv.conv2d(x, w, stride=(2, 1))
    _conv2d._prepared.clear()
    with pytest.raises(TypeError, match="stride must be a positive integer"):
        cyconv.conv2d(x, w, stride=np.array([2, 1]))
    assert not _conv2d._prepared


def test_kinds_of_arguments_are_kept_apart():
    # Equal, with equal hashes, yet different calls: "same" and an int, a
    # one-element list and an int, NumPy and Python ints all give their own
    # entries (with the same results where the values agree).
    x = np.ones((1, 1, 8, 8))
    w = np.ones((1, 1, 3, 3))
    results = [cyconv.conv2d(x, w, padding=p) for p in (1, "same", [1], np.int64(1), (1, 1))]
    # (a NumPy string for the usual plain ints and string: the slower key's kind)
    results.append(cyconv.conv2d(x, w, padding=1, padding_mode=np.str_("zeros")))
    assert len(_conv2d._prepared) == 6
    assert all(r.tobytes() == results[0].tobytes() for r in results)


def test_empty_outputs_and_kernels():
    x = np.ones((0, 2, 5, 5), np.float32)
    w = np.ones((3, 2, 2, 2), np.float32)
    for _ in range(2):
        assert cyconv.conv2d(x, w).shape == (0, 3, 4, 4)
    x = np.ones((1, 0, 5, 5))
    w = np.ones((3, 0, 2, 2))
    b = np.arange(3.0)
    for _ in range(2):
        got = cyconv.conv2d(x, w, b)
        np.testing.assert_array_equal(got, np.broadcast_to(b[:, None, None], (1, 3, 4, 4)))


def test_the_cache_is_bounded():
    w = np.ones((1, 1, 1, 1), np.float32)
    for n in range(1, _conv2d._MAX_PREPARED + 40):
        cyconv.conv2d(np.ones((1, 1, 1, n), np.float32), w)
    assert 0 < len(_conv2d._prepared) <= _conv2d._MAX_PREPARED


def test_remembered_maps_are_read_only():
    cyconv.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3)), padding=1,
                  padding_mode="circular")
    (prep,) = _conv2d._prepared.values()
    for a in (prep.row_map, prep.col_map):
        with pytest.raises(ValueError):
            a[0] = 7


# Calls of one piece keep their scratch with the plan (_core.SmallConv2d):
# one layer of each plan the AVX-512 level makes for them (other levels
# plan some of them otherwise, and check the same).
KEPT_CALLS = [
    ((1, 1, 2, 2), (1, 1, 1, 1), {}),                                      # plain tiles
    ((1, 1, 2, 2), (8, 1, 1, 1), {}),                                      # weights packed
    ((1, 4, 5, 5), (8, 4, 3, 3), {"padding": 1}),                          # weights staged
    ((1, 16, 2, 2), (32, 1, 1, 1), {"groups": 16}),                        # depthwise lanes
    ((1, 256, 2, 2), (64, 256, 1, 1), {}),                          # packed inline (float32)
    ((2, 1, 2, 2), (8, 1, 3, 3), {"stride": 2, "padding": 1}),             # gathered tiles
    ((3, 9, 9), (16, 3, 3, 3), {"stride": 2, "padding": "same"}),          # unbatched
    ((1, 4, 6, 5), (8, 2, 3, 2), {"groups": 2, "dilation": (2, 1), "padding": (1, 2),
                                  "padding_mode": "reflect"}),
    ((1, 1, 8, 8), (1, 1, 3, 3), {"padding": 1}),
]


@pytest.fixture
def kept_runs(monkeypatch):
    """What each call's kept one-piece call answered (True: it ran the call).
    Calls of up to 1 MB of scratch are kept (test_kept_calls_hold_little_scratch)."""
    monkeypatch.setattr(_conv2d, "SMALL_CALL_BYTES", 1 << 20)
    answers = []
    ran_small = _conv2d._ran_small
    monkeypatch.setattr(_conv2d, "_ran_small",
                        lambda *args: answers.append(ran_small(*args)) or answers[-1])
    return answers


def general_path(*args, **kwargs):
    """conv2d's result without the kept one-piece call."""
    ran_small = _conv2d._ran_small
    _conv2d._ran_small = lambda *args: False
    try:
        return cyconv.conv2d(*args, **kwargs)
    finally:
        _conv2d._ran_small = ran_small


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xshape,wshape,kwargs", KEPT_CALLS)
def test_kept_one_piece_calls_are_bitwise_the_general_path(kept_runs, dtype, xshape, wshape,
                                                           kwargs):
    rng = np.random.default_rng(sum(xshape) + sum(wshape))
    x = rng.standard_normal(xshape).astype(dtype)
    w = rng.standard_normal(wshape).astype(dtype)
    b = rng.standard_normal(wshape[0]).astype(dtype)
    out = None
    for i in range(4):
        # The same arrays changed in place: nothing of the data is kept
        # (packed weights included).
        x *= -1.5
        w[...] = rng.standard_normal(wshape)
        bias = None if i == 1 else b
        expected = general_path(x, w, bias, **kwargs)
        got = cyconv.conv2d(x, w, bias, out=out, **kwargs)
        assert got.tobytes() == expected.tobytes()
        out = got if i == 2 else None
    assert all(prep.small is not None for prep in _conv2d._prepared.values())
    assert kept_runs == [True] * 4
    x4 = x if x.ndim == 4 else x[None]
    ref = conv2d_reference(x4.astype(np.float64), w.astype(np.float64), b.astype(np.float64),
                           **kwargs)
    tol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, ref.reshape(got.shape), rtol=tol, atol=tol * 10)


def test_kept_calls_hold_little_scratch(monkeypatch):
    # A one-piece call whose scratch would pass SMALL_CALL_BYTES (here its
    # packed or staged weights: 73 KB) takes the general path.
    x = np.ones((1, 32, 2, 2), np.float32)
    w = np.ones((64, 32, 3, 3), np.float32)
    got = cyconv.conv2d(x, w, stride=2, padding=1)
    assert w.nbytes > _conv2d.SMALL_CALL_BYTES
    (prep,) = _conv2d._prepared.values()
    assert prep.small is None and prep.plan is not None
    monkeypatch.setattr(_conv2d, "SMALL_CALL_BYTES", 1 << 20)   # (kept with a larger bound)
    _conv2d._prepared.clear()
    assert cyconv.conv2d(x, w, stride=2, padding=1).tobytes() == got.tobytes()
    (prep,) = _conv2d._prepared.values()
    assert prep.small is not None


def misaligned(a):
    """A copy of `a` whose data starts one byte past an element boundary."""
    raw = np.empty(a.nbytes + 1, np.uint8)[1:]
    copy = raw.view(a.dtype).reshape(a.shape)
    copy[...] = a
    assert not copy.flags.aligned
    return copy


@pytest.mark.parametrize("case", ["flipped weights", "misaligned input", "misaligned weights",
                                  "big-endian input", "strided bias", "float32 input"])
def test_kept_calls_decline_arrays_they_do_not_take(kept_runs, case):
    # Declined, the general path runs the call (converting or copying).
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 4, 6, 6))
    w = rng.standard_normal((8, 4, 3, 3))
    b = rng.standard_normal(16)[::2]
    if case == "flipped weights":   # (taken by plans that pack or stage them)
        x, w = x[:, :1], w[:1, :1, ::-1, ::-1]
    elif case == "misaligned input":
        x = misaligned(x)
    elif case == "misaligned weights":
        w = misaligned(w)
    elif case == "big-endian input":
        x = x.astype(">f8")
    elif case == "float32 input":   # (a float64 call)
        x = x.astype(np.float32)
    b = b[:len(w)] if case == "strided bias" else np.ascontiguousarray(b[:len(w)])
    expected = general_path(np.array(x), np.array(w), b, padding=1)
    got = cyconv.conv2d(x, w, b, padding=1)
    assert got.tobytes() == expected.tobytes()
    assert all(prep.small is not None for prep in _conv2d._prepared.values())
    prep = _conv2d._prepared[_conv2d._key(x, w, b, 1, 1, 1, 1, "zeros")]
    assert kept_runs == [case == "flipped weights" and prep.plan.blocked]


def test_kept_calls_on_threads_at_once():
    # A kept call another thread is running declines: the general path runs.
    import threading
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    expected = general_path(x, w, padding=1)
    results, start = [], threading.Barrier(4)

    def calls():
        start.wait()
        results.extend(cyconv.conv2d(x, w, padding=1).tobytes() for _ in range(300))

    threads = [threading.Thread(target=calls) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected.tobytes()] * 1200

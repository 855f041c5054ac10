"""The geometry layer (cyconv._geometry): its shapes are the shapes the real
functions produce, its halos are exactly what a chunk reads, its chunk
plans tile the padded axis and the output, and its errors are the public ones."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cyconv
from cyconv import _geometry as G
from cyconv._padding import index_map

EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "pad", "wrap", "circular", "symm", "symmetric")


# =========================================================================== integers

@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, "1", None, (1,)])
def test_as_int_refuses_bools_and_non_integers(value):
    with pytest.raises(TypeError, match="n must be a thing, got"):
        G.as_int(value, "n", "a thing")


@pytest.mark.parametrize("value", [3, np.int8(3), np.uint64(3), np.array(3)])
def test_as_int_takes_every_integer(value):
    v = G.as_int(value, "n", "a thing")
    assert v == 3 and type(v) is int


def test_int_at_least_messages():
    with pytest.raises(ValueError, match="groups must be a positive integer, got 0"):
        G.int_at_least(0, "groups", 1)
    with pytest.raises(ValueError, match="padding must be a non-negative integer, got -1"):
        G.int_at_least(-1, "padding", 0)
    assert G.int_at_least(0, "padding", 0) == 0


@pytest.mark.parametrize("value, pair", [(2, (2, 2)), ((2,), (2, 2)), ([3], (3, 3)),
                                         ((1, 4), (1, 4)), ([np.int64(2), 5], (2, 5))])
def test_int_pair_forms(value, pair):
    assert G.int_pair(value, "stride") == pair


@pytest.mark.parametrize("value", [(), (1, 1, 1), [], (0,), (1, 0)])
def test_int_pair_value_errors(value):
    with pytest.raises(ValueError, match="stride"):
        G.int_pair(value, "stride")


def test_every_integer_check_is_the_shared_one():
    """workers, groups, kernel sizes and laplacian's neighbours all refuse a
    bool with the same TypeError."""
    calls = [lambda: cyconv.convolve2d(np.ones((3, 3)), np.ones((2, 2)), workers=True),
             lambda: cyconv.set_num_threads(True),
             lambda: cyconv.conv2d(np.ones((1, 2, 4, 4)), np.ones((2, 1, 1, 1)), groups=True),
             lambda: cyconv.kernels.box(True),
             lambda: cyconv.kernels.laplacian(True)]
    for call in calls:
        with pytest.raises(TypeError, match="must be .*, got True"):
            call()


# =========================================================================== axes and chunks

@st.composite
def axes(draw, max_stride=4):
    k = draw(st.integers(1, 9))
    d = draw(st.integers(1, 3))
    span = d * (k - 1) + 1
    stride = draw(st.integers(1, max_stride))
    before, after = draw(st.integers(0, span)), draw(st.integers(0, span))
    size = draw(st.integers(max(1, span - before - after), 60))
    return G.Axis(size, before, after, span, stride)


@st.composite
def chunkings(draw, n):
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=8))) if n > 1 else []
    bounds = [0, *cuts, n]
    return tuple(b - a for a, b in zip(bounds, bounds[1:]))


@SETTINGS
@given(st.data())
def test_split_axis_tiles_and_halos_are_exact(data):
    """Output chunk [u, v) with its padded chunk plus (before, after) halo is
    a block that starts at padded u*stride and gives exactly v - u outputs in
    valid mode (it holds [u*stride, (v-1)*stride + span), plus fewer than
    `stride` unread samples); the chunks cover the padded axis and the
    output; every chunk holds the halo its neighbours take from it."""
    axis = data.draw(axes())
    chunks = data.draw(chunkings(axis.size))
    plan = G.split_axis(axis, chunks)
    assert axis.out >= 1
    assert sum(plan.padded_chunks) == axis.padded
    assert sum(plan.out_chunks) == axis.out
    assert len(plan.padded_chunks) == len(plan.out_chunks)
    assert all(c >= 1 for c in plan.out_chunks)
    a, b = plan.depth
    assert (a, b) == axis.halo and a + b == max(axis.span - axis.stride, 0)
    start = u = 0
    n = len(plan.out_chunks)
    for i, (p, o) in enumerate(zip(plan.padded_chunks, plan.out_chunks)):
        lo = start - (a if i > 0 else 0)
        hi = start + p + (b if i < n - 1 else 0)
        assert lo == u * axis.stride
        assert (hi - lo - axis.span) // axis.stride + 1 == o
        if n > 1:
            assert p >= max(a, b)  # dask.array.overlap takes the halo from one neighbour
        start += p
        u += o


@SETTINGS
@given(st.data())
def test_split_axis_keeps_input_chunk_boundaries(data):
    """With stride 1 output chunks start where input chunks start (shifted by
    nothing): a chunk boundary of the input is one of the output, unless merged."""
    axis = data.draw(axes(max_stride=1))
    chunks = data.draw(chunkings(axis.size))
    plan = G.split_axis(axis, chunks)
    a, _ = axis.halo
    in_bounds = set(np.cumsum(chunks)[:-1] + axis.before - a)
    out_bounds = set(np.cumsum(plan.out_chunks)[:-1])
    assert out_bounds <= in_bounds


def _padded_indices(axis, rule, kw):
    """np.pad of the indices; NumPy 1.x mirrors wrongly once a side takes more
    than one reflection (np.pad(np.arange(2), (1, 8), "symmetric") ends in 0,
    not 1; numpy/numpy#25926, fixed in 2.0), so there the mirror's period."""
    n = axis.size
    if (np.lib.NumpyVersion(np.__version__) >= "2.0.0" or rule not in ("symmetric", "reflect")
            or max(axis.before, axis.after) <= n):
        return np.pad(np.arange(n), (axis.before, axis.after), rule, **kw)
    period = 2 * n if rule == "symmetric" else 2 * n - 2
    q = np.arange(-axis.before, n + axis.after) % period
    return np.where(q < n, q, period - 1 - q if rule == "symmetric" else period - q)


@SETTINGS
@given(axes(), st.sampled_from(["constant", "wrap", "symmetric", "reflect", "edge"]))
def test_axis_map_is_np_pad_and_read_only(axis, rule):
    if rule == "reflect" and max(axis.before, axis.after) >= axis.size > 1:
        rule = "symmetric"
    m = G.axis_map(axis, rule)
    assert not m.flags.writeable
    assert len(m) == axis.padded
    kw = dict(constant_values=-1) if rule == "constant" else {}
    if rule != "reflect" or axis.size > 1:
        np.testing.assert_array_equal(m, _padded_indices(axis, rule, kw))
    np.testing.assert_array_equal(m, index_map(axis.size, axis.before, axis.after, rule))


# =========================================================================== convolve2d

shapes = st.tuples(st.integers(0, 9), st.integers(0, 9))


@SETTINGS
@given(shapes, shapes, st.sampled_from(MODES), st.sampled_from(BOUNDARIES), st.booleans())
def test_filter2d_geometry_is_what_the_functions_do(s1, s2, mode, boundary, convolve):
    func = cyconv.convolve2d if convolve else cyconv.correlate2d
    a = np.arange(1, 1 + s1[0] * s1[1], dtype=float).reshape(s1)
    k = np.arange(1, 1 + s2[0] * s2[1], dtype=float).reshape(s2)
    try:
        geo = G.filter2d(a.shape, k.shape, mode, boundary, convolve)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc).replace("(", r"\(").replace(")", r"\)")
                           .replace("[", r"\[")):
            func(a, k, mode, boundary)
        return
    got = func(a, k, mode, boundary)
    assert got.shape == geo.out_shape
    assert geo.swapped == (mode == "valid" and s1 != s2 and all(
        y >= x for x, y in zip(s1, s2)))
    if geo.empty:
        return
    # The padding is the one that makes the result a valid correlation of
    # the padded image: check against np.pad + a valid correlation.
    img, ker = (k, a) if geo.swapped else (a, k)
    top, bottom, left, right = geo.pads
    kw = dict(constant_values=0) if geo.rule == "constant" else {}
    padded = np.pad(img, ((top, bottom), (left, right)), geo.rule, **kw)
    kernel = ker[::-1, ::-1] if convolve else ker
    M, N = kernel.shape
    ref = np.array([[np.sum(padded[i:i + M, j:j + N] * kernel)
                     for j in range(geo.out_shape[1])] for i in range(geo.out_shape[0])])
    if geo.swapped and not convolve:
        ref = ref[::-1, ::-1]
    np.testing.assert_allclose(got, ref.reshape(geo.out_shape), rtol=1e-12, atol=1e-9)


def test_filter2d_halo_is_kernel_minus_one_split_by_the_centring():
    for M in range(1, 8):
        for convolve in (True, False):
            geo = G.filter2d((20, 20), (M, M), "same", "fill", convolve)
            a, b = geo.rows.halo
            assert a + b == M - 1
            assert a == geo.rows.before  # output chunks start on input chunk starts
            full = G.filter2d((20, 20), (M, M), "full", "fill", convolve)
            assert full.rows.halo == (M - 1, 0)
            valid = G.filter2d((20, 20), (M, M), "valid", "fill", convolve)
            assert valid.rows.halo == (0, M - 1)


def test_filter2d_errors():
    with pytest.raises(ValueError, match="mode must be one of"):
        G.filter2d((3, 3), (2, 2), "sam", "fill", True)
    with pytest.raises(ValueError, match="mode must be one of"):
        G.filter2d((3, 3), (2, 2), ["same"], "fill", True)   # unhashable: not cached
    with pytest.raises(ValueError, match="boundary must be"):
        G.filter2d((3, 3), (2, 2), "same", "reflect", True)
    with pytest.raises(ValueError, match="For 'valid' mode"):
        G.filter2d((3, 30), (30, 3), "valid", "fill", True)
    with pytest.raises(ValueError, match="must both be 2-D"):
        G.filter2d((3, 3, 3), (2, 2), "same", "fill", True)
    with pytest.raises(ValueError, match="cannot extend an empty in1"):
        G.filter2d((0, 4), (2, 2), "full", "wrap", True)
    with pytest.raises(ValueError, match="negative size"):
        G.filter2d((0, 3), (0, 3), "full", "fill", False)


def test_filter2d_index_maps_are_shared_and_read_only():
    geo = G.filter2d((64, 64), (3, 3), "same", "symm", True)
    rows, cols = geo.index_maps()
    again = G.filter2d((64, 64), (3, 3), "same", "symm", True).index_maps()
    assert rows is again[0] and cols is again[1]
    assert not rows.flags.writeable and not cols.flags.writeable
    with pytest.raises(ValueError):
        rows[0] = 5


def test_fill_scalar_and_dtype():
    assert G.filter2d_dtype(np.dtype(np.float32), np.dtype(">f4"), "convolve2d") == np.float32
    assert G.filter2d_dtype(np.dtype(">f8"), np.dtype(np.int8), "x").byteorder in "=|"
    with pytest.raises(ValueError, match="not available for inputs of dtype bool"):
        G.filter2d_dtype(np.dtype(bool), np.dtype(bool), "convolve2d")
    z = G.fill_scalar(0, np.dtype(np.float32))
    assert z.shape == () and z.dtype == np.float32 and z == 0 and not z.flags.writeable
    assert G.fill_scalar(2.5, np.dtype(np.float64)) == 2.5
    with pytest.raises(ValueError, match="complex fill needs complex inputs"):
        G.fill_scalar(1j, np.dtype(np.float64))


# =========================================================================== conv2d

@st.composite
def conv2d_args(draw):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    C, K = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    H, W = draw(st.integers(1, 14)), draw(st.integers(1, 14))
    pair = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3)),
                     st.tuples(st.integers(1, 3), st.integers(1, 3)))
    pad = st.integers(0, 3)
    padding = draw(st.one_of(pad, st.tuples(pad), st.tuples(pad, pad),
                             st.tuples(pad, pad, pad, pad), st.sampled_from(["same", "valid"])))
    return dict(input_shape=(draw(st.integers(1, 2)), C, H, W)[draw(st.integers(0, 1)):],
                weight_shape=(K, C // groups, R, S), stride=draw(pair), dilation=draw(pair),
                padding=padding, groups=groups,
                padding_mode=draw(st.sampled_from(list(G.PAD_MODES))))


@SETTINGS
@given(conv2d_args())
def test_conv2d_geometry_is_what_conv2d_does(a):
    x = np.ones(a["input_shape"], np.float32)
    w = np.ones(a["weight_shape"], np.float32)
    kw = {k: a[k] for k in ("stride", "padding", "dilation", "groups")}
    try:
        geo = G.conv2d(x.shape, w.shape, None, padding_mode=a["padding_mode"], **kw)
    except ValueError as exc:
        with pytest.raises(ValueError) as info:
            cyconv.conv2d(x, w, padding_mode=a["padding_mode"], **kw)
        assert str(info.value) == str(exc)
        return
    got = cyconv.conv2d(x, w, padding_mode=a["padding_mode"], **kw)
    assert got.shape == geo.result_shape
    assert geo.unbatched == (x.ndim == 3)
    sh, sw = geo.stride
    dh, dw = geo.dilation
    top, bottom, left, right = geo.padding
    assert geo.rows == G.Axis(geo.H, top, bottom, dh * (geo.R - 1) + 1, sh)
    assert geo.cols == G.Axis(geo.W, left, right, dw * (geo.S - 1) + 1, sw)
    assert geo.rows.halo[0] + geo.rows.halo[1] == max(dh * (geo.R - 1) + 1 - sh, 0)
    assert (geo.Ho, geo.Wo) == got.shape[-2:]


def test_conv2d_padding_forms():
    same = G.conv2d((1, 1, 10, 7), (1, 1, 4, 3), None, 2, "same", 1, 1, "zeros")
    assert same.padding == (1, 1, 1, 1) and (same.Ho, same.Wo) == (5, 4)  # ceil(n / 2)
    quad = G.conv2d((1, 1, 10, 7), (1, 1, 3, 3), None, 1, (1, 2, 3, 4), 1, 1, "zeros")
    assert quad.padding == (3, 4, 1, 2)  # (left, right, top, bottom) in
    one = G.conv2d((1, 1, 10, 7), (1, 1, 3, 3), None, (2,), (1,), [2], 1, "zeros")
    assert one.stride == (2, 2) and one.dilation == (2, 2) and one.padding == (1, 1, 1, 1)


def test_conv2d_plan_object():
    from cyconv import _core
    plan = _core.conv2d_plan((2, 8, 14, 15), 16, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1), False)
    assert (plan.Ho, plan.Wo) == (14, 15)
    assert plan.Wb == 17 and plan.Hb >= 16
    assert plan.double_precision is False
    assert plan.min_rows >= 1 and plan.scratch >= 1 and plan.edge >= 0
    if plan.blocked:
        assert plan.packed_shape[1:3] == (8, 9)
    with pytest.raises(AttributeError):
        plan.Ho = 3

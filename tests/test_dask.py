"""cyconv.dask: lazy chunkwise convolve2d / correlate2d / conv2d on Dask arrays.

The reference is always the in-memory cyconv call on the whole array.
Integers must match bitwise. Floating results must match within the rounding
of the two sums: an output pixel is the same sum of the same products in both,
but the SIMD body and the scalar tail of the core's rows may round a pixel
differently, and which pixels fall in the tail depends on the chunk width; so
the tolerance is 2 * (terms + 1) * eps * sum |x| |k| (computed with the
in-memory function on absolute values). Chunks that span whole rows keep every
pixel's column position and are compared bitwise.

The ``test_cluster_*`` tests run on a real ``dask.distributed`` LocalCluster
with two workers, once with threads (``processes=False``) and once with
worker processes; the rest use Dask's synchronous scheduler. The hypothesis
tests are named ``test_properties_*``; their budget is
CYCONV_HYPOTHESIS_EXAMPLES (default 60 here).
"""

from __future__ import annotations

import itertools
import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")

import cyconv  # noqa: E402
import cyconv.dask as cd  # noqa: E402

MAX_EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "60"))
SETTINGS = settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")
FUNCS = {"convolve2d": (cyconv.convolve2d, cd.convolve2d),
         "correlate2d": (cyconv.correlate2d, cd.correlate2d)}
PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")


# =========================================================================== helpers

def make(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)  # full range: sums overflow and must wrap like in memory
        return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def local(arrays):
    """Compute lazy arrays on the synchronous scheduler."""
    return dask.compute(*arrays, scheduler="synchronous")


def assert_same_result(got, lazy, expected, bound=None, terms=1, what=""):
    """`got` (computed from `lazy`) equals the in-memory `expected`: shape and
    dtype exactly, values bitwise for integers, else within rounding of `bound`."""
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype, what
    assert got.shape == expected.shape and got.dtype == expected.dtype, what
    if expected.dtype.kind in "iu" or bound is None:
        np.testing.assert_array_equal(got, expected, err_msg=what)
        return
    eps = np.finfo(expected.dtype).eps
    tol = 2 * (terms + 1) * eps * bound
    err = np.abs(got.astype(complex) - expected.astype(complex))
    assert np.all(err <= tol), f"{what}: max excess {np.max(err - tol)}"


def filter_case(name, img, k, chunks, mode, boundary, fillvalue=0, method="direct", **kw):
    """(lazy, expected, bound, terms) for one convolve2d / correlate2d call."""
    memory, lazy_func = FUNCS[name]
    lazy = lazy_func(da.from_array(img, chunks=chunks), k, mode, boundary, fillvalue,
                     method=method, **kw)
    expected = memory(img, k, mode, boundary, fillvalue, method="direct")
    bound = None
    if expected.dtype.kind in "fc":
        bound = memory(np.abs(img), np.abs(k), mode, boundary, abs(fillvalue), method="direct")
    return lazy, expected, bound, k.size


def conv2d_case(x, w, b, chunks, **kw):
    lazy = cd.conv2d(da.from_array(x, chunks=chunks), w, b, **kw)
    expected = cyconv.conv2d(x, w, b, **kw)
    bound = cyconv.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), **kw)
    return lazy, expected, bound, w[0].size + 1


def check_all(cases, compute, what):
    results = compute([c[0] for c in cases])
    for (lazy, expected, bound, terms), got, desc in zip(cases, results, what):
        assert_same_result(got, lazy, expected, bound, terms, desc)


# =========================================================================== on a LocalCluster

@pytest.fixture(scope="module", params=["threads", "processes"])
def client(request):
    """A two-worker LocalCluster (one thread each), closed after the module's tests."""
    distributed = pytest.importorskip("distributed")
    # Starting worker processes on a loaded 2-core machine can time out
    # ("Cluster failed to start"): that is the machine, not cyconv; try again.
    for attempt in range(3):
        try:
            cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                               processes=request.param == "processes",
                                               dashboard_address=":0",
                                               worker_dashboard_address=":0")
            break
        except RuntimeError:
            if attempt == 2:
                raise
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        yield client


def on(client):
    return lambda arrays: client.gather(client.compute(list(arrays)))


def pick(combos, cluster, every):
    """All combinations locally; on the cluster every `every`-th one (staggered
    so that each value of every factor still occurs)."""
    combos = list(combos)
    return combos[::every] if cluster else combos


def modes_and_boundaries(cluster):
    """Every mode and boundary (and alias), both functions, odd/even/1x1
    kernels, uneven chunks including chunks narrower than the kernel."""
    rng = np.random.default_rng(1)
    img = make(rng, (23, 19), np.float64)
    chunks = ((5, 1, 9, 8), (4, 7, 2, 6))
    combos = [c for c in itertools.product(
        FUNCS, MODES, BOUNDARIES + ("pad", "circular", "symmetric"), [(3, 5), (4, 4), (1, 1)])
        if c[3] != (1, 1) or c[2] in BOUNDARIES]
    cases, what = [], []
    for name, mode, boundary, kshape in pick(combos, cluster, 5):
        k = make(rng, kshape, np.float64)
        cases.append(filter_case(name, img, k, chunks, mode, boundary, fillvalue=1.5))
        what.append(f"{name} {mode} {boundary} kernel {kshape}")
    return cases, what


def chunkings(cluster):
    """Single chunk, one-pixel chunks, chunks smaller than the kernel, and a
    kernel larger than the whole image (halo deeper than the array)."""
    rng = np.random.default_rng(2)
    img = make(rng, (9, 7), np.float64)
    calls = [("convolve2d", "same", "symm"), ("correlate2d", "full", "wrap"),
             ("convolve2d", "full", "fill"), ("correlate2d", "same", "wrap"),
             ("convolve2d", "valid", "fill")]
    combos = [c for c in itertools.product(
        [-1, 1, (2, 3), ((4, 1, 4), (1, 5, 1))], [(2, 7), (11, 9), (6, 3)], calls)
        if c[2][1] != "valid" or c[1] != (11, 9)]
    cases, what = [], []
    for chunks, kshape, (name, mode, boundary) in pick(combos, cluster, 4):
        k = make(rng, kshape, np.float64)
        cases.append(filter_case(name, img, k, chunks, mode, boundary, fillvalue=-2))
        what.append(f"{name} {mode} {boundary} chunks {chunks} kernel {kshape}")
    return cases, what


def dtypes(cluster):
    """Integers (bitwise, with wrap-around), complex (with a complex fill
    value and correlate's conjugate), float32 and mixed-type promotion."""
    rng = np.random.default_rng(3)
    types = [(np.int8, np.int8, 3), (np.uint16, np.uint8, 7), (np.int32, np.int64, -5),
             (np.int16, np.float32, 0.5), (np.complex64, np.complex64, 1 - 2j),
             (np.complex128, np.float64, 0.5j), (np.float32, np.float32, 2.0)]
    combos = list(itertools.product(types, FUNCS, MODES, BOUNDARIES))
    cases, what = [], []
    for (t1, t2, fill), name, mode, boundary in pick(combos, cluster, 5):
        img = make(rng, (17, 15), t1)
        k = make(rng, (4, 3), t2)
        cases.append(filter_case(name, img, k, ((6, 2, 9), (5, 3, 7)), mode, boundary,
                                 fillvalue=fill))
        what.append(f"{np.dtype(t1)}*{np.dtype(t2)} {name} {mode} {boundary}")
    return cases, what


CONV2D_CONFIGS = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(1, 3), dilation=2, padding=2, padding_mode="reflect"),
    dict(padding="same", dilation=(2, 1), padding_mode="replicate"),
    dict(padding="same", padding_mode="symmetric"),
    dict(padding=(1, 2, 3, 0), padding_mode="circular"),
    dict(padding="same", stride=2, padding_mode="zeros"),   # TensorFlow's SAME
    dict(stride=3, padding="valid"),                        # stride > kernel span
    dict(groups=2, padding=1, padding_mode="circular"),
    dict(groups=4, dilation=3, padding=(3, 2)),              # depthwise
]


def conv2d_configs(cluster):
    """float32 and float64 with stride, dilation, every padding form and
    padding mode, groups and bias, across batch and uneven spatial chunks."""
    rng = np.random.default_rng(4)
    cases, what = [], []
    for dtype, config in pick(itertools.product([np.float32, np.float64], CONV2D_CONFIGS),
                              cluster, 2 if cluster else 1):
        x = make(rng, (3, 4, 13, 11), dtype)
        groups = config.get("groups", 1)
        w = make(rng, (8, 4 // groups, 3, 2), dtype)
        b = make(rng, (8,), dtype)
        cases.append(conv2d_case(x, w, b, ((2, 1), 4, (4, 1, 8), (3, 8)), **config))
        what.append(f"{np.dtype(dtype)} {config}")
    # unbatched input, no bias, even kernel in "same" mode
    x = make(rng, (2, 12, 10), np.float32)
    w = make(rng, (3, 2, 4, 4), np.float32)
    cases.append(conv2d_case(x, w, None, (2, 5, 4), padding="same"))
    what.append("unbatched same 4x4")
    return cases, what


MATRICES = [modes_and_boundaries, chunkings, dtypes, conv2d_configs]


@pytest.mark.parametrize("matrix", MATRICES, ids=lambda m: m.__name__)
def test_cluster(client, matrix):
    """A LocalCluster (threads, then processes) computes what memory does."""
    cases, what = matrix(cluster=True)
    check_all(cases, on(client), what)


@pytest.mark.parametrize("matrix", MATRICES, ids=lambda m: m.__name__)
def test_all_combinations(matrix):
    """The same matrices in full, on the synchronous scheduler."""
    cases, what = matrix(cluster=False)
    check_all(cases, local, what)


# =========================================================================== properties (local)

@st.composite
def chunking(draw, n):
    """Random uneven chunks summing to n."""
    if n == 0:
        return (0,)
    cuts = draw(st.sets(st.integers(1, n - 1), max_size=4)) if n > 1 else set()
    edges = [0, *sorted(cuts), n]
    return tuple(b - a for a, b in zip(edges, edges[1:]))


@SETTINGS
@given(data=st.data(), name=st.sampled_from(sorted(FUNCS)), mode=st.sampled_from(MODES),
       boundary=st.sampled_from(BOUNDARIES), dtype=st.sampled_from([np.float64, np.int32]),
       shape=st.tuples(st.integers(1, 16), st.integers(1, 16)),
       kshape=st.tuples(st.integers(1, 8), st.integers(1, 8)))
def test_properties_dask_filter2d(data, name, mode, boundary, dtype, shape, kshape):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    img, k = make(rng, shape, dtype), make(rng, kshape, dtype)
    chunks = (data.draw(chunking(shape[0])), data.draw(chunking(shape[1])))
    if mode == "valid":
        H, W = shape
        M, N = kshape
        if not ((H >= M and W >= N) or (H <= M and W <= N)):
            with pytest.raises(ValueError, match="For 'valid' mode"):
                FUNCS[name][1](da.from_array(img, chunks=chunks), k, mode, boundary)
            return
    case = filter_case(name, img, k, chunks, mode, boundary, fillvalue=3)
    (got,) = local([case[0]])
    assert_same_result(got, *case, what=f"chunks {chunks}")


@SETTINGS
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]),
       hw=st.tuples(st.integers(1, 14), st.integers(1, 14)),
       rs=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       padding=st.one_of(st.sampled_from(["same", "valid"]),
                         st.tuples(*[st.integers(0, 4)] * 4)),
       padding_mode=st.sampled_from(PADDING_MODES))
def test_properties_dask_conv2d(data, dtype, hw, rs, stride, dilation, padding, padding_mode):
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = make(rng, (2, 2) + hw, dtype)
    w = make(rng, (3, 2) + rs, dtype)
    b = make(rng, (3,), dtype)
    kw = dict(stride=stride, dilation=dilation, padding=padding, padding_mode=padding_mode)
    try:
        cyconv.conv2d(x, w, b, **kw)
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            cd.conv2d(da.from_array(x), w, b, **kw)
        return
    chunks = (1, 2, data.draw(chunking(hw[0])), data.draw(chunking(hw[1])))
    case = conv2d_case(x, w, b, chunks, **kw)
    (got,) = local([case[0]])
    assert_same_result(got, *case, what=f"chunks {chunks}")


# =========================================================================== behaviour (local)

@pytest.mark.parametrize("name", sorted(FUNCS))
@pytest.mark.parametrize("kshape", [(5, 5), (4, 6), (1, 2)])
def test_same_mode_keeps_chunks(name, kshape):
    """'same' output chunks line up with the input chunks, even kernels included."""
    x = da.zeros((100, 90), chunks=((30, 30, 40), (20, 50, 20)))
    y = FUNCS[name][1](x, np.ones(kshape), "same", "symm")
    assert y.chunks == x.chunks
    x4 = da.zeros((2, 3, 100, 90), chunks=(1, 3, 25, 30))
    y4 = cd.conv2d(x4, np.ones((5, 3) + kshape), padding="same")
    assert y4.chunks == ((1, 1), (5,), (25,) * 4, (30,) * 3)
    y4 = cd.conv2d(x4, np.ones((5, 3, 3, 3)), padding=1, stride=2)
    assert y4.chunks[2:] == ((12, 13, 12, 13), (15, 15, 15))


def test_small_chunks_are_merged():
    """Chunks smaller than the halo are merged with a neighbour; others kept."""
    rng = np.random.default_rng(5)
    img = make(rng, (40, 30), np.float64)
    chunks = ((1, 2, 20, 1, 16), (3, 3, 24))
    k = make(rng, (7, 7), np.float64)
    case = filter_case("convolve2d", img, k, chunks, "same", "wrap")
    assert all(c >= 3 for axis in case[0].chunks for c in axis)
    assert 20 in case[0].chunks[0] and 24 in case[0].chunks[1]
    (got,) = local([case[0]])
    assert_same_result(got, *case)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_chunks_are_bitwise(dtype):
    """Chunks spanning whole rows: the same pixels in the same columns, so
    exactly the in-memory result (as for any thread count)."""
    rng = np.random.default_rng(6)
    img = make(rng, (61, 45), dtype)
    k = make(rng, (5, 4), dtype)
    lazy = cd.correlate2d(da.from_array(img, chunks=(7, -1)), k, "same", "symm",
                          method="direct")
    (got,) = local([lazy])
    np.testing.assert_array_equal(got, cyconv.correlate2d(img, k, "same", "symm",
                                                          method="direct"))


@pytest.mark.parametrize("method", ["auto", "fft", "separable"])
def test_other_methods_within_rounding(method):
    rng = np.random.default_rng(7)
    img = make(rng, (96, 80), np.float64)
    k = np.outer(make(rng, 9, np.float64), make(rng, 7, np.float64))  # rank 1
    lazy = cd.convolve2d(da.from_array(img, chunks=(40, 30)), k, "same", "symm",
                         method=method)
    (got,) = local([lazy])
    expected = cyconv.convolve2d(img, k, "same", "symm", method="direct")
    bound = cyconv.convolve2d(np.abs(img), np.abs(k), "same", "symm")
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * bound.max())


def test_result_dtypes():
    x8 = da.ones((6, 6), dtype=np.int8, chunks=3)
    assert cd.convolve2d(x8, np.ones((2, 2), np.float32)).dtype == np.float32
    assert cd.convolve2d(x8, np.ones((2, 2), np.uint8)).dtype == np.int16
    assert cd.correlate2d(x8.astype(np.float16), np.ones((2, 2), np.float32)).dtype == np.float32
    x = da.ones((1, 2, 6, 6), dtype=np.float16, chunks=3)
    assert cd.conv2d(x, np.ones((1, 2, 2, 2), np.float32)).dtype == np.float32
    assert cd.conv2d(x.astype(np.int16), np.ones((1, 2, 2, 2), np.float32)).dtype == np.float64
    assert cd.conv2d(x, np.ones((1, 2, 2, 2), np.float32), np.ones(1)).dtype == np.float64


def test_graph_is_lazy():
    def boom(block):
        raise RuntimeError("computed too early")

    x = da.zeros((20, 20), chunks=5).map_blocks(boom, dtype=float)
    y = cd.convolve2d(x, np.ones((3, 3)), "same", "symm")
    z = cd.conv2d(x[None, None], np.ones((2, 1, 3, 3)), padding=1)
    for lazy in (y, z):
        with pytest.raises(RuntimeError, match="computed too early"):
            local([lazy])


def test_workers_default_one_and_override(monkeypatch):
    """Each task calls the in-memory function with workers=1 unless told otherwise."""
    seen = []
    for module, fname in [(cyconv._convolve, "convolve2d"), (cyconv._conv2d, "conv2d")]:
        original = getattr(module, fname)

        def spy(*args, _original=original, **kwargs):
            seen.append(kwargs.get("workers"))
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, fname, spy)
    x = da.ones((12, 12), chunks=4)
    for workers in (1, 2, None):
        seen.clear()
        kw = {} if workers == 1 else dict(workers=workers)
        local([cd.convolve2d(x, np.ones((3, 3)), "same", **kw),
               cd.conv2d(x[None, None], np.ones((1, 1, 3, 3)), **kw)])
        assert len(seen) > 9 and set(seen) == {workers}


def test_kernels_must_be_in_memory():
    x = da.ones((8, 8), chunks=4)
    k = da.ones((3, 3), chunks=3)
    with pytest.raises(TypeError, match=r"in2 must be an in-memory array.*\.compute\(\)"):
        cd.convolve2d(x, k)
    with pytest.raises(TypeError, match="in2 must be an in-memory array"):
        cd.correlate2d(x, k)
    with pytest.raises(TypeError, match="weight must be an in-memory array"):
        cd.conv2d(x[None, None], k[None, None])
    with pytest.raises(TypeError, match="bias must be an in-memory array"):
        cd.conv2d(x[None, None], np.ones((1, 1, 3, 3)), da.ones(1))


BAD_FILTER_ARGS = [
    dict(mode="sam"),
    dict(boundary="reflect"),
    dict(method="winograd"),
    dict(workers=0),
    dict(fillvalue=1j),                       # complex fill, real result
    dict(in1=np.ones((10, 10), bool), in2=np.ones((2, 2), bool)),  # bool result type
    dict(in2=np.ones((2, 2, 2))),
    dict(in2=np.ones((3, 30)), mode="valid"),  # neither larger in every dimension
    dict(in2=np.eye(3), method="separable"),   # not rank 1
    dict(in1=np.ones((10, 10), int), in2=np.ones((2, 2), int), method="separable"),
]


@pytest.mark.parametrize("bad", BAD_FILTER_ARGS, ids=repr)
def test_filter_errors_match_in_memory(bad):
    args = dict(in2=np.ones((3, 3)), mode="same", boundary="fill", fillvalue=0,
                method="auto", workers=1)
    args.update(bad)
    img = args.pop("in1", np.ones((10, 10)))
    with pytest.raises((ValueError, TypeError)) as in_memory:
        cyconv.convolve2d(img, **args)
    with pytest.raises(in_memory.type, match=re.escape(str(in_memory.value))):
        cd.convolve2d(da.from_array(img, chunks=4), **args)


BAD_CONV2D_ARGS = [
    dict(padding=6, padding_mode="reflect"),   # reflect needs padding < size
    dict(groups=3),
    dict(bias=np.ones(3)),
    dict(stride=0),
    dict(padding="full"),
    dict(padding_mode="mirror"),
    dict(weight=np.ones((2, 4, 7, 7))),        # kernel larger than the input
    dict(weight=np.ones((2, 4, 3, 3), complex)),
]


@pytest.mark.parametrize("bad", BAD_CONV2D_ARGS, ids=repr)
def test_conv2d_errors_match_in_memory(bad):
    args = dict(weight=np.ones((2, 4, 3, 3)), bias=None)
    args.update(bad)
    x = np.ones((2, 4, 6, 6))
    with pytest.raises((ValueError, TypeError)) as in_memory:
        cyconv.conv2d(x, **args)
    with pytest.raises(in_memory.type, match=re.escape(str(in_memory.value))):
        cd.conv2d(da.from_array(x, chunks=(1, 2, 3, 3)), **args)


def test_input_shape_and_chunk_errors():
    with pytest.raises(ValueError, match="inputs must both be 2-D"):
        cd.convolve2d(da.ones((2, 3, 4)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="must be 4-D"):
        cd.conv2d(da.ones((3, 4)), np.ones((1, 1, 1, 1)))
    x = da.ones((10, 10), chunks=5)
    unknown = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        cd.convolve2d(unknown, np.ones((2, 2)))


def test_edge_cases_match_in_memory():
    """Valid mode with the kernel larger than the image (SciPy swaps them),
    empty images, empty kernels."""
    rng = np.random.default_rng(8)
    cases = []
    img = make(rng, (4, 5), np.complex128)
    k = make(rng, (7, 9), np.complex128)
    for name in FUNCS:
        cases.append(filter_case(name, img, k, (3, 2), "valid", "fill"))
    for shape, kshape, mode, boundary in [((0, 5), (3, 3), "full", "fill"),
                                          ((0, 0), (2, 3), "same", "fill"),
                                          ((6, 6), (0, 3), "full", "symm"),
                                          ((6, 6), (3, 0), "same", "wrap"),
                                          ((6, 6), (6, 6), "valid", "wrap")]:
        cases.append(filter_case("convolve2d", np.ones(shape), np.ones(kshape), 3, mode,
                                 boundary, fillvalue=2))
    results = local([c[0] for c in cases])
    for case, got in zip(cases, results):
        assert_same_result(got, *case)
    with pytest.raises(ValueError, match="cannot extend an empty in1"):
        cd.convolve2d(da.ones((0, 4)), np.ones((2, 2)), "full", "wrap")
    # conv2d: empty batch, no output channels, and no input channels (bias only)
    lazy = cd.conv2d(da.ones((0, 2, 5, 5)), np.ones((3, 2, 2, 2)))
    assert lazy.shape == (0, 3, 4, 4) and local([lazy])[0].shape == (0, 3, 4, 4)
    lazy = cd.conv2d(da.ones((2, 2, 5, 5), chunks=1), np.ones((0, 2, 2, 2)), padding=1)
    assert lazy.shape == (2, 0, 6, 6)
    x = np.ones((2, 0, 5, 5))
    lazy = cd.conv2d(da.from_array(x), np.ones((3, 0, 2, 2)), np.arange(3.0))
    np.testing.assert_array_equal(local([lazy])[0], cyconv.conv2d(x, np.ones((3, 0, 2, 2)),
                                                                  np.arange(3.0)))


def test_nan_propagates_like_in_memory():
    img = np.ones((20, 20))
    img[3, 17] = np.nan
    img[12, 0] = np.inf
    k = np.ones((3, 4))
    for boundary in BOUNDARIES:
        lazy = cd.convolve2d(da.from_array(img, chunks=6), k, "same", boundary)
        (got,) = local([lazy])
        np.testing.assert_array_equal(got, cyconv.convolve2d(img, k, "same", boundary))


def test_numpy_input_is_wrapped():
    img = np.arange(30.0).reshape(5, 6)
    lazy = cd.correlate2d(img, np.ones((2, 2)), "same", "symm")
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(local([lazy])[0],
                                  cyconv.correlate2d(img, np.ones((2, 2)), "same", "symm"))


class Npy:
    """The README's wrapper: a .npy file that Dask reads and writes in place."""

    def __init__(self, path, mode="r"):
        self.path, self.mode = path, mode
        header = np.load(path, mmap_mode="r")
        self.shape, self.dtype, self.ndim = header.shape, header.dtype, header.ndim

    def __getitem__(self, index):
        return np.load(self.path, mmap_mode=self.mode)[index]

    def __setitem__(self, index, value):
        np.load(self.path, mmap_mode=self.mode)[index] = value


def test_npy_round_trip(tmp_path):
    """The README's example: .npy on disk -> chunkwise filter -> .npy on disk."""
    rng = np.random.default_rng(9)
    img = make(rng, (300, 260), np.float32)
    np.save(tmp_path / "big.npy", img)
    src = da.from_array(Npy(tmp_path / "big.npy"), chunks=(128, 100))
    k = cyconv.kernels.gaussian(7, 1.5).astype(np.float32)
    lazy = cd.convolve2d(src, k, mode="same", boundary="symm")
    np.lib.format.open_memmap(tmp_path / "smooth.npy", mode="w+", dtype=lazy.dtype,
                              shape=lazy.shape).flush()
    da.store(lazy, Npy(tmp_path / "smooth.npy", mode="r+"), lock=False, scheduler="threads")
    got = np.load(tmp_path / "smooth.npy")
    expected = cyconv.convolve2d(img, k, "same", "symm", method="direct")
    bound = cyconv.convolve2d(np.abs(img), np.abs(k), "same", "symm")
    assert_same_result(got, lazy, expected, bound, k.size)

"""Nothing reads or writes outside its buffers.

Each array a call touches (the caller's inputs and `out`, and every scratch
array the package hands out) is placed so that it ends where a page that can
be neither read nor written begins, or starts where one ends. A kernel that
reads or writes one element past either end then stops the process with a
segmentation fault instead of passing with a value it happened to find. (A
heap overflow in the tiles' scratch of small strided layers and over-reads
of narrow row-vectorized planes passed the value tests for days: the bytes
past a buffer were the heap's, or the kept scratch's slack.)

POSIX only: the guard pages come from mmap and mprotect.
"""

from __future__ import annotations

import ctypes
import math
import mmap
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cyconv
from conv2d_reference import assert_conv_close, conv2d_abs_bound, conv2d_reference
from cyconv import _scratch

pytestmark = pytest.mark.skipif(os.name != "posix" or not hasattr(mmap, "PROT_READ"),
                                reason="guard pages need mmap and mprotect")

PAGE = mmap.PAGESIZE
EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def guarded_empty(shape, dtype, side="end") -> np.ndarray:
    """An uninitialized C-contiguous array that ends just before a page with
    no access (side "end"), or starts just after one (side "start")."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    span = -(-nbytes // PAGE) * PAGE
    pages = mmap.mmap(-1, span + PAGE)
    whole = np.frombuffer(pages, np.uint8)   # keeps the mapping alive
    guard = 0 if side == "start" else span
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mprotect(ctypes.c_void_p(whole.ctypes.data + guard), ctypes.c_size_t(PAGE), 0):
        raise OSError(ctypes.get_errno(), "mprotect failed")
    first = PAGE if side == "start" else span - nbytes
    return whole[first:first + nbytes].view(dtype).reshape(shape)


def guarded_copy(a, side) -> np.ndarray:
    copy = guarded_empty(a.shape, a.dtype, side)
    copy[...] = a
    return copy


@pytest.fixture(params=["end", "start"])
def side(request, monkeypatch):
    """Every scratch array ends (or starts) at a guard page, for this test;
    filled with NaN bits, as conftest's poison does."""
    def empty(purpose, shape, dtype):
        array = guarded_empty(shape, dtype, request.param)
        array.view(np.uint8).fill(0xFF)
        return array

    monkeypatch.setattr(_scratch, "empty", empty)
    return request.param


def test_guard_pages_stop_a_read_past_the_end():
    """The guard is real: reading one element past the array, in a child, kills it."""
    import subprocess
    import sys
    code = ("import sys; sys.path.insert(0, {!r}); import numpy as np, test_memory_bounds as t;"
            "a = t.guarded_empty((5,), np.float64);"
            "np.frombuffer((np.ctypeslib.as_ctypes_type(np.float64) * 6)"
            ".from_address(a.ctypes.data), np.float64).sum()").format(os.path.dirname(__file__))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert result.returncode != 0


@st.composite
def layers(draw):
    """conv2d layers of small and odd sizes, on every plan: 1x1 layers of
    many channels (chunks, lowering), narrow and tiny planes, strides,
    dilations, groups, depthwise, padding modes."""
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    depthwise = draw(st.booleans()) and groups == 1
    if depthwise:
        C = K = groups = draw(st.sampled_from([1, 3, 8, 17, 32]))
    else:
        C = groups * draw(st.sampled_from([1, 2, 5, 16, 64, 160, 576]))
        K = groups * draw(st.sampled_from([1, 3, 8, 32, 128, 160]))
    R, S = draw(st.sampled_from([(1, 1), (3, 3), (3, 3), (2, 2), (5, 5), (7, 7), (1, 3)]))
    stride = draw(st.sampled_from([1, 1, 2, (2, 1), 3]))
    dilation = draw(st.sampled_from([1, 1, 1, 2]))
    padding = draw(st.sampled_from([0, 1, (1, 0), 3]))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "circular", "replicate"]))
    N = draw(st.sampled_from([1, 1, 2, 3]))
    H, W = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return dict(N=N, C=C, K=K, groups=groups, R=R, S=S, stride=stride, dilation=dilation,
                padding=padding, mode=mode, H=H, W=W, dtype=dtype,
                workers=draw(st.sampled_from([1, 2])), seed=draw(st.integers(0, 2**32 - 1)))


def _pair(v):
    return (v, v) if isinstance(v, int) else v


def _layer_arrays(layer):
    """The layer's random generator, input, weight, bias and conv2d's
    keyword arguments (but padding_mode)."""
    rng = np.random.default_rng(layer["seed"])
    dtype, G = layer["dtype"], layer["groups"]
    x = rng.standard_normal((layer["N"], layer["C"], layer["H"], layer["W"])).astype(dtype)
    w = rng.standard_normal((layer["K"], layer["C"] // G, layer["R"], layer["S"])).astype(dtype)
    b = rng.standard_normal(layer["K"]).astype(dtype)
    args = dict(stride=layer["stride"], padding=layer["padding"], dilation=layer["dilation"],
                groups=G)
    return rng, x, w, b, args


def _valid(layer) -> bool:
    (dh, dw), (ph, pw) = _pair(layer["dilation"]), _pair(layer["padding"])
    if layer["mode"] != "zeros" and (ph >= layer["H"] or pw >= layer["W"]):
        return False   # reflect needs padding below the size
    return (layer["H"] + 2 * ph >= dh * (layer["R"] - 1) + 1
            and layer["W"] + 2 * pw >= dw * (layer["S"] - 1) + 1)


# The two layouts that overran before the guard pages were added: a strided
# 3x3 layer on a 4x4 image, lowered to a 1x1 layer of 576 channels whose
# piece is less than a tile; and a stride-2 layer of one input channel, whose
# input gradient runs 1-wide row-vectorized planes.
LOWERED_TINY = dict(N=1, C=64, K=128, groups=1, R=3, S=3, stride=2, dilation=1, padding=1,
                    mode="zeros", H=4, W=4, dtype=np.float32, workers=1, seed=0)
NARROW_PLANES = dict(N=1, C=1, K=5, groups=1, R=2, S=2, stride=2, dilation=1, padding=(1, 0),
                     mode="zeros", H=3, W=2, dtype=np.float64, workers=2, seed=0)
# A zero-padded 3x3 layer whose tiles read the caller's image in place, from
# a base before its first element (_core._reads_image): rows of a tile's
# width or more on every level, one padding row above and below.
# A 1x1 layer of many channels at 7x7 (input channels in chunks): its 49
# flat pixels end in a narrower tile (14 + 14 + 14 + 7 on AVX-512).
NARROW_LAST_TILE = dict(N=1, C=576, K=128, groups=1, R=1, S=1, stride=1, dilation=1, padding=0,
                        mode="zeros", H=7, W=7, dtype=np.float32, workers=1, seed=0)
READ_IN_PLACE = dict(N=2, C=16, K=32, groups=1, R=3, S=3, stride=1, dilation=1, padding=1,
                     mode="zeros", H=5, W=16, dtype=np.float32, workers=1, seed=0)


@SETTINGS
@given(layer=layers())
@example(layer=LOWERED_TINY)
@example(layer=READ_IN_PLACE)
@example(layer=dict(READ_IN_PLACE, padding=(1, 0), dtype=np.float64, workers=2))
@example(layer=NARROW_LAST_TILE)
def test_conv2d_stays_in_its_buffers(side, layer):
    if not _valid(layer):
        return
    _, x, w, b, args = _layer_arrays(layer)
    dtype = layer["dtype"]
    args["padding_mode"] = layer["mode"]
    expected = conv2d_reference(x, w, b, **args)
    out = guarded_empty(expected.shape, dtype, side)
    got = cyconv.conv2d(guarded_copy(x, side), guarded_copy(w, side), guarded_copy(b, side),
                        out=out, workers=layer["workers"], **args)
    assert got is out
    assert_conv_close(got, expected, conv2d_abs_bound(x, w, b, **args), dtype)


@SETTINGS
@given(layer=layers())
@example(layer=LOWERED_TINY)
@example(layer=NARROW_PLANES)
def test_gradients_stay_in_their_buffers(side, layer):
    """conv2d_backward (input and weight gradients) and conv_transpose2d,
    the same layers, zero padding."""
    layer = dict(layer, mode="zeros")
    if not _valid(layer):
        return
    rng, x, w, _, args = _layer_arrays(layer)
    dtype = layer["dtype"]
    y = cyconv.conv2d(x, w, **args)
    if y.size == 0:
        return
    gout = rng.standard_normal(y.shape).astype(dtype)
    want_x, want_w, _ = cyconv.conv2d_backward(gout, x, w, **args)
    got_x, got_w, _ = cyconv.conv2d_backward(guarded_copy(gout, side), guarded_copy(x, side),
                                             guarded_copy(w, side), workers=layer["workers"],
                                             **args)
    # The guarded buffers change nothing but where the arrays lie: the same bits.
    np.testing.assert_array_equal(got_x, want_x)
    np.testing.assert_array_equal(got_w, want_w)
    # conv_transpose2d is the input gradient as a layer: gout's channels in.
    out = guarded_empty(want_x.shape, dtype, side)
    padding = args.pop("padding")
    got_t = cyconv.conv_transpose2d(guarded_copy(gout, side), guarded_copy(w, side),
                                    padding=padding, output_padding=_output_padding(
                                        want_x.shape, y.shape, layer, padding),
                                    out=out, workers=layer["workers"], **args)
    np.testing.assert_array_equal(got_t, want_x)


def _output_padding(x_shape, y_shape, layer, padding):
    """conv_transpose2d's output_padding that gives back x's height and width."""
    result = []
    for size, out, s, d, p, k in zip(x_shape[2:], y_shape[2:], _pair(layer["stride"]),
                                     _pair(layer["dilation"]), _pair(padding),
                                     (layer["R"], layer["S"])):
        result.append(size - ((out - 1) * s - 2 * p + d * (k - 1) + 1))
    return tuple(result)


@SETTINGS
@given(h=st.integers(1, 40), w=st.integers(1, 40), m=st.integers(1, 9), n=st.integers(1, 9),
       mode=st.sampled_from(["full", "same", "valid"]),
       boundary=st.sampled_from(["fill", "wrap", "symm"]),
       dtype=st.sampled_from([np.float32, np.float64, np.uint8, np.complex128]),
       layout=st.sampled_from(["C", "F", "strided"]), workers=st.sampled_from([1, 2]),
       seed=st.integers(0, 2**32 - 1))
def test_convolve2d_and_ndimage_stay_in_their_buffers(side, h, w, m, n, mode, boundary, dtype,
                                                       layout, workers, seed):
    from scipy import ndimage, signal
    if mode == "valid" and (h - m) * (w - n) < 0:
        return   # neither is at least as large as the other (SciPy's ValueError)
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((h, w if layout != "strided" else 2 * w)) * 10).astype(dtype)
    k = rng.standard_normal((m, n))
    guarded = guarded_copy(a, side)
    if layout == "F":
        guarded, a = guarded_copy(a.T, side).T, a   # the same values, column-major in place
    elif layout == "strided":
        guarded, a = guarded[:, ::2], a[:, ::2]
    got = cyconv.convolve2d(guarded, guarded_copy(k, side), mode, boundary, workers=workers)
    expected = signal.convolve2d(a, k, mode, boundary)
    scale = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(got, expected, rtol=scale,
                               atol=scale * np.abs(a).max() * np.abs(k).sum())
    real = guarded.real.copy() if np.iscomplexobj(guarded) else guarded
    want = ndimage.correlate(np.asarray(real, np.float64), k, mode="mirror")
    got = cyconv.ndimage.correlate(np.asarray(real, np.float64), guarded_copy(k, side),
                                   mode="mirror")
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10 * np.abs(want).max())


@SETTINGS
@given(h=st.integers(1, 40), w=st.integers(1, 40), L=st.integers(1, 9),
       axis=st.sampled_from([0, 1]),
       dtype=st.sampled_from([np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64]),
       mode=st.sampled_from(["reflect", "constant", "nearest", "mirror", "wrap"]),
       data=st.data())
def test_small_ndimage_passes_stay_in_their_buffers(side, h, w, L, axis, dtype, mode, data,
                                                     monkeypatch):
    # The kept small passes (_core.SmallLines, _core.SmallPass), their own
    # scratch guarded too: 1-D correlations and running means of small images.
    from scipy import ndimage
    import cyconv.ndimage as cnd
    monkeypatch.setattr(cnd, "_kept_scratch",
                        lambda n, dtype: guarded_empty((n,), dtype, side))
    cnd._pass_plans.clear()
    cnd._line_passes.clear()
    cnd._kept_filters.clear()
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    a = (rng.integers(info.min, info.max, (h, w), endpoint=True) if info is not None
         else rng.standard_normal((h, w)) * 10).astype(dtype)
    origin = data.draw(st.integers(-(L // 2), (L - 1) // 2))
    weights = rng.standard_normal(L)
    image = guarded_copy(a, side)
    for _ in range(2):       # planned, then from the kept pass
        for f in (lambda m, out: m.correlate1d(image, weights, axis, out, mode, 3, origin),
                  lambda m, out: m.uniform_filter1d(image, L, axis, out, mode, 3, origin)):
            got = f(cnd, guarded_empty((h, w), dtype, side))
            want = f(ndimage, np.empty((h, w), dtype))
            if info is not None:
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(a).max() * L)
    cnd._pass_plans.clear()   # (their scratch goes with this test's mappings)
    cnd._line_passes.clear()
    cnd._kept_filters.clear()

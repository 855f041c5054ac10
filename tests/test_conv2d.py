"""Tests of cyconv.conv2d against its contract (torch.nn.functional.conv2d semantics).

Expected values come from tests/conv2d_reference.py (SciPy's correlate2d on
explicitly padded planes, in float64); tolerances are relative to
sum |x| |w| + |b| per output element. The hypothesis tests are named
``test_properties_*`` so that ``-k properties`` selects them; their budget is
CYCONV_HYPOTHESIS_EXAMPLES (default 150).
"""

from __future__ import annotations

import inspect
import itertools
import math
import os
import random
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cyconv
from conv2d_reference import (
    PADDING_MODES,
    assert_conv_close,
    contract_violation,
    conv2d_abs_bound,
    conv2d_direct,
    conv2d_reference,
    describe,
    effective_kernel,
    output_shape,
    resolve_padding,
    result_dtype,
)

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


# =========================================================================== helpers

def make(rng, shape, dtype=F64):
    """Random values of ``dtype``: normal floats, small ints, random bools."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        return rng.integers(0, 5, shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-3, 4, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def seed_of(*parts) -> int:
    """A deterministic seed from any reprs (``hash`` of str is salted per process)."""
    return zlib.crc32(repr(parts).encode())


def assert_same(a, b, err_msg=""):
    """Two results of cyconv for the same mathematical problem: equal up to rounding."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, a.dtype, b.shape, b.dtype)
    rtol = 1e-5 if a.dtype == F32 else 1e-12
    scale = np.nanmax(np.abs(b), initial=0.0) if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, err_msg=err_msg)


def _snapshot(a):
    return None if not isinstance(a, np.ndarray) else (a.copy(), a.dtype, a.shape, a.strides,
                                                       a.flags.writeable)


def _assert_unchanged(a, snap, name):
    if snap is None:
        return
    copy, dtype, shape, strides, writeable = snap
    assert a.dtype == dtype and a.shape == shape and a.strides == strides, f"{name} altered"
    assert a.flags.writeable == writeable, f"{name}.flags.writeable changed"
    np.testing.assert_array_equal(a, copy, err_msg=f"conv2d modified {name}")


def check(x, w, b=None, stride=1, padding=0, dilation=1, groups=1, padding_mode="zeros", *,
          out=None, reference=conv2d_reference, keywords=False):
    """Call cyconv.conv2d, check dtype, shape, values against the reference and
    that no argument was modified; return the result."""
    snaps = [_snapshot(a) for a in (x, w, b)]
    kw = {"padding_mode": padding_mode}
    if out is not None:
        kw["out"] = out
    if keywords:
        got = cyconv.conv2d(input=x, weight=w, bias=b, stride=stride, padding=padding,
                            dilation=dilation, groups=groups, **kw)
    else:
        got = cyconv.conv2d(x, w, b, stride, padding, dilation, groups, **kw)
    for a, snap, name in zip((x, w, b), snaps, ("input", "weight", "bias")):
        _assert_unchanged(a, snap, name)
    args = (x, w, b, stride, padding, dilation, groups, padding_mode)
    msg = describe(input=x, weight=w, bias=b, stride=stride, padding=padding,
                   dilation=dilation, groups=groups, padding_mode=padding_mode)
    assert isinstance(got, np.ndarray), msg
    if out is not None:
        assert got is out, "conv2d(out=...) must return out itself"
    assert got.dtype == result_dtype(x, w, b), f"dtype {got.dtype}; {msg}"
    assert got.shape == output_shape(np.shape(x), np.shape(w), stride, padding, dilation), msg
    with np.errstate(all="ignore"):
        ref = reference(*args)
        bound = conv2d_abs_bound(*args)
    assert_conv_close(got, ref, bound, err_msg=msg)
    return got


def case_arrays(seed, *, batched=True, N=2, C=3, K=4, groups=1, H=9, W=10, R=3, S=3, bias=True,
                dtype=F64):
    """(input, weight, bias) for one case; ``dtype`` is one dtype or a triple."""
    rng = np.random.default_rng(seed)
    xd, wd, bd = dtype if isinstance(dtype, tuple) else (dtype, dtype, dtype)
    x = make(rng, (N, C, H, W) if batched else (C, H, W), xd)
    w = make(rng, (K, C // groups, R, S), wd)
    b = make(rng, (K,), bd) if bias else None
    return x, w, b


def fit_size(size, k, d, extra=1):
    """An input size at least the dilated kernel's extent plus ``extra``."""
    return max(size, effective_kernel(k, d) + extra)


def expect_error(exc, names, call):
    """``call()`` raises one of ``exc`` whose message names one of ``names``."""
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value).lower()
    assert any(n in msg for n in names), (
        f"error message does not name any of {names}: {info.type.__name__}: {info.value}")
    return info


# ----------------------------------------------------------------------- layouts

def layout(a, kind):
    """An array equal to ``a`` in value with another memory layout (None passes)."""
    if a is None or kind == "C" or np.ndim(a) == 0:
        return a
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "channels_last":
        if a.ndim == 4:
            return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        if a.ndim == 3:
            return np.ascontiguousarray(a.transpose(1, 2, 0)).transpose(2, 0, 1)
        return a
    if kind == "sliced":
        # every other element of a larger array, starting at an odd offset
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
        view = big[(slice(1, None, 2),) * a.ndim]
        view[...] = a
        return view
    if kind == "negative":
        rev = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[rev])[rev]
    if kind == "bigendian":
        return a.astype(a.dtype.newbyteorder(">")) if a.dtype.itemsize > 1 else a
    if kind == "readonly":
        r = a.copy()
        r.flags.writeable = False
        return r
    if kind == "unaligned":
        if a.dtype.itemsize == 1:
            return a
        buf = np.zeros(a.nbytes + 1, np.uint8)
        u = buf[1:].view(a.dtype).reshape(a.shape)
        u[...] = a
        return u
    if kind == "mixed":
        # channels-last and read-only and big-endian at once
        r = layout(layout(a, "bigendian"), "channels_last")
        r.flags.writeable = False
        return r
    raise AssertionError(kind)


LAYOUTS = ("C", "F", "channels_last", "sliced", "negative", "bigendian", "readonly",
           "unaligned", "mixed")


# ----------------------------------------------------------------------- all-pairs

def all_pairs(factors: dict, seed=1234, tries=40):
    """A small set of cases covering every pair of values of every two factors."""
    names = list(factors)
    sizes = [len(factors[n]) for n in names]
    uncovered = {(i, a, j, b) for i, j in itertools.combinations(range(len(names)), 2)
                 for a in range(sizes[i]) for b in range(sizes[j])}
    rng = random.Random(seed)
    cases = []
    while uncovered:
        best, best_gain = None, -1
        pool = sorted(uncovered)
        for _ in range(tries):
            i, a, j, b = rng.choice(pool)
            case = [None] * len(names)
            case[i], case[j] = a, b
            order = [f for f in range(len(names)) if case[f] is None]
            rng.shuffle(order)
            for f in order:
                gains = []
                for v in range(sizes[f]):
                    g = sum(1 for e in range(len(names)) if case[e] is not None and
                            ((min(e, f), case[e] if e < f else v, max(e, f),
                              v if e < f else case[e]) in uncovered))
                    gains.append((g, rng.random(), v))
                case[f] = max(gains)[2]
            gain = sum(1 for p, q in itertools.combinations(range(len(names)), 2)
                       if (p, case[p], q, case[q]) in uncovered)
            if gain > best_gain:
                best, best_gain = case, gain
        for p, q in itertools.combinations(range(len(names)), 2):
            uncovered.discard((p, best[p], q, best[q]))
        cases.append({n: factors[n][v] for n, v in zip(names, best)})
    return cases


# =========================================================================== grids

KERNELS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (7, 7), (3, 5), (1, 7), (7, 1), (2, 3)]
STRIDES = [1, 2, 3, (1, 2)]
DILATIONS = [1, 2, (2, 1)]


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("dilation", DILATIONS, ids=str)
@pytest.mark.parametrize("stride", STRIDES, ids=str)
@pytest.mark.parametrize("kernel", KERNELS, ids=lambda k: f"{k[0]}x{k[1]}")
def test_kernel_stride_dilation(kernel, stride, dilation, dtype):
    R, S = kernel
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    H, W = fit_size(9, R, dh), fit_size(11, S, dw)
    seed = seed_of(kernel, stride, dilation, dtype.char)
    x, w, b = case_arrays(seed, C=3, K=5, H=H, W=W, R=R, S=S, dtype=dtype)
    check(x, w, b, stride, 1, dilation)


PADDINGS = [0, 1, 2, (1, 2), (0, 3), (2, 0), (1, 0, 2, 3), (0, 2, 0, 1), (3, 1, 0, 2),
            (0, 0, 3, 0), "valid", "same"]
PAD_KERNELS = [((3, 3), 1), ((2, 4), 1), ((3, 2), (2, 1)), ((4, 1), (1, 3))]


@pytest.mark.parametrize("stride", [1, 2, (2, 1)], ids=str)
@pytest.mark.parametrize("kernel", PAD_KERNELS, ids=lambda k: f"{k[0][0]}x{k[0][1]}d{k[1]}")
@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
def test_padding_forms_and_modes(padding, padding_mode, kernel, stride):
    (R, S), dilation = kernel
    seed = seed_of(padding, padding_mode, kernel, stride)
    dtype = F32 if seed % 2 else F64
    x, w, b = case_arrays(seed, N=2, C=2, K=3, H=7, W=8, R=R, S=S, dtype=dtype,
                          bias=bool(seed % 3))
    check(x, w, b, stride, padding, dilation, 1, padding_mode)


@pytest.mark.parametrize("padding_mode", PADDING_MODES)
@pytest.mark.parametrize("kernel,dilation", [((1, 1), 1), ((2, 2), 1), ((3, 3), 1), ((4, 4), 1),
                                             ((5, 5), 1), ((7, 7), 1), ((2, 3), 2),
                                             ((4, 2), (1, 3)), ((3, 5), (2, 1)), ((1, 7), 1),
                                             ((6, 1), 2)], ids=str)
@pytest.mark.parametrize("stride", [1, 2, 3, (1, 2), (3, 2)], ids=str)
def test_padding_same(kernel, dilation, stride, padding_mode):
    """"same": PyTorch's split with stride 1 (even kernels too), TensorFlow's SAME otherwise."""
    R, S = kernel
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    H, W = fit_size(8, R, dh), fit_size(13, S, dw)
    seed = seed_of(kernel, dilation, stride, padding_mode)
    x, w, b = case_arrays(seed, N=1, C=2, K=2, H=H, W=W, R=R, S=S, dtype=F64)
    got = check(x, w, b, stride, "same", dilation, 1, padding_mode)
    assert got.shape[-2:] == (-(-H // sh), -(-W // sw))
    left, right, top, bottom = resolve_padding("same", (H, W), (R, S), stride, dilation)
    if sh == 1:
        assert top + bottom == dh * (R - 1) and top == (top + bottom) // 2
    # "same" equals the resolved explicit 4-tuple
    explicit = cyconv.conv2d(x, w, b, stride, (left, right, top, bottom), dilation,
                             padding_mode=padding_mode)
    assert_same(explicit, got)


@pytest.mark.parametrize("H,W,R,S,stride,dilation", [
    (5, 5, 3, 3, 2, 1), (6, 6, 3, 3, 2, 1), (7, 4, 2, 2, 3, 1), (4, 9, 5, 4, (2, 3), 1),
    (1, 1, 3, 3, 2, 1), (2, 3, 1, 1, 2, 1), (9, 8, 3, 2, 4, 2), (3, 3, 7, 7, 5, 1),
])
def test_padding_same_tensorflow_rule(H, W, R, S, stride, dilation):
    """With stride > 1, "same" keeps ceil(H / s) rows and pads like TF's SAME."""
    x, w, b = case_arrays(H * 100 + W, N=1, C=1, K=2, H=H, W=W, R=R, S=S)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    got = check(x, w, b, stride, "same", dilation)
    assert got.shape == (1, 2, -(-H // sh), -(-W // sw))
    # hand-written TF rule for the rows
    dh = dilation
    Ho = -(-H // sh)
    total = max((Ho - 1) * sh + dh * (R - 1) + 1 - H, 0)
    assert resolve_padding("same", (H, W), (R, S), stride, dilation)[2:] == (total // 2,
                                                                             total - total // 2)


def test_padding_forms_equivalent():
    x, w, b = case_arrays(7, C=2, K=3, H=8, W=9)
    r_int = cyconv.conv2d(x, w, b, padding=2)
    assert_same(r_int, cyconv.conv2d(x, w, b, padding=(2, 2)))
    assert_same(r_int, cyconv.conv2d(x, w, b, padding=(2, 2, 2, 2)))
    assert_same(r_int, cyconv.conv2d(x, w, b, padding=[2, 2]))
    r_pair = cyconv.conv2d(x, w, b, padding=(1, 3))  # (ph, pw)
    assert_same(r_pair, cyconv.conv2d(x, w, b, padding=(3, 3, 1, 1)))
    assert_same(cyconv.conv2d(x, w, b, padding="valid"), cyconv.conv2d(x, w, b, padding=0))
    assert_same(cyconv.conv2d(x, w, b, stride=[2, 1], dilation=[1, 2]),
                cyconv.conv2d(x, w, b, stride=(2, 1), dilation=(1, 2)))
    # asymmetric: left/right act on W, top/bottom on H
    r = cyconv.conv2d(x, w, None, padding=(0, 2, 1, 0))
    assert r.shape == (2, 3, 8 + 1 - 2, 9 + 2 - 2)


CHANNELS = [  # (C, K, groups)
    (1, 1, 1), (3, 1, 1), (2, 2, 1), (3, 3, 1), (4, 7, 1), (3, 8, 1), (2, 16, 1), (3, 17, 1),
    (2, 33, 1), (2, 40, 1), (3, 70, 1), (4, 4, 2), (6, 4, 2), (4, 6, 2), (6, 70, 2),
    (4, 40, 4), (8, 8, 8), (5, 5, 5), (3, 6, 3), (4, 12, 4), (8, 40, 8), (16, 32, 16),
    (6, 6, 3), (12, 36, 4), (3, 96, 3),
]


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("C,K,groups", CHANNELS, ids=lambda v: str(v))
def test_channels_and_groups(C, K, groups, batched, dtype):
    seed = C * 10000 + K * 10 + groups + 7 * batched
    stride = 1 + seed % 2
    R = (3, 1, 5, 2)[seed % 4]
    x, w, b = case_arrays(seed, batched=batched, N=2, C=C, K=K, groups=groups, H=5, W=37,
                          R=R, S=R, bias=bool(seed % 3), dtype=dtype)
    check(x, w, b, stride, R // 2, 1, groups)


@pytest.mark.parametrize("W", [1, 2, 13, 14, 15, 27, 28, 29, 37, 64])
@pytest.mark.parametrize("K,dtype", [(40, F32), (70, F32), (20, F64), (3, F32), (1, F64)],
                         ids=str)
def test_widths_and_tiles(W, K, dtype):
    """Output widths around multiples of a tile, for blocked and row paths."""
    x, w, b = case_arrays(W * 100 + K, N=1, C=3, K=K, H=4, W=W, R=3, S=3, dtype=dtype)
    check(x, w, b, 1, 1)
    check(x, w, b, 2, (1, 1, 1, 0), 1, 1, "replicate")


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), (2, 2), ((2, 1), (3, 1)),
                                             ((1, 2), 1), (1, (1, 2))], ids=str)
@pytest.mark.parametrize("W", [1, 3, 7, 8, 14, 15, 16, 17, 28, 31, 33, 40])
def test_depthwise_row_widths(W, stride, dilation, dtype):
    """Depthwise layers run many output rows per row-kernel call: rows
    narrower than two vectors computed whole vectors wide (reading on into
    the next row and a spare zero row), strided or dilated rows with the
    kernel's rows as channels; an `out` with strided rows takes the copy."""
    x, w, b = case_arrays(W * 7 + len(str(stride)), N=2, C=6, K=12, groups=6, H=11, W=W, R=3,
                          S=3, dtype=dtype)
    pad = dilation   # a padded row at least as wide as the dilated kernel
    got = check(x, w, b, stride, pad, dilation, 6)
    check(x, w, None, stride, pad, dilation, 6, "replicate")
    if W >= 2:
        check(x, w, b, stride, pad, dilation, 6, "circular")
    out = np.full(got.shape[:3] + (2 * got.shape[3],), np.nan, got.dtype)[..., ::2]
    assert_same(check(x, w, b, stride, pad, dilation, 6, out=out), got)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C", [8, 16, 20, 33])
@pytest.mark.parametrize("H,W,R,S,stride,dilation,padding,mode", [
    (7, 7, 3, 3, 1, 1, 1, "zeros"),
    (14, 13, 3, 3, 2, 1, 1, "zeros"),
    (9, 30, 5, 3, (1, 3), (2, 1), (2, 1), "reflect"),
    (12, 5, 3, 5, (3, 1), (1, 2), (0, 4), "replicate"),
    (6, 11, 1, 3, 2, 2, (0, 2, 1, 0), "circular"),
    (120, 41, 3, 3, (2, 1), 1, 1, "zeros"),   # two bands of rows (AVX-512)
    (41, 41, 3, 3, 1, 1, 1, "zeros"),     # a large plane at unit stride: the row kernels
    (5, 9, 7, 7, (2, 1), 1, 3, "zeros"),  # kernel wider than the image
], ids=str)
@pytest.mark.parametrize("multiplier", [1, 2])
def test_depthwise_channels_in_lanes(C, H, W, R, S, stride, dilation, padding, mode, multiplier,
                                     dtype):
    """Depthwise layers with the channels in the vector lanes (groups of the
    level's lanes and a part group; strides, dilations, padding modes, bands
    of rows, a strided `out`, a depth multiplier): against the reference,
    and bitwise the row kernels' result (the same sums in the same order)."""
    from cyconv import _conv2d, _core
    x, w, b = case_arrays(C * H + W, N=2, C=C, K=C * multiplier, groups=C, H=H, W=W, R=R, S=S,
                          dtype=dtype)
    prep = _conv2d._prepare(x, w, b, stride, padding, dilation, C, mode, 1)
    sizes = _core.tile_sizes()
    lanes = sizes["dw_lanes_f64" if dtype == F64 else "dw_lanes_f32"]
    Ho, Wo = prep.result_shape[2:]
    unit = stride == dilation == 1
    largest = sizes["dw_max_bytes"] * (lanes * dtype.itemsize) ** 2 // 4096   # (unit stride)
    # (a multiplier may fill the level's channel blocks: those layers are blocked)
    KB = _core.tile_sizes(multiplier, dtype == F64)["block_f64" if dtype == F64 else "block_f32"]
    assert prep.plan.depthwise_lanes == (
        lanes if 2 * multiplier < KB and C >= lanes
        and (not unit or Ho * Wo * dtype.itemsize <= largest) else 0)
    # (their rows gathered into scratch: no padded copy of the image)
    assert prep.plan.padded_shape == ((1, 1, 1) if prep.plan.depthwise_lanes
                                      else (C, prep.plan.Hb, prep.plan.Wb))
    got = check(x, w, b, stride, padding, dilation, C, mode)
    out = np.full(got.shape[:3] + (2 * got.shape[3],), np.nan, got.dtype)[..., ::2]
    check(x, w, b, stride, padding, dilation, C, mode, out=out)
    old = _core.set_depthwise_lanes(False)
    try:
        rows = cyconv.conv2d(x, w, b, stride, padding, dilation, C, padding_mode=mode)
        rows_unbiased = cyconv.conv2d(x, w, None, stride, padding, dilation, C,
                                      padding_mode=mode)
    finally:
        _core.set_depthwise_lanes(old)
    np.testing.assert_array_equal(got, rows)
    np.testing.assert_array_equal(out, rows)
    np.testing.assert_array_equal(
        cyconv.conv2d(x, w, None, stride, padding, dilation, C, padding_mode=mode), rows_unbiased)
    # an input of any strides: a column-strided view
    wide = np.repeat(x, 2, axis=3)[..., ::2]
    np.testing.assert_array_equal(
        cyconv.conv2d(wide, w, b, stride, padding, dilation, C, padding_mode=mode), rows)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("N,C,K,H,W,R,S,padding,dilation,groups,stride", [
    (64, 64, 64, 4, 4, 3, 3, 1, 1, 1, 1),
    (40, 16, 40, 2, 2, 3, 3, 1, 1, 1, 1),     # a part channel block
    (33, 8, 64, 8, 8, 3, 3, 1, 1, 2, 1),      # groups; a piece's last tile part full
    (9, 32, 32, 6, 6, 5, 5, 2, 1, 1, 1),
    (12, 3, 64, 8, 8, 3, 3, (2, 1), 2, 1, 1),  # dilated, a first layer
    (20, 24, 48, 13, 11, 3, 3, 1, 1, 1, 1),
    (6, 16, 32, 9, 9, 1, 3, (0, 1), 1, 1, 1),
    (30, 20, 36, 6, 6, 3, 3, 0, 1, 1, 1),     # no padding
    (5, 64, 64, 16, 16, 3, 3, 1, 1, 1, 1),
    (16, 64, 32, 4, 4, 3, 3, (3, 0), 1, 1, 1),  # output rows all on padding
    # strided layers whose rows are narrow tiles
    (64, 32, 64, 16, 16, 3, 3, 1, 1, 1, 2),
    (40, 16, 40, 12, 11, 3, 3, 1, 1, 1, 2),   # a part channel block
    (33, 8, 64, 15, 6, 3, 3, 1, 1, 2, (2, 1)),
    (12, 3, 64, 16, 16, 3, 3, (2, 1), 2, 1, 2),
    (9, 16, 32, 13, 13, 5, 5, 2, 1, 1, 3),
    (16, 32, 32, 8, 8, 3, 3, (3, 0), 1, 1, 2),
    (12, 32, 64, 20, 20, 4, 4, 0, 1, 1, 2),   # DQN's second layer: rows of 9
], ids=str)
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("weights", ["finite", "inf", "nan"])
@pytest.mark.parametrize("mode", ["zeros", "reflect"])
def test_tiles_across_images(N, C, K, H, W, R, S, padding, dilation, groups, stride, workers,
                             dtype, weights, mode):
    """Pieces of tiny images in tiles across rows and images: against the
    reference, and bitwise the per-image flat (or row) tiles' result (the same sums
    in the same order; the products with zero padding left out only where
    a block's weights are finite), for any number of threads, into a
    strided `out`."""
    from cyconv import _core
    x, w, b = case_arrays(N * C + H, N=N, C=C, K=K, groups=groups, H=H, W=W, R=R, S=S,
                          dtype=dtype)
    if mode == "reflect" and (np.max(padding) >= min(H, W) or np.ndim(padding)):
        pytest.skip("reflect padding must be less than the image")
    if weights != "finite":   # in the first block only: the others still skip
        w[0, 0, 0, 0] = np.inf if weights == "inf" else np.nan
    else:
        check(x, w, b, stride, padding, dilation, groups, mode)
    args = (stride, padding, dilation, groups)
    got = cyconv.conv2d(x, w, b, *args, padding_mode=mode, workers=workers)
    out = np.full(got.shape[:3] + (2 * got.shape[3],), np.nan, got.dtype)[..., ::2]
    cyconv.conv2d(x, w, b, *args, padding_mode=mode, out=out, workers=workers)
    old = _core.set_gathered_tiles(False)
    try:
        flat = cyconv.conv2d(x, w, b, *args, padding_mode=mode, workers=1)
        flat_unbiased = cyconv.conv2d(x, w, None, *args, padding_mode=mode, workers=1)
    finally:
        _core.set_gathered_tiles(old)
    np.testing.assert_array_equal(got, flat)
    np.testing.assert_array_equal(out, flat)
    np.testing.assert_array_equal(
        cyconv.conv2d(x, w, None, *args, padding_mode=mode, workers=workers), flat_unbiased)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("layer", [
    # (C, K, H, R, stride, padding)
    (32, 32, 5, 3, 1, 0),    # flat tiles of 3x3 outputs (gathered at every level)
    (32, 64, 20, 4, 2, 0),   # DQN's second layer: rows of 9 (gathered on AVX-512)
    (64, 64, 4, 3, 1, 1),    # classes of rows and columns: no tile reads the padding (AVX-512)
    (64, 64, 5, 3, 1, (2, 0)),   # padding rows only (AVX-512)
    (32, 32, 10, 3, 1, (1, 0)),  # (every level)
    (32, 32, 4, 3, 1, 1),    # classes of rows only: tiles read the padding columns (AVX-512)
    (32, 32, 9, 3, 1, 1),    # (every level)
    (8, 32, 8, 11, 1, 10),   # more classes of rows than kept: one of every tap (AVX-512)
], ids=str)
@pytest.mark.parametrize("weights", ["finite", "inf"])
@pytest.mark.parametrize("batch", ["contiguous", "every other image", "images reversed",
                                   "one image repeated"])
@pytest.mark.parametrize("workers", [1, 2])
def test_gathered_tiles_read_images_in_place(layer, weights, batch, workers, dtype):
    """Tiles gathered across C-ordered images read them where they are
    (no padded copy) when they read no padding: without padding, or with
    zero padding that every tile leaves out (finite weights). Whatever the
    batch's stride: the reference's values, and bitwise the row or flat
    tiles' result."""
    from cyconv import _conv2d, _core
    C, K, H, R, stride, padding = layer
    x, w, b = case_arrays(C + H + R, N=32, C=C, K=K, H=H, W=H, R=R, S=R, dtype=dtype)
    x = {"contiguous": x[:16], "every other image": x[::2], "images reversed": x[::-2],
         "one image repeated": np.broadcast_to(x[:1], (16,) + x.shape[1:])}[batch]
    if not _conv2d._prepared_call(x, w, b, stride, padding, 1, 1, "zeros", workers).plan.gathers:
        pytest.skip("this level runs the layer in row tiles")
    if weights == "inf":   # (products with the padding then count: NaN)
        w[-1, -1, -1, -1] = np.inf
        got = cyconv.conv2d(x, w, b, stride, padding, workers=1)
    else:
        got = check(x, w, b, stride, padding)
    old = _core.set_gathered_tiles(False)
    try:
        tiles = cyconv.conv2d(x, w, b, stride, padding, workers=1)
    finally:
        _core.set_gathered_tiles(old)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, stride, padding, workers=workers),
                                  tiles)
    np.testing.assert_array_equal(got, tiles)


@pytest.mark.parametrize("workers", [1, 2])
def test_gathered_pieces_hold_a_tile_of_images(workers, monkeypatch):
    """Tiles gathered across images leave out columns of zero padding only
    in pieces of a tile's images (plan.gather_images): however small the
    chunks, a batch of more images than that runs in pieces of at least
    that many, as many for each thread, and gives the bits of one piece
    and of the flat tiles."""
    from cyconv import _conv2d, _core, _parallel
    x, w, b = case_arrays(61, N=37, C=64, K=32, H=7, W=7, R=3, S=3, dtype=F32)
    plan = _conv2d._prepared_call(x, w, b, 1, 2, 1, 1, "zeros", workers).plan
    if not plan.gathers:
        pytest.skip("this level runs the layer in row tiles")
    images = plan.gather_images
    assert images == plan.tile_pixels > 1
    pieces = []
    run = _parallel.run
    monkeypatch.setattr(_parallel, "run", lambda job, chunks, *a: (pieces.append(chunks),
                                                                    run(job, chunks, *a)))
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    check(x, w, b, 1, 2)   # against the reference
    got = cyconv.conv2d(x, w, b, padding=2, workers=workers)
    sizes = [n1 - n0 for n0, n1, *_ in pieces[-1]]
    assert sum(sizes) == 37 and min(sizes) >= images
    assert len(sizes) % min(workers, len(sizes)) == 0
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1 << 60)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=2, workers=1), got)
    assert [n1 - n0 for n0, n1, *_ in pieces[-1]] == [37]
    old = _core.set_gathered_tiles(False)
    try:
        np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=2, workers=1), got)
    finally:
        _core.set_gathered_tiles(old)


def test_tiles_across_images_planned():
    """The plans of some tiny images of a batch gather their tiles across
    images (which sizes depends on the level's tile width), and never those
    of one image or with the setting off."""
    from cyconv import _conv2d, _core

    def gathers(N, H, C, stride=1):
        x, w = np.ones((N, C, H, H), F32), np.ones((C, C, 3, 3), F32)
        # (through the prepared calls, whose key holds the setting)
        return _conv2d._prepared_call(x, w, None, stride, 1, 1, 1, "zeros", 1).plan.gathers

    sizes = [(H, C) for H in range(2, 17) for C in (16, 64)]
    assert any(gathers(16, H, C) for H, C in sizes)
    assert any(gathers(16, 2 * H, C, 2) for H, C in sizes)
    assert not any(gathers(1, H, C) for H, C in sizes)
    old = _core.set_gathered_tiles(False)
    try:
        assert not any(gathers(16, H, C) or gathers(16, 2 * H, C, 2) for H, C in sizes)
    finally:
        _core.set_gathered_tiles(old)


@pytest.mark.parametrize("shape", [
    # (N, C, H, W, K, R, S, padding)
    (1, 1, 1, 1, 1, 1, 1, 0), (2, 1, 1, 1, 3, 1, 1, 0), (1, 2, 1, 5, 2, 1, 3, 0),
    (1, 1, 5, 1, 2, 3, 1, 0), (3, 2, 4, 4, 2, 4, 4, 0), (1, 1, 1, 1, 1, 3, 3, 1),
    (1, 1, 2, 2, 1, 5, 5, 2), (1, 2, 3, 3, 40, 3, 3, 0), (5, 1, 2, 3, 1, 2, 3, 0),
])
def test_small_and_degenerate_shapes(shape):
    N, C, H, W, K, R, S, padding = shape
    x, w, b = case_arrays(sum(shape), N=N, C=C, K=K, H=H, W=W, R=R, S=S)
    check(x, w, b, 1, padding)
    check(x.astype(F32), w.astype(F32), b.astype(F32), 1, padding)


FACTORS = {
    "batched": [True, False],
    "chans": [(1, 1, 1), (3, 2, 1), (2, 40, 1), (3, 70, 1), (4, 6, 2), (6, 6, 6), (4, 8, 4),
              (6, 3, 3)],
    "kernel": KERNELS,
    "stride": STRIDES,
    "dilation": DILATIONS,
    "padding": [0, 1, (2, 1), (1, 0, 2, 0), "valid", "same"],
    "padding_mode": list(PADDING_MODES),
    "bias": [True, False],
    "dtype": [F32, F64, F16, np.dtype(np.int32), np.dtype(bool), (F32, F64, F32),
              (F64, F32, F32), (F32, F32, F64)],
    "layout": ["C", "channels_last", "negative", "sliced", "bigendian", "readonly"],
    "size": [(5, 7), (8, 37), (12, 9)],
}
PAIRWISE = all_pairs(FACTORS)


@pytest.mark.parametrize("case", PAIRWISE, ids=[f"pw{i}" for i in range(len(PAIRWISE))])
def test_pairwise(case):
    C, K, groups = case["chans"]
    R, S = case["kernel"]
    dil = case["dilation"]
    dh, dw = (dil, dil) if isinstance(dil, int) else dil
    H, W = case["size"]
    H, W = fit_size(H, R, dh, 2), fit_size(W, S, dw, 2)
    seed = seed_of(case)
    x, w, b = case_arrays(seed, batched=case["batched"], N=2, C=C, K=K, groups=groups, H=H,
                          W=W, R=R, S=S, bias=case["bias"], dtype=case["dtype"])
    lay = case["layout"]
    check(layout(x, lay), layout(w, lay), layout(b, lay), case["stride"], case["padding"],
          dil, groups, case["padding_mode"])


# =========================================================================== dtypes

DTYPE_CASES = [  # (input, weight, bias) -> result
    ((F32, F32, None), F32), ((F32, F32, F32), F32), ((F16, F16, F16), F32),
    ((F16, F32, None), F32), ((F32, F16, F32), F32), ((F32, F32, F16), F32),
    ((F64, F64, F64), F64), ((F64, F64, None), F64), ((F32, F64, None), F64),
    ((F64, F32, None), F64), ((F32, F32, F64), F64), ((F16, F64, None), F64),
    (("int32", "int32", None), F64), (("int64", F32, None), F64), ((F32, F32, "int64"), F64),
    (("uint8", F32, F32), F64), (("int8", "int16", "int32"), F64), ((bool, bool, None), F64),
    ((bool, F32, F32), F64), ((F32, "uint16", None), F64), ((">f4", F32, None), F32),
    ((">f4", ">f4", ">f4"), F32), ((">f8", "<f4", None), F64), ((">f2", F32, None), F32),
    ((">i4", ">f4", None), F64),
]


@pytest.mark.parametrize("dtypes,expected", DTYPE_CASES, ids=str)
def test_dtypes(dtypes, expected):
    xd, wd, bd = (None if d is None else np.dtype(d) for d in dtypes)
    rng = np.random.default_rng(len(str(dtypes)))
    x = make(rng, (2, 4, 6, 7), xd)
    w = make(rng, (6, 2, 3, 2), wd)
    b = None if bd is None else make(rng, (6,), bd)
    got = check(x, w, b, (1, 2), (1, 0), 1, 2)
    assert got.dtype == expected
    assert got.dtype.isnative
    got = check(x, w, b, 2, "same", 1, 2, "reflect")
    assert got.dtype == expected


def test_integer_inputs_exact():
    """Small integers: the float64 result is exact."""
    rng = np.random.default_rng(3)
    x = rng.integers(-50, 50, (2, 3, 9, 8)).astype(np.int64)
    w = rng.integers(-9, 10, (4, 3, 3, 3)).astype(np.int16)
    b = np.arange(4, dtype=np.int8)
    got = cyconv.conv2d(x, w, b, padding=1, padding_mode="circular")
    assert got.dtype == F64
    np.testing.assert_array_equal(got, conv2d_reference(x, w, b, 1, 1, 1, 1, "circular"))


def test_float32_not_upcast_by_python_scalars_and_float16_exact_inputs():
    # float16 values are exactly representable in float32
    rng = np.random.default_rng(5)
    x = make(rng, (1, 2, 5, 5), F16)
    w = make(rng, (3, 2, 2, 2), F16)
    got = check(x, w, None, 1, 0)
    assert got.dtype == F32


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
@pytest.mark.parametrize("ctype", [np.complex64, np.complex128])
def test_complex_raises_type_error(which, ctype):
    x, w, b = case_arrays(1, C=2, K=2, H=5, W=5)
    args = {"input": x, "weight": w, "bias": b}
    args[which] = args[which].astype(ctype)
    expect_error(TypeError, (which, "complex"), lambda: cyconv.conv2d(**args))


# =========================================================================== layouts

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("where", ["input", "weight", "bias", "all"])
@pytest.mark.parametrize("kind", LAYOUTS)
def test_layouts(kind, where, dtype):
    x, w, b = case_arrays(LAYOUTS.index(kind), N=2, C=4, K=6, groups=2, H=7, W=9, R=3, S=2,
                          dtype=dtype)
    if where in ("input", "all"):
        x = layout(x, kind)
    if where in ("weight", "all"):
        w = layout(w, kind)
    if where in ("bias", "all"):
        b = layout(b, kind)
    contiguous = cyconv.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w),
                               np.ascontiguousarray(b), 1, 1, groups=2)
    got = check(x, w, b, 1, 1, 1, 2)
    assert_same(got, contiguous)
    check(x, w, b, 2, "same", (2, 1), 2, "reflect")


def test_layout_blocked_channels_last():
    """Many output channels (blocked path) with channels-last input and weight."""
    x, w, b = case_arrays(11, N=2, C=5, K=70, H=6, W=37, R=3, S=3, dtype=F32)
    check(layout(x, "channels_last"), layout(w, "channels_last"), b, 1, 1)
    check(layout(x, "negative"), layout(w, "sliced"), layout(b, "negative"), 2, "same", 1, 1,
          "circular")


def test_broadcast_views():
    """Zero-stride (broadcast, read-only) arguments."""
    rng = np.random.default_rng(2)
    x = np.broadcast_to(rng.standard_normal((1, 3, 1, 8)), (4, 3, 6, 8))
    w = np.broadcast_to(rng.standard_normal((1, 3, 2, 2)), (5, 3, 2, 2))
    b = np.broadcast_to(np.float32(0.5), (5,))
    check(x, w, b, 1, 1)
    check(x, w, b, 1, 1, 1, 1, "reflect")


def test_transposed_spatial_axes():
    """input transposed so that H and W swap strides; weight likewise."""
    x0, w0, b = case_arrays(4, C=2, K=3, H=6, W=9)
    x = np.ascontiguousarray(x0.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)
    w = np.ascontiguousarray(w0.transpose(1, 0, 3, 2)).transpose(1, 0, 3, 2)
    got = check(x, w, b, (1, 2), (1, 2))
    assert_same(got, cyconv.conv2d(x0, w0, b, (1, 2), (1, 2)))


def test_keyword_arguments():
    x, w, b = case_arrays(9, C=2, K=3, H=6, W=6)
    check(x, w, b, 2, 1, 1, 1, "symmetric", keywords=True)
    got = cyconv.conv2d(x, w, bias=b, stride=(2, 1))
    assert got.shape == (2, 3, 2, 4)


# =========================================================================== out=

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
@pytest.mark.parametrize("K,groups,padding_mode", [(3, 1, "zeros"), (40, 1, "reflect"),
                                                   (70, 2, "circular"), (4, 4, "symmetric")])
def test_out(K, groups, padding_mode, batched, dtype):
    x, w, b = case_arrays(K, batched=batched, N=2, C=4, K=K, groups=groups, H=6, W=37,
                          dtype=dtype)
    shape = output_shape(x.shape, w.shape, 1, 1, 1)
    out = np.full(shape, np.nan, dtype)
    res = check(x, w, b, 1, 1, 1, groups, padding_mode, out=out)
    assert res is out
    # a second call overwrites everything
    out[...] = 1e30
    res2 = cyconv.conv2d(x, w, b, 1, 1, 1, groups, padding_mode=padding_mode, out=out)
    assert res2 is out
    assert_same(out, cyconv.conv2d(x, w, b, 1, 1, 1, groups, padding_mode=padding_mode))


@pytest.mark.parametrize("kind", ["sliced", "channels_last", "negative"])
def test_out_non_contiguous(kind):
    """A writeable non-contiguous out of the right shape and dtype is either filled
    correctly (and nothing around it touched) or refused with a ValueError naming out."""
    x, w, b = case_arrays(3, N=2, C=3, K=5, H=6, W=7)
    shape = output_shape(x.shape, w.shape, 1, 1, 1)
    base = np.full(tuple(2 * n + 1 for n in shape), -7.0)
    if kind == "sliced":
        out = base[(slice(1, None, 2),) * 4]
    elif kind == "channels_last":
        base = np.full((shape[0], shape[2], shape[3], shape[1]), -7.0)
        out = base.transpose(0, 3, 1, 2)
    else:
        base = np.full(shape, -7.0)
        out = base[:, ::-1, ::-1, ::-1]
    outside = np.ones(base.shape, bool)
    if kind == "sliced":
        outside[(slice(1, None, 2),) * 4] = False
    else:
        outside[...] = False
    try:
        res = cyconv.conv2d(x, w, b, 1, 1, out=out)
    except ValueError as exc:
        assert "out" in str(exc).lower()
        return
    assert res is out
    assert_conv_close(out, conv2d_reference(x, w, b, 1, 1), conv2d_abs_bound(x, w, b, 1, 1))
    assert (base[outside] == -7.0).all(), "conv2d wrote outside out"


def test_out_disjoint_part_of_same_buffer_is_accepted():
    x0, w, b = case_arrays(8, N=1, C=2, K=2, H=5, W=5, R=1, S=1)
    buf = np.zeros(2 * x0.size)
    x = buf[:x0.size].reshape(x0.shape)
    x[...] = x0
    out = buf[x0.size:].reshape(x0.shape)
    res = cyconv.conv2d(x, w, b, out=out)
    assert res is out
    np.testing.assert_array_equal(x, x0)
    assert_conv_close(out, conv2d_reference(x0, w, b), conv2d_abs_bound(x0, w, b))


def _out_error_cases():
    x, w, b = case_arrays(1, N=2, C=2, K=3, H=5, W=6)
    shape = (2, 3, 3, 4)
    cases = {
        "wrong_shape": (x, w, b, np.empty((2, 3, 3, 5))),
        "wrong_ndim": (x, w, b, np.empty((3, 3, 4))),
        "unbatched_given_batched_out": (x[0], w, b, np.empty((1,) + shape[1:])),
        "batched_given_unbatched_out": (x, w, b, np.empty(shape)[0]),
        "wrong_dtype_f32": (x, w, b, np.empty(shape, F32)),
        "wrong_dtype_int": (x, w, b, np.empty(shape, np.int64)),
        "wrong_dtype_bigendian": (x, w, b, np.empty(shape, ">f8")),
        "f64_for_f32_result": (x.astype(F32), w.astype(F32), None, np.empty(shape, F64)),
        "readonly": (x, w, b, np.lib.stride_tricks.as_strided(np.empty(shape), writeable=False)),
        "broadcast": (x, w, b, np.broadcast_to(np.empty((1, 3, 3, 4)), shape)),
        "list": (x, w, b, np.empty(shape).tolist()),
    }
    # out overlapping each argument
    buf = np.zeros(x.size + 100)
    xo = buf[:x.size].reshape(x.shape)
    xo[...] = x
    cases["overlaps_input"] = (xo, w, b, buf[50:50 + 72].reshape(shape))
    wbuf = np.zeros(w.size + 72)
    wo = wbuf[:w.size].reshape(w.shape)
    wo[...] = w
    cases["overlaps_weight"] = (x, wo, b, wbuf[w.size - 1:w.size + 71].reshape(shape))
    bbuf = np.zeros(80)
    bo = bbuf[:3]
    bo[...] = b
    cases["overlaps_bias"] = (x, w, bo, bbuf[2:74].reshape(shape))
    # 1x1 kernel, C == K: out the input itself
    x1 = np.random.default_rng(0).standard_normal((1, 3, 4, 4))
    w1 = np.random.default_rng(1).standard_normal((3, 3, 1, 1))
    cases["is_input"] = (x1, w1, None, x1)
    cases["input_view_reversed"] = (x1, w1, None, x1[:, ::-1])
    return cases


OUT_ERRORS = _out_error_cases()


@pytest.mark.parametrize("name", list(OUT_ERRORS))
def test_out_errors(name):
    x, w, b, out = OUT_ERRORS[name]
    snaps = [_snapshot(a) for a in (x, w, b)]
    expect_error((ValueError, TypeError), ("out",), lambda: cyconv.conv2d(x, w, b, out=out))
    for a, snap, n in zip((x, w, b), snaps, ("input", "weight", "bias")):
        _assert_unchanged(a, snap, n)


def test_out_readonly_and_overlap_are_value_errors():
    x, w, b, out = OUT_ERRORS["readonly"]
    expect_error(ValueError, ("out",), lambda: cyconv.conv2d(x, w, b, out=out))
    x, w, b, out = OUT_ERRORS["overlaps_input"]
    expect_error(ValueError, ("out",), lambda: cyconv.conv2d(x, w, b, out=out))
    x, w, b, out = OUT_ERRORS["wrong_shape"]
    expect_error(ValueError, ("out",), lambda: cyconv.conv2d(x, w, b, out=out))


# =========================================================================== NaN / inf

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("stride,dilation,padding,padding_mode", [
    (1, 1, 0, "zeros"), (1, 1, 1, "zeros"), (2, 1, 2, "zeros"), (1, 2, 2, "zeros"),
    ((1, 2), (2, 1), "same", "zeros"), (1, 1, 2, "reflect"), (1, 1, 2, "circular"),
    (2, 2, (1, 2), "replicate"), (1, 1, (2, 0, 0, 2), "symmetric"),
], ids=str)
@pytest.mark.parametrize("K", [3, 40])
def test_nonfinite_input_propagates(K, stride, dilation, padding, padding_mode, dtype):
    x, w, b = case_arrays(K, N=2, C=3, K=K, H=8, W=9, dtype=dtype)
    x[0, 1, 3, 4] = np.nan
    x[0, 2, 0, 0] = np.inf
    x[1, 0, 7, 8] = -np.inf
    x[1, 0, 2, 2] = np.inf
    x[1, 2, 2, 3] = np.inf  # opposite-signed products with the one above give NaN somewhere
    with np.errstate(all="ignore"):
        got = check(x, w, b, stride, padding, dilation, 1, padding_mode,
                    reference=conv2d_direct)
    assert np.isnan(got).any() and np.isinf(got).any()


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("K", [3, 40])
def test_nonfinite_weight_and_bias_propagate(K, dtype):
    x, w, b = case_arrays(K + 1, N=2, C=2, K=K, H=6, W=7, dtype=dtype)
    w[1, 0, 1, 1] = np.nan
    w[0, 1, 0, 2] = np.inf  # inf * 0 (zero padding) is NaN, inf * x is +-inf
    b[K - 1] = -np.inf
    with np.errstate(all="ignore"):
        got = check(x, w, b, 1, 1, 1, 1, reference=conv2d_direct)
        assert np.isnan(got[:, 1]).all()
        assert np.isinf(got[:, K - 1]).any()
        got = check(x, w, b, 1, 0, 1, 1, reference=conv2d_direct)  # no padding zeros
        assert np.isnan(got[:, 1]).all()
    # a NaN bias fills its channel
    x, w, b = case_arrays(K, N=1, C=2, K=K, H=5, W=5, dtype=dtype)
    b[0] = np.nan
    got = check(x, w, b, 1, 1)
    assert np.isnan(got[:, 0]).all() and np.isfinite(got[:, 1:]).all()


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C,K,H,W,stride,padding", [
    (8, 40, 9, 42, 1, 1),          # weights packed first
    (8, 40, 10, 31, 2, (1, 0)),    # stride 2: a padding column on the left only
    (8, 40, 6, 29, (1, 2), 1),     # stride 2 along the row, an odd width: both edges
    (256, 72, 8, 42, 1, 1),        # each block packed as its tiles start (pack_inline)
], ids=str)
@pytest.mark.parametrize("bad", ["none", "first", "middle", "last"])
def test_nonfinite_weights_where_tiles_read_the_image_in_place(bad, C, K, H, W, stride, padding,
                                                               dtype):
    """Tiles that leave out the padding's products read a C-ordered image in
    place while every weight is finite; a block with an inf or NaN weight
    needs the padding's zeros (inf x 0 is NaN), so the image is padded for
    it and for the blocks after it. Same values as the reference, and the
    same bits as a copy of the image (always padded) and as two threads."""
    from cyconv import _core
    (top, left) = (padding, padding) if isinstance(padding, int) else padding
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    plan = _core.conv2d_plan((1, C, H, W), K, (3, 3), 1, (sh, sw), (1, 1),
                             (top, top, left, left), dtype == F64, zero_padding=True)
    assert plan.blocked and plan.reads_image, "the case must take the in-place reads"
    assert plan.pack_inline == (C == 256)
    x, w, b = case_arrays(C + K, N=1, C=C, K=K, H=H, W=W, dtype=dtype)
    k = {"none": None, "first": 0, "middle": K // 2, "last": K - 1}[bad]
    if k is not None:
        w[k, C - 1, 0, 0] = np.inf
        w[min(k + 1, K - 1), 0, 2, 2] = np.nan
    with np.errstate(all="ignore"):
        got = check(x, w, b, stride, padding, reference=conv2d_direct)
    strided = np.empty((1, C, H, 2 * W), dtype)[..., ::2]   # padded, never read in place
    strided[...] = x
    assert cyconv.conv2d(strided, w, b, stride, padding).tobytes() == got.tobytes()
    assert cyconv.conv2d(x, w, b, stride, padding, workers=2).tobytes() == got.tobytes()
    if k is not None:
        assert np.isnan(got[0, k, 0, 0]), "inf x the top-left padding zero is NaN"


def test_reference_formulations_agree():
    """The SciPy-based reference and the direct one agree (sanity of the tests)."""
    for i, (mode, pad, st_, dil) in enumerate(itertools.product(
            PADDING_MODES, [0, (1, 2), (0, 2, 1, 0), "same"], [1, (2, 3)], [1, (2, 1)])):
        x, w, b = case_arrays(i, N=2, C=4, K=4, groups=2, H=7, W=8, R=3, S=2)
        np.testing.assert_allclose(conv2d_reference(x, w, b, st_, pad, dil, 2, mode),
                                   conv2d_direct(x, w, b, st_, pad, dil, 2, mode),
                                   rtol=1e-12, atol=1e-12)


# =========================================================================== immutability

@pytest.mark.parametrize("padding_mode", PADDING_MODES)
def test_inputs_not_modified(padding_mode):
    x, w, b = case_arrays(5, N=2, C=4, K=40, groups=2, H=6, W=9, dtype=F32)
    x16 = x.astype(F16)
    for args in [(x, w, b), (x16, w, b), (layout(x, "negative"), layout(w, "channels_last"), b),
                 (x.astype(">f4"), w, b.astype(F64))]:
        snaps = [a.copy() for a in args]
        cyconv.conv2d(*args, 1, 2, 1, 2, padding_mode=padding_mode)
        cyconv.conv2d(args[0][0], *args[1:], 2, "same", 1, 2, padding_mode=padding_mode)
        for a, s in zip(args, snaps):
            np.testing.assert_array_equal(a, s)
            assert a.flags.writeable


# =========================================================================== extremes

def test_extreme_but_valid_arguments():
    x, w, b = case_arrays(12, N=1, C=2, K=3, H=5, W=6, R=2, S=2)
    # huge dilation of a 1x1 kernel spans one pixel
    w1 = w[:, :, :1, :1]
    got = check(x, w1, b, 1, 0, 2**40)
    assert got.shape == (1, 3, 5, 6)
    # padding larger than the input, where the mode allows it
    check(x, w, b, 1, 7, 1, 1, "zeros")
    check(x, w, b, 1, (9, 11), 1, 1, "replicate")
    check(x, w, b, 1, (5, 6), 1, 1, "circular")   # pad == size: one full wrap
    check(x, w, b, 1, (4, 5), 1, 1, "reflect")    # pad == size - 1
    check(x, w, b, 1, (0, 6, 5, 0), 1, 1, "circular")
    # kernel exactly the padded input
    wbig = case_arrays(1, C=2, K=3, R=7, S=8)[1]
    got = check(x, wbig, b, 1, 1)
    assert got.shape == (1, 3, 1, 1)
    got = check(x, wbig, b, 3, (0, 2, 2, 0))
    assert got.shape == (1, 3, 1, 1)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("K", [3, 70])
@pytest.mark.parametrize("stride", [2**31, (2**62, 1), (1, 2**40), (3, 2**16)], ids=str)
def test_huge_stride_small_output(stride, K, dtype):
    """A stride far beyond the input is valid: one output row / column, no big buffers.
    (K=70 takes the channel-blocked path at every kernel level, K=3 the other one.)"""
    x, w, b = case_arrays(12, N=2, C=2, K=K, H=5, W=6, R=2, S=2, dtype=dtype)
    check(x, w, b, stride, 0)  # output shape checked against the contract's formula
    check(x, w, b, stride, 1, 1, 1, "reflect")


@pytest.mark.parametrize("padding", [(6, 0), (0, 7), (0, 0, 6, 0), (20, 20)], ids=str)
def test_symmetric_large_padding(padding):
    """symmetric has no PyTorch limit: with pads beyond the input it either
    follows np.pad's 'symmetric' or refuses with a ValueError naming padding."""
    x, w, b = case_arrays(13, N=1, C=2, K=2, H=5, W=6)
    try:
        cyconv.conv2d(x, w, b, 1, padding, padding_mode="symmetric")
    except ValueError as exc:
        assert "padding" in str(exc).lower()
        return
    check(x, w, b, 1, padding, 1, 1, "symmetric")


_HAS_WORKERS = "workers" in inspect.signature(cyconv.conv2d).parameters


@pytest.mark.skipif(not _HAS_WORKERS, reason="conv2d has no workers argument")
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_workers_give_identical_results(dtype):
    x, w, b = case_arrays(21, N=3, C=8, K=40, H=30, W=37, R=3, S=3, dtype=dtype)
    r1 = cyconv.conv2d(x, w, b, 1, 1, workers=1)
    r2 = cyconv.conv2d(x, w, b, 1, 1, workers=2)
    np.testing.assert_array_equal(r1, r2)
    r3 = cyconv.conv2d(x[1], w, b, 1, 1, workers=2)
    np.testing.assert_array_equal(r1[1], r3)
    assert_conv_close(r1, conv2d_reference(x, w, b, 1, 1), conv2d_abs_bound(x, w, b, 1, 1))


@pytest.mark.parametrize("N,K,groups,stride,padding,padding_mode,dtype", [
    (1, 40, 1, 1, 1, "zeros", F32),          # one image: split by output rows
    (2, 40, 2, 1, "same", "reflect", F64),   # images split between threads
    (3, 70, 1, 2, (1, 2, 0, 1), "circular", F32),
    (1, 8, 8, 1, 2, "replicate", F64),       # depthwise
    (2, 6, 2, (1, 2), (2, 1), "symmetric", F32),
    (None, 40, 1, 1, 1, "zeros", F64),       # unbatched
], ids=str)
def test_problems_big_enough_for_threads(N, K, groups, stride, padding, padding_mode, dtype):
    """More than a million multiply-adds per call, so the work is split between threads."""
    x, w, b = case_arrays(seed_of(N, K, groups), batched=N is not None, N=N or 1, C=8, K=K,
                          groups=groups, H=33, W=37, R=3, S=3, dtype=dtype)
    got = check(x, w, b, stride, padding, 1, groups, padding_mode)
    out = np.full(got.shape, np.nan, dtype)
    assert cyconv.conv2d(x, w, b, stride, padding, 1, groups, padding_mode=padding_mode,
                         out=out) is out
    assert_same(out, got)


# =========================================================================== errors

def _std(seed=0, **kw):
    p = dict(N=2, C=4, K=6, H=6, W=7, R=3, S=3)
    p.update(kw)
    return case_arrays(seed, **p)


X, WT, B = _std()
VE, TE = ValueError, TypeError
VT = (ValueError, TypeError)

ERROR_CASES = {
    # ---- ndim
    "input_2d": (dict(input=X[0, 0]), VE, ("input",)),
    "input_5d": (dict(input=X[None]), VE, ("input",)),
    "input_1d": (dict(input=X.ravel()), VE, ("input",)),
    "input_0d": (dict(input=np.float64(1.0)), VE, ("input",)),
    "weight_3d": (dict(weight=WT[0]), VE, ("weight",)),
    "weight_5d": (dict(weight=WT[None]), VE, ("weight",)),
    "weight_2d": (dict(weight=WT[0, 0]), VE, ("weight",)),
    # ---- channels / groups
    "channel_mismatch": (dict(weight=_std(K=6, C=3)[1]), VE, ("input", "weight", "channel")),
    "channel_mismatch_groups": (dict(weight=_std(C=1)[1], groups=2), VE,
                                ("input", "weight", "channel", "groups")),
    "channel_mismatch_unbatched": (dict(input=X[0, :3]), VE, ("input", "weight", "channel")),
    "groups_not_dividing_C": (dict(input=_std(C=3)[0], weight=_std(C=1, K=6)[1], groups=2), VE,
                              ("groups",)),
    "groups_not_dividing_K": (dict(weight=_std(C=2, K=5)[1], bias=None, groups=2), VE,
                              ("groups",)),
    "groups_zero": (dict(groups=0), VE, ("groups",)),
    "groups_negative": (dict(groups=-2), VE, ("groups",)),
    "groups_float": (dict(groups=2.0), VT, ("groups",)),
    "groups_none": (dict(groups=None), VT, ("groups",)),
    # ---- stride
    "stride_zero": (dict(stride=0), VE, ("stride",)),
    "stride_negative": (dict(stride=-1), VE, ("stride",)),
    "stride_pair_zero": (dict(stride=(1, 0)), VE, ("stride",)),
    "stride_pair_negative": (dict(stride=(-2, 1)), VE, ("stride",)),
    "stride_triple": (dict(stride=(1, 1, 1)), VE, ("stride",)),
    "stride_empty": (dict(stride=()), VE, ("stride",)),    # (2,) is valid, as in PyTorch
    "stride_bool": (dict(stride=True), TE, ("stride",)),
    "stride_single_bool": (dict(stride=(True,)), TE, ("stride",)),
    "stride_single_zero": (dict(stride=[0]), VE, ("stride",)),
    "stride_array": (dict(stride=np.array([2, 2])), TE, ("stride",)),
    "stride_float": (dict(stride=1.5), VT, ("stride",)),
    "stride_pair_float": (dict(stride=(1, 1.5)), VT, ("stride",)),
    "stride_str": (dict(stride="2"), VT, ("stride",)),
    "stride_none": (dict(stride=None), VT, ("stride",)),
    # ---- dilation
    "dilation_zero": (dict(dilation=0), VE, ("dilation",)),
    "dilation_negative": (dict(dilation=-2), VE, ("dilation",)),
    "dilation_pair_zero": (dict(dilation=(0, 1)), VE, ("dilation",)),
    "dilation_triple": (dict(dilation=(1, 1, 1)), VE, ("dilation",)),
    "dilation_empty": (dict(dilation=[]), VE, ("dilation",)),
    "dilation_single_float": (dict(dilation=(2.0,)), TE, ("dilation",)),
    "dilation_float": (dict(dilation=1.5), VT, ("dilation",)),
    "dilation_pair_float": (dict(dilation=(2.5, 1)), VT, ("dilation",)),
    # ---- padding
    "padding_negative": (dict(padding=-1), VE, ("padding",)),
    "padding_pair_negative": (dict(padding=(1, -1)), VE, ("padding",)),
    "padding_quad_negative": (dict(padding=(0, 0, 0, -1)), VE, ("padding",)),
    "padding_triple": (dict(padding=(1, 1, 1)), VE, ("padding",)),
    "padding_empty": (dict(padding=()), VE, ("padding",)),   # (1,) is valid, as in PyTorch
    "padding_single_negative": (dict(padding=[-1]), VE, ("padding",)),
    "padding_five": (dict(padding=(1, 1, 1, 1, 1)), VE, ("padding",)),
    "padding_float": (dict(padding=1.5), VT, ("padding",)),
    "padding_pair_float": (dict(padding=(1.0, 2)), VT, ("padding",)),
    "padding_unknown_str": (dict(padding="bogus"), VE, ("padding",)),
    "padding_full": (dict(padding="full"), VE, ("padding",)),
    "padding_empty_str": (dict(padding=""), VE, ("padding",)),
    "padding_none": (dict(padding=None), VT, ("padding",)),
    # ---- padding_mode
    "mode_unknown": (dict(padding_mode="bogus"), VE, ("padding_mode",)),
    "mode_empty": (dict(padding_mode=""), VE, ("padding_mode",)),
    "mode_none": (dict(padding_mode=None), VT, ("padding_mode",)),
    "mode_int": (dict(padding_mode=0), VT, ("padding_mode",)),
    "mode_unknown_padding0": (dict(padding_mode="bogus", padding=0), VE, ("padding_mode",)),
    # ---- kernel larger than the padded input
    "kernel_too_tall": (dict(weight=_std(R=7)[1]), VE, ("weight", "kernel", "input")),
    "kernel_too_wide": (dict(weight=_std(S=8)[1]), VE, ("weight", "kernel", "input")),
    "kernel_too_large_dilated": (dict(dilation=3), VE, ("weight", "kernel", "input",
                                                        "dilation")),
    "kernel_too_large_dilated_w": (dict(dilation=(1, 4)), VE, ("weight", "kernel", "input",
                                                               "dilation")),
    "kernel_too_large_valid": (dict(weight=_std(R=7)[1], padding="valid"), VE,
                               ("weight", "kernel", "input")),
    "kernel_too_large_asym_pad": (dict(weight=_std(R=8, S=3)[1], padding=(0, 0, 1, 0)), VE,
                                  ("weight", "kernel", "input")),
    # ---- bias
    "bias_too_long": (dict(bias=np.zeros(7)), VE, ("bias",)),
    "bias_too_short": (dict(bias=np.zeros(5)), VE, ("bias",)),
    "bias_2d": (dict(bias=np.zeros((6, 1))), VE, ("bias",)),
    "bias_2d_row": (dict(bias=np.zeros((1, 6))), VE, ("bias",)),
    "bias_0d": (dict(bias=np.float64(1.0)), VE, ("bias",)),
    "bias_empty": (dict(bias=np.zeros(0)), VE, ("bias",)),
    # ---- pad limits of reflect / circular
    "reflect_pad_eq_H": (dict(input=_std(H=3)[0], padding=3, padding_mode="reflect"), VE,
                         ("padding",)),
    "reflect_pad_eq_W": (dict(input=_std(W=2)[0], padding=(1, 2), padding_mode="reflect"), VE,
                         ("padding",)),
    "reflect_quad_left": (dict(input=_std(W=3)[0], padding=(3, 0, 0, 0),
                               padding_mode="reflect"), VE, ("padding",)),
    "reflect_quad_bottom": (dict(input=_std(H=4)[0], padding=(0, 0, 0, 4),
                                 padding_mode="reflect"), VE, ("padding",)),
    "reflect_same_big_kernel": (dict(input=_std(H=3, W=9)[0], weight=_std(R=7)[1],
                                     padding="same", padding_mode="reflect"), VE, ("padding",)),
    "circular_pad_gt_H": (dict(input=_std(H=3)[0], padding=4, padding_mode="circular"), VE,
                          ("padding",)),
    "circular_quad_right": (dict(input=_std(W=3)[0], padding=(0, 4, 0, 0),
                                 padding_mode="circular"), VE, ("padding",)),
    "circular_same_big_kernel": (dict(input=_std(H=9, W=2)[0], weight=_std(S=7)[1],
                                      padding="same", padding_mode="circular"), VE,
                                 ("padding",)),
}


@pytest.mark.parametrize("name", list(ERROR_CASES))
def test_errors(name):
    kwargs, exc, names = ERROR_CASES[name]
    args = dict(input=X, weight=WT, bias=B)
    args.update(kwargs)
    if "padding_mode" not in args:
        args["padding_mode"] = "zeros"
    snaps = {k: _snapshot(v) for k, v in args.items() if isinstance(v, np.ndarray)}
    expect_error(exc, names, lambda: cyconv.conv2d(**args))
    for k, s in snaps.items():
        _assert_unchanged(args[k], s, k)


def test_error_cases_agree_with_reference_classification():
    """Sanity of the tests: the reference's validity check flags every error case."""
    for name, (kwargs, _, _) in ERROR_CASES.items():
        args = dict(input=X, weight=WT, bias=B)
        args.update(kwargs)
        try:
            v = contract_violation(**args)
        except (TypeError, ValueError):
            v = "raised"
        assert v is not None, name


@pytest.mark.parametrize("kw, same_as", [
    (dict(stride=(2,)), dict(stride=2)),
    (dict(stride=[2]), dict(stride=(2, 2))),
    (dict(stride=(np.int64(2),)), dict(stride=2)),
    (dict(dilation=(2,)), dict(dilation=2)),
    (dict(dilation=[np.int32(2)]), dict(dilation=(2, 2))),
    (dict(padding=(1,)), dict(padding=1)),
    (dict(padding=[2]), dict(padding=(2, 2, 2, 2))),
    (dict(stride=(2,), padding=(1,), dilation=(2,)), dict(stride=2, padding=1, dilation=2)),
    (dict(padding="same", dilation=(2,)), dict(padding="same", dilation=2)),
])
def test_one_element_sequences_as_pytorch(kw, same_as):
    """PyTorch takes a one-element list/tuple for stride, padding and dilation
    as the value for both axes: so does conv2d (and against the reference)."""
    x, w, b = case_arrays(23, N=2, C=3, K=4, H=11, W=9, R=3, S=2)
    got = check(x, w, b, **kw)
    assert_same(got, cyconv.conv2d(x, w, b, **same_as))


def test_pad_limits_boundary():
    """reflect: each pad < size; circular: each pad <= size; the others: no limit."""
    x, w, b = case_arrays(17, N=1, C=1, K=1, H=4, W=5, R=1, S=1)
    for mode, ok_h, ok_w in [("reflect", 3, 4), ("circular", 4, 5)]:
        check(x, w, b, 1, (ok_h, ok_w), 1, 1, mode)
        check(x, w, b, 1, (ok_w, 0, ok_h, 0), 1, 1, mode)
        check(x, w, b, 1, (0, ok_w, 0, ok_h), 1, 1, mode)
        for pad in [(ok_h + 1, 0), (0, ok_w + 1), (ok_w + 1, 0, 0, 0), (0, 0, 0, ok_h + 1)]:
            expect_error(ValueError, ("padding",),
                         lambda: cyconv.conv2d(x, w, b, 1, pad, padding_mode=mode))
    for mode in ("zeros", "replicate"):
        check(x, w, b, 1, (9, 10), 1, 1, mode)


# ------------------------------------------------------------------ sizes that overflow

OVERFLOW_CASES = {  # name: (setup, call)
    "broadcast_input_huge_N": (
        "x = np.broadcast_to(np.float32(1), (2**40, 3, 4, 4)); "
        "w = np.ones((2, 3, 3, 3), np.float32)",
        "cyconv.conv2d(x, w)"),
    "broadcast_weight_huge_K": (
        "x = np.ones((1, 1, 4, 4)); w = np.broadcast_to(np.float64(1), (2**40, 1, 1, 1))",
        "cyconv.conv2d(x, w)"),
    "strided_product_over_2_63": (
        "z = np.zeros(1, np.float32); "
        "x = np.lib.stride_tricks.as_strided(z, (2**30, 1, 2**15, 2**15), (0,) * 4); "
        "w = np.lib.stride_tricks.as_strided(z, (2**31, 1, 1, 1), (0,) * 4)",
        "cyconv.conv2d(x, w)"),
    "strided_huge_plane": (
        "x = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), (1, 1, 2**40, 2**20), "
        "(0,) * 4); w = np.ones((3, 1, 1, 1), np.float32)",
        "cyconv.conv2d(x, w)"),
    "broadcast_both_huge": (
        "x = np.broadcast_to(np.float32(1), (2**33, 2**20, 1, 1)); "
        "w = np.broadcast_to(np.float32(1), (2**33, 2**20, 1, 1))",
        "cyconv.conv2d(x, w)"),
    "huge_padding": (
        "x = np.ones((1, 1, 2, 2)); w = np.ones((1, 1, 1, 1))",
        "cyconv.conv2d(x, w, padding=2**40)"),
    "padding_over_int64": (
        "x = np.ones((1, 1, 2, 2)); w = np.ones((1, 1, 1, 1))",
        "cyconv.conv2d(x, w, padding=(2**62, 2**62, 0, 0))"),
    "padding_replicate_huge": (
        "x = np.ones((2, 3, 2, 2)); w = np.ones((4, 3, 1, 1))",
        "cyconv.conv2d(x, w, padding=2**31, padding_mode='replicate')"),
}


@pytest.mark.parametrize("name", list(OVERFLOW_CASES))
def test_sizes_that_overflow(name):
    """ValueError or MemoryError, never a crash (run in a child process)."""
    setup, call = OVERFLOW_CASES[name]
    code = "\n".join([
        "import numpy as np, cyconv",
        setup,
        "try:",
        f"    {call}",
        "except (ValueError, MemoryError) as exc:",
        "    print('RAISED', type(exc).__name__, exc)",
        "else:",
        "    print('NO ERROR')",
    ])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.dirname(cyconv.__path__[0]),
                                                    env.get("PYTHONPATH", "")] if p)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert proc.returncode == 0, f"child failed (rc={proc.returncode}): {proc.stderr[-2000:]}"
    assert proc.stdout.startswith("RAISED"), proc.stdout + proc.stderr[-2000:]


# =========================================================================== properties

EXAMPLES = int(os.environ.get("CYCONV_HYPOTHESIS_EXAMPLES", "150"))
PROP_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.data_too_large])

DTYPE_CHOICES = [F32, F64, F16, np.dtype(np.int16), np.dtype(bool), (F32, F64, F32),
                 (F16, F32, F32), (F64, F32, np.dtype(np.int8))]

_pos = st.integers(1, 3)
_pair = st.one_of(_pos, st.tuples(_pos, _pos))
_pad = st.integers(0, 3)
_padding = st.one_of(_pad, st.tuples(_pad, _pad), st.tuples(_pad, _pad, _pad, _pad),
                     st.sampled_from(["valid", "same"]))
_bad_scalar = st.sampled_from([0, -1, 1.5, "1", None, (1, 0), (1, 2, 3), (2,)])
_bad_padding = st.sampled_from([-1, (1, -1), (0, 0, -1, 0), (1, 1, 1), 2.5, "full", "bogus",
                                None])


@st.composite
def conv_cases(draw, allow_invalid=True):
    groups = draw(st.sampled_from([1, 1, 1, 2, 3]))
    Cg = draw(st.integers(1, 3))
    Kg = draw(st.sampled_from([1, 2, 3, 4, 5, 9, 17, 35]))
    C, K = Cg * groups, Kg * groups
    a = dict(
        batched=draw(st.booleans()),
        N=draw(st.integers(1, 3)),
        C=C, K=K, groups=groups, Cg=Cg,
        H=draw(st.integers(1, 12)), W=draw(st.integers(1, 24)),
        R=draw(st.integers(1, 5)), S=draw(st.integers(1, 5)),
        stride=draw(_pair), dilation=draw(_pair), padding=draw(_padding),
        padding_mode=draw(st.sampled_from(PADDING_MODES)),
        bias=draw(st.booleans()),
        dtype=draw(st.sampled_from(DTYPE_CHOICES)),
        layout=draw(st.sampled_from(["C", "channels_last", "negative", "sliced", "bigendian"])),
        seed=draw(st.integers(0, 2**32 - 1)),
        bad=None,
    )
    if allow_invalid and draw(st.integers(0, 4)) == 0:
        bad = draw(st.sampled_from(["stride", "dilation", "padding", "groups", "padding_mode",
                                    "channels", "bias", "ndim", "complex"]))
        a["bad"] = bad
        if bad in ("stride", "dilation"):
            a[bad] = draw(_bad_scalar)
        elif bad == "padding":
            a["padding"] = draw(_bad_padding)
        elif bad == "groups":
            a["groups_arg"] = draw(st.sampled_from([0, -1, 2.0, groups + 1, C + 1]))
        elif bad == "padding_mode":
            a["padding_mode"] = draw(st.sampled_from(["bogus", "constant", "", None]))
        elif bad == "channels":
            a["Cg"] = Cg + draw(st.sampled_from([-1, 1])) if Cg > 1 else Cg + 1
        elif bad == "bias":
            a["bias_shape"] = draw(st.sampled_from([(K + 1,), (K, 1), (), (max(K - 1, 0),)]))
    return a


def build(a):
    rng = np.random.default_rng(a["seed"])
    xd, wd, bd = a["dtype"] if isinstance(a["dtype"], tuple) else (a["dtype"],) * 3
    shape = (a["N"], a["C"], a["H"], a["W"]) if a["batched"] else (a["C"], a["H"], a["W"])
    if a["bad"] == "ndim":
        shape = shape[1:] if len(shape) == 3 else (1,) + shape
    x = make(rng, shape, xd)
    w = make(rng, (a["K"], a["Cg"], a["R"], a["S"]), wd)
    b = make(rng, a.get("bias_shape", (a["K"],)), bd) if a["bias"] or "bias_shape" in a \
        else None
    if a["bad"] == "complex":
        x = x.astype(np.complex128)
    lay = a["layout"]
    x, w, b = layout(x, lay), layout(w, lay), layout(b, lay)
    return dict(input=x, weight=w, bias=b, stride=a["stride"], padding=a["padding"],
                dilation=a["dilation"], groups=a.get("groups_arg", a["groups"]),
                padding_mode=a["padding_mode"])


@PROP_SETTINGS
@given(conv_cases())
def test_properties_against_reference(a):
    kw = build(a)
    try:
        violation = contract_violation(**kw)
    except (TypeError, ValueError):
        violation = "unclassifiable"
    if violation is not None:
        with pytest.raises((ValueError, TypeError)):
            cyconv.conv2d(**kw)
        return
    kw2 = dict(kw)
    got = check(kw2.pop("input"), kw2.pop("weight"), kw2.pop("bias"), **kw2)
    assert got.ndim == (4 if a["batched"] else 3)


@PROP_SETTINGS
@given(conv_cases(allow_invalid=False), st.booleans())
def test_properties_metamorphic(a, with_out):
    """Self-consistency without the reference: groups are independent convs,
    the batch is independent images, out= gives the same values, and "same"
    equals its resolved explicit padding."""
    kw = build(a)
    if contract_violation(**kw) is not None:
        return
    x, w, b = kw.pop("input"), kw.pop("weight"), kw.pop("bias")
    groups = kw.pop("groups")
    res = cyconv.conv2d(x, w, b, groups=groups, **kw)
    dtype = res.dtype
    if with_out:
        out = np.full(res.shape, np.nan, dtype)
        assert cyconv.conv2d(x, w, b, groups=groups, out=out, **kw) is out
        assert_same(out, res)
    tol = 2e-4 if dtype == F32 else 1e-11
    scale = conv2d_abs_bound(x, w, b, kw["stride"], kw["padding"], kw["dilation"], groups,
                             kw["padding_mode"]) + 1e-300
    C, K = np.shape(x)[-3], np.shape(w)[0]
    Cg, Kg = C // groups, K // groups
    parts = []
    for g in range(groups):
        xg = x[..., g * Cg:(g + 1) * Cg, :, :]
        bg = None if b is None else b[g * Kg:(g + 1) * Kg]
        parts.append(cyconv.conv2d(xg, w[g * Kg:(g + 1) * Kg], bg, **kw))
    joined = np.concatenate(parts, axis=-3)
    assert joined.dtype == dtype
    assert (np.abs(joined.astype(F64) - res) <= tol * scale).all()
    if res.ndim == 4:
        single = cyconv.conv2d(x[-1], w, b, groups=groups, **kw)
        assert (np.abs(single.astype(F64) - res[-1]) <= tol * scale[-1]).all()
    H, W = np.shape(x)[-2:]
    pads = resolve_padding(kw["padding"], (H, W), np.shape(w)[-2:], kw["stride"],
                           kw["dilation"])
    explicit = cyconv.conv2d(x, w, b, kw["stride"], pads, kw["dilation"], groups,
                             padding_mode=kw["padding_mode"])
    assert (np.abs(explicit.astype(F64) - res) <= tol * scale).all()


# =========================================================================== tile placement
# The blocked driver moves a row's partial last tile back to end at the row's
# end, moves a piece's last flat tile back over the rows before the piece,
# gathers the input of tiles wider than the whole image, reads an unpadded
# contiguous image in place and adds a spare row when the plane pitch is a
# multiple of 1 KB; small images run tiles of FK channels (a short last block
# repeats a channel). All of that must leave every output pixel's sum, in
# (c, r, s) order from zero, bitwise unchanged: a pixel's bits may not
# depend on where its tile starts, how the rows are split into pieces, or
# how wide the image is.

def _conv(x, w, b, **kw):
    return cyconv.conv2d(x, w, b, workers=1, **kw)


# (N, C, K, H, W, R, S, stride, padding, dilation, groups): flat and row
# tiles, partial last tiles, strides, dilation, 1x1 in place, small images,
# grouped, channel counts around a block (16 float32, 8 float64) and FK.
TILE_CASES = [
    (1, 24, 40, 9, 14, 3, 3, 1, 1, 1, 1),     # flat tiles, 14 + 2 columns
    (1, 20, 33, 7, 29, 3, 3, 1, 1, 1, 1),     # row tiles (29 = 4 * 6 + 5)
    (2, 9, 17, 11, 23, 3, 5, 2, 2, 1, 1),     # strided row tiles
    (1, 12, 24, 13, 19, 3, 3, 1, 2, 2, 1),    # dilated
    (1, 70, 20, 8, 11, 1, 1, 1, 0, 1, 1),     # 1x1, unpadded: input read in place
    (3, 16, 48, 5, 4, 3, 3, 1, 1, 1, 2),      # grouped, rows narrower than a tile
    (40, 5, 16, 1, 2, 1, 1, 1, 0, 1, 1),      # images of less than one tile
    (1, 40, 7, 5, 5, 3, 3, 1, 1, 1, 1),       # small image: K not a multiple of FK
    (2, 33, 5, 4, 6, 3, 3, 1, 1, 1, 1),       # small image, batch
    (1, 32, 32, 14, 14, 3, 3, 1, 1, 1, 1),    # plane pitch 16 * 16 floats = 1 KB
    # packed weights over TILES_OUTER_BYTES: blocks outer, pieces take ranges of them
    (1, 200, 48, 12, 14, 3, 3, 1, 1, 1, 1),   # flat tiles
    (2, 150, 64, 11, 13, 3, 3, 2, 1, 1, 1),   # strided row tiles, batch
    (1, 240, 64, 11, 13, 3, 3, 1, 1, 1, 2),   # grouped
]


@pytest.mark.parametrize("case", TILE_CASES, ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_tile_placement_against_reference(case, dtype):
    N, C, K, H, W, R, S, stride, padding, dilation, groups = case
    x, w, b = case_arrays(seed_of(case, dtype), N=N, C=C, K=K, groups=groups, H=H, W=W,
                          R=R, S=S, dtype=dtype)
    check(x, w, b, stride, padding, dilation, groups)


@pytest.mark.parametrize("case", TILE_CASES, ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_pieces_of_one_row_bitwise(case, dtype, monkeypatch):
    """Pieces of as few rows as the plan allows (each piece's last flat tile
    moves back into rows it prepared itself) give the one-piece result."""
    from cyconv import _parallel
    N, C, K, H, W, R, S, stride, padding, dilation, groups = case
    x, w, b = case_arrays(seed_of(case, dtype, "pieces"), N=N, C=C, K=K, groups=groups,
                          H=H, W=W, R=R, S=S, dtype=dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    whole = _conv(x, w, b, **kw)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    for workers in (1, 2):
        pieces = np.full_like(whole, np.nan)   # every piece's pixels must be written
        cyconv.conv2d(x, w, b, workers=workers, out=pieces, **kw)
        np.testing.assert_array_equal(pieces.view(np.uint8), whole.view(np.uint8))


@pytest.mark.parametrize("W", [7, 14, 29, 9])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_infinite_weights_at_the_padding_as_the_reference_for_any_pieces(W, dtype, monkeypatch):
    """Row tiles leave out a 3x3 layer's products with zero-padding rows and
    edge columns, but only for channel blocks whose weights are all finite:
    an infinite edge tap gives the reference's NaN (inf x 0) at the padding,
    whatever the pieces and threads, and the other blocks keep their bits."""
    from cyconv import _core, _parallel
    x, w, b = case_arrays(W, N=2, C=20, K=40, H=7, W=W, dtype=dtype)
    finite = cyconv.conv2d(x, w, b, padding=1)
    for k, (r, s) in enumerate([(0, 0), (1, 0), (1, 2), (2, 1), (2, 2)]):
        w[k, k, r, s] = np.inf
    with np.errstate(all="ignore"):
        whole = _conv(x, w, b, padding=1)
        expected = conv2d_direct(x, w, b, 1, 1)
        assert np.isnan(whole).any() and np.isinf(whole).any()
        monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
        for workers in (1, 2):
            pieces = cyconv.conv2d(x, w, b, padding=1, workers=workers)
            np.testing.assert_array_equal(pieces.view(np.uint8), whole.view(np.uint8))
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(whole), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(whole), np.isneginf(expected))
    # channels of blocks with finite weights: the same bits as before
    KB = _core.tile_sizes(40, dtype == F64)["block_f64" if dtype == F64 else "block_f32"]
    clean = slice(-(-5 // KB) * KB, None)
    np.testing.assert_array_equal(whole[:, clean].view(np.uint8),
                                  finite[:, clean].view(np.uint8))


def _weight_layout(w, layout):
    """An array equal to w in another memory layout (none C-contiguous)."""
    if layout == "transposed, taps flipped":   # as conv2d_backward passes a layer's weights
        base = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        view = base.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    elif layout == "transposed":
        view = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "fortran":
        view = np.asfortranarray(w)
    else:   # every other column of a wider array
        wide = np.zeros(w.shape[:3] + (2 * w.shape[3],), w.dtype)
        wide[..., ::2] = w
        view = wide[..., ::2]
    assert not view.flags.c_contiguous and np.array_equal(view, w)
    return view


@pytest.mark.parametrize("case", [(1, 40, 37, 5, 5, 1), (2, 24, 33, 4, 6, 1),
                                  (1, 48, 40, 6, 5, 2)], ids=str)
@pytest.mark.parametrize("layout", ["transposed, taps flipped", "transposed", "fortran",
                                    "strided"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_small_image_tiles_stage_weight_views_bitwise(case, layout, dtype):
    """Small-image tiles read C-contiguous weights in place and stage each
    block of any other layout: the same bits, any thread count, groups and
    a short last block included. (Reflected padding: with zero padding row
    tiles take such images where their rows fit the tiles.)"""
    from cyconv import _conv2d
    N, C, K, H, W, groups = case
    x, w, b = case_arrays(seed_of(case, layout, dtype), N=N, C=C, K=K, groups=groups, H=H,
                          W=W, R=3, S=3, dtype=dtype)
    view = _weight_layout(w, layout)
    plan = _conv2d._prepared_call(x, view, b, 1, 1, 1, groups, "reflect", None).plan
    assert plan.weight_stage > 0   # the case runs small-image tiles
    want = check(x, w, b, 1, 1, 1, groups, "reflect")
    for workers in (1, 3):
        got = cyconv.conv2d(x, view, b, padding=1, groups=groups, workers=workers,
                            padding_mode="reflect")
        np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))


@pytest.mark.parametrize("pad,dilation,stride", [   # pad: (top, bottom, left, right)
    ((1, 1, 1, 1), 1, 1),   # 3x3 "same": the top and bottom rows run 2 kernel rows of 3
    ((2, 0, 1, 1), 1, 1),   # padding above only, two rows of it
    ((0, 3, 1, 1), 1, 1),   # below only; the last output row lies wholly in it
    ((4, 4, 1, 1), 1, 1),   # rows wholly in padding above and below (no kernel row left)
    ((2, 2, 2, 2), 2, 1),   # dilated rows
    ((1, 1, 1, 1), 1, (2, 1)),   # strided rows
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_row_tiles_leave_out_padding_rows(pad, dilation, stride, dtype):
    """Row tiles leave out the kernel rows that fall on zero padding, and a
    row of one tile width runs as one tile: for each of the level's tile
    widths, the same values as the reference and bitwise the layer on the
    explicitly padded input (which computes every kernel row), at 1 and 3
    threads."""
    from cyconv import _core
    top, bottom, left, right = pad
    padding = (left, right, top, bottom)   # conv2d's 4-tuple order
    pair = (lambda v: v if isinstance(v, tuple) else (v, v))
    probe = _core.conv2d_plan((2, 20, 9, 9), 40, (3, 3), 1, pair(stride), pair(dilation), pad,
                              dtype == F64, zero_padding=True)
    for width in sorted(set(probe.tile_widths)):
        W = width - left - right + 2 * dilation
        x, w, b = case_arrays(seed_of(pad, dilation, stride, dtype, width), N=6, C=20, K=40,
                              H=16, W=W, dtype=dtype)
        plan = _core.conv2d_plan(x.shape, 40, (3, 3), 1, pair(stride), pair(dilation), pad,
                                 dtype == F64, zero_padding=True)
        assert plan.blocked and plan.Wo == width
        assert not plan.flat, "a row of one tile width, padding above or below: row tiles"
        got = check(x, w, b, stride, padding, dilation)
        explicit = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        for workers in (1, 3):
            np.testing.assert_array_equal(
                cyconv.conv2d(explicit, w, b, stride, 0, dilation, workers=workers)
                .view(np.uint8), got.view(np.uint8))
            np.testing.assert_array_equal(
                cyconv.conv2d(x, w, b, stride, padding, dilation, workers=workers)
                .view(np.uint8), got.view(np.uint8))


def _row_pixels(widths, Wo, step):
    """Pixels a row of Wo computes in tiles `step` apart, the last one the
    narrowest of `widths` that holds what is left."""
    return sum(step if Wo - x >= step else min(w for w in widths if w >= Wo - x)
               for x in range(0, Wo, step))


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_small_images_of_3x3_layers_run_row_tiles_where_rows_fit(dtype):
    """Images of fewer than SMALL_PIXELS output pixels run small-image tiles
    on the weights in place, except 3x3 layers with zero padding whose rows
    are at least a tile wide or one of the tile widths, and whose packed
    weights take at most 16 MB: those run row tiles, which leave out the
    padding's products. Either way the reference's values, and the bits of
    the explicitly padded input (row tiles) at 1 and 3 threads."""
    from cyconv import _core
    item = np.dtype(dtype).itemsize
    small = _core.tile_sizes()["small_pixels"]
    for C, K in ((24, 40), (512, 512)):
        PT = _core.tile_sizes(K, dtype == F64)["tile_pixels"]
        KB = _core.tile_sizes(K, dtype == F64)["block_f64" if dtype == F64 else "block_f32"]
        fits = -(-K // KB) * C * 9 * KB * item <= 16 << 20
        for Wo in range(1, 2 * PT + 1):
            for pad, mode in (((1, 1, 1, 1), True), ((1, 1, 1, 1), False), ((0, 0, 0, 0), True)):
                H = max(1, min(5, (small - 1) // Wo)) + 2 - pad[0] - pad[1]
                W = Wo + 2 - pad[2] - pad[3]
                if H < 1 or W < 1:
                    continue
                plan = _core.conv2d_plan((1, C, H, W), K, (3, 3), 1, (1, 1), (1, 1), pad,
                                         dtype == F64, zero_padding=mode)
                assert plan.Ho * plan.Wo < small
                rows = mode and pad[0] > 0 and fits \
                    and (Wo >= PT or Wo in plan.tile_widths)
                assert plan.blocked == rows, (C, K, Wo, pad, mode)
                assert (plan.weight_stage > 0) == (not rows)
    ran_rows = []
    for W in (5, 7, 9, 10, 13, 14):
        x, w, b = case_arrays(seed_of(dtype, W, "small rows"), N=2, C=24, K=40, H=4, W=W,
                              dtype=dtype)
        got = check(x, w, b, 1, 1)
        if not _plan_of(x, w).blocked:
            continue
        ran_rows.append(W)
        explicit = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        for workers in (1, 3):
            for inp, pad in ((x, 1), (explicit, 0)):
                np.testing.assert_array_equal(
                    cyconv.conv2d(inp, w, b, padding=pad, workers=workers).view(np.uint8),
                    got.view(np.uint8))
    assert ran_rows


def _plan_of(x, w):
    from cyconv import _conv2d
    return _conv2d._prepared_call(x, w, None, 1, 1, 1, 1, "zeros", None).plan


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_row_step_cuts_rows_into_fewer_pixels(dtype):
    """A row's tiles step by a narrower tile width only when that computes
    fewer pixels (rows of 7 at 6 pixels a tile: 4 + 3, not 6 + 2), or when
    the row is narrower than the tile that would hold it (rows of 5 at 6
    pixels a tile: 3 + 2), and then run instead of flat tiles whose pitch
    computes more. The layers cut that way give
    the reference's values, and the bits of the explicitly padded input at 1
    and 3 threads."""
    from cyconv import _core
    narrower = []
    for Wo in range(1, 64):
        plan = _core.conv2d_plan((8, 64, 5, Wo), 64, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1),
                                 dtype == F64, zero_padding=True)
        if not plan.blocked:
            continue
        widths, PT = plan.tile_widths, plan.tile_pixels
        assert plan.row_step in widths
        fit = [w for w in widths[1:] if w < Wo]
        if Wo < PT and Wo not in widths and fit:
            # a row narrower than the tile that holds it, which would gather
            # its input: the narrower tiles that compute the fewest pixels
            assert plan.row_step == min(fit, key=lambda s: _row_pixels(widths, Wo, s))
        else:
            assert _row_pixels(widths, Wo, plan.row_step) <= _row_pixels(widths, Wo, PT)
        if plan.row_step < PT and not (Wo < PT and Wo not in widths):
            assert _row_pixels(widths, Wo, plan.row_step) < _row_pixels(widths, Wo, PT)
        if plan.row_step < PT:
            # flat tiles' pitch: Wo + 1, rows sharing a padding column
            assert plan.flat == (Wo + 1 <= _row_pixels(widths, Wo, plan.row_step))
            if not plan.flat:
                narrower.append(Wo)
    assert narrower, "every level has rows it cuts narrower (AVX2: 7; AVX-512: 15)"
    for Wo in narrower[:3]:
        x, w, b = case_arrays(seed_of(dtype, Wo, "row step"), N=4, C=24, K=40, H=7, W=Wo,
                              dtype=dtype)
        got = check(x, w, b, 1, 1)
        explicit = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        for workers in (1, 3):
            for inp, pad in ((x, 1), (explicit, 0)):
                np.testing.assert_array_equal(
                    cyconv.conv2d(inp, w, b, 1, pad, workers=workers).view(np.uint8),
                    got.view(np.uint8))
    # Strided rows (never flat) narrower than a tile, of every width up to
    # the widest tile: narrower tiles, or the tile that holds the row.
    for Wo in range(1, _core.tile_sizes(64, dtype == F64)["tile_pixels"] + 1):
        x, w, b = case_arrays(seed_of(dtype, Wo, "strided row"), N=2, C=24, K=40, H=6,
                              W=2 * Wo, dtype=dtype)
        got = check(x, w, b, 2, 1)
        for workers in (1, 3):
            np.testing.assert_array_equal(
                cyconv.conv2d(x, w, b, 2, 1, workers=workers).view(np.uint8), got.view(np.uint8))


TINY_IMAGES = [(1, 1), (2, 2), (3, 3), (2, 5), (3, 4), (4, 4), (1, 9), (1, 3), (1, 11), (1, 13)]


def _tiny_plan(H, W, dtype):
    # 24 -> 40 channels 3x3, padding 1, on enough images for blocked tiles
    # (fewer output pixels than SMALL_PIXELS run small-image tiles)
    from cyconv import _core
    N = 128 // (H * W) + 1
    return N, _core.conv2d_plan((N, 24, H, W), 40, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1),
                                dtype == F64, zero_padding=True)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("H, W", TINY_IMAGES, ids=str)
def test_images_of_less_than_a_flat_tile(dtype, H, W):
    """Flat tiles on images of fewer flat pixels than a tile run tiles of a
    narrower width, the last moved back, or gather the input under the
    narrowest width: the reference's values, the bits of any thread count."""
    N, _ = _tiny_plan(H, W, dtype)
    x, w, b = case_arrays(seed_of(dtype, H, W, "tiny"), N=N, C=24, K=40, H=H, W=W, dtype=dtype)
    got = check(x, w, b, 1, 1)
    for workers in (1, 3):
        np.testing.assert_array_equal(cyconv.conv2d(x, w, b, 1, 1, workers=workers).view(np.uint8),
                                      got.view(np.uint8))


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_tiny_images_plan_flat_tiles_of_less_than_a_tile(dtype):
    """TINY_IMAGES holds, on every level, flat plans whose images have fewer
    flat pixels than a tile and no tile width of them."""
    found = []
    for H, W in TINY_IMAGES:
        _, plan = _tiny_plan(H, W, dtype)
        pixels = (H - 1) * plan.Wb + W
        if plan.flat and pixels < plan.tile_pixels and pixels not in plan.tile_widths:
            found.append((H, W))
    assert found


@pytest.mark.parametrize("C,K,H,W,R,padding", [
    (160, 96, 7, 7, 3, 1),     # rows of one tile width (AVX-512), blocks outer
    (160, 96, 12, 11, 3, 1),   # flat tiles
    (96, 128, 14, 14, 3, 0),   # unpadded: read in place
    (1100, 80, 6, 9, 1, 0),    # a 1x1 layer in channel chunks
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_batch_pieces_run_blocks_over_their_images(C, K, H, W, R, padding, dtype, monkeypatch):
    """Layers whose channel blocks run outer take pieces of several images
    (one thread: the 5 images in one piece), each block over all of them:
    the reference's values, and bitwise the same as pieces of one image
    (3 threads; CHUNK_WORK of 1)."""
    from cyconv import _core, _parallel
    x, w, b = case_arrays(seed_of(C, K, H, W, R, dtype), N=5, C=C, K=K, H=H, W=W, R=R, S=R,
                          dtype=dtype)
    plan = _core.conv2d_plan(x.shape, K, (R, R), 1, (1, 1), (1, 1), (padding,) * 4,
                             dtype == F64, zero_padding=True)
    assert plan.splits_blocks, "the case's blocks run outer"
    with cyconv.num_threads(1):
        got = check(x, w, b, 1, padding)
    bits = got.view(np.uint8)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=padding, workers=3)
                                  .view(np.uint8), bits)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=padding, workers=1)
                                  .view(np.uint8), bits)


def _blocks_outer_layer(seed, N, dtype):
    """A 160 -> 160 3x3 layer at 7x7 whose blocks run outer (at least 4 of
    them), prepared for one thread: (x, w, prep, its weights packed whole)."""
    from cyconv import _conv2d, _core
    x, w, _ = case_arrays(seed, N=N, C=160, K=160, H=7, W=7, R=3, S=3, dtype=dtype)
    prep = _conv2d._prepared_call(x, w, None, 1, 1, 1, 1, "zeros", 1)
    plan = prep.plan
    assert plan.blocked and plan.splits_blocks and not plan.pack_inline
    assert plan.packed_shape[0] >= 4
    whole = np.empty(plan.packed_shape, dtype)
    _core.pack_weights(plan, w, whole)
    return x, w, prep, whole


@pytest.mark.parametrize("images", [1, 3], ids=["one image", "blocks over 3 images"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_core_packs_the_blocks_it_runs(images, dtype):
    """Given the layer's weights and a mark per packed block (one thread),
    the core packs each block of its piece that is not marked, as the whole
    packing would, marks it, and leaves the other blocks alone; the piece's
    output channels are those of the weights packed first."""
    from cyconv import _core
    x, w, prep, whole = _blocks_outer_layer(seed_of(images, dtype, "core packs"), 3, dtype)
    plan, K = prep.plan, w.shape[0]
    nb, KB = plan.packed_shape[0], plan.packed_shape[3]
    b0, b1 = 1, 3
    args = (prep.row_map, prep.col_map)

    def run(weights, **packing):
        out = np.zeros((3, K, 7, 7), dtype)
        padded = np.empty((plan.padded_shape[0] * images,) + plan.padded_shape[1:], dtype)
        _core.conv2d(plan, x, *args, weights, np.empty(0, dtype), out, padded,
                     np.empty(plan.scratch, dtype), np.empty(plan.edge, dtype),
                     0, images, 0, 7, b0, b1, **packing)
        return out

    packed = np.full(plan.packed_shape, np.nan, dtype)
    marks = np.zeros(nb, np.uint8)
    got = run(packed, source=w, packed_blocks=marks)
    assert marks.tolist() == [int(b0 <= b < b1) for b in range(nb)]
    np.testing.assert_array_equal(packed[b0:b1], whole[b0:b1])
    assert np.isnan(packed[:b0]).all() and np.isnan(packed[b1:]).all()
    np.testing.assert_array_equal(got.view(np.uint8), run(whole).view(np.uint8))
    assert np.any(got[:images, b0 * KB:b1 * KB])


@pytest.mark.parametrize("images,slots", [(1, 1), (3, 3), (5, 2)],
                         ids=["one image", "3 images", "5 images, 2 padded slots"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_core_packs_each_block_into_one_slot(images, slots, dtype):
    """Given weights of one block (one thread, a piece that runs each block
    once), the core packs every block of its range into that slot as the
    block starts, even one already marked, and marks it; images beyond
    the padded buffer's slots go in groups that pack again. Bitwise the
    output channels of the weights packed first, the others untouched."""
    from cyconv import _core
    x, w, prep, whole = _blocks_outer_layer(seed_of(images, slots, dtype, "one slot"), 5, dtype)
    plan, K = prep.plan, w.shape[0]
    nb, KB = plan.packed_shape[0], plan.packed_shape[3]
    b0, b1 = 1, 3

    def run(weights, **packing):
        out = np.full((5, K, 7, 7), np.nan, dtype)
        padded = np.empty((plan.padded_shape[0] * slots,) + plan.padded_shape[1:], dtype)
        _core.conv2d(plan, x, prep.row_map, prep.col_map, weights, np.empty(0, dtype), out,
                     padded, np.empty(plan.scratch, dtype), np.empty(plan.edge, dtype),
                     0, images, 0, 7, b0, b1, **packing)
        return out

    slot = np.full((1,) + plan.packed_shape[1:], np.nan, dtype)
    marks = np.zeros(nb, np.uint8)
    marks[b0] = 1   # marked, yet the slot holds another block: packed again
    got = run(slot, source=w, packed_blocks=marks)
    assert marks.tolist() == [int(b0 <= b < b1) for b in range(nb)]
    np.testing.assert_array_equal(slot[0], whole[b1 - 1])   # the last block packed
    want = run(whole, packed_blocks=np.array([1] * nb, np.uint8))
    np.testing.assert_array_equal(got.view(np.uint8), want.view(np.uint8))
    assert np.isfinite(got[:images, b0 * KB:b1 * KB]).all()
    assert np.isnan(got[images:]).all() and np.isnan(got[:, :b0 * KB]).all()
    assert np.isnan(got[:, b1 * KB:]).all()


@pytest.mark.parametrize("C,K,H,W,R,padding", [
    (160, 96, 7, 7, 3, 1),     # rows of one tile width (AVX-512), blocks outer
    (200, 70, 16, 17, 3, 1),   # row tiles, the last block part zeros
    (160, 96, 12, 11, 3, 1),   # flat tiles (gathered across the images on AVX-512)
    (64, 100, 20, 20, 5, 2),   # 5x5
    (96, 128, 14, 14, 3, 0),   # unpadded: read in place
    (1100, 80, 6, 9, 1, 0),    # a 1x1 layer in channel chunks
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_batch_in_one_piece_packs_into_one_slot(C, K, H, W, R, padding, dtype, monkeypatch):
    """One thread runs a batch whose weights are past ONE_SLOT_MIN_WEIGHT_BYTES
    as one piece, packing each block into one slot: the reference's values,
    and bitwise the pieces' result that packed every block (the bound out
    of reach), and that of 3 threads."""
    from cyconv import _conv2d, _parallel, _scratch
    x, w, b = case_arrays(seed_of(C, K, H, W, R, dtype, "slot"), N=5, C=C, K=K, H=H, W=W, R=R,
                          S=R, dtype=dtype)
    pieces, slots = [], []
    run, empty = _parallel.run, _scratch.empty
    monkeypatch.setattr(_parallel, "run", lambda job, chunks, *a: (pieces.append(chunks),
                                                                    run(job, chunks, *a)))
    monkeypatch.setattr(_scratch, "empty", lambda purpose, shape, dtype: (
        slots.append(shape) if purpose == "conv2d.slot" else None, empty(purpose, shape, dtype))[1])
    monkeypatch.setattr(_conv2d, "ONE_SLOT_MIN_WEIGHT_BYTES", 0)
    with cyconv.num_threads(1):
        got = check(x, w, b, 1, padding)
    assert pieces[-1][0][:2] == (0, 5), "the batch is one piece"
    assert slots and slots[-1][0] == 1, "its weights packed into one slot"
    bits = got.view(np.uint8)
    monkeypatch.setattr(_conv2d, "ONE_SLOT_MIN_WEIGHT_BYTES", 1 << 60)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=padding, workers=1)
                                  .view(np.uint8), bits)
    assert len(pieces[-1]) > 1
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, padding=padding, workers=3)
                                  .view(np.uint8), bits)


@pytest.mark.parametrize("H,stride", [(7, 1), (14, 2)],
                         ids=["row tiles @7x7", "3x3/2 @14x14"])
def test_batch_of_large_weights_runs_in_one_slot(H, stride):
    """At the real bound: 8 images of 512 -> 512 3x3 (9.4 MB of weights,
    1.3-4.2 MB of padded images) on one thread, with a weight that is not
    finite (its block keeps the padding's products), against the reference
    and bitwise against two threads (which pack them all). The strided
    layer runs tiles gathered across the images where the plan picks them
    (AVX-512 on Zen 4), row tiles elsewhere."""
    x, w, b = case_arrays(seed_of("slot 512", H), N=8, C=512, K=512, H=H, W=H, R=3, S=3,
                          dtype=F32)
    w[70, 3, 0, 2] = np.inf   # block 2 of 16: its padding products make NaN, as the reference
    got = cyconv.conv2d(x, w, b, stride, padding=1, workers=1)
    # (SciPy's correlate2d over 8 x 512 x 512 channel pairs takes minutes:
    # the same sums in float64 as one tensor contraction of the windows)
    windows = np.lib.stride_tricks.sliding_window_view(
        np.pad(x.astype(F64), ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3),
        axis=(2, 3))[:, :, ::stride, ::stride]
    with np.errstate(invalid="ignore"):
        want = np.einsum("ncyxrs,kcrs->nkyx", windows, w.astype(F64), optimize=True)
    want += b.astype(F64)[:, None, None]
    assert np.array_equal(np.isnan(got), np.isnan(want)) and np.isnan(got[:, 70]).any()
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-4,
                               atol=1e-4 * np.abs(want[finite]).max())
    np.testing.assert_array_equal(cyconv.conv2d(x, w, b, stride, padding=1, workers=2)
                                  .view(np.uint8), got.view(np.uint8))


@pytest.mark.parametrize("H,W,y0", [(1, 1, 0), (1, 3, 0), (2, 1, 0), (9, 3, 8), (9, 1, 7)],
                         ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_pieces_of_less_than_a_tile_stay_in_their_scratch(H, W, y0, dtype):
    """A 1x1 layer whose blocks run outer over one strip packs each block's
    channel chunk as the strip starts. A piece of fewer pixels than a tile
    (an image of a few pixels, or the last rows of one) runs unchunked and
    packs its whole block: it fits in plan.scratch, nothing is written past
    any scratch buffer, and the rows are the reference's. (Strided 3x3
    layers on small images lower to such layers: 64 -> 128 3x3/2 @4x4
    wrote 57 KB past the tiles' scratch.)"""
    from cyconv import _conv2d, _core
    C, K = 512, 160
    x, w, _ = case_arrays(seed_of(H, W, y0, dtype, "tiny pieces"), N=1, C=C, K=K, H=H, W=W,
                          R=1, S=1, dtype=dtype)
    prep = _conv2d._prepared_call(x, w, None, 1, 0, 1, 1, "zeros", 1)
    plan = prep.plan
    assert plan.pack_inline and plan.chunk < C, "blocks outer, each block's chunks packed inline"
    assert (H - y0 - 1) * plan.Wb + W < plan.tile_pixels, "the piece is less than a tile"
    spare = 8192
    buffers = [np.full(size + spare, 7.0, dtype)
               for size in (np.prod(plan.padded_shape), plan.scratch, plan.edge)]
    padded, tiles, edge = (b[:b.size - spare] for b in buffers)
    out = np.full((1, K, H, W), np.nan, dtype)
    _core.conv2d(plan, x, prep.row_map, prep.col_map, w, np.empty(0, dtype), out,
                 padded.reshape(plan.padded_shape), tiles, edge, 0, 1, y0, H)
    for b in buffers:
        assert (b[b.size - spare:] == 7.0).all(), "written past the scratch"
    assert np.isnan(out[:, :, :y0]).all()
    assert_same(out[:, :, y0:], conv2d_reference(x, w)[:, :, y0:].astype(dtype))
    # The strided 3x3 layers that lower to it, through conv2d.
    for xs in ((1, 64, 4, 4), (1, 64, 2, 2), (2, 128, 3, 3)):
        xx, ww, bb = case_arrays(seed_of(xs, dtype), N=xs[0], C=xs[1], K=128, H=xs[2],
                                 W=xs[3], dtype=dtype)
        check(xx, ww, bb, 2, 1)


@pytest.mark.parametrize("H,W", [(1, 1), (2, 5), (7, 7), (9, 14), (13, 28)], ids=str)
@pytest.mark.parametrize("stride", [2, 3, (2, 1), (1, 3)], ids=str)
@pytest.mark.parametrize("padding", [0, 1, 2, 3, (0, 1, 3, 0), (5, 0, 0, 4)], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_strided_1x1_layers(H, W, stride, padding, dtype):
    """A zero-padded strided 1x1 layer runs as the unit-stride layer of the
    pixels it reads: the same values as the reference, and bitwise those of
    the unit-stride layer of the explicitly padded and subsampled input."""
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    for K, groups in ((20, 1), (40, 2), (6, 3)):
        x, w, b = case_arrays(seed_of(H, W, stride, padding, dtype, K), N=2, C=6, K=K,
                              groups=groups, H=H, W=W, R=1, S=1, dtype=dtype)
        got = check(x, w, b, stride, padding, 1, groups)
        top, bottom, left, right = ((padding,) * 4 if isinstance(padding, int)
                                    else (padding[2], padding[3], padding[0], padding[1]))
        padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        sampled = padded[:, :, ::sh, ::sw][:, :, :got.shape[2], :got.shape[3]]
        unit = cyconv.conv2d(np.ascontiguousarray(sampled), w, b, groups=groups)
        np.testing.assert_array_equal(got.view(np.uint8), unit.view(np.uint8))


# (N, C, K, H, W, R, S, stride, padding, dilation, groups, padding_mode):
# strided layers that conv2d runs as 1x1 layers on their pixels' patches
# when the thresholds allow (every padding mode, dilation, groups, images
# smaller than the kernel's reach, output rows of 1 to 14 pixels).
LOWERED_CASES = [
    (2, 6, 20, 9, 14, 3, 3, 2, 1, 1, 1, "zeros"),
    (3, 8, 40, 13, 7, 3, 3, (2, 1), (0, 1, 3, 0), 1, 2, "zeros"),
    (1, 5, 17, 15, 15, 5, 5, 3, 2, 1, 1, "reflect"),
    (2, 4, 33, 11, 12, 2, 3, (1, 2), 1, (2, 1), 1, "circular"),
    (2, 6, 48, 10, 10, 3, 3, 2, 1, 1, 3, "replicate"),   # 16 channels a group: blocked at any level
    (1, 3, 16, 8, 9, 3, 1, 2, 0, 1, 1, "symmetric"),
    (3, 2, 20, 1, 2, 3, 3, 2, 1, 1, 1, "zeros"),
    (2, 7, 20, 20, 21, 4, 4, 2, "same", 1, 1, "zeros"),
    (1, 16, 48, 28, 28, 3, 3, 2, 1, 1, 1, "zeros"),
    # one image, many patch channels: the 1x1 layer packs its weights inline
    (1, 128, 64, 14, 14, 3, 3, 2, 1, 1, 1, "zeros"),
    (1, 128, 40, 13, 12, 3, 3, 2, 1, 1, 1, "reflect"),
    # images of fewer pixels than K channels: stacked as one image's rows
    (3, 16, 64, 6, 7, 3, 3, 2, 1, 1, 1, "zeros"),
    (4, 12, 48, 7, 6, 3, 3, 2, 1, 1, 2, "reflect"),
]


def force_lowering(monkeypatch, lower=True):
    """Make conv2d lower every strided layer it can (lower) or none, at
    any kernel level: the thresholds of _conv2d._lowering_pays set to
    their extremes, and the cached plans cleared."""
    from cyconv import _conv2d
    monkeypatch.setattr(_conv2d, "_prepared", {})
    monkeypatch.setattr(_conv2d, "LOWER_MIN_BLOCK_BYTES", -1 if lower else 1 << 62)
    monkeypatch.setattr(_conv2d, "LOWER_BLOCK_BYTES_PER_PIXEL", -1 if lower else 1 << 62)
    monkeypatch.setattr(_conv2d, "LOWER_LONG_ROWS", 0 if lower else 1 << 62)


@pytest.mark.parametrize("case", LOWERED_CASES, ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_lowered_strided_layers(case, dtype, monkeypatch):
    """A strided layer run as a 1x1 layer on its pixels' patches: the
    reference's values, and bitwise the direct plan's result, whole or in
    pieces, with the patches of the batch at once or two images at a time
    (stacked as one image's rows), per image, or per band of 1 or 3 rows."""
    from cyconv import _conv2d, _parallel
    N, C, K, H, W, R, S, stride, padding, dilation, groups, mode = case
    x, w, b = case_arrays(seed_of(case, dtype, "lowered"), N=N, C=C, K=K, groups=groups,
                          H=H, W=W, R=R, S=S, dtype=dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=mode)

    def run(lower: bool, max_bytes: int, **extra):
        force_lowering(monkeypatch, lower)
        monkeypatch.setattr(_conv2d, "LOWER_MAX_BYTES", max_bytes)
        got = cyconv.conv2d(x, w, b, **kw, **extra)
        (prep,) = _conv2d._prepared.values()
        assert (prep.lowered is not None) == lower
        return got, prep

    direct, _ = run(False, 1 << 62, workers=1)
    Ho, Wo = direct.shape[-2:]
    _, prep = run(True, 1 << 62)
    one_row = prep.lowered.patches * Wo * np.dtype(direct.dtype).itemsize
    # bands of 1 and 3 rows; one image, two images, the batch at a time
    for max_bytes in (one_row, 3 * one_row + 1, Ho * one_row, 2 * Ho * one_row + 1, 1 << 62):
        rows = min(Ho, max_bytes // one_row)
        images = max_bytes // (Ho * one_row) if rows == Ho else 1
        for workers, chunk_work in ((1, _parallel.CHUNK_WORK), (2, 1)):
            monkeypatch.setattr(_parallel, "CHUNK_WORK", chunk_work)
            out = np.full_like(direct, np.nan)   # every pixel must be written
            got, prep = run(True, max_bytes, workers=workers, out=out)
            low = prep.lowered
            group = min(max(1, images), N)
            # images of fewer pixels than K channels: stacked as one image's rows
            stack = min(group, K // (Ho * Wo))
            if stack > 1:
                heights = (stack * Ho, (N % stack or stack) * Ho)
            else:
                heights = (rows, (Ho - 1) % rows + 1)
            assert (low.images, low.stacked, low.band.Ho, low.last.Ho) == (
                stack if stack > 1 else group, stack > 1, *heights)
            np.testing.assert_array_equal(got.view(np.uint8), direct.view(np.uint8))
    force_lowering(monkeypatch)
    check(x, w, b, stride, padding, dilation, groups, mode)


@pytest.mark.parametrize("case", [
    (5, 128, 400, 28, 7, (2, 1), 2),
    (8, 320, 400, 14, 7, (2, 1), 2),
    (5, 256, 400, 28, 14, 2, 2),
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_lowered_groups_take_the_weights_one_way(case, dtype, monkeypatch):
    """Images stacked in groups, the last group smaller: alone, its 1x1
    layer would pack the weights as it runs while the others' is packed
    first. Every group's plan takes the weights the one way conv2d
    prepares them (the last group read the packed weights as the given
    ones, out of bounds, and could crash), and the values are the
    reference's. Lowered at every kernel level (the thresholds differ)."""
    from cyconv import _conv2d
    N, C, K, H, W, stride, groups = case
    x, w, b = case_arrays(seed_of(case, dtype, "lowered groups"), N=N, C=C, K=K, groups=groups,
                          H=H, W=W, R=3, S=3, dtype=dtype)
    force_lowering(monkeypatch)
    low = _conv2d._prepared_call(x, w, b, stride, 1, 1, groups, "zeros", 1).lowered
    assert low is not None and low.stacked
    assert low.band.plan.pack_inline == low.last.plan.pack_inline
    check(x, w, b, stride, 1, 1, groups, reference=conv2d_direct)


@pytest.mark.parametrize("rows_512", [False, True], ids=["mixed", "rows_512"])
def test_lowering_thresholds(rows_512, rows_512_restored):
    """Which strided layers conv2d lowers: a channel block's packed weights
    (KB output channels of the kernel level in use) past
    LOWER_MIN_BLOCK_BYTES, and then on tiles of LOWER_WIDE_TILE_PIXELS with
    512-bit FMAs double-pumped (the AVX-512 level, rows_512 off): rows of
    LOWER_LONG_ROWS pixels or more past LOWER_BLOCK_BYTES_PER_PIXEL per tile
    pixel; elsewhere output rows of fewer than LOWER_SHORT_ROWS pixels that
    end in a narrow tile (Wo not a multiple of the tile's pixels), or past
    LOWER_BLOCK_BYTES_PER_PIXEL per tile pixel on any rows. Patches of one
    output row within LOWER_MAX_BYTES; never unit-stride or 1x1 layers."""
    from cyconv import _conv2d, _core

    _core.set_rows_512(rows_512)
    _conv2d._prepared.clear()

    def lowered(C, H, R=3, stride=2, K=64, dtype=F32):
        prep = _conv2d._prepare(np.empty((1, C, H, H), dtype), np.empty((K, C, R, R), dtype),
                                None, stride, R // 2, 1, 1, "zeros", None)
        return prep.lowered is not None

    def rule(C, H, dtype=F32):   # 3x3/2, padding 1: Wo = ceil(H / 2)
        sizes = _core.tile_sizes(64, dtype == F64)   # (K = 64)
        KB = sizes["block_f64" if dtype == F64 else "block_f32"]
        block = C * 9 * KB * np.dtype(dtype).itemsize
        Wo, PT = -(-H // 2), sizes["tile_pixels"]
        heavy = block > _conv2d.LOWER_BLOCK_BYTES_PER_PIXEL * PT
        if PT >= _conv2d.LOWER_WIDE_TILE_PIXELS and not _core.rows_512():
            pays = Wo >= _conv2d.LOWER_LONG_ROWS and heavy
        else:
            pays = (Wo < _conv2d.LOWER_SHORT_ROWS and Wo % PT != 0) or heavy
        return block > _conv2d.LOWER_MIN_BLOCK_BYTES and pays

    for C, H, dtype in [(256, 14, F32), (128, 28, F32), (128, 14, F64), (256, 112, F32),
                        (128, 112, F32), (32, 14, F32), (64, 14, F64), (512, 56, F64),
                        (128, 56, F32), (128, 48, F32), (128, 62, F64), (128, 64, F32),
                        (128, 60, F64), (256, 96, F32), (512, 112, F64)]:
        assert lowered(C, H, dtype=dtype) == rule(C, H, dtype), (C, H, dtype)
    sizes = _core.tile_sizes(64)
    if sizes["block_f32"] == 16:   # AVX2 (16 float32 channels a block)
        assert lowered(128, 28) and lowered(256, 112) and not lowered(128, 112)
        assert not lowered(128, 64)   # rows of 32 pixels
    if sizes["block_f32"] == 16 and sizes["tile_pixels"] == 6:   # AVX2
        assert lowered(128, 56) and not lowered(128, 48)   # rows of 28 (6 + 6 + 6 + 6 + 4), 24
        assert not lowered(128, 24)   # rows of 12: whole tiles
    if sizes["block_f32"] == 32 and sizes["tile_pixels"] == 14:   # AVX-512
        # ResNet-50: 128 channels @56 and @28 run direct (rows of 28 and 14:
        # whole tiles, 147 KB of weights a block)
        assert not lowered(128, 56) and not lowered(128, 28)
        if rows_512:   # full-width FMAs (Zen 5): 256 @28 and 512 @14 lowered
            assert lowered(256, 28) and lowered(512, 14) and lowered(128, 40)   # rows of 20
        else:          # double-pumped (Zen 4): those direct; long rows of 256 lowered
            assert not lowered(256, 28) and not lowered(512, 14) and not lowered(128, 40)
            assert lowered(256, 112) and not lowered(256, 96)   # rows of 56, 48
    assert not lowered(256, 14, stride=1)       # unit stride: no row-end tiles to save
    assert not lowered(1024, 14, R=1)           # 1x1: already a 1x1 layer
    assert lowered(1024, 224) == rule(1024, 224)   # 115 MB of patches: in bands of rows
    assert not lowered(4096, 512)               # one row's patches are over 8 MB
    narrow = _core.tile_sizes(1)["block_f32"]   # the blocks of the narrowest layers' kernels
    if narrow >= 4:                             # a row-vectorized (unblocked) plan
        assert not lowered(256, 14, K=narrow // 2 - 1)


@pytest.mark.parametrize("R,S,stride,dilation,K", [
    (3, 3, 1, 1, 40), (3, 3, 2, 1, 24), (1, 1, 1, 1, 20), (3, 2, 1, 2, 17), (5, 5, 2, 1, 33)])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_crop_invariance_bitwise(R, S, stride, dilation, K, dtype):
    """Without padding, the output of the first columns (rows) of an image is
    the first columns (rows) of the whole output, to the bit, for every width
    (height) around multiples of a tile: tiles moved back, gathered or run
    flat compute each pixel exactly as a tile starting at that pixel."""
    x, w, b = case_arrays(seed_of(R, S, stride, dilation, K, dtype), N=1, C=11, K=K,
                          H=9, W=40, R=R, S=S, dtype=dtype)
    kw = dict(stride=stride, dilation=dilation)
    full = _conv(x, w, b, **kw)
    ew, eh = effective_kernel(S, dilation), effective_kernel(R, dilation)
    for width in range(ew, 41):
        part = _conv(x[..., :width], w, b, **kw)
        np.testing.assert_array_equal(part.view(np.uint8),
                                      full[..., :part.shape[-1]].view(np.uint8),
                                      err_msg=f"width {width}")
    for height in range(eh, 10):
        part = _conv(x[..., :height, :], w, b, **kw)
        np.testing.assert_array_equal(part.view(np.uint8),
                                      full[..., :part.shape[-2], :].view(np.uint8),
                                      err_msg=f"height {height}")


@pytest.mark.parametrize("dtype,H,W", [(F32, 14, 14), (F64, 14, 14), (F64, 6, 30), (F32, 30, 30)],
                         ids=str)
def test_spare_row_against_set_aliasing(dtype, H, W):
    """A blocked plan whose padded plane pitch is a multiple of 1 KB gets one
    spare row (never read); other pitches none. Results are unchanged."""
    from cyconv import _core
    plan = _core.conv2d_plan((1, 32, H, W), 32, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1),
                             dtype == F64)
    Hp, Wp = H + 2, W + 2
    aliased = (Hp * Wp * dtype.itemsize) % 1024 == 0
    assert plan.blocked and plan.Wb == Wp
    assert plan.Hb == Hp + (1 if aliased else 0)
    x, w, b = case_arrays(seed_of(dtype, H, W), N=1, C=32, K=32, H=H, W=W, dtype=dtype)
    check(x, w, b, 1, 1)


@pytest.mark.parametrize("dtype,N,H,W,K,R,S,padding", [
    (F32, 1, 7, 7, 32, 3, 3, 1),               # small-image tiles, 512@7-like
    (F64, 2, 5, 6, 16, 3, 3, (1, 2, 0, 1)),    # small, unequal sides
    (F32, 1, 14, 14, 32, 3, 3, 1),             # flat tiles
    (F32, 1, 28, 28, 32, 3, 3, 1),             # flat with the shared column (row tiles without)
    (F64, 1, 20, 9, 16, 3, 5, (2, 1, 1, 1)),   # flat, left > right
    (F32, 2, 30, 11, 32, 5, 3, (0, 2, 2, 2)),  # nothing on the left: no sharing
], ids=str)
def test_shared_padding_column(dtype, N, H, W, K, R, S, padding, monkeypatch):
    """With zero padding, flat and small-image tiles read a buffer whose rows
    share a padding column (pitch W + max(left, right), at least Wo). The
    values are those of the same call on the explicitly zero-padded input
    (no padding, no sharing), to the bit, in pieces of few rows (each reads
    the next row's left padding) and for any number of workers."""
    from cyconv import _core, _parallel
    left, right, top, bottom = padding if isinstance(padding, tuple) else (padding,) * 4
    plan = _core.conv2d_plan((N, 8, H, W), K, (R, S), 1, (1, 1), (1, 1),
                             (top, bottom, left, right), dtype == F64, zero_padding=True)
    Wp, Wo = W + left + right, W + left + right - S + 1
    assert plan.Wb in (Wp, max(Wo, W + max(left, right)))
    if min(left, right) == 0:
        assert plan.Wb == Wp
    x, w, b = case_arrays(seed_of(dtype, N, H, W, padding), N=N, C=8, K=K, H=H, W=W, R=R, S=S,
                          dtype=dtype)
    got = check(x, w, b, 1, padding)
    explicit = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    bits = got.view(np.uint8)
    np.testing.assert_array_equal(cyconv.conv2d(explicit, w, b, workers=1).view(np.uint8), bits)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    for workers in (1, 2):
        pieces = cyconv.conv2d(x, w, b, padding=padding, workers=workers)
        np.testing.assert_array_equal(pieces.view(np.uint8), bits)


@pytest.mark.parametrize("dtype,N,C,K,H,W,groups,padding", [
    # few packed weights: every block at each tile position, in chunks
    (F32, 1, 400, 16, 12, 13, 1, 0),     # 2 chunks, the last one short
    (F32, 2, 200, 24, 9, 8, 1, 0),       # a short channel block
    (F64, 1, 100, 48, 12, 9, 1, 1),      # zero padding, float64 chunks
    (F32, 1, 400, 32, 8, 17, 2, 0),      # groups
    (F32, 1, 200, 32, 34, 34, 1, 0),     # strips of tiles
    (F32, 1, 200, 64, 52, 52, 1, 0),     # an input over 2 MB: 50 KB of weights, 4 chunks
    # more packed weights than that: each block over a strip
    (F32, 1, 300, 64, 12, 13, 1, 0),     # 75 KB on a small input (float32 from 32 KB)
    (F32, 1, 300, 260, 7, 7, 1, 0),      # 7 x 7 (packed, not small-image tiles)
    (F64, 2, 300, 180, 5, 6, 1, 1),      # float64, batch, padding
    (F32, 1, 300, 260, 30, 31, 1, 0),    # two strips
    (F32, 1, 600, 260, 9, 11, 2, 1),     # groups
    # images smaller than the weights: the whole image in passes of some blocks
    (F32, 1, 300, 1040, 12, 13, 1, 0),
    (F64, 2, 300, 520, 11, 11, 1, 1),    # float64, batch, padding (13-pixel rows: flat tiles
                                         # at 6 and 14 pixels a tile)
    (F32, 1, 600, 1040, 10, 13, 2, 0),   # groups
], ids=str)
def test_chunked_1x1_tiles(dtype, N, C, K, H, W, groups, padding, monkeypatch):
    """1x1 layers with many input channels run in channel chunks whose
    partial sums wait in scratch. With small integer values every sum is
    exact in any order, so the result must equal the float64 reference
    exactly; pieces of one row and 2 workers give the same bits."""
    from cyconv import _core, _parallel
    pad = (padding,) * 4
    plan = _core.conv2d_plan((N, C, H, W), K, (1, 1), groups, (1, 1), (1, 1), pad,
                             dtype == F64, zero_padding=True)
    assert plan.blocked and plan.chunk < C // groups
    # blocks outer past 256 KB of packed weights; on inputs of at most 2 MB
    # past 32 KB (float32) or 128 KB (float64)
    item = np.dtype(dtype).itemsize
    limit = (32768 if item == 4 else 131072) if C * H * W * item <= 2 << 20 else 262144
    assert plan.chunk_blocks_outer == (math.prod(plan.packed_shape) * item > limit)
    blocks = plan.packed_shape[0]
    assert (plan.strip_blocks < blocks) == (K >= 520)
    rng = np.random.default_rng(seed_of(dtype, N, C, K, H, W, groups))
    x = rng.integers(-4, 5, (N, C, H, W)).astype(dtype)
    w = rng.integers(-4, 5, (K, C // groups, 1, 1)).astype(dtype)
    b = rng.integers(-4, 5, K).astype(dtype)
    got = cyconv.conv2d(x, w, b, padding=padding, groups=groups, workers=1)
    # (exact sums: either reference gives the same; the slicing one for many channels)
    reference = conv2d_reference if K * C < 100_000 else conv2d_direct
    ref = reference(x.astype(F64), w.astype(F64), b.astype(F64), 1, padding, 1, groups)
    np.testing.assert_array_equal(got, ref.astype(dtype))
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    for workers in (1, 2):
        pieces = np.full_like(got, np.nan)   # every piece's pixels must be written
        cyconv.conv2d(x, w, b, padding=padding, groups=groups, workers=workers, out=pieces)
        np.testing.assert_array_equal(pieces.view(np.uint8), got.view(np.uint8))


@pytest.mark.parametrize("dtype,N,C,K,H,W,padding,dilation", [
    (F32, 8, 32, 16, 16, 16, 1, 1),       # 16 output channels, half an AVX-512 block
    (F32, 2, 16, 8, 28, 30, 1, 1),
    (F32, 2, 32, 24, 14, 15, (1, 0), 1),  # a channel group of 4 cut short (24 = 6 x 4)
    (F32, 1, 3, 16, 40, 40, 2, 2),        # dilation
    (F64, 2, 16, 12, 20, 21, 0, 1),       # float64: fewer than 16 channels
    (F32, 4, 1, 16, 28, 28, 1, 1),        # one input channel: 9 taps a pixel
    (F32, 2, 3, 64, 32, 33, 1, 1),        # AVX-512 blocks of 27 taps a pixel
    (F64, 2, 3, 16, 24, 24, (0, 1), 1),   # the same, float64
], ids=str)
def test_narrow_layers_in_wide_small_tiles(dtype, N, C, K, H, W, padding, dilation,
                                           rows_512_restored, monkeypatch):
    """Layers of fewer output channels than an AVX-512 channel block ran
    AVX2's blocks, half the peak where 512-bit FMAs run at full width, and
    layers of few taps a pixel stored far more than they computed: there
    they run the level's small-image tiles (pixels in 512-bit lanes, weights
    read in place) when their rows fill them. Values against the reference;
    the bits of the blocks (the mixed choice) and of any thread count."""
    from cyconv import _conv2d, _core, _parallel
    monkeypatch.setattr(_conv2d, "_PIXEL_CONV", False)   # (few taps: test_pixel_conv)
    pad = (padding,) * 2 if isinstance(padding, int) else padding
    x, w, b = case_arrays(K * H, N=N, C=C, K=K, H=H, W=W, dtype=dtype)
    plans, results = {}, {}
    for wide in (True, False):
        _core.set_rows_512(wide)
        plans[wide] = _core.conv2d_plan((N, C, H, W), K, (3, 3), 1, (1, 1), (dilation,) * 2,
                                        (pad[0], pad[0], pad[1], pad[1]), dtype == F64,
                                        zero_padding=True)
        results[wide] = check(x, w, b, 1, pad, dilation, reference=conv2d_direct)
    assert plans[False].blocked and not plans[False].small
    if cyconv.kernel_level() == "avx512":
        assert plans[True].small and not plans[True].blocked
    assert results[True].tobytes() == results[False].tobytes()
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    for workers in (1, 2):
        got = cyconv.conv2d(x, w, b, padding=pad, dilation=dilation, workers=workers)
        assert got.tobytes() == results[True].tobytes()


# Layers of few taps with the output pixels in the lanes (_conv2d._pixel_conv):
# blocks of 8 channels (9-20: the last moved back) by two vectors of a row
# (rows of one vector and a bit, of exactly one, of two and a bit: the last
# vector moved back), strides down the rows, dilations, padding modes,
# groups, a bias or none, unbatched inputs and a strided `out`.
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("N,C,K,groups,H,W,kernel,stride,padding,dilation,mode,bias", [
    (3, 1, 16, 1, 28, 28, (3, 3), 1, 1, 1, "zeros", True),
    (2, 3, 9, 1, 17, 33, (3, 3), (2, 1), 1, 1, "reflect", False),
    (2, 1, 20, 1, 12, 16, (5, 5), 1, 2, 1, "zeros", True),
    (1, 2, 8, 1, 9, 41, (3, 2), 1, (1, 0), (2, 1), "circular", True),
    (2, 4, 24, 2, 10, 19, (3, 3), 1, 1, 1, "replicate", False),
    (1, 3, 64, 1, 8, 70, (3, 3), (3, 1), 0, 1, "zeros", True),
    (2, 1, 12, 1, 6, 64, (1, 7), 1, (0, 3), 1, "symmetric", True),
    (0, 1, 16, 1, 6, 32, (3, 3), 1, 1, 1, "zeros", True),     # unbatched
], ids=str)
def test_pixel_conv(N, C, K, groups, H, W, kernel, stride, padding, dilation, mode, bias, dtype,
                    monkeypatch):
    """The reference's values, and the bits of the tiles (the same sums in
    the same order) and of any thread count."""
    from cyconv import _conv2d, _core, _parallel
    shape = (C, H, W) if N == 0 else (N, C, H, W)
    rng = np.random.default_rng(seed_of(N, C, K, H, W, kernel, dtype))
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((K, C // groups, *kernel)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
              padding_mode=mode)
    calls = []
    pixel_conv = _core.pixel_conv
    monkeypatch.setattr(_core, "pixel_conv", lambda *a: (calls.append(a), pixel_conv(*a)))
    got = cyconv.conv2d(x, w, b, **kw)
    assert calls
    x4 = x if N else x[np.newaxis]
    ref = conv2d_reference(x4.astype(F64), w.astype(F64), None if b is None else b.astype(F64),
                           stride, padding, dilation, groups, mode)
    np.testing.assert_allclose(got if N else got[np.newaxis], ref,
                               rtol=1e-4 if dtype == F32 else 1e-12,
                               atol=1e-4 if dtype == F32 else 1e-12)
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    assert cyconv.conv2d(x, w, b, workers=3, **kw).tobytes() == got.tobytes()
    out = np.full(got.shape[:-1] + (2 * got.shape[-1],), np.nan, dtype)[..., ::2]
    cyconv.conv2d(x, w, b, out=out, **kw)
    assert out.tobytes() == got.tobytes()
    monkeypatch.setattr(_conv2d, "_PIXEL_CONV", False)
    calls.clear()
    tiles = cyconv.conv2d(x, w, b, **kw)
    assert not calls
    assert tiles.tobytes() == got.tobytes()


@pytest.mark.parametrize("dtype,N,C,K,H,W,kernel,groups,padding,dilation", [
    (F32, 1, 64, 64, 56, 56, (3, 3), 1, 1, 1),     # ResNet's 3x3 @56 (AVX2: 2 chunks, strips)
    (F32, 2, 80, 24, 17, 19, (3, 3), 1, 1, 1),     # a short last chunk and channel block
    (F64, 1, 70, 40, 20, 21, (3, 3), 1, 0, 1),     # float64, no padding
    (F32, 1, 256, 256, 14, 14, (3, 3), 1, 1, 1),   # an image smaller than the weights
    (F32, 1, 80, 640, 30, 28, (3, 3), 1, 1, 1),    # strips of 16 tiles, some blocks a pass
    (F32, 1, 160, 64, 15, 16, (3, 3), 2, 1, 2),    # groups, dilation
    (F32, 1, 200, 48, 13, 13, (2, 3), 1, (0, 1), 1),   # non-square kernel
], ids=str)
def test_chunked_tap_tiles(dtype, N, C, K, H, W, kernel, groups, padding, dilation,
                           monkeypatch, mixed_widths):
    """R x S layers on flat tiles run their blocks outer, in channel chunks
    of 18 KB of one block's weights (at least 32 channels; none at AVX-512's
    32-channel blocks), whose partial sums wait in scratch. Small integers
    make every sum exact (the result must equal the float64 reference);
    with random values, pieces of one row and 2 workers give the bits of
    one call."""
    from cyconv import _core, _parallel
    pad = (padding,) * 2 if isinstance(padding, int) else padding
    plan = _core.conv2d_plan((N, C, H, W), K, kernel, groups, (1, 1), (dilation,) * 2,
                             (pad[0], pad[0], pad[1], pad[1]), dtype == F64, zero_padding=True)
    block = _core.tile_sizes(K // groups, dtype == F64)["block_f64" if dtype == F64
                                                        else "block_f32"]
    chunk = 18432 // (math.prod(kernel) * block * np.dtype(dtype).itemsize)
    assert plan.blocked
    assert plan.chunk_blocks_outer == (32 <= chunk < C // groups)
    assert plan.chunk == (chunk if plan.chunk_blocks_outer else C // groups)
    rng = np.random.default_rng(seed_of(dtype, N, C, K, H, W, groups))
    x = rng.integers(-4, 5, (N, C, H, W)).astype(dtype)
    w = rng.integers(-4, 5, (K, C // groups, *kernel)).astype(dtype)
    b = rng.integers(-4, 5, K).astype(dtype)
    got = cyconv.conv2d(x, w, b, padding=pad, dilation=dilation, groups=groups, workers=1)
    ref = conv2d_direct(x.astype(F64), w.astype(F64), b.astype(F64), 1, pad, dilation, groups)
    np.testing.assert_array_equal(got, ref.astype(dtype))
    x, w, b = (rng.standard_normal(a.shape).astype(dtype) for a in (x, w, b))
    bits = cyconv.conv2d(x, w, b, padding=pad, dilation=dilation, groups=groups, workers=1)
    ref = conv2d_direct(x.astype(F64), w.astype(F64), b.astype(F64), 1, pad, dilation, groups)
    # (sums of thousands of terms: the error scales with the largest output)
    tol = 1e-5 if dtype == F32 else 1e-13
    np.testing.assert_allclose(bits, ref, rtol=tol, atol=tol * np.abs(ref).max())
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)
    for workers in (1, 2):
        pieces = np.full_like(bits, np.nan)   # every piece's pixels must be written
        cyconv.conv2d(x, w, b, padding=pad, dilation=dilation, groups=groups, workers=workers,
                      out=pieces)
        np.testing.assert_array_equal(pieces.view(np.uint8), bits.view(np.uint8))


@pytest.mark.parametrize("N,C,K,H,W", [
    (1, 64, 64, 56, 56),     # ResNet-50's first 1x1 layer
    (2, 17, 33, 5, 7),       # short blocks, the last pixel tile moved back
    (1, 128, 40, 9, 11),     # the widest input channels, a short channel block
    (3, 3, 20, 4, 4),        # pieces of fewer pixels than a pixel tile: blocked tiles
    (1, 1, 16, 1, 64),       # one row, one input channel
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])
def test_pixel_tiles(N, C, K, H, W, dtype, bias, monkeypatch):
    """1x1 layers of up to 128 input channels without padding run in pixel
    tiles (output pixels in the vector lanes): bitwise the blocked tiles'
    result, whole and in pieces on 2 workers, into contiguous and strided
    outputs."""
    from cyconv import _conv2d, _core, _parallel
    x, w, b = case_arrays(seed_of(N, C, K, H, W, dtype, "lanes"), N=N, C=C, K=K, H=H, W=W,
                          R=1, S=1, bias=bias, dtype=dtype)
    assert _core.conv2d_plan((N, C, H, W), K, (1, 1), 1, (1, 1), (1, 1), (0, 0, 0, 0),
                             dtype == F64, zero_padding=True).lanes
    plan_of = _core.conv2d_plan
    monkeypatch.setattr(_conv2d, "_prepared", {})
    monkeypatch.setattr(_core, "conv2d_plan", lambda *a, **k: plan_of(*a, **k, pixel_tiles=False))
    blocked = cyconv.conv2d(x, w, b, workers=1)
    (prep,) = _conv2d._prepared.values()
    assert prep.plan.blocked and not prep.plan.lanes
    monkeypatch.setattr(_core, "conv2d_plan", plan_of)
    monkeypatch.setattr(_conv2d, "_prepared", {})
    got = check(x, w, b)
    (prep,) = _conv2d._prepared.values()
    assert prep.plan.lanes
    np.testing.assert_array_equal(got.view(np.uint8), blocked.view(np.uint8))
    monkeypatch.setattr(_parallel, "CHUNK_WORK", 1)   # pieces of one row (or fewer blocks)
    for workers in (1, 2):
        wide = np.full(got.shape[:-1] + (2 * W,), np.nan, got.dtype)
        for out in (np.full_like(got, np.nan), wide[..., ::2]):
            cyconv.conv2d(x, w, b, workers=workers, out=out)
            np.testing.assert_array_equal(np.ascontiguousarray(out).view(np.uint8),
                                          got.view(np.uint8))
        assert np.isnan(wide[..., 1::2]).all()   # nothing stored between the pixels


@pytest.mark.parametrize("shape,K,padding,groups", [
    ((1, 129, 8, 8), 32, 0, 1),   # more input channels than pixel tiles take
    ((1, 32, 8, 8), 32, 1, 1),    # padding
    ((1, 64, 8, 8), 64, 0, 2),    # groups
    ((1, 32, 8, 8), 2, 0, 1),     # too few output channels for a channel block
], ids=str)
def test_pixel_tiles_not_taken(shape, K, padding, groups):
    plan = cyconv._core.conv2d_plan(shape, K, (1, 1), groups, (1, 1), (1, 1), (padding,) * 4,
                                    False, zero_padding=True)
    assert not plan.lanes


@pytest.mark.parametrize("K,Cg,R,S,groups", [
    (16, 1, 3, 5, 1), (16, 16, 1, 1, 1), (40, 17, 1, 1, 1), (33, 11, 3, 3, 1),
    (48, 16, 3, 3, 3), (17, 4, 2, 2, 1), (64, 2, 4, 4, 2)], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "flipped", "transposed", "reversed", "strided"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_pack_weights_layout(K, Cg, R, S, groups, layout, dtype, mixed_widths):
    """Packed weights hold each group's blocks of KB output channels
    innermost, (c, r*S + s) outer, zeros past the group's last channel; the
    same for every weight layout (panels of whole blocks of contiguous taps,
    element by element otherwise). (With the mixed widths, layers of few
    channels pack AVX2's blocks at the AVX-512 level.)"""
    rng = np.random.default_rng(seed_of(K, Cg, R, S, groups, layout, dtype))
    if layout == "transposed":   # conv_transpose2d's channel-transposed view
        w = rng.standard_normal((Cg, K, R, S)).astype(dtype).transpose(1, 0, 2, 3)
    elif layout == "strided":
        w = rng.standard_normal((K, 2 * Cg, R, S)).astype(dtype)[:, ::2]
    else:
        w = rng.standard_normal((K, Cg, R, S)).astype(dtype)
        w = {"flipped": w[:, :, ::-1, ::-1], "reversed": w[::-1]}.get(layout, w)
    C = Cg * groups
    plan = _core_plan((1, C, R + 15, S + 15), K, (R, S), groups, dtype)
    assert plan.blocked
    packed = np.full(plan.packed_shape, np.nan, dtype)
    cyconv._core.pack_weights(plan, w, packed)
    nb, KB, Kg = plan.packed_shape[0], plan.packed_shape[3], K // groups
    blocks = nb // groups
    want = np.zeros((groups, blocks * KB, Cg, R * S), dtype)
    want[:, :Kg] = w.reshape(groups, Kg, Cg, R * S)
    want = want.reshape(groups, blocks, KB, Cg, R * S).transpose(0, 1, 3, 4, 2)
    np.testing.assert_array_equal(packed, want.reshape(plan.packed_shape))


@pytest.mark.parametrize("K,Cg,groups", [(100, 7, 1), (96, 5, 3)], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_pack_weights_block_range(K, Cg, groups, dtype):
    """pack_weights(..., b0, b1) writes blocks b0 <= b < b1 (counted over
    all groups) as the whole packing does, and nothing else."""
    rng = np.random.default_rng(seed_of(K, Cg, groups, dtype))
    w = rng.standard_normal((K, Cg, 3, 3)).astype(dtype)
    plan = _core_plan((1, Cg * groups, 18, 18), K, (3, 3), groups, dtype)
    whole = np.empty(plan.packed_shape, dtype)
    cyconv._core.pack_weights(plan, w, whole)
    nb = plan.packed_shape[0]
    assert nb >= 3
    for b0, b1 in [(0, 1), (1, nb - 1), (nb - 1, nb), (2, 2)]:
        part = np.full(plan.packed_shape, np.nan, dtype)
        cyconv._core.pack_weights(plan, w, part, b0, b1)
        np.testing.assert_array_equal(part[b0:b1], whole[b0:b1])
        assert np.isnan(part[:b0]).all() and np.isnan(part[b1:]).all()


def test_packing_shared_by_threads(monkeypatch):
    """conv2d's pieces pack the blocks they run (_conv2d._Packing): from
    many threads at once over overlapping ranges, every block is packed
    exactly once, and the result is the whole packing."""
    import threading
    from cyconv import _conv2d
    rng = np.random.default_rng(7)
    w = rng.standard_normal((300, 8, 3, 3)).astype(F32)
    plan = _core_plan((1, 8, 18, 18), 300, (3, 3), 1, F32)
    whole = np.empty(plan.packed_shape, F32)
    cyconv._core.pack_weights(plan, w, whole)
    nb = plan.packed_shape[0]
    assert nb >= 4
    calls = []
    pack = cyconv._core.pack_weights

    def counted(plan, source, packed, b0, b1):
        calls.append((b0, b1))
        return pack(plan, source, packed, b0, b1)

    monkeypatch.setattr(_conv2d._core, "pack_weights", counted)
    packed = np.full(plan.packed_shape, np.nan, F32)
    packing = _conv2d._Packing(plan, w, packed)
    packing.share()
    start = threading.Barrier(8)
    ranges = [(0, -1), (0, 2), (1, 3), (nb - 2, nb), (2, -1), (0, nb), (3, 4), (nb - 1, -1)]

    ready = []   # per piece: were all its blocks packed when blocks() returned?

    def piece(b0, b1):
        start.wait()
        packing.blocks(b0, b1)
        ready.append(all(packing.done[b0:nb if b1 < 0 else b1]))

    threads = [threading.Thread(target=piece, args=r) for r in ranges]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ready == [True] * len(ranges)
    assert sorted(calls) == [(b, b + 1) for b in range(nb)]
    assert set(packing.done) == {1}   # packed, finite
    np.testing.assert_array_equal(packed, whole)


@pytest.mark.parametrize("layout", ["C", "transposed, taps flipped", "strided"])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_pack_weights_marks_blocks_with_nonfinite_weights(layout, value, dtype):
    """pack_weights' marks (conv2d's packed_blocks): 1 for a packed block,
    plus 2 where one of its weights is not finite, whichever copy packs it
    (panels, transposes of the flipped view, element by element), wherever
    the weight is: row tiles then keep that block's padding products. A
    plan whose tiles leave none out does not look."""
    from cyconv import _core
    K, C = 80, 40
    W = _core.tile_sizes(K, dtype == F64)["tile_pixels"]   # rows of one tile: row tiles
    plan = _core.conv2d_plan((4, C, 14, W), K, (3, 3), 1, (1, 1), (1, 1), (1, 1, 1, 1),
                             dtype == F64, zero_padding=True)
    assert plan.padding_skips and not plan.flat
    KB = plan.packed_shape[3]
    nb = plan.packed_shape[0]
    rng = np.random.default_rng(3)
    w = rng.standard_normal((K, C, 3, 3)).astype(dtype)
    huge = np.finfo(dtype).max   # finite: sums of such may overflow, but never a false mark here
    w[-1, -1, -1, -1] = huge
    # one weight per marked block: the first block's first tap, the second's
    # last channel and tap (past whole panels), the last block's middle
    bad = {0: (0, 0, 0, 0), 1: (KB + 1, C - 1, 2, 2)}
    if nb > 3:
        bad[nb - 1] = (K - 1, C // 2, 1, 1)
    view = w if layout == "C" else _weight_layout(w, layout)
    for k, c, r, s in bad.values():
        view[k, c, r, s] = value
    packed = np.empty(plan.packed_shape, dtype)
    marks = [_core.pack_weights(plan, view, packed, b, b + 1) for b in range(nb)]
    assert marks == [3 if b in bad else 1 for b in range(nb)]
    assert _core.pack_weights(plan, view, packed) == 3
    unpadded = _core.conv2d_plan((4, C, 14, W), K, (3, 3), 1, (1, 1), (1, 1), (0, 0, 0, 0),
                                 dtype == F64, zero_padding=True)
    assert not unpadded.padding_skips
    packed = np.empty(unpadded.packed_shape, dtype)
    assert _core.pack_weights(unpadded, view, packed) == 1


def _core_plan(shape, K, kernel, groups, dtype):
    return cyconv._core.conv2d_plan(shape, K, kernel, groups, (1, 1), (1, 1), (0, 0, 0, 0),
                                    dtype == np.float64)


@pytest.mark.parametrize("K,C,groups,R,S,H,W", [
    # 1x1, chunked: each block's chunk packed as its strip starts
    (160, 512, 1, 1, 1, 5, 7), (600, 1024, 2, 1, 1, 5, 7), (37, 1400, 1, 1, 1, 5, 7),
    # R x S, unchunked: each block packed as its tiles start
    (80, 256, 1, 3, 3, 14, 13),   # flat tiles, a short last block
    (72, 200, 1, 3, 3, 13, 16),   # row tiles (rows of one tile)
    (96, 240, 2, 3, 3, 14, 13),   # groups
    (40, 96, 1, 5, 5, 16, 16),    # 5x5
], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "reversed", "strided", "fortran"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_inline_packed_weight_layouts(K, C, groups, R, S, H, W, layout, dtype):
    """Layers whose blocks run outer on one image pack the weights as they
    go, from any layout: the reference's values, and the bits of the same
    weights C-contiguous."""
    from cyconv import _conv2d
    x, w, b = case_arrays(seed_of(K, C, groups, R, S, layout, dtype), N=1, C=C, K=K,
                          groups=groups, H=H, W=W, R=R, S=S, dtype=dtype)
    if layout == "transposed":   # conv_transpose2d's channel-transposed view
        view = np.ascontiguousarray(w.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    elif layout == "reversed":
        view = np.ascontiguousarray(w[::-1])[::-1]
    elif layout == "strided":
        view = np.repeat(w, 2, axis=1)[:, ::2]
    elif layout == "fortran":
        view = np.asfortranarray(w)
    else:
        view = w
    np.testing.assert_array_equal(view, w)
    plan = _conv2d._prepare(x, view, b, 1, 0, 1, groups, "zeros", None).plan
    # (R x S layers on flat tiles of the narrower levels' blocks run in
    # channel chunks instead, their weights packed first)
    assert plan.pack_inline or (R * S > 1 and plan.chunk_blocks_outer)
    got = check(x, view, b, groups=groups, reference=conv2d_direct)
    np.testing.assert_array_equal(got.view(np.uint8), _conv(x, w, b, groups=groups).view(np.uint8))

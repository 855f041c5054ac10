"""cyconv.conv2d against PyTorch itself (skipped when torch is not installed).

torch is never a dependency of cyconv; these tests pin the contract's
"returns what torch.nn.functional.conv2d returns" to the real thing, and
check once that tests/conv2d_reference.py (used by test_conv2d.py) agrees
with PyTorch, so the reference can be trusted where torch is absent.
"""

from __future__ import annotations

import itertools
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
# Tiny problems: torch's intra-op thread pool only adds overhead (and contends
# with cyconv's threads); one thread keeps this file fast.
torch.set_num_threads(1)

import cyconv  # noqa: E402
from conv2d_reference import (  # noqa: E402
    NP_PAD_MODE,
    assert_conv_close,
    contract_violation,
    conv2d_abs_bound,
    conv2d_reference,
    describe,
    resolve_padding,
)

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
TORCH_MODES = ("zeros", "reflect", "replicate", "circular")
TORCH_DTYPE = {F32: torch.float32, F64: torch.float64}


def seed_of(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def arrays(seed, *, batched=True, N=2, C=3, K=4, groups=1, H=8, W=9, R=3, S=3, bias=True,
           dtype=F64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W) if batched else (C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // groups, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    return x, w, b


def T(a):
    return None if a is None else torch.from_numpy(np.array(a, copy=True))


def quiet(fn, *args, **kw):
    """Call torch without turning its UserWarnings (e.g. about even kernels
    with padding="same") into errors under filterwarnings=error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            return fn(*args, **kw)


def torch_conv_padded(x, w, b, stride, pads, dilation, groups, padding_mode):
    """F.pad with (left, right, top, bottom) in ``padding_mode`` then F.conv2d; the
    non-PyTorch "symmetric" mode is padded with np.pad."""
    tx = T(x)
    unbatched = tx.ndim == 3
    if unbatched:
        tx = tx[None]
    if padding_mode == "symmetric":
        left, right, top, bottom = pads
        tx = T(np.pad(tx.numpy(), [(0, 0), (0, 0), (top, bottom), (left, right)],
                      mode="symmetric"))
    elif any(pads):
        if padding_mode == "zeros":
            tx = quiet(F.pad, tx, pads, mode="constant", value=0.0)
        else:
            tx = quiet(F.pad, tx, pads, mode=padding_mode)
    y = quiet(F.conv2d, tx, T(w), T(b), stride, 0, dilation, groups).numpy()
    return y[0] if unbatched else y


def compare(got, expected, x, w, b, stride, padding, dilation, groups, padding_mode,
            dtype=None):
    bound = conv2d_abs_bound(x, w, b, stride, padding, dilation, groups, padding_mode)
    assert_conv_close(got, expected, bound, dtype=dtype,
                      err_msg=describe(input=x, weight=w, bias=b, stride=stride, padding=padding,
                                       dilation=dilation, groups=groups,
                                       padding_mode=padding_mode))


# =========================================================================== the reference

REF_GRID = list(itertools.product(
    [(3, 4, 1), (4, 6, 2), (4, 4, 4)],                      # C, K, groups
    [(1, 1), (2, 2), (3, 5), (4, 3)],                        # kernel
    [1, 2, (1, 3)],                                          # stride
    [1, (2, 1)],                                             # dilation
    [0, 1, (2, 1), "same", "valid", (1, 0, 2, 3)],           # padding
    TORCH_MODES,
))


@pytest.mark.parametrize("batched", [True, False], ids=["batched", "unbatched"])
def test_reference_matches_torch(batched):
    """The SciPy-based reference of test_conv2d.py is PyTorch's conv2d, in float64."""
    checked = 0
    for i, ((C, K, g), (R, S), st_, dil, pad, mode) in enumerate(REF_GRID):
        x, w, b = arrays(i, batched=batched, C=C, K=K, groups=g, H=9, W=11, R=R, S=S,
                         bias=bool(i % 2))
        if contract_violation(x, w, b, st_, pad, dil, g, mode) is not None:
            continue
        pads = resolve_padding(pad, x.shape[-2:], (R, S), st_, dil)
        expected = torch_conv_padded(x, w, b, st_, pads, dil, g, mode)
        ref = conv2d_reference(x, w, b, st_, pad, dil, g, mode)
        np.testing.assert_allclose(ref, expected, rtol=1e-11, atol=1e-11,
                                   err_msg=str((C, K, g, R, S, st_, dil, pad, mode)))
        checked += 1
    assert checked > 0.8 * len(REF_GRID)


@pytest.mark.parametrize("padding_mode", TORCH_MODES)
def test_reference_same_matches_torch_module(padding_mode):
    """The reference's "same" split (even kernels, dilation) is torch.nn.Conv2d's."""
    for i, ((R, S), dil) in enumerate(itertools.product([(1, 1), (2, 2), (3, 4), (4, 1), (5, 6)],
                                                        [1, 2, (3, 1)])):
        x, w, b = arrays(i, C=2, K=3, H=10, W=13, R=R, S=S)
        m = torch.nn.Conv2d(2, 3, (R, S), 1, "same", dil, 1, True, padding_mode).double()
        with torch.no_grad():
            m.weight.copy_(T(w))
            m.bias.copy_(T(b))
        expected = quiet(m, T(x)).numpy()
        np.testing.assert_allclose(conv2d_reference(x, w, b, 1, "same", dil, 1, padding_mode),
                                   expected, rtol=1e-11, atol=1e-11)


# =========================================================================== cyconv vs torch

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("padding", [0, 1, 2, (1, 2), (0, 3), "valid", "same"], ids=str)
@pytest.mark.parametrize("kernel,dilation", [((1, 1), 1), ((2, 2), 1), ((3, 3), 1),
                                             ((4, 4), 1), ((5, 5), 1), ((7, 7), 1),
                                             ((3, 5), 1), ((1, 7), 1), ((2, 4), 2),
                                             ((3, 2), (2, 1)), ((6, 3), (1, 2))], ids=str)
def test_functional_zeros(kernel, dilation, padding, dtype):
    """F.conv2d with its own padding argument (incl. "same" with even kernels)."""
    R, S = kernel
    for stride in ([1] if padding == "same" else [1, 2, (1, 3)]):
        seed = seed_of(kernel, dilation, padding, stride, dtype.char)
        x, w, b = arrays(seed, N=2, C=4, K=6, groups=2, H=14, W=17, R=R, S=S, dtype=dtype,
                         bias=bool(seed % 2))
        expected = quiet(F.conv2d, T(x), T(w), T(b), stride, padding, dilation, 2).numpy()
        got = cyconv.conv2d(x, w, b, stride, padding, dilation, 2)
        assert got.dtype == dtype and got.shape == expected.shape
        compare(got, expected, x, w, b, stride, padding, dilation, 2, "zeros")
        # unbatched
        expected = quiet(F.conv2d, T(x[1]), T(w), T(b), stride, padding, dilation, 2).numpy()
        got = cyconv.conv2d(x[1], w, b, stride, padding, dilation, 2)
        assert got.shape == expected.shape
        compare(got, expected, x[1], w, b, stride, padding, dilation, 2, "zeros")


@pytest.mark.parametrize("kw", [
    dict(stride=(2,)), dict(stride=[3]), dict(padding=(1,)), dict(padding=[2]),
    dict(dilation=(2,)), dict(stride=(2,), padding=(1,), dilation=(2,)),
    dict(stride=(np.int64(2),), padding=np.int32(1)), dict(padding="same", dilation=[2]),
    dict(stride=[1, 2], padding=[1, 0], dilation=[2, 1]),
], ids=repr)
def test_sequence_forms_accepted_like_torch(kw):
    """What F.conv2d accepts for stride/padding/dilation (one- and two-element
    lists/tuples, NumPy integers), cyconv accepts with the same result."""
    x, w, b = arrays(seed_of("forms", repr(kw)), N=2, C=3, K=4, H=12, W=11, R=3, S=2)
    expected = quiet(F.conv2d, T(x), T(w), T(b), **kw).numpy()
    got = cyconv.conv2d(x, w, b, **kw)
    assert got.shape == expected.shape
    args = {k: kw.get(k, d) for k, d in (("stride", 1), ("padding", 0), ("dilation", 1))}
    compare(got, expected, x, w, b, args["stride"], args["padding"], args["dilation"], 1,
            "zeros")


@pytest.mark.parametrize("kw", [
    dict(stride=()), dict(stride=(1, 1, 1)), dict(padding=()), dict(padding=(1, 1, 1)),
    dict(dilation=[]), dict(stride=True), dict(stride=(2.0,)), dict(padding=1.5),
    dict(dilation=np.array([2, 2])), dict(stride=0), dict(padding=[-1]),
], ids=repr)
def test_sequence_forms_rejected_like_torch(kw):
    """What F.conv2d rejects, cyconv rejects (ValueError/TypeError; torch may
    raise RuntimeError)."""
    x, w, b = arrays(5, N=1, C=2, K=2, H=8, W=8)
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        quiet(F.conv2d, T(x), T(w), T(b), **kw)
    with pytest.raises((TypeError, ValueError)):
        cyconv.conv2d(x, w, b, **kw)


MODULE_CASES = [  # (kernel, stride, dilation, padding); PyTorch has no "same" with stride > 1
    (k, s, d, p)
    for (k, s, d), p in itertools.product(
        [((3, 3), 1, 1), ((2, 2), 1, 1), ((4, 3), 1, 2), ((3, 3), 2, 1),
         ((5, 2), (2, 1), (1, 2)), ((1, 1), 3, 1), ((2, 5), 1, (2, 1))],
        [0, 1, 2, (1, 3), (3, 0), "same", "valid"])
    if not (p == "same" and s != 1)
]


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("padding_mode", TORCH_MODES)
@pytest.mark.parametrize("kernel,stride,dilation,padding", MODULE_CASES, ids=str)
def test_module_padding_mode(kernel, stride, dilation, padding, padding_mode, dtype):
    """torch.nn.Conv2d(padding_mode=...) with symmetric (int / pair / "same") padding."""
    R, S = kernel
    C, K, groups = 4, 8, 2
    seed = seed_of(kernel, stride, dilation, padding, padding_mode, dtype.char)
    x, w, b = arrays(seed, N=2, C=C, K=K, groups=groups, H=9, W=12, R=R, S=S, dtype=dtype)
    m = torch.nn.Conv2d(C, K, kernel, stride, padding, dilation, groups, True, padding_mode,
                        dtype=TORCH_DTYPE[dtype])
    with torch.no_grad():
        m.weight.copy_(T(w))
        m.bias.copy_(T(b))
    expected = quiet(m, T(x)).numpy()
    got = cyconv.conv2d(x, w, b, stride, padding, dilation, groups, padding_mode=padding_mode)
    assert got.dtype == dtype and got.shape == expected.shape
    compare(got, expected, x, w, b, stride, padding, dilation, groups, padding_mode)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("padding_mode", TORCH_MODES + ("symmetric",))
@pytest.mark.parametrize("pads", [(1, 0, 2, 3), (0, 2, 0, 1), (3, 1, 0, 2), (0, 0, 3, 0),
                                  (2, 2, 1, 1), (0, 5, 0, 0)], ids=str)
@pytest.mark.parametrize("stride,dilation", [(1, 1), (2, 1), (1, 2), ((1, 2), (2, 1))], ids=str)
def test_asymmetric_padding_matches_fpad(pads, padding_mode, stride, dilation, dtype):
    """The 4-tuple (left, right, top, bottom) pads like F.pad (np.pad for symmetric)."""
    seed = seed_of(pads, padding_mode, stride, dilation, dtype.char)
    x, w, b = arrays(seed, N=2, C=3, K=5, H=7, W=8, R=3, S=2, dtype=dtype)
    if contract_violation(x, w, b, stride, pads, dilation, 1, padding_mode) is not None:
        with pytest.raises(ValueError, match="padding"):
            cyconv.conv2d(x, w, b, stride, pads, dilation, padding_mode=padding_mode)
        return
    expected = torch_conv_padded(x, w, b, stride, pads, dilation, 1, padding_mode)
    got = cyconv.conv2d(x, w, b, stride, pads, dilation, padding_mode=padding_mode)
    assert got.dtype == dtype and got.shape == expected.shape
    compare(got, expected, x, w, b, stride, pads, dilation, 1, padding_mode)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("padding_mode", TORCH_MODES + ("symmetric",))
@pytest.mark.parametrize("stride", [2, 3, (2, 1), (1, 3)], ids=str)
@pytest.mark.parametrize("kernel,dilation", [((3, 3), 1), ((2, 4), 1), ((5, 5), 1),
                                             ((3, 2), 2)], ids=str)
def test_same_with_stride_tensorflow_rule(kernel, dilation, stride, padding_mode, dtype):
    """PyTorch refuses "same" with stride > 1; cyconv pads like TF's SAME then convolves."""
    R, S = kernel
    x, w, b = arrays(seed_of(kernel, dilation, stride, padding_mode), C=2, K=3, H=11, W=10,
                     R=R, S=S, dtype=dtype)
    with pytest.raises(RuntimeError):
        quiet(F.conv2d, T(x), T(w), T(b), stride, "same", dilation)
    pads = resolve_padding("same", x.shape[-2:], kernel, stride, dilation)
    expected = torch_conv_padded(x, w, b, stride, pads, dilation, 1, padding_mode)
    got = cyconv.conv2d(x, w, b, stride, "same", dilation, padding_mode=padding_mode)
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    assert got.shape == (2, 3, -(-11 // sh), -(-10 // sw)) == expected.shape
    compare(got, expected, x, w, b, stride, "same", dilation, 1, padding_mode)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C,K,groups", [(3, 40, 1), (2, 70, 1), (6, 70, 2), (8, 8, 8),
                                        (8, 40, 8), (5, 1, 1), (4, 2, 2), (6, 3, 3),
                                        (16, 96, 4)], ids=str)
def test_channels_blocks_and_tiles(C, K, groups, dtype):
    """Several channel blocks and several tiles plus a remainder (W = 37)."""
    for padding_mode, stride in [("zeros", 1), ("reflect", 2), ("circular", 1)]:
        seed = seed_of(C, K, groups, padding_mode, dtype.char)
        x, w, b = arrays(seed, N=2, C=C, K=K, groups=groups, H=6, W=37, dtype=dtype)
        m = torch.nn.Conv2d(C, K, 3, stride, 1, 1, groups, True, padding_mode,
                            dtype=TORCH_DTYPE[dtype])
        with torch.no_grad():
            m.weight.copy_(T(w))
            m.bias.copy_(T(b))
        expected = quiet(m, T(x)).numpy()
        got = cyconv.conv2d(x, w, b, stride, 1, 1, groups, padding_mode=padding_mode)
        compare(got, expected, x, w, b, stride, 1, 1, groups, padding_mode)


@pytest.mark.parametrize("layout", ["channels_last", "negative", "sliced", "bigendian"])
def test_layouts_against_torch(layout):
    x, w, b = arrays(seed_of(layout), N=2, C=4, K=40, H=7, W=37, dtype=F32)
    expected = quiet(F.conv2d, T(x), T(w), T(b), 1, 1).numpy()
    if layout == "channels_last":
        xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        wl = np.ascontiguousarray(w.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    elif layout == "negative":
        xl = np.ascontiguousarray(x[:, ::-1, ::-1, ::-1])[:, ::-1, ::-1, ::-1]
        wl = np.ascontiguousarray(w[::-1, :, ::-1])[::-1, :, ::-1]
    elif layout == "sliced":
        big = np.zeros((2, 8, 14, 74), F32)
        big[:, ::2, ::2, ::2] = x
        xl = big[:, ::2, ::2, ::2]
        wl = w
    else:
        xl, wl = x.astype(">f4"), w.astype(">f4")
    got = cyconv.conv2d(xl, wl, b, 1, 1)
    assert got.dtype == F32
    compare(got, expected, x, w, b, 1, 1, 1, 1, "zeros")


@pytest.mark.parametrize("padding_mode", ["reflect", "circular"])
@pytest.mark.parametrize("size", [2, 3, 4])
def test_pad_limits_agree_with_torch(padding_mode, size):
    """cyconv accepts exactly the reflect / circular pads that PyTorch accepts."""
    x, w, b = arrays(size, N=1, C=1, K=1, H=size, W=size + 1, R=1, S=1)
    for pads in itertools.product(range(size + 3), repeat=2):
        ph, pw = pads
        try:
            quiet(F.pad, T(x), (pw, pw, ph, ph), mode=padding_mode)
            torch_ok = True
        except (RuntimeError, ValueError, NotImplementedError):
            torch_ok = False
        try:
            got = cyconv.conv2d(x, w, b, 1, pads, padding_mode=padding_mode)
            ours_ok = True
        except ValueError as exc:
            assert "padding" in str(exc).lower()
            ours_ok = False
        assert ours_ok == torch_ok, (padding_mode, size, pads, ours_ok, torch_ok)
        if ours_ok:
            expected = torch_conv_padded(x, w, b, 1, (pw, pw, ph, ph), 1, 1, padding_mode)
            compare(got, expected, x, w, b, 1, pads, 1, 1, padding_mode)


def test_symmetric_mode_is_np_pad_symmetric():
    x, w, b = arrays(99, N=2, C=3, K=4, H=6, W=7, R=4, S=3)
    for padding in [1, (2, 3), (3, 0, 1, 2), "same"]:
        pads = resolve_padding(padding, (6, 7), (4, 3), 1, 1)
        expected = torch_conv_padded(x, w, b, 1, pads, 1, 1, "symmetric")
        got = cyconv.conv2d(x, w, b, 1, padding, padding_mode="symmetric")
        compare(got, expected, x, w, b, 1, padding, 1, 1, "symmetric")
    assert NP_PAD_MODE["symmetric"] == "symmetric"


def test_float16_and_integer_inputs_match_torch_float_compute():
    rng = np.random.default_rng(4)
    x16 = rng.standard_normal((2, 3, 8, 9)).astype(np.float16)
    w16 = rng.standard_normal((5, 3, 3, 3)).astype(np.float16)
    expected = quiet(F.conv2d, T(x16.astype(F32)), T(w16.astype(F32)), None, 1, 1).numpy()
    got = cyconv.conv2d(x16, w16, None, 1, 1)
    assert got.dtype == F32
    compare(got, expected, x16, w16, None, 1, 1, 1, 1, "zeros")
    xi = rng.integers(-5, 6, (2, 3, 8, 9))
    wi = rng.integers(-3, 4, (5, 3, 3, 3)).astype(np.int8)
    expected = quiet(F.conv2d, T(xi.astype(F64)), T(wi.astype(F64)), None, 2, 1).numpy()
    got = cyconv.conv2d(xi, wi, None, 2, 1)
    assert got.dtype == F64
    np.testing.assert_array_equal(got, expected)


def test_nonfinite_like_torch():
    x, w, b = arrays(5, N=2, C=3, K=40, H=7, W=9, dtype=F32)
    x[0, 0, 3, 3] = np.nan
    x[1, 1, 0, 0] = np.inf
    x[1, 2, 6, 8] = -np.inf
    expected = quiet(F.conv2d, T(x), T(w), T(b), 1, 1).numpy()
    with np.errstate(all="ignore"):
        got = cyconv.conv2d(x, w, b, 1, 1)
        bound = conv2d_abs_bound(x, w, b, 1, 1)
    assert_conv_close(got, expected, bound)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(expected))

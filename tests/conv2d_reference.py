"""Reference implementation of ``cyconv.conv2d``'s contract, built from SciPy.

``conv2d_reference`` assembles a PyTorch-style conv2d (cross-correlation) from
``scipy.signal.correlate2d``: for each batch item, group and output channel it
sums, over the group's input channels, the ``"valid"`` correlation of the
explicitly padded input plane (``np.pad``) with the zero-dilated kernel, takes
every stride-th sample of that and adds the bias. Everything is computed in
float64 from the exact float64 values of the arguments.

``conv2d_direct`` is a second, independent formulation (one strided slice of
the padded input per kernel tap, no zero-dilated kernel) used where the
reference's inserted zeros would matter: with inf in the input, ``inf * 0`` in a
dilation hole would give a NaN that a real dilated convolution does not have.

The padding helpers spell out the contract once so the tests and the
reference agree on it:

* ``padding`` int ``p``          -> (left, right, top, bottom) = (p, p, p, p)
* ``padding`` pair ``(ph, pw)``  -> (pw, pw, ph, ph)
* ``padding`` 4-tuple            -> (left, right, top, bottom), as torch.nn.functional.pad
* ``"valid"``                    -> (0, 0, 0, 0)
* ``"same"``                     -> per dimension, Ho = ceil(H / s),
  total = max((Ho - 1) * s + d * (k - 1) + 1 - H, 0), first = total // 2,
  second = total - first. With s == 1 that is PyTorch's total d * (k - 1)
  with the smaller half on the left / top; with s > 1 it is TensorFlow's SAME.
"""

from __future__ import annotations

import operator

import numpy as np
from scipy import signal

PADDING_MODES = ("zeros", "reflect", "replicate", "circular", "symmetric")
NP_PAD_MODE = {
    "zeros": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
    "symmetric": "symmetric",
}


# --------------------------------------------------------------------------- arguments

def as_pair(value, name: str) -> tuple[int, int]:
    """An int or a sequence of one or two ints as a pair (no range checks)."""
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return operator.index(value[0]), operator.index(value[0])
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {value!r}")
        return operator.index(value[0]), operator.index(value[1])
    v = operator.index(value)
    return v, v


def effective_kernel(k: int, d: int) -> int:
    """Extent of a kernel of size ``k`` dilated by ``d``."""
    return d * (k - 1) + 1


def same_pad_1d(size: int, k: int, s: int, d: int) -> tuple[int, int]:
    """("first", "second") padding of one dimension for ``padding="same"``."""
    out = -(-size // s)  # ceil(size / s)
    total = max((out - 1) * s + effective_kernel(k, d) - size, 0)
    first = total // 2
    return first, total - first


def resolve_padding(padding, in_hw, kernel_hw, stride=1, dilation=1) -> tuple[int, int, int, int]:
    """The contract's padding as ``(left, right, top, bottom)``."""
    H, W = in_hw
    R, S = kernel_hw
    sh, sw = as_pair(stride, "stride")
    dh, dw = as_pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            top, bottom = same_pad_1d(H, R, sh, dh)
            left, right = same_pad_1d(W, S, sw, dw)
            return left, right, top, bottom
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (tuple, list)):
        if len(padding) == 1:
            p = operator.index(padding[0])
            return p, p, p, p
        if len(padding) == 2:
            ph, pw = (operator.index(p) for p in padding)
            return pw, pw, ph, ph
        if len(padding) == 4:
            left, right, top, bottom = (operator.index(p) for p in padding)
            return left, right, top, bottom
        raise ValueError(f"padding must have 1, 2 or 4 values, got {padding!r}")
    p = operator.index(padding)
    return p, p, p, p


def output_hw(in_hw, kernel_hw, stride, padding, dilation) -> tuple[int, int]:
    """(Ho, Wo) from the contract's formula (may be < 1 for invalid arguments)."""
    H, W = in_hw
    R, S = kernel_hw
    sh, sw = as_pair(stride, "stride")
    dh, dw = as_pair(dilation, "dilation")
    left, right, top, bottom = resolve_padding(padding, in_hw, kernel_hw, stride, dilation)
    Ho = (H + top + bottom - effective_kernel(R, dh)) // sh + 1
    Wo = (W + left + right - effective_kernel(S, dw)) // sw + 1
    return Ho, Wo


def output_shape(input_shape, weight_shape, stride=1, padding=0, dilation=1) -> tuple[int, ...]:
    K, _, R, S = weight_shape
    Ho, Wo = output_hw(input_shape[-2:], (R, S), stride, padding, dilation)
    return (*input_shape[:-3], K, Ho, Wo)


def result_dtype(*arrays) -> np.dtype:
    """float32 when every array argument is float32 or float16, else float64."""
    dts = [np.asarray(a).dtype for a in arrays if a is not None]
    if all(dt.kind == "f" and dt.itemsize <= 4 for dt in dts):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def pad_input(x: np.ndarray, pads, padding_mode: str) -> np.ndarray:
    """Pad the last two axes of ``x`` by ``pads = (left, right, top, bottom)``."""
    left, right, top, bottom = pads
    width = [(0, 0)] * (x.ndim - 2) + [(top, bottom), (left, right)]
    mode = NP_PAD_MODE[padding_mode]
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=0)
    return np.pad(x, width, mode=mode)


def dilate_kernel(w: np.ndarray, dilation) -> np.ndarray:
    """Insert ``d - 1`` zeros between the taps of the last two axes."""
    dh, dw = as_pair(dilation, "dilation")
    R, S = w.shape[-2:]
    out = np.zeros(w.shape[:-2] + (effective_kernel(R, dh), effective_kernel(S, dw)), w.dtype)
    out[..., ::dh, ::dw] = w
    return out


# --------------------------------------------------------------------------- validity

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def contract_violation(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                       padding_mode="zeros"):
    """None when the arguments are valid per the contract, else the name of the
    argument an error message is expected to mention (a rough classification,
    used by the property tests which only check the exception type)."""
    x = np.asarray(input)
    w = np.asarray(weight)
    if x.dtype.kind == "c":
        return "input"
    if w.dtype.kind == "c":
        return "weight"
    if bias is not None and np.asarray(bias).dtype.kind == "c":
        return "bias"
    if x.ndim not in (3, 4):
        return "input"
    if w.ndim != 4:
        return "weight"
    for name, v in (("stride", stride), ("dilation", dilation)):
        vals = v if isinstance(v, (tuple, list)) else (v,)
        if isinstance(v, (tuple, list)) and len(v) not in (1, 2):
            return name
        if not all(_is_int(e) and e > 0 for e in vals):
            return name
    if not _is_int(groups) or groups <= 0:
        return "groups"
    if not isinstance(padding_mode, str) or padding_mode not in PADDING_MODES:
        return "padding_mode"
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            return "padding"
    else:
        vals = padding if isinstance(padding, (tuple, list)) else (padding,)
        if isinstance(padding, (tuple, list)) and len(padding) not in (1, 2, 4):
            return "padding"
        if not all(_is_int(e) and e >= 0 for e in vals):
            return "padding"
    C = x.shape[-3]
    K, Cg = w.shape[:2]
    if C % groups:
        return "groups"
    if K % groups:
        return "groups"
    if Cg * groups != C:
        return "weight"
    if bias is not None:
        b = np.asarray(bias)
        if b.ndim != 1 or b.shape[0] != K:
            return "bias"
    H, W = x.shape[-2:]
    R, S = w.shape[-2:]
    pads = resolve_padding(padding, (H, W), (R, S), stride, dilation)
    left, right, top, bottom = pads
    if padding_mode == "reflect" and (max(top, bottom) >= H or max(left, right) >= W):
        return "padding"
    if padding_mode == "circular" and (max(top, bottom) > H or max(left, right) > W):
        return "padding"
    Ho, Wo = output_hw((H, W), (R, S), stride, padding, dilation)
    if Ho < 1 or Wo < 1:
        return "weight"
    return None


# --------------------------------------------------------------------------- references

def _prepare(input, weight, bias, stride, padding, dilation, groups, padding_mode):
    x = np.asarray(input)
    w = np.asarray(weight)
    unbatched = x.ndim == 3
    x = np.asarray(x[None] if unbatched else x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    b = None if bias is None else np.asarray(bias, dtype=np.float64)
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError("reference: input must be 3-D or 4-D and weight 4-D")
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    if Cg * groups != C or K % groups:
        raise ValueError("reference: inconsistent channels / groups")
    pads = resolve_padding(padding, (H, W), (R, S), stride, dilation)
    xp = pad_input(x, pads, padding_mode)
    Ho, Wo = output_hw((H, W), (R, S), stride, padding, dilation)
    if Ho < 1 or Wo < 1:
        raise ValueError("reference: empty output")
    return x, w, b, xp, (N, C, K, Cg, R, S, Ho, Wo), unbatched


def conv2d_reference(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                     padding_mode="zeros") -> np.ndarray:
    """``torch.nn.functional.conv2d`` semantics in float64, from scipy.signal.correlate2d."""
    x, w, b, xp, dims, unbatched = _prepare(input, weight, bias, stride, padding, dilation,
                                            groups, padding_mode)
    N, C, K, Cg, R, S, Ho, Wo = dims
    sh, sw = as_pair(stride, "stride")
    wd = dilate_kernel(w, dilation)
    Kg = K // groups
    out = np.zeros((N, K, Ho, Wo), np.float64)
    with np.errstate(all="ignore"):
        for n in range(N):
            for k in range(K):
                g = k // Kg
                acc = np.zeros((Ho, Wo), np.float64)
                for c in range(Cg):
                    full = signal.correlate2d(xp[n, g * Cg + c], wd[k, c], mode="valid")
                    acc += full[::sh, ::sw][:Ho, :Wo]
                out[n, k] = acc
        if b is not None:
            out += b[None, :, None, None]
    return out[0] if unbatched else out


def conv2d_direct(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                  padding_mode="zeros") -> np.ndarray:
    """Same semantics, one strided slice of the padded input per kernel tap."""
    x, w, b, xp, dims, unbatched = _prepare(input, weight, bias, stride, padding, dilation,
                                            groups, padding_mode)
    N, C, K, Cg, R, S, Ho, Wo = dims
    sh, sw = as_pair(stride, "stride")
    dh, dw = as_pair(dilation, "dilation")
    Kg = K // groups
    out = np.zeros((N, K, Ho, Wo), np.float64)
    with np.errstate(all="ignore"):
        for g in range(groups):
            xg = xp[:, g * Cg:(g + 1) * Cg]
            wg = w[g * Kg:(g + 1) * Kg]
            for r in range(R):
                for s in range(S):
                    tap = xg[:, :, r * dh: r * dh + (Ho - 1) * sh + 1: sh,
                             s * dw: s * dw + (Wo - 1) * sw + 1: sw]
                    # explicit products (no BLAS) so NaN / inf follow IEEE rules exactly
                    prod = tap[:, None, :, :, :] * wg[None, :, :, r, s, None, None]
                    out[:, g * Kg:(g + 1) * Kg] += prod.sum(axis=2)
        if b is not None:
            out += b[None, :, None, None]
    return out[0] if unbatched else out


def conv2d_abs_bound(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                     padding_mode="zeros") -> np.ndarray:
    """sum |x| |w| + |b| per output element: the scale for rounding-error tolerances."""
    ab = None if bias is None else np.abs(np.asarray(bias, dtype=np.float64))
    return conv2d_direct(np.abs(np.asarray(input, dtype=np.float64)),
                         np.abs(np.asarray(weight, dtype=np.float64)), ab, stride, padding,
                         dilation, groups, padding_mode)


# --------------------------------------------------------------------------- comparison

def tolerance(dtype) -> float:
    """Relative (to sum |x||w| + |b|) tolerance for a result of ``dtype``."""
    return 1e-4 if np.dtype(dtype) == np.float32 else 1e-11


def assert_conv_close(got, expected, bound, dtype=None, err_msg=""):
    """``got`` within ``tolerance(dtype) * bound`` of ``expected``; non-finite
    entries of ``expected`` must be matched exactly (NaN where NaN, same-signed inf)."""
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape} {err_msg}"
    dtype = got.dtype if dtype is None else np.dtype(dtype)
    g = got.astype(np.float64)
    finite = np.isfinite(expected)
    nonfinite_bad = ~finite & ~((np.isnan(expected) & np.isnan(g)) | (expected == g))
    if nonfinite_bad.any():
        idx = tuple(np.argwhere(nonfinite_bad)[0])
        raise AssertionError(f"non-finite mismatch at {idx}: got {g[idx]!r}, expected "
                             f"{expected[idx]!r} ({int(nonfinite_bad.sum())} entries) {err_msg}")
    tol = tolerance(dtype) * np.where(finite, bound, 0.0) + 1e-300
    with np.errstate(invalid="ignore"):
        err = np.where(finite, np.abs(g - expected), 0.0)
        bad = finite & ~(err <= tol)
    if bad.any():
        idx = tuple(np.argwhere(bad)[0])
        worst = np.unravel_index(np.argmax(np.where(finite, err / tol, 0)), err.shape)
        raise AssertionError(
            f"{int(bad.sum())} of {bad.size} entries differ beyond tolerance "
            f"{tolerance(dtype)} * sum|x||w|; first at {idx}: got {g[idx]!r}, expected "
            f"{expected[idx]!r}, bound {bound[idx]!r}; worst at {tuple(worst)}: got "
            f"{g[worst]!r}, expected {expected[worst]!r} {err_msg}")


def describe(**kw) -> str:
    """A compact description of a call's arguments for failure messages."""
    parts = []
    for k, v in kw.items():
        if isinstance(v, np.ndarray):
            parts.append(f"{k}=<{v.dtype.str} {v.shape} strides={v.strides}>")
        else:
            parts.append(f"{k}={v!r}")
    return ", ".join(parts)


__all__ = [
    "PADDING_MODES", "NP_PAD_MODE", "as_pair", "effective_kernel", "same_pad_1d",
    "resolve_padding", "output_hw", "output_shape", "result_dtype", "pad_input",
    "dilate_kernel", "contract_violation", "conv2d_reference", "conv2d_direct",
    "conv2d_abs_bound", "tolerance", "assert_conv_close", "describe",
]

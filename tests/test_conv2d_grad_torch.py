"""conv2d_backward and conv_transpose2d against PyTorch (skipped without torch)."""

from __future__ import annotations

import itertools
import warnings
import zlib

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_num_threads(1)

import cyconv  # noqa: E402

TORCH_MODES = ("zeros", "reflect", "replicate", "circular")


def seed_of(*parts) -> int:
    return zlib.crc32(repr(parts).encode())


def torch_grads(x, w, g, stride, padding, dilation, groups, mode):
    """Autograd of torch's conv2d (the non-zero modes padded by F.pad, as nn.Conv2d does)."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.zeros(w.shape[0], dtype=xt.dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # even kernels with "same"
        if mode == "zeros":
            y = F.conv2d(xt, wt, bt, stride, padding, dilation, groups)
        else:
            ph, pw = (padding, padding) if isinstance(padding, int) else padding
            y = F.conv2d(F.pad(xt, (pw, pw, ph, ph), mode=mode), wt, bt, stride, 0, dilation,
                         groups)
    y.backward(torch.tensor(g))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


GRID = [c for c in itertools.product(
    [(3, 3), (1, 1), (2, 5), (4, 2)],          # kernel
    [1, 2, (3, 2)],                            # stride
    [0, 1, (2, 1), "same"],                    # padding
    [1, (1, 2)],                               # dilation
    [1, 2],                                    # groups
    TORCH_MODES,
) if not (c[2] == "same" and (c[1] != 1 or c[5] != "zeros"))]


@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,mode", GRID)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_backward_matches_autograd(kernel, stride, padding, dilation, groups, mode, dtype):
    rng = np.random.default_rng(seed_of(kernel, stride, padding, dilation, groups, mode))
    N, H, W = 2, int(rng.integers(7, 12)), int(rng.integers(7, 12))
    x = rng.standard_normal((N, 4, H, W)).astype(dtype)
    w = rng.standard_normal((6, 4 // groups) + kernel).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    try:
        y = cyconv.conv2d(x, w, padding_mode=mode, **kw)
    except ValueError:
        return                                   # e.g. reflect wider than the image
    g = rng.standard_normal(y.shape).astype(dtype)
    got = cyconv.conv2d_backward(g, x, w, padding_mode=mode, **kw)
    want = torch_grads(x, w, g, stride, padding, dilation, groups, mode)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for name, a, b in zip(("grad_input", "grad_weight", "grad_bias"), got, want):
        assert a.dtype == dtype and a.shape == b.shape, name
        scale = max(1.0, np.abs(b).max())
        assert np.abs(a - b).max() <= tol * scale * 10, name


@pytest.mark.parametrize("stride,padding,output_padding,dilation,groups", [
    c for c in itertools.product([1, 2, 3, (2, 3)], [0, 1, (2, 0)], [0, 1, (2, 1)], [1, 2, (3, 1)],
                                 [1, 2])])
@pytest.mark.parametrize("batched", [True, False])
def test_conv_transpose2d_matches_torch(stride, padding, output_padding, dilation, groups,
                                        batched):
    rng = np.random.default_rng(seed_of(stride, padding, output_padding, dilation, groups))
    x = rng.standard_normal((2, 4, 5, 6))
    w = rng.standard_normal((4, 6 // groups, 3, 2))
    b = rng.standard_normal(6)
    xs = x if batched else x[0]
    args = (stride, padding, output_padding, groups, dilation)
    try:
        want = F.conv_transpose2d(torch.tensor(xs), torch.tensor(w), torch.tensor(b), *args)
    except RuntimeError:
        with pytest.raises(ValueError):
            cyconv.conv_transpose2d(xs, w, b, *args)
        return
    got = cyconv.conv_transpose2d(xs, w, b, *args)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12)
    got32 = cyconv.conv_transpose2d(xs.astype(np.float32), w.astype(np.float32),
                                    b.astype(np.float32), *args)
    want32 = F.conv_transpose2d(*(torch.tensor(a, dtype=torch.float32) for a in (xs, w, b)), *args)
    np.testing.assert_allclose(got32, want32.numpy(), rtol=1e-4, atol=1e-4)

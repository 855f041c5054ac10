"""A small CNN in NumPy, forward and backward by hand, convolutions by cyconv.

    conv 1->16 3x3 pad 1, ReLU, max-pool 2   (8x8 -> 4x4)
    conv 16->32 3x3 pad 1, ReLU, max-pool 2  (4x4 -> 2x2)
    dense 128 -> 10, softmax cross-entropy (mean over the batch)

Trained with SGD + momentum, written exactly as torch.optim.SGD does it
(buf = momentum * buf + grad; param -= lr * buf), so that torch_twin.py,
started from the same weights, follows the same path.
"""

from __future__ import annotations

import numpy as np

import cyconv

SHAPES = {
    "conv1.weight": (16, 1, 3, 3), "conv1.bias": (16,),
    "conv2.weight": (32, 16, 3, 3), "conv2.bias": (32,),
    "fc.weight": (10, 128), "fc.bias": (10,),
}


def init_params(seed: int = 0, dtype=np.float64) -> dict[str, np.ndarray]:
    """PyTorch's default init: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in SHAPES.items():
        layer = name.split(".")[0]
        fan_in = int(np.prod(SHAPES[layer + ".weight"][1:]))
        bound = 1 / np.sqrt(fan_in)
        params[name] = rng.uniform(-bound, bound, shape).astype(dtype)
    return params


# The four corners of each 2x2 window, in window order 0..3 (row-major).
_CORNERS = ((0, 0), (0, 1), (1, 0), (1, 1))


def maxpool2(x):
    """2x2 max-pool, stride 2 (even H and W), and the index (0..3) of each
    window's first maximum. Elementwise on the four strided corner views:
    several times faster than a max over a reshaped window axis."""
    corners = [x[:, :, i::2, j::2] for i, j in _CORNERS]
    pooled = np.maximum(np.maximum(corners[0], corners[1]), np.maximum(corners[2], corners[3]))
    arg = np.full(pooled.shape, 3, np.int8)
    for k in (2, 1, 0):                     # the first maximum wins
        arg[corners[k] == pooled] = k
    return pooled, arg


def maxpool2_backward(grad, arg):
    """Each window's gradient goes to its first maximum."""
    N, C, h, w = grad.shape
    out = np.zeros((N, C, 2 * h, 2 * w), grad.dtype)
    for k, (i, j) in enumerate(_CORNERS):
        out[:, :, i::2, j::2] = np.where(arg == k, grad, 0)
    return out


def loss_and_grads(params, x, labels, workers=1):
    """Mean cross-entropy of the batch and its gradient for every parameter."""
    p = params
    a1 = cyconv.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1, workers=workers)
    r1 = np.maximum(a1, 0)
    m1, arg1 = maxpool2(r1)
    a2 = cyconv.conv2d(m1, p["conv2.weight"], p["conv2.bias"], padding=1, workers=workers)
    r2 = np.maximum(a2, 0)
    m2, arg2 = maxpool2(r2)
    flat = m2.reshape(len(x), -1)
    logits = flat @ p["fc.weight"].T + p["fc.bias"]

    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(x)
    loss = -log_probs[np.arange(n), labels].mean()

    g_logits = np.exp(log_probs)
    g_logits[np.arange(n), labels] -= 1
    g_logits /= n
    grads = {"fc.weight": g_logits.T @ flat, "fc.bias": g_logits.sum(axis=0)}
    g_m2 = (g_logits @ p["fc.weight"]).reshape(m2.shape)
    g_a2 = maxpool2_backward(g_m2, arg2) * (a2 > 0)
    g_m1, grads["conv2.weight"], grads["conv2.bias"] = cyconv.conv2d_backward(
        g_a2, m1, p["conv2.weight"], padding=1, workers=workers)
    g_a1 = maxpool2_backward(g_m1, arg1) * (a1 > 0)
    _, grads["conv1.weight"], grads["conv1.bias"] = cyconv.conv2d_backward(
        g_a1, x, p["conv1.weight"], padding=1, output_mask=(False, True, True), workers=workers)
    return loss, grads


def predict(params, x, workers=1):
    p = params
    h = maxpool2(np.maximum(cyconv.conv2d(x, p["conv1.weight"], p["conv1.bias"], padding=1,
                                          workers=workers), 0))[0]
    h = maxpool2(np.maximum(cyconv.conv2d(h, p["conv2.weight"], p["conv2.bias"], padding=1,
                                          workers=workers), 0))[0]
    return (h.reshape(len(x), -1) @ p["fc.weight"].T + p["fc.bias"]).argmax(axis=1)


class SGD:
    """torch.optim.SGD(params, lr, momentum), step for step."""

    def __init__(self, params, lr: float, momentum: float):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.buffers: dict[str, np.ndarray] = {}

    def step(self, grads) -> None:
        for name, g in grads.items():
            buf = self.buffers.get(name)
            if buf is None:
                buf = self.buffers[name] = g.copy()    # torch: first step, buf = grad
            else:
                buf *= self.momentum
                buf += g
            self.params[name] -= self.lr * buf

#!/usr/bin/env python3
"""Train cnn.py's NumPy CNN on scikit-learn's 8x8 digits; print the held-out accuracy last.

    python examples/numpy_cnn/train.py                    # train, report test accuracy
    python examples/numpy_cnn/train.py --check-torch 50   # also: same losses as PyTorch?

Data: sklearn.datasets.load_digits (1797 images, bundled with scikit-learn),
pixels scaled to [0, 1], a stratified 75/25 train/test split (seed 0).
--check-torch N trains the PyTorch twin (torch_twin.py) from the same
weights on the same batches in float64 and compares the first N losses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# One core: the matrices are tiny, and BLAS threads only add waiting.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cnn  # noqa: E402


def load(dtype):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.images / 16.0).astype(dtype)[:, None]          # (1797, 1, 8, 8)
    y = digits.target.astype(np.int64)
    return train_test_split(x, y, test_size=0.25, stratify=y, random_state=0)


def batches(n: int, batch: int, epochs: int, seed: int):
    """The same shuffled mini-batch indices for the NumPy net and its twin."""
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield order[i:i + batch]


def check_torch(steps: int, args) -> float:
    """Largest relative difference of the first `steps` losses, NumPy vs PyTorch, float64."""
    import torch

    import torch_twin

    torch.set_num_threads(1)
    x_train, _, y_train, _ = load(np.float64)
    params = cnn.init_params(args.seed, np.float64)
    torch_step, _ = torch_twin.make_step(params, args.lr, args.momentum)
    opt = cnn.SGD(params, args.lr, args.momentum)
    worst = 0.0
    for k, idx in enumerate(batches(len(x_train), args.batch, args.epochs, args.seed)):
        if k == steps:
            break
        loss, grads = cnn.loss_and_grads(params, x_train[idx], y_train[idx])
        opt.step(grads)
        ref = torch_step(x_train[idx], y_train[idx])
        worst = max(worst, abs(loss - ref) / abs(ref))
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--check-torch", type=int, default=0, metavar="STEPS",
                    help="compare the first STEPS losses with the PyTorch twin (float64)")
    args = ap.parse_args(argv)
    cnn.cyconv.set_num_threads(1)

    if args.check_torch:
        worst = check_torch(args.check_torch, args)
        print(f"first {args.check_torch} losses, NumPy vs PyTorch (float64): "
              f"max relative difference {worst:.2e}")

    dtype = np.dtype(args.dtype)
    x_train, x_test, y_train, y_test = load(dtype)
    params = cnn.init_params(args.seed, dtype)
    opt = cnn.SGD(params, args.lr, args.momentum)
    t0 = time.process_time()
    losses = []
    for idx in batches(len(x_train), args.batch, args.epochs, args.seed):
        loss, grads = cnn.loss_and_grads(params, x_train[idx], y_train[idx])
        opt.step(grads)
        losses.append(loss)
    seconds = time.process_time() - t0
    train_acc = np.mean(cnn.predict(params, x_train) == y_train)
    test_acc = np.mean(cnn.predict(params, x_test) == y_test)
    print(f"{len(losses)} steps ({args.epochs} epochs of {len(x_train)} images, batch "
          f"{args.batch}, {args.dtype}) in {seconds:.1f} s CPU; last loss {losses[-1]:.4f}, "
          f"train accuracy {train_acc:.4f}")
    print(f"test accuracy {test_acc:.4f} ({len(x_test)} held-out images)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

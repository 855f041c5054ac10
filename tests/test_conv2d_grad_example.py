"""examples/numpy_cnn: a short training run learns, and follows PyTorch step for step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "numpy_cnn"
if not (EXAMPLE / "cnn.py").is_file():
    pytest.skip("examples/numpy_cnn is not next to the tests (installed-wheel run)",
                allow_module_level=True)
sys.path.insert(0, str(EXAMPLE))
import cnn  # noqa: E402


def run_example(*args: str) -> list[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    proc = subprocess.run([sys.executable, str(EXAMPLE / "train.py"), *args], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()


def test_short_training_run_learns():
    lines = run_example("--epochs", "3")
    last = lines[-1].split()
    assert last[:2] == ["test", "accuracy"]
    assert float(last[2]) > 0.85            # chance is 0.1; the full 30 epochs reach > 0.97


def test_same_losses_as_pytorch():
    pytest.importorskip("torch")
    lines = run_example("--epochs", "1", "--check-torch", "40")
    worst = float(lines[0].rsplit(" ", 1)[1])
    assert worst < 1e-10


def test_hand_written_gradients_match_finite_differences():
    """The example's backward pass (pooling, ReLU, dense, cyconv gradients) is right."""
    rng = np.random.default_rng(0)
    params = cnn.init_params(1)
    x = rng.random((5, 1, 8, 8))
    labels = rng.integers(0, 10, 5)
    _, grads = cnn.loss_and_grads(params, x, labels)
    for name, p in params.items():
        d = rng.standard_normal(p.shape)
        h = 1e-6

        def loss_at(t):
            shifted = dict(params, **{name: p + t * d})
            return cnn.loss_and_grads(shifted, x, labels)[0]

        numeric = (loss_at(h) - loss_at(-h)) / (2 * h)
        assert abs(numeric - np.vdot(grads[name], d)) < 1e-6 * max(1, abs(numeric)), name

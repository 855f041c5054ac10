"""The same CNN as cnn.py, written in PyTorch (for the agreement check and the benchmark)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


class Net(torch.nn.Module):
    def __init__(self, params: dict[str, np.ndarray]):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.fc = torch.nn.Linear(128, 10)
        dtype = torch.float64 if next(iter(params.values())).dtype == np.float64 else torch.float32
        self.to(dtype)
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(params[name]))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.flatten(1))


def make_step(params, lr: float, momentum: float):
    """A training step closure (batch, labels) -> loss, as cnn.loss_and_grads + cnn.SGD."""
    net = Net(params)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=momentum)

    def step(x: np.ndarray, labels: np.ndarray) -> float:
        opt.zero_grad()
        loss = F.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(labels))
        loss.backward()
        opt.step()
        return loss.item()

    return step, net

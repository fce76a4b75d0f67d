"""A small deterministic task for the training-loop tests (imported by conftest and test_train)."""

from __future__ import annotations

import torch
from torch import nn

from course_lib.train import Task


class RegressionTask(Task):
    """y = x @ w_true + noise; batches depend only on the step number."""

    def __init__(self, batch_size: int = 16, dim: int = 4, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.w_true = torch.randn(dim, 1, generator=g)
        self.batch_size, self.dim, self.seed = batch_size, dim, seed

    def batch(self, step: int):
        g = torch.Generator().manual_seed(self.seed * 100_003 + step)
        x = torch.randn(self.batch_size, self.dim, generator=g)
        return x, x @ self.w_true + 0.01 * torch.randn(self.batch_size, 1, generator=g)

    def loss(self, model: nn.Module, batch):
        x, y = batch
        # dropout-free model; torch.rand makes the loss depend on the global RNG (checks RNG resume)
        jitter = 1e-3 * torch.rand(()).to(x.device)
        return ((model(x) - y) ** 2).mean() + jitter

    def signature(self):
        return {"batch_size": self.batch_size, "dim": self.dim, "seed": self.seed}

    def evaluate(self, model: nn.Module, step: int = 0):
        g = torch.Generator().manual_seed(10_000)
        x = torch.randn(256, self.dim, generator=g)
        y = x @ self.w_true
        return {"val_mse": float(((model(x) - y) ** 2).mean().detach())}

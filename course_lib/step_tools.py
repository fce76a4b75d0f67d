"""What one optimisation step is given: batches on the device, autocast, loss scaling, gradient sync, clipping."""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from typing import Any

import torch

from . import distributed, runtime

__all__ = ["move_to", "StepTools"]


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) batch to ``device``; non-blocking from pinned memory on CUDA."""
    if isinstance(batch, torch.Tensor):
        if device.type == "cuda" and batch.device.type == "cpu":
            return batch.pin_memory().to(device, non_blocking=True)
        return batch.to(device)
    if isinstance(batch, Mapping):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


@dataclass
class StepTools:
    """What :meth:`Task.train_step` gets from the loop: optimizers, autocast, loss scaling, gradient sync, clipping.

    A step that owns its optimisation calls, per optimizer: ``backward(loss)``, ``sync(params)``,
    ``clip(params, opt)``, ``step(opt)``; then ``update()`` once. With fp16 these scale the loss,
    unscale the gradients before clipping and skip a step whose gradients overflowed
    (``torch.amp.GradScaler``); with bf16 or fp32 they are the plain calls.
    """

    device: torch.device
    optimizers: dict[str, torch.optim.Optimizer]
    grad_clip: float | None = None
    average_gradients: bool = False    # True for a task that owns its step under torchrun (no DDP wrapper)
    precision: str = "fp32"            # "bf16" | "fp16" | "fp32" (runtime.pick_precision)
    scaler: torch.amp.GradScaler | None = None
    skipped: int = 0                   # optimizer steps skipped for a non-finite gradient, in a row
    MAX_SKIPPED = 20                   # more in a row than this: the run has diverged

    def autocast(self) -> ContextManager:
        return runtime.autocast(self.device, self.precision)

    def backward(self, loss: torch.Tensor) -> None:
        """loss.backward(), on the scaled loss under fp16."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def sync(self, parameters) -> None:
        """Average the gradients over processes when the loop has not wrapped the model in DDP; else a no-op."""
        if self.average_gradients:
            distributed.average_gradients(parameters)

    def clip(self, parameters, *optimizers: torch.optim.Optimizer) -> float:
        """Clip the global grad norm to ``grad_clip`` (if set); return the norm before clipping.

        Under fp16 the gradients of ``optimizers`` are unscaled first, so the norm is the true one.
        """
        if self.scaler is not None:
            for optimizer in optimizers:
                self.scaler.unscale_(optimizer)
        params = [p for p in parameters if p.grad is not None]
        if not params:
            return 0.0
        max_norm = self.grad_clip if self.grad_clip is not None else float("inf")
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))

    def step(self, optimizer: torch.optim.Optimizer, grad_norm: float | None = None) -> bool:
        """optimizer.step(), unless the gradients are not finite; True when the step was taken.

        Under fp16 the scaler skips an overflowed step (and lowers its scale). Otherwise a
        non-finite ``grad_norm`` (one inf/NaN gradient, e.g. from a low-precision kernel) skips
        the step instead of writing NaN into every weight; more than ``MAX_SKIPPED`` in a row
        raise ``FloatingPointError``: then the run itself has diverged.
        """
        if self.scaler is not None:
            self.scaler.step(optimizer)
            return True
        if grad_norm is not None and not math.isfinite(grad_norm):
            self.skipped += 1
            if self.skipped > self.MAX_SKIPPED:
                raise FloatingPointError(f"the gradient norm was {grad_norm} for {self.skipped} steps in a row: "
                                         "training diverged. Lower the learning rate, or train in float32 "
                                         "($COURSE_PRECISION=fp32) to see whether low precision is the cause.")
            return False
        self.skipped = 0
        optimizer.step()
        return True

    def update(self) -> None:
        """Once per training step, after every ``step``: adjust the fp16 loss scale."""
        if self.scaler is not None:
            self.scaler.update()

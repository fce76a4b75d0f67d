"""Batches as a pure function of the step number, and inference in batches.

Every chapter draws its training batch for step ``s`` from a generator seeded by
``(seed, s)`` alone (:func:`step_generator`), so a resumed run reads exactly the
batches it would have read, and DDP processes agree on the global batch.
:func:`map_batches` runs a model (or any function of a batch) over a large tensor
in eval mode without gradients, on the model's device, and returns CPU tensors.

Used by every chapter in ``course_lib.chapters`` and by the notebooks' evaluations.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["step_generator", "random_rows", "map_batches"]


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator that depends only on ``(seed, step)``: the randomness of one training batch."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step)


def random_rows(n_rows: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """(batch_size,) int64 row indices in [0, n_rows), drawn with replacement for ``step``."""
    if n_rows < 1:
        raise ValueError(f"need at least one row to sample a batch from, got {n_rows}")
    return torch.randint(0, n_rows, (batch_size,), generator=step_generator(seed, step))


@torch.no_grad()
def map_batches(model: nn.Module, fn: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]],
                x: torch.Tensor, batch_size: int = 256) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """``fn`` over ``x`` in slices of ``batch_size`` on ``model``'s device, in eval mode, results on CPU.

    ``fn`` receives a slice already on the device and returns a tensor (or a tuple of tensors)
    with the batch along dim 0; the slices' results are concatenated along dim 0 (floating results as float32).
    The model's train/eval mode is restored afterwards.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts: list[tuple[torch.Tensor, ...]] = []
    try:
        for start in range(0, len(x), batch_size):
            out = fn(x[start:start + batch_size].to(device))
            parts.append(tuple((t.float() if t.is_floating_point() else t).cpu()
                               for t in (out if isinstance(out, tuple) else (out,))))
    finally:
        model.train(was_training)
    if not parts:
        raise ValueError("map_batches got an empty input")
    joined = tuple(torch.cat(column) for column in zip(*parts))
    return joined if len(joined) > 1 else joined[0]

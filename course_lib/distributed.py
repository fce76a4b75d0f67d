"""Data parallelism under ``torchrun``: what the training loop needs from ``torch.distributed``.

One process per device; each reads the same global batch for a step and keeps its own
equal slice (:func:`shard_batch`). Gradients are averaged over processes, either by
``DistributedDataParallel`` (a task with the default ``train_step``) or by
:func:`average_gradients` (a task that drives its own optimizers, like the GAN), so
N processes train like one process with the global batch. gloo on CPU, nccl on CUDA.
Outside ``torchrun`` every function here is the identity or a no-op.

Used by :func:`course_lib.train.fit`; ``gather_batch`` by SimCLR's loss (chapter 04).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from . import runtime

__all__ = ["distributed_info", "setup", "shard_batch", "gather_batch", "average_gradients", "broadcast_weights",
           "mean_over_processes", "gather_objects", "share_from_rank0"]


def distributed_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the ``torchrun`` environment, (0, 1, 0) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def setup(device: torch.device | str | None) -> tuple[torch.device, int, int]:
    """Join the process group when launched by ``torchrun``; return (device, rank, world_size).

    Under ``torchrun`` on CUDA each process takes the GPU of its local rank.
    """
    rank, world, local_rank = distributed_info()
    want = runtime.pick_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if want.type == "cuda" else "gloo")
    if world > 1 and want.type == "cuda":
        want = torch.device("cuda", local_rank)
    return want, rank, world


def shard_batch(batch: Any, rank: int, world: int) -> Any:
    """This rank's equal slice along dim 0 of every tensor in a (nested) batch."""
    if world == 1:
        return batch
    if isinstance(batch, torch.Tensor):
        if batch.shape[0] % world:
            raise ValueError(f"global batch of {batch.shape[0]} does not split evenly over {world} processes")
        per = batch.shape[0] // world
        return batch[rank * per:(rank + 1) * per]
    if isinstance(batch, Mapping):
        return {k: shard_batch(v, rank, world) for k, v in batch.items()}
    if isinstance(batch, (tuple, list)):
        return type(batch)(shard_batch(v, rank, world) for v in batch)
    return batch


def gather_batch(x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` concatenated along dim 0 in rank order (the global batch); ``x`` itself alone.

    Differentiable: the backward pass sums each rank's gradient back onto its own rows, so a loss
    over the global batch (e.g. NT-Xent with every rank's negatives) trains exactly like one process
    once the parameter gradients are averaged.
    """
    if not _active():
        return x
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x.contiguous()), dim=0)


def average_gradients(parameters: Iterable[nn.Parameter]) -> None:
    """Average ``.grad`` over processes with one all-reduce (what DDP's hooks do); a no-op alone."""
    if not _active():
        return
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset: offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_weights(model: nn.Module) -> None:
    """Start every process from rank 0's weights and buffers (DDP does this for the models it wraps)."""
    if _active():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)


def mean_over_processes(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The mean of ``values`` (float64) over processes, on CPU; ``values`` alone (nccl needs CUDA tensors)."""
    if not _active():
        return values
    values = values.to(device).clone()
    dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return (values / dist.get_world_size()).cpu()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's picklable ``obj`` in rank order; ``[obj]`` alone."""
    if not _active():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def share_from_rank0(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the final metrics); ``obj`` alone."""
    if not _active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]

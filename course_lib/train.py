"""The one training loop of the course.

A chapter supplies a :class:`Task`: how to make the batch for a step, the loss
(or, for a GAN, a whole step that owns its optimizers), and an evaluation. The
loop owns everything else: device moves, bf16 autocast on CUDA, gradient
clipping, the warmup + cosine learning-rate schedule, optional ``torch.compile``
(``$COURSE_COMPILE``), a ``tqdm.auto`` progress bar with the live loss, the
metrics history (JSON), a clear error on a NaN loss, periodic and final checkpoints, exact resume, and DDP under ``torchrun`` (gloo
on CPU, nccl on CUDA; logging and checkpoints on rank 0 only).

Batches are a pure function of the step number (``Task.batch(step)``), which is
what makes resume exact and DDP equal to one process with the same global batch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Mapping

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import checkpoints, runtime

__all__ = ["TrainConfig", "Task", "StepTools", "TrainResult", "fit", "warmup_cosine", "distributed_info",
           "move_to", "shard_batch", "gather_batch", "load_finished"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every chapter (budgets in steps, not seconds)."""

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1          # cosine decays to lr * min_lr_ratio
    grad_clip: float | None = 1.0      # max global grad norm; None disables clipping
    eval_every: int = 0                # 0: evaluate at the end only
    checkpoint_every: int = 0          # 0: checkpoint at the end only
    seed: int = 0
    deterministic: bool = False

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps={self.steps}], got {self.warmup_steps}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over ``warmup`` steps, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


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
    """Every rank's ``x`` concatenated along dim 0 in rank order (the global batch); ``x`` itself outside DDP.

    Differentiable: the backward pass sums each rank's gradient back onto its own rows, so a loss
    over the global batch (e.g. NT-Xent with every rank's negatives) trains exactly like one process
    once DDP averages the parameter gradients.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(x.contiguous()), dim=0)


class StepTools:
    """What a manual ``train_step`` (the GAN) gets from the loop: autocast, gradient sync and clipping."""

    def __init__(self, device: torch.device, grad_clip: float | None, world: int = 1):
        self.device, self.grad_clip, self.world = device, grad_clip, world

    def sync_gradients(self, parameters) -> None:
        """Average the gradients over DDP processes (what DDP's hooks do for a ``loss`` task); no-op alone.

        Call it after each ``backward`` and before clipping and ``opt.step()``.
        """
        if self.world == 1:
            return
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])             # one all-reduce for all tensors
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset: offset + g.numel()].view_as(g))
            offset += g.numel()

    def autocast(self) -> ContextManager:
        return runtime.autocast(self.device)

    def clip(self, parameters) -> float:
        """Clip the global grad norm to ``grad_clip`` (if set); return the norm before clipping."""
        params = [p for p in parameters if p.grad is not None]
        if not params:
            return 0.0
        max_norm = self.grad_clip if self.grad_clip is not None else float("inf")
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


class Task:
    """What a chapter plugs into :func:`fit`. Override ``batch``, ``loss`` and ``evaluate``.

    A task with ``manual_step = True`` overrides ``train_step`` instead of ``loss``
    and drives its own optimizers (the GAN's D/G alternation); under DDP it calls
    ``tools.sync_gradients`` after each backward.
    """

    manual_step: bool = False

    def batch(self, step: int) -> Any:
        """The global batch for ``step``, on CPU; must depend only on ``step`` (and fixed seeds)."""
        raise NotImplementedError

    def items(self, batch: Any) -> int:
        """How many examples (images, tokens) this batch holds, for throughput."""
        first = batch if isinstance(batch, torch.Tensor) else next(iter(
            batch.values() if isinstance(batch, Mapping) else batch))
        return int(first.shape[0])

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor | tuple[torch.Tensor, dict[str, float]]:
        """Scalar training loss for this (rank-local) batch, optionally with extra scalars to log."""
        raise NotImplementedError

    def train_step(self, model: nn.Module, batch: Any, optimizers: dict[str, torch.optim.Optimizer],
                   tools: StepTools) -> dict[str, float]:
        """A whole optimisation step (for ``manual_step`` tasks); returns scalars incl. ``loss``."""
        raise NotImplementedError

    def optimizers(self, model: nn.Module, cfg: TrainConfig, device: torch.device
                   ) -> dict[str, torch.optim.Optimizer]:
        """Default: one AdamW over all parameters (fused on CUDA)."""
        return {"model": torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                           weight_decay=cfg.weight_decay, fused=device.type == "cuda")}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """Validation metrics for the (unwrapped) model; called in eval mode on rank 0."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Task state that must survive a resume (e.g. a carried hidden state)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


@dataclass
class TrainResult:
    history: dict[str, list[dict[str, float]]]
    final: dict[str, float]
    steps: int
    wall_s: float
    items_per_s: float
    stopped_early: bool = False
    checkpoint: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def distributed_info() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the ``torchrun`` environment, (0, 1, 0) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))


def _reduce_mean(value: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        value = value.detach().clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= world
    return value


def fit(model: nn.Module, task: Task, cfg: TrainConfig, *, device: torch.device | str | None = None,
        out_dir: str | os.PathLike | None = None, resume: bool = False, progress: bool = True,
        run_config: Any = None, profile: str | None = None, max_seconds: float | None = None,
        desc: str = "train", on_eval: Callable[[int, dict[str, float]], None] | None = None,
        on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train ``model`` on ``task`` for ``cfg.steps`` steps; see the module docstring.

    ``out_dir`` receives ``history.json`` and ``checkpoint.pt`` (rank 0 only).
    ``resume=True`` continues from ``out_dir/checkpoint.pt`` if it exists and was made
    by the same ``run_config`` (default: ``cfg``). ``max_seconds`` stops early at a wall-time cap.
    ``on_eval(step, metrics)`` runs after each evaluation, ``on_step(step)`` after each optimizer
    step (e.g. ``torch.profiler.profile.step``).
    """
    rank, world, local_rank = distributed_info()
    if world > 1 and not dist.is_initialized():
        want = runtime.pick_device(device)
        dist.init_process_group("nccl" if want.type == "cuda" else "gloo")
    if world > 1 and runtime.pick_device(device).type == "cuda":
        device = torch.device("cuda", local_rank)
    device = runtime.pick_device(device)
    runtime.configure_device(device)
    # each process draws its own training randomness (augmentations, masks, dropout); the weights are
    # made before fit and synchronised from rank 0, and rank 0 alone is exactly a single process
    runtime.seed_everything(cfg.seed + rank, cfg.deterministic)
    run_config = cfg if run_config is None else run_config
    out = Path(out_dir) if out_dir is not None else None
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    is_main = rank == 0

    model.to(device)
    optimizers = task.optimizers(model, cfg, device)
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: warmup_cosine(s, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio))
        for name, opt in optimizers.items()}
    history: dict[str, list[dict[str, float]]] = {"train": [], "eval": []}
    start = 0

    if resume and ckpt_path is not None and ckpt_path.exists():
        state = checkpoints.load_checkpoint(ckpt_path, map_location=device)
        ok, reason = checkpoints.matches(state, run_config)
        if not ok:
            raise ValueError(f"cannot resume from {ckpt_path}: {reason}. Use a fresh --out folder, "
                             f"or the same settings that made this checkpoint.")
        model.load_state_dict(state["model"])
        for name, opt in optimizers.items():
            opt.load_state_dict(state["optimizers"][name])
        for name, sch in schedulers.items():
            sch.load_state_dict(state["schedulers"][name])
        per_rank = state["ranks"][rank] if rank < len(state["ranks"]) else state["ranks"][0]
        task.load_state_dict(per_rank["task"])
        _set_rng_state(per_rank["rng"])
        history, start = state["history"], int(state["step"])
        if is_main and progress:
            print(f"resuming from {ckpt_path} at step {start}")

    train_model: nn.Module = model
    if world > 1:
        if device.type == "cuda":                       # BatchNorm statistics over the global batch, as in one
            nn.SyncBatchNorm.convert_sync_batchnorm(model)  # process (replaces BN children in place; CUDA only)
        if task.manual_step:                            # the task syncs its gradients (StepTools.sync_gradients);
            for tensor in model.state_dict().values():  # start every process from rank 0's weights, as DDP does
                dist.broadcast(tensor, src=0)
        else:
            train_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
    backend = runtime.compile_backend()                 # $COURSE_COMPILE / --compile; eager by default
    if backend is not None:
        train_model = torch.compile(train_model, backend=backend)   # checkpoints still save `model`
    tools = StepTools(device, cfg.grad_clip, world)

    def save(step: int) -> Path | None:
        ranks = [{"task": task.state_dict(), "rng": _rng_state()}]
        if world > 1:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, ranks[0])
            ranks = gathered
        if not is_main or ckpt_path is None:
            return None
        last_eval = history["eval"][-1] if history["eval"] else {}
        return checkpoints.save_checkpoint(ckpt_path, {
            "step": step, "model": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
            "ranks": ranks, "history": history,
            "config": dataclasses.asdict(run_config) if dataclasses.is_dataclass(run_config) else run_config,
            "provenance": checkpoints.make_provenance(run_config, profile, last_eval),
        })

    def evaluate(step: int) -> dict[str, float]:
        if not is_main:
            return {}
        model.eval()
        with torch.no_grad(), runtime.autocast(device):
            metrics = {k: float(v) for k, v in task.evaluate(model).items()}
        model.train()
        history["eval"].append({"step": step, "time_s": round(time.perf_counter() - t0, 3), **metrics})
        if on_eval is not None:
            on_eval(step, metrics)
        return metrics

    def write_history() -> None:
        if is_main and out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "history.json").write_text(json.dumps(history))

    from tqdm.auto import tqdm
    show = progress and is_main and os.environ.get("TQDM_DISABLE", "") not in ("1", "true", "True")
    bar = tqdm(total=cfg.steps, initial=start, desc=desc, disable=not show, dynamic_ncols=True, leave=True)
    model.train()
    items, t0, stopped_early, step = 0, time.perf_counter(), False, start
    final: dict[str, float] = {}
    try:
        for step in range(start, cfg.steps):
            batch = move_to(shard_batch(task.batch(step), rank, world), device)
            items += task.items(batch) * world
            if task.manual_step:
                scalars = task.train_step(train_model, batch, optimizers, tools)
                loss_value = torch.as_tensor(scalars["loss"], dtype=torch.float32)
            else:
                with runtime.autocast(device):
                    out_loss = task.loss(train_model, batch)
                loss, scalars = out_loss if isinstance(out_loss, tuple) else (out_loss, {})
                if not torch.isfinite(loss.detach()):
                    raise FloatingPointError(
                        f"loss is {loss.item()} at step {step}: training diverged. Lower the learning rate "
                        f"(now {cfg.lr}), keep grad_clip on, and check the inputs for NaN/inf.")
                for opt in optimizers.values():
                    opt.zero_grad(set_to_none=True)
                loss.backward()
                scalars = {**scalars, "grad_norm": tools.clip(model.parameters())}
                for opt in optimizers.values():
                    opt.step()
                loss_value = loss.detach().float()
            if not math.isfinite(float(loss_value)):
                raise FloatingPointError(f"loss is {float(loss_value)} at step {step}: training diverged; "
                                         f"lower the learning rate (now {cfg.lr}) or check the inputs.")
            lr = optimizers[next(iter(optimizers))].param_groups[0]["lr"]
            for sch in schedulers.values():
                sch.step()
            names = [k for k in scalars if k != "loss"]     # logged values: means over every process
            values = torch.tensor([float(loss_value)] + [float(scalars[k]) for k in names], dtype=torch.float64)
            if world > 1:                                    # float64 on the device: nccl needs CUDA tensors
                values = _reduce_mean(values.to(device), world).cpu()
            values = values.tolist()
            mean_loss = values[0]
            record = {"step": step + 1, "loss": mean_loss, "lr": lr, **dict(zip(names, values[1:]))}
            history["train"].append(record)
            bar.update(1)
            if on_step is not None:
                on_step(step + 1)
            if show and (step % 10 == 0 or step + 1 == cfg.steps):
                bar.set_postfix(loss=f"{mean_loss:.4f}")
            done = step + 1
            if cfg.eval_every and done % cfg.eval_every == 0 and done != cfg.steps:
                evaluate(done)
                write_history()
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done != cfg.steps:
                save(done)
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                stopped_early = done < cfg.steps
                break
        else:
            done = cfg.steps if cfg.steps > start else start
        wall = time.perf_counter() - t0
        final = evaluate(done)
        if world > 1:                                   # every rank returns rank 0's metrics
            shared = [final]
            dist.broadcast_object_list(shared, src=0)
            final = shared[0]
        write_history()
        path = save(done)
    finally:
        bar.close()
    return TrainResult(history=history, final=final, steps=done, wall_s=wall,
                       items_per_s=items / wall if wall > 0 else 0.0, stopped_early=stopped_early,
                       checkpoint=path)


def load_finished(model: nn.Module, task: Task, cfg: TrainConfig, ckpt_dir: str | Path, run_config: Any,
                  device: torch.device | str | None = None) -> tuple[TrainResult | None, str]:
    """A finished run from ``ckpt_dir/checkpoint.pt``, or ``(None, why not)``.

    Used when a notebook can start from a trained model (the classroom bundle, or an
    earlier run): the checkpoint must match ``run_config`` (provenance) and have
    reached ``cfg.steps``. The weights go into ``model``, the history is the stored
    one, and the final metrics are measured again now with ``task.evaluate``.
    ``wall_s`` / ``items_per_s`` are those of the run that made the checkpoint.
    """
    path = Path(ckpt_dir) / "checkpoint.pt"
    if not path.exists():
        return None, f"no checkpoint in {path.parent.name}/"
    try:
        state = checkpoints.load_checkpoint(path)
    except ValueError as err:
        return None, str(err)
    ok, reason = checkpoints.matches(state, run_config)
    if not ok:
        return None, reason
    step = int(state.get("step", -1))
    if step < cfg.steps:
        return None, f"checkpoint stopped at step {step} of {cfg.steps}"
    dev = runtime.pick_device(device)
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    with torch.no_grad(), runtime.autocast(dev):
        final = {k: float(v) for k, v in task.evaluate(model).items()}
    model.train()
    history = state["history"]
    wall = float(history["eval"][-1]["time_s"]) if history.get("eval") else 0.0
    items = task.items(task.batch(0)) * step
    return (TrainResult(history=history, final=final, steps=step, wall_s=wall,
                        items_per_s=items / wall if wall > 0 else 0.0, checkpoint=path, extra={"loaded": True}),
            f"loaded a finished checkpoint ({reason})")

"""The one training loop of the course.

A chapter supplies a :class:`Task`: the batch for a step, the loss, an evaluation
and what its data depends on (:meth:`Task.signature`). :func:`fit` owns the rest:
device, mixed precision that fits it (bf16 autocast, or fp16 autocast with a gradient
scaler on a GPU without bf16; :func:`course_lib.runtime.pick_precision`), the warmup + cosine
learning-rate schedule, gradient clipping, the history, a ``tqdm.auto`` progress bar, a clear error on a NaN loss,
atomic checkpoints and exact resume, optional ``torch.compile``, and data
parallelism under ``torchrun`` (:mod:`course_lib.distributed`).

One hook, :meth:`Task.train_step`, is the optimisation step. Its default is
loss -> backward -> sync -> clip -> step; a task that owns several optimizers (the
GAN's D and G) overrides it and gets the same tools (:class:`StepTools`).

Batches are a pure function of the step number, which is what makes resume exact
and N processes equal to one process with the same global batch.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from contextlib import AbstractContextManager as ContextManager
from typing import Any
from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn

from . import checkpoints, distributed, runtime
from .config_checks import TIME_SCHEDULES, check_config

ALWAYS_TRAIN_ENV = "COURSE_ALWAYS_TRAIN"

__all__ = ["TrainConfig", "Task", "StepTools", "TrainResult", "TrainSetup", "fit", "load_finished", "fit_or_load",
           "writable_folder", "user_fallback_folder", "warmup_cosine", "warmup_cosine_timed",
           "warmup_stable_decay_timed", "move_to", "TIME_SCHEDULES"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every chapter.

    The budget is ``steps``; or, with ``seconds`` set, also a time budget: the schedule's progress is
    the elapsed training time over ``seconds`` (or the step progress, when that is further along) and
    training ends when either is spent, so a short budget still ends its decay at the minimum rate.
    """

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0              # linear warmup; longer than ``steps`` means warm up over all of them
    min_lr_ratio: float = 0.1          # cosine decays to lr * min_lr_ratio
    grad_clip: float | None = 1.0      # max global grad norm; None disables clipping
    eval_every: int = 0                # 0: evaluate at the end only
    checkpoint_every: int = 0          # 0: checkpoint at the end only
    seed: int = 0
    deterministic: bool = False
    seconds: float | None = None       # time budget (see above); None: the budget is ``steps``
    time_schedule: str = "wsd"         # a time budget's shape: "wsd" (warm-up, stable, decay) or "cosine"
    warmup_frac: float = 0.05          # wsd: the warm-up ends by this fraction of the seconds (or warmup_steps)
    decay_frac: float = 0.3            # wsd: the rate decays over this last fraction of the budget

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.seconds is not None and not self.seconds > 0:
            raise ValueError(f"seconds must be > 0 or None, got {self.seconds}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip}")
        check_config(self)                 # finite rates, 0 <= min_lr_ratio <= 1, time_schedule, fractions, ...


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over ``min(warmup, total)`` steps, then cosine down to ``min_ratio``."""
    warmup = min(warmup, total)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine_timed(step: int, total: int, elapsed: float, budget: float, warmup: int,
                        min_ratio: float) -> float:
    """LR multiplier of a time budget: linear warmup over ``warmup`` steps, then a cosine whose progress is
    the larger of elapsed / budget seconds and the step progress, so it reaches ``min_ratio`` at whichever
    budget runs out first: min((s + 1) / warmup, r + (1 - r) * (1 + cos(pi * p)) / 2).
    """
    warm = (step + 1) / warmup if warmup > 0 and step < warmup else 1.0
    by_steps = (step - min(warmup, total)) / max(1, total - min(warmup, total))
    progress = min(1.0, max(0.0, elapsed / budget, by_steps))
    return min(warm, min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def warmup_stable_decay_timed(step: int, total: int, elapsed: float, budget: float, warmup: int, min_ratio: float,
                              warmup_frac: float = 0.05, decay_frac: float = 0.3) -> float:
    """LR multiplier of a time budget, good at any length: warm up, hold the peak, decay at the end.

    Warm-up is linear and ends at ``warmup`` steps or ``warmup_frac`` of the budget's seconds, whichever
    comes first (a short budget spends little of itself warming up); the peak is held; over the last
    ``decay_frac`` of the budget the rate falls linearly to ``min_ratio``. Progress p is the larger of
    elapsed / budget and step / total, so a run ends decayed whichever budget runs out first:
    min(warm, 1 - (1 - r) * clip((p - (1 - d)) / d, 0, 1)) (Hägele et al. 2024, "Scaling laws and
    compute-optimal training beyond fixed training durations").
    """
    warm = 1.0
    if warmup > 0 and step < warmup:
        warm = min(1.0, max((step + 1) / warmup, elapsed / (warmup_frac * budget)))
    progress = min(1.0, max(0.0, elapsed / budget, step / max(1, total)))
    into_decay = min(1.0, max(0.0, (progress - (1.0 - decay_frac)) / decay_frac))
    return min(warm, 1.0 - (1.0 - min_ratio) * into_decay)


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


class Task:
    """What a chapter plugs into :func:`fit`. Override ``batch``, ``loss``, ``evaluate`` and ``signature``."""

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

    def train_step(self, model: nn.Module, batch: Any, tools: StepTools) -> dict[str, float | torch.Tensor]:
        """One optimisation step; returns the scalars to log, ``loss`` first.

        Default: loss -> backward -> sync -> clip -> step with every optimizer (through ``tools``,
        which scales the loss under fp16).
        """
        with tools.autocast():
            out = self.loss(model, batch)
        loss, scalars = out if isinstance(out, tuple) else (out, {})
        opts = list(tools.optimizers.values())
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        tools.backward(loss)
        tools.sync(model.parameters())
        grad_norm = tools.clip(model.parameters(), *opts)
        taken = [tools.step(opt, grad_norm) for opt in opts]
        tools.update()
        return {"loss": loss.detach(), **scalars, "grad_norm": grad_norm, "skipped": float(not all(taken))}

    def optimizers(self, model: nn.Module, cfg: TrainConfig, device: torch.device
                   ) -> dict[str, torch.optim.Optimizer]:
        """Default: one AdamW over all parameters (fused on CUDA)."""
        return {"model": torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas,
                                           weight_decay=cfg.weight_decay, fused=device.type == "cuda")}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        """Validation metrics after ``step`` steps, for the (unwrapped) model in eval mode, on rank 0."""
        return {}

    def signature(self) -> Any:
        """What this task's batches and targets depend on (a dataclass or JSON-able dict), for provenance."""
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
    loaded: bool = False                 # True when the weights came from a finished checkpoint
    precision: str = "fp32"              # what the run trained in: "bf16" | "fp16" | "fp32"


@dataclass
class TrainSetup:
    """What :func:`fit` trains: a model, its task and its settings (a chapter's ``build(cfg)`` returns one)."""

    model: nn.Module
    task: Task
    train: TrainConfig

    def fingerprint(self) -> dict[str, Any]:
        """What the trained weights depend on (:func:`course_lib.checkpoints.fingerprint`)."""
        return checkpoints.fingerprint(self.model, self.task, self.train)


def _owns_step(task: Task) -> bool:
    return type(task).train_step is not Task.train_step


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


def _step_record(done: int, lr: float, scalars: Mapping[str, Any], due: bool, stop: bool, elapsed: float,
                 device: torch.device) -> tuple[dict[str, float], bool, bool]:
    """(history record, checkpoint now?, stop now?) for a finished step, agreed by every process.

    Logged values are means over the processes; so are the two flags, which every process must
    agree on: rank 0's clock decides a periodic checkpoint, a signal to any process stops them all.
    So is the elapsed training time (``record["time_s"]``), which a time budget's schedule reads:
    every process then sets the same learning rate and stops at the same step.
    A non-finite loss stops training with the step and the likely cause.
    """
    names = list(scalars)
    values = distributed.mean_over_processes(torch.tensor(
        [float(scalars[k]) for k in names] + [elapsed, float(due), float(stop)], dtype=torch.float64),
        device).tolist()
    stop_now, save_now, elapsed = values.pop() > 0, values.pop() > 0, values.pop()
    record = {"step": done, **dict(zip(names, values)), "lr": lr, "time_s": round(elapsed, 3)}
    if not math.isfinite(record["loss"]):
        raise FloatingPointError(f"loss is {record['loss']} at step {done - 1}: training diverged. Lower the "
                                 f"learning rate (now {lr:g}), keep grad_clip on, and check the inputs for NaN/inf.")
    return record, save_now, stop_now


def _checkpoint(step: int, model: nn.Module, optimizers: Mapping[str, torch.optim.Optimizer],
                schedulers: Mapping[str, Any], ranks: list[dict[str, Any]], history: dict[str, list],
                identity: dict[str, Any], finished: bool, elapsed: float) -> dict[str, Any]:
    """Everything an exact resume needs, with the run's fingerprint and provenance.

    ``finished``: the budget is spent (all steps, or a time budget's seconds); ``elapsed``: the
    training seconds so far, from which a time-budgeted run resumes its schedule.
    """
    return {"step": step, "finished": finished, "elapsed_s": elapsed, "model": model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in schedulers.items()},
            "ranks": ranks, "history": history, "config": identity,
            "provenance": checkpoints.make_provenance(identity, history["eval"][-1] if history["eval"] else {})}


def _restore(status: checkpoints.CheckpointStatus, model: nn.Module, task: Task,
             optimizers: Mapping[str, torch.optim.Optimizer], schedulers: Mapping[str, Any],
             rank: int) -> tuple[dict[str, list], int, float]:
    """Load a resumable checkpoint into the run's objects; return (history, step to continue from, seconds so far)."""
    state = status.state
    model.load_state_dict(state["model"])
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    for name, sch in schedulers.items():
        sch.load_state_dict(state["schedulers"][name])
    per_rank = state["ranks"][rank] if rank < len(state["ranks"]) else state["ranks"][0]
    task.load_state_dict(per_rank["task"])
    _set_rng_state(per_rank["rng"])
    return state["history"], status.step, float(state.get("elapsed_s", 0.0))


def _parallel(model: nn.Module, task: Task, device: torch.device, world: int, backend: str | None) -> nn.Module:
    """The module the step runs: DDP-wrapped for a default step under torchrun, compiled if asked."""
    if world > 1:
        if device.type == "cuda":                        # BatchNorm statistics over the global batch
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if _owns_step(task):                             # the task averages its own gradients
            distributed.broadcast_weights(model)
        else:
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(model, backend=backend) if backend else model


class _StopRequests:
    """Ctrl-C (SIGINT) or SIGTERM while training: finish the step, checkpoint, then stop. A second Ctrl-C stops at once.

    Handlers are installed only in the main thread (Python delivers signals there) and restored afterwards.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopRequests:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt("interrupted twice: stopped at once, without a checkpoint of this step")
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def fit(model: nn.Module, task: Task, cfg: TrainConfig, *, device: torch.device | str | None = None,
        out_dir: str | Path | None = None, resume: bool = False, progress: bool = True, desc: str = "train",
        max_seconds: float | None = None, compile_backend: str | None = None, checkpoint_seconds: float | None = 60.0,
        on_eval: Callable[[int, dict[str, float]], None] | None = None,
        on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Train ``model`` on ``task`` for ``cfg.steps`` steps; see the module docstring.

    ``out_dir`` receives ``history.json`` and ``checkpoint.pt`` (rank 0 only): at the end, every
    ``cfg.checkpoint_every`` steps and every ``checkpoint_seconds`` of training, and when Ctrl-C or
    SIGTERM stops the run (after the current step; then ``KeyboardInterrupt`` is raised). ``resume=True``
    continues from its checkpoint when :func:`checkpoints.inspect` finds one of this run.
    ``max_seconds`` stops early at a wall-time cap (the schedule is cut short: to plan for a time
    budget, set ``cfg.seconds`` instead); ``compile_backend`` trains through
    ``torch.compile`` (see :func:`runtime.compile_backend`). ``on_eval(step, metrics)`` runs after
    each evaluation, ``on_step(step)`` after each optimizer step (e.g. a profiler's ``step``).
    """
    device, rank, world = distributed.setup(device)
    runtime.configure_device(device)
    precision = runtime.pick_precision(device)          # $COURSE_PRECISION, else what fits the device
    # each process draws its own training randomness (augmentations, masks, dropout); the weights are
    # made before fit and synchronised from rank 0, and rank 0 alone is exactly a single process
    runtime.seed_everything(cfg.seed + rank, cfg.deterministic)
    backend = runtime.compile_backend(compile_backend) if compile_backend else None
    is_main = rank == 0
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and is_main and not writable_folder(out):     # before any work, not at the first save
        raise OSError(errno.EACCES, f"cannot write checkpoints to {out} (read-only, or not a folder); choose "
                                    f"another output folder", str(out))
    model.to(device)
    identity = checkpoints.fingerprint(model, task, cfg)
    optimizers = task.optimizers(model, cfg, device)
    clock = {"elapsed": 0.0}        # training seconds, agreed by every process after each step

    def lr_factor(s: int) -> float:
        if cfg.seconds is None:
            return warmup_cosine(s, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)
        if cfg.time_schedule == "cosine":
            return warmup_cosine_timed(s, cfg.steps, clock["elapsed"], cfg.seconds, cfg.warmup_steps,
                                       cfg.min_lr_ratio)
        return warmup_stable_decay_timed(s, cfg.steps, clock["elapsed"], cfg.seconds, cfg.warmup_steps,
                                         cfg.min_lr_ratio, cfg.warmup_frac, cfg.decay_frac)

    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, lr_factor) for name, opt in optimizers.items()}
    history: dict[str, list[dict[str, float]]] = {"train": [], "eval": []}
    start, resumed_scaler = 0, None

    if resume and out is not None:
        status = checkpoints.inspect(out, identity, cfg.steps, map_location=device)
        if status.kind != "missing" and not status.resumable:
            raise ValueError(f"cannot resume from {status.path}: {status.reason}. Use a fresh --out folder, "
                             f"or the same settings that made this checkpoint.")
        if status.resumable:
            history, start, clock["elapsed"] = _restore(status, model, task, optimizers, schedulers, rank)
            resumed_scaler = status.state.get("scaler")
        if is_main:
            print(f"resuming from {status.path} at step {start}" if status.resumable
                  else f"nothing to resume: no checkpoint in {out}; training from step 0", file=sys.stderr)

    train_model = _parallel(model, task, device, world, backend)
    tools = StepTools(device, optimizers, cfg.grad_clip, average_gradients=world > 1 and _owns_step(task),
                      precision=precision, scaler=runtime.grad_scaler(device, precision))
    if tools.scaler is not None and resumed_scaler is not None:
        tools.scaler.load_state_dict(resumed_scaler)
    t0, before = time.perf_counter(), clock["elapsed"]     # a resumed run's clock continues from its checkpoint

    def elapsed() -> float:
        return before + time.perf_counter() - t0

    def evaluate(step: int) -> dict[str, float]:
        if not is_main:
            return {}
        model.eval()
        with torch.no_grad(), runtime.autocast(device, precision):
            metrics = {k: float(v) for k, v in task.evaluate(model, step).items()}
        model.train()
        history["eval"].append({"step": step, "time_s": round(elapsed(), 3), **metrics})
        if on_eval is not None:
            on_eval(step, metrics)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / "history.json").write_text(json.dumps(history))
        return metrics

    def save(step: int, finished: bool) -> Path | None:
        ranks = distributed.gather_objects({"task": task.state_dict(), "rng": _rng_state()})
        if not is_main or out is None:
            return None
        state = _checkpoint(step, model, optimizers, schedulers, ranks, history, identity, finished, clock["elapsed"])
        if tools.scaler is not None:
            state["scaler"] = tools.scaler.state_dict()
        return checkpoints.save_checkpoint(out / checkpoints.CHECKPOINT_NAME, state)

    from tqdm.auto import tqdm                           # $TQDM_DISABLE still turns the bar off
    timed = cfg.seconds is not None                      # a time budget: the bar counts steps without a total
    bar = tqdm(total=None if timed else cfg.steps, initial=start, desc=desc, dynamic_ncols=True, leave=True,
               **({} if progress and is_main else {"disable": True}))
    model.train()
    items, done, finished, stopped_early, last_save = 0, start, False, False, time.perf_counter()
    sharing = device.type == "cpu"                       # share the cores with other course runs (runtime.cpu_budget)
    threads_checked = time.perf_counter()
    try:
        with _StopRequests() as stops, runtime.training_slot() if sharing else contextlib.nullcontext():
            if sharing:
                runtime.configure_threads()
            for step in range(start, cfg.steps):
                if sharing and time.perf_counter() - threads_checked > 2.0:
                    runtime.configure_threads()             # another run started or stopped: take a fair share
                    threads_checked = time.perf_counter()
                if timed and clock["elapsed"] >= cfg.seconds:     # resumed after the budget was spent
                    break
                batch = move_to(distributed.shard_batch(task.batch(step), rank, world), device)
                items += task.items(batch) * world
                lr = next(iter(optimizers.values())).param_groups[0]["lr"]
                scalars = task.train_step(train_model, batch, tools)
                done = step + 1
                by_steps = bool(cfg.checkpoint_every) and done % cfg.checkpoint_every == 0
                by_time = checkpoint_seconds is not None and time.perf_counter() - last_save >= checkpoint_seconds
                due = out is not None and is_main and (by_steps or by_time)
                record, save_now, stop_now = _step_record(done, lr, scalars, due, stops.signal is not None,
                                                          elapsed(), device)
                clock["elapsed"] = record["time_s"]
                for sch in schedulers.values():          # the next step's rate (a time budget reads the clock)
                    sch.step()
                finished = done == cfg.steps or (timed and clock["elapsed"] >= cfg.seconds)
                history["train"].append(record)
                bar.update(1)
                if done % 10 == 1 or finished:
                    bar.set_postfix(loss=f"{record['loss']:.4f}", refresh=False)
                if on_step is not None:
                    on_step(done)
                if cfg.eval_every and done % cfg.eval_every == 0 and not finished:
                    evaluate(done)
                if (save_now or stop_now) and not finished:
                    save(done, finished=False)
                    last_save = time.perf_counter()
                if stop_now and not finished:
                    where = f"checkpoint saved in {out}: resume it (--resume)" if out else "no checkpoint folder"
                    raise KeyboardInterrupt(f"stopped by {signal.Signals(stops.signal).name} after step {done} "
                                            f"of {cfg.steps}; {where}")
                if finished:
                    break
                if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
                    stopped_early = True
                    break
            else:
                finished = True
        wall = time.perf_counter() - t0
        finished = finished or (timed and clock["elapsed"] >= cfg.seconds)
        final = distributed.share_from_rank0(evaluate(done))   # every rank returns rank 0's metrics
        path = save(done, finished=finished)
    finally:
        bar.close()
    return TrainResult(history=history, final=final, steps=done, wall_s=wall,
                       items_per_s=items / wall if wall > 0 else 0.0, stopped_early=stopped_early,
                       checkpoint=path, precision=precision)


def writable_folder(folder: str | Path) -> bool:
    """Whether ``folder`` exists or can be made, and a file can be written in it (checked before any training)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True


def user_fallback_folder(folder: str | Path) -> Path:
    """Where :func:`fit_or_load` trains when ``folder`` is read-only: ``~/.cache/course_lib/checkpoints/NAME``."""
    return Path.home() / ".cache" / "course_lib" / "checkpoints" / Path(folder).name


def load_finished(model: nn.Module, task: Task, cfg: TrainConfig, folder: str | Path,
                  device: torch.device | str | None = None) -> tuple[TrainResult | None, checkpoints.CheckpointStatus]:
    """The finished run of this (model, task, cfg) in ``folder``, or None; with the checkpoint's status.

    The weights go into ``model``; the history is the stored one and the final metrics are
    measured again now with ``task.evaluate``. ``wall_s`` / ``items_per_s`` are those of the run
    that made the checkpoint.
    """
    status = checkpoints.inspect(folder, checkpoints.fingerprint(model, task, cfg), cfg.steps)
    if status.kind != "finished":
        return None, status
    dev = runtime.pick_device(device)
    model.load_state_dict(status.state["model"])
    model.to(dev).eval()
    with torch.no_grad(), runtime.autocast(dev):
        final = {k: float(v) for k, v in task.evaluate(model, status.step).items()}
    model.train()
    history = status.state["history"]
    wall = float(history["eval"][-1]["time_s"]) if history.get("eval") else 0.0
    items = task.items(task.batch(0)) * status.step
    return (TrainResult(history=history, final=final, steps=status.step, wall_s=wall,
                        items_per_s=items / wall if wall > 0 else 0.0, checkpoint=status.path, loaded=True), status)


_TRAINED_HERE: dict[Path, tuple[int, int] | None] = {}   # checkpoint -> (mtime_ns, size) when this process wrote it


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a file, None if it is missing: tells a checkpoint this process wrote from a later one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def fit_or_load(model: nn.Module, task: Task, cfg: TrainConfig, folder: str | Path | None, *,
                device: torch.device | str | None = None, progress: bool = True, desc: str = "train"
                ) -> tuple[TrainResult, str]:
    """``(result, message)``: the finished run in ``folder`` if there is one, else train (resuming an interrupted one).

    Training leaves its checkpoint in ``folder``, so the classroom bundle and a notebook's second
    run start from the trained model; a stale or unreadable checkpoint is replaced. With
    ``$COURSE_ALWAYS_TRAIN=1`` (the test command sets it) no earlier run's checkpoint is loaded or resumed:
    the run trains from step 0, so a notebook run as a test exercises the training code of the course_lib it
    imports; a checkpoint this same process trained (a notebook's second call for one model) is loaded.
    """
    if folder is None:
        return fit(model, task, cfg, device=device, progress=progress, desc=desc), "trained (no checkpoint folder)"
    note = ""
    if not writable_folder(folder):                      # a teacher's read-only shared folder
        shared, status = load_finished(model, task, cfg, folder, device)
        if shared is not None and os.environ.get(ALWAYS_TRAIN_ENV) != "1":
            return shared, f"loaded a finished checkpoint ({status.reason})"
        fallback = user_fallback_folder(folder)
        if not writable_folder(fallback):
            raise OSError(errno.EACCES, f"neither the checkpoint folder {folder} nor the fallback {fallback} can be "
                                        f"written; set COURSE_DATA_DIR to a writable folder", str(folder))
        note = f"; {Path(folder).name}/ is read-only, so this run's checkpoint is in {fallback}"
        folder = fallback
    if os.environ.get(ALWAYS_TRAIN_ENV) == "1":
        path = (Path(folder) / checkpoints.CHECKPOINT_NAME).resolve()
        if path in _TRAINED_HERE and _TRAINED_HERE[path] == _file_stamp(path):
            result, _ = load_finished(model, task, cfg, folder, device)
            if result is not None:
                return result, (f"loaded the checkpoint this process trained earlier (${ALWAYS_TRAIN_ENV}=1 loads "
                                f"no checkpoint of an earlier run{note})")
        result = fit(model, task, cfg, device=device, out_dir=folder, progress=progress, desc=desc)
        _TRAINED_HERE[path] = _file_stamp(path)
        return result, f"trained (${ALWAYS_TRAIN_ENV}=1: checkpoints of earlier runs are not loaded{note})"
    result, status = load_finished(model, task, cfg, folder, device)
    if result is not None:
        return result, f"loaded a finished checkpoint ({status.reason}{note})"
    result = fit(model, task, cfg, device=device, out_dir=folder, resume=status.kind == "interrupted",
                 progress=progress, desc=desc)
    return result, f"trained ({status.reason}{note})"

"""The task protocol: what a chapter hands to the training loop, and what the loop hands back.

A chapter supplies a :class:`Task` (the batch for a step, the loss, an evaluation and what its data
depends on) and a :class:`TrainConfig`; :func:`course_lib.loop.fit` trains them and returns a
:class:`TrainResult`. :class:`TrainSetup` is the three things a chapter's ``build(cfg)`` returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import checkpoints
from .config_checks import check_config
from .step_tools import StepTools

__all__ = ["TrainConfig", "Task", "TrainResult", "TrainSetup", "RunOptions", "QUIET"]


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
    warmup_frac: float = 0.2           # wsd: the warm-up ends by this fraction of the seconds (or warmup_steps)
    decay_frac: float = 0.1            # wsd: the rate decays over this last fraction of the budget

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


@dataclass(frozen=True)
class RunOptions:
    """How one run of :func:`fit` is carried out; none of it changes what is learned.

    ``out_dir`` receives ``history.json`` and ``checkpoint.pt`` (rank 0 only): at the end, every
    ``cfg.checkpoint_every`` steps and every ``checkpoint_seconds`` of training (None: not by time), and when
    Ctrl-C or SIGTERM stops the run (after the current step; then ``KeyboardInterrupt`` is raised).
    ``resume=True`` continues from its checkpoint when :func:`checkpoints.inspect` finds one of this run.
    ``progress``/``desc``: the ``tqdm.auto`` bar and its label (None: the caller's default). ``max_seconds`` stops
    early at a wall-time cap (the schedule is cut short: to plan for a time budget, set ``TrainConfig.seconds``
    instead);
    ``compile_backend`` trains through ``torch.compile`` (see :func:`runtime.compile_backend`).
    ``on_eval(step, metrics)`` runs after each evaluation, ``on_step(step)`` after each optimizer step
    (e.g. a profiler's ``step``).
    """

    out_dir: str | Path | None = None
    resume: bool = False
    progress: bool = True
    desc: str | None = None              # None: "train", or the label the chapter gives its run
    max_seconds: float | None = None
    compile_backend: str | None = None
    checkpoint_seconds: float | None = 60.0
    on_eval: Callable[[int, dict[str, float]], None] | None = None
    on_step: Callable[[int], None] | None = None


QUIET = RunOptions(progress=False)      # the common case in studies and tests: no progress bar, nothing saved

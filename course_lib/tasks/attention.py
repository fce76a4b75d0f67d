"""Chapter 01 task: learning to attend on a toy routing problem (reverse or sort a sequence).

Input: T random symbols from {0..V-1}; target at position t: the input reversed
(``reverse``: y_t = x_{T-1-t}, routing by *position*) or sorted (``sort``: routing
by *content*). A small bidirectional Transformer encoder with a per-position output
head must move information between positions, which only attention can do here.

Honest baselines: the same network with every attention layer replaced by a
position-wise linear map (:class:`PositionwiseMixer`: it keeps the parameter
count, knows the position, but cannot look at other tokens), and chance (1/V).
For reversal the position-wise model can do no better than chance (except at a
middle position when T is odd), which is exactly the point.

Notebook 01 trains both with :func:`course_lib.train.fit` and shows the learned
attention maps (the anti-diagonal for reversal). CLI: ``python -m course_lib train attention``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoints, runtime
from ..models.transformer import TransformerConfig, TransformerEncoder
from ..train import Task, TrainConfig, fit

__all__ = ["Config", "make_targets", "RoutingModel", "PositionwiseMixer", "build_model", "build_baseline",
           "RoutingTask", "train_config", "run"]

TASKS = ("reverse", "sort")


@dataclass(frozen=True)
class Config:
    """Toy-task settings; profiles differ only in sizes and steps."""

    profile: str = "class"
    task: str = "reverse"
    vocab_size: int = 16
    seq_len: int = 16
    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 1
    batch_size: int = 64
    steps: int = 600
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0
    eval_size: int = 2048
    seed: int = 0

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(d_model=32, n_layers=1, steps=200, eval_size=1024),
        "class": dict(d_model=64, n_layers=1, steps=600),
        "full": dict(d_model=128, n_heads=4, n_layers=2, seq_len=32, batch_size=256, steps=3000),
    }

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.vocab_size < 2 or self.seq_len < 2:
            raise ValueError(f"need vocab_size >= 2 and seq_len >= 2, got {self.vocab_size}, {self.seq_len}")


def make_targets(x: torch.Tensor, task: str) -> torch.Tensor:
    """x (B, T) symbols -> targets (B, T): reversed or sorted along T."""
    if x.ndim != 2:
        raise ValueError(f"x must be (B, T), got {tuple(x.shape)}")
    if task == "reverse":
        return x.flip(1)
    if task == "sort":
        return x.sort(dim=1).values
    raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def _sample(n: int, cfg: Config, generator: torch.Generator) -> dict[str, torch.Tensor]:
    x = torch.randint(0, cfg.vocab_size, (n, cfg.seq_len), generator=generator)   # (n, T)
    return {"x": x, "y": make_targets(x, cfg.task)}


class PositionwiseMixer(nn.Module):
    """Stand-in for attention that mixes nothing across positions: out_t = W x_t + b.

    Same call signature and (q/k/v/out-sized) parameter budget as
    :class:`~course_lib.attention.MultiHeadAttention`, so swapping it in is a fair ablation.
    """

    def __init__(self, d_model: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, d_model))

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                need_weights: bool = False, *, is_causal: bool = False):
        """x (B, T, D) -> (B, T, D) [, all-zero weights (B, 1, T, T): it attends to nothing]."""
        out = self.net(x)
        if need_weights:
            return out, x.new_zeros(x.shape[0], 1, x.shape[1], x.shape[1])
        return out


class RoutingModel(nn.Module):
    """Bidirectional Transformer encoder + per-position linear head: ids (B, T) -> logits (B, T, V)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.encoder = TransformerEncoder(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 -> logits (B, T, V)."""
        return self.head(self.encoder(ids))


def _transformer_config(cfg: Config) -> TransformerConfig:
    return TransformerConfig(vocab_size=cfg.vocab_size, max_len=cfg.seq_len, d_model=cfg.d_model,
                             n_heads=cfg.n_heads, n_layers=cfg.n_layers)


def build_model(cfg: Config) -> RoutingModel:
    """The attention model for ``cfg`` (seed torch first for a reproducible init)."""
    return RoutingModel(_transformer_config(cfg))


def build_baseline(cfg: Config) -> RoutingModel:
    """The same model with every attention layer replaced by a :class:`PositionwiseMixer`."""
    model = RoutingModel(_transformer_config(cfg))
    for block in model.encoder.blocks:
        block.attn = PositionwiseMixer(cfg.d_model)
    return model


class RoutingTask(Task):
    """Fresh random sequences each step (a pure function of the step); a fixed held-out set."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.eval_set = _sample(cfg.eval_size, cfg, torch.Generator().manual_seed(10_000 + cfg.seed))

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        return _sample(self.cfg.batch_size, self.cfg, g)

    def items(self, batch: Mapping[str, Any]) -> int:
        return batch["x"].numel()

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        logits = model(batch["x"])                                          # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1).float(), batch["y"].flatten())

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        device = next(model.parameters()).device
        correct = []
        for start in range(0, self.cfg.eval_size, 512):
            x = self.eval_set["x"][start:start + 512].to(device)
            y = self.eval_set["y"][start:start + 512].to(device)
            correct.append((model(x).argmax(-1) == y).cpu())                # (b, T)
        hits = torch.cat(correct)
        return {"accuracy": float(hits.float().mean()), "sequence_accuracy": float(hits.all(1).float().mean())}


def train_config(cfg: Config) -> TrainConfig:
    """The optimisation settings both models train with."""
    return TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, cfg.steps),
                       weight_decay=cfg.weight_decay, grad_clip=1.0, seed=cfg.seed)


def run(cfg: Config, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
    """Train the attention model and the position-wise baseline; return the metrics dict."""
    dev = runtime.pick_device(device)
    out = Path(out_dir) if out_dir is not None else None
    task = RoutingTask(cfg)
    t0 = time.perf_counter()
    runtime.seed_everything(cfg.seed)
    model = build_model(cfg)
    result = fit(model, task, train_config(cfg), device=dev, out_dir=out, resume=resume, progress=progress,
                 run_config=cfg, profile=cfg.profile, max_seconds=max_seconds, desc=f"attention[{cfg.profile}]")
    runtime.seed_everything(cfg.seed)
    baseline = build_baseline(cfg)
    base = fit(baseline, task, train_config(cfg), device=dev, out_dir=out / "baseline" if out else None,
               resume=resume, progress=progress, run_config=cfg, profile=cfg.profile, max_seconds=max_seconds,
               desc=f"no-attention[{cfg.profile}]")
    return {
        "chapter": "attention",
        "profile": cfg.profile,
        "device": str(dev),
        "steps": result.steps,
        "stopped_early": result.stopped_early or base.stopped_early,
        "wall_s": round(time.perf_counter() - t0, 2),
        "train_wall_s": round(result.wall_s, 2),
        "throughput": {"value": round(result.items_per_s, 1), "unit": "tokens/s"},
        "metrics": {k: round(v, 4) for k, v in result.final.items()},
        "baselines": {"no_attention_accuracy": round(base.final["accuracy"], 4),
                      "no_attention_sequence_accuracy": round(base.final["sequence_accuracy"], 4),
                      "chance_accuracy": round(1.0 / cfg.vocab_size, 4)},
        "data": {"task": cfg.task, "vocab_size": cfg.vocab_size, "seq_len": cfg.seq_len,
                 "eval_sequences": cfg.eval_size},
        "parameters": {"model": sum(p.numel() for p in model.parameters()),
                       "baseline": sum(p.numel() for p in baseline.parameters())},
        "config": dataclasses.asdict(cfg),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "git_commit": checkpoints.git_commit(),
        "torch": torch.__version__,
    }

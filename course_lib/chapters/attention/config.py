"""Chapter 01 (learning to attend) settings: the ``class`` profile is ``Config()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...config_checks import check_config
from ...train import TrainConfig

__all__ = ["TASKS", "RoutingData", "RoutingModelConfig", "Config"]

TASKS = ("reverse", "sort")


@dataclass(frozen=True)
class RoutingData:
    """The toy routing problem: T random symbols from {0..V-1}, to be reversed or sorted."""

    task: str = "reverse"              # "reverse" (routing by position) | "sort" (routing by content)
    vocab_size: int = 16
    seq_len: int = 16
    batch_size: int = 64
    eval_size: int = 2048              # held-out sequences

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.vocab_size < 2 or self.seq_len < 2:
            raise ValueError(f"need vocab_size >= 2 and seq_len >= 2, got {self.vocab_size}, {self.seq_len}")


@dataclass(frozen=True)
class RoutingModelConfig:
    """Sizes of the bidirectional encoder (vocabulary and context come from the data)."""

    d_model: int = 64
    n_heads: int = 2
    n_layers: int = 1


@dataclass(frozen=True)
class Config:
    """Toy routing task, attention model and no-attention baseline; profiles differ only in sizes and steps."""

    profile: str = "class"
    model: RoutingModelConfig = RoutingModelConfig()
    data: RoutingData = RoutingData()
    train: TrainConfig = TrainConfig(steps=600, lr=3e-3, warmup_steps=50, weight_decay=0.0, grad_clip=1.0)

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"model.d_model": 32, "train.steps": 200, "data.eval_size": 1024},
        "class": {},
        "full": {"model.d_model": 128, "model.n_heads": 4, "model.n_layers": 2, "data.seq_len": 32,
                 "data.batch_size": 256, "train.steps": 3000},
    }

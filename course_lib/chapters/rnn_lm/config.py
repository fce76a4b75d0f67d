"""Chapter 05 (recurrent LM) settings: the ``class`` profile is ``Config()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...config_checks import check_config
from ...train import TrainConfig
from ..char_lm import BUDGETS, CharData

__all__ = ["RNNModel", "Config"]


@dataclass(frozen=True)
class RNNModel:
    """Sizes of the recurrent model (the vocabulary comes from the data)."""

    cell: str = "lstm"                 # "rnn" | "rnn_relu" | "lstm" | "gru"
    embed_dim: int = 64
    hidden_dim: int = 256
    layers: int = 2
    dropout: float = 0.0


@dataclass(frozen=True)
class Config:
    """Character LSTM on Shakespeare with truncated BPTT; profiles differ only in sizes and steps."""

    profile: str = "class"
    model: RNNModel = RNNModel()
    data: CharData = CharData()
    train: TrainConfig = TrainConfig(steps=900, lr=5e-3, warmup_steps=30, grad_clip=1.0)

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {**BUDGETS["smoke"], "model.hidden_dim": 128, "model.layers": 1,
                  "train.lr": 3e-3, "train.warmup_steps": 50},
        "class": {},
        "full": {**BUDGETS["full"], "model.hidden_dim": 512, "model.layers": 3, "model.dropout": 0.1,
                 "train.lr": 3e-3, "train.warmup_steps": 50},
    }

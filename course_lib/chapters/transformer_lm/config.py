"""Chapter 05 (Transformer LM) settings: the ``class`` profile is ``Config()``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...config_checks import check_config
from ...train import TrainConfig
from ..char_lm import BUDGETS, CharData

__all__ = ["TransformerModel", "Config"]


@dataclass(frozen=True)
class TransformerModel:
    """Sizes of the causal Transformer (vocabulary from the data, context = ``data.seq_len``)."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    dropout: float = 0.0


@dataclass(frozen=True)
class Config:
    """Causal Transformer LM on the same characters and budgets as ``rnn_lm``."""

    profile: str = "class"
    model: TransformerModel = TransformerModel()
    data: CharData = CharData()
    train: TrainConfig = TrainConfig(steps=900, lr=2e-3, warmup_steps=100, grad_clip=1.0, weight_decay=0.01)

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {**BUDGETS["smoke"], "model.d_model": 64, "model.n_layers": 2, "train.warmup_steps": 15},
        "class": {},
        "full": {**BUDGETS["full"], "model.d_model": 384, "model.n_heads": 6, "model.n_layers": 6,
                 "model.dropout": 0.1, "train.lr": 1e-3},
    }

"""Chapter 02 (masked LM, then few-label fine-tuning) settings: the ``class`` profile is ``Config()``.

Blocks: ``model`` (the encoder's sizes), ``data`` (vocabulary, row lengths, batch),
``mlm`` (the pre-training objective), ``train`` (pre-training optimisation) and ``study``
(notebook 02's fine-tuning, probes and mistake runs: read by no trained task, so changing
them never makes the pre-trained checkpoint stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...models.transformer import TransformerConfig
from ...config_checks import check_config
from ...train import TrainConfig

__all__ = ["EncoderModel", "TokenData", "MLMObjective", "Study", "Config", "model_config"]

POOLS = ("cls", "mean")


@dataclass(frozen=True)
class EncoderModel:
    """Sizes of the bidirectional Transformer encoder (the vocabulary and lengths come from ``data``)."""

    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.0
    tie_embeddings: bool = True


@dataclass(frozen=True)
class TokenData:
    """What the models read: a WordPiece vocabulary, packed MLM rows and one-speech classification rows."""

    vocab_size: int = 4000
    seq_len: int = 64                  # tokens per packed pre-training row
    ft_seq_len: int = 64               # tokens per speech for fine-tuning (cut)
    batch_size: int = 64               # pre-training rows per step
    eval_sequences: int = 512          # validation rows scored

    def __post_init__(self) -> None:
        if self.seq_len < 8 or self.ft_seq_len < 8:
            raise ValueError(f"seq_len and ft_seq_len must be >= 8, got {self.seq_len}, {self.ft_seq_len}")


@dataclass(frozen=True)
class MLMObjective:
    """What pre-training optimises: BERT's masking (15% selected; 80/10/10) and the decoder's starting bias."""

    select_prob: float = 0.15
    mask_frac: float = 0.8
    random_frac: float = 0.1
    prior_bias: bool = True            # decoder bias starts at log unigram frequencies

    def __post_init__(self) -> None:
        if not 0 < self.select_prob < 1:
            raise ValueError(f"select_prob must be in (0, 1), got {self.select_prob}")


@dataclass(frozen=True)
class Study:
    """Notebook 02's comparisons: fine-tuning per label budget (verse/prose, word order), probes, the mistake runs."""

    ft_budgets: tuple[int, ...] = (32, 128, 2048)
    ft_steps: int = 100
    ft_batch: int = 32
    ft_lr: float = 2e-4
    ft_pool: str = "mean"
    ft_probe_init: bool = True         # LP-FT: fit the head as a linear probe before fine-tuning
    ft_repeats: int = 3                # independent runs per budget: run r = pre-training seed r + label draw r
    probe_pool: str = "mean"
    mistake_steps: int = 60            # steps of each short mistake run (and of its correct twin)
    mistake_seeds: int = 3             # seeds of each short run, paired across the mistakes
    mistake_batch: int = 64            # rows per step of the short runs, in every profile (fewer learn too little)
    order_budgets: tuple[int, ...] = (32, 128)        # the word-order task's label budgets (half kept, half shuffled)
    order_words: int = 30              # words kept from the start of each speech (all fit in ft_seq_len tokens)
    order_test: int = 600              # test speeches of the word-order task (validation plays, balanced)

    def __post_init__(self) -> None:
        if any(b < 4 or b % 2 for b in self.ft_budgets):
            raise ValueError(f"ft_budgets must be even numbers >= 4 (half verse, half prose), got {self.ft_budgets}")
        if any(b < 4 or b % 2 for b in self.order_budgets):
            raise ValueError(f"order_budgets must be even numbers >= 4 (half kept, half shuffled), "
                             f"got {self.order_budgets}")
        if self.order_words < 5 or self.order_test < 10 or self.order_test % 2:
            raise ValueError(f"order_words must be >= 5 and order_test an even number >= 10, got "
                             f"{self.order_words}, {self.order_test}")
        if self.probe_pool not in POOLS or self.ft_pool not in POOLS:
            raise ValueError(f"probe_pool and ft_pool must be 'cls' or 'mean', got {self.probe_pool!r}, "
                             f"{self.ft_pool!r}")


@dataclass(frozen=True)
class Config:
    """Masked-LM pre-training on Shakespeare, then two few-label tasks (verse/prose, word order); profiles set sizes."""

    profile: str = "class"
    model: EncoderModel = EncoderModel()
    data: TokenData = TokenData()
    mlm: MLMObjective = MLMObjective()
    train: TrainConfig = TrainConfig(steps=800, lr=2e-3, warmup_steps=80, weight_decay=0.01, eval_every=200)
    study: Study = Study()

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"data.batch_size": 32, "data.eval_sequences": 256, "train.steps": 250, "train.eval_every": 125,
                  "study.ft_budgets": (32, 512), "study.ft_steps": 60, "study.ft_repeats": 1,
                  "study.mistake_seeds": 1, "study.order_budgets": (32,), "study.order_test": 300},
        "class": {},
        # lr 1e-3: at the class rate (2e-3) this model's bf16 run diverged (NaN at step 1,217 on an H200);
        # at 1e-3 it did not, and its loss was lower at every step measured (benchmarks/GPU.md)
        "full": {"model.n_layers": 4, "model.d_model": 256, "data.batch_size": 128, "data.eval_sequences": 2000,
                 "train.steps": 4000, "train.lr": 1e-3, "train.warmup_steps": 200, "train.eval_every": 1000,
                 "study.ft_budgets": (32, 128, 512, 2048), "study.ft_steps": 200, "study.ft_repeats": 3,
                 "study.mistake_steps": 600, "study.order_budgets": (32, 128, 512), "study.order_test": 2000},
    }


def model_config(cfg: Config) -> TransformerConfig:
    """The encoder's sizes, shared by pre-training and fine-tuning (positions for the longer of the two rows)."""
    m, d = cfg.model, cfg.data
    return TransformerConfig(vocab_size=d.vocab_size, max_len=max(d.seq_len, d.ft_seq_len), d_model=m.d_model,
                             n_heads=m.n_heads, n_layers=m.n_layers, dropout=m.dropout, causal=False,
                             tie_embeddings=m.tie_embeddings)

"""Chapter 05 task: a small causal Transformer language model on the same characters.

Same corpus, vocabulary, split, step budget and batch size (B x T characters per
step) as ``rnn_lm``, so loss, speed and samples compare directly. The Transformer
has no carried state: each step reads B random windows of T + 1 characters, and
validation reads non-overlapping windows (each character sees on average T/2
characters of context, where the LSTM's carried state sees all of the past).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from .. import runtime
from ..flops import model_flops_per_token
from ..models.ngram import bits
from ..models.transformer import TransformerConfig, TransformerLM
from ..objectives.lm import lm_loss
from ..train import Task, TrainConfig, fit
from .rnn_lm import LMSetup, encode_corpus, lm_summary

__all__ = ["Config", "WindowLMTask", "evaluate_windows", "prepare", "run"]


@dataclass(frozen=True)
class Config:
    """Causal Transformer LM settings; steps and batch match ``rnn_lm.Config`` per profile."""

    profile: str = "class"
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    dropout: float = 0.0
    batch_size: int = 64
    seq_len: int = 128
    steps: int = 900
    lr: float = 2e-3
    warmup_steps: int = 100
    grad_clip: float = 1.0
    weight_decay: float = 0.01
    eval_chars: int = 200_000
    seed: int = 0
    text_file: str | None = None

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(d_model=64, n_layers=2, batch_size=32, seq_len=64, steps=150, eval_chars=20_000,
                      warmup_steps=15),
        "class": dict(d_model=128, n_layers=4, batch_size=64, seq_len=128, steps=900),
        "full": dict(d_model=384, n_heads=6, n_layers=6, batch_size=128, seq_len=256, steps=5000,
                     dropout=0.1, lr=1e-3, eval_chars=729_000),
    }


class WindowLMTask(Task):
    """Next-character prediction on random windows; batches depend only on (seed, step)."""

    def __init__(self, train_ids: torch.Tensor, val_ids: torch.Tensor, batch_size: int, seq_len: int,
                 seed: int = 0):
        if len(train_ids) <= seq_len + 1:
            raise ValueError(f"training text ({len(train_ids)} ids) is shorter than seq_len + 1 = {seq_len + 1}")
        self.train_ids, self.val_ids = train_ids, val_ids
        self.batch_size, self.seq_len, self.seed = batch_size, seq_len, seed

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        starts = torch.randint(0, len(self.train_ids) - self.seq_len - 1, (self.batch_size,), generator=g)
        offsets = torch.arange(self.seq_len + 1)
        chunk = self.train_ids[starts[:, None] + offsets]                       # (B, T + 1)
        return {"x": chunk[:, :-1], "y": chunk[:, 1:]}

    def items(self, batch: Mapping[str, torch.Tensor]) -> int:
        return batch["x"].numel()

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return lm_loss(model(batch["x"]), batch["y"])

    def optimizers(self, model, cfg, device):
        decay = [p for p in model.parameters() if p.ndim >= 2]
        no_decay = [p for p in model.parameters() if p.ndim < 2]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return {"model": torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=device.type == "cuda")}

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        nats = evaluate_windows(model, self.val_ids, self.seq_len)
        return {"val_nats_per_char": nats, "val_bits_per_char": bits(nats), "val_perplexity": math.exp(nats)}


@torch.no_grad()
def evaluate_windows(model: nn.Module, ids: torch.Tensor, seq_len: int, batch_size: int = 64) -> float:
    """Mean nats/char over non-overlapping windows of ``seq_len`` + 1 ids."""
    device = next(model.parameters()).device
    n = (len(ids) - 1) // seq_len
    windows = ids[: n * seq_len + 1].unfold(0, seq_len + 1, seq_len)           # (n, T + 1)
    total, count = 0.0, 0
    for i in range(0, n, batch_size):
        chunk = windows[i:i + batch_size].to(device)
        y = chunk[:, 1:]
        total += float(lm_loss(model(chunk[:, :-1]), y)) * y.numel()
        count += y.numel()
    return total / count


def prepare(cfg: Config) -> LMSetup:
    """Data, model (seeded), task and optimisation settings for ``cfg``."""
    vocab, train_ids, val_ids = encode_corpus(cfg.text_file, cfg.eval_chars)
    runtime.seed_everything(cfg.seed)
    model = TransformerLM(TransformerConfig(vocab_size=len(vocab), max_len=cfg.seq_len, d_model=cfg.d_model,
                                            n_heads=cfg.n_heads, n_layers=cfg.n_layers, dropout=cfg.dropout))
    task = WindowLMTask(train_ids, val_ids, cfg.batch_size, cfg.seq_len, cfg.seed)
    train_cfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, cfg.steps),
                            grad_clip=cfg.grad_clip, weight_decay=cfg.weight_decay, seed=cfg.seed)
    return LMSetup(vocab, train_ids, val_ids, model, task, train_cfg)


def run(cfg: Config, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
    """Train the causal Transformer LM for ``cfg``; same metrics.json schema as ``rnn_lm``."""
    dev = runtime.pick_device(device)
    t0 = time.perf_counter()
    s = prepare(cfg)
    result = fit(s.model, s.task, s.train_cfg, device=dev, out_dir=out_dir, resume=resume, progress=progress,
                 run_config=cfg, profile=cfg.profile, max_seconds=max_seconds,
                 desc=f"transformer_lm[{cfg.profile}]")
    return lm_summary("transformer_lm", cfg, dev, result, time.perf_counter() - t0, s.train_ids, s.val_ids,
                      len(s.vocab), parameters=sum(p.numel() for p in s.model.parameters()),
                      model_flops_per_token=round(model_flops_per_token(s.model, cfg.seq_len)))

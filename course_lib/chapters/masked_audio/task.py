"""Masked-frame pre-training as a training task (notebook 06), and the keyword classifier's task.

Each step draws B training clips (labels unused), hides spans of their frames
(:func:`course_lib.objectives.masked_frames.span_mask`) and scores the reconstruction of the
hidden frames' target (:func:`reconstruction_target`: by default each frame minus its clip's
mean). ``masking.objective`` selects the two mistakes the notebook measures:
``"all_frames"`` (hide spans but score every frame) and ``"autoencoder"`` (hide nothing and
reconstruct the whole input: the source's recipe).
"""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ...batching import map_batches, random_rows, step_generator
from ...checkpoints import tensor_digest
from ...models.frames import FrameClassifier, FrameReconstructor
from ...objectives.masked_frames import (band_mask, centre_per_clip, interpolate_masked, masked_reconstruction_loss,
                                         span_mask)
from ...runtime import seed_everything
from ...train import Task, TrainConfig, TrainSetup
from .config import Config, MaskingConfig

__all__ = ["MaskedFramesTask", "KeywordTask", "classify_accuracy", "eval_masks", "reconstruct", "reconstruction_target",
           "reconstruction_errors", "trivial_errors", "pretrain_setup", "new_classifier", "EVAL_SEED"]

EVAL_SEED = 1234          # the fixed masks every evaluation uses


def eval_masks(n: int, frames: int, masking: MaskingConfig, seed: int = EVAL_SEED) -> torch.Tensor:
    """The fixed (n, frames) masks of the validation clips."""
    return span_mask(n, frames, masking.fraction, masking.span, torch.Generator().manual_seed(seed))


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor, mask: torch.Tensor | None, batch_size: int = 256) -> torch.Tensor:
    """``model(x, mask)`` (N, T, F) in eval mode, in slices, on CPU as float32."""
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    out = [model(x[s:s + batch_size].to(device), None if mask is None else mask[s:s + batch_size].to(device))
           .float().cpu() for s in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out)


def reconstruction_target(x: torch.Tensor, masking: MaskingConfig) -> torch.Tensor:
    """What the model learns to predict from frames x (N, T, F): x minus each clip's mean over time, per feature
    (``masking.target == "centred"``), or x itself (``"frames"``)."""
    return centre_per_clip(x) if masking.target == "centred" else x


def reconstruction_errors(model: nn.Module, x: torch.Tensor, mask: torch.Tensor,
                          target: torch.Tensor | None = None) -> dict[str, float]:
    """Mean L1 and MSE on the hidden frames under ``mask`` (N, T) of ``model(x, mask)`` against ``target``
    (N, T, F; default ``x``: pass :func:`reconstruction_target` for a model trained on another target)."""
    target = x if target is None else target
    pred = reconstruct(model, x, mask)                                      # (N, T, F)
    return {"masked_l1": float(masked_reconstruction_loss(pred, target, mask, "l1")),
            "masked_mse": float(masked_reconstruction_loss(pred, target, mask, "mse"))}


def trivial_errors(target: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """The same errors for two predictors of ``target`` (N, T, F) that learn nothing: zero, which is each band's
    mean (the global one for normalised frames, the clip's own for centred targets), and linear interpolation
    across each hidden span (which commutes with subtracting a clip's mean)."""
    zeros, interp = torch.zeros_like(target), interpolate_masked(target, mask)
    return {f"{name}_{kind}": float(masked_reconstruction_loss(pred, target, mask, kind))
            for name, pred in (("band_mean", zeros), ("interpolation", interp)) for kind in ("l1", "mse")}


class MaskedFramesTask(Task):
    """Random training clips, span masks drawn per step, loss on the hidden frames (by default)."""

    def __init__(self, train_x: torch.Tensor, val_x: torch.Tensor, cfg: Config):
        if train_x.ndim != 3 or val_x.ndim != 3:
            raise ValueError(f"expected frames (N, T, F), got {tuple(train_x.shape)} and {tuple(val_x.shape)}")
        self.train_x, self.val_x, self.cfg = train_x, val_x, cfg
        self.val_mask = eval_masks(len(val_x), val_x.shape[1], cfg.masking)
        self.val_target = reconstruction_target(val_x, cfg.masking)          # (N, T, F)
        self.frames_digest = tensor_digest(train_x)                           # the features trained on

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        m, seed = self.cfg.masking, self.cfg.train.seed
        idx = random_rows(len(self.train_x), self.cfg.data.batch_size, seed, step)
        gen = step_generator(seed + 1, step)
        mask = span_mask(len(idx), self.train_x.shape[1], m.fraction, m.span, gen)
        batch = {"x": self.train_x[idx], "mask": mask}                        # (B, T, F), (B, T)
        if m.freq_width > 0:                                     # (B, bands), the same bands in each stacked frame
            bands = band_mask(len(idx), self.cfg.data.features.n_mels, m.freq_width, gen)
            batch["bands"] = bands.repeat(1, self.train_x.shape[-1] // bands.shape[1])   # (B, F)
        return batch

    def items(self, batch: Mapping[str, torch.Tensor]) -> int:
        return int(batch["x"].shape[0])

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        m, x, mask = self.cfg.masking, batch["x"], batch["mask"]
        target = reconstruction_target(x, m)                                  # (B, T, F)
        if m.objective == "autoencoder":                                      # the source's recipe
            return masked_reconstruction_loss(model(x), target, None, m.loss)
        if "bands" in batch:                                                  # time and frequency masking (TERA)
            bands = batch["bands"][:, None, :]                                # (B, 1, F)
            pred = model(x.masked_fill(bands, 0.0), mask)                     # (B, T, F)
            hidden = mask[..., None] | bands                                  # (B, T, F)
            return masked_reconstruction_loss(pred, target, None if m.objective == "all_frames" else hidden, m.loss)
        pred = model(x, mask)                                                 # (B, T, F)
        return masked_reconstruction_loss(pred, target, None if m.objective == "all_frames" else mask, m.loss)

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        return reconstruction_errors(model, self.val_x, self.val_mask, self.val_target)

    def signature(self) -> dict[str, Any]:
        return {"data": self.cfg.data, "masking": self.cfg.masking, "frames": self.frames_digest}


class KeywordTask(Task):
    """Cross-entropy on labelled clips, sampled with replacement (any label budget, the same cost).

    ``val`` (x, y) adds a validation accuracy to each evaluation (for early stopping); the encoder's
    parameters learn at ``encoder_lr_ratio`` times the rate of the rest (the layer weights and the head).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int = 0,
                 val: tuple[torch.Tensor, torch.Tensor] | None = None, encoder_lr_ratio: float = 1.0):
        if x.ndim != 3 or y.shape != (len(x),):
            raise ValueError(f"expected x (N, T, F) and y (N,), got {tuple(x.shape)}, {tuple(y.shape)}")
        if not 0.0 < encoder_lr_ratio <= 1.0:
            raise ValueError(f"encoder_lr_ratio must be in (0, 1], got {encoder_lr_ratio}")
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.val, self.encoder_lr_ratio = val, encoder_lr_ratio

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = random_rows(len(self.x), self.batch_size, self.seed, step)
        return {"x": self.x[idx], "y": self.y[idx]}

    def items(self, batch: Mapping[str, torch.Tensor]) -> int:
        return int(batch["x"].shape[0])

    def loss(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return F.cross_entropy(model(batch["x"]).float(), batch["y"])

    def optimizers(self, model: nn.Module, cfg: TrainConfig, device: torch.device) -> dict[str, torch.optim.Optimizer]:
        encoder = [p for n, p in model.named_parameters() if n.startswith("encoder.")]
        rest = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
        groups = [{"params": encoder, "lr": cfg.lr * self.encoder_lr_ratio}, {"params": rest, "lr": cfg.lr}]
        return {"model": torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay,
                                           fused=device.type == "cuda")}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, step: int) -> dict[str, float]:
        if self.val is None:
            return {}
        return {"val_accuracy": classify_accuracy(model, *self.val)}

    def signature(self) -> dict[str, Any]:
        return {"examples": len(self.x), "batch_size": self.batch_size, "seed": self.seed,
                "data": tensor_digest(self.x), "encoder_lr_ratio": self.encoder_lr_ratio}


def classify_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``model``'s argmax on (x, y)."""
    logits = map_batches(model, model, x, 256)
    return float((logits.argmax(dim=1) == y).float().mean())


def pretrain_setup(cfg: Config, train_x: torch.Tensor, val_x: torch.Tensor) -> TrainSetup:
    """The reconstructor (seeded by ``cfg.train.seed``) and its masked-frame task on ``train_x`` (N, S, k·F),
    evaluated on ``val_x`` with fixed masks, as the chapter trains them."""
    seed_everything(cfg.train.seed)
    model = FrameReconstructor(cfg.model)
    return TrainSetup(model, MaskedFramesTask(train_x, val_x, cfg), cfg.train)


def new_classifier(cfg: Config, n_classes: int, pretrained: FrameReconstructor | None, seed: int) -> FrameClassifier:
    """A keyword classifier: the pre-trained encoder's weights copied in, or a fresh one seeded by ``seed``."""
    seed_everything(seed)
    return FrameClassifier(cfg.model, n_classes, pretrained.encoder if pretrained is not None else None)

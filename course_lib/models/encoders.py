"""Image encoders for self-supervised learning: a small ResNet-style CNN and a projection MLP.

SimCLR (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual
Representations", §2.1) uses an encoder f (a ResNet) whose pooled output h = f(x) is
the representation, and a projection head g (an MLP) whose output z = g(h) is where
the contrastive loss is computed. Downstream tasks (linear probe, kNN) use h, not z:
the loss makes z invariant to the augmentations, which throws away information (digit
position, stroke thickness) that g can discard but h keeps (SimCLR §4.2, Fig. 8).

Used by notebook 04 (and ``course_lib.chapters.contrastive``). Images are (B, 1, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["EncoderConfig", "ResidualBlock", "ConvEncoder", "ProjectionHead", "SimCLRNet", "Classifier"]


@dataclass(frozen=True)
class EncoderConfig:
    """Sizes of the encoder f and projection head g.

    ``width`` channels in the first stage, doubled at each of the two downsampling
    stages, so the representation has ``feature_dim = 4 * width`` entries.
    """

    in_channels: int = 1
    width: int = 32
    proj_hidden: int = 256
    proj_dim: int = 64

    def __post_init__(self) -> None:
        for name in ("in_channels", "width", "proj_hidden", "proj_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"EncoderConfig.{name} must be >= 1, got {getattr(self, name)}")

    @property
    def feature_dim(self) -> int:
        return 4 * self.width


class ResidualBlock(nn.Module):
    """Pre-activation-free basic block (He et al., 2016): x + F(x), with a 1x1 shortcut when shapes change."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H / stride, W / stride)."""
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ConvEncoder(nn.Module):
    """The encoder f: stem conv, three residual blocks (28 -> 14 -> 7 -> 7 pixels), global average pool."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()):
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(w), nn.ReLU())
        # Downsample in the first block: full-resolution residual convs cost ~4x more on a CPU
        # and buy little on 28x28 digits.
        self.stages = nn.Sequential(ResidualBlock(w, w, stride=2), ResidualBlock(w, 2 * w, stride=2),
                                    ResidualBlock(2 * w, 4 * w))
        self.feature_dim = cfg.feature_dim
        # channels-last (NHWC) weights and inputs: the layout oneDNN (CPU) and cuDNN prefer for
        # convolutions; a class-profile SimCLR step on 2 CPU cores took 357 -> 256 ms (benchmarks/PROFILE.md)
        self.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) float -> representation h (B, 4 * width)."""
        if x.ndim != 4 or x.shape[1] != self.cfg.in_channels or not x.is_floating_point():
            raise ValueError(f"expected float images (B, {self.cfg.in_channels}, H, W), "
                             f"got {tuple(x.shape)} {x.dtype}")
        x = x.contiguous(memory_format=torch.channels_last)
        fmap = self.stages(self.stem(x))        # (B, 4w, H/4, W/4), stored NHWC
        return fmap.mean(dim=(2, 3))            # (B, 4w)


class ProjectionHead(nn.Module):
    """The projection head g: Linear -> BatchNorm -> ReLU -> Linear (SimCLR §2.1, eq. z = W2 relu(W1 h))."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(),
                                 nn.Linear(hidden, out_dim))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (B, D) -> z (B, proj_dim); not normalised (the loss normalises)."""
        return self.net(h)


class SimCLRNet(nn.Module):
    """Encoder f plus projection head g. ``forward`` returns z = g(f(x)); ``features`` returns h = f(x)."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(cfg)
        self.projector = ProjectionHead(cfg.feature_dim, cfg.proj_hidden, cfg.proj_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> representation h (B, D): what probes and kNN use."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> projection z (B, proj_dim): what the contrastive loss uses."""
        return self.projector(self.encoder(x))


class Classifier(nn.Module):
    """The same encoder f with a linear classifier on h: the supervised baseline."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig(), num_classes: int = 10):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.cfg = cfg
        self.encoder = ConvEncoder(cfg)
        self.head = nn.Linear(cfg.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> representation h (B, D)."""
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) -> class logits (B, num_classes)."""
        return self.head(self.encoder(x))

"""Generative adversarial networks: the MLP GAN and the DCGAN for 28x28 digits.

A GAN is two networks playing a game (Goodfellow et al., 2014, "Generative
Adversarial Nets"): the generator G maps noise z ~ N(0, I) to an image, the
discriminator D maps an image to one logit, "how real does this look". The
DCGAN (Radford, Metz & Chintala, 2015, "Unsupervised Representation Learning
with Deep Convolutional GANs", section 3) replaces the MLPs with transposed
convolutions that upsample in G and strided convolutions that downsample in D,
batch norm in both except G's output layer and D's input layer, ReLU in G,
LeakyReLU(0.2) in D and tanh on G's output, so images live in [-1, 1].

Models return tensors (images, logits), never losses; the losses live in
:mod:`course_lib.objectives.gan`. :class:`GAN` only holds the pair so one
``state_dict`` (and one checkpoint) carries both. Used by notebook 03.

Shape letters: B batch, Z latent size, C channels, H/W height/width, D width.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["GANConfig", "MLPGenerator", "MLPDiscriminator", "DCGenerator", "DCDiscriminator", "GAN",
           "build_gan", "sample_latent", "interpolate_latents", "layer_shapes", "init_dcgan_weights"]

IMAGE_SHAPE = (1, 28, 28)
KINDS = ("mlp", "dcgan")


@dataclass(frozen=True)
class GANConfig:
    """Architecture of a GAN for (1, 28, 28) images in [-1, 1].

    ``width`` is the hidden size of the MLPs, or the channel count of the DCGAN's
    14x14 feature maps (its 7x7 maps have twice as many).
    """

    kind: str = "dcgan"
    latent_dim: int = 64
    width: int = 64

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.latent_dim < 1 or self.width < 1:
            raise ValueError(f"latent_dim and width must be >= 1, got {self.latent_dim}, {self.width}")


def _check_latent(z: torch.Tensor, latent_dim: int) -> None:
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"expected latent codes z of shape (B, {latent_dim}), got {tuple(z.shape)}")


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"expected images of shape (B, 1, 28, 28), got {tuple(x.shape)}")


class MLPGenerator(nn.Module):
    """The classic first GAN generator: z -> D -> 2D -> 784 -> tanh -> (1, 28, 28)."""

    def __init__(self, latent_dim: int = 64, width: int = 256):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 2 * width), nn.LeakyReLU(0.2),
            nn.Linear(2 * width, 28 * 28), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> images (B, 1, 28, 28) in [-1, 1]."""
        _check_latent(z, self.latent_dim)
        return self.net(z).view(-1, *IMAGE_SHAPE)                              # (B, 784) -> (B, 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """The classic first GAN discriminator: (1, 28, 28) -> 784 -> 2D -> D -> 1 logit."""

    def __init__(self, width: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),                                                       # (B, 1, 28, 28) -> (B, 784)
            nn.Linear(28 * 28, 2 * width), nn.LeakyReLU(0.2),
            nn.Linear(2 * width, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, 1, 28, 28) -> logits (B,); sigmoid(logit) = D(x), the probability "real"."""
        _check_images(x)
        return self.net(x).squeeze(1)                                           # (B, 1) -> (B,)


class DCGenerator(nn.Module):
    """DCGAN generator: project z to 7x7 maps, then two stride-2 transposed convolutions up to 28x28.

    z (B, Z) -> Linear -> (B, 2D, 7, 7) -> BN, ReLU -> ConvT 4x4/2 -> (B, D, 14, 14) -> BN, ReLU
    -> ConvT 4x4/2 -> (B, 1, 28, 28) -> tanh. No batch norm on the output layer (DCGAN section 3).
    """

    def __init__(self, latent_dim: int = 64, width: int = 64):
        super().__init__()
        self.latent_dim, self.width = latent_dim, width
        self.project = nn.Sequential(nn.Linear(latent_dim, 2 * width * 7 * 7, bias=False))
        self.net = nn.Sequential(
            nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),   # 7 -> 14
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, stride=2, padding=1),                       # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> images (B, 1, 28, 28) in [-1, 1]."""
        _check_latent(z, self.latent_dim)
        h = self.project(z).view(-1, 2 * self.width, 7, 7)                     # (B, 2D*49) -> (B, 2D, 7, 7)
        return self.net(h)


class DCDiscriminator(nn.Module):
    """DCGAN discriminator: two stride-2 convolutions down to 7x7, then one logit.

    (B, 1, 28, 28) -> Conv 4x4/2 -> (B, D, 14, 14) -> LeakyReLU -> Conv 4x4/2 -> (B, 2D, 7, 7)
    -> BN, LeakyReLU -> flatten -> Linear -> (B,). No batch norm on the input layer (DCGAN section 3).
    """

    def __init__(self, width: int = 64):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),                  # 28 -> 14
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),                 # 14 -> 7
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
            nn.Flatten(),                                                       # (B, 2D, 7, 7) -> (B, 2D*49)
            nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, 1, 28, 28) -> logits (B,); sigmoid(logit) = D(x)."""
        _check_images(x)
        return self.net(x).squeeze(1)                                           # (B, 1) -> (B,)


def init_dcgan_weights(module: nn.Module) -> None:
    """DCGAN initialisation (section 4): conv/linear weights ~ N(0, 0.02); BN scale ~ N(1, 0.02), shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class GAN(nn.Module):
    """A generator and a discriminator held together (one state_dict, one checkpoint)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int):
        super().__init__()
        self.generator, self.discriminator, self.latent_dim = generator, discriminator, latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, Z) -> generated images (B, 1, 28, 28) in [-1, 1]."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images from fresh noise (G in eval mode, so batch norm uses its running statistics)."""
        device = next(self.parameters()).device
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(sample_latent(n, self.latent_dim, generator).to(device))
        finally:
            self.generator.train(was_training)


def build_gan(cfg: GANConfig) -> GAN:
    """A :class:`GAN` for ``cfg`` (the DCGAN with its N(0, 0.02) initialisation)."""
    if cfg.kind == "mlp":
        return GAN(MLPGenerator(cfg.latent_dim, cfg.width), MLPDiscriminator(cfg.width), cfg.latent_dim)
    gan = GAN(DCGenerator(cfg.latent_dim, cfg.width), DCDiscriminator(cfg.width), cfg.latent_dim)
    init_dcgan_weights(gan)
    return gan


def sample_latent(n: int, latent_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Noise z ~ N(0, I): (n, Z) float32 on CPU (move it to the model's device)."""
    if n < 1 or latent_dim < 1:
        raise ValueError(f"n and latent_dim must be >= 1, got {n}, {latent_dim}")
    return torch.randn(n, latent_dim, generator=generator)


def interpolate_latents(z_a: torch.Tensor, z_b: torch.Tensor, t: torch.Tensor | float,
                        spherical: bool = True) -> torch.Tensor:
    """Points between two latent codes z_a, z_b (Z,) at fractions ``t`` (T,) -> (T, Z).

    Linear: (1 - t) z_a + t z_b. Spherical (slerp; White, 2016, "Sampling Generative
    Networks"): follows the great circle, so the norm stays near sqrt(Z), where Gaussian
    samples live; the straight line's midpoint is shorter than any typical z.
    """
    if z_a.ndim != 1 or z_a.shape != z_b.shape:
        raise ValueError(f"expected two latent vectors of the same shape (Z,), "
                         f"got {tuple(z_a.shape)}, {tuple(z_b.shape)}")
    t = torch.as_tensor(t, dtype=z_a.dtype).reshape(-1, 1)                    # (T, 1)
    if not spherical:
        return (1 - t) * z_a + t * z_b
    cos = torch.dot(z_a, z_b) / (z_a.norm() * z_b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
    return (torch.sin((1 - t) * omega) * z_a + torch.sin(t * omega) * z_b) / torch.sin(omega)


@torch.no_grad()
def layer_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, tuple[int, ...], int]]:
    """(layer description, output shape, parameter count) for every leaf layer of ``net`` on input ``x``.

    Runs one forward pass with hooks (in eval mode, restored afterwards); used to print a
    model layer by layer in the notebook.
    """
    rows: list[tuple[str, tuple[int, ...], int]] = []
    hooks = [m.register_forward_hook(
        lambda mod, _inp, out: rows.append((repr(mod), tuple(out.shape), sum(p.numel() for p in mod.parameters()))))
        for m in net.modules() if not list(m.children())]
    was_training = net.training
    net.eval()
    try:
        net(x)
    finally:
        net.train(was_training)
        for h in hooks:
            h.remove()
    return rows

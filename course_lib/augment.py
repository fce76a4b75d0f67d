"""Batched, on-device image augmentations for contrastive learning (SimCLR views).

SimCLR (Chen et al., 2020, §3 and Fig. 5) learns what *not* to notice: two random
"views" of one image must map to nearby embeddings, so every augmentation names an
invariance the encoder is taught. For digits:

* ``crop``    random resized crop: scale and position (a digit is the same digit anywhere, at any size)
* ``rotate``  small rotation: slant (people write at different angles)
* ``elastic`` a smooth random displacement field: stroke wobble (Simard et al., 2003)
* ``noise``   additive Gaussian noise: pixel-level noise (forces shape, not exact intensities)
* ``erase``   random erasing (Zhong et al., 2020): occlusion (a digit is recognisable from its parts)

All of them act on a whole batch at once with tensor operations: the geometric ones
(crop, rotate, elastic) are composed into ONE sampling grid and applied with a single
``F.grid_sample`` call. There is no per-image Python loop, so the same code runs on
CPU, CUDA or MPS. Randomness comes from ``generator`` if given, else torch's global
RNG (which ``course_lib.train.fit`` checkpoints, so resume is exact).

Images are (B, C, H, W) float in [0, 1], background 0. Used by notebook 04.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["AUGMENTATIONS", "AugmentConfig", "crop_matrices", "rotation_matrices", "elastic_offsets",
           "warp", "add_noise", "random_erase", "augment", "two_views"]

AUGMENTATIONS: tuple[str, ...] = ("crop", "rotate", "elastic", "noise", "erase")


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of each augmentation; a strength of 0 (or ``crop_scale=(1, 1)``) turns it off."""

    crop_scale: tuple[float, float] = (0.4, 1.0)     # area fraction of the crop
    crop_ratio: tuple[float, float] = (0.75, 1.333)  # aspect ratio w/h of the crop
    max_rotation: float = 20.0                       # degrees, uniform in [-max, max]
    elastic_alpha: float = 0.08                      # displacement std in normalised coords ([-1, 1] wide)
    elastic_grid: int = 4                            # the random field lives on a grid x grid lattice
    noise_std: float = 0.1
    erase_prob: float = 0.5
    erase_scale: tuple[float, float] = (0.05, 0.2)   # area fraction of the erased box

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if not 0 < lo <= hi <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError(f"crop_ratio must satisfy 0 < lo <= hi, got {self.crop_ratio}")
        if not 0 <= self.max_rotation <= 180:
            raise ValueError(f"max_rotation must be in [0, 180] degrees, got {self.max_rotation}")
        if self.elastic_alpha < 0 or self.noise_std < 0:
            raise ValueError("elastic_alpha and noise_std must be >= 0")
        if self.elastic_grid < 2:
            raise ValueError(f"elastic_grid must be >= 2, got {self.elastic_grid}")
        if not 0 <= self.erase_prob <= 1:
            raise ValueError(f"erase_prob must be in [0, 1], got {self.erase_prob}")
        if not 0 < self.erase_scale[0] <= self.erase_scale[1] <= 1:
            raise ValueError(f"erase_scale must satisfy 0 < lo <= hi <= 1, got {self.erase_scale}")

    def without(self, name: str) -> AugmentConfig:
        """This config with augmentation ``name`` (one of :data:`AUGMENTATIONS`) switched off."""
        off = {"crop": dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0)), "rotate": dict(max_rotation=0.0),
               "elastic": dict(elastic_alpha=0.0), "noise": dict(noise_std=0.0), "erase": dict(erase_prob=0.0)}
        if name not in off:
            raise ValueError(f"unknown augmentation {name!r}; expected one of {AUGMENTATIONS}")
        return dataclasses.replace(self, **off[name])

    @classmethod
    def weak(cls) -> AugmentConfig:
        """A deliberately too-weak recipe (tiny jitter only): the 'augmentations too weak' mistake."""
        return cls(crop_scale=(0.9, 1.0), crop_ratio=(1.0, 1.0), max_rotation=3.0, elastic_alpha=0.0,
                   noise_std=0.02, erase_prob=0.0)


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None, device: torch.device
             ) -> torch.Tensor:
    """(n,) uniform samples in [lo, hi); drawn on the generator's device, then moved."""
    if generator is None:
        u = torch.rand(n, device=device)
    else:
        u = torch.rand(n, generator=generator, device=generator.device).to(device)
    return lo + (hi - lo) * u


def _normal(shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    if generator is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=generator, device=generator.device).to(device)


def crop_matrices(n: int, scale: tuple[float, float], ratio: tuple[float, float],
                  generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3, 3) affine maps output -> input coordinates for random resized crops.

    A crop covering area fraction s with aspect r has half-widths sx = sqrt(s r), sy = sqrt(s / r)
    (clipped to 1) in normalised coordinates, and its centre is uniform over positions that keep it
    inside the image: x_in = sx * x_out + tx, |tx| <= 1 - sx.
    """
    device = torch.device(device)
    s = _uniform(n, scale[0], scale[1], generator, device)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator, device)
    sx = (s * log_r.exp()).sqrt().clamp(max=1.0)
    sy = (s / log_r.exp()).sqrt().clamp(max=1.0)
    tx = (1 - sx) * _uniform(n, -1.0, 1.0, generator, device)
    ty = (1 - sy) * _uniform(n, -1.0, 1.0, generator, device)
    theta = torch.zeros(n, 3, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = sx, tx
    theta[:, 1, 1], theta[:, 1, 2] = sy, ty
    theta[:, 2, 2] = 1.0
    return theta


def rotation_matrices(n: int, max_degrees: float, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, 3, 3) rotations by angles uniform in [-max_degrees, max_degrees] about the image centre."""
    device = torch.device(device)
    angle = _uniform(n, -max_degrees, max_degrees, generator, device) * (math.pi / 180)
    cos, sin = angle.cos(), angle.sin()
    theta = torch.zeros(n, 3, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 1] = cos, -sin
    theta[:, 1, 0], theta[:, 1, 1] = sin, cos
    theta[:, 2, 2] = 1.0
    return theta


def elastic_offsets(n: int, height: int, width: int, alpha: float, grid: int = 4,
                    generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n, H, W, 2) smooth random displacements: N(0, alpha^2) on a coarse lattice, bicubically upsampled."""
    device = torch.device(device)
    coarse = alpha * _normal((n, 2, grid, grid), generator, device)                    # (n, 2, g, g)
    field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=True)  # (n, 2, H, W)
    return field.permute(0, 2, 3, 1)                                                    # (n, H, W, 2)


def warp(images: torch.Tensor, theta: torch.Tensor, offsets: torch.Tensor | None = None) -> torch.Tensor:
    """Resample (B, C, H, W) images through affine maps theta (B, 2, 3) or (B, 3, 3) plus optional
    grid offsets (B, H, W, 2), with ONE ``F.affine_grid`` + ``F.grid_sample``; outside pixels are 0."""
    _check_images(images)
    b, c, h, w = images.shape
    if theta.shape not in ((b, 2, 3), (b, 3, 3)):
        raise ValueError(f"theta must be (B, 2, 3) or (B, 3, 3) with B={b}, got {tuple(theta.shape)}")
    grid = F.affine_grid(theta[:, :2].to(images.dtype), [b, c, h, w], align_corners=False)  # (B, H, W, 2)
    if offsets is not None:
        if offsets.shape != grid.shape:
            raise ValueError(f"offsets must be {tuple(grid.shape)}, got {tuple(offsets.shape)}")
        grid = grid + offsets.to(grid.dtype)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def add_noise(images: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """images + N(0, std^2) per pixel (not clamped here)."""
    _check_images(images)
    return images + std * _normal(tuple(images.shape), generator, images.device)


def random_erase(images: torch.Tensor, prob: float, scale: tuple[float, float] = (0.05, 0.2),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """With probability ``prob`` per image, set a random box (area fraction in ``scale``, aspect in
    [1/2, 2]) to 0. The boxes are built for the whole batch by comparing coordinate grids."""
    _check_images(images)
    b, _, h, w = images.shape
    dev = images.device
    area = _uniform(b, scale[0], scale[1], generator, dev)
    log_r = _uniform(b, -math.log(2), math.log(2), generator, dev)
    half_h = ((area / log_r.exp()).sqrt() / 2).clamp(max=0.5).view(b, 1, 1)   # (B, 1, 1), image height = 1
    half_w = ((area * log_r.exp()).sqrt() / 2).clamp(max=0.5).view(b, 1, 1)
    cy = _uniform(b, 0.0, 1.0, generator, dev).view(b, 1, 1)
    cx = _uniform(b, 0.0, 1.0, generator, dev).view(b, 1, 1)
    apply = (_uniform(b, 0.0, 1.0, generator, dev) < prob).view(b, 1, 1)
    ys = ((torch.arange(h, device=dev) + 0.5) / h).view(1, h, 1)
    xs = ((torch.arange(w, device=dev) + 0.5) / w).view(1, 1, w)
    box = ((ys - cy).abs() < half_h) & ((xs - cx).abs() < half_w) & apply     # (B, H, W)
    return images.masked_fill(box.unsqueeze(1), 0.0)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"expected float images shaped (B, C, H, W), got {got}"
                         + (f" {images.dtype}" if isinstance(images, torch.Tensor) else ""))


def augment(images: torch.Tensor, cfg: AugmentConfig = AugmentConfig(),
            generator: torch.Generator | None = None) -> torch.Tensor:
    """One random view of each image: (crop o rotate + elastic) in one warp, then erase, noise, clamp to [0, 1].

    images (B, C, H, W) float in [0, 1] -> (B, C, H, W) on the same device.
    """
    _check_images(images)
    b, _, h, w = images.shape
    dev = images.device
    theta = crop_matrices(b, cfg.crop_scale, cfg.crop_ratio, generator, dev)
    if cfg.max_rotation > 0:
        theta = theta @ rotation_matrices(b, cfg.max_rotation, generator, dev)   # rotate, then crop
    offsets = elastic_offsets(b, h, w, cfg.elastic_alpha, cfg.elastic_grid, generator, dev) \
        if cfg.elastic_alpha > 0 else None
    out = warp(images, theta, offsets)
    if cfg.erase_prob > 0:
        out = random_erase(out, cfg.erase_prob, cfg.erase_scale, generator)
    if cfg.noise_std > 0:
        out = add_noise(out, cfg.noise_std, generator)
    return out.clamp(0.0, 1.0)


def two_views(images: torch.Tensor, cfg: AugmentConfig = AugmentConfig(),
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two independent views of each image (one batched call on 2B images): ((B, C, H, W), (B, C, H, W))."""
    _check_images(images)
    both = augment(torch.cat([images, images]), cfg, generator)    # (2B, C, H, W)
    return both[: len(images)], both[len(images):]

"""A Transformer over feature frames (notebook 06): masked-frame reconstruction and keyword recognition.

The same pre-LN blocks as chapters 01, 02 and 05 (:class:`course_lib.models.transformer.TransformerBlock`);
only the input differs: a linear projection of each frame's F features instead of a token
embedding, learned positions, and a learned vector that replaces hidden frames (as [MASK] does
for tokens in chapter 02):

    e_t = W_in x_t + b          (x_t ∈ R^F, e_t ∈ R^D);   e_t ← m for hidden t;   h = Blocks(e + P)

:class:`FrameReconstructor` adds a head R^D → R^F that predicts each frame's features (Mockingjay /
TERA style pre-training). :class:`FrameClassifier` reads every layer's output h^(0) … h^(L)
(h^(0) = e + P, before any block), mixes them with learned softmax weights (SUPERB's weighted
sum, Yang et al. 2021), pools each channel's mean and standard deviation over frames and adds a
linear classifier:

    z = Σ_l softmax(w)_l h^(l);   u = [mean_t z_t, std_t z_t] ∈ R^{2D};   logits = W u + b
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..attention import LearnedPositions
from .transformer import TransformerBlock, TransformerConfig, _init_weights

__all__ = ["FrameEncoderConfig", "FrameEncoder", "FrameReconstructor", "FrameClassifier", "mean_std_pool"]


def mean_std_pool(h: torch.Tensor) -> torch.Tensor:
    """(..., T, D) -> (..., 2D): each channel's mean and standard deviation over the T frames."""
    return torch.cat([h.mean(dim=-2), h.std(dim=-2)], dim=-1)


@dataclass(frozen=True)
class FrameEncoderConfig:
    """Sizes of the frame encoder: F input features per frame, up to ``max_frames`` frames."""

    n_features: int = 40
    max_frames: int = 98
    d_model: int = 96
    n_heads: int = 4
    n_layers: int = 3
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.n_features < 1 or self.max_frames < 1:
            raise ValueError(f"n_features and max_frames must be >= 1, got {self}")
        self.block_config()                                                     # validates the shared sizes

    def block_config(self) -> TransformerConfig:
        """The blocks' sizes as the Transformer chapters' config (no vocabulary: inputs are frames)."""
        return TransformerConfig(vocab_size=1, max_len=self.max_frames, d_model=self.d_model,
                                 n_heads=self.n_heads, n_layers=self.n_layers, dropout=self.dropout)


class FrameEncoder(nn.Module):
    """x (B, T, F) and an optional hidden-frame mask (B, T) -> h (B, T, D)."""

    def __init__(self, cfg: FrameEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.proj = nn.Linear(cfg.n_features, cfg.d_model)
        self.mask_vector = nn.Parameter(torch.zeros(cfg.d_model))
        self.pos = LearnedPositions(cfg.max_frames, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(cfg.block_config()) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.apply(_init_weights)
        nn.init.normal_(self.mask_vector, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.hidden_states(x, mask)[-1]

    def hidden_states(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> list[torch.Tensor]:
        """[h^(0), …, h^(L)], each (B, T, D): the embedded input, then each block's output (the last normalised)."""
        if x.ndim != 3 or x.shape[-1] != self.cfg.n_features or not x.is_floating_point():
            raise ValueError(f"x must be float (B, T, {self.cfg.n_features}), got {tuple(x.shape)} {x.dtype}")
        e = self.proj(x)                                                        # (B, T, D)
        if mask is not None:
            if mask.shape != x.shape[:2] or mask.dtype != torch.bool:
                raise ValueError(f"mask must be bool (B, T) = {tuple(x.shape[:2])}, got {tuple(mask.shape)}")
            e = torch.where(mask[..., None], self.mask_vector.to(e.dtype), e)  # hidden frames -> m
        states = [self.drop(self.pos(e))]
        for block in self.blocks:
            states.append(block(states[-1]))
        states[-1] = self.ln_f(states[-1])
        return states


class FrameReconstructor(nn.Module):
    """Encoder + a linear head predicting every frame's F features: (B, T, F) -> (B, T, F)."""

    def __init__(self, cfg: FrameEncoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = FrameEncoder(cfg)
        self.head = nn.Linear(cfg.d_model, cfg.n_features)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.encoder(x, mask))


class FrameClassifier(nn.Module):
    """Encoder + softmax-weighted sum of its layers + mean/std pooling + linear layer: (B, T, F) -> (B, n_classes).

    Build it around a pre-trained encoder with ``FrameClassifier(cfg, n, encoder=pretrained.encoder)``
    (the weights are copied, so fine-tuning never changes the pre-trained model). The layer weights
    start equal.
    """

    def __init__(self, cfg: FrameEncoderConfig, n_classes: int, encoder: FrameEncoder | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = FrameEncoder(cfg)
        if encoder is not None:
            if encoder.cfg != cfg:
                raise ValueError(f"the encoder was built for {encoder.cfg}, not {cfg}")
            self.encoder.load_state_dict(encoder.state_dict())
        self.layer_logits = nn.Parameter(torch.zeros(cfg.n_layers + 1))          # w, one per h^(l)
        self.head = nn.Linear(2 * cfg.d_model, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The utterance's representation u (B, 2D): mean and std over frames of the weighted layer sum."""
        states = torch.stack(self.encoder.hidden_states(x))                     # (L+1, B, T, D)
        weights = self.layer_logits.softmax(dim=0).to(states.dtype)             # (L+1,)
        return mean_std_pool(torch.einsum("l,lbtd->btd", weights, states))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

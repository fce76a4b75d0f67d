"""Masked reconstruction of a continuous signal (notebook 06): span masks and a loss on the hidden frames.

Mockingjay (Liu et al. 2020) and TERA (Liu, Li & Lee 2021): hide spans of consecutive
feature frames, and train the encoder to predict the hidden frames from the visible ones,

    L = (1 / |M| F) Σ_{t ∈ M} Σ_f |x̂_{t,f} − x_{t,f}|          (L1; MSE squares the difference)

where M is the set of masked frames and F the number of bands. The sum runs over M only:
visible frames are copied by any encoder that can see them, so scoring them teaches nothing.
Spans, not single frames, because neighbouring frames overlap (a 25 ms window every 10 ms)
and a single hidden frame is recovered by interpolating its neighbours.

What is predicted can be the frames themselves or, by default in chapter 06, each frame's
deviation from its clip's mean (:func:`centre_per_clip`, cepstral mean normalisation of the target):

    y_{t,f} = x_{t,f} − (1/T) Σ_{t'} x_{t',f}

so the part of a frame that is constant over the clip (the voice's average spectrum, the noise
floor, the level) earns nothing, and the loss rewards only what changes within the clip.
"""

from __future__ import annotations

import math

import torch

__all__ = ["span_mask", "band_mask", "centre_per_clip", "masked_reconstruction_loss", "interpolate_masked"]


def span_mask(batch: int, frames: int, fraction: float, span: int,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, frames) bool, True = hidden: round(fraction·frames / span) spans of ``span`` frames.

    Span starts are drawn without replacement from 0 … frames − span (at least one span when
    ``fraction > 0``); spans may touch or overlap, so the hidden fraction is about ``fraction``
    (the notebook measures it).
    """
    if not (isinstance(fraction, (int, float)) and 0.0 <= fraction <= 1.0) or math.isnan(fraction):
        raise ValueError(f"fraction must be in [0, 1], got {fraction!r}")
    if not 1 <= span <= frames:
        raise ValueError(f"span must be in [1, frames={frames}], got {span}")
    n_spans = min(max(round(fraction * frames / span), int(fraction > 0)), frames - span + 1)
    mask = torch.zeros(batch, frames, dtype=torch.bool)
    if n_spans == 0:
        return mask
    starts = torch.rand(batch, frames - span + 1, generator=generator).argsort(dim=1)[:, :n_spans]  # (B, S)
    offsets = starts[:, :, None] + torch.arange(span)                                                  # (B, S, span)
    mask.scatter_(1, offsets.reshape(batch, -1), True)
    return mask


def band_mask(batch: int, bands: int, max_width: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(batch, bands) bool, True = hidden: TERA's frequency masking, one block of adjacent bands per clip.

    Each clip hides bands [s, s + w) with the width w uniform in 0 … ``max_width`` and the start s
    uniform in 0 … bands − w; the hidden bands are zeroed at every time step of the input (zero is
    each band's mean after normalising) and scored by the loss, so the model must infer a band from
    the bands around it as the time mask makes it infer a frame from its neighbours.
    """
    if not 0 <= max_width <= bands:
        raise ValueError(f"max_width must be in [0, bands={bands}], got {max_width}")
    width = torch.randint(0, max_width + 1, (batch, 1), generator=generator)                 # (B, 1)
    start = (torch.rand(batch, 1, generator=generator) * (bands - width + 1)).floor().long()  # (B, 1)
    f = torch.arange(bands)                                                                   # (bands,)
    return (f >= start) & (f < start + width)


def centre_per_clip(x: torch.Tensor) -> torch.Tensor:
    """(B, T, F) -> (B, T, F): y_{t,f} = x_{t,f} − mean_t x_{t,f}, each feature's deviation from its clip's mean
    over time (cepstral mean normalisation); every clip's every feature then averages 0 over time."""
    if x.ndim != 3 or not x.is_floating_point():
        raise ValueError(f"expected float frames (B, T, F), got {tuple(x.shape)} {x.dtype}")
    return x - x.mean(dim=1, keepdim=True)


def masked_reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
                               kind: str = "l1") -> torch.Tensor:
    """Mean L1 (or ``kind="mse"``) error over the frames where ``mask`` (B, T) is True; all frames if None.

    pred, target (B, T, F). A (B, T, F) mask scores single values instead (time and frequency
    masking together). Computed in float32 (autocast may hand over bf16 predictions).
    """
    if pred.shape != target.shape or pred.ndim != 3:
        raise ValueError(f"pred and target must both be (B, T, F), got {tuple(pred.shape)}, {tuple(target.shape)}")
    if kind not in ("l1", "mse"):
        raise ValueError(f"kind must be 'l1' or 'mse', got {kind!r}")
    err = (pred.float() - target.float())
    err = err.abs() if kind == "l1" else err ** 2                         # (B, T, F)
    if mask is None:
        return err.mean()
    if mask.shape not in (pred.shape[:2], pred.shape) or mask.dtype != torch.bool:
        raise ValueError(f"mask must be bool (B, T) = {tuple(pred.shape[:2])} or (B, T, F) = {tuple(pred.shape)}, "
                         f"got {tuple(mask.shape)} {mask.dtype}")
    if not bool(mask.any()):
        raise ValueError("the mask hides no frame: there is nothing to reconstruct")
    return err[mask].mean()                                  # (N_masked, F) or (N_masked_values,) -> scalar


def interpolate_masked(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A trivial predictor: each hidden frame linearly interpolated between the nearest visible frames.

    x (B, T, F), mask (B, T). Hidden frames at an edge copy the nearest visible frame; a clip
    with no visible frame is left as is.
    """
    out = x.clone()
    t = torch.arange(x.shape[1], dtype=torch.float64)
    for b in range(x.shape[0]):
        visible = (~mask[b]).nonzero().flatten()
        hidden = mask[b].nonzero().flatten()
        if len(visible) == 0 or len(hidden) == 0:
            continue
        pos = torch.searchsorted(visible, hidden).clamp(1, len(visible) - 1) if len(visible) > 1 else None
        if pos is None:
            out[b, hidden] = x[b, visible[0]]
            continue
        left, right = visible[pos - 1], visible[pos]
        w = ((t[hidden] - t[left]) / (t[right] - t[left]).clamp_min(1)).clamp(0, 1).to(x.dtype)[:, None]
        out[b, hidden] = (1 - w) * x[b, left] + w * x[b, right]
    return out

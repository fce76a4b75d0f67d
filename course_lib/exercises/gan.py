"""Exercise checkers for notebook 03 (GANs): the two losses, from logits, numerically stable.

* :func:`check_discriminator_loss` - ``fn(real_logits, fake_logits)`` must return
  BCE(real, 1) + BCE(fake, 0), each a mean over its batch (Goodfellow et al., 2014, eq. 1).
* :func:`check_generator_loss` - ``fn(fake_logits)`` must return the non-saturating loss
  -mean log D(G(z)) (section 3 of the paper).

Both must stay finite for logits of +-100, as ``BCEWithLogitsLoss`` does: use
log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_discriminator_loss", "check_generator_loss"]


def _as_scalar(name: str, value) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ExerciseWrong(f"{name} should return a torch scalar tensor, got {type(value).__name__}")
    if value.numel() != 1:
        raise ExerciseWrong(f"{name} should return one number (a mean over the batch), got shape {tuple(value.shape)}")
    return value.detach().double().reshape(())


def _cases() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    return [(torch.randn(8, generator=gen) * 2, torch.randn(8, generator=gen) * 2),
            (torch.randn(5, generator=gen) + 1, torch.randn(13, generator=gen) - 1)]   # different batch sizes


_EXTREME = (torch.tensor([100.0, -100.0, 30.0]), torch.tensor([-100.0, 100.0, -30.0]))


def _d_reference(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    return (F.softplus(-real.double()).mean() + F.softplus(fake.double()).mean())


def _g_reference(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake.double()).mean()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.isclose(a, b, rtol=1e-4, atol=1e-5))


def check_discriminator_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], quiet: bool = False) -> Verdict:
    """Check ``fn(real_logits (B,), fake_logits (M,)) -> scalar`` = BCE(real, 1) + BCE(fake, 0)."""

    def check(answer: Callable) -> None:
        for real, fake in _cases():
            got = _as_scalar("discriminator_loss", answer(real.clone(), fake.clone()))
            want = _d_reference(real, fake)
            if _close(got, want):
                continue
            if _close(got, F.softplus(real.double()).mean() + F.softplus(-fake.double()).mean()):
                raise ExerciseWrong("the labels are swapped: real images need target 1 (-log D(x)), "
                                    "fakes target 0 (-log(1 - D(G(z))))")
            if _close(got, F.softplus(-real.double()).mean()) or _close(got, F.softplus(fake.double()).mean()):
                raise ExerciseWrong("only one of the two terms is there: D needs BCE on the real batch AND on the fake batch")
            if _close(got, want / 2):
                raise ExerciseWrong("you averaged the two terms; the value function adds them: BCE(real, 1) + BCE(fake, 0)")
            if _close(got, -want):
                raise ExerciseWrong("the sign is flipped: that is V(D, G), which D maximises; return the loss -V to minimise")
            raise ExerciseWrong(f"wrong value for real logits {[round(v, 3) for v in real.tolist()[:3]]}...: got {float(got):.5f}, "
                                f"expected {float(want):.5f}")
        got = _as_scalar("discriminator_loss", answer(*_EXTREME))
        if not torch.isfinite(got):
            raise ExerciseWrong("the loss is not finite for logits of +-100: log(sigmoid(l)) underflows; "
                                "use F.logsigmoid / F.softplus (the BCEWithLogits trick)")
        if not _close(got, _d_reference(*_EXTREME)):
            raise ExerciseWrong(f"inaccurate for large logits (+-100): got {float(got):.4f}, expected "
                                f"{float(_d_reference(*_EXTREME)):.4f}; clamping probabilities is not enough, use softplus")

    return run_checker("discriminator loss from logits", fn, check, quiet)


def check_generator_loss(fn: Callable[[torch.Tensor], torch.Tensor], quiet: bool = False) -> Verdict:
    """Check ``fn(fake_logits (B,)) -> scalar`` = -mean log D(G(z)), the non-saturating loss."""

    def check(answer: Callable) -> None:
        for _, fake in _cases():
            got = _as_scalar("generator_loss", answer(fake.clone()))
            want = _g_reference(fake)
            if _close(got, want):
                continue
            if _close(got, F.softplus(fake.double()).mean()):
                raise ExerciseWrong("this uses the FAKE label for the generator's images: it is D's objective, so "
                                    "minimising it makes the fakes easier to detect; use target 1 (real)")
            if _close(got, -F.softplus(fake.double()).mean()):
                raise ExerciseWrong("this is the saturating loss log(1 - D(G(z))): its gradient vanishes when "
                                    "D(G(z)) ~ 0, right at the start; minimise -log D(G(z)) instead")
            if _close(got, -want):
                raise ExerciseWrong("the sign is flipped: return -mean log D(G(z)), a loss to minimise")
            raise ExerciseWrong(f"wrong value: got {float(got):.5f}, expected {float(want):.5f} for logits "
                                f"{[round(v, 3) for v in fake.tolist()[:3]]}...")
        got = _as_scalar("generator_loss", answer(_EXTREME[1]))
        if not torch.isfinite(got):
            raise ExerciseWrong("the loss is not finite for logits of +-100: log(sigmoid(l)) underflows; "
                                "use -F.logsigmoid(l) = F.softplus(-l)")
        if not _close(got, _g_reference(_EXTREME[1])):
            raise ExerciseWrong(f"inaccurate for large logits (+-100): got {float(got):.4f}, expected "
                                f"{float(_g_reference(_EXTREME[1])):.4f}; use F.softplus(-l), not a clamped log")

    return run_checker("non-saturating generator loss from logits", fn, check, quiet)

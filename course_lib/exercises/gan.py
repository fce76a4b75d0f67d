"""Exercise checkers for notebook 03 (GANs): two losses, from logits, numerically stable.

* :func:`check_smoothed_discriminator_loss` - ``fn(real_logits, fake_logits, real_target)`` must return
  the discriminator's loss with one-sided label smoothing (Salimans et al., 2016, section 3.4):
  BCE(real, real_target) + BCE(fake, 0), each a mean over its batch.
* :func:`check_generator_loss` - ``fn(fake_logits)`` must return the non-saturating loss
  -mean log D(G(z)) (section 3 of the paper).

Both must stay finite for logits of +-100, as ``BCEWithLogitsLoss`` does: use
log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_smoothed_discriminator_loss", "check_generator_loss"]


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


def _d_reference(real: torch.Tensor, fake: torch.Tensor, y: float) -> torch.Tensor:
    """BCE(real, y) + BCE(fake, 0) = mean[y softplus(-l) + (1 - y) softplus(l)] + mean softplus(fake)."""
    real, fake = real.double(), fake.double()
    return (y * F.softplus(-real) + (1 - y) * F.softplus(real)).mean() + F.softplus(fake).mean()


def _g_reference(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake.double()).mean()


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.isclose(a, b, rtol=1e-4, atol=1e-5))


_TARGETS = (0.9, 0.8, 1.0)


def check_smoothed_discriminator_loss(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor],
                                      quiet: bool = False) -> Verdict:
    """Check ``fn(real_logits (B,), fake_logits (M,), real_target) -> scalar``.

    The answer is BCE(real, real_target) + BCE(fake, 0).
    """

    def check(answer: Callable) -> None:
        for y in _TARGETS:
            for real, fake in _cases():
                got = _as_scalar("smoothed_discriminator_loss", answer(real.clone(), fake.clone(), y))
                want = _d_reference(real, fake, y)
                if _close(got, want):
                    continue
                r, f = real.double(), fake.double()
                if _close(got, _d_reference(real, fake, 1.0)):
                    raise ExerciseWrong(f"real_target = {y} is ignored: the real images' BCE must use the soft "
                                        "target y, -[y log D(x) + (1 - y) log(1 - D(x))]")
                if _close(got, (y * F.softplus(-r)).mean() + F.softplus(f).mean()):
                    raise ExerciseWrong("the (1 - y) log(1 - D(x)) term is missing: BCE with a soft target y is "
                                        "-[y log D(x) + (1 - y) log(1 - D(x))]")
                if _close(got, want - F.softplus(f).mean() + (y * F.softplus(f) + (1 - y) * F.softplus(-f)).mean()):
                    raise ExerciseWrong(f"the fakes are smoothed too (target {1 - y:.1f}): one-sided smoothing keeps "
                                        "target 0 for the fakes, otherwise D is rewarded for calling fakes a bit real")
                if _close(got, _d_reference(fake, real, y)):
                    raise ExerciseWrong("real and fake logits are swapped: the soft target goes with the real batch, "
                                        "target 0 with the fake batch")
                if _close(got, want / 2):
                    raise ExerciseWrong("you averaged the two terms; the loss adds them: BCE(real, y) + BCE(fake, 0)")
                raise ExerciseWrong(f"wrong value for real_target {y} and real logits "
                                    f"{[round(v, 3) for v in real.tolist()[:3]]}...: got {float(got):.5f}, "
                                    f"expected {float(want):.5f}")
        got = _as_scalar("smoothed_discriminator_loss", answer(*_EXTREME, 0.9))
        if not torch.isfinite(got):
            raise ExerciseWrong("the loss is not finite for logits of +-100: log(sigmoid(l)) underflows; "
                                "use log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l)")
        want = _d_reference(*_EXTREME, 0.9)
        if not _close(got, want):
            raise ExerciseWrong(f"inaccurate for large logits (+-100): got {float(got):.4f}, expected "
                                f"{float(want):.4f}; clamping probabilities is not enough, use softplus")

    return run_checker("one-sided label-smoothed discriminator loss", fn, check, quiet)


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

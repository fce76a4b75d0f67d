"""GAN objectives: the minimax value function, the discriminator loss and three generator losses.

Goodfellow et al. (2014), "Generative Adversarial Nets", eq. 1:

    min_G max_D  V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))],   D = sigmoid(logit).

* The discriminator maximises V: binary cross-entropy with target 1 on real and 0 on fake.
* ``"saturating"``: the generator literally minimises E log(1 - D(G(z))). Its gradient with
  respect to the logit is -D(G(z)), which vanishes exactly when G is bad (D(G(z)) ~ 0).
* ``"non_saturating"``: maximise E log D(G(z)) instead (section 3 of the paper), i.e. BCE with
  the *real* label on fakes; gradient -(1 - D(G(z))), strong when G is bad. Same fixed point.
* ``"fake_label"``: the common bug, BCE with the *fake* label on the generator's images. It is
  the discriminator's own objective on fakes, so minimising it makes G *more* detectable.

All functions take logits and use log-sigmoid/softplus identities
(log sigmoid(l) = -softplus(-l), log(1 - sigmoid(l)) = -softplus(l)), so they stay finite for
any logit. Used by notebook 03 and :mod:`course_lib.chapters.gan`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["GENERATOR_LOSSES", "value_function", "discriminator_loss", "generator_loss",
           "generator_logit_grad"]

GENERATOR_LOSSES = ("non_saturating", "saturating", "fake_label")


def _check_logits(name: str, logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.ndim != 1 or logits.numel() == 0:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{name} must be a non-empty 1-D tensor of logits (B,), got {shape}")
    if not logits.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {logits.dtype}")


def value_function(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """V(D, G) = mean log D(x) + mean log(1 - D(G(z))) (eq. 1); at most 0, -2 log 2 at the equilibrium."""
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    return F.logsigmoid(real_logits.float()).mean() - F.softplus(fake_logits.float()).mean()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       real_target: float = 1.0) -> torch.Tensor:
    """BCE(real, 1) + BCE(fake, 0) = -V(D, G), each term a mean over its batch.

    ``real_target`` < 1 is one-sided label smoothing (Salimans et al., 2016, "Improved
    Techniques for Training GANs", section 3.4): the real target becomes e.g. 0.9, which
    stops D from pushing real logits to infinity; the fake target stays 0.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    if not 0.5 < real_target <= 1.0:
        raise ValueError(f"real_target must be in (0.5, 1], got {real_target}")
    real = real_logits.float()
    real_term = real_target * F.softplus(-real) + (1.0 - real_target) * F.softplus(real)
    return real_term.mean() + F.softplus(fake_logits.float()).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """The generator's loss on D's logits for its images (see the module docstring).

    ``non_saturating``: -mean log D(G(z)) = mean softplus(-l)   (use this)
    ``saturating``:     mean log(1 - D(G(z))) = -mean softplus(l)  (eq. 1 taken literally)
    ``fake_label``:     -mean log(1 - D(G(z))) = mean softplus(l)  (the wrong-label bug)
    """
    _check_logits("fake_logits", fake_logits)
    logits = fake_logits.float()
    if kind == "non_saturating":
        return F.softplus(-logits).mean()
    if kind == "saturating":
        return -F.softplus(logits).mean()
    if kind == "fake_label":
        return F.softplus(logits).mean()
    raise ValueError(f"kind must be one of {GENERATOR_LOSSES}, got {kind!r}")


def generator_logit_grad(d_fake: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """d(loss)/d(logit) per sample, as a function of D(G(z)) = p in (0, 1).

    non_saturating: p - 1;  saturating: -p;  fake_label: p (it pushes the logit *down*).
    """
    if not isinstance(d_fake, torch.Tensor) or not d_fake.is_floating_point():
        raise ValueError("d_fake must be a floating-point tensor of probabilities D(G(z))")
    if d_fake.numel() and (d_fake.min() < 0 or d_fake.max() > 1):
        raise ValueError(f"d_fake must be probabilities in [0, 1], got range "
                         f"[{float(d_fake.min()):.3g}, {float(d_fake.max()):.3g}]")
    if kind == "non_saturating":
        return d_fake - 1.0
    if kind == "saturating":
        return -d_fake
    if kind == "fake_label":
        return d_fake.clone()
    raise ValueError(f"kind must be one of {GENERATOR_LOSSES}, got {kind!r}")

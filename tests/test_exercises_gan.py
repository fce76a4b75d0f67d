"""Checkers of notebook 03's exercises: right answers pass, wrong ones are named, stubs are 'not attempted'."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.exercises.gan import check_discriminator_loss, check_generator_loss
from course_lib.exercises.solutions import gan as solutions


def _stub(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- discriminator loss

def test_discriminator_solution_is_correct():
    assert check_discriminator_loss(solutions.discriminator_loss, quiet=True).status == "correct"


def test_discriminator_bce_with_logits_is_correct():
    def answer(real, fake):
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert check_discriminator_loss(answer, quiet=True).correct


def test_discriminator_not_attempted():
    assert check_discriminator_loss(_stub, quiet=True).status == "not attempted"


def test_discriminator_naive_log_sigmoid_is_unstable():
    def naive(real, fake):
        return -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    v = check_discriminator_loss(naive, quiet=True)
    assert v.status == "wrong" and "not finite" in v.message


def test_discriminator_clamped_log_is_inaccurate():
    def clamped(real, fake):
        eps = 1e-7
        return -(torch.log(torch.sigmoid(real).clamp(eps, 1)).mean()
                 + torch.log((1 - torch.sigmoid(fake)).clamp(eps, 1)).mean())
    v = check_discriminator_loss(clamped, quiet=True)
    assert v.status == "wrong" and "large logits" in v.message


def test_discriminator_swapped_labels():
    v = check_discriminator_loss(lambda r, f: solutions.discriminator_loss(f, r), quiet=True)
    assert v.status == "wrong" and "swapped" in v.message


def test_discriminator_missing_term_and_average_and_sign():
    v = check_discriminator_loss(lambda r, f: F.softplus(-r).mean(), quiet=True)
    assert v.status == "wrong" and "one of the two terms" in v.message
    v = check_discriminator_loss(lambda r, f: solutions.discriminator_loss(r, f) / 2, quiet=True)
    assert v.status == "wrong" and "averaged" in v.message
    v = check_discriminator_loss(lambda r, f: -solutions.discriminator_loss(r, f), quiet=True)
    assert v.status == "wrong" and "sign" in v.message


def test_discriminator_not_a_scalar():
    v = check_discriminator_loss(lambda r, f: F.softplus(-r), quiet=True)
    assert v.status == "wrong" and "one number" in v.message


def test_discriminator_crash_is_reported():
    v = check_discriminator_loss(lambda r, f: r.view(3, -1).sum(), quiet=True)   # 8 logits do not fit 3 rows
    assert v.status == "wrong" and "raised" in v.message


# ----------------------------------------------------------------------------- generator loss

def test_generator_solution_is_correct():
    assert check_generator_loss(solutions.generator_loss, quiet=True).status == "correct"


def test_generator_not_attempted():
    assert check_generator_loss(_stub, quiet=True).status == "not attempted"


def test_generator_fake_label_mistake_is_named():
    v = check_generator_loss(lambda f: F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)), quiet=True)
    assert v.status == "wrong" and "FAKE label" in v.message


def test_generator_saturating_is_named():
    v = check_generator_loss(lambda f: torch.log(1 - torch.sigmoid(f)).mean(), quiet=True)
    assert v.status == "wrong" and "saturating" in v.message


def test_generator_naive_is_unstable():
    v = check_generator_loss(lambda f: -torch.log(torch.sigmoid(f)).mean(), quiet=True)
    assert v.status == "wrong" and "not finite" in v.message


def test_generator_sum_instead_of_mean():
    v = check_generator_loss(lambda f: F.softplus(-f).sum(), quiet=True)
    assert v.status == "wrong" and "wrong value" in v.message

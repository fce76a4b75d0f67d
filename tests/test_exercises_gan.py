"""Checkers of notebook 03's exercises: right answers pass, wrong ones are named, stubs are 'not attempted'."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from course_lib.exercises.gan import check_generator_loss, check_smoothed_discriminator_loss
from course_lib.objectives.gan import discriminator_loss
from course_lib.exercises.solutions import gan as solutions


def _stub(*args):
    raise NotImplementedError


# ----------------------------------------------------------------------------- label-smoothed discriminator loss

def test_smoothed_discriminator_solution_is_correct():
    assert check_smoothed_discriminator_loss(solutions.smoothed_discriminator_loss, quiet=True).status == "correct"


def test_smoothed_discriminator_bce_with_logits_is_correct():
    def answer(real, fake, y):
        return (F.binary_cross_entropy_with_logits(real, torch.full_like(real, y))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))
    assert check_smoothed_discriminator_loss(answer, quiet=True).correct


def test_smoothed_discriminator_matches_course_lib():
    assert check_smoothed_discriminator_loss(discriminator_loss, quiet=True).correct


def test_smoothed_discriminator_not_attempted():
    assert check_smoothed_discriminator_loss(_stub, quiet=True).status == "not attempted"


def test_smoothed_discriminator_target_ignored():
    v = check_smoothed_discriminator_loss(lambda r, f, y: F.softplus(-r).mean() + F.softplus(f).mean(), quiet=True)
    assert v.status == "wrong" and "ignored" in v.message


def test_smoothed_discriminator_missing_term():
    v = check_smoothed_discriminator_loss(lambda r, f, y: (y * F.softplus(-r)).mean() + F.softplus(f).mean(),
                                          quiet=True)
    assert v.status == "wrong" and "missing" in v.message


def test_smoothed_discriminator_two_sided():
    def two_sided(r, f, y):
        fake_target = torch.full_like(f, 1 - y)                  # the mistake: fakes get 1 - y, not 0
        return (F.binary_cross_entropy_with_logits(r, torch.full_like(r, y))
                + F.binary_cross_entropy_with_logits(f, fake_target))
    v = check_smoothed_discriminator_loss(two_sided, quiet=True)
    assert v.status == "wrong" and "fakes are smoothed too" in v.message


def test_smoothed_discriminator_swapped_average_and_other():
    v = check_smoothed_discriminator_loss(lambda r, f, y: solutions.smoothed_discriminator_loss(f, r, y), quiet=True)
    assert v.status == "wrong" and "swapped" in v.message
    v = check_smoothed_discriminator_loss(lambda r, f, y: solutions.smoothed_discriminator_loss(r, f, y) / 2,
                                          quiet=True)
    assert v.status == "wrong" and "averaged" in v.message
    v = check_smoothed_discriminator_loss(lambda r, f, y: solutions.smoothed_discriminator_loss(r, f, y) + 0.1,
                                          quiet=True)
    assert v.status == "wrong" and "wrong value" in v.message


def test_smoothed_discriminator_naive_log_sigmoid_is_unstable():
    def naive(r, f, y):
        return -((y * torch.log(torch.sigmoid(r)) + (1 - y) * torch.log(1 - torch.sigmoid(r))).mean()
                 + torch.log(1 - torch.sigmoid(f)).mean())
    v = check_smoothed_discriminator_loss(naive, quiet=True)
    assert v.status == "wrong" and "not finite" in v.message


def test_smoothed_discriminator_clamped_log_is_inaccurate():
    def clamped(r, f, y):
        eps = 1e-7
        pr, pf = torch.sigmoid(r).clamp(eps, 1 - eps), torch.sigmoid(f).clamp(eps, 1 - eps)
        return -((y * torch.log(pr) + (1 - y) * torch.log(1 - pr)).mean() + torch.log(1 - pf).mean())
    v = check_smoothed_discriminator_loss(clamped, quiet=True)
    assert v.status == "wrong" and "large logits" in v.message


def test_smoothed_discriminator_not_a_scalar_and_crash():
    v = check_smoothed_discriminator_loss(lambda r, f, y: F.softplus(-r), quiet=True)
    assert v.status == "wrong" and "one number" in v.message
    # 8 logits do not fit 3 rows
    v = check_smoothed_discriminator_loss(lambda r, f, y: r.view(3, -1).sum(), quiet=True)
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

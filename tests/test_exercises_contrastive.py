"""Checkers of notebook 04's exercises: right answers pass, wrong ones are named, stubs are 'not attempted'."""

import torch
import torch.nn.functional as F

from course_lib.exercises.contrastive import check_nt_xent, check_translate
from course_lib.exercises.solutions import contrastive as solutions


def _stub(*args):
    raise NotImplementedError


def test_solutions_pass():
    assert check_nt_xent(solutions.nt_xent, quiet=True).correct
    assert check_translate(solutions.translate, quiet=True).correct


def test_stubs_not_attempted():
    assert check_nt_xent(_stub, quiet=True).status == "not attempted"
    assert check_translate(_stub, quiet=True).status == "not attempted"


def _nt_xent_variant(normalize=True, exclude_self=True, temperature_used=True):
    def fn(z1, z2, t):
        b = z1.shape[0]
        z = torch.cat([z1, z2])
        u = F.normalize(z, dim=1) if normalize else z
        logits = u @ u.T / (t if temperature_used else 1.0)
        if exclude_self:
            logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
        return F.cross_entropy(logits, torch.cat([torch.arange(b, 2 * b), torch.arange(b)]))
    return fn


def test_nt_xent_mistakes_are_named():
    v = check_nt_xent(_nt_xent_variant(exclude_self=False), quiet=True)
    assert v.status == "wrong" and "self-similarity" in v.message
    v = check_nt_xent(_nt_xent_variant(normalize=False), quiet=True)
    assert v.status == "wrong" and "normalised" in v.message
    v = check_nt_xent(_nt_xent_variant(temperature_used=False), quiet=True)
    assert v.status == "wrong" and "temperature" in v.message


def test_nt_xent_mse_and_triplet_are_wrong():
    mse = lambda z1, z2, t: ((F.normalize(z1, dim=1) - F.normalize(z2, dim=1)) ** 2).sum(1).mean()
    assert check_nt_xent(mse, quiet=True).status == "wrong"

    def triplet(z1, z2, t):
        u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
        d_pos = (u1 - u2).norm(dim=1)
        d_neg = (u1 - u2.roll(1, 0)).norm(dim=1)
        return F.relu(d_pos - d_neg + 0.5).mean()
    assert check_nt_xent(triplet, quiet=True).status == "wrong"


def test_nt_xent_crash_is_reported():
    v = check_nt_xent(lambda z1, z2, t: z1 @ z2, quiet=True)
    assert v.status == "wrong" and "raised" in v.message


def test_translate_mistakes_are_named():
    wrong_sign = lambda x, s: solutions.translate(x, -s)
    v = check_translate(wrong_sign, quiet=True)
    assert v.status == "wrong" and "wrong way" in v.message
    swapped = lambda x, s: solutions.translate(x, s.flip(1))
    v = check_translate(swapped, quiet=True)
    assert v.status == "wrong" and "swapped" in v.message
    half = lambda x, s: solutions.translate(x, s.float() / 2)
    v = check_translate(half, quiet=True)
    assert v.status == "wrong" and "2/W" in v.message
    v = check_translate(lambda x, s: x[:, :, 1:], quiet=True)
    assert v.status == "wrong" and "shaped like the input" in v.message

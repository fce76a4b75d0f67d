"""Checkers of notebook 04's exercises: right answers pass, wrong ones are named, stubs are 'not attempted'."""

import torch
import torch.nn.functional as F

from course_lib.exercises.contrastive import check_alignment_uniformity, check_nt_xent_logits, check_translate
from course_lib.exercises.solutions import contrastive as solutions


def _stub(*args):
    raise NotImplementedError


def test_solutions_pass():
    assert check_alignment_uniformity(solutions.alignment, solutions.uniformity, quiet=True).correct
    assert check_translate(solutions.translate, quiet=True).correct


def test_stubs_not_attempted():
    assert check_alignment_uniformity(_stub, _stub, quiet=True).status == "not attempted"
    assert check_alignment_uniformity(solutions.alignment, _stub, quiet=True).status == "not attempted"
    assert check_translate(_stub, quiet=True).status == "not attempted"


def _uniformity_variant(normalize=True, distinct=True, squared=True, log=True):
    def fn(z, t=2.0):
        u = F.normalize(z, dim=1) if normalize else z
        d = torch.cdist(u, u) if not distinct else torch.pdist(u)
        d2 = d.pow(2) if squared else d
        m = torch.exp(-t * d2).mean()
        return m.log() if log else m
    return fn


def test_alignment_uniformity_mistakes_are_named():
    def check(align, unif):
        return check_alignment_uniformity(align, unif, quiet=True)
    raw_align = lambda z1, z2, alpha=2.0: (z1 - z2).norm(dim=1).pow(alpha).mean()
    v = check(raw_align, solutions.uniformity)
    assert v.status == "wrong" and "alignment: normalise" in v.message
    fixed_power = lambda z1, z2, alpha=2.0: solutions.alignment(z1, z2, 2.0)
    v = check(fixed_power, solutions.uniformity)
    assert v.status == "wrong" and "power alpha" in v.message
    for kwargs, words in ((dict(normalize=False), "uniformity: normalise"), (dict(distinct=False), "i < j"),
                          (dict(squared=False), "SQUARED"), (dict(log=False), "log of the mean")):
        v = check(solutions.alignment, _uniformity_variant(**kwargs))
        assert v.status == "wrong" and words in v.message, (kwargs, v.message)
    assert check(solutions.alignment, _uniformity_variant()).correct


def test_alignment_uniformity_other_wrong_answers():
    v = check_alignment_uniformity(lambda z1, z2, alpha=2.0: (z1 - z2).pow(2).sum(1), solutions.uniformity,
                                   quiet=True)
    assert v.status == "wrong" and "one number" in v.message
    sign = lambda z, t=2.0: -solutions.uniformity(z, t)
    v = check_alignment_uniformity(solutions.alignment, sign, quiet=True)
    assert v.status == "wrong" and "expected" in v.message
    v = check_alignment_uniformity(solutions.alignment, lambda z, t=2.0: z @ z, quiet=True)
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


def test_nt_xent_logits_solution_passes_and_matches_the_library():
    from course_lib.objectives.infonce import nt_xent, nt_xent_logits
    assert check_nt_xent_logits(solutions.nt_xent_logits, quiet=True).correct
    assert check_nt_xent_logits(_stub, quiet=True).status == "not attempted"
    z1, z2 = torch.randn(5, 4), torch.randn(5, 4)
    logits, targets = solutions.nt_xent_logits(z1, z2, 0.3)
    ref_logits, ref_targets = nt_xent_logits(z1, z2, 0.3)
    assert torch.equal(targets, ref_targets) and torch.allclose(logits, ref_logits)
    assert torch.allclose(F.cross_entropy(logits, targets), nt_xent(z1, z2, 0.3))


def _nt_xent_variant(mask=True, normalize=True, tau_times=False, targets="other"):
    def fn(z1, z2, tau):
        b = len(z1)
        u = torch.cat([z1, z2])
        u = F.normalize(u, dim=1) if normalize else u
        logits = u @ u.T * tau if tau_times else u @ u.T / tau
        if mask:
            logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool), float("-inf"))
        other = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)])
        t = {"other": other, "self": torch.arange(2 * b),
             "first half only": torch.cat([torch.arange(b, 2 * b), torch.arange(b, 2 * b)])}[targets]
        return logits, t
    return fn


def test_nt_xent_logits_mistakes_are_named():
    def message(**kw):
        v = check_nt_xent_logits(_nt_xent_variant(**kw), quiet=True)
        assert v.status == "wrong", kw
        return v.message
    assert "mask the diagonal" in message(mask=False)
    assert "normalise each row" in message(normalize=False)
    assert "divide the similarities by tau" in message(tau_times=True)
    assert "OTHER view" in message(targets="self")
    assert "last B anchors" in message(targets="first half only")
    v = check_nt_xent_logits(lambda z1, z2, tau: _nt_xent_variant()(z1, z2, tau)[0], quiet=True)
    assert v.status == "wrong" and "pair" in v.message

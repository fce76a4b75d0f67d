"""Every exercise checker against answers built to fool it (issue 30, D4/D5).

Each adversary starts from the reference solution and breaks it in one way a careless or hostile answer
would: it exits, it is interrupted, it returns NaN, a constant, or the wrong dtype, it changes its input in
place to make the check easier, or it changes torch's global settings. Every checker must call each of these
wrong, with a message that says something; the reference solution and an answer that is right but also
scribbles on its input afterwards must still pass (except where the exercise forbids changing the input).
"""

from __future__ import annotations

import sys

import pytest
import torch

from course_lib.exercises import attention, contrastive, gan, masked_audio, mlm, rnn_lm, start
from course_lib.exercises.solutions import attention as s_att
from course_lib.exercises.solutions import contrastive as s_con
from course_lib.exercises.solutions import gan as s_gan
from course_lib.exercises.solutions import masked_audio as s_aud
from course_lib.exercises.solutions import mlm as s_mlm
from course_lib.exercises.solutions import rnn_lm as s_rnn
from course_lib.exercises.solutions import start as s_start


def _quiet(checker):
    def run(fn):
        try:
            return checker(fn, quiet=True)
        except TypeError:                            # the checkers of notebooks 00 and 05 always print
            return checker(fn)
    return run


def _alignment_pair(which):
    """Checker of one function of the alignment/uniformity pair; the other is the right one."""
    def run(fn):
        pair = (fn, s_con.uniformity) if which == "alignment" else (s_con.alignment, fn)
        return contrastive.check_alignment_uniformity(*pair, quiet=True)
    return run


CHECKERS = {
    "stable softmax": (_quiet(attention.check_stable_softmax), s_att.stable_softmax),
    "causal padding mask": (_quiet(attention.check_causal_padding_mask), s_att.causal_padding_mask),
    "grouped-query attention": (_quiet(attention.check_grouped_query_attention), s_att.grouped_query_attention),
    "alignment": (_alignment_pair("alignment"), s_con.alignment),
    "uniformity": (_alignment_pair("uniformity"), s_con.uniformity),
    "translate": (_quiet(contrastive.check_translate), s_con.translate),
    "NT-Xent logits": (_quiet(contrastive.check_nt_xent_logits), s_con.nt_xent_logits),
    "smoothed D loss": (_quiet(gan.check_smoothed_discriminator_loss), s_gan.smoothed_discriminator_loss),
    "generator loss": (_quiet(gan.check_generator_loss), s_gan.generator_loss),
    "mel filterbank": (_quiet(masked_audio.check_mel_filterbank), s_aud.mel_filterbank),
    "span mask": (_quiet(masked_audio.check_span_mask), s_aud.span_mask),
    "masked L1": (_quiet(masked_audio.check_masked_l1), s_aud.masked_l1),
    "whole-word mask": (_quiet(mlm.check_whole_word_mask), s_mlm.whole_word_mask),
    "masked loss": (_quiet(mlm.check_masked_loss), s_mlm.masked_loss),
    "stream batch": (_quiet(rnn_lm.check_stream_batch), s_rnn.stream_batch),
    "add-k bigram": (_quiet(rnn_lm.check_add_k_bigram_nll), s_rnn.add_k_bigram_nll),
    "temperature sampling": (_quiet(rnn_lm.check_temperature_sampling), s_rnn.sample_with_temperature),
    "choose k": (_quiet(rnn_lm.check_choose_k), s_rnn.choose_k),
    "standardize": (_quiet(start.check_standardize), s_start.standardize),
}
FORBIDS_IN_PLACE = {"standardize"}


def _map(out, leaf):
    if isinstance(out, tuple):
        return tuple(_map(o, leaf) for o in out)
    return leaf(out)


def _nan(out):
    if isinstance(out, torch.Tensor):
        return torch.full_like(out, float("nan")) if out.is_floating_point() else out.float().fill_(float("nan"))
    return float("nan")


def _constant(out):
    if isinstance(out, torch.Tensor):
        return torch.ones_like(out) if out.dtype == torch.bool else torch.zeros_like(out)
    if isinstance(out, int):
        return 10**6                                 # an index far out of range, as a constant sampler returns
    return 0.0


def _wrong_dtype(out):
    if isinstance(out, torch.Tensor):
        return out.long() if out.dtype in (torch.bool, torch.float32, torch.float64) else out.double() + 0.5
    return str(out)


def _scribble(args):
    """Change every tensor argument in place; True if there was one."""
    changed = False
    for a in args:
        if isinstance(a, torch.Tensor):
            with torch.no_grad():
                if a.dtype == torch.bool:
                    a.logical_not_()
                elif a.is_floating_point():
                    a.clamp_(-0.5, 0.5).mul_(0.5)
                else:
                    a.zero_()
            changed = True
    return changed


def _adversaries(solution):
    def exits(*a, **k):
        sys.exit(0)

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    def clobbers(*a, **k):                           # changes its input first, then answers for the changed input
        _scribble(a)
        return solution(*a, **k)

    def leaves_global_state(*a, **k):
        out = solution(*a, **k)
        torch.set_default_dtype(torch.float64)
        return out

    return {
        "calls sys.exit": exits,
        "raises KeyboardInterrupt": interrupted,
        "returns NaN": lambda *a, **k: _map(solution(*a, **k), _nan),
        "returns a constant": lambda *a, **k: _map(solution(*a, **k), _constant),
        "returns the wrong dtype": lambda *a, **k: _map(solution(*a, **k), _wrong_dtype),
        "changes its input in place first": clobbers,
        "changes torch's default dtype": leaves_global_state,
    }


def _has_tensor_arguments(name):
    return name not in ("mel filterbank",)


CASES = [(name, adversary) for name in CHECKERS for adversary in _adversaries(lambda: None)]


@pytest.mark.parametrize("name, adversary", CASES, ids=[f"{n}: {a}" for n, a in CASES])
def test_every_checker_calls_every_adversary_wrong(name, adversary):
    checker, solution = CHECKERS[name]
    if adversary == "changes its input in place first" and not _has_tensor_arguments(name):
        pytest.skip("the function takes no tensor to change")
    before = torch.get_default_dtype()
    verdict = checker(_adversaries(solution)[adversary])
    assert torch.get_default_dtype() == before == torch.float32         # restored by the checker
    assert verdict.status == "wrong", (name, adversary, verdict)
    assert len(verdict.message) > 20, verdict.message


@pytest.mark.parametrize("name", list(CHECKERS))
def test_the_reference_solution_passes(name):
    checker, solution = CHECKERS[name]
    verdict = checker(solution)
    assert verdict.correct, verdict
    assert "in place" not in verdict.message


@pytest.mark.parametrize("name", [n for n in CHECKERS if _has_tensor_arguments(n)])
def test_a_right_answer_that_also_changes_its_input_is_judged_by_its_result_and_named(name):
    checker, solution = CHECKERS[name]

    def answer_then_scribble(*a, **k):
        out = solution(*a, **k)
        out = _map(out, lambda o: o.detach().clone() if isinstance(o, torch.Tensor) and not o.requires_grad
                   else o)
        _scribble(a)
        return out

    verdict = checker(answer_then_scribble)
    if name in FORBIDS_IN_PLACE:
        assert verdict.status == "wrong" and "in place" in verdict.message, verdict
    else:
        assert verdict.correct, verdict
        assert "changed its argument" in verdict.message, verdict


def test_a_checker_cannot_be_changed_by_an_answer_that_changes_its_input():
    """The report's case: a softmax that clamps its input to +-80 in place, then answers [1/3, 1/3, 1/3]."""
    def clamping(x, dim=-1):
        x.clamp_(-80, 80)
        return s_att.stable_softmax(x, dim)

    verdict = attention.check_stable_softmax(clamping, quiet=True)
    assert verdict.status == "wrong" and "large inputs" in verdict.message, verdict
    again = attention.check_stable_softmax(s_att.stable_softmax, quiet=True)
    assert again.correct                          # and the checker's own inputs were left alone


def test_an_answer_that_never_returns_is_stopped(monkeypatch):
    from course_lib.exercises import base
    monkeypatch.setattr(base, "TIME_LIMIT_S", 0.5)

    def forever(x):
        while True:
            pass

    verdict = start.check_standardize(forever)
    assert verdict.status == "wrong" and "did not finish within 0.5 s" in verdict.message


def test_the_sampler_checker_refuses_an_out_of_range_constant():
    """D5: `return len(logits)` used to pass (its frequencies were NaN, and NaN > 0.04 is False)."""
    verdict = rnn_lm.check_temperature_sampling(lambda logits, t, g: len(logits))
    assert verdict.status == "wrong" and "index 4 is out of range" in verdict.message

"""Notebook 02 exercise checkers: the solution passes; each usual mistake is caught and named."""

import torch
import torch.nn.functional as F

from course_lib.exercises import mlm as ex
from course_lib.exercises.solutions import mlm as sol


def _stub(*args, **kwargs):
    raise NotImplementedError


# --- masking ----------------------------------------------------------------------------------

def _masks_padding(ids, vocab_size, generator):
    selected = torch.rand(ids.shape, generator=generator) < 0.15            # no check for special ids
    inputs = ids.masked_fill(selected, 4)
    return inputs, ids.masked_fill(~selected, -100)


def _all_mask(ids, vocab_size, generator):
    selected = (ids >= 5) & (torch.rand(ids.shape, generator=generator) < 0.15)
    return ids.masked_fill(selected, 4), ids.masked_fill(~selected, -100)


def _targets_everywhere(ids, vocab_size, generator):
    inputs, _ = sol.mask_tokens(ids, vocab_size, generator)
    return inputs, ids.clone()


def _rate_50(ids, vocab_size, generator):
    selected = (ids >= 5) & (torch.rand(ids.shape, generator=generator) < 0.5)
    v = torch.rand(ids.shape, generator=generator)
    inputs = torch.where(selected & (v >= 0.8) & (v < 0.9), torch.randint(5, vocab_size, ids.shape,
                                                                             generator=generator), ids)
    inputs = inputs.masked_fill(selected & (v < 0.8), 4)
    return inputs, ids.masked_fill(~selected, -100)


def _random_includes_special(ids, vocab_size, generator):
    selected = (ids >= 5) & (torch.rand(ids.shape, generator=generator) < 0.15)
    v = torch.rand(ids.shape, generator=generator)
    rnd = torch.randint(0, 5, ids.shape, generator=generator)              # wrong range: special ids
    inputs = torch.where(selected & (v >= 0.8) & (v < 0.9), rnd, ids.masked_fill(selected & (v < 0.8), 4))
    return inputs, ids.masked_fill(~selected, -100)


def _global_rng(ids, vocab_size, generator):
    return sol.mask_tokens(ids, vocab_size, torch.Generator().manual_seed(int(torch.randint(0, 10**6, ()))))


def _targets_are_inputs(ids, vocab_size, generator):
    inputs, targets = sol.mask_tokens(ids, vocab_size, generator)
    return inputs, torch.where(targets != -100, inputs, targets)


def test_mask_checker_accepts_solution_and_library():
    from course_lib.objectives.mlm import mask_tokens
    assert ex.check_mask_tokens(sol.mask_tokens, quiet=True).correct
    assert ex.check_mask_tokens(lambda ids, V, g: mask_tokens(ids, V, generator=g), quiet=True).correct
    assert ex.check_mask_tokens(_stub, quiet=True).status == "not attempted"


def test_mask_checker_names_the_mistakes():
    for wrong, words in [(_masks_padding, "padding"), (_all_mask, "only 80% should"),
                         (_targets_everywhere, "-100 at unselected"), (_rate_50, "expected 15%"),
                         (_random_includes_special, "ordinary tokens"), (_global_rng, "generator"),
                         (_targets_are_inputs, "ORIGINAL")]:
        v = ex.check_mask_tokens(wrong, quiet=True)
        assert v.status == "wrong" and words in v.message, (wrong.__name__, v.message)


# --- masked-only loss -------------------------------------------------------------------------

def _summed(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                           reduction="sum")


def _over_all_positions(logits, targets):
    per = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100,
                          reduction="none")
    return per.mean()


def _no_grad(logits, targets):
    return sol.masked_loss(logits, targets).detach()


def _probabilities(logits, targets):
    keep = targets != -100
    return F.nll_loss(logits[keep].softmax(-1), targets[keep])


def test_loss_checker():
    from course_lib.objectives.mlm import masked_lm_loss
    assert ex.check_masked_loss(sol.masked_loss, quiet=True).correct
    assert ex.check_masked_loss(masked_lm_loss, quiet=True).correct
    assert ex.check_masked_loss(_stub, quiet=True).status == "not attempted"
    for wrong, words in [(_summed, "summed"), (_over_all_positions, "divided by all"),
                         (_no_grad, "no gradient"), (_probabilities, "expected")]:
        v = ex.check_masked_loss(wrong, quiet=True)
        assert v.status == "wrong" and words in v.message, (wrong.__name__, v.message)

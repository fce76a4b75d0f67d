"""Notebook 02 exercise checkers: correct answers pass; each usual mistake is caught and named."""

import torch
import torch.nn.functional as F

from course_lib.exercises import mlm as ex
from course_lib.exercises.solutions import mlm as sol
from course_lib.objectives.mlm import mask_tokens


def _stub(*args, **kwargs):
    raise NotImplementedError


# --- whole-word masking -----------------------------------------------------------------------

def _loop_solution(ids, is_piece, generator):
    """A second correct answer, written differently: a Python loop over words, draws in another order."""
    inputs, targets = ids.clone(), torch.full_like(ids, -100)
    B, T = ids.shape
    u = torch.rand(B, T, generator=generator)
    v = torch.rand(B, T, generator=generator)
    rnd = torch.randint(5, len(is_piece), (B, T), generator=generator)
    for b in range(B):
        chosen = False
        for t in range(T):
            tok = int(ids[b, t])
            if tok < 5:
                chosen = False
                continue
            if not is_piece[tok]:
                chosen = bool(u[b, t] < 0.15)
            if chosen:
                targets[b, t] = tok
                inputs[b, t] = 4 if v[b, t] < 0.8 else int(rnd[b, t]) if v[b, t] < 0.9 else tok
    return inputs, targets


def _token_level(ids, is_piece, generator):
    """Plain BERT masking: tokens, not words."""
    return mask_tokens(ids, len(is_piece), generator=generator)


def _first_piece_only(ids, is_piece, generator):
    starts = (ids >= 5) & ~is_piece[ids]
    selected = starts & (torch.rand(ids.shape, generator=generator) < 0.15)
    return ids.masked_fill(selected, 4), ids.masked_fill(~selected, -100)


def _pieces_as_words(ids, is_piece, generator):
    return sol.whole_word_mask(ids, torch.zeros_like(is_piece), generator)


def _all_mask(ids, is_piece, generator):
    inputs, targets = sol.whole_word_mask(ids, is_piece, generator)
    return torch.where(targets != -100, torch.full_like(ids, 4), ids), targets


def _selects_specials(ids, is_piece, generator):
    inputs, targets = sol.whole_word_mask(ids, is_piece, generator)
    cls = ids == 2
    return inputs.masked_fill(cls, 4), torch.where(cls, ids, targets)


def _rate_30(ids, is_piece, generator):
    return sol.whole_word_mask(ids, is_piece, generator, p=0.3)


def _targets_everywhere(ids, is_piece, generator):
    inputs, _ = sol.whole_word_mask(ids, is_piece, generator)
    return inputs, ids.clone()


def _global_rng(ids, is_piece, generator):
    return sol.whole_word_mask(ids, is_piece, torch.Generator().manual_seed(int(torch.randint(0, 10**6, ()))))


def _targets_are_inputs(ids, is_piece, generator):
    inputs, targets = sol.whole_word_mask(ids, is_piece, generator)
    return inputs, torch.where(targets != -100, inputs, targets)


def test_whole_word_checker_accepts_correct_answers():
    assert ex.check_whole_word_mask(sol.whole_word_mask, quiet=True).correct
    assert ex.check_whole_word_mask(_loop_solution, quiet=True).correct
    assert ex.check_whole_word_mask(_stub, quiet=True).status == "not attempted"


def test_whole_word_checker_names_the_mistakes():
    for wrong, words in [(_token_level, "partly selected"), (_first_piece_only, "partly selected"),
                         (_pieces_as_words, "partly selected"), (_all_mask, "only 80% should"),
                         (_selects_specials, "special tokens"), (_rate_30, "expected 15%"),
                         (_targets_everywhere, "-100 at unselected"), (_global_rng, "generator"),
                         (_targets_are_inputs, "ORIGINAL")]:
        v = ex.check_whole_word_mask(wrong, quiet=True)
        assert v.status == "wrong" and words in v.message, (wrong.__name__, v.message)


def test_whole_word_solution_on_real_wordpieces():
    """On a real WordPiece row, a selected word is masked with all its pieces; the token-level masker splits words."""
    tokens = "[CLS] now , fair h ##ipp ##oly ##t ##a , our n ##up ##t ##ial hour [SEP]".split()
    vocab = sorted(set(tokens) - {"[CLS]", "[SEP]"})
    names = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + vocab
    ids = torch.tensor([[names.index(t) for t in tokens]] * 400)
    is_piece = torch.tensor([n.startswith("##") for n in names])
    _, targets = sol.whole_word_mask(ids, is_piece, torch.Generator().manual_seed(0))
    hippolyta = targets[:, 4:9] != -100                                   # h ##ipp ##oly ##t ##a
    assert bool((hippolyta.all(1) | ~hippolyta.any(1)).all())
    assert 0.08 < float(hippolyta[:, 0].float().mean()) < 0.22
    _, token_targets = mask_tokens(ids, len(names), generator=torch.Generator().manual_seed(0))
    split = token_targets[:, 4:9] != -100
    assert bool((split.any(1) & ~split.all(1)).any())


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


def _entropy_no_targets(logits, targets):
    keep = targets != -100
    p = logits[keep].softmax(-1)
    return -(p * logits[keep].log_softmax(-1)).sum(-1).mean()


def _probabilities(logits, targets):
    keep = targets != -100
    return F.nll_loss(logits[keep].softmax(-1), targets[keep])


def test_loss_checker():
    from course_lib.objectives.mlm import masked_lm_loss
    assert ex.check_masked_loss(sol.masked_loss, quiet=True).correct
    assert ex.check_masked_loss(masked_lm_loss, quiet=True).correct
    assert ex.check_masked_loss(_stub, quiet=True).status == "not attempted"
    for wrong, words in [(_summed, "summed"), (_over_all_positions, "divided by all"),
                         (_no_grad, "no gradient"), (_entropy_no_targets, "never reads the targets"),
                         (_probabilities, "expected")]:
        v = ex.check_masked_loss(wrong, quiet=True)
        assert v.status == "wrong" and words in v.message, (wrong.__name__, v.message)

"""Tests for course_lib.objectives.infonce: NT-Xent against a naive double loop and hand values."""

import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.objectives.infonce import nt_xent, nt_xent_logits, pair_similarities


def naive_nt_xent(z1, z2, t):
    """SimCLR eq. 1 written as literally as possible."""
    z = torch.cat([z1, z2]).double()
    n = len(z)
    b = n // 2
    total = 0.0
    for i in range(n):
        pos = i + b if i < b else i - b
        sim = lambda a, c: float(z[a] @ z[c] / (z[a].norm() * z[c].norm()))
        denom = sum(math.exp(sim(i, k) / t) for k in range(n) if k != i)
        total += -math.log(math.exp(sim(i, pos) / t) / denom)
    return total / n


@pytest.mark.parametrize("b,d,t", [(2, 3, 0.5), (5, 8, 0.1), (16, 4, 1.0)])
def test_matches_naive_loop(b, d, t):
    gen = torch.Generator().manual_seed(b)
    z1, z2 = torch.randn(b, d, generator=gen), torch.randn(b, d, generator=gen)
    assert abs(float(nt_xent(z1, z2, t)) - naive_nt_xent(z1, z2, t)) < 1e-5


def test_collapse_gives_log_2b_minus_1():
    z = torch.ones(8, 4)
    assert abs(float(nt_xent(z, z, 0.3)) - math.log(15)) < 1e-5


def test_perfect_pairs_give_low_loss():
    # positives identical, negatives orthogonal: loss = -log(e^{1/t} / (e^{1/t} + (2B-2) e^0))
    b, t = 4, 0.1
    z = torch.eye(b)
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * b - 2))
    assert abs(float(nt_xent(z, z, t)) - expected) < 1e-5


def test_scale_invariant_and_symmetric():
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=gen), torch.randn(6, 5, generator=gen)
    torch.testing.assert_close(nt_xent(3 * z1, 0.5 * z2, 0.2), nt_xent(z1, z2, 0.2))
    torch.testing.assert_close(nt_xent(z2, z1, 0.2), nt_xent(z1, z2, 0.2))


def test_logits_exclude_self_and_point_at_the_other_view():
    z = torch.randn(3, 4)
    logits, targets = nt_xent_logits(z, z + 0.01, 0.5)
    assert logits.shape == (6, 6) and torch.isinf(torch.diagonal(logits)).all()
    assert targets.tolist() == [3, 4, 5, 0, 1, 2]


def test_gradient_flows_and_matches_autograd_of_naive_formula():
    gen = torch.Generator().manual_seed(1)
    z1 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(4, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    nt_xent(z1, z2, 0.5).backward()
    g1 = z1.grad.clone()
    z1.grad = None
    u = F.normalize(torch.cat([z1, z2]), dim=1)
    s = u @ u.T / 0.5
    loss = 0
    for i in range(8):
        pos = (i + 4) % 8
        loss = loss - s[i, pos] + torch.logsumexp(torch.cat([s[i, :i], s[i, i + 1:]]), 0)
    (loss / 8).backward()
    torch.testing.assert_close(z1.grad, g1, rtol=1e-4, atol=1e-6)


def test_pair_similarities():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos, neg = pair_similarities(z1, z1)
    assert abs(pos - 1.0) < 1e-6 and abs(neg - 0.0) < 1e-6
    pos, neg = pair_similarities(z1, -z1)
    assert abs(pos + 1.0) < 1e-6


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="B, D"):
        nt_xent(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="B >= 2"):
        nt_xent(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.randn(4, 3), torch.randn(4, 3), temperature=0.0)
    with pytest.raises(ValueError, match="floating"):
        nt_xent(torch.ones(4, 3, dtype=torch.long), torch.ones(4, 3, dtype=torch.long))

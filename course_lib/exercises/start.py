"""Checker for notebook 00's warm-up exercise: standardise features column by column.

z = (x - mean) / std per column (population std, i.e. divide by N), the step every
linear probe in the course applies before logistic regression.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .base import ExerciseWrong, Verdict, run_checker

__all__ = ["check_standardize"]


def _check(standardize: Callable[[torch.Tensor], torch.Tensor]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 10.0, 0.1], dtype=torch.float64) + 5
    z = standardize(x)
    if not isinstance(z, torch.Tensor):
        raise ExerciseWrong(f"return a tensor, got {type(z).__name__}")
    if getattr(standardize, "changed_in_place", None):        # run_checker's guard gives the answer a copy
        raise ExerciseWrong("your function changed its input in place; return a new tensor instead")
    if z.shape != x.shape:
        raise ExerciseWrong(f"output shape {tuple(z.shape)} should equal input shape {tuple(x.shape)}")
    if torch.allclose(z.mean(), torch.tensor(0.0, dtype=z.dtype), atol=1e-6) and \
            not torch.allclose(z.mean(0), torch.zeros(3, dtype=z.dtype), atol=1e-6):
        raise ExerciseWrong("statistics must be per column (dim=0), not over the whole tensor")
    if not torch.allclose(z.mean(0), torch.zeros(3, dtype=z.dtype), atol=1e-6):
        raise ExerciseWrong(f"column means should be 0, got {z.mean(0).tolist()}")
    std = z.std(0, unbiased=False)
    if torch.allclose(z.std(0, unbiased=True), torch.ones(3, dtype=z.dtype), atol=1e-6):
        raise ExerciseWrong("use the population std (unbiased=False, divide by N), as scikit-learn does")
    if not torch.allclose(std, torch.ones(3, dtype=z.dtype), atol=1e-6):
        raise ExerciseWrong(f"column standard deviations should be 1, got {std.tolist()}")
    constant = torch.ones(4, 2, dtype=torch.float64)
    out = standardize(constant)
    if not torch.isfinite(out).all():
        raise ExerciseWrong("a constant column gives 0/0 = NaN: guard the std (e.g. clamp it to >= 1e-12)")


def check_standardize(standardize: Callable[[torch.Tensor], torch.Tensor]) -> Verdict:
    """Check a learner's ``standardize(x: (N, D)) -> (N, D)``."""
    return run_checker("standardize", standardize, _check)

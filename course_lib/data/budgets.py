"""Label budgets: which labelled examples a few-label experiment may use.

A budget of k labels per class keeps, for each class in turn, the first k of a random
permutation of that class's examples. For one generator seed the budgets are nested
(the 10 per class include the 1 per class), so a curve over budgets adds labels
instead of redrawing them; another seed is another draw, for the spread.
Used by chapter 02 (verse/prose fine-tuning) and chapter 04 (digit probes).
"""

from __future__ import annotations

import torch

__all__ = ["budget_indices"]


def budget_indices(labels: torch.Tensor, per_class: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of ``per_class`` examples of each class of ``labels`` (N,), class by class; all if ``per_class <= 0``."""
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (N,), got {tuple(labels.shape)}")
    if per_class <= 0:
        return torch.arange(len(labels))
    picks = []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        if per_class > len(members):
            raise ValueError(f"a budget of {per_class} labels per class needs {per_class} examples of class {cls}; "
                             f"only {len(members)} exist")
        picks.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(picks)

"""Learning-rate schedules as multipliers of the peak rate: a step budget, and a time budget (seconds).

:func:`course_lib.loop.fit` builds one ``LambdaLR`` per optimizer from these: :func:`warmup_cosine` for a
step budget; for ``TrainConfig.seconds``, :func:`warmup_stable_decay_timed` (the default) or
:func:`warmup_cosine_timed`, whose progress reads the training clock.
"""

from __future__ import annotations

import math

__all__ = ["warmup_cosine", "warmup_cosine_timed", "warmup_stable_decay_timed"]


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup to 1 over ``min(warmup, total)`` steps, then cosine down to ``min_ratio``."""
    warmup = min(warmup, total)
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine_timed(step: int, total: int, elapsed: float, budget: float, warmup: int,
                        min_ratio: float) -> float:
    """LR multiplier of a time budget: linear warmup over ``warmup`` steps, then a cosine whose progress is
    the larger of elapsed / budget seconds and the step progress, so it reaches ``min_ratio`` at whichever
    budget runs out first: min((s + 1) / warmup, r + (1 - r) * (1 + cos(pi * p)) / 2).
    """
    warm = (step + 1) / warmup if warmup > 0 and step < warmup else 1.0
    by_steps = (step - min(warmup, total)) / max(1, total - min(warmup, total))
    progress = min(1.0, max(0.0, elapsed / budget, by_steps))
    return min(warm, min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def warmup_stable_decay_timed(step: int, total: int, elapsed: float, budget: float, warmup: int, min_ratio: float,
                              warmup_frac: float = 0.2, decay_frac: float = 0.1) -> float:
    """LR multiplier of a time budget, good at any length: warm up, hold the peak, decay at the end.

    Warm-up is linear and ends at ``warmup`` steps or ``warmup_frac`` of the budget's seconds, whichever
    comes first (a short budget spends little of itself warming up); the peak is held; over the last
    ``decay_frac`` of the budget the rate falls linearly to ``min_ratio``. Progress p is the larger of
    elapsed / budget and step / total, so a run ends decayed whichever budget runs out first:
    min(warm, 1 - (1 - r) * clip((p - (1 - d)) / d, 0, 1)) (Hägele et al. 2024, "Scaling laws and
    compute-optimal training beyond fixed training durations").
    """
    warm = 1.0
    if warmup > 0 and step < warmup:
        warm = min(1.0, max((step + 1) / warmup, elapsed / (warmup_frac * budget)))
    progress = min(1.0, max(0.0, elapsed / budget, step / max(1, total)))
    into_decay = min(1.0, max(0.0, (progress - (1.0 - decay_frac)) / decay_frac))
    return min(warm, 1.0 - (1.0 - min_ratio) * into_decay)

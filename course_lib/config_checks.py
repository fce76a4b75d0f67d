"""Every config field checked against its valid range when the config is made, named by its dotted path.

A chapter's ``Config`` calls :func:`check_config` from ``__post_init__``, so a profile, ``--set`` and the
Python API (``Config()``, ``dataclasses.replace``, :func:`course_lib.profiles.override`) all refuse a
nonsense value before any work, e.g. ``train.min_lr_ratio must be in [0, 1], got -2.0``.

The rules go by the field's name (the course names its fields consistently): every number finite; sizes,
counts and step budgets >= 1; rates > 0; fractions and probabilities in [0, 1]; dropout and moving-average
decays in [0, 1); text fields one of their choices.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from fnmatch import fnmatch
from typing import Any

from .models.gan import KINDS
from .objectives.gan import GENERATOR_LOSSES

__all__ = ["check_config", "CHOICES", "TIME_SCHEDULES"]

TIME_SCHEDULES = ("wsd", "cosine")         # a time budget's learning-rate shape (course_lib.train)

# (name patterns, test, what is expected) for numbers; the first rule whose pattern matches decides
_Rule = tuple[tuple[str, ...], Callable[[float], bool], str]
_FLOAT_RULES: list[_Rule] = [
    (("lr", "lr_*", "*_lr", "temperature", "eps", "f_max", "seconds", "grad_clip"), lambda x: x > 0, "> 0"),
    (("dropout", "*dropout", "ema_decay"), lambda x: 0 <= x < 1, "in [0, 1)"),
    (("warmup_frac",), lambda x: 0 < x < 1, "in (0, 1)"),
    (("decay_frac",), lambda x: 0 < x <= 1, "in (0, 1]"),
    (("min_lr_ratio", "*_prob", "*_frac", "fraction", "*_fraction", "real_target"), lambda x: 0 <= x <= 1,
     "in [0, 1]"),
    (("*",), lambda x: x >= 0, ">= 0"),
]
_INT_RULES: list[_Rule] = [
    (("seed", "*_seed", "*_every", "warmup_steps", "freq_width"), lambda x: x >= 0, ">= 0"),
    (("*",), lambda x: x >= 1, ">= 1"),
]
_TUPLE_RULES: list[_Rule] = [
    (("betas",), lambda x: 0 <= x < 1, "in [0, 1)"),
    (("crop_scale", "erase_scale"), lambda x: 0 < x <= 1, "in (0, 1]"),
    (("label_budgets", "finetune_budgets"), lambda x: x >= 0, ">= 0 (0 = all labels)"),
    (("*",), lambda x: x > 0, "> 0"),
]

CHOICES: dict[str, tuple[str, ...]] = {
    "cell": ("rnn", "rnn_relu", "lstm", "gru"),
    "kind": KINDS,
    "time_schedule": TIME_SCHEDULES,
    "generator_loss": GENERATOR_LOSSES,
    "ft_pool": ("cls", "mean"),
    "probe_pool": ("cls", "mean"),
    "loss": ("l1", "mse"),
    "objective": ("masked", "all_frames", "autoencoder"),
    "target": ("centred", "frames"),
    "task": ("reverse", "sort"),
    "profile": ("smoke", "class", "full"),
}


def _rule(rules: list[_Rule], name: str) -> tuple[Callable[[float], bool], str]:
    return next((test, what) for patterns, test, what in rules if any(fnmatch(name, p) for p in patterns))


def _check_number(path: str, name: str, value: float, rules: list[_Rule]) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{path} must be a finite number, got {value}")
    test, what = _rule(rules, name)
    if not test(value):
        raise ValueError(f"{path} must be {what}, got {value}")


def check_config(config: Any, prefix: str = "") -> None:
    """Raise ``ValueError`` naming the first field of ``config`` (nested dataclasses, dotted) out of its range."""
    for field in dataclasses.fields(config):
        value, path, name = getattr(config, field.name), f"{prefix}{field.name}", field.name
        if dataclasses.is_dataclass(value):
            check_config(value, f"{path}.")
        elif value is None or isinstance(value, bool):
            continue
        elif isinstance(value, int) and "float" not in str(field.type):
            _check_number(path, name, value, _INT_RULES)
        elif isinstance(value, (int, float)):
            _check_number(path, name, value, _FLOAT_RULES)
        elif isinstance(value, tuple):
            for item in value:
                if isinstance(item, bool) or not isinstance(item, (int, float)):
                    raise ValueError(f"{path} must hold numbers, got {value!r}")
                _check_number(path, name, item, _TUPLE_RULES)
        elif isinstance(value, str) and name in CHOICES and value not in CHOICES[name]:
            raise ValueError(f"{path} must be one of {', '.join(CHOICES[name])}; got {value!r}")

"""Run profiles: one code path, three sizes.

``smoke`` (CI, 2 CPU cores, ~1-2 min per notebook), ``class`` (default: a laptop
CPU, <= 10 min per notebook) and ``full`` (one GPU, <= 15 min). A chapter's
config is a frozen dataclass of nested blocks (``model``, ``data``, ``train``, and
``study`` for the notebook-only budgets); its defaults are the ``class`` profile, and
its ``PROFILES`` class attribute maps each profile to the nested fields that differ
(dotted keys, sizes and step counts only). Budgets are counted in steps, never in
seconds, so a run is reproducible.

Used by every notebook (the run-profile cell) and by the command line.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

__all__ = ["PROFILES", "DEFAULT_PROFILE", "resolve_profile", "for_profile", "override", "parse_setting"]

PROFILES: tuple[str, ...] = ("smoke", "class", "full")
DEFAULT_PROFILE = "class"
ENV_VAR = "COURSE_PROFILE"

C = TypeVar("C")


def resolve_profile(profile: str | None = None) -> str:
    """Return the profile to use: the argument, else ``$COURSE_PROFILE``, else ``class``.

    Raises ``ValueError`` naming the valid profiles for an unknown name.
    """
    source = "argument"
    if profile is None:
        profile = os.environ.get(ENV_VAR) or DEFAULT_PROFILE
        source = f"${ENV_VAR}" if os.environ.get(ENV_VAR) else "default"
    name = profile.strip().lower()
    if name not in PROFILES:
        raise ValueError(
            f"unknown profile {profile!r} (from {source}); expected one of: {', '.join(PROFILES)}"
        )
    return name


def override(config: C, changes: Mapping[str, Any]) -> C:
    """A copy of a (nested) frozen config with ``changes`` applied; keys are dotted paths.

    >>> override(cfg, {"train.steps": 10, "model.hidden_dim": 64})
    """
    direct: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    names = {f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    for key, value in changes.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise TypeError(f"{type(config).__name__} has no field {head!r} (in {key!r}); fields are {sorted(names)}")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            direct[head] = value
    for head, sub in nested.items():
        try:
            direct[head] = override(getattr(config, head), sub)
        except ValueError as err:                        # a block's own check: name the field by its path
            message = str(err)
            if message.startswith(tuple(sub)):           # it names the field already: add the block's name
                raise ValueError(f"{head}.{message}") from None
            raise ValueError(f"{', '.join(f'{head}.{k}' for k in sub)}: {message}") from None
    return dataclasses.replace(config, **direct)  # type: ignore[type-var]


def for_profile(config_cls: type[C], profile: str | None = None, overrides: Mapping[str, Any] | None = None) -> C:
    """Build ``config_cls`` for a profile: its defaults (= ``class``), then ``PROFILES[profile]``, then ``overrides``.

    Both tables use dotted keys for nested fields; ``None`` values in ``overrides`` are ignored.

    >>> cfg = for_profile(rnn_lm.Config, "smoke", {"train.steps": 10})
    """
    name = resolve_profile(profile)
    table: dict[str, dict[str, Any]] = getattr(config_cls, "PROFILES", {})
    missing = [p for p in PROFILES if p not in table]
    if missing:
        raise TypeError(f"{config_cls.__name__}.PROFILES lacks profiles {missing}")
    cfg = override(config_cls(), table[name])
    cfg = override(cfg, {k: v for k, v in (overrides or {}).items() if v is not None})
    if "profile" in {f.name for f in dataclasses.fields(config_cls)}:  # type: ignore[arg-type]
        cfg = dataclasses.replace(cfg, profile=name)  # type: ignore[type-var]
    return cfg


def parse_setting(config: Any, setting: str) -> tuple[str, Any]:
    """``"train.lr=3e-3"`` -> ``("train.lr", 0.003)``, typed like the field it replaces in ``config``.

    For the command line's ``--set``; raises ``ValueError`` saying what was expected.
    """
    key, sep, text = setting.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key or not text:
        raise ValueError(f"--set expects KEY=VALUE with a dotted field name, e.g. train.lr=3e-3; got {setting!r}")
    current: Any = config
    for part in key.split("."):
        if not dataclasses.is_dataclass(current) or part not in {f.name for f in dataclasses.fields(current)}:
            fields = sorted(f.name for f in dataclasses.fields(current)) if dataclasses.is_dataclass(current) else []
            raise ValueError(f"--set {key}: {type(current).__name__} has no field {part!r}; fields are {fields}")
        current = getattr(current, part)
    if dataclasses.is_dataclass(current):
        raise ValueError(f"--set {key}: a block, not a value; set one of its fields, e.g. {key}.<field>=...")
    if isinstance(current, bool):
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--set {key} expects true or false, got {text!r}")
        return key, text.lower() in ("true", "1")
    kind = type(current) if current is not None else None
    try:
        if kind is int:
            return key, int(text)
        if kind is float or (current is None and _is_number(text)):
            return key, float(text)
    except ValueError:
        raise ValueError(f"--set {key} expects a {kind.__name__ if kind else 'number'}, got {text!r}") from None
    if kind in (tuple, list):
        raise ValueError(f"--set {key}: sequence fields cannot be set from the command line")
    return key, text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

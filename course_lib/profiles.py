"""Run profiles: one code path, three sizes.

``smoke`` (CI, 2 CPU cores, ~1-2 min per notebook), ``class`` (default: a laptop
CPU, <= 10 min per notebook) and ``full`` (one GPU, <= 15 min). A chapter's
config is a frozen dataclass; its ``PROFILES`` class attribute maps each profile
to the field values that differ (sizes and step counts only). Budgets are
counted in steps, never in seconds, so a run is reproducible.

Used by every notebook (the run-profile cell) and by the command line.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, TypeVar

__all__ = ["PROFILES", "DEFAULT_PROFILE", "resolve_profile", "for_profile"]

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


def for_profile(config_cls: type[C], profile: str | None = None, **overrides: Any) -> C:
    """Build ``config_cls`` for a profile: defaults, then ``PROFILES[profile]``, then overrides.

    >>> cfg = for_profile(CharLMConfig, "smoke", steps=10)
    """
    name = resolve_profile(profile)
    table: dict[str, dict[str, Any]] = getattr(config_cls, "PROFILES", {})
    missing = [p for p in PROFILES if p not in table]
    if missing:
        raise TypeError(f"{config_cls.__name__}.PROFILES lacks profiles {missing}")
    fields = {f.name for f in dataclasses.fields(config_cls)}  # type: ignore[arg-type]
    values = {**table[name], **{k: v for k, v in overrides.items() if v is not None}}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise TypeError(f"{config_cls.__name__} has no field(s) {unknown}; fields are {sorted(fields)}")
    if "profile" in fields:
        values["profile"] = name
    return config_cls(**values)

"""Checkpoints: atomic save, safe load, provenance.

* Atomic: the file is written under a temporary name in the same folder, flushed,
  fsync'ed and moved over the old one with ``os.replace``. A crash at any moment
  leaves either the previous checkpoint or the new one, never half of one.
* Safe: loading uses ``torch.load(weights_only=True)``, which refuses to unpickle
  code; only tensors, numbers, strings and containers come back.
* Provenance: each checkpoint records the hash of the config that made it, the
  profile, the git commit and the metrics, so a later notebook can tell whether
  a checkpoint belongs to the config it expects (:func:`matches`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import torch

__all__ = ["save_checkpoint", "load_checkpoint", "config_hash", "make_provenance", "matches", "git_commit"]

FORMAT = "course_lib.checkpoint/1"


def _as_plain(config: Any) -> Any:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    return config


def config_hash(config: Any) -> str:
    """SHA-256 (first 16 hex digits) of a config's canonical JSON form."""
    text = json.dumps(_as_plain(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str:
    """The repository's current commit, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def make_provenance(config: Any, profile: str | None = None,
                    metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Where a checkpoint came from: config hash, profile, commit, versions, time, metrics."""
    from . import __version__
    return {
        "config_hash": config_hash(config),
        "profile": profile,
        "git_commit": git_commit(),
        "course_lib": __version__,
        "torch": str(torch.__version__),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "metrics": dict(metrics or {}),
    }


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, containers) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, **state}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint`, never unpickling code."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for truncated or foreign files
        raise ValueError(f"{path} is not a readable course_lib checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path} is not a course_lib checkpoint (expected format {FORMAT!r})")
    return state


def matches(state: Mapping[str, Any], config: Any) -> tuple[bool, str]:
    """Does a loaded checkpoint belong to ``config``? Returns (ok, reason)."""
    prov = state.get("provenance") or {}
    want, have = config_hash(config), prov.get("config_hash")
    if have is None:
        return False, "checkpoint has no provenance"
    if want != have:
        return False, f"config hash {have} in checkpoint differs from expected {want}"
    return True, f"config hash {want} matches (profile {prov.get('profile')}, commit {prov.get('git_commit')})"

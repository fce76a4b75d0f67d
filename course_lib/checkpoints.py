"""Checkpoints: atomic save, safe load, provenance.

* Atomic: the file is written under a temporary name in the same folder, flushed,
  fsync'ed and moved over the old one with ``os.replace``. A crash at any moment
  leaves either the previous checkpoint or the new one, never half of one.
* Safe: loading uses ``torch.load(weights_only=True)``, which refuses to unpickle
  code; only tensors, numbers, strings and containers come back.
* Provenance: each checkpoint records the hash of what its weights depend on
  (:func:`fingerprint`: the training settings, the task's data settings and the
  model's architecture), the git commit and the metrics.
* One policy: :func:`inspect` says, for a folder and the run one wants, whether its
  checkpoint is missing, unreadable, stale (made by other settings, and why),
  interrupted (resumable) or finished. ``fit(resume=True)``, notebook loading, the
  MLM encoder hand-off and the classroom bundle all ask it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from collections.abc import Mapping

import torch

from .data.cache import atomic_write_bytes

__all__ = ["writable_folder", "save_checkpoint", "load_checkpoint", "config_hash", "fingerprint", "tensor_digest",
           "make_provenance", "git_commit", "CheckpointStatus", "inspect", "CHECKPOINT_NAME"]

FORMAT = "course_lib.checkpoint/1"
CHECKPOINT_NAME = "checkpoint.pt"
_BOOKKEEPING = ("eval_every", "checkpoint_every")       # TrainConfig fields that do not change the weights
_TIME_BUDGET = ("seconds", "time_schedule", "warmup_frac", "decay_frac")   # matter only with a time budget
StatusKind = Literal["missing", "unreadable", "stale", "interrupted", "finished"]


def _as_plain(config: Any) -> Any:
    """Dataclasses, mappings and sequences as plain JSON-able containers (what a checkpoint may store)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if isinstance(config, Mapping):
        return {str(k): _as_plain(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_as_plain(v) for v in config]
    if config is None or isinstance(config, (bool, int, float, str)):
        return config
    return str(config)


def config_hash(config: Any) -> str:
    """SHA-256 (first 16 hex digits) of a config's canonical JSON form."""
    text = json.dumps(_as_plain(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_commit() -> str:
    """The repository's current commit, or ``"unknown"`` outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def fingerprint(model: Any, task: Any, train_cfg: Any) -> dict[str, Any]:
    """What a run's weights depend on: training settings, the task's :meth:`signature`, the architecture.

    The architecture is the model's class, its ``cfg`` (when it has a dataclass config) and the
    shape of every parameter and buffer. How often a run evaluates or checkpoints does not change
    its weights and is left out; so are notebook-only study budgets (they are in none of these),
    so changing a demo's length never makes a trained checkpoint stale.
    """
    model_cfg = getattr(model, "cfg", None)
    # a step budget's fingerprint does not mention the time-budget options it leaves unused
    plain = _as_plain(train_cfg)
    train = {k: v for k, v in plain.items()
             if k not in _BOOKKEEPING and not (k in _TIME_BUDGET and plain.get("seconds") is None)}
    return {"train": train, "task": _as_plain(task.signature()),
            "model": {"class": type(model).__name__,
                      "config": _as_plain(model_cfg) if dataclasses.is_dataclass(model_cfg) else None,
                      "shapes": {k: list(v.shape) for k, v in model.state_dict().items()}}}


def tensor_digest(*tensors: torch.Tensor) -> str:
    """SHA-256 (16 hex digits) of tensors' values, shapes and dtypes: the data a task trains on, in its signature.

    A rebuilt tokenizer with another vocabulary, or an edited ``--text`` file, gives other ids and
    so another digest, so a checkpoint of the old data is refused instead of silently misaligned.
    """
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def make_provenance(identity: Any, metrics: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Where a checkpoint came from: the hash of ``identity`` (a :func:`fingerprint`), commit, versions, metrics."""
    from . import __version__
    return {
        "config_hash": config_hash(identity),
        "git_commit": git_commit(),
        "course_lib": __version__,
        "torch": str(torch.__version__),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "metrics": dict(metrics or {}),
    }


def differences(old: Any, new: Any, prefix: str = "", limit: int = 4) -> list[str]:
    """What differs between two fingerprints, dotted, at most ``limit`` items.

    E.g. ``train.lr: 0.003 in the checkpoint, 0.001 now``.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            where = f"{prefix}{key}"
            if key not in old or key not in new:
                found.append(f"{where}: {'only now' if key in new else 'only in the checkpoint'}")
            elif key == "shapes" and old[key] != new[key]:
                found.append(f"{where}: the model's parameter shapes differ")
            else:
                found += differences(old[key], new[key], f"{where}.", limit)
            if len(found) >= limit:
                return found[:limit]
        return found
    same_sequence = isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and list(old) == list(new)
    if old != new and not same_sequence:
        return [f"{prefix.rstrip('.')}: {_short(old)} in the checkpoint, {_short(new)} now"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (tensors, numbers, strings, containers) to ``path`` atomically."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


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


@dataclass(frozen=True)
class CheckpointStatus:
    """What a folder's checkpoint is to a run: ``kind``, why (``reason``), its ``step`` and loaded ``state``."""

    kind: StatusKind
    path: Path
    reason: str
    step: int = 0
    state: dict[str, Any] | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def resumable(self) -> bool:
        """True when training can continue from it (an interrupted or a finished run of the same settings)."""
        return self.kind in ("interrupted", "finished")


def inspect(folder: str | os.PathLike, identity: Any, steps: int,
            map_location: str | torch.device = "cpu") -> CheckpointStatus:
    """The status of ``folder/checkpoint.pt`` for a run of ``steps`` steps whose fingerprint is ``identity``."""
    path = Path(folder) / CHECKPOINT_NAME
    if not path.exists():
        return CheckpointStatus("missing", path, f"no checkpoint in {path.parent.name}/")
    try:
        state = load_checkpoint(path, map_location)
    except ValueError as err:          # reasons name the folder, not its absolute path (notebooks print them)
        return CheckpointStatus("unreadable", path, f"{path.parent.name}/{path.name} is not a readable checkpoint "
                                                    f"({type(err.__cause__ or err).__name__})")
    step = int(state.get("step", 0))
    want, have = config_hash(identity), (state.get("provenance") or {}).get("config_hash")
    if have != want:
        made = (state.get("provenance") or {}).get("git_commit", "unknown")
        changed = differences(state.get("config"), _as_plain(identity))
        what = f"; what differs: {'; '.join(changed)}" if changed else ""
        return CheckpointStatus("stale", path, f"it was made by other settings or an older course_lib (commit {made}): "
                                f"fingerprint {have} in the checkpoint, {want} wanted{what}", step, state)
    if step < steps and not state.get("finished", False):     # a time budget may finish before ``steps``
        return CheckpointStatus("interrupted", path, f"it stopped at step {step} of {steps}", step, state)
    return CheckpointStatus("finished", path, f"finished at step {step}, fingerprint {want}", step, state)


def writable_folder(folder: str | Path) -> bool:
    """Whether ``folder`` exists or can be made, and a file can be written in it (checked before any training)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError:
        return False
    return True

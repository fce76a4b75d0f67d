"""Train once, then load: a finished checkpoint of exactly this run is used instead of training again.

:func:`fit_or_load` is what notebooks call for their long trainings: the classroom bundle and a second
run of a notebook start from the trained model (its provenance checked by :mod:`course_lib.checkpoints`);
an interrupted run resumes; a teacher's read-only shared folder falls back to a per-user one.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from . import checkpoints, runtime
from .checkpoints import writable_folder
from .data.cache import atomic_write_bytes, data_dir
from .loop import fit
from .task import RunOptions, Task, TrainConfig, TrainResult

__all__ = ["ALWAYS_TRAIN_ENV", "TRAINED_SINCE_ENV", "load_finished", "fit_or_load", "user_fallback_folder",
           "once_per_test_run", "study_key"]

ALWAYS_TRAIN_ENV = "COURSE_ALWAYS_TRAIN"
# with ALWAYS_TRAIN: a checkpoint written after this time (seconds since the epoch) was trained by this same test
# run, by this checkout's code, so it may be loaded (the test command sets it: the Chinese edition's notebooks
# load the models the English ones trained minutes earlier instead of training them twice)
TRAINED_SINCE_ENV = "COURSE_TRAINED_SINCE"


def user_fallback_folder(folder: str | Path) -> Path:
    """Where :func:`fit_or_load` trains when ``folder`` is read-only: ``~/.cache/course_lib/checkpoints/NAME``."""
    return Path.home() / ".cache" / "course_lib" / "checkpoints" / Path(folder).name


def load_finished(model: nn.Module, task: Task, cfg: TrainConfig, folder: str | Path,
                  device: torch.device | str | None = None) -> tuple[TrainResult | None, checkpoints.CheckpointStatus]:
    """The finished run of this (model, task, cfg) in ``folder``, or None; with the checkpoint's status.

    The weights go into ``model``; the history is the stored one and the final metrics are
    measured again now with ``task.evaluate``. ``wall_s`` / ``items_per_s`` are those of the run
    that made the checkpoint.
    """
    status = checkpoints.inspect(folder, checkpoints.fingerprint(model, task, cfg), cfg.steps)
    if status.kind != "finished":
        return None, status
    dev = runtime.pick_device(device)
    model.load_state_dict(status.state["model"])
    model.to(dev).eval()
    with torch.no_grad(), runtime.autocast(dev):
        final = {k: float(v) for k, v in task.evaluate(model, status.step).items()}
    model.train()
    history = status.state["history"]
    wall = float(history["eval"][-1]["time_s"]) if history.get("eval") else 0.0
    items = task.items(task.batch(0)) * status.step
    return (TrainResult(history=history, final=final, steps=status.step, wall_s=wall,
                        items_per_s=items / wall if wall > 0 else 0.0, checkpoint=status.path, loaded=True), status)


_TRAINED_HERE: dict[Path, tuple[int, int] | None] = {}   # checkpoint -> (mtime_ns, size) when this process wrote it


def _file_stamp(path: Path) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a file, None if it is missing: tells a checkpoint this process wrote from a later one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _written_since_run_start(path: Path) -> bool:
    """True when ``$COURSE_TRAINED_SINCE`` is set and ``path`` was written after it."""
    since, stamp = os.environ.get(TRAINED_SINCE_ENV), _file_stamp(path)
    try:
        return since is not None and stamp is not None and stamp[0] / 1e9 > float(since)
    except ValueError:
        raise ValueError(f"${TRAINED_SINCE_ENV} must be seconds since the epoch, got {since!r}") from None


def fit_or_load(model: nn.Module, task: Task, cfg: TrainConfig, folder: str | Path | None, *,
                device: torch.device | str | None = None, progress: bool = True, desc: str = "train"
                ) -> tuple[TrainResult, str]:
    """``(result, message)``: the finished run in ``folder`` if there is one, else train (resuming an interrupted one).

    Training leaves its checkpoint in ``folder``, so the classroom bundle and a notebook's second
    run start from the trained model; a stale or unreadable checkpoint is replaced. With
    ``$COURSE_ALWAYS_TRAIN=1`` (the test command sets it) no earlier run's checkpoint is loaded or resumed:
    the run trains from step 0, so a notebook run as a test exercises the training code of the course_lib it
    imports; a checkpoint this same process trained (a notebook's second call for one model) is loaded.
    """
    if folder is None:
        result = fit(model, task, cfg, device=device, run=RunOptions(progress=progress, desc=desc))
        return result, "trained (no checkpoint folder)"
    note = ""
    if not writable_folder(folder):                      # a teacher's read-only shared folder
        shared, status = load_finished(model, task, cfg, folder, device)
        if shared is not None and os.environ.get(ALWAYS_TRAIN_ENV) != "1":
            return shared, f"loaded a finished checkpoint ({status.reason})"
        fallback = user_fallback_folder(folder)
        if not writable_folder(fallback):
            raise OSError(errno.EACCES, f"neither the checkpoint folder {folder} nor the fallback {fallback} can be "
                                        f"written; set COURSE_DATA_DIR to a writable folder", str(folder))
        note = f"; {Path(folder).name}/ is read-only, so this run's checkpoint is in {fallback}"
        folder = fallback
    if os.environ.get(ALWAYS_TRAIN_ENV) == "1":
        path = (Path(folder) / checkpoints.CHECKPOINT_NAME).resolve()
        here = path in _TRAINED_HERE and _TRAINED_HERE[path] == _file_stamp(path)
        if here or _written_since_run_start(path):
            result, _ = load_finished(model, task, cfg, folder, device)
            if result is not None:
                who = "this process" if here else "this test run"
                return result, (f"loaded the checkpoint {who} trained earlier (${ALWAYS_TRAIN_ENV}=1 loads "
                                f"no checkpoint of an earlier run{note})")
        result = fit(model, task, cfg, device=device, run=RunOptions(out_dir=folder, progress=progress, desc=desc))
        _TRAINED_HERE[path] = _file_stamp(path)
        return result, f"trained (${ALWAYS_TRAIN_ENV}=1: checkpoints of earlier runs are not loaded{note})"
    result, status = load_finished(model, task, cfg, folder, device)
    if result is not None:
        return result, f"loaded a finished checkpoint ({status.reason}{note})"
    result = fit(model, task, cfg, device=device,
                 run=RunOptions(out_dir=folder, resume=status.kind == "interrupted", progress=progress, desc=desc))
    return result, f"trained ({status.reason}{note})"


T = TypeVar("T")


def _in_test_run() -> bool:
    return os.environ.get(ALWAYS_TRAIN_ENV) == "1" and os.environ.get(TRAINED_SINCE_ENV) is not None


def study_key(value: Any) -> Any:
    """``value`` as JSON-able data that names what a study's result depends on.

    Configs (dataclasses), mappings and sequences become plain containers; a function becomes its
    name and a digest of its bytecode and constants (the same function in two notebook
    kernels gives the same key, an edited one another); a module becomes a digest of its weights.
    """
    if isinstance(value, nn.Module):
        return {"weights": checkpoints.tensor_digest(*value.state_dict().values())}
    if callable(value) and hasattr(value, "__code__"):
        code = value.__code__
        consts = [c for c in code.co_consts if not hasattr(c, "co_code")]       # nested code objects: by name
        text = code.co_code + repr((consts, code.co_names, code.co_varnames)).encode()
        return {"function": value.__name__, "code": hashlib.sha256(text).hexdigest()[:16]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return study_key(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): study_key(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [study_key(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def once_per_test_run(name: str, key: Any, compute: Callable[[], T], folder: str | Path | None = None) -> T:
    """``compute()`` as JSON gives it back; within one test run, what the same call computed earlier in that run.

    A study made of many short runs (ablations over seeds, a recognition study) leaves no checkpoint for
    :func:`fit_or_load` to find, so the Chinese edition of a notebook, whose code is the English one's, would
    train it all again minutes later in the same test command. Inside a test run (``$COURSE_ALWAYS_TRAIN=1``
    with ``$COURSE_TRAINED_SINCE``) the result is written to ``folder`` (default: ``test-run-results/`` in the
    data folder) under ``name`` and a digest of ``key`` (what the result depends on, see :func:`study_key`),
    and a later call with the same name and key in the same run reads it. Outside a test run nothing is read
    or written: a learner's run always computes. The result goes through JSON either way (tuples become
    lists, dictionary keys strings), so both editions see the same values; reading it back also restores the
    Python, NumPy and torch (CPU) random-number generators to the state the computation left them in, so the
    cells after it draw the same numbers in both editions.
    """
    plain_key = json.loads(json.dumps(study_key(key), sort_keys=True))
    digest = hashlib.sha256(json.dumps(plain_key, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(folder) if folder is not None else data_dir() / "test-run-results"
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{digest}.json"
    if _in_test_run() and _written_since_run_start(path):
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            stored = None
        if isinstance(stored, dict) and stored.get("key") == plain_key and "result" in stored and "rng" in stored:
            _set_rng_state(stored["rng"])          # the generators as computing would have left them
            return stored["result"]
    result = json.loads(json.dumps(compute()))
    if _in_test_run():
        atomic_write_bytes(path, json.dumps({"key": plain_key, "result": result, "rng": _rng_state()}).encode())
    return result


def _rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's CPU random-number generator states, as JSON-able lists."""
    import random

    import numpy as np
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, extra = random.getstate()
    return {"python": [version, list(internal), extra], "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
            "torch": torch.get_rng_state().tolist()}


def _set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np
    version, internal, extra = state["python"]
    random.setstate((version, tuple(internal), extra))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))

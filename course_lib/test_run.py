"""What one test run computes once: the Chinese edition reads what the English notebook computed minutes earlier.

The test command (``python3 course.py test``) runs every notebook twice, in English and in Chinese, with
identical code (``translate --check`` fails otherwise). It sets ``$COURSE_ALWAYS_TRAIN=1``, so no result of an
earlier run is ever used, and ``$COURSE_TRAINED_SINCE`` (its start time): what was written after that time was
computed by this same run, by this checkout's code, and may be read back instead of computed again.

* :func:`once_per_test_run` for a study made of many short runs (ablations, a recognition study): its
  JSON-able result, keyed by what it depends on;
* :func:`replayed_fit` / :func:`keep_fit` for :func:`course_lib.loop.fit` without a checkpoint folder (the short
  runs a notebook trains to show a mistake): the trained weights, the task's state, the history and the result.

Reading back also restores the random-number generators to the state computing left them in, so the cells
after it draw the same numbers in both editions. Outside a test run nothing is read or written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from .checkpoints import fingerprint, tensor_digest
from .data.cache import atomic_write_bytes, data_dir
from .runtime import rng_state, set_rng_state

__all__ = ["ALWAYS_TRAIN_ENV", "TRAINED_SINCE_ENV", "in_test_run", "file_stamp", "written_since_run_start",
           "study_key", "once_per_test_run", "replayed_fit", "keep_fit", "RESULTS_FOLDER"]

ALWAYS_TRAIN_ENV = "COURSE_ALWAYS_TRAIN"
# with ALWAYS_TRAIN: a checkpoint written after this time (seconds since the epoch) was trained by this same test
# run, by this checkout's code, so it may be loaded (the test command sets it: the Chinese edition's notebooks
# load the models the English ones trained minutes earlier instead of training them twice)
TRAINED_SINCE_ENV = "COURSE_TRAINED_SINCE"
RESULTS_FOLDER = "test-run-results"             # in the data folder

T = TypeVar("T")


def in_test_run() -> bool:
    """``$COURSE_ALWAYS_TRAIN=1`` with ``$COURSE_TRAINED_SINCE``: the test command is running."""
    return os.environ.get(ALWAYS_TRAIN_ENV) == "1" and os.environ.get(TRAINED_SINCE_ENV) is not None


def file_stamp(path: Path) -> tuple[int, int] | None:
    """``(mtime_ns, size)`` of a file, None if it is missing: tells a checkpoint this process wrote from a later one."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def written_since_run_start(path: Path) -> bool:
    """True when ``$COURSE_TRAINED_SINCE`` is set and ``path`` was written after it."""
    since, stamp = os.environ.get(TRAINED_SINCE_ENV), file_stamp(path)
    try:
        return since is not None and stamp is not None and stamp[0] / 1e9 > float(since)
    except ValueError:
        raise ValueError(f"${TRAINED_SINCE_ENV} must be seconds since the epoch, got {since!r}") from None


def _code_key(fn: Any) -> dict[str, str]:
    code = fn.__code__
    consts = [c for c in code.co_consts if not hasattr(c, "co_code")]           # nested code objects: by name
    text = code.co_code + repr((consts, code.co_names, code.co_varnames)).encode()
    return {"function": fn.__name__, "code": hashlib.sha256(text).hexdigest()[:16]}


def _class_key(cls: type) -> dict[str, Any]:
    """A class by name; one defined in a notebook (``__main__``) also by the code of its methods."""
    own = {}
    for klass in cls.__mro__:
        if klass.__module__ == "__main__":
            own.update({f"{klass.__name__}.{k}": _code_key(v) for k, v in vars(klass).items()
                        if callable(v) and hasattr(v, "__code__")})
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "notebook_code": own}


def study_key(value: Any) -> Any:
    """``value`` as JSON-able data that names what a result depends on.

    Configs (dataclasses), mappings and sequences become plain containers; a function becomes its name
    and a digest of its bytecode and constants (the same function in two notebook kernels gives the same
    key, an edited one another); a module becomes a digest of its weights.
    """
    if isinstance(value, nn.Module):
        return {"weights": tensor_digest(*value.state_dict().values())}
    if callable(value) and hasattr(value, "__code__"):
        return _code_key(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return study_key({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {str(k): study_key(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [study_key(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _digest(plain_key: Any) -> str:
    return hashlib.sha256(json.dumps(plain_key, sort_keys=True).encode()).hexdigest()[:16]


def _path(folder: str | Path | None, name: str, digest: str, suffix: str) -> Path:
    folder = Path(folder) if folder is not None else data_dir() / RESULTS_FOLDER
    return folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{digest}{suffix}"


def once_per_test_run(name: str, key: Any, compute: Callable[[], T], folder: str | Path | None = None) -> T:
    """``compute()`` as JSON gives it back; within one test run, what the same call computed earlier in that run.

    A study made of many short runs (ablations over seeds, a recognition study) leaves no checkpoint for
    :func:`course_lib.loading.fit_or_load` to find. Inside a test run the result is written to ``folder``
    (default: ``test-run-results/`` in the data folder) under ``name`` and a digest of ``key`` (what the result
    depends on, see :func:`study_key`), and a later call with the same name and key in the same run reads it.
    Outside a test run nothing is read or written: a learner's run always computes. The result goes through
    JSON either way (tuples become lists, dictionary keys strings), so both editions see the same values.
    """
    plain_key = json.loads(json.dumps(study_key(key), sort_keys=True))
    path = _path(folder, name, _digest(plain_key), ".pt")
    stored = _read(path, plain_key)
    if stored is not None:
        return json.loads(stored["result"])
    result = json.loads(json.dumps(compute()))
    _write(path, plain_key, {"result": json.dumps(result)})
    return result


def _read(path: Path, plain_key: Any) -> dict[str, Any] | None:
    """Inside a test run, what this run stored at ``path`` under ``plain_key``, with the generators put back as
    they were when it was stored; None (compute it) for anything else."""
    if not in_test_run() or not written_since_run_start(path):
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - an unreadable file is computed again
        return None
    if not isinstance(stored, dict) or stored.get("key") != json.dumps(plain_key, sort_keys=True):
        return None
    set_rng_state(stored["rng"])                  # the generators as computing would have left them
    return stored


def _write(path: Path, plain_key: Any, payload: dict[str, Any]) -> None:
    """Inside a test run, store ``payload`` with its key and the generators' state (atomically)."""
    if not in_test_run():
        return
    buffer = io.BytesIO()
    torch.save({"key": json.dumps(plain_key, sort_keys=True), "rng": rng_state(), **payload}, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def fit_key(model: nn.Module, task: Any, cfg: Any, device: torch.device, precision: str, run: Any) -> Any:
    """What a checkpoint-less ``fit`` call's outcome depends on: the task, the config, the starting weights."""
    return study_key({"fingerprint": fingerprint(model, task, cfg), "cfg": cfg, "start": model,
                      "model": _class_key(type(model)), "task": _class_key(type(task)),
                      "task_functions": {k: v for k, v in vars(task).items() if callable(v) and hasattr(v, "__code__")},
                      "device": str(device), "precision": precision, "max_seconds": run.max_seconds,
                      "compile": run.compile_backend})


def replayed_fit(key: Any, model: nn.Module, task: Any, device: torch.device) -> dict[str, Any] | None:
    """Inside a test run, the stored outcome of the same ``fit`` call earlier in the run, put back in place:
    ``model`` gets the trained weights (on ``device``, in train mode, as ``fit`` leaves it), ``task`` its state,
    the generators their state; returns the stored result fields, or None (compute it)."""
    stored = _read(_path(None, "fit", _digest(key), ".pt"), key)
    if stored is None:
        return None
    model.load_state_dict(stored["model"])
    model.to(device).train()
    task.load_state_dict(stored["task"])
    return stored["result"]


def keep_fit(key: Any, model: nn.Module, task: Any, result: dict[str, Any]) -> None:
    """Inside a test run, store a finished ``fit`` call's outcome for :func:`replayed_fit`."""
    _write(_path(None, "fit", _digest(key), ".pt"), key,
           {"model": model.state_dict(), "task": task.state_dict(), "result": result})

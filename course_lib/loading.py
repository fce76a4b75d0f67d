"""Train once, then load: a finished checkpoint of exactly this run is used instead of training again.

:func:`fit_or_load` is what notebooks call for their long trainings: the classroom bundle and a second
run of a notebook start from the trained model (its provenance checked by :mod:`course_lib.checkpoints`);
an interrupted run resumes; a teacher's read-only shared folder falls back to a per-user one.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import torch
from torch import nn

from . import checkpoints, runtime
from .checkpoints import writable_folder
from .loop import fit
from .task import RunOptions, Task, TrainConfig, TrainResult
from .test_run import ALWAYS_TRAIN_ENV, TRAINED_SINCE_ENV, file_stamp, written_since_run_start

__all__ = ["ALWAYS_TRAIN_ENV", "TRAINED_SINCE_ENV", "load_finished", "fit_or_load", "user_fallback_folder"]



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
        here = path in _TRAINED_HERE and _TRAINED_HERE[path] == file_stamp(path)
        if here or written_since_run_start(path):
            result, _ = load_finished(model, task, cfg, folder, device)
            if result is not None:
                who = "this process" if here else "this test run"
                return result, (f"loaded the checkpoint {who} trained earlier (${ALWAYS_TRAIN_ENV}=1 loads "
                                f"no checkpoint of an earlier run{note})")
        result = fit(model, task, cfg, device=device, run=RunOptions(out_dir=folder, progress=progress, desc=desc))
        _TRAINED_HERE[path] = file_stamp(path)
        return result, f"trained (${ALWAYS_TRAIN_ENV}=1: checkpoints of earlier runs are not loaded{note})"
    result, status = load_finished(model, task, cfg, folder, device)
    if result is not None:
        return result, f"loaded a finished checkpoint ({status.reason}{note})"
    result = fit(model, task, cfg, device=device,
                 run=RunOptions(out_dir=folder, resume=status.kind == "interrupted", progress=progress, desc=desc))
    return result, f"trained ({status.reason}{note})"

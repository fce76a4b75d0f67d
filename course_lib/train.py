"""The course's training API in one import: ``from course_lib.train import TrainConfig, fit, fit_or_load``.

It gathers modules that each hold one concept:

* :mod:`course_lib.task`: the task protocol (``TrainConfig``, ``Task``, ``TrainResult``, ``TrainSetup``) and
  how one run is carried out (``RunOptions``);
* :mod:`course_lib.schedules`: learning-rate schedules for a step or a time budget;
* :mod:`course_lib.step_tools`: what one optimisation step is given (``StepTools``, ``move_to``);
* :mod:`course_lib.loop`: the one training loop, :func:`fit`;
* :mod:`course_lib.loading`: train once, then load (:func:`fit_or_load`, :func:`load_finished`);
* :mod:`course_lib.test_run`: what the test command computes once (:func:`once_per_test_run`).

A chapter supplies a ``Task``; ``fit`` owns the rest (device, precision, schedule, clipping, history,
progress bar, atomic checkpoints and exact resume, ``torch.compile``, DDP under ``torchrun``).
"""

from __future__ import annotations

from .checkpoints import writable_folder
from .config_checks import TIME_SCHEDULES
from .loading import ALWAYS_TRAIN_ENV, fit_or_load, load_finished, user_fallback_folder
from .loop import fit
from .schedules import warmup_cosine, warmup_cosine_timed, warmup_stable_decay_timed
from .step_tools import StepTools, move_to
from .task import QUIET, RunOptions, Task, TrainConfig, TrainResult, TrainSetup
from .test_run import once_per_test_run

__all__ = ["TrainConfig", "Task", "RunOptions", "QUIET", "StepTools",
           "TrainResult", "TrainSetup", "fit", "load_finished", "fit_or_load", "once_per_test_run",
           "writable_folder", "user_fallback_folder", "warmup_cosine", "warmup_cosine_timed",
           "warmup_stable_decay_timed", "move_to", "TIME_SCHEDULES", "ALWAYS_TRAIN_ENV"]

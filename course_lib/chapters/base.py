"""What a chapter is to the command line, the benchmarks and the classroom bundle.

Each chapter package (``course_lib.chapters.<name>``) reads like its notebook: ``config``
(a frozen, nested ``Config`` whose defaults are the ``class`` profile), ``task`` (what the
training loop needs) and, where the notebook compares methods, ``study`` (the baselines and
the numbers ``metrics.json`` reports). Its ``__init__`` exports ``CHAPTER``, a :class:`Chapter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from collections.abc import Callable, Mapping

from ..profiles import for_profile
from ..train import RunOptions, TrainSetup

__all__ = ["Chapter", "RunFn"]


class RunFn(Protocol):
    def __call__(self, cfg: Any, *, device: str | None = None,
                 options: RunOptions = RunOptions()) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Chapter:
    """A chapter runnable by ``python -m course_lib train NAME``.

    ``build(cfg)`` makes the model, task and training settings whose checkpoint ``run`` leaves in
    its ``options.out_dir``; ``also_trains(cfg)``, when given, the other runs ``run`` checkpoints, by
    sub-folder (e.g. a baseline). So the bundle can tell whether a folder holds finished runs of
    ``cfg``. ``run(cfg, ...)`` trains, runs the chapter's study and returns the ``metrics.json`` dict.
    """

    name: str
    notebook: str
    Config: type
    build: Callable[[Any], TrainSetup]
    run: RunFn
    also_trains: Callable[[Any], dict[str, TrainSetup]] | None = None

    def checkpointed(self, cfg: Any) -> dict[str, TrainSetup]:
        """What ``run(cfg, options=RunOptions(out_dir=...))`` checkpoints, by sub-folder ("" = the folder itself)."""
        return {"": self.build(cfg), **(self.also_trains(cfg) if self.also_trains else {})}

    def config(self, profile: str | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
        """``Config`` for a profile (default ``$COURSE_PROFILE`` or ``class``) with dotted overrides."""
        return for_profile(self.Config, profile, overrides)

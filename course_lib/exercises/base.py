"""Shared machinery for exercise checkers: the verdict, the not-attempted case, and the guard on the answer.

A checker must judge the answer, not be changed by it. :func:`run_checker` hands the checker a guarded
answer: every call gets copies of its tensor (and NumPy) arguments, so an answer that changes its input
in place cannot change the checker's inputs or references (and is named when it does); ``sys.exit()``
or Ctrl-C raised inside the answer becomes a wrong verdict instead of leaving the notebook; and the whole
check is bounded in time (``TIME_LIMIT_S``, where the platform has ``SIGALRM``).
"""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import torch

from course_lib.language import tr

__all__ = ["Verdict", "run_checker", "require_correct", "ExerciseWrong", "TIME_LIMIT_S"]

TIME_LIMIT_S = 60.0                    # a check (all its calls of the answer) that runs longer is wrong


class ExerciseWrong(Exception):
    """Raised inside a checker to report what is wrong with the answer."""


@dataclass(frozen=True)
class Verdict:
    exercise: str
    status: str          # "correct" | "wrong" | "not attempted"
    message: str

    @property
    def correct(self) -> bool:
        return self.status == "correct"

    def __str__(self) -> str:
        mark = {"correct": "✓", "wrong": "✗", "not attempted": "…"}[self.status]
        return tr("{} {}: {}", mark, tr(self.exercise), tr(self.message))


def require_correct(verdict: Verdict) -> Verdict:
    """For an autograder cell (nbgrader): raise ``AssertionError`` with the checker's message unless correct.

    The learner-facing checker only prints its verdict (a notebook must run to the end with unfinished
    exercises); a grader needs a cell that fails, and its traceback shows the same friendly message.
    """
    if not isinstance(verdict, Verdict):
        raise TypeError(f"require_correct expects the Verdict a check_* function returns, got {type(verdict).__name__}")
    if not verdict.correct:
        raise AssertionError(str(verdict))
    return verdict


class _Guarded:
    """The learner's function, called on copies of its array arguments; remembers what it changed in place."""

    def __init__(self, fn: Callable):
        self.fn, self.changed_in_place = fn, set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        copies = [_copy(a) for a in args]
        kw_copies = {k: _copy(v) for k, v in kwargs.items()}
        kept = [_copy(a, keep_graph=False) for a in copies]
        kw_kept = {k: _copy(v, keep_graph=False) for k, v in kw_copies.items()}
        try:
            out = self.fn(*copies, **kw_copies)
        except (SystemExit, KeyboardInterrupt) as err:
            raise ExerciseWrong(f"your function raised {type(err).__name__} ({err!r}): a function must return its "
                                "result; sys.exit() or an interrupt would stop the whole notebook") from None
        for i, (before, after) in enumerate(zip(kept, copies)):
            if not _same(before, after):
                self.changed_in_place.add(f"argument {i + 1}")
        for k in kw_kept:
            if not _same(kw_kept[k], kw_copies[k]):
                self.changed_in_place.add(f"argument {k!r}")
        return out


def _copy(value: Any, keep_graph: bool = True) -> Any:
    """A copy the answer may change freely; a tensor that requires grad keeps its graph (the checker may
    differentiate the answer's result with respect to its own tensor)."""
    if isinstance(value, torch.Tensor):
        return value.clone() if keep_graph and value.requires_grad else value.detach().clone()
    if type(value).__module__ == "numpy" and hasattr(value, "copy"):
        return value.copy()
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(_copy(v, keep_graph) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.is_floating_point():                        # NaN where NaN was counts as unchanged
            return bool(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num()))
        return bool(torch.equal(a, b))
    if type(a).__module__ == "numpy" and hasattr(a, "shape"):
        import numpy as np
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in a):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return True


class _TimeLimit:
    """Raise ``ExerciseWrong`` inside the answer after ``seconds`` (main thread, platforms with SIGALRM)."""

    def __init__(self, seconds: float):
        self.seconds, self.armed, self.previous = seconds, False, None

    def _expire(self, signum: int, frame: Any) -> None:
        raise ExerciseWrong(f"the check did not finish within {self.seconds:g} s: does your function loop forever?")

    def __enter__(self) -> _TimeLimit:
        if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGALRM, self._expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
            self.armed = True
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)


def _guard(answer: Any) -> Any:
    """Guard a function, or each function of a tuple of them (a checker of two functions)."""
    if isinstance(answer, tuple):
        return tuple(_guard(a) for a in answer)
    return _Guarded(answer) if callable(answer) else answer


def _changed(guarded: Any) -> list[str]:
    if isinstance(guarded, tuple):
        return sorted({c for g in guarded for c in _changed(g)})
    return sorted(guarded.changed_in_place) if isinstance(guarded, _Guarded) else []


def run_checker(exercise: str, answer: Callable, check: Callable[[Callable], None], quiet: bool = False) -> Verdict:
    """Run ``check(answer)`` on a guarded answer; ``check`` raises :class:`ExerciseWrong` with an explanation if wrong.

    The checker's own inputs and references cannot be changed by the answer (it works on copies); an answer
    that changed its inputs in place is named in the verdict, and is still judged by what it returned.
    """
    guarded = _guard(answer)
    state = (torch.get_default_dtype(), torch.is_grad_enabled())
    try:
        with _TimeLimit(TIME_LIMIT_S):
            check(guarded)
        verdict = Verdict(exercise, "correct", "correct")
    except NotImplementedError:
        verdict = Verdict(exercise, "not attempted", "not attempted yet: replace `raise NotImplementedError`")
    except ExerciseWrong as err:
        verdict = Verdict(exercise, "wrong", str(err))
    except Exception as err:  # the learner's code crashed: say how, do not crash the notebook
        verdict = Verdict(exercise, "wrong", f"your function raised {type(err).__name__}: {err}")
    finally:
        changed_global = (torch.get_default_dtype(), torch.is_grad_enabled()) != state
        torch.set_default_dtype(state[0])
        torch.set_grad_enabled(state[1])
    if changed_global and verdict.status != "not attempted":
        verdict = Verdict(exercise, "wrong", "your function changed torch's global settings (the default dtype or "
                                             "gradient mode) and left them changed; they are restored now")
    changed = _changed(guarded)
    if changed and verdict.status != "not attempted":
        verdict = Verdict(exercise, verdict.status, f"{verdict.message} (note: your function changed its "
                                                    f"{' and '.join(changed)} in place; the caller's tensors "
                                                    f"were copies, but callers do not expect that)")
    if not quiet:
        print(verdict)
    return verdict

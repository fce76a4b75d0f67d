"""Shared machinery for exercise checkers: the verdict and the not-attempted case."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

__all__ = ["Verdict", "run_checker", "ExerciseWrong"]


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
        return f"{mark} {self.exercise}: {self.message}"


def run_checker(exercise: str, answer: Callable, check: Callable[[Callable], None], quiet: bool = False) -> Verdict:
    """Run ``check(answer)``; it raises :class:`ExerciseWrong` with an explanation if wrong."""
    try:
        check(answer)
        verdict = Verdict(exercise, "correct", "correct")
    except NotImplementedError:
        verdict = Verdict(exercise, "not attempted", "not attempted yet: replace `raise NotImplementedError`")
    except ExerciseWrong as err:
        verdict = Verdict(exercise, "wrong", str(err))
    except Exception as err:  # the learner's code crashed: say how, do not crash the notebook
        verdict = Verdict(exercise, "wrong", f"your function raised {type(err).__name__}: {err}")
    if not quiet:
        print(verdict)
    return verdict

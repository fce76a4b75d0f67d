"""Exercise checkers: each takes the learner's function and says what is right or wrong.

A checker returns an :class:`~course_lib.exercises.base.Verdict` and prints one
line: ``✓ correct``, ``✗ <what is wrong>``, or ``… not attempted`` when the
learner's function still raises ``NotImplementedError``. Checkers are tested
against correct and wrong answers in ``tests/test_exercises*.py``.
"""

from .base import Verdict, run_checker

__all__ = ["Verdict", "run_checker"]

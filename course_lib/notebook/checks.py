"""Numerical checks that print one stable ``PASS``/``FAIL`` line each.

Notebooks put these in cells marked ``# NBVAL_CHECK_OUTPUT``: nbval compares the
printed line with the committed one, so the line must not contain numbers that
vary between runs, profiles or machines. The measured error goes into the
message on failure, not into a PASS line. Strict checks (the default) behave like
``assert``: they return nothing and raise :class:`CheckFailed` on failure; with
``strict=False`` they return a :class:`CheckResult` instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course_lib.language import tr

__all__ = ["CheckResult", "check_close", "check_true", "CheckFailed"]


class CheckFailed(AssertionError):
    """Raised by a check with ``strict=True`` (the default) when it fails."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str

    def __bool__(self) -> bool:
        return self.passed


def _report(name: str, passed: bool, detail: str, strict: bool) -> CheckResult | None:
    """Print the check's line (in the language of ``course_lib.language``) and return or raise."""
    line = tr("PASS {}", tr(name)) if passed else tr("FAIL {}: {}", tr(name), tr(detail))
    print(line)
    if not strict:
        return CheckResult(name, passed, detail)
    if not passed:
        raise CheckFailed(line.split(" ", 1)[1])
    return None


def check_close(name: str, actual, expected, atol: float = 1e-6, rtol: float = 1e-5,
                strict: bool = True) -> CheckResult | None:
    """PASS if ``actual`` and ``expected`` have the same shape and agree within atol + rtol*|expected|."""
    a, e = torch.as_tensor(actual), torch.as_tensor(expected)
    if a.shape != e.shape:
        return _report(name, False, f"shape {tuple(a.shape)} != expected {tuple(e.shape)}", strict)
    a64, e64 = a.detach().double().cpu(), e.detach().double().cpu()
    err = (a64 - e64).abs()
    bound = atol + rtol * e64.abs()
    ok = bool(torch.all(err <= bound)) and bool(torch.isfinite(a64).all() == torch.isfinite(e64).all())
    detail = f"max abs error {float(err.max()) if err.numel() else 0.0:.3e} (atol {atol:g}, rtol {rtol:g})"
    return _report(name, ok, detail, strict)


def check_true(name: str, condition: bool, detail: str = "", strict: bool = True) -> CheckResult | None:
    """PASS if ``condition`` holds; ``detail`` explains a failure."""
    return _report(name, bool(condition), detail or "condition is false", strict)

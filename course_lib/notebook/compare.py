"""One way to state a comparison: mean ± sd per method, the difference with its standard error,
and a verdict by one rule.

The rule (``RULE``), for a method A against a reference B measured over n runs:

* **paired** (the runs share seeds or data draws; the default): d_i = A_i - B_i, mean d̄,
  SE = sd(d) / sqrt(n). "A better than B" only when n ≥ 3, |d̄| > 2 SE **and** every d_i has the
  sign of d̄; "A worse than B" likewise with the other sign;
* **unpaired** (independent runs): SE = sqrt(sd_A² / n_A + sd_B² / n_B), and |d̄| > 2 SE with
  n_A, n_B ≥ 3;
* anything else is "no difference beyond the spread of n runs"; fewer than 3 runs give
  "undecided" (the verdict never rests on one or two runs).

``compare`` prints one line per method and one verdict line per method against the reference,
and returns the verdicts, so a notebook states the conclusion it printed and a check cell
(``check_verdict``) fails CI when the conclusion stops holding. Two standard errors is about a
5% two-sided test for a normal mean; with 3 runs the same-sign condition does most of the work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from course_lib.language import tr
from course_lib.notebook.checks import CheckResult, _report

__all__ = ["RULE", "Verdict", "Comparison", "compare", "check_verdict", "mean_sd"]

RULE = ("A better than B only when n >= 3, |mean difference| > 2 standard errors and (paired runs) "
        "every run's difference has the same sign; otherwise no difference beyond the spread")
MIN_RUNS = 3
BETTER, WORSE, SAME, UNDECIDED = "better", "worse", "no difference", "undecided"


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1 in the denominator; 0.0 for one value)."""
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("mean_sd needs at least one value, got none")
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
    return m, sd


@dataclass(frozen=True)
class Verdict:
    """The outcome for ``method`` against ``reference``: ``outcome`` is one of better / worse /
    no difference / undecided, in the metric's own direction (``higher_is_better``)."""

    method: str
    reference: str
    metric: str
    outcome: str
    difference: float          # mean of method - reference (paired) or difference of means
    se: float                  # its standard error (nan with fewer than 2 runs)
    n: int                     # runs per method (the smaller, unpaired)
    paired: bool
    same_sign: bool            # every paired difference has the sign of the mean (unpaired: False)

    @property
    def text(self) -> str:
        """The verdict as a sentence, with its numbers (in the language of ``course_lib.language``)."""
        runs = tr("{} paired runs", self.n) if self.paired else tr("{} runs each", self.n)
        delta = f"{self.difference:+.3f} ± {self.se:.3f} (SE)" if not math.isnan(self.se) else f"{self.difference:+.3f}"
        method, reference, metric = tr(self.method), tr(self.reference), tr(self.metric)
        if self.outcome == UNDECIDED:
            return tr("{} vs {}: undecided, {} over {} (a verdict needs ≥ {})", method, reference, delta, runs,
                      MIN_RUNS)
        if self.outcome == SAME:
            return tr("{} vs {}: no difference beyond the spread of {}, {} {}", method, reference, runs, metric, delta)
        signs = tr(", same sign in every run") if self.paired and self.same_sign else ""
        if self.outcome == BETTER:
            return tr("{} better than {}: {} {} over {}{}", method, reference, metric, delta, runs, signs)
        return tr("{} worse than {}: {} {} over {}{}", method, reference, metric, delta, runs, signs)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Comparison:
    """What :func:`compare` measured: per-method (mean, sd, n) and one verdict per method vs the reference."""

    metric: str
    summary: Mapping[str, tuple[float, float, int]]
    verdicts: Mapping[str, Verdict]

    def __getitem__(self, method: str) -> Verdict:
        return self.verdicts[method]


def _verdict(method: str, a: Sequence[float], reference: str, b: Sequence[float], metric: str,
             higher_is_better: bool, paired: bool) -> Verdict:
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired comparison of {method!r} and {reference!r} needs one value per shared run; "
                             f"got {len(a)} and {len(b)} (pass paired=False for independent runs)")
        diffs = [float(x) - float(y) for x, y in zip(a, b)]
        d, sd = mean_sd(diffs)
        n = len(diffs)
        se = sd / math.sqrt(n) if n > 1 else math.nan
        same_sign = n > 0 and all(x * d > 0 for x in diffs)
    else:
        (ma, sa), (mb, sb) = mean_sd(a), mean_sd(b)
        d, n = ma - mb, min(len(a), len(b))
        se = math.sqrt(sa ** 2 / len(a) + sb ** 2 / len(b)) if n > 1 else math.nan
        same_sign = False
    if n < MIN_RUNS:
        outcome = UNDECIDED
    elif abs(d) > 2 * se and (same_sign or not paired):
        outcome = BETTER if (d > 0) == higher_is_better else WORSE
    else:
        outcome = SAME
    return Verdict(method, reference, metric, outcome, d, se, n, paired, same_sign)


def compare(values: Mapping[str, Sequence[float]], *, metric: str, higher_is_better: bool,
            reference: str, paired: bool = True, over: str = "seeds",
            quiet: bool = False) -> Comparison:
    """Compare methods measured over several runs, by the rule in ``RULE``.

    ``values`` maps a method's name to one value per run (``over`` says what the runs are: "seeds",
    "seeds and label draws", ...); with ``paired=True`` the i-th value of every method comes from the
    same seed or draw. Every other method is compared with ``reference`` (the baseline).
    Prints ``method: mean ± sd (n over)`` lines, then one ``verdict:`` line per method.
    """
    if len(values) < 2:
        raise ValueError(f"compare needs at least two methods, got {list(values)}")
    for name, xs in values.items():
        xs = list(xs)
        if not xs or not all(isinstance(x, (int, float)) and math.isfinite(float(x)) for x in xs):
            raise ValueError(f"{name!r}: expected a non-empty list of finite numbers (one per run), got {xs!r}")
    if reference not in values:
        raise ValueError(f"reference {reference!r} is not among the methods {list(values)}")
    summary = {name: (*mean_sd(xs), len(xs)) for name, xs in values.items()}
    verdicts = {name: _verdict(name, list(xs), reference, list(values[reference]), metric, higher_is_better, paired)
                for name, xs in values.items() if name != reference}
    if not quiet:
        names = {name: tr(name) for name in values}
        width = max(len(n) for n in names.values())
        if higher_is_better:
            print(tr("{} (higher is better), mean ± sd over {}:", tr(metric), tr(over)))
        else:
            print(tr("{} (lower is better), mean ± sd over {}:", tr(metric), tr(over)))
        for name, (m, sd, n) in summary.items():
            print(f"  {names[name]:<{width}s}  {m:.3f} ± {sd:.3f}  (n = {n})")
        for v in verdicts.values():
            print(tr("verdict: {}", v.text))
    return Comparison(metric, summary, verdicts)


def check_verdict(verdict: Verdict, expected: str | Sequence[str], strict: bool = True) -> CheckResult | None:
    """PASS when the verdict's outcome is ``expected`` (one of better / worse / no difference, or a
    list of acceptable ones). The PASS line has no numbers, so it can be a checked output."""
    allowed = [expected] if isinstance(expected, str) else list(expected)
    unknown = [e for e in allowed if e not in (BETTER, WORSE, SAME, UNDECIDED)]
    if unknown:
        raise ValueError(f"expected outcome(s) {unknown}; choose from {[BETTER, WORSE, SAME, UNDECIDED]}")
    said = tr(" or ".join(allowed))
    method, reference, metric = tr(verdict.method), tr(verdict.reference), tr(verdict.metric)
    name = (tr("{} {} than {} on {}", method, said, reference, metric) if SAME not in allowed
            else tr("{} vs {} on {}: {}", method, reference, metric, said))
    return _report(name, verdict.outcome in allowed, tr("the comparison says: {}", verdict.text), strict)

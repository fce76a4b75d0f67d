"""The comparison rule of course_lib.notebook.compare: known-different, known-equal, too few runs."""

import math

import pytest

from course_lib.notebook.checks import CheckFailed
from course_lib.notebook.compare import check_verdict, compare, mean_sd


def test_mean_sd_uses_the_sample_sd():
    m, sd = mean_sd([1.0, 2.0, 3.0])
    assert m == 2.0 and sd == pytest.approx(1.0)
    assert mean_sd([5.0]) == (5.0, 0.0)


def test_a_consistent_paired_gain_is_better(capsys):
    cmp = compare({"new": [0.81, 0.83, 0.82], "old": [0.70, 0.74, 0.71]}, metric="accuracy", higher_is_better=True,
                  reference="old")
    v = cmp["new"]
    assert v.outcome == "better" and v.same_sign and v.n == 3
    assert v.difference == pytest.approx(0.1033333, abs=1e-6)
    out = capsys.readouterr().out
    assert "verdict: new better than old" in out and "0.820 ± 0.010" in out
    check_verdict(v, "better")


def test_direction_follows_the_metric():
    values = {"a": [1.2, 1.3, 1.25], "b": [1.5, 1.6, 1.55]}
    assert compare(values, metric="loss", higher_is_better=False, reference="b", quiet=True)["a"].outcome == "better"
    assert compare(values, metric="loss", higher_is_better=False, reference="a", quiet=True)["b"].outcome == "worse"


def test_noise_gives_no_difference():
    # mean difference +0.01, but one seed goes the other way: not a verdict
    v = compare({"a": [0.80, 0.75, 0.86], "b": [0.78, 0.77, 0.83]}, metric="acc", higher_is_better=True,
                reference="b", quiet=True)["a"]
    assert v.outcome == "no difference" and not v.same_sign
    with pytest.raises(CheckFailed, match="no difference"):
        check_verdict(v, "better")
    check_verdict(v, "no difference")


def test_same_sign_but_within_two_se_is_no_difference():
    v = compare({"a": [1.0, 1.0, 1.0, 1.0], "b": [0.99, 0.999, 0.5, 0.999]}, metric="x",
                higher_is_better=True, reference="b", quiet=True)["a"]
    assert v.same_sign and abs(v.difference) < 2 * v.se and v.outcome == "no difference"


def test_fewer_than_three_runs_is_undecided():
    v = compare({"a": [0.9], "b": [0.1]}, metric="acc", higher_is_better=True, reference="b", quiet=True)["a"]
    assert v.outcome == "undecided" and math.isnan(v.se)
    v = compare({"a": [0.9, 0.91], "b": [0.1, 0.11]}, metric="acc", higher_is_better=True, reference="b",
                quiet=True)["a"]
    assert v.outcome == "undecided" and "needs ≥ 3" in v.text
    with pytest.raises(CheckFailed):
        check_verdict(v, "better")


def test_unpaired_uses_both_spreads():
    v = compare({"a": [10.0, 11.0, 12.0, 11.0], "b": [1.0, 2.0, 3.0]}, metric="x", higher_is_better=True,
                paired=False, reference="b", quiet=True)["a"]
    assert v.outcome == "better" and not v.paired
    assert v.se == pytest.approx(math.sqrt(mean_sd([10, 11, 12, 11])[1] ** 2 / 4 + 1.0 / 3))


def test_several_methods_each_against_the_reference(capsys):
    cmp = compare({"base": [1.0, 1.1, 1.05], "same": [1.02, 1.08, 1.06], "worse": [0.5, 0.6, 0.55]},
                  metric="score", higher_is_better=True, reference="base")
    assert cmp["same"].outcome == "no difference" and cmp["worse"].outcome == "worse"
    assert capsys.readouterr().out.count("verdict:") == 2


@pytest.mark.parametrize("values, match", [
    ({"a": [1.0, 2.0, 3.0]}, "at least two methods"),
    ({"a": [1.0, float("nan"), 3.0], "b": [1.0, 2.0, 3.0]}, "finite numbers"),
    ({"a": [], "b": [1.0]}, "non-empty"),
    ({"b": [1.0, 2.0, 3.0], "a": [1.0, 2.0]}, "one value per shared run"),
])
def test_bad_input_is_named(values, match):
    with pytest.raises(ValueError, match=match):
        compare(values, metric="m", higher_is_better=True, reference="a", quiet=True)


def test_unknown_reference_and_outcome_are_named():
    with pytest.raises(ValueError, match="reference 'c'"):
        compare({"a": [1.0] * 3, "b": [1.0] * 3}, metric="m", higher_is_better=True, reference="c", quiet=True)
    v = compare({"a": [1.0, 1.1, 1.2], "b": [1.0, 1.1, 1.2]}, metric="m", higher_is_better=True, reference="b",
                quiet=True)["a"]
    with pytest.raises(ValueError, match="choose from"):
        check_verdict(v, "wins")

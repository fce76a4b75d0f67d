"""Metrics against references; PASS/FAIL check lines; exercise verdicts; plots."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import matplotlib.pyplot as plt
import pytest
import torch

matplotlib.use("Agg")

from course_lib import metrics
from course_lib.notebook import viz
from course_lib.notebook.checks import CheckFailed, check_close, check_true
from course_lib.exercises.base import ExerciseWrong, run_checker


def test_accuracy_and_perplexity():
    assert metrics.accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])) == 0.5
    assert metrics.accuracy(torch.tensor([1, 0, 1]), torch.tensor([1, 0, 0])) == pytest.approx(2 / 3)
    assert metrics.perplexity(math.log(7)) == pytest.approx(7)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.accuracy(torch.tensor([1, 0]), torch.tensor([1, 0, 1]))


def test_frechet_distance_matches_scipy():
    from scipy import linalg
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    mix = torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(300, 6, generator=g, dtype=torch.float64) @ mix + 0.5
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    s_a, s_b = np.cov(a.numpy().T), np.cov(b.numpy().T)
    ref = float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real))
    assert metrics.frechet_distance(a, b) == pytest.approx(ref, rel=1e-6)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(ValueError):
        metrics.frechet_distance(a, b[:, :3])


def test_knn_and_linear_probe_separate_easy_clusters():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(3, 5, generator=g) * 4
    y = torch.arange(300) % 3
    x = centers[y] + torch.randn(300, 5, generator=g)
    assert metrics.knn_accuracy(x[:200], y[:200], x[200:], y[200:], k=5) > 0.95
    assert metrics.linear_probe(x[:200], y[:200], x[200:], y[200:]) > 0.95
    noise = torch.randn(300, 5, generator=g)
    assert metrics.knn_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.6
    with pytest.raises(ValueError, match="two classes"):
        metrics.linear_probe(x[:10], torch.zeros(10, dtype=torch.long), x[10:20], y[10:20])


def test_knn_matches_a_naive_vote():
    g = torch.Generator().manual_seed(1)
    tr, te = torch.randn(50, 4, generator=g), torch.randn(20, 4, generator=g)
    ytr, yte = torch.randint(0, 3, (50,), generator=g), torch.randint(0, 3, (20,), generator=g)
    preds = []
    for q in te:
        sims = torch.nn.functional.cosine_similarity(tr, q[None], dim=1)
        nn_idx = sims.argsort(descending=True)[:3]
        votes = torch.bincount(ytr[nn_idx], minlength=3)
        best = (votes == votes.max()).nonzero().flatten().tolist()
        preds.append(next(int(ytr[i]) for i in nn_idx if int(ytr[i]) in best))
    expected = float((torch.tensor(preds) == yte).float().mean())
    assert metrics.knn_accuracy(tr, ytr, te, yte, k=3) == pytest.approx(expected)


def test_alignment_and_uniformity():
    z = torch.nn.functional.normalize(torch.randn(200, 8), dim=1)
    assert metrics.alignment(z, z) == pytest.approx(0.0, abs=1e-6)
    assert metrics.alignment(z, -z) == pytest.approx(4.0, rel=1e-5)   # ||2z||^2
    collapsed = torch.ones(50, 8)
    assert metrics.uniformity(collapsed) == pytest.approx(0.0, abs=1e-6)
    assert metrics.uniformity(z) < -1.0


def test_check_lines_are_stable(capsys):
    assert check_close("same", torch.ones(3), torch.ones(3) + 1e-9) is None     # strict: like assert
    assert capsys.readouterr().out == "PASS same\n"
    assert check_close("same", torch.ones(3), torch.ones(3), strict=False).passed
    capsys.readouterr()
    result = check_close("off", torch.ones(3), torch.zeros(3), strict=False)
    out = capsys.readouterr().out
    assert not result and out.startswith("FAIL off: max abs error 1.000e+00")
    with pytest.raises(CheckFailed):
        check_close("shape", torch.ones(3), torch.ones(4))
    assert "shape (3,) != expected (4,)" in capsys.readouterr().out
    with pytest.raises(CheckFailed):
        check_true("cond", False, "because")
    assert check_true("ok", True, strict=False)


def test_exercise_verdicts(capsys):
    def check(fn):
        if fn(2) != 4:
            raise ExerciseWrong(f"square(2) should be 4, got {fn(2)}")

    def todo(x):
        raise NotImplementedError

    assert run_checker("square", lambda x: x * x, check).status == "correct"
    wrong = run_checker("square", lambda x: x + x + 1, check)
    assert wrong.status == "wrong" and "should be 4, got 5" in wrong.message
    assert run_checker("square", todo, check).status == "not attempted"
    crashed = run_checker("square", lambda x: 1 / 0, check)
    assert crashed.status == "wrong" and "ZeroDivisionError" in crashed.message
    assert "✓ square" in capsys.readouterr().out


def test_plots_and_grids():
    history = {"train": [{"step": i + 1, "loss": 3 - i / 50} for i in range(50)],
               "eval": [{"step": 50, "val": 2.2}]}
    fig = viz.plot_history(history, eval_keys=["val"], baselines={"bigram": 2.4})
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "train loss" in labels and "val" in labels and any("bigram" in lab for lab in labels)
    fig, ax = plt.subplots()
    for name, color in (("LSTM", "C0"), ("Transformer", "C1")):      # two runs on one axis stay apart
        viz.plot_history(history, ax=ax, color=color, label=f"{name} (train)")
    drawn = {line.get_label(): line.get_color() for line in ax.lines if "(train)" in line.get_label()}
    assert drawn == {"LSTM (train)": "C0", "Transformer (train)": "C1"}
    plt.close("all")
    grid = viz.image_grid(torch.rand(12, 1, 5, 5), nrow=5)
    assert grid.shape == (3 * 6 - 1, 5 * 6 - 1)
    with pytest.raises(ValueError, match="single-channel"):
        viz.image_grid(torch.rand(2, 3, 5, 5))
    viz.heatmap(torch.rand(3, 4), ["a", "b", "c"], list("wxyz"))
    seen = []
    widget = viz.explore(lambda scale: seen.append(scale), scale=__import__("ipywidgets").FloatSlider(value=1.5))
    assert seen[0] == 1.5 and widget is not None
    assert widget.kwargs == {"scale": 1.5} and widget.children        # the ipywidgets.interactive underneath
    assert widget._ipython_display_() is None                          # a cell's last value: not shown twice


def test_perplexity_of_a_diverged_model_is_infinite_not_an_error():
    assert metrics.perplexity(0.0) == 1.0 and metrics.perplexity(1e6) == float("inf")
    with pytest.raises(ValueError, match=">= 0 nats"):
        metrics.perplexity(float("nan"))

"""The one training loop: learning, determinism, exact resume, NaN handling, schedule, history."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import time

import pytest
import torch
from torch import nn

from course_lib import checkpoints
from course_lib.distributed import shard_batch
from course_lib.train import (QUIET, RunOptions, TrainConfig, fit, fit_or_load, load_finished, warmup_cosine,
                              warmup_cosine_timed,
                              warmup_stable_decay_timed)

from regression_task import RegressionTask


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


def test_loop_learns_regression():
    task = RegressionTask()
    untrained = task.evaluate(_model())["val_mse"]
    result = fit(_model(), task, TrainConfig(steps=400, lr=1e-2), run=QUIET)
    first, last = result.history["train"][0]["loss"], result.history["train"][-1]["loss"]
    assert last < 0.05 * first, (first, last)
    assert result.final["val_mse"] < 0.05 * untrained, (untrained, result.final)


def test_overfit_one_batch():
    class OneBatch(RegressionTask):
        def batch(self, step):
            return super().batch(0)
    result = fit(_model(), OneBatch(), TrainConfig(steps=300, lr=1e-2, min_lr_ratio=1.0), run=QUIET)
    assert result.history["train"][-1]["loss"] < 2e-3


def test_same_seed_same_numbers():
    runs = [fit(_model(), RegressionTask(), TrainConfig(steps=30, lr=1e-2), run=QUIET) for _ in range(2)]
    a = [r["loss"] for r in runs[0].history["train"]]
    b = [r["loss"] for r in runs[1].history["train"]]
    assert a == b


def test_different_seed_different_numbers():
    a = fit(_model(), RegressionTask(), TrainConfig(steps=10, lr=1e-2, seed=0), run=QUIET)
    b = fit(_model(), RegressionTask(), TrainConfig(steps=10, lr=1e-2, seed=1), run=QUIET)
    assert [r["loss"] for r in a.history["train"]] != [r["loss"] for r in b.history["train"]]


class _Stop(Exception):
    pass


def _interrupted_run(out, cfg, stop_after):
    """Run ``cfg`` with a checkpoint every ``stop_after`` steps and kill it right after the first one."""
    class Interrupting(RegressionTask):
        def batch(self, step):
            if step == stop_after:
                raise _Stop
            return super().batch(step)

    stop_cfg = TrainConfig(**{**cfg.__dict__, "checkpoint_every": stop_after})
    with pytest.raises(_Stop):
        fit(_model(), Interrupting(), stop_cfg, run=RunOptions(out_dir=out, progress=False))


def test_resume_is_exact(tmp_path):
    """N steps straight == N/2 steps, a crash, resume, N/2 steps (losses, lr, final metrics)."""
    cfg = TrainConfig(steps=40, lr=1e-2, warmup_steps=5)
    straight = fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path / "straight", progress=False))
    _interrupted_run(tmp_path / "resumed", cfg, stop_after=20)
    resumed = fit(_model(), RegressionTask(), cfg,
                  run=RunOptions(out_dir=tmp_path / "resumed", resume=True, progress=False))
    assert resumed.steps == 40
    assert [r["loss"] for r in resumed.history["train"]] == [r["loss"] for r in straight.history["train"]]
    assert [r["lr"] for r in resumed.history["train"]] == [r["lr"] for r in straight.history["train"]]
    assert resumed.final == straight.final


def test_resume_refuses_a_different_config(tmp_path):
    cfg = TrainConfig(steps=20, lr=1e-2)
    _interrupted_run(tmp_path, cfg, stop_after=10)
    with pytest.raises(ValueError, match=r"cannot resume.*what differs: train\.lr: 0\.01 in the checkpoint, "
                                         r"0\.005 now"):
        fit(_model(), RegressionTask(), TrainConfig(steps=20, lr=5e-3),
            run=RunOptions(out_dir=tmp_path, resume=True, progress=False))


def test_resume_without_checkpoint_starts_fresh(tmp_path):
    result = fit(_model(), RegressionTask(), TrainConfig(steps=5),
                 run=RunOptions(out_dir=tmp_path, resume=True, progress=False))
    assert result.steps == 5 and (tmp_path / "checkpoint.pt").exists()


def test_nan_loss_names_the_step():
    class Exploding(RegressionTask):
        def loss(self, model, batch):
            loss = super().loss(model, batch)
            return loss * float("nan") if self.calls_seen() >= 7 else loss

        def calls_seen(self):
            self.n = getattr(self, "n", 0) + 1
            return self.n - 1

    with pytest.raises(FloatingPointError, match="at step 7"):
        fit(_model(), Exploding(), TrainConfig(steps=20), run=QUIET)


def test_history_json_and_eval_schedule(tmp_path):
    result = fit(_model(), RegressionTask(), TrainConfig(steps=30, eval_every=10),
                 run=RunOptions(out_dir=tmp_path, progress=False))
    saved = json.loads((tmp_path / "history.json").read_text())
    assert [e["step"] for e in saved["eval"]] == [10, 20, 30]
    assert len(saved["train"]) == 30 and saved == result.history
    assert all({"step", "loss", "lr", "grad_norm"} <= set(r) for r in saved["train"])


class _SGDBigLoss(RegressionTask):
    def loss(self, model, batch):
        return 1e6 * super().loss(model, batch)

    def optimizers(self, model, cfg, device):
        return {"model": torch.optim.SGD(model.parameters(), lr=cfg.lr)}


def _update_norm(grad_clip):
    model = _model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    result = fit(model, _SGDBigLoss(), TrainConfig(steps=1, lr=1.0, grad_clip=grad_clip, min_lr_ratio=1.0),
                 run=QUIET)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    return float((after - before).norm()), result.history["train"][0]["grad_norm"]


def test_gradient_clipping_bounds_the_update():
    clipped, pre_clip_norm = _update_norm(1e-3)
    assert pre_clip_norm > 1e3                  # the gradient really was huge
    assert clipped <= 1e-3 * (1 + 1e-4)         # SGD step = lr * clipped gradient
    unclipped, _ = _update_norm(None)
    assert unclipped > 1e3


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 100, 10, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(10, 100, 10, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(55, 100, 10, 0.1) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert warmup_cosine(100, 100, 10, 0.1) == pytest.approx(0.1)


def test_timed_schedule_follows_the_clock_or_the_steps_whichever_is_further():
    cos = lambda p: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p))      # noqa: E731
    assert warmup_cosine_timed(0, 10**6, 0.0, 10.0, 4, 0.1) == pytest.approx(0.25)       # warmup by steps
    assert warmup_cosine_timed(50, 10**6, 5.0, 10.0, 4, 0.1) == pytest.approx(cos(0.5))  # half the time spent
    assert warmup_cosine_timed(50, 10**6, 12.0, 10.0, 4, 0.1) == pytest.approx(0.1)      # budget spent: r
    assert warmup_cosine_timed(54, 104, 1.0, 10.0, 4, 0.1) == pytest.approx(cos(0.5))    # steps further along
    assert warmup_cosine_timed(2, 10**6, 9.0, 10.0, 4, 0.1) == pytest.approx(min(0.75, cos(0.9)))


def test_warmup_stable_decay_is_good_at_any_budget_length():
    """wsd: warm-up ends at its steps or a fraction of the seconds, whichever first; the peak is held until the
    last ``decay_frac`` of the budget; then a linear fall to min_ratio (issue 28's time-budget schedule)."""
    def wsd(*args, **kw):          # the arithmetic, with round fractions: warm-up 5% of the seconds, decay 30%
        return warmup_stable_decay_timed(*args, **{"warmup_frac": 0.05, "decay_frac": 0.3, **kw})
    assert wsd(0, 10**6, 0.0, 100.0, 10, 0.1) == pytest.approx(0.1)               # step 1 of a 10-step warm-up
    assert wsd(2, 10**6, 4.0, 100.0, 10, 0.1) == pytest.approx(0.8)               # 4 s of a 5 s warm-up: further
    assert wsd(2, 10**6, 6.0, 100.0, 10, 0.1) == pytest.approx(1.0)               # 5% of the time: warm
    assert wsd(500, 10**6, 69.0, 100.0, 10, 0.1) == pytest.approx(1.0)            # stable
    assert wsd(500, 10**6, 85.0, 100.0, 10, 0.1) == pytest.approx(1 - 0.9 * 0.5)  # halfway down the decay
    assert wsd(500, 10**6, 100.0, 100.0, 10, 0.1) == pytest.approx(0.1)           # spent: the minimum
    assert wsd(500, 10**6, 130.0, 100.0, 10, 0.1) == pytest.approx(0.1)
    assert wsd(850, 1000, 1.0, 100.0, 10, 0.1) == pytest.approx(1 - 0.9 * 0.5)    # the steps run out first
    assert wsd(500, 10**6, 90.0, 100.0, 10, 0.1, decay_frac=0.2) == pytest.approx(1 - 0.9 * 0.5)
    # the defaults (measured best in benchmarks/time_schedules.py): warm-up 20% of the seconds, decay over the last 10%
    default = TrainConfig(steps=10, seconds=5.0)
    assert (default.warmup_frac, default.decay_frac) == (0.2, 0.1)
    assert warmup_stable_decay_timed(2, 10**6, 10.0, 100.0, 10, 0.1) == pytest.approx(0.5)    # 10 s of a 20 s warm-up
    assert warmup_stable_decay_timed(500, 10**6, 89.0, 100.0, 10, 0.1) == pytest.approx(1.0)  # stable until 90%
    assert warmup_stable_decay_timed(500, 10**6, 95.0, 100.0, 10, 0.1) == pytest.approx(1 - 0.9 * 0.5)
    with pytest.raises(ValueError, match="time_schedule must be one of"):
        TrainConfig(steps=10, seconds=5.0, time_schedule="linear")


def test_the_time_schedule_can_be_the_older_cosine(tmp_path):
    cfg = TrainConfig(steps=10**7, lr=0.05, warmup_steps=5, seconds=0.4, time_schedule="cosine")
    result = fit(_model(), RegressionTask(), cfg, run=QUIET)
    assert result.history["train"][-1]["lr"] <= 0.05 * 0.15       # decayed to about the minimum by the end


def test_time_budget_ends_at_the_minimum_rate_and_finishes(tmp_path):
    """--seconds: the cosine runs over the budget, the run stops when it is spent, the checkpoint says finished."""
    cfg = TrainConfig(steps=10**7, lr=0.05, warmup_steps=5, seconds=0.6)
    result = fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path, progress=False))
    train = result.history["train"]
    assert 10 < result.steps < 10**7 and not result.stopped_early
    assert train[-1]["time_s"] >= 0.6 > train[-2]["time_s"]
    # the last step's rate is the schedule at the progress the previous step left (a slow step under load can
    # leave it short of 1): wsd decays linearly from lr to r * lr over the last decay_frac of the seconds
    p_prev, d = train[-2]["time_s"] / 0.6, cfg.decay_frac
    at_p_prev = 0.05 - 0.045 * min(1.0, max(0.0, (p_prev - (1 - d)) / d))
    assert 0.005 * (1 - 1e-9) <= train[-1]["lr"] <= at_p_prev * 1.05, (train[-1]["lr"], p_prev)
    assert p_prev < 1 - 0.2 * d or train[-1]["lr"] <= 0.005 + 0.045 * 0.2    # near the end: near the minimum
    assert max(r["lr"] for r in train) > 0.045 and all(a["time_s"] <= b["time_s"] for a, b in zip(train, train[1:]))
    status = checkpoints.inspect(tmp_path, checkpoints.fingerprint(_model(), RegressionTask(), cfg), cfg.steps)
    assert status.kind == "finished" and status.step == result.steps
    again, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("loaded") and again.steps == result.steps


def test_time_budget_beats_a_step_schedule_cut_at_the_same_time():
    """Equal wall time: planning the decay over the budget ends lower than cutting a long step schedule.

    Measured (2 CPU cores, 1 s, lr 0.1, seeds 0-2): planned val MSE 0.0012 / 0.0025 / 0.0166, cut at
    lr 0.1: 0.086 / 0.050 / 0.113 (medians 0.0025 vs 0.086).
    """
    planned, cut = [], []
    for seed in range(3):
        cfg = TrainConfig(steps=10**7, lr=0.1, seed=seed)
        planned.append(fit(_model(), RegressionTask(), dataclasses.replace(cfg, seconds=1.0),
                           run=QUIET).final["val_mse"])
        run = fit(_model(), RegressionTask(), cfg, run=RunOptions(progress=False, max_seconds=1.0))
        assert run.stopped_early and run.history["train"][-1]["lr"] > 0.09
        cut.append(run.final["val_mse"])
    assert sorted(planned)[1] < 0.3 * sorted(cut)[1], (planned, cut)


def test_always_train_env_skips_a_finished_checkpoint(tmp_path, monkeypatch):
    """The test command sets $COURSE_ALWAYS_TRAIN=1: notebooks then train, never load what an earlier run left."""
    cfg = TrainConfig(steps=5, lr=1e-2)
    fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path, progress=False))
    _, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("loaded")
    monkeypatch.setenv("COURSE_ALWAYS_TRAIN", "1")
    result, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("trained") and not result.loaded and result.steps == 5
    again, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)   # what this process trained
    assert how.startswith("loaded the checkpoint this process trained") and again.loaded
    fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path, progress=False))   # unrecorded
    result, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("trained") and not result.loaded


def test_a_test_run_trains_each_model_once(tmp_path, monkeypatch):
    """$COURSE_TRAINED_SINCE (the test command's start): a checkpoint written after it, by another process of
    the same run (the English notebook before its Chinese edition), is loaded; one written before it is not."""
    import time as _time
    cfg = TrainConfig(steps=5, lr=1e-2)
    monkeypatch.setenv("COURSE_ALWAYS_TRAIN", "1")
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() - 60:.3f}")       # the run began a minute ago
    fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path, progress=False))   # not via fit_or_load
    result, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("loaded the checkpoint this test run trained") and result.loaded
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() + 60:.3f}")       # written before the run began
    result, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("trained") and not result.loaded
    monkeypatch.setenv("COURSE_TRAINED_SINCE", "yesterday")
    fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path / "other", progress=False))
    with pytest.raises(ValueError, match="seconds since the epoch"):
        fit_or_load(_model(), RegressionTask(), cfg, tmp_path / "other", progress=False)


def test_a_study_is_computed_once_per_test_run_and_always_outside_one(tmp_path, monkeypatch):
    """once_per_test_run: inside a test run the second call with the same name and key reads the first one's
    result; another key, a file from before the run, or no test run at all computes again (and outside a test
    run nothing is written)."""
    import time as _time
    from course_lib.test_run import once_per_test_run
    calls = []
    def study(value):
        def compute():
            calls.append(value)
            return {1: (value, 0.5)}                       # an int key and a tuple: JSON makes them "1" and a list
        return compute
    monkeypatch.delenv("COURSE_ALWAYS_TRAIN", raising=False)
    monkeypatch.delenv("COURSE_TRAINED_SINCE", raising=False)
    assert once_per_test_run("ablation a", {"seed": 0}, study(1), tmp_path) == {"1": [1, 0.5]}
    assert once_per_test_run("ablation a", {"seed": 0}, study(2), tmp_path) == {"1": [2, 0.5]}
    assert calls == [1, 2] and not list(tmp_path.iterdir())              # a learner's run: always computed
    monkeypatch.setenv("COURSE_ALWAYS_TRAIN", "1")
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() - 60:.3f}")
    assert once_per_test_run("ablation a", {"seed": 0}, study(3), tmp_path) == {"1": [3, 0.5]}
    assert once_per_test_run("ablation a", {"seed": 0}, study(4), tmp_path) == {"1": [3, 0.5]}   # read back
    assert once_per_test_run("ablation a", {"seed": 1}, study(5), tmp_path) == {"1": [5, 0.5]}   # another key
    assert calls == [1, 2, 3, 5]
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() + 60:.3f}")     # the file predates this run
    assert once_per_test_run("ablation a", {"seed": 1}, study(6), tmp_path) == {"1": [6, 0.5]}
    for path in tmp_path.glob("ablation_a-*.pt"):
        path.write_text("{not json")
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() - 60:.3f}")
    assert once_per_test_run("ablation a", {"seed": 1}, study(7), tmp_path) == {"1": [7, 0.5]}   # unreadable
    assert calls == [1, 2, 3, 5, 6, 7]


def test_reading_a_study_back_leaves_the_random_generators_as_computing_did(tmp_path, monkeypatch):
    import random
    import time as _time

    import numpy as np
    from course_lib.test_run import once_per_test_run
    monkeypatch.setenv("COURSE_ALWAYS_TRAIN", "1")
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() - 60:.3f}")
    def compute():                                   # a study that draws from every generator
        return [random.random(), float(np.random.rand()), float(torch.rand(()))]
    def after():
        return [random.random(), float(np.random.rand()), float(torch.rand(()))]
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    first, then = once_per_test_run("draws", {}, compute, tmp_path), after()
    random.seed(2), np.random.seed(2), torch.manual_seed(2)          # another state before the second call
    assert once_per_test_run("draws", {}, compute, tmp_path) == first and after() == then


def test_a_study_key_names_configs_functions_and_weights():
    from course_lib.test_run import study_key
    def loss_a(z):
        return z * 2
    def loss_b(z):
        return z * 3
    def again():                                     # the same source, defined anew (another kernel)
        def loss_a(z):
            return z * 2
        return loss_a
    assert study_key(loss_a) == study_key(again()) != study_key(loss_b)
    assert study_key({"cfg": TrainConfig(steps=5), "seeds": (0, 1)})["cfg"]["steps"] == 5
    m1, m2 = _model(), _model()
    with torch.no_grad():
        m2[0].weight.add_(1.0)
    assert study_key(m1) == study_key(m1) != study_key(m2)


def test_a_test_run_trains_a_checkpoint_less_fit_once_and_replays_it(tmp_path, monkeypatch):
    """fit without a checkpoint folder, inside the test command: the same call (same task, config and starting
    weights) later in the run gets the first call's weights, history and result back, and leaves the random
    generators where training left them; another start, a callback or no test run trains."""
    import time as _time
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    batches = []

    class Counting(RegressionTask):
        def batch(self, step):
            batches.append(step)
            return super().batch(step)

    cfg = TrainConfig(steps=6, lr=1e-2, eval_every=3)
    monkeypatch.delenv("COURSE_ALWAYS_TRAIN", raising=False)
    fit(_model(), Counting(), cfg, run=QUIET)
    assert len(batches) == 6 and not (tmp_path / "test-run-results").exists()     # a learner's run: trained
    monkeypatch.setenv("COURSE_ALWAYS_TRAIN", "1")
    monkeypatch.setenv("COURSE_TRAINED_SINCE", f"{_time.time() - 60:.3f}")
    first_model = _model()
    first = fit(first_model, Counting(), cfg, run=QUIET)
    after_first = torch.rand(3)
    assert len(batches) == 12
    torch.manual_seed(123)                                   # elsewhere in between
    again_model = _model()
    again = fit(again_model, Counting(), cfg, run=QUIET)
    assert len(batches) == 12, "the second identical call trained again"
    assert again.history == first.history and again.final == first.final and again.steps == first.steps
    assert all(torch.equal(a, b) for a, b in zip(first_model.state_dict().values(), again_model.state_dict().values()))
    assert torch.equal(torch.rand(3), after_first)           # the generators as training left them
    other_start = _model()
    with torch.no_grad():
        other_start[0].weight.add_(0.1)
    fit(other_start, Counting(), cfg, run=QUIET)
    fit(_model(), Counting(), cfg, run=RunOptions(progress=False, on_eval=lambda *a: None))
    fit(_model(), Counting(), dataclasses.replace(cfg, steps=5), run=QUIET)
    assert len(batches) == 12 + 6 + 6 + 5


def test_lr_follows_schedule_in_history():
    result = fit(_model(), RegressionTask(), TrainConfig(steps=20, lr=0.01, warmup_steps=4), run=QUIET)
    lrs = [r["lr"] for r in result.history["train"]]
    assert lrs[0] == pytest.approx(0.0025) and lrs[3] == pytest.approx(0.01) and lrs[-1] < lrs[4]


@pytest.mark.parametrize("bad", [dict(steps=0), dict(steps=5, lr=0), dict(steps=5, warmup_steps=-1),
                                 dict(steps=5, grad_clip=0), dict(steps=5, lr=float("nan")),
                                 dict(steps=5, seconds=0), dict(steps=5, seconds=-1.0)])
def test_bad_config_is_rejected(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_shard_batch_splits_evenly_and_rejects_uneven():
    x = torch.arange(8).view(8, 1)
    assert shard_batch({"x": x}, 1, 2)["x"].flatten().tolist() == [4, 5, 6, 7]
    with pytest.raises(ValueError, match="does not split evenly"):
        shard_batch(torch.arange(5), 0, 2)


def test_on_step_hook_sees_every_step():
    seen = []
    fit(_model(), RegressionTask(), TrainConfig(steps=7, lr=1e-2), run=RunOptions(progress=False, on_step=seen.append))
    assert seen == list(range(1, 8))


@pytest.mark.slow
def test_compiled_training_matches_eager(tmp_path, one_thread):
    """compile_backend routes the step through torch.compile (aot_eager: traced, no C++ compiler
    needed) with the same numbers as eager, and the checkpoint keeps the plain module's keys."""
    from course_lib.chapters.char_lm import CharData
    from course_lib.chapters.transformer_lm import WindowLMTask
    from course_lib.models.transformer import TransformerConfig, TransformerLM

    ids = torch.randint(0, 20, (2_000,), generator=torch.Generator().manual_seed(0))
    task = WindowLMTask(ids, ids[:300], CharData(batch_size=4, seq_len=16))

    def run(out, backend=None):
        torch.manual_seed(0)
        model = TransformerLM(TransformerConfig(vocab_size=20, max_len=16, d_model=16, n_heads=2, n_layers=1))
        return fit(model, task, TrainConfig(steps=4, lr=1e-2),
                   run=RunOptions(progress=False, out_dir=out, compile_backend=backend))

    eager = run(tmp_path / "eager")
    compiled = run(tmp_path / "compiled", "aot_eager")
    losses = lambda r: [x["loss"] for x in r.history["train"]]  # noqa: E731
    assert losses(compiled) == pytest.approx(losses(eager), rel=1e-5, abs=1e-6)
    from course_lib.checkpoints import load_checkpoint
    keys = set(load_checkpoint(tmp_path / "compiled" / "checkpoint.pt")["model"])
    assert keys == set(load_checkpoint(tmp_path / "eager" / "checkpoint.pt")["model"])


@pytest.mark.parametrize("value, expected", [("", None), ("0", None), ("off", None), ("1", "inductor"),
                                             ("on", "inductor"), ("aot_eager", "aot_eager")])
def test_compile_backend_choice(value, expected, monkeypatch):
    from course_lib.runtime import compile_backend
    monkeypatch.setenv("COURSE_COMPILE", value)
    assert compile_backend() == expected


def test_unknown_compile_backend_names_the_valid_ones(monkeypatch):
    from course_lib.runtime import compile_backend
    with pytest.raises(ValueError, match="unknown torch.compile backend 'turbo'.*inductor"):
        fit(_model(), RegressionTask(), TrainConfig(steps=1), run=RunOptions(progress=False, compile_backend="turbo"))
    monkeypatch.setenv("COURSE_COMPILE", "aot_eager")       # the loop itself never reads the environment
    result = fit(_model(), RegressionTask(), TrainConfig(steps=1), run=QUIET)
    assert result.steps == 1
    assert compile_backend("eager") == "eager"


def test_warmup_longer_than_the_run_warms_up_over_all_of_it():
    result = fit(_model(), RegressionTask(), TrainConfig(steps=4, lr=0.01, warmup_steps=100), run=QUIET)
    assert [r["lr"] for r in result.history["train"]] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])


def test_fit_or_load_trains_then_loads_then_resumes(tmp_path):
    cfg = TrainConfig(steps=12, lr=1e-2)
    first, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert how.startswith("trained") and not first.loaded
    again, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert again.loaded and how.startswith("loaded") and again.final == pytest.approx(first.final)
    assert again.history == first.history
    longer = TrainConfig(steps=12, lr=2e-2)                   # other settings: the checkpoint is stale
    result, status = load_finished(_model(), RegressionTask(), longer, tmp_path)
    assert result is None and status.kind == "stale"
    retrained, how = fit_or_load(_model(), RegressionTask(), longer, tmp_path, progress=False)
    assert not retrained.loaded and "other settings" in how


def test_fit_or_load_resumes_an_interrupted_run_to_the_same_result(tmp_path):
    cfg = TrainConfig(steps=20, lr=1e-2, checkpoint_every=10)
    straight = fit(_model(), RegressionTask(), cfg, run=QUIET)
    _interrupted_run(tmp_path, cfg, stop_after=10)
    result, status = load_finished(_model(), RegressionTask(), cfg, tmp_path)
    assert result is None and status.kind == "interrupted" and status.step == 10
    resumed, how = fit_or_load(_model(), RegressionTask(), cfg, tmp_path, progress=False)
    assert "stopped at step 10" in how and resumed.final == straight.final


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")  # 'first' never steps
def test_task_that_owns_its_step_gets_the_optimizers():
    class TwoOptimizers(RegressionTask):
        def optimizers(self, model, cfg, device):
            return {"first": torch.optim.SGD(model[0].parameters(), lr=cfg.lr),
                    "last": torch.optim.SGD(model[2].parameters(), lr=cfg.lr)}

        def train_step(self, model, batch, tools):
            loss = self.loss(model, batch)
            for opt in tools.optimizers.values():
                opt.zero_grad()
            loss.backward()
            tools.sync(model.parameters())
            tools.optimizers["last"].step()                  # only the last layer learns
            return {"loss": loss.detach()}

    model = _model()
    first_layer = model[0].weight.detach().clone()
    result = fit(model, TwoOptimizers(), TrainConfig(steps=20, lr=1e-2), run=QUIET)
    assert torch.equal(model[0].weight, first_layer)
    assert result.history["train"][-1]["loss"] < result.history["train"][0]["loss"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_finishes_the_step_checkpoints_and_resumes_exactly(tmp_path, sig):
    """Ctrl-C or SIGTERM mid-run: the step completes, a checkpoint is written, the resumed run equals a straight one."""
    cfg = TrainConfig(steps=30, lr=1e-2, warmup_steps=3)
    straight = fit(_model(), RegressionTask(), cfg, run=QUIET)

    class Signalled(RegressionTask):
        def batch(self, step):
            if step == 12:
                os.kill(os.getpid(), sig)                    # arrives in the middle of step 12
            return super().batch(step)

    before = signal.getsignal(sig)          # SIG_IGN when the test process runs as a background job
    with pytest.raises(KeyboardInterrupt, match=f"stopped by {sig.name} after step 13 of 30.*--resume"):
        fit(_model(), Signalled(), cfg, run=RunOptions(out_dir=tmp_path, progress=False, checkpoint_seconds=None))
    assert signal.getsignal(sig) == before                                           # handlers restored
    resumed = fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path, resume=True, progress=False))
    assert [r["loss"] for r in resumed.history["train"]] == [r["loss"] for r in straight.history["train"]]
    assert resumed.final == straight.final


def test_periodic_checkpoints_by_wall_time(tmp_path, monkeypatch):
    class Slow(RegressionTask):
        def batch(self, step):
            time.sleep(0.02)
            return super().batch(step)

    saved = []
    real_save = checkpoints.save_checkpoint

    def spy(path, state):
        saved.append(state["step"])
        return real_save(path, state)

    monkeypatch.setattr(checkpoints, "save_checkpoint", spy)
    fit(_model(), Slow(), TrainConfig(steps=20),
        run=RunOptions(out_dir=tmp_path, progress=False, checkpoint_seconds=0.1))
    fit(_model(), Slow(), TrainConfig(steps=20),
        run=RunOptions(out_dir=tmp_path / "never", progress=False, checkpoint_seconds=None))
    first = saved[:saved.index(20) + 1]
    assert 2 <= len(first) - 1 <= 10 and first[-1] == 20      # some periodic saves (each ~0.1 s), then the final one
    assert saved[len(first):] == [20]                          # without a period: the final checkpoint only


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    fit(_model(), RegressionTask(), TrainConfig(steps=3), run=RunOptions(out_dir=tmp_path, resume=True, progress=False))
    assert "nothing to resume: no checkpoint in" in capsys.readouterr().err


def test_fit_checks_its_checkpoint_folder_before_any_work(tmp_path):
    """Issue 30, D2: a folder that cannot be written is found before training, not at the first save."""
    blocker = tmp_path / "file"
    blocker.write_text("x")                              # a folder below a file can never be made (even as root)

    class Counting(RegressionTask):
        batches = 0

        def batch(self, step):
            Counting.batches += 1
            return super().batch(step)

    with pytest.raises(OSError, match=r"cannot write checkpoints to .*file/run"):
        fit(_model(), Counting(), TrainConfig(steps=5), run=RunOptions(out_dir=blocker / "run", progress=False))
    assert Counting.batches == 0


def test_fit_or_load_trains_into_a_per_user_folder_when_the_shared_one_is_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    blocker = tmp_path / "shared"
    blocker.write_text("a file where the teacher's folder should be")
    cfg = TrainConfig(steps=5)
    result, message = fit_or_load(_model(), RegressionTask(), cfg, blocker / "mlm-class", progress=False)
    fallback = tmp_path / "home" / ".cache" / "course_lib" / "checkpoints" / "mlm-class"
    assert result.steps == 5 and (fallback / "checkpoint.pt").exists()
    assert "mlm-class/ is read-only" in message and str(fallback) in message
    again, message = fit_or_load(_model(), RegressionTask(), cfg, blocker / "mlm-class", progress=False)
    assert again.loaded and "loaded a finished checkpoint" in message   # the learner's own run is kept


def test_fit_or_load_still_loads_a_finished_run_from_a_read_only_folder(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    cfg = TrainConfig(steps=5)
    fit_or_load(_model(), RegressionTask(), cfg, shared, progress=False)
    import course_lib.loading as loading_module
    real = loading_module.writable_folder
    monkeypatch.setattr(loading_module, "writable_folder", lambda folder: False if folder == shared else real(folder))
    result, message = fit_or_load(_model(), RegressionTask(), cfg, shared, progress=False)
    assert result.loaded and "loaded a finished checkpoint" in message

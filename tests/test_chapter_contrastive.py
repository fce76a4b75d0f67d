"""Chapter 04, SimCLR: label budgets, tasks, probing helpers, a learning run, metrics.json, the fingerprint."""

import dataclasses
import json

import pytest
import torch

from course_lib.chapters import contrastive as C
from course_lib.checkpoints import config_hash
from course_lib.models.encoders import Classifier, EncoderConfig, SimCLRNet
from course_lib.profiles import for_profile, override
from course_lib.train import QUIET, RunOptions, load_finished


@pytest.fixture(scope="module")
def split():
    return C.load_split()


def test_split_is_stratified_and_disjoint(split):
    assert split.train_x.shape == (4000, 1, 28, 28) and split.val_x.shape == (1000, 1, 28, 28)
    assert torch.bincount(split.val_y).tolist() == [100] * 10
    train_flat = split.train_x.flatten(1)
    assert not any(torch.equal(train_flat[0], v) for v in split.val_x.flatten(1)[:200])


def test_label_budget_deterministic_nested_balanced_sorted():
    labels = torch.arange(10).repeat(50)
    one, ten = C.label_budget(labels, 1, seed=3), C.label_budget(labels, 10, seed=3)
    assert torch.bincount(labels[ten]).tolist() == [10] * 10
    assert set(one.tolist()) <= set(ten.tolist())
    assert torch.equal(ten, ten.sort().values)
    torch.testing.assert_close(C.label_budget(labels, 10, seed=3), ten)
    assert not torch.equal(C.label_budget(labels, 10, seed=4), ten)
    assert len(C.label_budget(labels, 0)) == 500
    with pytest.raises(ValueError, match="only 50 exist"):
        C.label_budget(labels, 51)
    with pytest.raises(ValueError, match="1-D"):
        C.label_budget(labels.view(50, 10), 1)
    assert C.budget_name(0) == "all" and C.budget_name(10) == "10"


def test_contrastive_task_batch_is_a_pure_function_of_step(split):
    task = C.ContrastiveTask(split.train_x, C.DigitData(batch_size=32), seed=1)
    torch.testing.assert_close(task.batch(5), task.batch(5))
    assert not torch.equal(task.batch(5), task.batch(6))
    cfg = for_profile(C.Config, "smoke", {"model.width": 8})
    model = C.random_encoder(cfg)
    loss, scalars = task.loss(model, task.batch(0))
    assert loss.ndim == 0 and set(scalars) == {"pos_sim", "neg_sim"}
    with pytest.raises(ValueError, match="batch_size"):
        C.ContrastiveTask(split.train_x[:10], C.DigitData(batch_size=32))


def test_supervised_task(split):
    task = C.SupervisedTask(split.train_x[:10], split.train_y[:10], batch_size=16)
    batch = task.batch(0)
    assert batch["x"].shape == (16, 1, 28, 28)
    model = Classifier(EncoderConfig(width=8))
    assert task.loss(model, batch).ndim == 0
    with pytest.raises(ValueError, match="labels"):
        C.SupervisedTask(split.train_x[:10], split.train_y[:9], 4)


def test_extract_features_restores_mode_and_matches_eval_forward(split):
    torch.manual_seed(0)
    model = SimCLRNet(EncoderConfig(width=8)).train()
    feats = C.extract_features(model, split.val_x[:30], batch_size=7)
    assert model.training and feats.shape == (30, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(feats, model.features(split.val_x[:30]), atol=1e-5, rtol=1e-5)
    assert C.extract_features(model, split.val_x[:3], projection=True).shape == (3, 64)
    assert C.pixel_features(split.val_x[:3]).shape == (3, 784)
    with pytest.raises(ValueError, match="N, C, H, W"):
        C.extract_features(model, split.val_x[:3, 0])


def test_class_profile_is_the_default_and_profiles_scale_up():
    assert for_profile(C.Config, "class") == C.Config()
    smoke, klass, full = (for_profile(C.Config, p) for p in ("smoke", "class", "full"))
    assert smoke.train.steps < klass.train.steps < full.train.steps
    assert smoke.study.ablation_steps < klass.study.ablation_steps < full.study.ablation_steps
    assert smoke.model.width <= klass.model.width <= full.model.width


def test_study_budgets_never_enter_the_fingerprint(split):
    """Only what the SimCLR weights depend on is hashed: the study's budgets and the profile name are not."""
    cfg = for_profile(C.Config, "smoke")
    fp = lambda c: config_hash(C.simclr_setup(c, split).fingerprint())    # noqa: E731
    same = override(dataclasses.replace(cfg, profile="class"),
                     {"study.sup_steps": 7, "study.label_budgets": (1,), "study.ablation_steps": 3,
                      "study.ablation_width": 4})
    assert fp(cfg) == fp(same) == config_hash(C.build(cfg).fingerprint())
    for change in ({"simclr.temperature": 0.5}, {"data.batch_size": 64}, {"model.width": 8}, {"train.steps": 9}):
        assert fp(override(cfg, change)) != fp(cfg), change


@pytest.mark.slow
def test_simclr_learns_beats_random_encoder(split):
    # The smoke profile itself (80 steps of 128 images, width 16). Measured on 2 cores with
    # `python -m course_lib train contrastive --profile smoke`: probe(all) 0.927 vs random encoder 0.737
    # and raw pixels 0.876; kNN 0.885 vs 0.508. (A width-8, 60-step run only reached 0.38 vs 0.35, so
    # these thresholds do fail for a model that has not learned.)
    cfg = for_profile(C.Config, "smoke", {"train.eval_every": 0})
    model, result = C.train_simclr(split, cfg, track_knn=False, options=QUIET)
    first, last = result.history["train"][0], result.history["train"][-1]
    assert last["loss"] < first["loss"] - 0.5
    assert last["pos_sim"] > last["neg_sim"] + 0.3
    tr, va = C.extract_features(model, split.train_x), C.extract_features(model, split.val_x)
    rtr, rva = (C.extract_features(C.random_encoder(cfg), x) for x in (split.train_x, split.val_x))
    ours = C.probe_scores(tr, split.train_y, va, split.val_y, 0)
    rand = C.probe_scores(rtr, split.train_y, rva, split.val_y, 0)
    pixels = C.probe_scores(C.pixel_features(split.train_x), split.train_y, C.pixel_features(split.val_x),
                            split.val_y, 0)
    assert ours["probe"] > 0.88 and ours["probe"] > rand["probe"] + 0.1 and ours["probe"] > pixels["probe"]
    assert ours["knn"] > rand["knn"] + 0.2
    geo = C.alignment_uniformity(model, split.val_x[:200])
    assert 0 <= geo["alignment"] < 2 and geo["uniformity"] < 0


@pytest.mark.slow
def test_run_returns_metrics_with_all_methods_and_budgets(tmp_path):
    # the CLI (`python -m course_lib train contrastive`) writes exactly this dict to metrics.json
    cfg = for_profile(C.Config, "smoke", {"train.steps": 3, "train.eval_every": 0, "study.sup_steps": 2,
                                          "model.width": 8, "model.proj_hidden": 32})
    m = C.run(cfg, options=RunOptions(out_dir=tmp_path, progress=False))
    json.dumps(m)
    for key in ("chapter", "profile", "device", "steps", "wall_s", "throughput", "metrics", "baselines", "config",
                "checkpoint", "git_commit", "torch"):
        assert key in m
    assert m["chapter"] == "contrastive" and m["steps"] == 3 and (tmp_path / "checkpoint.pt").exists()
    assert {"final_loss", "pos_sim", "neg_sim", "val_knn_acc", "alignment", "uniformity"} <= set(m["metrics"])
    assert m["config"]["study"]["sup_steps"] == 2
    s = C.build(cfg)                         # what the bundle checks: the folder holds a finished run of cfg
    loaded, status = load_finished(s.model, s.task, s.train, tmp_path)
    assert status.kind == "finished" and loaded.final["val_knn_acc"] == pytest.approx(m["metrics"]["val_knn_acc"],
                                                                                      abs=1e-4)
    for kind in ("probe_acc", "knn_acc"):
        assert set(m["metrics"][kind]) == {"simclr", "pixels", "random_encoder", "supervised"}
        for method in m["metrics"][kind].values():
            assert set(method) == {"1", "10", "100", "all"} and all(0 <= v <= 1 for v in method.values())


def test_knn_k_is_never_more_than_the_labels_per_class():
    assert [C.knn_k_for(b) for b in (1, 2, 5, 10, 0)] == [1, 2, 5, 5, 5]
    assert C.knn_k_for(3, knn_k=1) == 1


def test_moved_digits_are_deterministic_and_within_the_shift(split):
    x = split.val_x[:16]
    moved = C.moved_digits(x, seed=2)
    assert moved.shape == x.shape and torch.equal(moved, C.moved_digits(x, seed=2))
    assert not torch.equal(moved, C.moved_digits(x, seed=3))
    torch.testing.assert_close(C.moved_digits(x, max_shift=0, max_degrees=0.0), x, atol=1e-5, rtol=0)
    shifted = C.moved_digits(x, max_shift=3, max_degrees=0.0)          # whole-pixel shifts keep the ink
    torch.testing.assert_close(shifted.sum((1, 2, 3)), x.sum((1, 2, 3)), atol=1e-3, rtol=0.2)


def test_supervised_stopping_set_is_disjoint_labelled_and_balanced():
    from course_lib.chapters.contrastive.study import _supervised_indices
    labels = torch.arange(10).repeat(40)
    for per_class in (1, 10, 0):
        train_idx, stop_idx = _supervised_indices(labels, per_class, 5, seed=0)
        assert not set(train_idx.tolist()) & set(stop_idx.tolist())
        assert torch.bincount(labels[stop_idx]).tolist() == [5] * 10
        want = [per_class] * 10 if per_class > 0 else [35] * 10
        assert torch.bincount(labels[train_idx], minlength=10).tolist() == want
    assert torch.equal(_supervised_indices(labels, 10, 5, 0)[0], C.label_budget(labels, 10, 0))   # the probes' labels


def test_fit_supervised_stops_early_and_keeps_the_best_weights(split):
    cfg = for_profile(C.Config, "smoke", {"model.width": 8, "study.sup_steps": 400, "study.sup_eval_every": 5,
                                          "study.sup_patience": 2, "study.sup_stop_per_class": 5})
    r = C.fit_supervised(split, cfg, 1, progress=False)
    assert r.steps_run < 400 and r.best_step <= r.steps_run - 2 * 5 and r.best_step % 5 == 0
    assert 0 <= r.stop_acc <= 1 and 0 <= r.head_acc <= 1 and r.wall_s > 0
    model, acc = C.train_supervised(split, cfg, 1, progress=False)
    assert isinstance(model, Classifier) and acc == pytest.approx(r.head_acc)

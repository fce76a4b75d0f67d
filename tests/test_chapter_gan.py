"""Chapter 03, GAN: batches, the D/G step, R1, resume, the checkpoint identity, the judge, learning, ``run``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.chapters import gan as chapter
from course_lib.chapters.gan import (Config, GANTask, Judge, build, load_data, nearest_neighbours, run,
                                     train_classifier, train_gan)
from course_lib.models.gan import GANConfig, build_gan
from course_lib.profiles import for_profile, override
from course_lib.train import QUIET, RunOptions, StepTools, load_finished

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data():
    return load_data()


def _tiny(**kw):
    return override(for_profile(Config, "smoke"), {"model.kind": "mlp", "model.width": 16, "model.latent_dim": 8,
                                                   "data.batch_size": 16, **kw})


def _step(task, gan, batch, train=None):
    """One D/G step outside ``fit``, with the optimizers ``train`` (default: the tiny config's) asks for."""
    train = train if train is not None else _tiny().train
    return task.train_step(gan, batch, StepTools(CPU, task.optimizers(gan, train, CPU)))


def test_registered_and_profiles():
    from course_lib.chapters.registry import get_chapter
    assert get_chapter("gan") is chapter.CHAPTER and chapter.CHAPTER.Config is Config
    assert for_profile(Config, "class") == Config()
    for p in ("smoke", "class", "full"):
        assert for_profile(Config, p).profile == p


def test_load_data_range_and_split(data):
    assert data["train_x"].shape == (4000, 1, 28, 28) and data["val_x"].shape == (1000, 1, 28, 28)
    assert float(data["train_x"].min()) == -1.0 and float(data["train_x"].max()) == 1.0
    assert torch.bincount(data["val_y"]).tolist() == [100] * 10


def test_batch_is_a_pure_function_of_step(data):
    task = GANTask(_tiny(), data["train_x"])
    a, b, c = task.batch(3), task.batch(3), task.batch(4)
    torch.testing.assert_close(a["real"], b["real"])
    torch.testing.assert_close(a["z"], b["z"])
    assert not torch.equal(a["z"], c["z"])
    assert a["real"].shape == (16, 1, 28, 28) and a["z"].shape == (16, 8)


def test_task_rejects_unit_range_images(data):
    with pytest.raises(ValueError, match="to_tanh_range"):
        GANTask(_tiny(), (data["train_x"] + 1) / 2)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        GANTask(_tiny(), data["train_x"][:, 0])


def _one_g_step_effect(data, kind: str) -> float:
    """Change in D's mean logit on fixed fakes after one generator step with loss ``kind``."""
    torch.manual_seed(0)
    cfg = _tiny(**{"gan.generator_loss": kind, "train.lr": 1e-2, "gan.lr_d": 1e-12})    # D effectively frozen
    gan = build_gan(GANConfig("mlp", 8, 16))
    task = GANTask(cfg, data["train_x"])
    batch = task.batch(0)
    with torch.no_grad():
        before = gan.discriminator(gan.generator(batch["z"])).mean()
    _step(task, gan, batch, cfg.train)
    with torch.no_grad():
        after = gan.discriminator(gan.generator(batch["z"])).mean()
    return float(after - before)


def test_generator_step_direction(data):
    assert _one_g_step_effect(data, "non_saturating") > 0      # fakes look more real to D
    assert _one_g_step_effect(data, "fake_label") < 0          # the bug: fakes look more fake


def test_optimizers_follow_the_recipe(data):
    cfg = _tiny(**{"train.lr": 1e-4, "gan.lr_d": 3e-4, "train.betas": (0.3, 0.999)})
    opts = GANTask(cfg, data["train_x"]).optimizers(build_gan(GANConfig("mlp", 8, 16)), cfg.train, CPU)
    assert opts["generator"].param_groups[0]["lr"] == 1e-4 and opts["discriminator"].param_groups[0]["lr"] == 3e-4
    assert opts["generator"].param_groups[0]["betas"] == (0.3, 0.999)


def test_train_step_updates_both_and_reports(data):
    torch.manual_seed(0)
    gan = build_gan(GANConfig("dcgan", 8, 4))
    task = GANTask(_tiny(**{"model.kind": "dcgan", "model.width": 4}), data["train_x"])
    g0 = [p.detach().clone() for p in gan.generator.parameters()]
    d0 = [p.detach().clone() for p in gan.discriminator.parameters()]
    out = _step(task, gan, task.batch(0))
    assert set(out) >= {"loss", "d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "d_grad_norm"}
    assert 0 < out["d_real"] < 1 and 0 < out["d_fake"] < 1 and out["loss"] == out["d_loss"]
    assert any(not torch.equal(a, b) for a, b in zip(g0, gan.generator.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(d0, gan.discriminator.parameters()))


def test_r1_penalty_matches_manual_gradient(data):
    torch.manual_seed(0)
    gan = build_gan(GANConfig("dcgan", 8, 4))
    dcgan = {"model.kind": "dcgan", "model.width": 4}
    task = GANTask(_tiny(**dcgan, **{"gan.r1_gamma": 10.0}), data["train_x"])
    batch = task.batch(0)
    real = batch["real"].clone().requires_grad_(True)
    grad, = torch.autograd.grad(gan.discriminator(real).sum(), real)
    want = float(grad.pow(2).flatten(1).sum(1).mean())
    out = _step(task, gan, batch)
    assert out["r1"] == pytest.approx(want, rel=1e-4) and want > 0
    plain = GANTask(_tiny(**dcgan, **{"gan.r1_gamma": 0.0}), data["train_x"])
    assert _step(plain, build_gan(GANConfig("dcgan", 8, 4)), batch)["r1"] == 0.0


def test_resume_is_exact(data, tmp_path):
    cfg = _tiny(**{"train.steps": 8, "train.eval_every": 4})
    gan_a, task_a, _ = train_gan(cfg, data, options=QUIET)
    train_gan(cfg, data, options=RunOptions(out_dir=tmp_path, progress=False, max_seconds=0.0))   # stops after step 1
    gan_b, task_b, res_b = train_gan(cfg, data, options=RunOptions(out_dir=tmp_path, resume=True, progress=False))
    assert res_b.steps == 8
    for (name, a), b in zip(gan_a.state_dict().items(), gan_b.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    assert [s for s, _ in task_a.snapshots] == [4, 8]
    assert [s for s, _ in task_b.snapshots] == [1, 4, 8]     # the early stop at step 1 rendered one too
    torch.testing.assert_close(task_a.snapshots[-1][1], task_b.snapshots[-1][1])


def test_generator_average_follows_its_formula(data):
    """G_ema <- b G_ema + (1 - b) G with b = min(decay, (1 + t) / (10 + t)), replayed by hand over 5 updates."""
    task = GANTask(_tiny(**{"gan.ema_decay": 0.5}), data["train_x"])
    generator, want = nn.Linear(3, 2), None
    for t in range(5):
        with torch.no_grad():
            for p in generator.parameters():
                p.normal_()
        task._update_ema(generator)
        now = [p.detach().clone() for p in generator.parameters()]
        b = min(0.5, (1 + t) / (10 + t))
        want = now if want is None else [b * a + (1 - b) * x for a, x in zip(want, now)]
    for got, expected in zip(task.ema, want):
        torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="ema_decay"):
        override(_tiny(), {"gan.ema_decay": 1.0})


def test_generator_average_leaves_training_alone_and_resumes_exactly(data, tmp_path):
    cfg = _tiny(**{"train.steps": 6, "train.eval_every": 3})
    gan, task, res = train_gan(cfg, data, options=QUIET)
    plain_gan, plain_task, plain = train_gan(override(cfg, {"gan.ema_decay": 0.0}), data, options=QUIET)
    assert plain_task.ema is None and plain_task.averaged(plain_gan) is plain_gan
    assert [r["loss"] for r in res.history["train"]] == [r["loss"] for r in plain.history["train"]]
    for a, b in zip(gan.state_dict().values(), plain_gan.state_dict().values()):
        torch.testing.assert_close(a, b)
    averaged = task.averaged(gan)
    assert task.ema_updates == 6 and averaged is not gan
    for p, a, live in zip(averaged.generator.parameters(), task.ema, gan.generator.parameters()):
        torch.testing.assert_close(p, a)
        assert not torch.equal(a, live)
    train_gan(cfg, data, options=RunOptions(out_dir=tmp_path, progress=False, max_seconds=0.0))   # stops after step 1
    _, resumed, _ = train_gan(cfg, data, options=RunOptions(out_dir=tmp_path, resume=True, progress=False))
    assert resumed.ema_updates == 6
    for a, b in zip(task.ema, resumed.ema):
        torch.testing.assert_close(a, b)


def test_checkpoint_identity_ignores_the_study_but_not_the_recipe(data):
    cfg = _tiny()
    base = build(cfg, data).fingerprint()
    demo = override(cfg, {"study.side_steps": 7, "study.classifier_steps": 3, "study.eval_samples": 10,
                          "train.eval_every": 1})
    assert build(demo, data).fingerprint() == base            # a demo's budget never makes a checkpoint stale
    for change in ({"gan.lr_d": 2e-3}, {"gan.r1_gamma": 0.0}, {"gan.generator_loss": "saturating"},
                   {"data.batch_size": 32}, {"model.latent_dim": 4}, {"train.steps": 9}):
        assert build(override(cfg, change), data).fingerprint() != base, change


def test_nearest_neighbours_matches_loop():
    gen = torch.Generator().manual_seed(0)
    q, r = torch.randn(5, 1, 4, 4, generator=gen), torch.randn(9, 1, 4, 4, generator=gen)
    d, i = nearest_neighbours(q, r, chunk=2)
    for k in range(5):
        dists = torch.stack([(q[k] - r[j]).norm() for j in range(9)])
        assert int(i[k]) == int(dists.argmin())
        torch.testing.assert_close(d[k], dists.min())
    d_self, i_self = nearest_neighbours(r, r)
    assert torch.equal(i_self, torch.arange(9)) and float(d_self.max()) < 1e-3
    with pytest.raises(ValueError):
        nearest_neighbours(q, torch.randn(3, 1, 5, 5))


@pytest.fixture(scope="module")
def judge(data):
    clf, _ = train_classifier(override(for_profile(Config, "smoke"), {"study.classifier_steps": 120}), data,
                              progress=False)
    return Judge(clf, data)


def test_judge_baselines(judge, data):
    # measured (smoke classifier, 120 steps): accuracy ~0.95, floor ~2-6, noise ~1000+
    assert judge.accuracy > 0.9
    floor = judge.real_floor()
    noise = torch.rand(1000, 1, 28, 28) * 2 - 1
    assert floor < 20 and judge.frechet(noise) > 20 * floor
    shares = judge.class_shares(data["val_x"])
    torch.testing.assert_close(shares.sum(), torch.tensor(1.0))
    assert float(shares.min()) > 0.07
    one_digit = data["val_x"][data["val_y"] == 3]
    assert float(judge.class_shares(one_digit).max()) > 0.9      # collapse onto one class is visible


@pytest.mark.slow
def test_gan_learns_and_wrong_label_unlearns(judge, data):
    # plain game (no R1), DCGAN width 16, lr 5e-4. Measured (1 thread, smoke classifier): 200 steps take FD
    # from 532 (untrained) to 331; 100 more steps with the wrong label -> 413, with the right label -> 139.
    cfg = override(for_profile(Config, "smoke"), {"model.width": 16, "gan.r1_gamma": 0.0, "train.eval_every": 200,
                                                  "study.eval_samples": 500, "train.lr": 5e-4, "gan.lr_d": 5e-4})
    untrained = judge.frechet(build_gan(GANConfig("dcgan", cfg.model.latent_dim, 16)).sample(
        500, torch.Generator().manual_seed(11)))
    gan, task, result = train_gan(cfg, data, judge, steps=200, options=QUIET)
    state = {k: v.clone() for k, v in gan.state_dict().items()}
    cont = override(cfg, {"train.eval_every": 100})
    _, _, bad = train_gan(override(cont, {"gan.generator_loss": "fake_label"}), data, judge, steps=100,
                          options=QUIET, init_state=state)
    _, _, right = train_gan(cont, data, judge, steps=100, options=QUIET, init_state=state)
    print(untrained, result.final, bad.final, right.final)
    assert result.final["fd"] < 0.75 * untrained, (result.final, untrained)
    assert right.final["fd"] < 0.7 * result.final["fd"], (right.final, result.final)     # keeps learning
    assert bad.final["fd"] > result.final["fd"], (bad.final, result.final)               # gets worse
    assert bad.final["fd"] > 2 * right.final["fd"], (bad.final, right.final)


def test_run_returns_metrics_and_a_checkpoint_build_recognises(tmp_path):
    cfg = for_profile(Config, "smoke", {"train.steps": 6, "train.eval_every": 3, "study.classifier_steps": 5,
                                        "study.eval_samples": 100})
    m = run(cfg, options=RunOptions(out_dir=tmp_path, progress=False))
    for key in ("chapter", "profile", "device", "steps", "wall_s", "classifier_wall_s", "throughput", "metrics",
                "baselines", "config", "checkpoint", "git_commit", "torch"):
        assert key in m
    assert m["chapter"] == "gan" and m["steps"] == 6 and m["throughput"]["unit"] == "real images/s"
    for key in ("frechet_distance", "min_class_share", "class_shares", "classifier_accuracy", "nn_distance_samples",
                "d_real", "d_fake"):
        assert key in m["metrics"]
    for key in ("frechet_real_vs_real", "frechet_untrained_generator", "nn_distance_heldout_real"):
        assert key in m["baselines"]
    assert m["config"]["study"]["eval_samples"] == 100
    setup = chapter.CHAPTER.build(override(cfg, {"study.side_steps": 1}))    # the bundle's view of the folder
    result, status = load_finished(setup.model, setup.task, setup.train, tmp_path)
    assert status.kind == "finished" and result is not None and result.steps == 6, status

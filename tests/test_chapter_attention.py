"""Chapter 01, learning to attend: targets, config checks, batches, the baseline, learning, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from course_lib.chapters import attention as chapter
from course_lib.profiles import for_profile, override
from course_lib.train import RunOptions, load_finished


def test_targets_and_config():
    x = torch.tensor([[3, 1, 2], [0, 5, 4]])
    assert chapter.make_targets(x, "reverse").tolist() == [[2, 1, 3], [4, 5, 0]]
    assert chapter.make_targets(x, "sort").tolist() == [[1, 2, 3], [0, 4, 5]]
    with pytest.raises(ValueError, match="task must be"):
        chapter.make_targets(x, "copy")
    with pytest.raises(ValueError, match="task must be"):
        override(chapter.Config(), {"data.task": "copy"})
    with pytest.raises(ValueError, match="seq_len >= 2"):
        chapter.RoutingData(seq_len=1)
    for p in ("smoke", "class", "full"):
        assert for_profile(chapter.Config, p).profile == p
    assert for_profile(chapter.Config, "class") == chapter.Config()


def test_batches_are_a_pure_function_of_step():
    cfg = for_profile(chapter.Config, "smoke")
    task = chapter.build(cfg).task
    a, b, c = task.batch(3), task.batch(3), task.batch(4)
    assert torch.equal(a["x"], b["x"]) and not torch.equal(a["x"], c["x"])
    assert a["x"].shape == (cfg.data.batch_size, cfg.data.seq_len) and torch.equal(a["y"], a["x"].flip(1))
    assert int(a["x"].max()) < cfg.data.vocab_size and task.items(a) == cfg.data.batch_size * cfg.data.seq_len
    other = chapter.RoutingTask(cfg.data, seed=1)                   # the seed moves batches and the held-out set
    assert not torch.equal(other.batch(3)["x"], a["x"]) and not torch.equal(other.eval_set["x"], task.eval_set["x"])
    assert task.signature() == {"data": cfg.data, "seed": 0}


def test_baseline_cannot_mix_positions_and_is_the_same_size():
    cfg = for_profile(chapter.Config, "smoke")
    torch.manual_seed(0)
    model, base = chapter.build_model(cfg).eval(), chapter.build_baseline(cfg).eval()
    n_model = sum(p.numel() for p in model.parameters())
    n_base = sum(p.numel() for p in base.parameters())
    assert abs(n_model - n_base) / n_model < 0.02
    x = torch.randint(0, cfg.data.vocab_size, (2, cfg.data.seq_len))
    x2 = x.clone()
    x2[:, 1:] = (x2[:, 1:] + 1) % cfg.data.vocab_size             # change every token but the first
    torch.testing.assert_close(base(x2)[:, 0], base(x)[:, 0])      # position 0 cannot notice
    assert not torch.allclose(model(x2)[:, 0], model(x)[:, 0])     # attention does


def test_learns_to_reverse_and_beats_no_attention_baseline(tmp_path, one_thread):
    # measured (smoke, 2 x 200 steps, CPU, 1 thread, ~2-8 s): accuracy 1.000, sequence 1.000;
    # no-attention baseline 0.062 (= chance 1/16). Thresholds leave wide margins.
    cfg = for_profile(chapter.Config, "smoke")
    m = chapter.run(cfg, device="cpu", options=RunOptions(out_dir=tmp_path, progress=False))
    assert m["metrics"]["accuracy"] > 0.9, m["metrics"]
    assert m["baselines"]["no_attention_accuracy"] < 0.15, m["baselines"]
    assert m["metrics"]["accuracy"] - m["baselines"]["no_attention_accuracy"] > 0.6
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "baseline" / "checkpoint.pt").exists()
    s = chapter.build(cfg)                                          # build(cfg) is what run left in out_dir
    result, status = load_finished(s.model, s.task, s.train, tmp_path)
    assert status.kind == "finished" and result.final["accuracy"] == pytest.approx(m["metrics"]["accuracy"], abs=1e-4)


def test_cli_writes_metrics(tmp_path, one_thread):
    from course_lib.__main__ import main
    assert main(["train", "attention", "--profile", "smoke", "--steps", "3", "--out", str(tmp_path), "--quiet"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("chapter", "profile", "device", "steps", "wall_s", "throughput", "metrics", "baselines", "config",
                "checkpoint", "git_commit", "torch"):
        assert key in m
    assert m["chapter"] == "attention" and m["steps"] == 3 and "accuracy" in m["metrics"]
    assert {"no_attention_accuracy", "chance_accuracy"} <= set(m["baselines"])
    assert m["config"]["train"]["steps"] == 3 and m["parameters"]["model"] > m["parameters"]["baseline"] > 0

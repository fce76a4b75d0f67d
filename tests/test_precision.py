"""Precision that fits the device: bf16, fp16 with a gradient scaler, float32; the fixes the GPU runs called for.

CUDA is not on the test machine, so each path is forced on the CPU (CPU autocast runs bf16 and fp16),
and the CUDA choice is checked by standing in for the device's compute capability.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from course_lib import runtime
from course_lib.chapters.registry import get_chapter
from course_lib.train import QUIET, RunOptions, StepTools, TrainConfig, fit

from regression_task import RegressionTask

CPU = torch.device("cpu")


# ---- choosing the precision -------------------------------------------------------------------------------

def test_auto_is_float32_on_cpu_and_mps(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    assert runtime.pick_precision("cpu") == "fp32"
    assert runtime.pick_precision(torch.device("mps")) == "fp32"


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((7, 0), "fp16"), ((8, 0), "bf16"),
                                                  ((9, 0), "bf16")])
def test_auto_on_cuda_takes_bf16_only_where_the_gpu_has_it(monkeypatch, capability, expected):
    """A T4 (7.5) or V100 (7.0) gets fp16 + scaler; an A100 (8.0) or H100/H200 (9.0) gets bf16."""
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert runtime.pick_precision(torch.device("cuda")) == expected
    scaler = runtime.grad_scaler(CPU, expected)          # the scaler exists exactly for fp16
    assert (scaler is not None) == (expected == "fp16")


def test_forced_precision_and_bad_values(monkeypatch):
    monkeypatch.setenv("COURSE_PRECISION", "bf16")
    assert runtime.pick_precision("cpu") == "bf16"
    assert runtime.pick_precision("cpu", "fp32") == "fp32"                    # an argument wins
    monkeypatch.setenv("COURSE_PRECISION", "half")
    with pytest.raises(ValueError, match=r"unknown precision 'half'.*COURSE_PRECISION.*bf16, fp16, fp32"):
        runtime.pick_precision("cpu")
    with pytest.raises(ValueError, match="not supported on MPS"):
        runtime.pick_precision(torch.device("mps"), "fp16")


def test_environment_report_names_the_precision(monkeypatch):
    monkeypatch.setenv("COURSE_PRECISION", "fp16")
    assert "fp16 autocast + gradient scaler" in runtime.environment_report(device="cpu")
    monkeypatch.delenv("COURSE_PRECISION")
    assert "precision    : float32" in runtime.environment_report(device="cpu")


@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16),
                                              ("fp32", torch.float32)])
def test_autocast_computes_in_the_chosen_precision(precision, dtype):
    with runtime.autocast(CPU, precision):
        out = nn.Linear(4, 4)(torch.randn(2, 4))
    assert out.dtype == dtype


# ---- the loop under each precision --------------------------------------------------------------------------

def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_the_loop_learns_and_records_its_precision(monkeypatch, precision):
    monkeypatch.setenv("COURSE_PRECISION", precision)
    result = fit(_model(), RegressionTask(), TrainConfig(steps=200, lr=1e-2), run=QUIET)
    first, last = result.history["train"][0]["loss"], result.history["train"][-1]["loss"]
    assert result.precision == precision
    assert last < 0.1 * first, (precision, first, last)


def test_fp16_scaler_state_is_checkpointed_and_resumes_exactly(monkeypatch, tmp_path):
    """The loss scale is part of the run: a resumed fp16 run follows the uninterrupted one step for step."""
    monkeypatch.setenv("COURSE_PRECISION", "fp16")
    cfg = TrainConfig(steps=30, lr=1e-2, warmup_steps=3)
    straight = fit(_model(), RegressionTask(), cfg, run=RunOptions(out_dir=tmp_path / "straight", progress=False))
    state = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    assert state["scaler"]["scale"] > 0

    class Stop(Exception):
        pass

    class Interrupted(RegressionTask):
        def batch(self, step):
            if step == 15:
                raise Stop
            return super().batch(step)

    with pytest.raises(Stop):
        fit(_model(), Interrupted(), dataclasses.replace(cfg, checkpoint_every=15),
            run=RunOptions(out_dir=tmp_path / "resumed", progress=False))
    resumed = fit(_model(), RegressionTask(), dataclasses.replace(cfg, checkpoint_every=15),
                  run=RunOptions(out_dir=tmp_path / "resumed", resume=True, progress=False))
    assert [r["loss"] for r in resumed.history["train"]] == [r["loss"] for r in straight.history["train"]]


def test_a_step_with_nan_gradients_is_skipped_not_applied():
    """One NaN gradient (finite loss) must not write NaN into every weight: the step is skipped and logged."""
    class NaNGradientAtStep3(RegressionTask):
        def batch(self, step):
            x, y = super().batch(step)
            return x, y, torch.tensor(float(step == 3))

        def loss(self, model, batch):
            x, y, poison = batch
            zero = sum((p - p.detach()).abs().sum() for p in model.parameters())   # value 0, gradient 0
            # sqrt at 0 has an infinite slope: times the zero slope of |.| at 0 the gradient is NaN
            loss = super().loss(model, (x, y))
            return loss + zero.sqrt() if bool(poison) else loss

    result = fit(_model(), NaNGradientAtStep3(), TrainConfig(steps=8, lr=1e-2), run=QUIET)
    skipped = [r["skipped"] for r in result.history["train"]]
    assert skipped == [0, 0, 0, 1, 0, 0, 0, 0]
    assert math.isnan(result.history["train"][3]["grad_norm"])
    assert all(math.isfinite(r["loss"]) for r in result.history["train"])


def test_a_run_whose_gradients_stay_nan_stops_with_a_clear_error():
    class AlwaysNaN(RegressionTask):
        def loss(self, model, batch):
            zero = sum((p - p.detach()).abs().sum() for p in model.parameters())
            return super().loss(model, batch) + zero.sqrt()

    with pytest.raises(FloatingPointError, match=r"gradient norm was nan for 21 steps in a row.*COURSE_PRECISION"):
        fit(_model(), AlwaysNaN(), TrainConfig(steps=40, lr=1e-2), run=QUIET)


# ---- the chapters' fixes ------------------------------------------------------------------------------------

def test_gan_step_under_fp16_gets_finite_gradients_with_r1():
    """The GAN's own two-optimizer step with a gradient scaler. R1's double backward through D gave NaN
    gradients on every step in fp16 (the H200 run diverged at step 145); D now scores the reals in
    float32 under fp16, so after the scaler's first overflow steps the gradients are finite."""
    chapter = get_chapter("gan")
    cfg = chapter.config("smoke")
    assert cfg.gan.r1_gamma > 0
    setup = chapter.build(cfg)
    task, gan = setup.task, setup.model
    tools = StepTools(CPU, task.optimizers(gan, cfg.train, CPU), cfg.train.grad_clip, precision="fp16",
                      scaler=runtime.grad_scaler(CPU, "fp16"))
    norms = [task.train_step(gan, task.batch(step), tools)["d_grad_norm"] for step in range(8)]
    finite = [n for n in norms if math.isfinite(n)]
    assert len(finite) >= 5, norms
    assert all(torch.isfinite(p).all() for p in gan.parameters())
    assert tools.scaler.get_scale() >= 1024, tools.scaler.get_scale()        # not halved towards zero


def test_lstm_recurrence_stays_float32_under_bf16_autocast():
    """The full recipe's 3 x 512 LSTM sat at the unigram loss in bf16 on an H200 (its cell state, a running
    sum, loses updates below 1/256 of itself); the recurrence now runs in float32 under autocast."""
    chapter = get_chapter("rnn_lm")
    cfg = chapter.config("full")
    assert (cfg.model.layers, cfg.model.hidden_dim) == (3, 512)
    from course_lib.models.rnn import CharRNN, CharRNNConfig
    torch.manual_seed(0)
    model = CharRNN(CharRNNConfig(vocab_size=65, cell=cfg.model.cell, embed_dim=cfg.model.embed_dim,
                                  hidden_dim=cfg.model.hidden_dim, layers=cfg.model.layers)).eval()
    ids = torch.randint(0, 65, (2, 48))
    with torch.no_grad():
        reference, _ = model(ids)
        with runtime.autocast(CPU, "bf16"):
            logits, (h, c) = model(ids)
            _, (h2, c2) = model(ids, (h, c))                  # carried state, as truncated BPTT does
    assert h.dtype == c.dtype == h2.dtype == c2.dtype == torch.float32
    assert logits.dtype == torch.bfloat16                       # the head still runs in bf16
    assert torch.allclose(logits.float(), reference, atol=0.05), (logits.float() - reference).abs().max()


class _StopAt(Exception):
    pass


def _first_steps(chapter_name: str, overrides: dict, steps: int, monkeypatch) -> tuple[list[float], int]:
    """The training losses of ``steps`` steps of a chapter's ``full`` recipe under bf16 autocast on the CPU.

    The recipe's own model, rate, warm-up, clipping and schedule (its ``train.steps``, so the rate is the
    one the real run has at these steps); ``overrides`` only shrink the batch to fit a CPU test.
    Returns the losses and how many optimizer steps were skipped for a non-finite gradient.
    """
    monkeypatch.setenv("COURSE_PRECISION", "bf16")
    chapter = get_chapter(chapter_name)
    setup = chapter.build(chapter.config("full", overrides))
    losses: list[float] = []
    skipped = [0]
    own_step = setup.task.train_step

    def recorded(model, batch, tools):
        scalars = own_step(model, batch, tools)
        losses.append(float(scalars["loss"]))
        skipped[0] += int(scalars.get("skipped", 0))
        return scalars

    def stop(step: int) -> None:
        if step >= steps:
            raise _StopAt

    setup.task.train_step = recorded
    with pytest.raises(_StopAt):
        fit(setup.model, setup.task, setup.train, device=CPU,
            run=RunOptions(progress=False, on_step=stop, checkpoint_seconds=None))
    return losses, skipped[0]


@pytest.mark.slow
def test_full_lstm_recipe_leaves_the_unigram_plateau_under_bf16(monkeypatch):
    """The `full` 3 x 512 LSTM's first 120 steps under bf16 autocast (batch 16 x 64 here): the training loss
    must leave the unigram level (3.32 nats/char). Measured on the 2-core CPU: 2.45 over steps 111-120. On the
    H200 the bf16 recurrence sat at 3.32 from step ~25; the CPU's bf16 LSTM kernel does not reproduce that
    (the same 120 steps with the recurrence in bf16 reached 2.47), so the fix itself is guarded by
    test_lstm_recurrence_stays_float32_under_bf16_autocast, and this test guards the recipe (rate, warm-up,
    clipping) against a change that leaves it stuck."""
    cfg = get_chapter("rnn_lm").config("full")
    assert (cfg.model.layers, cfg.model.hidden_dim) == (3, 512)
    losses, skipped = _first_steps("rnn_lm", {"data.batch_size": 16, "data.seq_len": 64, "data.eval_chars": 4096},
                          120, monkeypatch)
    last = sum(losses[-10:]) / 10
    assert all(math.isfinite(x) for x in losses) and skipped == 0
    assert last < 3.0, f"mean loss of steps {len(losses) - 9}-{len(losses)}: {last:.3f} (unigram ~3.32)"


@pytest.mark.slow
def test_full_mlm_recipe_runs_its_first_steps_finite_under_bf16(monkeypatch):
    """The `full` MLM (4 x 256 encoder, lr 1e-3, 200-step warm-up) builds and trains under bf16 autocast on the
    CPU: 20 steps, every loss finite, no step skipped. Its bf16 divergence on the H200 came at step 1,217 at the
    old rate 2e-3, and on this CPU the loss does not move from its start (~6.2) within 160 steps at batch 16, so
    neither the divergence nor its fix can be shown in a CPU test: both were measured on the GPU only
    (benchmarks/GPU.md); this guards the recipe against breaking outright."""
    assert get_chapter("mlm").config("full").train.lr <= 1e-3
    losses, skipped = _first_steps("mlm", {"data.batch_size": 8, "data.eval_sequences": 16}, 20, monkeypatch)
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses) and skipped == 0, (losses, skipped)

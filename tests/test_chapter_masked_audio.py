"""Chapter 06, masked reconstruction on speech: masks, the loss, the model, the corpus's frames, the CLI."""

from __future__ import annotations

import json

import pytest
import torch

from course_lib.chapters import masked_audio as chapter
from course_lib.models.frames import FrameClassifier, FrameEncoderConfig, FrameReconstructor
from course_lib.objectives.masked_frames import interpolate_masked, masked_reconstruction_loss, span_mask
from course_lib.profiles import for_profile


def test_span_mask_hides_spans_of_the_requested_length():
    g = torch.Generator().manual_seed(0)
    mask = span_mask(200, 32, 0.2, 3, g)                                    # round(0.2 * 32 / 3) = 2 spans
    assert mask.shape == (200, 32) and mask.dtype == torch.bool
    runs = []
    for row in mask.int().tolist():                                         # lengths of hidden runs
        run = 0
        for v in row + [0]:
            if v:
                run += 1
            elif run:
                runs.append(run)
                run = 0
    assert min(runs) >= 3                                                    # spans may touch: runs of >= 3
    assert 0.1 < float(mask.float().mean()) <= 6 / 32
    assert torch.equal(mask, span_mask(200, 32, 0.2, 3, torch.Generator().manual_seed(0)))
    assert not span_mask(4, 32, 0.0, 3).any()
    for bad in (dict(fraction=1.5, span=3), dict(fraction=float("nan"), span=3), dict(fraction=0.2, span=40)):
        with pytest.raises(ValueError):
            span_mask(4, 32, **bad)


def test_loss_scores_hidden_frames_only():
    target = torch.zeros(1, 4, 2)
    pred = torch.tensor([[[1.0, 1.0], [3.0, 3.0], [0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[False, True, False, False]])
    assert float(masked_reconstruction_loss(pred, target, mask, "l1")) == 3.0
    assert float(masked_reconstruction_loss(pred, target, mask, "mse")) == 9.0
    assert float(masked_reconstruction_loss(pred, target, None, "l1")) == pytest.approx(1.0)   # (2+6)/8
    with pytest.raises(ValueError, match="hides no frame"):
        masked_reconstruction_loss(pred, target, torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="kind"):
        masked_reconstruction_loss(pred, target, mask, "huber")


def test_interpolation_baseline_is_exact_on_a_straight_line():
    x = torch.linspace(0, 1, 20)[None, :, None].repeat(2, 1, 3)
    mask = torch.zeros(2, 20, dtype=torch.bool)
    mask[:, 5:9] = True
    torch.testing.assert_close(interpolate_masked(x, mask), x)


def test_frame_models_shapes_mask_vector_and_copied_encoder():
    cfg = FrameEncoderConfig(n_features=12, max_frames=10, d_model=16, n_heads=2, n_layers=1, dropout=0.0)
    model = FrameReconstructor(cfg).eval()
    x = torch.randn(3, 10, 12)
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[:, 4] = True
    assert model(x, mask).shape == (3, 10, 12)
    changed = x.clone()
    changed[:, 4] += 5.0                                                    # a hidden frame's content is not seen
    torch.testing.assert_close(model(x, mask), model(changed, mask))
    assert not torch.allclose(model(x), model(changed))
    clf = FrameClassifier(cfg, 5, encoder=model.encoder)
    assert clf(x).shape == (3, 5)
    with torch.no_grad():
        clf.encoder.proj.weight.add_(1.0)
    assert not torch.equal(clf.encoder.proj.weight, model.encoder.proj.weight)   # a copy, not shared
    with pytest.raises(ValueError, match="float"):
        model(torch.zeros(3, 10, 11))


@pytest.fixture(scope="module")
def smoke_cfg():
    return for_profile(chapter.Config, "smoke")


@pytest.mark.slow
def test_frames_are_split_by_speaker_and_normalised(smoke_cfg):
    data = chapter.frames_for(smoke_cfg)
    k = smoke_cfg.data.stack
    assert data.train_x.shape[1:] == (98 // k, 40 * k) == (smoke_cfg.model.max_frames, smoke_cfg.model.n_features)
    assert len(data.train_x) + len(data.val_x) + len(data.test_x) == 30 * 20
    flat = chapter.unstack_frames(data.train_x, k).reshape(-1, 40)
    assert flat.mean(0).abs().max() < 0.05 and (flat.std(0) - 1).abs().max() < 0.05   # per band, training frames
    test_speakers = {int(i) // 20 for i in data.test_index}
    assert not test_speakers & {int(i) // 20 for i in data.train_index}
    clip = chapter.clip_audio(30, 0, int(data.test_index[0]))                 # a clip rebuilt alone
    from course_lib.audio import log_mel
    feats = (log_mel(torch.from_numpy(clip), smoke_cfg.data.features) - data.mean) / data.std
    torch.testing.assert_close(chapter.stack_frames(feats[None], k)[0], data.test_x[0], atol=2e-2, rtol=0)


@pytest.mark.slow
def test_pretraining_learns_and_the_cli_writes_every_method(tmp_path, monkeypatch, one_thread):
    """Masked-frame pre-training lowers the hidden-frame error below both trivial predictors of the target."""
    from course_lib.__main__ import main
    monkeypatch.setitem(chapter.Config.PROFILES, "smoke", {**chapter.Config.PROFILES["smoke"],
                                                           "study.ft_min_steps": 5, "study.ft_max_steps": 5,
                                                           "study.draws": 1, "study.label_budgets": (1, 0),
                                                           "study.finetune_budgets": (1,)})
    assert main(["train", "masked_audio", "--profile", "smoke", "--out", str(tmp_path), "--quiet"]) == 0
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["chapter"] == "masked_audio" and m["steps"] == 150
    assert set(m["metrics"]["accuracy"]) == set(chapter.METHODS)
    acc = m["metrics"]["accuracy"]
    assert all(set(acc[k]) == {"1", "all"} for k in ("pretrained_probe", "logmel_stats", "random_probe"))
    assert all(set(acc[k]) == {"1"} for k in ("pretrained_finetuned", "scratch_finetuned"))
    assert len(acc["pretrained_probe"]["1"]["runs"]) == 2
    assert m["data"]["pretraining_clips"] == 2 * m["data"]["train_clips"]
    # measured in smoke, on the pool's held-out speech against the centred target: 0.470 after 150 steps, against
    # 0.481 for the clip's band means and 0.518 for interpolation; an untrained model is at 0.68
    metrics, base = m["metrics"], m["baselines"]
    assert metrics["heldout_masked_l1"] < min(base["heldout_band_mean_l1"], base["heldout_interpolation_l1"]), \
        (metrics, base)
    assert base["heldout_band_mean_l1"] < base["heldout_interpolation_l1"]       # the clip's mean is a strong guess
    assert {"test_masked_l1", "test_interpolation_l1"} <= set(metrics) | set(base)

"""Chapter 06: masked reconstruction on speech, then keyword recognition from few labels (``train masked_audio``).

``config`` (sizes, budgets, the study's budgets), ``data`` (the spoken-keyword corpus as
normalised log-mel frames, split by speaker), ``task`` (masked-frame pre-training, the keyword
task, reconstruction errors and their trivial baselines), ``study`` (recognition on new
speakers at several label budgets against honest baselines). Notebook 06_masked_audio and
the command line use the same functions.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ... import runtime
from ...train import TrainSetup, fit
from ..base import Chapter
from ..summary import rounded, run_summary
from .config import Config, MaskingConfig, SpeechData, StudyConfig
from .data import FrameData, clip_audio, clip_speaker, load_frames, stack_frames, unstack_frames
from .study import (METHODS, budget_name, classify_accuracy, encoder_features, finetune, logmel_stats,
                    recognition_study, spread)
from .task import (EVAL_SEED, KeywordTask, MaskedFramesTask, eval_masks, new_classifier, pretrain_setup,
                   reconstruct, reconstruction_errors, trivial_errors)

__all__ = ["Config", "SpeechData", "MaskingConfig", "StudyConfig", "FrameData", "load_frames", "clip_audio",
           "clip_speaker", "stack_frames", "unstack_frames", "MaskedFramesTask", "KeywordTask", "eval_masks",
           "reconstruct", "reconstruction_errors",
           "trivial_errors", "pretrain_setup", "new_classifier", "EVAL_SEED", "METHODS", "budget_name",
           "logmel_stats", "encoder_features", "finetune", "classify_accuracy", "recognition_study", "spread",
           "frames_for", "build", "run", "CHAPTER"]


def frames_for(cfg: Config) -> FrameData:
    """The corpus ``cfg.data`` describes, as normalised frames."""
    return load_frames(cfg.data.n_speakers, cfg.data.corpus_seed, cfg.data.features, cfg.data.stack)


def build(cfg: Config) -> TrainSetup:
    """The frame reconstructor (seeded by ``cfg.train.seed``) and its masked-frame task, as ``run`` trains them."""
    return pretrain_setup(cfg, frames_for(cfg))


def run(cfg: Config, *, device: str | None = None, out_dir: str | Path | None = None, resume: bool = False,
        progress: bool = True, max_seconds: float | None = None, compile_backend: str | None = None,
        checkpoint_seconds: float | None = 60.0) -> dict[str, Any]:
    """Pre-train, measure reconstruction against trivial predictors, run the recognition study."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    data = frames_for(cfg)
    s = pretrain_setup(cfg, data)
    result = fit(s.model, s.task, s.train, device=dev, out_dir=out_dir, resume=resume, progress=progress,
                 max_seconds=max_seconds, compile_backend=compile_backend, checkpoint_seconds=checkpoint_seconds,
                 desc=f"masked_audio[{cfg.profile}]")
    test_mask = eval_masks(len(data.test_x), data.n_frames, cfg.masking)
    errors = reconstruction_errors(s.model, data.test_x, test_mask)
    study = recognition_study(cfg, data, s.model, device=dev)
    return run_summary(
        "masked_audio", cfg, dev, result, started, unit="clips/s",
        metrics={**{f"test_{k}": v for k, v in rounded(errors).items()}, **rounded(result.final),
                 "accuracy": rounded({m: {b: {"mean": v["mean"], "std": v["std"]} for b, v in per.items()}
                                      for m, per in study.items()})},
        baselines={f"test_{k}": v for k, v in rounded(trivial_errors(data.test_x, test_mask)).items()}
        | {"chance": round(1 / len(data.words), 4)},
        data={"source": "eSpeak NG spoken keywords (espeakng-loader), split by speaker",
              "n_speakers": cfg.data.n_speakers, "train_clips": len(data.train_x), "val_clips": len(data.val_x),
              "test_clips": len(data.test_x), "frames": data.n_frames, "bands": data.train_x.shape[-1],
              "label_budgets_per_word": list(cfg.study.label_budgets), "draws": cfg.study.draws})


CHAPTER = Chapter("masked_audio", "06_masked_audio.ipynb", Config, build, run)

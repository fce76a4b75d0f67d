"""Chapter 06: masked reconstruction on speech, then keyword recognition from few labels (``train masked_audio``).

``config`` (sizes, budgets, the study's budgets), ``data`` (the spoken-keyword corpus as
normalised log-mel frames, split by speaker, and the unlabelled phrase pool), ``task``
(masked-frame pre-training, the keyword
task, reconstruction errors and their trivial baselines), ``study`` (recognition on new
speakers at several label budgets against honest baselines). Notebook 06_masked_audio and
the command line use the same functions.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from ... import runtime
from ...profiles import override
from ...train import RunOptions, TrainSetup, fit
from ..base import Chapter
from ..summary import rounded, run_summary
from .config import Config, MaskingConfig, SpeechData, StudyConfig
from .data import (FrameData, PoolFrames, clip_audio, clip_speaker, load_frames, heldout_pool_frames,
                   load_pool_frames, pretraining_frames, stack_frames, unstack_frames)
from .study import (METHODS, PRETRAINED, budget_name, classify_accuracy, finetune, finetune_steps, layer_features,
                    logmel_stats, probe_best_layer, probe_draw, recognition_study, run_indices, spread)
from .task import (EVAL_SEED, KeywordTask, MaskedFramesTask, eval_masks, new_classifier, pretrain_setup,
                   reconstruct, reconstruction_errors, reconstruction_target, trivial_errors)

__all__ = ["Config", "SpeechData", "MaskingConfig", "StudyConfig", "FrameData", "PoolFrames", "load_frames",
           "load_pool_frames", "heldout_pool_frames", "pretraining_frames", "clip_audio", "clip_speaker",
           "stack_frames", "unstack_frames",
           "MaskedFramesTask", "KeywordTask", "eval_masks", "reconstruct", "reconstruction_target",
           "reconstruction_errors",
           "trivial_errors", "pretrain_setup", "new_classifier", "EVAL_SEED", "METHODS", "PRETRAINED", "budget_name",
           "logmel_stats", "layer_features", "probe_best_layer", "finetune_steps", "finetune", "classify_accuracy",
           "run_indices", "probe_draw", "recognition_study", "spread", "frames_for", "pool_for", "seed_config",
           "seed_folder", "build", "also_trains", "run", "CHAPTER"]


def frames_for(cfg: Config) -> FrameData:
    """The labelled corpus ``cfg.data`` describes, as normalised frames."""
    return load_frames(cfg.data.n_speakers, cfg.data.corpus_seed, cfg.data.features, cfg.data.stack)


def pool_for(cfg: Config) -> PoolFrames:
    """The unlabelled phrase pool ``cfg.data`` describes, normalised like the labelled corpus."""
    return load_pool_frames(frames_for(cfg), cfg.data)


def seed_config(cfg: Config, run: int) -> Config:
    """The settings of independent pre-training run ``run``: ``cfg`` with ``train.seed`` moved on by ``run``."""
    return override(cfg, {"train.seed": cfg.train.seed + run})


def seed_folder(folder: str | Path, run: int) -> Path:
    """Where run ``run`` keeps its checkpoint: ``folder`` itself for run 0, ``folder/seed{run}`` after it."""
    return Path(folder) if run == 0 else Path(folder) / f"seed{run}"


def build(cfg: Config) -> TrainSetup:
    """The frame reconstructor (seeded by ``cfg.train.seed``) and its masked-frame task on the labelled
    training clips plus the pool (``cfg.data.pool_multiple`` times the labelled clips), validated on the
    pool's held-out speakers, as ``run`` trains them."""
    data, pool = frames_for(cfg), pool_for(cfg)
    return pretrain_setup(cfg, pretraining_frames(data, pool, cfg.data.pool_multiple), heldout_pool_frames(data, pool))


def also_trains(cfg: Config) -> dict[str, TrainSetup]:
    """The pre-training runs after the first that :func:`run` checkpoints, by sub-folder (``seed1``, ...)."""
    return {seed_folder("", r).as_posix(): build(seed_config(cfg, r)) for r in range(1, cfg.study.pretrain_seeds)}


def run(cfg: Config, *, device: str | None = None, options: RunOptions = RunOptions()) -> dict[str, Any]:
    """Pre-train, measure reconstruction against trivial predictors, run the recognition study."""
    started, dev = time.perf_counter(), runtime.pick_device(device)
    data, pool = frames_for(cfg), pool_for(cfg)
    s = build(cfg)
    result = fit(s.model, s.task, s.train, device=dev,
                 run=replace(options, desc=options.desc or f"masked_audio[{cfg.profile}]"))
    models = [s.model]
    for r in range(1, cfg.study.pretrain_seeds):          # the other pre-trainings the study pairs with label draws
        more = build(seed_config(cfg, r))
        fit(more.model, more.task, more.train, device=dev,
            run=replace(options, out_dir=None if options.out_dir is None else seed_folder(options.out_dir, r),
                        desc=f"masked_audio[{cfg.profile}] seed {more.train.seed}"))
        models.append(more.model)
    test_mask = eval_masks(len(data.test_x), data.n_frames, cfg.masking)
    test_target = reconstruction_target(data.test_x, cfg.masking)
    errors = {f"test_{k}": v for k, v in reconstruction_errors(s.model, data.test_x, test_mask, test_target).items()}
    errors |= {f"heldout_{k}": v for k, v in reconstruction_errors(s.model, s.task.val_x, s.task.val_mask,
                                                                     s.task.val_target).items()}
    trivial = {f"test_{k}": v for k, v in trivial_errors(test_target, test_mask).items()}
    trivial |= {f"heldout_{k}": v for k, v in trivial_errors(s.task.val_target, s.task.val_mask).items()}
    study = recognition_study(cfg, data, [m.cpu() for m in models], device=dev)
    return run_summary(
        "masked_audio", cfg, dev, result, started, unit="clips/s",
        metrics={**rounded(errors), **rounded(result.final),
                 "accuracy": rounded({m: {b: {"mean": v["mean"], "std": v["std"], "runs": v["draws"]}
                                          for b, v in per.items()} for m, per in study.items()})},
        baselines=rounded(trivial) | {"chance": round(1 / len(data.words), 4)},
        data={"source": "eSpeak NG spoken keywords (espeakng-loader), split by speaker",
              "n_speakers": cfg.data.n_speakers, "train_clips": len(data.train_x), "val_clips": len(data.val_x),
              "test_clips": len(data.test_x), "frames": data.n_frames, "bands": data.train_x.shape[-1],
              "pool_speakers": len(pool.speakers), "pool_clips": len(pool.x), "pool_multiple": cfg.data.pool_multiple,
              "pretraining_clips": len(s.task.train_x), "label_budgets_per_word": list(cfg.study.label_budgets),
              "finetune_budgets_per_word": list(cfg.study.finetune_budgets), "draws": cfg.study.draws,
              "pretrain_seeds": cfg.study.pretrain_seeds})


CHAPTER = Chapter("masked_audio", "06_masked_audio.ipynb", Config, build, run, also_trains)

"""Chapter 06 (masked reconstruction on speech) settings: the ``class`` profile is ``Config()``.

``model`` is the frame encoder (:class:`course_lib.models.frames.FrameEncoderConfig`), ``data`` the
spoken-keyword corpus and its log-mel features, ``masking`` the pretext task, ``train`` the
pre-training. ``study`` holds the notebook's recognition budgets (fine-tuning, probes, label
draws, the mistake runs): no pre-trained weight depends on it, so it is not in the checkpoint's
fingerprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ...audio import FeatureConfig
from ...models.frames import FrameEncoderConfig
from ...config_checks import check_config
from ...train import TrainConfig

__all__ = ["SpeechData", "MaskingConfig", "StudyConfig", "Config"]


@dataclass(frozen=True)
class SpeechData:
    """The corpus (every speaker says every keyword once, split by speaker) and what a step reads."""

    n_speakers: int = 200
    corpus_seed: int = 0
    features: FeatureConfig = FeatureConfig()
    stack: int = 3                     # consecutive 10 ms frames per model input step (Mockingjay's downsampling)
    batch_size: int = 64
    pool_speakers: int = 1400          # unlabelled phrase pool: new speakers (none of the labelled corpus's) ...
    pool_clips_per_speaker: int = 20   # ... each reading this many one-second phrases of Shakespeare
    pool_seed: int = 1
    pool_multiple: float = 10.0        # pre-train on this many times the labelled training clips (them + the pool)


@dataclass(frozen=True)
class MaskingConfig:
    """The pretext task: hide spans of frames, predict them; the loss scores hidden frames only.

    ``target`` is what is predicted: ``"centred"`` (each frame minus its clip's mean over time, per
    feature: :func:`course_lib.objectives.masked_frames.centre_per_clip`) or ``"frames"`` (the frames
    as they are, Mockingjay's target)."""

    fraction: float = 0.375            # of the steps asked for: 3 spans of 4 of 32 steps (overlaps hide fewer)
    span: int = 4                      # consecutive steps per span (120 ms with 3 stacked 10 ms frames)
    loss: str = "l1"                   # "l1" or "mse"
    freq_width: int = 8                # at most this many adjacent mel bands hidden per clip too (TERA); 0: none
    objective: str = "masked"          # "masked" | "all_frames" (mask, score all) | "autoencoder" (no mask)
    target: str = "centred"            # "centred": each frame minus its clip's mean per feature | "frames": as is

    def __post_init__(self) -> None:
        if self.loss not in ("l1", "mse"):
            raise ValueError(f"masking.loss must be 'l1' or 'mse', got {self.loss!r}")
        if self.objective not in ("masked", "all_frames", "autoencoder"):
            raise ValueError(f"masking.objective must be 'masked', 'all_frames' or 'autoencoder', "
                             f"got {self.objective!r}")
        if self.target not in ("centred", "frames"):
            raise ValueError(f"masking.target must be 'centred' or 'frames', got {self.target!r}")
        if self.freq_width < 0:
            raise ValueError(f"masking.freq_width must be >= 0, got {self.freq_width}")
        if not 0.0 < self.fraction < 1.0 or self.span < 1:
            raise ValueError(f"masking.fraction must be in (0, 1) and span >= 1, got {self.fraction}, {self.span}")


@dataclass(frozen=True)
class StudyConfig:
    """The notebook's recognition study and its short comparison runs (not the pre-trained checkpoint)."""

    label_budgets: tuple[int, ...] = (1, 5, 20, 0)     # labelled clips per word (probes); 0 means every training clip
    finetune_budgets: tuple[int, ...] = (5,)           # the budgets where (a) and (b) are fine-tuned too
    draws: int = 3                                     # label draws per budget and pre-trained model
    pretrain_seeds: int = 2                            # pre-trainings that differ only in train.seed
    ft_epochs: int = 40                                # fine-tuning: passes over the labelled clips ...
    ft_min_steps: int = 100                            # ... within these bounds (steps)
    ft_max_steps: int = 300
    ft_evals: int = 8                                  # validation-speaker evaluations (early stopping)
    ft_batch_size: int = 32
    ft_lr: float = 1e-3
    ft_encoder_lr_ratio: float = 0.3                   # a pre-trained encoder's rate, relative to the head's
    short_steps: int = 250                             # pre-training steps of each short comparison run
    pool_multiples: tuple[float, ...] = (1.0, 3.0, 10.0)   # unlabelled data, in labelled training sets


@dataclass(frozen=True)
class Config:
    """Masked-frame pre-training on spoken keywords, and its study; profiles differ in sizes and steps."""

    profile: str = "class"
    model: FrameEncoderConfig = FrameEncoderConfig(n_features=120, max_frames=32)   # 3 x 40 bands, 98 // 3 steps
    data: SpeechData = SpeechData()
    masking: MaskingConfig = MaskingConfig()
    train: TrainConfig = TrainConfig(steps=1500, lr=2e-3, weight_decay=0.01, warmup_steps=100, eval_every=250)
    study: StudyConfig = StudyConfig()

    def __post_init__(self) -> None:
        check_config(self)                 # every field in its range, named by its dotted path

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"data.n_speakers": 30, "model.d_model": 64, "model.n_layers": 2, "data.batch_size": 32,
                  "train.steps": 150, "train.eval_every": 50, "train.warmup_steps": 20, "study.ft_max_steps": 120,
                  "study.ft_min_steps": 60, "study.draws": 2, "study.short_steps": 60, "data.pool_speakers": 60,
                  "data.pool_clips_per_speaker": 10, "data.pool_multiple": 2.0, "study.pool_multiples": (1.0, 2.0)},
        "class": {},
        "full": {"data.n_speakers": 200, "model.d_model": 192, "model.n_layers": 4, "model.n_heads": 6,
                 "data.batch_size": 128, "train.steps": 3000, "train.eval_every": 1000, "study.ft_max_steps": 600,
                 "study.draws": 3, "study.short_steps": 800, "study.finetune_budgets": (1, 5, 20, 0)},
    }

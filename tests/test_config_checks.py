"""Configs refuse nonsense when they are made: every field of every chapter, by its dotted name."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from course_lib.chapters.registry import CHAPTERS
from course_lib.config_checks import CHOICES, check_config
from course_lib.profiles import override, parse_setting
from course_lib.train import TrainConfig


def _leaves(config, prefix=""):
    for field in dataclasses.fields(config):
        value, path = getattr(config, field.name), f"{prefix}{field.name}"
        if dataclasses.is_dataclass(value):
            yield from _leaves(value, f"{path}.")
        else:
            yield path, field, value


def _bad_value(name, field, value):
    """A value no run should accept for this field, or None where the field has no range (a flag, a file name)."""
    if isinstance(value, bool) or name == "text_file":
        return None
    if isinstance(value, str):
        return "nonsense" if name in CHOICES else None
    if isinstance(value, tuple):
        return tuple(math.nan for _ in value)
    if value is None:                                   # optional numbers: seconds, grad_clip
        return -1.0
    if isinstance(value, int) and "float" not in str(field.type):
        return -1
    return math.nan


CASES = [(chapter, path, field, value) for chapter, c in CHAPTERS.items()
         for path, field, value in _leaves(c.config("smoke"))]


@pytest.mark.parametrize("chapter, path, field, value", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_every_field_refuses_a_bad_value_by_its_dotted_name(chapter, path, field, value):
    bad = _bad_value(field.name, field, value)
    if bad is None:
        pytest.skip("no range: a flag or a file name")
    with pytest.raises(ValueError, match="^" + re.escape(path) + r"\b"):
        CHAPTERS[chapter].config("smoke", {path: bad})


@pytest.mark.parametrize("setting, message", [
    ("train.min_lr_ratio=-2", r"train\.min_lr_ratio must be in \[0, 1\], got -2"),
    ("train.seconds=inf", r"train\.seconds must be a finite number"),
    ("model.dropout=1.5", r"model\.dropout must be in \[0, 1\)"),
    ("train.eval_every=-1", r"train\.eval_every must be >= 0"),
    ("data.batch_size=0", r"data\.batch_size must be >= 1"),
    ("train.lr=inf", r"train\.lr must be a finite number"),
    ("train.min_lr_ratio=nan", r"train\.min_lr_ratio must be a finite number"),
    ("model.hidden_dim=0", r"model\.hidden_dim must be >= 1"),
    ("model.cell=xyz", r"model\.cell must be one of rnn, rnn_relu, lstm, gru"),
])
def test_the_settings_the_fault_round_found_are_refused_before_any_work(setting, message):
    """Each of these trained 'normally', crashed mid-run or failed inside torch before (issue 30, D3)."""
    chapter = CHAPTERS["rnn_lm"]
    key, value = parse_setting(chapter.config("smoke"), setting)
    with pytest.raises(ValueError, match=message):
        chapter.config("smoke", {key: value})


def test_the_command_line_refuses_with_one_line(capsys):
    from course_lib.__main__ import main
    assert main(["train", "rnn_lm", "--profile", "smoke", "--set", "train.min_lr_ratio=-2", "--quiet"]) == 2
    assert "train.min_lr_ratio must be in [0, 1]" in capsys.readouterr().err


def test_the_python_api_refuses_too():
    with pytest.raises(ValueError, match=r"min_lr_ratio must be in \[0, 1\]"):
        TrainConfig(steps=10, min_lr_ratio=1.5)
    with pytest.raises(ValueError, match=r"train\.lr must be > 0"):
        override(CHAPTERS["gan"].config("smoke"), {"train.lr": 0.0})
    cfg = CHAPTERS["gan"].config("smoke")
    with pytest.raises(ValueError, match=r"gan\.r1_gamma must be >= 0"):
        dataclasses.replace(cfg, gan=dataclasses.replace(cfg.gan, r1_gamma=-1.0))


def test_every_profile_of_every_chapter_is_valid():
    for chapter in CHAPTERS.values():
        for profile in ("smoke", "class", "full"):
            check_config(chapter.config(profile))

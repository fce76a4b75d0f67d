"""``--set KEY=VALUE``: one config field changed from the command line, typed like the field."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from course_lib.__main__ import main
from course_lib.chapters.registry import get_chapter
from course_lib.profiles import parse_setting

ROOT = Path(__file__).resolve().parents[1]


def test_settings_are_typed_like_their_field():
    cfg = get_chapter("rnn_lm").config("class")
    assert parse_setting(cfg, "train.lr=3e-3") == ("train.lr", 0.003)
    assert parse_setting(cfg, "model.hidden_dim=384") == ("model.hidden_dim", 384)
    assert parse_setting(cfg, "model.cell = gru") == ("model.cell", "gru")
    key, value = parse_setting(cfg, "train.seconds=12.5")              # None-valued field: a number
    assert (key, value) == ("train.seconds", 12.5)


@pytest.mark.parametrize("setting, expected", [
    ("train.lr", "KEY=VALUE"),
    ("=3", "KEY=VALUE"),
    ("train.learning_rate=1e-3", "no field 'learning_rate'"),
    ("model.hidden_dim=wide", "expects a int"),
    ("model=3", "a block, not a value"),
    ("nonsense.lr=1", "no field 'nonsense'"),
])
def test_bad_settings_say_what_was_expected(setting, expected):
    with pytest.raises(ValueError, match=expected):
        parse_setting(get_chapter("rnn_lm").config("class"), setting)


def test_cli_set_changes_the_recorded_config(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "rnn_lm", "--profile", "smoke", "--steps", "3", "--set", "train.lr=0.002",
                 "--set", "model.hidden_dim=32", "--out", str(out), "--quiet"]) == 0
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["train"]["lr"] == 0.002 and config["model"]["hidden_dim"] == 32
    assert main(["train", "rnn_lm", "--profile", "smoke", "--set", "model.width=3", "--out", str(tmp_path / "x")]) == 2
    assert "no field 'width'" in capsys.readouterr().err


def _benchmarks_run():
    spec = importlib.util.spec_from_file_location("benchmarks_run", ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("benchmarks_run", module)
    spec.loader.exec_module(module)
    return module


def test_benchmark_rows_name_their_budget_and_changes():
    run = _benchmarks_run()
    assert run._budget({"seconds_budget": 560.0}) == "planned 560 s"
    assert run._budget({"seconds_cap": 30}) == "steps, cut at 30 s"
    assert run._budget({}) == "steps"
    assert run._changes({"settings": ["train.lr=3e-3"]}) == "`train.lr=3e-3`"
    assert run._changes({}) == "-"


def test_time_to_target_reads_history_then_final_metrics():
    run = _benchmarks_run()
    key, op, target = run.TARGETS["gan"]
    history = {"eval": [{key: target + 5, "time_s": 10.0}, {key: target - 1, "time_s": 20.0}]}
    assert run.time_to_target("gan", {"train_wall_s": 30.0}, history) == 20.0
    assert run.time_to_target("gan", {"train_wall_s": 30.0, "metrics": {key: target + 1}}, {}) is None
    nested = {"train_wall_s": 7.0, "metrics": {"probe_acc": {"simclr": {"all": 0.99}}}}
    assert run.time_to_target("contrastive", nested, {}) == 7.0

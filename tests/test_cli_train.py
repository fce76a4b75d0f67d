"""``python -m course_lib train`` under faults: killed and interrupted runs, bad arguments, unusable folders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from course_lib.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


def _start(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    return subprocess.Popen([sys.executable, "-m", "course_lib", "train", "rnn_lm", "--profile", "smoke",
                             "--out", str(out), "--quiet", *extra], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _val(out: Path) -> float:
    return json.loads((out / "metrics.json").read_text())["metrics"]["val_nats_per_char"]


def _wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not (out / "checkpoint.pt").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no periodic checkpoint appeared"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, sig):
    straight = tmp_path / "straight"
    assert _start(straight, "--checkpoint-seconds", "1e6").wait(timeout=300) == 0
    out = tmp_path / "killed"
    proc = _start(out, "--checkpoint-seconds", "0.5")
    _wait_for_checkpoint(proc, out)
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    if sig == signal.SIGTERM:                       # finishes its step, checkpoints, says how to go on
        assert code == 130 and "--resume" in proc.stderr.read()
    else:
        assert code == -signal.SIGKILL
    assert not (out / "metrics.json").exists()
    resumed = _start(out, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    assert "resuming from" in resumed.stderr.read()
    assert _val(out) == _val(straight)


@pytest.mark.parametrize("args, message", [
    (["--seconds", "0"], "--seconds expects a positive number of seconds, got 0.0"),
    (["--seconds", "-3"], "--seconds expects a positive number"),
    (["--seconds", "nan"], "--seconds expects a positive number"),
    (["--max-seconds", "0"], "--max-seconds expects a positive number of seconds, got 0.0"),
    (["--checkpoint-seconds", "0"], "--checkpoint-seconds expects a positive number"),
    (["--seed", str(2**64)], "--seed expects an integer in [0, 2**32 - 1]"),
    (["--steps", "0"], "steps must be >= 1"),
])
def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["train", "rnn_lm", "--profile", "smoke", "--out", str(out), "--quiet", *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_text_must_be_a_file_long_enough_for_the_configuration(tmp_path, capsys):
    assert main(["train", "rnn_lm", "--text", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert f"{tmp_path} is a folder" in capsys.readouterr().err
    line = "to be or not to be, that is the question.\n"                           # 42 characters
    short = tmp_path / "short.txt"
    short.write_text(line * 60, encoding="utf-8")                                  # 2,520: enough for smoke
    assert main(["train", "rnn_lm", "--profile", "class", "--text", str(short), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2                                                   # class: 64 streams x 129
    err = capsys.readouterr().err
    assert "need at least 4,128 and 32; use a file of at least 4,587 characters" in err
    tiny = tmp_path / "tiny.txt"
    tiny.write_text(line * 24, encoding="utf-8")                                   # validation < one window
    assert main(["train", "transformer_lm", "--profile", "class", "--text", str(tiny), "--out",
                 str(tmp_path / "t"), "--quiet"]) == 2
    assert "need at least 130 and 129; use a file of at least 1,290 characters" in capsys.readouterr().err
    assert main(["train", "gan", "--text", str(short), "--out", str(tmp_path / "g")]) == 2
    assert "--text is only for text chapters" in capsys.readouterr().err


def test_an_unusable_out_folder_is_found_before_training(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    assert main(["train", "attention", "--profile", "smoke", "--out", str(not_a_folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(not_a_folder) in err and len(err.strip().splitlines()) == 1
    if os.geteuid() != 0:                        # root may write anywhere: a read-only folder stops only others
        locked = tmp_path / "ro"
        locked.mkdir(mode=0o500)
        assert main(["train", "attention", "--profile", "smoke", "--out", str(locked), "--quiet"]) == 2


def test_a_second_run_into_the_same_folder_is_refused(tmp_path, capsys):
    import fcntl
    out = tmp_path / "busy"
    out.mkdir()
    with open(out / ".lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert main(["train", "attention", "--profile", "smoke", "--out", str(out), "--quiet"]) == 2
    assert "another training run is writing to" in capsys.readouterr().err
    assert not (out / "metrics.json").exists()


def test_resume_refuses_an_edited_text_file(tmp_path, capsys):
    """The checkpoint records a digest of the text, not just its path: an edited file is another run."""
    corpus = tmp_path / "mine.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog.\n" * 120, encoding="utf-8")
    out = tmp_path / "run"
    common = ["train", "rnn_lm", "--profile", "smoke", "--text", str(corpus), "--steps", "4", "--out", str(out),
              "--quiet"]
    assert main([*common, "--max-seconds", "0.001"]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] < 4
    corpus.write_text("the lazy dog jumps over the quick brown fox.\n" * 120, encoding="utf-8")   # same letters
    capsys.readouterr()
    assert main([*common, "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def test_peak_memory_without_the_posix_resource_module(monkeypatch):
    """On Windows there is no `resource` module: the run must still write its metrics (rss unknown)."""
    import sys

    from course_lib.__main__ import _peak_memory_mb
    assert isinstance(_peak_memory_mb("cpu")["rss"], float)
    monkeypatch.setitem(sys.modules, "resource", None)                      # import resource -> ImportError
    assert _peak_memory_mb("cpu") == {"rss": None}


def _metrics(out: Path) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_a_finished_run_is_never_silently_replaced(tmp_path, capsys):
    """Issue 30, D1: a second run into a folder that holds a run refuses, saying what to do; the first stays."""
    out = tmp_path / "a"
    assert main(["train", "attention", "--profile", "smoke", "--steps", "6", "--out", str(out), "--quiet"]) == 0
    before = (out / "checkpoint.pt").read_bytes()
    capsys.readouterr()
    assert main(["train", "attention", "--profile", "smoke", "--steps", "3", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{out} already holds a run (attention, smoke profile, 6 steps)" in err
    assert "--resume" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "checkpoint.pt").read_bytes() == before and _metrics(out)["steps"] == 6
    assert main(["train", "attention", "--profile", "smoke", "--steps", "3", "--out", str(out), "--quiet",
                 "--overwrite"]) == 0
    assert _metrics(out)["steps"] == 3


def test_default_folders_are_new_per_run_with_a_latest_pointer(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["train", "attention", "--profile", "smoke", "--steps", "4", "--quiet"]
    assert main(args) == 0
    assert main([*args, "--set", "train.lr=1e-3"]) == 0          # another experiment: its own folder
    parent = tmp_path / "runs" / "attention-smoke"
    runs = sorted(p for p in parent.iterdir() if p.is_dir() and not p.is_symlink())
    assert len(runs) == 2 and runs[0].name[-6:] != runs[1].name[-6:]      # settings tags differ
    assert {_metrics(r)["config"]["train"]["lr"] for r in runs} == {1e-3, 3e-3}
    assert (parent / "latest").resolve() == max(runs, key=lambda p: p.stat().st_mtime).resolve()
    assert main(args) == 0                                        # same settings again: a third folder
    assert len([p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()]) == 3


def test_resume_without_out_continues_the_newest_run_with_the_same_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["train", "rnn_lm", "--profile", "smoke", "--steps", "6", "--quiet"]
    assert main(args) == 0
    parent = tmp_path / "runs" / "rnn_lm-smoke"
    (first,) = [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()]
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0                         # finished: nothing new is trained or made
    assert [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()] == [first]


def test_an_empty_text_file_is_named(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    assert main(["train", "rnn_lm", "--profile", "smoke", "--text", str(empty), "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    assert f"{empty} is empty" in capsys.readouterr().err


def test_a_time_budget_is_not_cut_short_by_the_profiles_step_budget(tmp_path):
    """`--seconds S` ends when S seconds are spent: the smoke attention run's 200 steps would end it sooner.

    (On a busy machine 200 steps may take longer than 4 s, so the test reads the cap the run was given and
    that it ended on its seconds, not a step count.)"""
    from course_lib.__main__ import TIME_BUDGET_STEP_CAP
    out = tmp_path / "timed"
    assert main(["train", "attention", "--profile", "smoke", "--seconds", "4", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["train"]["steps"] == TIME_BUDGET_STEP_CAP, metrics["config"]["train"]   # not 200
    assert metrics["train_wall_s"] >= 4.0 and metrics["steps"] < TIME_BUDGET_STEP_CAP, metrics
    assert metrics["seconds_budget"] == 4.0
    capped = tmp_path / "capped"                                                     # --steps still caps it
    assert main(["train", "attention", "--profile", "smoke", "--seconds", "30", "--steps", "7", "--out",
                 str(capped), "--quiet"]) == 0
    assert json.loads((capped / "metrics.json").read_text())["steps"] == 7

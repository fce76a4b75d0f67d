"""Offline classroom bundle: caches built, checkpoints trained once, then verified by provenance."""

from __future__ import annotations

import json
import time

import pytest
import torch

from course_lib import checkpoints
from course_lib.tooling import bundle
from course_lib.__main__ import main

pytestmark = pytest.mark.slow
CHAPTERS = ["attention", "rnn_lm"]      # the two cheapest CLI chapters in smoke
STEPS = 10                              # a rehearsal budget keeps this file fast; provenance records it


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """One smoke bundle of two chapters in a fresh data folder: builds the caches, trains both briefly."""
    folder = tmp_path_factory.mktemp("classroom")
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_DATA_DIR", str(folder))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)       # tiny models: one thread avoids waiting on busy shared cores
    t0 = time.perf_counter()
    manifest = bundle.prepare_classroom("smoke", only=",".join(CHAPTERS), progress=False, steps=STEPS)
    yield folder, manifest, time.perf_counter() - t0
    torch.set_num_threads(threads)
    mp.undo()


@pytest.fixture
def data_dir(classroom, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(classroom[0]))
    return classroom[0]


def test_first_run_builds_caches_and_trains(classroom):
    folder, manifest, _ = classroom
    assert manifest["ok"] and manifest["profile"] == "smoke"
    assert json.loads((folder / "bundle-smoke.json").read_text()) == json.loads(json.dumps(manifest))
    names = {f["file"].split("-")[0] for f in manifest["caches"]["files"]}
    assert "plays.json" in names                       # (the MNIST digits ship with the course: no cache)
    for chapter in CHAPTERS:
        entry = manifest["chapters"][chapter]
        assert entry["status"] == "trained" and entry["before"] == "missing"
        assert (folder / entry["folder"] / "checkpoint.pt").exists()
        assert (folder / entry["folder"] / "metrics.json").exists()
        assert all(c["step"] > 0 and len(c["sha256"]) == 64 for c in entry["checkpoints"])
    assert manifest["steps_override"] == STEPS
    assert all(c["step"] == STEPS for ch in CHAPTERS for c in manifest["chapters"][ch]["checkpoints"])
    assert len(manifest["chapters"]["attention"]["checkpoints"]) == 2     # the model and its no-attention baseline


def test_second_run_verifies_without_training(data_dir, classroom):
    before = {c: bundle.checkpoint_dir(c, "smoke").joinpath("checkpoint.pt").stat().st_mtime_ns for c in CHAPTERS}
    t0 = time.perf_counter()
    manifest = bundle.prepare_classroom("smoke", only=CHAPTERS, progress=False, steps=STEPS, data=False)
    assert manifest["ok"]
    assert {c: manifest["chapters"][c]["status"] for c in CHAPTERS} == {c: "verified" for c in CHAPTERS}
    assert {c: bundle.checkpoint_dir(c, "smoke").joinpath("checkpoint.pt").stat().st_mtime_ns
            for c in CHAPTERS} == before
    assert time.perf_counter() - t0 < classroom[2]


def test_stale_checkpoint_is_detected_then_retrained(data_dir):
    path = bundle.checkpoint_dir("rnn_lm", "smoke") / "checkpoint.pt"
    state = checkpoints.load_checkpoint(path)
    state["provenance"]["config_hash"] = "0" * 16       # as if made with other settings
    state.pop("format")
    checkpoints.save_checkpoint(path, state)

    report = bundle.prepare_classroom("smoke", only="rnn_lm", verify_only=True, progress=False, steps=STEPS,
                                      data=False)
    assert not report["ok"] and report["chapters"]["rnn_lm"]["status"] == "not ready (stale)"
    assert "other settings" in report["chapters"]["rnn_lm"]["reason"]

    report = bundle.prepare_classroom("smoke", only="rnn_lm", progress=False, steps=STEPS, data=False)
    entry = report["chapters"]["rnn_lm"]
    assert report["ok"] and entry["before"] == "stale" and entry["status"] == "trained"
    assert (data_dir / entry["moved_aside"] / "checkpoint.pt").exists()


def test_verify_only_reports_missing_chapters(data_dir):
    report = bundle.prepare_classroom("smoke", only="transformer_lm", verify_only=True, progress=False, data=False)
    assert not report["ok"] and report["chapters"]["transformer_lm"]["status"] == "missing"
    assert not bundle.checkpoint_dir("transformer_lm", "smoke").exists()


def test_cli_and_bad_input(data_dir, capsys):
    assert main(["bundle", "--profile", "smoke", "--only", "rnn_lm", "--verify", "--quiet",
                 "--steps", str(STEPS)]) == 0
    assert "ready" in capsys.readouterr().out
    assert main(["bundle", "--profile", "smoke", "--only", "nonsense"]) == 2
    assert "unknown chapter" in capsys.readouterr().err
    assert main(["bundle", "--profile", "smoke", "--only", "rnn_lm", "--verify", "--quiet"]) == 1
    assert "not ready (stale)" in capsys.readouterr().out       # the full smoke budget is another config
    with pytest.raises(ValueError, match="unknown profile"):
        bundle.prepare_classroom("huge", only="rnn_lm")
    with pytest.raises(ValueError, match="positive"):
        bundle.prepare_classroom("smoke", only="rnn_lm", steps=0, data=False)


def test_unfinished_or_foreign_checkpoints(data_dir, tmp_path):
    import shutil

    from course_lib.chapters.registry import get_chapter
    rnn_lm = get_chapter("rnn_lm")
    cfg = rnn_lm.config("smoke", {"train.steps": STEPS})
    copy = tmp_path / "rnn"
    shutil.copytree(bundle.checkpoint_dir("rnn_lm", "smoke"), copy)
    assert bundle.verify_checkpoints(copy, rnn_lm, cfg)[0] == "ok"
    assert bundle.verify_checkpoints(copy, rnn_lm, rnn_lm.config("class"))[0] == "stale"
    state = checkpoints.load_checkpoint(copy / "checkpoint.pt")
    state["step"], state["finished"] = 5, False          # an interrupted run
    state.pop("format")
    checkpoints.save_checkpoint(copy / "checkpoint.pt", state)
    status, reason, _ = bundle.verify_checkpoints(copy, rnn_lm, cfg)
    assert status == "incomplete" and f"step 5 of {STEPS}" in reason
    assert not reason.startswith(".")                    # it used to read ".: it stopped at step 5 ..."
    (copy / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert bundle.verify_checkpoints(copy, rnn_lm, cfg)[0] == "stale"
    missing, reason, _ = bundle.verify_checkpoints(tmp_path / "nothing", rnn_lm, cfg)
    assert missing == "missing" and reason == "no checkpoint in nothing/"


def test_verify_writes_no_cache_in_a_fresh_folder(tmp_path, monkeypatch):
    """--verify only checks: in an empty data folder it reports 'missing' and builds no cache (only its manifest)."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    report = bundle.prepare_classroom("smoke", only="rnn_lm", verify_only=True, progress=False)
    assert not report["ok"] and report["chapters"]["rnn_lm"]["status"] == "missing"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["bundle-smoke.json"]


def test_an_unwritable_data_folder_is_named(tmp_path, monkeypatch):
    from course_lib.data.cache import data_dir
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("COURSE_DATA_DIR", str(blocker / "data"))
    with pytest.raises(OSError, match="set COURSE_DATA_DIR to a writable folder"):
        data_dir()

"""Checkpoints: round trip, atomic writes under a crash, safe loading, provenance, the one status policy."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from course_lib import checkpoints
from course_lib.checkpoints import (config_hash, fingerprint, inspect, load_checkpoint, make_provenance,
                                    save_checkpoint)


@dataclass(frozen=True)
class Cfg:
    width: int = 8
    lr: float = 1e-3


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(6.0).view(2, 3)}, "step": 7, "note": "hi", "nested": [1, (2, 3)]}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"])
    assert loaded["step"] == 7 and loaded["note"] == "hi" and loaded["nested"] == [1, (2, 3)]


def test_crash_during_save_keeps_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})
    from course_lib.data import cache

    def crashing_fsync(fd):
        os.ftruncate(fd, 10)               # half-written file...
        raise OSError("disk full")         # ...and the process dies

    monkeypatch.setattr(cache.os, "fsync", crashing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert loaded["step"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "temporary file left behind"


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_loading_never_unpickles_code(tmp_path):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        torch.save({"format": checkpoints.FORMAT, "payload": Evil()}, f, pickle_module=pickle)
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(path)


def test_foreign_file_and_missing_file(tmp_path):
    torch.save({"w": torch.ones(1)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="expected format"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "nope.pt")


def test_provenance_records_the_fingerprint_hash():
    prov = make_provenance(Cfg(), {"acc": 0.9})
    assert prov["config_hash"] == config_hash(Cfg())
    assert prov["metrics"] == {"acc": 0.9} and isinstance(prov["torch"], str)
    assert config_hash(Cfg()) != config_hash(Cfg(lr=2e-3))


class _Task:
    def __init__(self, rate=0.15):
        self.rate = rate

    def signature(self):
        return {"rate": self.rate}


def test_fingerprint_covers_training_task_and_architecture_but_not_bookkeeping():
    from course_lib.train import TrainConfig
    base = fingerprint(nn.Linear(3, 2), _Task(), TrainConfig(steps=10))
    assert config_hash(base) == config_hash(fingerprint(nn.Linear(3, 2), _Task(), TrainConfig(steps=10)))
    for other in (fingerprint(nn.Linear(3, 4), _Task(), TrainConfig(steps=10)),       # architecture
                  fingerprint(nn.Linear(3, 2), _Task(0.3), TrainConfig(steps=10)),    # the task's data
                  fingerprint(nn.Linear(3, 2), _Task(), TrainConfig(steps=10, lr=0.5))):  # optimisation
        assert config_hash(other) != config_hash(base)
    same = fingerprint(nn.Linear(3, 2), _Task(), TrainConfig(steps=10, eval_every=2, checkpoint_every=5))
    assert config_hash(same) == config_hash(base)


def _save(folder, identity, step):
    save_checkpoint(folder / "checkpoint.pt", {"step": step, "provenance": make_provenance(identity)})


@pytest.mark.parametrize("saved_step, kind", [(10, "finished"), (4, "interrupted")])
def test_inspect_finished_and_interrupted(tmp_path, saved_step, kind):
    _save(tmp_path, Cfg(), saved_step)
    status = inspect(tmp_path, Cfg(), steps=10)
    assert status.kind == kind and status.step == saved_step and status.resumable
    assert status.state["step"] == saved_step


def test_inspect_missing_unreadable_stale(tmp_path):
    assert inspect(tmp_path, Cfg(), 10).kind == "missing"
    _save(tmp_path, Cfg(width=16), 10)
    stale = inspect(tmp_path, Cfg(), 10)
    assert stale.kind == "stale" and not stale.resumable and "other settings" in stale.reason
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    bad = inspect(tmp_path, Cfg(), 10)
    assert bad.kind == "unreadable" and not bad.resumable


def test_tensor_digest_sees_values_dtype_and_shape():
    from course_lib.checkpoints import tensor_digest
    ids = torch.arange(12)
    assert tensor_digest(ids) == tensor_digest(ids.clone())
    assert len({tensor_digest(ids), tensor_digest(ids.flip(0)), tensor_digest(ids.int()),
                tensor_digest(ids.view(3, 4))}) == 4

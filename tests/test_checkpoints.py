"""Checkpoints: round trip, atomic writes under a crash, safe loading, provenance."""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass

import pytest
import torch

from course_lib import checkpoints
from course_lib.checkpoints import config_hash, load_checkpoint, make_provenance, matches, save_checkpoint


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
    real_save = torch.save

    def crashing_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(10)                     # half-written file...
        raise OSError("disk full")         # ...and the process dies

    monkeypatch.setattr(checkpoints.torch, "save", crashing_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    monkeypatch.undo()
    loaded = load_checkpoint(path)
    assert loaded["step"] == 1 and torch.equal(loaded["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"], "temporary file left behind"


def test_non_atomic_write_would_be_caught(tmp_path):
    """The same crash written straight to the target destroys it: what the test above guards."""
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1})
    with open(path, "wb") as f:
        f.write(b"\x80\x02partial")
    with pytest.raises(ValueError, match="not a readable course_lib checkpoint"):
        load_checkpoint(path)


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


def test_provenance_and_matching(tmp_path):
    prov = make_provenance(Cfg(), "smoke", {"acc": 0.9})
    assert prov["config_hash"] == config_hash(Cfg()) and prov["profile"] == "smoke"
    assert prov["metrics"] == {"acc": 0.9} and isinstance(prov["torch"], str)
    save_checkpoint(tmp_path / "c.pt", {"provenance": prov})
    state = load_checkpoint(tmp_path / "c.pt")
    assert matches(state, Cfg())[0]
    ok, reason = matches(state, Cfg(width=16))
    assert not ok and "differs" in reason
    assert not matches({}, Cfg())[0]
    assert config_hash(Cfg()) != config_hash(Cfg(lr=2e-3))

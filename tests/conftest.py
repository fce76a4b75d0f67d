"""Shared fixtures (an isolated data folder, one thread for tiny models); ``helpers/`` on the import path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).with_name("helpers")))   # scripts and tasks the tests share or launch

os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Caches go to a per-session temp folder unless a test sets its own."""
    if "COURSE_DATA_DIR" not in os.environ:
        monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path_factory.getbasetemp() / "course_data"))


@pytest.fixture
def one_thread():
    """Tiny models run fastest (and steadiest on a shared 2-core box) on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _unit_tests_may_load_checkpoints(monkeypatch):
    """The test command sets COURSE_ALWAYS_TRAIN=1 so that the notebooks train; the unit tests check
    loading itself, so they run without it (a test that needs it sets it)."""
    monkeypatch.delenv("COURSE_ALWAYS_TRAIN", raising=False)
    monkeypatch.delenv("COURSE_TRAINED_SINCE", raising=False)

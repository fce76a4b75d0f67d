"""Shared fixtures: small deterministic tasks for the training-loop tests."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from regression_task import RegressionTask

os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture
def regression_task():
    return RegressionTask()


@pytest.fixture
def tiny_mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))


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

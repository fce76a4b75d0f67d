"""Profiles and runtime: profile resolution, config sizing, device choice, seeding, report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import pytest
import torch

from course_lib.profiles import PROFILES, for_profile, override, resolve_profile
from course_lib.runtime import autocast, environment_report, pick_device, seed_everything


@dataclass(frozen=True)
class Model:
    width: int = 8
    depth: int = 2


@dataclass(frozen=True)
class Cfg:
    profile: str = "class"
    model: Model = Model()
    steps: int = 100

    PROFILES: ClassVar[dict] = {"smoke": {"steps": 5, "model.depth": 1}, "class": {},
                                "full": {"steps": 1000, "model.width": 64}}


def test_resolution_order(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert resolve_profile() == "class"
    monkeypatch.setenv("COURSE_PROFILE", "smoke")
    assert resolve_profile() == "smoke"
    assert resolve_profile("full") == "full"       # argument wins
    assert PROFILES == ("smoke", "class", "full")


def test_unknown_profile_lists_valid_ones(monkeypatch):
    with pytest.raises(ValueError, match="smoke, class, full"):
        resolve_profile("huge")
    monkeypatch.setenv("COURSE_PROFILE", "tiny")
    with pytest.raises(ValueError, match=r"COURSE_PROFILE"):
        resolve_profile()


def test_for_profile_sizes_and_nested_overrides():
    assert for_profile(Cfg, "class") == Cfg()
    assert for_profile(Cfg, "smoke") == Cfg(profile="smoke", model=Model(depth=1), steps=5)
    assert for_profile(Cfg, "full").model == Model(width=64)
    tuned = for_profile(Cfg, "smoke", {"steps": 9, "model.width": None, "model.depth": 4})
    assert tuned.steps == 9 and tuned.model == Model(width=8, depth=4)
    with pytest.raises(TypeError, match="no field 'depth'"):
        for_profile(Cfg, "smoke", {"depth": 3})
    with pytest.raises(TypeError, match="Model has no field 'heads'"):
        override(Cfg(), {"model.heads": 3})


def test_every_chapter_config_default_is_the_class_profile():
    from course_lib.chapters.registry import CHAPTERS
    for chapter in CHAPTERS.values():
        assert for_profile(chapter.Config, "class") == chapter.Config(), chapter.name
        assert chapter.Config.PROFILES["class"] == {}, chapter.name
        for profile in ("smoke", "full"):
            assert for_profile(chapter.Config, profile).profile == profile


def test_device_choice(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    assert pick_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="expected 'auto'"):
        pick_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            pick_device("cuda")


def test_auto_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("course_lib.runtime._mps_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr("course_lib.runtime._mps_available", lambda: False)
    assert pick_device("auto").type == "cpu"


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_autocast_is_bf16_or_fp16_on_cuda_and_off_on_cpu(monkeypatch):
    monkeypatch.delenv("COURSE_PRECISION", raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))   # an H100/H200
    ctx = autocast("cuda")
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))   # a T4
    assert autocast("cuda").fast_dtype == torch.float16
    assert not isinstance(autocast("cpu"), torch.autocast)


def test_seeding_reproduces_numbers():
    seed_everything(3)
    a = (torch.randn(4), __import__("numpy").random.rand(2), __import__("random").random())
    seed_everything(3)
    b = (torch.randn(4), __import__("numpy").random.rand(2), __import__("random").random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]
    with pytest.raises(ValueError):
        seed_everything(-1)


def test_deterministic_mode_toggles():
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled()


def test_environment_report_mentions_essentials():
    text = environment_report("smoke", seed=7, device="cpu")
    for needle in ("profile      : smoke", "device       : cpu", "torch", "seed         : 7", "float32"):
        assert needle in text


def test_environment_report_names_the_thread_budget_and_its_source(monkeypatch):
    """A teacher sharing a server must see each kernel's thread budget and where it came from."""
    monkeypatch.setenv("COURSE_THREADS", "1")
    import torch
    before = torch.get_num_threads()
    try:
        assert "1 CPU threads; budget 1 from $COURSE_THREADS" in environment_report("smoke", device="cpu")
    finally:
        torch.set_num_threads(before)


def test_cpu_budget_from_course_threads_omp_or_affinity(monkeypatch):
    from course_lib import runtime
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    threads, why = runtime.cpu_budget()
    assert 1 <= threads <= (os.cpu_count() or 1) and why in ("CPU affinity", "CPU count", "cgroup CPU quota")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert runtime.cpu_budget() == (3, "$OMP_NUM_THREADS")
    monkeypatch.setenv("COURSE_THREADS", "1")                     # a teacher's per-kernel budget wins
    assert runtime.cpu_budget() == (1, "$COURSE_THREADS")
    before = torch.get_num_threads()
    try:
        assert runtime.configure_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.setenv("COURSE_THREADS", "64")                # only ever lowers: a learner's choice stands
        assert runtime.configure_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.setenv("COURSE_THREADS", "two")
    with pytest.raises(ValueError, match="COURSE_THREADS must be a positive whole number"):
        runtime.cpu_budget()


def test_cgroup_quota_caps_the_budget(monkeypatch):
    from course_lib import runtime
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: 0.5)
    assert runtime.cpu_budget() == (1, "cgroup CPU quota")


def test_the_budget_is_shared_by_the_processes_training_now(monkeypatch, tmp_path):
    """Issue 30, D5: two course runs on one machine each take half the CPUs, not all of them."""
    import subprocess
    import sys
    from course_lib import runtime
    monkeypatch.delenv("COURSE_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(runtime, "_live_dir", lambda: tmp_path / "training")
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(runtime, "_cgroup_cpu_quota", lambda: None)
    assert runtime.cpu_budget()[0] == 4                           # nobody training
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with runtime.training_slot():
            (tmp_path / "training" / str(other.pid)).touch()      # another course process, training
            (tmp_path / "training" / "999999999").touch()         # a killed one: not counted, removed
            threads, why = runtime.cpu_budget()
            assert (threads, runtime.training_processes()) == (2, 2), why
            assert "shared by 2 course processes training now" in why
            assert not (tmp_path / "training" / "999999999").exists()
            before = torch.get_num_threads()
            try:
                torch.set_num_threads(4)
                assert runtime.configure_threads() == 2           # lowered while the other trains
                other.kill()
                other.wait()
                assert runtime.configure_threads() == 4           # given back once it stopped
            finally:
                torch.set_num_threads(before)
        assert runtime.training_processes() == 0                  # this process left the folder
    finally:
        other.kill()


def test_fit_counts_itself_as_training(monkeypatch, tmp_path):
    from course_lib import runtime
    from course_lib.train import RunOptions, TrainConfig, fit
    from regression_task import RegressionTask
    monkeypatch.setattr(runtime, "_live_dir", lambda: tmp_path / "training")
    seen = []
    model = torch.nn.Linear(4, 1)
    fit(model, RegressionTask(), TrainConfig(steps=3),
        run=RunOptions(progress=False, on_step=lambda step: seen.append(runtime.training_processes())))
    assert seen == [1, 1, 1] and runtime.training_processes() == 0

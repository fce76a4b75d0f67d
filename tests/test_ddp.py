"""DDP: 2 CPU processes under torchrun/gloo follow the same loss curve as 1 process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HELPERS = Path(__file__).with_name("helpers")
WORKER = HELPERS / "ddp_lm_worker.py"
CONTRASTIVE_WORKER = HELPERS / "ddp_contrastive_worker.py"
GAN_WORKER = HELPERS / "ddp_gan_worker.py"
TORCHRUN_2 = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]


def _run(args, out, tmp_path, worker=WORKER, extra=()):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HELPERS.parents[1])}
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, *args, str(worker), str(out), *extra], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(out.read_text()) if out.exists() else None


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    single = _run([], tmp_path / "one.json", tmp_path)
    double = _run(TORCHRUN_2, tmp_path / "two.json", tmp_path)
    assert len(single["loss"]) == len(double["loss"]) == 25
    for a, b in zip(single["loss"], double["loss"]):
        assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (single["loss"], double["loss"])
    for a, b in zip(single["grad_norm"], double["grad_norm"]):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a))
    assert single["loss"][-1] < single["loss"][0] - 0.3      # it did learn something


@pytest.mark.slow
def test_contrastive_negatives_span_every_process(tmp_path):
    """SimCLR under DDP: NT-Xent over the gathered global batch equals one process; using each rank's
    shard alone (half the negatives) does not, so the check can fail."""
    single = _run([], tmp_path / "one.json", tmp_path, CONTRASTIVE_WORKER)["loss"]
    double = _run(TORCHRUN_2, tmp_path / "two.json", tmp_path, CONTRASTIVE_WORKER)["loss"]
    local = _run(TORCHRUN_2, tmp_path / "local.json", tmp_path, CONTRASTIVE_WORKER, ["local"])["loss"]
    assert len(single) == len(double) == len(local) == 12
    for a, b in zip(single, double):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (single, double)
    assert abs(local[0] - single[0]) > 0.3, (single[0], local[0])   # fewer negatives: a different objective
    assert single[-1] < single[0] - 0.05                           # it trained


def _ranks(out):
    return [json.loads(Path(f"{out}.rank{r}").read_text()) for r in (0, 1)]


@pytest.mark.slow
def test_gan_own_step_under_ddp(tmp_path):
    """The GAN's own two-optimizer step syncs its gradients: 2 processes follow 1 process and stay identical;
    without the sync the copies drift apart."""
    _run([], tmp_path / "one", tmp_path, GAN_WORKER)
    single = json.loads(Path(f"{tmp_path / 'one'}.rank0").read_text())
    _run(TORCHRUN_2, tmp_path / "two", tmp_path, GAN_WORKER)
    r0, r1 = _ranks(tmp_path / "two")
    assert r0["weights"] == r1["weights"]                          # the two copies are the same model
    for key in ("loss", "g_loss"):
        for a, b in zip(single[key], r0[key]):
            assert abs(a - b) <= 1e-4 * max(1.0, abs(a)), (key, single[key], r0[key])
    assert single["weights"] == pytest.approx(r0["weights"], rel=1e-4, abs=1e-5)
    _run(TORCHRUN_2, tmp_path / "nosync", tmp_path, GAN_WORKER, ["nosync"])
    n0, n1 = _ranks(tmp_path / "nosync")
    assert max(abs(a - b) for a, b in zip(n0["weights"], n1["weights"])) > 1e-3


@pytest.mark.slow
def test_each_process_draws_its_own_randomness(tmp_path):
    """Augmentations and masks differ between processes (seed + rank); rank 0 draws what one process draws."""
    worker = HELPERS / "ddp_rng_worker.py"
    _run([], tmp_path / "one", tmp_path, worker)
    _run(TORCHRUN_2, tmp_path / "two", tmp_path, worker)
    single = json.loads(Path(f"{tmp_path / 'one'}.rank0").read_text())
    r0, r1 = (json.loads(Path(f"{tmp_path / 'two'}.rank{r}").read_text()) for r in (0, 1))
    assert r0 == single and len(r0) == 5
    assert all(a != b for a, b in zip(r0, r1))

"""GAN steps (a task that owns its two-optimizer step) under ``torchrun`` (or alone); dumps losses and weights.

``python ddp_gan_worker.py OUT.json [sync|nosync]``: every rank writes ``OUT.json.rank<r>``.
``nosync`` switches off ``StepTools.sync`` (the mistake): each rank then follows its own
shard and the copies of the model drift apart. The MLP GAN has no batch norm, so 2 processes
must follow 1 process's loss curve.
"""

import json
import os
import sys

import torch

from course_lib.chapters.gan import Config, GANTask
from course_lib.distributed import distributed_info
from course_lib.models.gan import GANConfig, build_gan
from course_lib.profiles import override
from course_lib.train import QUIET, StepTools, fit

if sys.argv[2:] == ["nosync"]:
    StepTools.sync = lambda self, parameters: None

torch.set_num_threads(1)
images = torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
cfg = override(Config(profile="smoke"), {"model.kind": "mlp", "model.width": 16, "data.batch_size": 16,
                                         "train.steps": 8, "train.eval_every": 8})
torch.manual_seed(0)
model = build_gan(GANConfig("mlp", cfg.model.latent_dim, cfg.model.width))
result = fit(model, GANTask(cfg, images), cfg.train, run=QUIET, device="cpu")
rank = distributed_info()[0]
with open(f"{sys.argv[1]}.rank{rank}", "w") as f:
    json.dump({"loss": [r["loss"] for r in result.history["train"]],
               "g_loss": [r["g_loss"] for r in result.history["train"]],
               "weights": [float(p.double().sum()) for p in model.parameters()]}, f)
if torch.distributed.is_initialized():
    # The results are written; leave without the C++ teardown. Once in CI (torch 2.13, gloo on CPU) a rank
    # aborted at exit ("terminate called without an active exception") after its work was done.
    sys.stdout.flush()
    os._exit(0)

"""GAN steps (a manual two-optimizer step) under ``torchrun`` (or alone); dumps losses and weights as JSON.

``python ddp_gan_worker.py OUT.json [sync|nosync]``: every rank writes ``OUT.json.rank<r>``.
``nosync`` switches off ``StepTools.sync_gradients`` (the mistake): each rank then follows its own
shard and the copies of the model drift apart. The MLP GAN has no batch norm, so 2 processes
must follow 1 process's loss curve.
"""

import json
import sys

import torch

from course_lib.models.gan import GANConfig, build_gan
from course_lib.tasks.gan import Config, GANTask
from course_lib.train import StepTools, TrainConfig, distributed_info, fit

if sys.argv[2:] == ["nosync"]:
    StepTools.sync_gradients = lambda self, parameters: None

torch.set_num_threads(1)
images = torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
cfg = Config(profile="smoke", kind="mlp", width=16, batch_size=16, steps=8, eval_every=8)
torch.manual_seed(0)
model = build_gan(GANConfig("mlp", cfg.latent_dim, cfg.width))
result = fit(model, GANTask(cfg, images), TrainConfig(steps=cfg.steps, lr=cfg.lr_g, grad_clip=None),
             progress=False, device="cpu")
rank = distributed_info()[0]
with open(f"{sys.argv[1]}.rank{rank}", "w") as f:
    json.dump({"loss": [r["loss"] for r in result.history["train"]],
               "g_loss": [r["g_loss"] for r in result.history["train"]],
               "weights": [float(p.double().sum()) for p in model.parameters()]}, f)
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()

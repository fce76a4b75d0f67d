"""SimCLR steps under ``torchrun`` (or alone); dumps the loss curve as JSON. Used by test_ddp.py.

``python ddp_contrastive_worker.py OUT.json [global|local]``: ``global`` is the course's task
(NT-Xent over every rank's projections); ``local`` is the common DDP mistake, each rank using
only its own shard as negatives. Augmentations are switched off so runs are comparable.
"""

import json
import os
import sys

import torch
from torch import nn

from course_lib.augment import AugmentConfig
from course_lib.objectives.infonce import nt_xent
from course_lib.chapters.contrastive import ContrastiveTask, DigitData, SimCLRConfig
from course_lib.distributed import distributed_info
from course_lib.train import QUIET, TrainConfig, fit


class LocalNegatives(ContrastiveTask):
    def loss(self, model, batch):
        b = batch.shape[0]
        z = model(torch.cat([batch, batch]))
        return nt_xent(z[:b], z[b:], self.simclr.temperature)          # the mistake: this rank's shard only


torch.set_num_threads(1)
images = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
identity = AugmentConfig(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), max_rotation=0.0, elastic_alpha=0.0,
                         noise_std=0.0, erase_prob=0.0)
torch.manual_seed(0)
model = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Tanh(), nn.Linear(32, 16))
task_cls = LocalNegatives if sys.argv[2:] == ["local"] else ContrastiveTask
task = task_cls(images, DigitData(batch_size=16), SimCLRConfig(temperature=0.5, augment=identity))
result = fit(model, task, TrainConfig(steps=12, lr=1e-2), run=QUIET, device="cpu")
if distributed_info()[0] == 0:
    with open(sys.argv[1], "w") as f:
        json.dump({"loss": [r["loss"] for r in result.history["train"]]}, f)
if torch.distributed.is_initialized():
    # The results are written; leave without the C++ teardown. Once in CI (torch 2.13, gloo on CPU) a rank
    # aborted at exit ("terminate called without an active exception") after its work was done.
    sys.stdout.flush()
    os._exit(0)

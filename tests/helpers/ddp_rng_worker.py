"""Each process's training randomness under ``torchrun``: dumps the global-RNG draws its loss saw.

Used by test_ddp.py.
"""

import json
import os
import sys

import torch
from torch import nn

from course_lib.distributed import distributed_info
from course_lib.train import QUIET, TrainConfig, fit

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from regression_task import RegressionTask  # noqa: E402


class Recording(RegressionTask):
    draws: list = []

    def loss(self, model, batch):
        self.draws.append(float(torch.rand(())))            # what an augmentation or a mask would draw
        return super().loss(model, batch)


torch.set_num_threads(1)
torch.manual_seed(0)
task = Recording()
fit(nn.Linear(4, 1), task, TrainConfig(steps=5, lr=1e-2), run=QUIET, device="cpu")
with open(f"{sys.argv[1]}.rank{distributed_info()[0]}", "w") as f:
    json.dump(task.draws, f)
if torch.distributed.is_initialized():
    # The results are written; leave without the C++ teardown. Once in CI (torch 2.13, gloo on CPU) a rank
    # aborted at exit ("terminate called without an active exception") after its work was done.
    sys.stdout.flush()
    os._exit(0)

"""Run a tiny char-LM training under ``torchrun`` (or alone) and dump its loss curve as JSON.

Used by test_ddp.py: ``torchrun --nproc_per_node=2 ddp_lm_worker.py OUT.json`` must give the
same loss curve as one process with the same global batch.
"""

import json
import os
import sys

import torch

from course_lib.models.rnn import CharRNN, CharRNNConfig
from course_lib.chapters.char_lm import CharData
from course_lib.chapters.rnn_lm import CharLMTask
from course_lib.distributed import distributed_info
from course_lib.train import QUIET, TrainConfig, fit

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
# a synthetic corpus with structure: 20 five-letter words over a 12-letter alphabet, space-separated
words = torch.randint(0, 12, (20, 5), generator=g)
ids = torch.cat([torch.cat([w, torch.tensor([12])]) for w in words[torch.randint(0, 20, (3000,), generator=g)]])
torch.manual_seed(0)
model = CharRNN(CharRNNConfig(vocab_size=13, cell="lstm", embed_dim=16, hidden_dim=32, layers=1))
task = CharLMTask(ids[:15000], ids[15000:], CharData(batch_size=8, seq_len=16))
result = fit(model, task, TrainConfig(steps=25, lr=2e-2, warmup_steps=3), run=QUIET, device="cpu")
if distributed_info()[0] == 0:
    with open(sys.argv[1], "w") as f:
        json.dump({"loss": [r["loss"] for r in result.history["train"]],
                   "grad_norm": [r["grad_norm"] for r in result.history["train"]],
                   "final": result.final}, f)
if torch.distributed.is_initialized():
    # The results are written; leave without the C++ teardown. Once in CI (torch 2.13, gloo on CPU) a rank
    # aborted at exit ("terminate called without an active exception") after its work was done.
    sys.stdout.flush()
    os._exit(0)

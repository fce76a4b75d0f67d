"""What masked-frame pre-training is worth (notebook 06): keyword recognition on new speakers.

One protocol for every method, every choice made on the *validation speakers* and the accuracy
reported on the *test speakers*. A clip is represented by the mean and standard deviation over
time of each channel (:func:`course_lib.models.frames.mean_std_pool`), for the log-mel input as for
any encoder layer. At each label budget (clips per word from the training speakers):

(a) ``pretrained_finetuned``: the pre-trained encoder, a learned weighted sum of its layers and a
    linear layer started as the best layer's probe, all fine-tuned (LP-FT) with early stopping;
(b) ``scratch_finetuned``: the same network from random weights, trained the same way;
(c) ``pretrained_probe``: logistic regression on the frozen pre-trained encoder's best layer;
(d) ``logmel_stats``: logistic regression on the log-mel frames' mean and std;
(e) ``random_probe``: logistic regression on the frozen random encoder's best layer.

Run r pairs pre-training seed r // draws with label draw r % draws: every method sees the same
labelled clips in run r; (b) and (e) start from fresh random weights in each run.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch

from ... import metrics
from ...batching import map_batches
from ...data.budgets import budget_indices
from ...models.frames import FrameClassifier, FrameEncoder, FrameReconstructor, mean_std_pool
from ...runtime import seed_everything
from ...test_run import once_per_test_run
from ...train import RunOptions, TrainConfig, fit
from .config import Config, StudyConfig
from .data import FrameData
from .task import KeywordTask, classify_accuracy, new_classifier

__all__ = ["METHODS", "PRETRAINED", "logmel_stats", "layer_features", "probe_best_layer", "finetune_steps",
           "finetune", "classify_accuracy", "budget_name", "run_indices", "probe_draw", "recognition_study",
           "spread"]

PROBE_LOGIT = 10.0        # layer logits ±10: the probe-initialised head reads one layer (weights 1 - 1e-8)
METHODS = ("pretrained_finetuned", "scratch_finetuned", "pretrained_probe", "logmel_stats", "random_probe")
PRETRAINED = ("pretrained_finetuned", "pretrained_probe")


def budget_name(per_word: int) -> str:
    """'1', '5', '20' ... or 'all' for a budget of 0."""
    return "all" if per_word <= 0 else str(per_word)


def logmel_stats(x: torch.Tensor) -> torch.Tensor:
    """(N, T, F) -> (N, 2F): each band's mean and standard deviation over time (no learning)."""
    return mean_std_pool(x)


def layer_features(encoder: FrameEncoder, x: torch.Tensor) -> torch.Tensor:
    """Frozen features of every layer, (L+1, N, 2D): mean and std over time of h^(0) … h^(L), nothing hidden."""
    per_clip = map_batches(encoder, lambda xb: torch.stack([mean_std_pool(h) for h in encoder.hidden_states(xb)],
                                                           dim=1), x, 256)          # (N, L+1, 2D)
    return per_clip.transpose(0, 1)


def probe_best_layer(train_f: torch.Tensor, train_y: torch.Tensor, val_f: torch.Tensor, val_y: torch.Tensor,
                     test_f: torch.Tensor, test_y: torch.Tensor) -> tuple[float, int]:
    """(test accuracy, layer): a probe per layer of (L+1, N, D) features; the layer best on validation wins."""
    scores = [metrics.linear_probe_scores(train_f[i], train_y, [(val_f[i], val_y), (test_f[i], test_y)])
              for i in range(len(train_f))]
    layer = max(range(len(scores)), key=lambda i: (scores[i][0], -i))             # ties: the shallower layer
    return scores[layer][1], layer


def finetune_steps(n_labelled: int, s: StudyConfig) -> int:
    """Steps scaled to the label budget: ``ft_epochs`` passes over the labelled clips, within [min, max]."""
    return min(s.ft_max_steps, max(s.ft_min_steps, round(s.ft_epochs * n_labelled / s.ft_batch_size)))


def finetune(cfg: Config, x: torch.Tensor, y: torch.Tensor, pretrained: FrameReconstructor | None, seed: int,
             val: tuple[torch.Tensor, torch.Tensor], device: torch.device | str | None = None) -> FrameClassifier:
    """A keyword classifier trained on (x, y), from the pre-trained encoder or from random weights (seed ``seed``).

    Linear probe, then fine-tuning (LP-FT, Kumar et al. 2022): the classifier starts as the probe on
    its encoder's best layer (chosen on ``val``), so fine-tuning starts from what the frozen features
    already give. Steps scale with the budget (:func:`finetune_steps`); validation accuracy is
    measured before training and ``study.ft_evals`` times during it, and the weights of the best
    evaluation are kept (early stopping). The encoder learns at ``study.ft_encoder_lr_ratio`` times the
    head's rate. Both starting points get the same protocol.
    """
    s = cfg.study
    model = new_classifier(cfg, int(y.max()) + 1, pretrained, seed)
    feats = {k: layer_features(model.encoder, v) for k, v in (("train", x), ("val", val[0]))}
    _, layer = probe_best_layer(feats["train"], y, feats["val"], val[1], feats["val"], val[1])
    weight, bias = metrics.linear_probe_weights(feats["train"][layer], y)
    with torch.no_grad():                                     # the head reads layer ``layer`` alone: the probe
        model.layer_logits.fill_(-PROBE_LOGIT).index_fill_(0, torch.tensor([layer]), PROBE_LOGIT)
        model.head.weight.copy_(weight)
        model.head.bias.copy_(bias)
    steps = finetune_steps(len(x), s)
    train = TrainConfig(steps=steps, lr=s.ft_lr, weight_decay=0.01, warmup_steps=max(1, steps // 10),
                        eval_every=max(1, steps // s.ft_evals), seed=seed)
    task = KeywordTask(x, y, s.ft_batch_size, seed, val=val, encoder_lr_ratio=s.ft_encoder_lr_ratio)
    best: dict[str, Any] = {"accuracy": -1.0}

    def keep_best(step: int, scores: dict[str, float]) -> None:
        if scores["val_accuracy"] > best["accuracy"]:
            best.update(accuracy=scores["val_accuracy"], step=step,
                        state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()})

    keep_best(0, task.evaluate(model, 0))                     # the probe itself is a candidate
    fit(model, task, train, device=device, run=RunOptions(progress=False, checkpoint_seconds=None, on_eval=keep_best))
    model.load_state_dict(best["state"])
    model.best_step, model.best_val_accuracy, model.probe_layer = best["step"], best["accuracy"], layer
    return model


def spread(values: list[float]) -> dict[str, Any]:
    """{"mean", "std", "draws"}: the sample standard deviation (0 for one run)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "draws": list(values)}


def run_indices(data: FrameData, budget: int, draw: int) -> torch.Tensor:
    """The labelled training clips of one draw at one budget (clips per word; 0: all), sorted."""
    return budget_indices(data.train_y, budget, torch.Generator().manual_seed(draw)).sort().values


def probe_draw(data: FrameData, features: dict[str, torch.Tensor], budget: int, draw: int) -> tuple[float, int]:
    """(test accuracy, layer) of the best-layer probe on one label draw: ``features`` maps "train", "val", "test"
    to (L+1, N, D) layer features of those clips; the layer is chosen on the validation speakers."""
    idx = run_indices(data, budget, draw)
    return probe_best_layer(features["train"][:, idx], data.train_y[idx], features["val"], data.val_y,
                            features["test"], data.test_y)


def recognition_study(cfg: Config, data: FrameData, pretrained: list[FrameReconstructor],
                      device: torch.device | str | None = None,
                      on_result: Callable[[str, str, int, float], None] | None = None) -> dict[str, dict[str, Any]]:
    """{method: {budget: spread of test accuracy over runs}}, runs = pre-trained models x ``study.draws``
    (x 1 with every label).

    Probes (c)-(e) run at every ``study.label_budgets``; fine-tuning (a), (b) at ``study.finetune_budgets``.
    ``pretrained[i]`` was pre-trained with seed ``cfg.train.seed + i``; the random encoder of run r is
    seeded the same way. Each entry also lists the chosen probe layers (``"layers"``).

    Computed once per test run (:func:`course_lib.test_run.once_per_test_run`, keyed by the config and the
    pre-trained weights): the Chinese notebook reads what the English one measured, and ``on_result`` is
    then called once per stored result.
    """
    key = {"cfg": cfg, "pretrained": list(pretrained), "clips": [len(data.train_x), len(data.val_x), len(data.test_x)]}
    computed = []
    def compute() -> dict[str, dict[str, Any]]:
        computed.append(True)
        return _recognition_study(cfg, data, pretrained, device, on_result)
    out = once_per_test_run("masked_audio-recognition-study", key, compute)
    if not computed and on_result is not None:                       # read back: report each stored result
        for method, per in out.items():
            for name, entry in per.items():
                for run, acc in enumerate(entry["draws"]):
                    on_result(method, name, run, acc)
    return out


def _recognition_study(cfg: Config, data: FrameData, pretrained: list[FrameReconstructor],
                       device: torch.device | str | None,
                       on_result: Callable[[str, str, int, float], None] | None) -> dict[str, dict[str, Any]]:
    s = cfg.study
    sets = {"train": data.train_x, "val": data.val_x, "test": data.test_x}
    logmel = {k: logmel_stats(v)[None] for k, v in sets.items()}                    # (1, N, 2F): one "layer"
    table: dict[str, dict[str, list[float]]] = {m: {} for m in METHODS}
    layers: dict[str, dict[str, list[int]]] = {m: {} for m in ("pretrained_probe", "random_probe")}
    for i, model in enumerate(pretrained):
        seed = cfg.train.seed + i
        seed_everything(seed)
        encoders = {"pretrained_probe": model.encoder, "random_probe": FrameReconstructor(cfg.model).encoder}
        frozen = {m: {k: layer_features(enc, v) for k, v in sets.items()} for m, enc in encoders.items()}
        frozen["logmel_stats"] = logmel
        for budget in s.label_budgets:
            name = budget_name(budget)
            for draw in range(s.draws if budget > 0 else 1):          # every clip: one draw
                scores = {}
                for method, f in frozen.items():
                    scores[method], layer = probe_draw(data, f, budget, draw)
                    if method in layers:
                        layers[method].setdefault(name, []).append(layer)
                if budget in s.finetune_budgets:
                    idx = run_indices(data, budget, draw)
                    x, y = data.train_x[idx], data.train_y[idx]
                    for method, source in (("pretrained_finetuned", model), ("scratch_finetuned", None)):
                        clf = finetune(cfg, x, y, source, seed=seed * 1000 + draw, val=(data.val_x, data.val_y),
                                       device=device)
                        scores[method] = classify_accuracy(clf, data.test_x, data.test_y)
                for method, acc in scores.items():
                    table[method].setdefault(name, []).append(acc)
                    if on_result is not None:
                        on_result(method, name, i * s.draws + draw, acc)
    out: dict[str, dict[str, Any]] = {m: {b: spread(v) for b, v in per.items()} for m, per in table.items()}
    for m, per in layers.items():
        for b, chosen in per.items():
            out[m][b]["layers"] = chosen
    return out

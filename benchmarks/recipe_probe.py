"""Probe a chapter's training recipe: the first N steps of a profile, with config changes, side by side.

    python benchmarks/recipe_probe.py rnn_lm --profile full --stop 500 --variant base= --variant lr1e-3=train.lr=1e-3
    python benchmarks/recipe_probe.py mlm --profile full --stop 1600 --variant fp32=@fp32

Each variant is ``NAME=KEY=VALUE[,KEY=VALUE...]`` (``--set`` syntax; ``@bf16``/``@fp16``/``@fp32`` forces
the precision). A variant trains with the profile's whole schedule (its warm-up and decay are those of
the full run) and stops after ``--stop`` steps, so an early failure of the real recipe (a loss stuck at
the unigram level, a NaN) shows at the step where the real run meets it. Training only: no study,
no final evaluation. Prints one JSON object per variant: the training loss at a few steps, the largest
gradient norm seen, and the step and message of a divergence.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _Stop(Exception):
    pass


def probe(chapter_name: str, profile: str, changes: list[str], stop: int, device: str | None,
          marks: tuple[int, ...] = (10, 25, 50, 100, 200, 300, 500, 800, 1000, 1200, 1400, 1600, 2000)) -> dict:
    """Train ``chapter_name``'s ``profile`` with ``changes`` for ``stop`` steps; the losses at ``marks``."""
    from course_lib.chapters.registry import get_chapter
    from course_lib.profiles import parse_setting
    from course_lib.train import RunOptions, fit

    chapter = get_chapter(chapter_name)
    overrides, precision = {}, None
    for change in changes:
        if change.startswith("@"):
            precision = change[1:]
        else:
            key, value = parse_setting(chapter.config(profile), change)
            overrides[key] = value
    if precision is not None:
        os.environ["COURSE_PRECISION"] = precision
    cfg = chapter.config(profile, overrides)
    setup = chapter.build(cfg)
    losses: list[float] = []
    grad_norms: list[float] = []
    original = setup.task.train_step

    def recorded_step(model, batch, tools):             # the chapter's own step, its scalars kept
        scalars = original(model, batch, tools)
        losses.append(float(scalars["loss"]))
        grad_norms.append(float(scalars.get("grad_norm", scalars.get("d_grad_norm", 0.0))))
        return scalars

    setup.task.train_step = recorded_step

    def on_step(step: int) -> None:
        if step >= stop:
            raise _Stop

    t0, error = time.perf_counter(), None
    try:
        fit(setup.model, setup.task, setup.train, device=device, run=RunOptions(progress=False, on_step=on_step))
    except _Stop:
        pass
    except FloatingPointError as err:
        error = str(err)
    seconds = time.perf_counter() - t0

    def mean_around(step: int) -> float | None:        # mean training loss over the 10 steps up to ``step``
        window = [x for x in losses[max(0, step - 10):step] if math.isfinite(x)]
        return round(sum(window) / len(window), 4) if window and step <= len(losses) else None

    finite = [g for g in grad_norms if math.isfinite(g)]
    return {"chapter": chapter_name, "profile": profile, "changes": changes, "stop": stop,
            "steps_done": len(losses), "seconds": round(seconds, 1),
            "steps_per_s": round(len(losses) / seconds, 2) if seconds > 0 else None,
            "loss_at": {m: mean_around(m) for m in marks if m <= len(losses)},
            "grad_norm_max": round(max(finite), 3) if finite else None,
            "first_nonfinite_loss_step": next((i for i, x in enumerate(losses) if not math.isfinite(x)), None),
            "error": error}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapter")
    ap.add_argument("--profile", default="full")
    ap.add_argument("--stop", type=int, default=500)
    ap.add_argument("--device", default=None)
    ap.add_argument("--variant", action="append", default=[])
    args = ap.parse_args()
    for variant in args.variant or ["base="]:
        name, _, spec = variant.partition("=")
        changes = [c for c in spec.split(",") if c]
        row = {"variant": name, **probe(args.chapter, args.profile, changes, args.stop, args.device)}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

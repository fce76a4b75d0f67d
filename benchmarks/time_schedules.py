"""Learning-rate schedules under a time budget: the cut step schedule, the timed cosine, warm-up-stable-decay.

    python benchmarks/time_schedules.py --chapters rnn_lm --budgets 30 64 150 --text-mb 1.1
    python benchmarks/time_schedules.py --plot-only          # redraw the figure from the stored rows
    python benchmarks/time_schedules.py --chapters rnn_lm --budgets 30 --schedules wsd --set train.decay_frac=0.15

For each chapter, budget (seconds of training) and schedule, one ``python -m course_lib train`` in a
fresh process (one at a time: timings taken beside another job are worthless). The chapters whose ``train``
goes on to a long study after training (mlm, contrastive, masked_audio) run only their pre-training, in a
fresh process of this script (``--child``), and report its final evaluation:

* ``cut``: the profile's step schedule (warm-up, cosine over its steps), stopped by ``--max-seconds``;
* ``cosine``: ``--seconds`` with the timed cosine (its warm-up in steps, then a cosine over the seconds);
* ``wsd``: ``--seconds`` with warm-up-stable-decay (``course_lib.train.warmup_stable_decay_timed``).

Rows go to ``benchmarks/results/schedules-<machine>.json`` (kept per chapter, text, budget, schedule,
seed) and the figure to ``benchmarks/schedules-<machine>.png``; ``benchmarks/RESULTS.md`` shows both.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

SCHEDULES = ("cut", "cosine", "wsd")
QUALITY = {"rnn_lm": "val_nats_per_char", "transformer_lm": "val_nats_per_char", "gan": "frechet_distance",
           "mlm": "masked_accuracy", "attention": "accuracy", "contrastive": "val_knn_acc",
           "masked_audio": "masked_l1"}
PRETRAINING_ONLY = ("mlm", "contrastive", "masked_audio")     # their studies take minutes after training


def shakespeare_text(megabytes: float, folder: Path) -> Path:
    """The plays as one UTF-8 file of about ``megabytes`` MB, cut at a line break (a stand-in for a learner's file)."""
    from course_lib.data import text as text_data
    full = text_data.plays_to_text(text_data.load_plays())
    cut = full.find("\n", int(megabytes * 1e6))
    path = folder / f"shakespeare-{megabytes:g}MB.txt"
    path.write_text(full[: cut + 1 if cut > 0 else len(full)], encoding="utf-8")
    return path


def run_one(chapter: str, schedule: str, budget: float, text: Path | None, seed: int,
            changes: list[str] | None = None) -> dict:
    out = Path(tempfile.mkdtemp(prefix=f"sched-{chapter}-"))
    if chapter in PRETRAINING_ONLY:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", chapter, "--child-out", str(out),
               "--child-schedule", schedule, "--child-budget", str(budget), "--seeds", str(seed)]
    else:
        cmd = [sys.executable, "-m", "course_lib", "train", chapter, "--profile", "class", "--out", str(out),
               "--quiet", "--seed", str(seed)]
        if schedule == "cut":
            cmd += ["--max-seconds", str(budget)]
        else:
            cmd += ["--seconds", str(budget), "--set", f"train.time_schedule={schedule}"]
    if text is not None:
        cmd += ["--text", str(text)]
    for change in changes or []:
        cmd += ["--set", change]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "TQDM_DISABLE": "1"}, capture_output=True, text=True)
    label = schedule + (f" [{', '.join(changes)}]" if changes else "")     # a variant is its own schedule
    row = {"chapter": chapter, "schedule": label, "budget_s": budget, "seed": seed,
           "text": text.name if text else None, "command_s": round(time.perf_counter() - t0, 1)}
    if proc.returncode != 0:
        return {**row, "status": "FAIL", "error": proc.stderr.strip()[-600:]}
    metrics = json.loads((out / "metrics.json").read_text())
    key = QUALITY[chapter]
    data = metrics["config"].get("data", {})
    return {**row, "status": "pass", "quality_key": key, "quality": metrics["metrics"][key],
            "steps": metrics["steps"], "train_wall_s": metrics["train_wall_s"],
            "batch_size": data.get("batch_size"), "pretraining_only": chapter in PRETRAINING_ONLY,
            # the wsd shape this row ran with (a label is relative to the defaults, which can change)
            "warmup_frac": metrics["config"]["train"].get("warmup_frac"),
            "decay_frac": metrics["config"]["train"].get("decay_frac"),
            "date": time.strftime("%Y-%m-%d"), "git_commit": metrics.get("git_commit"), "torch": metrics.get("torch")}


def pretrain_child(chapter_name: str, schedule: str, budget: float, seed: int, changes: list[str],
                   out: Path) -> None:
    """Train only a chapter's main run (what ``CHAPTER.build`` sets up) the way ``train`` would for this
    schedule, and write a ``metrics.json`` with its final evaluation (no study afterwards)."""
    from dataclasses import asdict, is_dataclass

    from course_lib.__main__ import TIME_BUDGET_STEP_CAP
    from course_lib.chapters.registry import get_chapter
    from course_lib.profiles import parse_setting
    from course_lib.checkpoints import git_commit
    from course_lib.train import RunOptions, fit
    import torch

    chapter = get_chapter(chapter_name)
    overrides: dict = {"train.seed": seed}
    if schedule != "cut":
        overrides.update({"train.seconds": budget, "train.steps": TIME_BUDGET_STEP_CAP,
                          "train.time_schedule": schedule})
    for setting in changes:
        key, value = parse_setting(chapter.config("class"), setting)
        overrides[key] = value
    cfg = chapter.config("class", overrides)
    setup = chapter.build(cfg)
    result = fit(setup.model, setup.task, setup.train, device="cpu",
                 run=RunOptions(progress=False, max_seconds=budget if schedule == "cut" else None))
    config = asdict(cfg) if is_dataclass(cfg) else {}
    (out / "metrics.json").write_text(json.dumps(
        {"chapter": chapter_name, "steps": result.steps, "train_wall_s": round(result.wall_s, 1),
         "metrics": result.final, "config": config, "git_commit": git_commit(), "torch": torch.__version__},
        indent=2, default=str) + "\n")


def _machine() -> str:
    import platform
    return f"cpu{os.cpu_count()}-{platform.machine()}"


def plot(path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [r for r in json.loads(path.read_text())["rows"] if r["status"] == "pass"]
    groups = sorted({(r["chapter"], r["text"]) for r in rows}, key=str)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6), squeeze=False)
    for ax, (chapter, text) in zip(axes[0], groups):
        mine = [r for r in rows if (r["chapter"], r["text"]) == (chapter, text)]
        variants = sorted({r["schedule"] for r in mine} - set(SCHEDULES))       # --set runs, e.g. "wsd [...]"
        for schedule, marker in zip([*SCHEDULES, *variants], "os^vDpx*"):
            by_budget: dict[float, list[float]] = {}
            for r in rows:
                if (r["chapter"], r["text"], r["schedule"]) == (chapter, text, schedule):
                    by_budget.setdefault(r["budget_s"], []).append(r["quality"])
            if by_budget:                                  # the mean over the seeds measured at each budget
                xs = sorted(by_budget)
                ax.plot(xs, [sum(by_budget[x]) / len(by_budget[x]) for x in xs], marker=marker, label=schedule,
                        linestyle="--" if schedule in variants else "-")
        ax.set_xscale("log")
        budgets = sorted({r["budget_s"] for r in mine})
        ax.set_xticks(budgets, [f"{b:g}" for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("training budget (s, log scale)")
        ax.set_ylabel(QUALITY[chapter])
        ax.set_title(f"{chapter}" + (f" on {text}" if text else ""))
        ax.legend(fontsize=7)
    fig.tight_layout()
    png = path.with_suffix(".png").parent.parent / f"{path.stem}.png"
    fig.savefig(png, dpi=100)
    return png


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--chapters", nargs="+", default=["rnn_lm"])
    ap.add_argument("--budgets", nargs="+", type=float, default=[30, 64, 150])
    ap.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--text-mb", type=float, default=None, help="LM chapters: train on this many MB of the plays")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config change for every run (e.g. train.decay_frac=0.15); rows name it in their schedule")
    ap.add_argument("--plot-only", action="store_true")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)     # one pre-training run, in its own process
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-schedule", help=argparse.SUPPRESS)
    ap.add_argument("--child-budget", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        pretrain_child(args.child, args.child_schedule, args.child_budget, args.seeds[0], args.set, args.child_out)
        return
    path = RESULTS / f"schedules-{_machine()}.json"
    if not args.plot_only:
        kept = json.loads(path.read_text()) if path.exists() else {"kind": "schedules", "machine": _machine()}
        rows = kept.get("rows", [])
        folder = Path(tempfile.mkdtemp(prefix="sched-text-"))
        text = shakespeare_text(args.text_mb, folder) if args.text_mb else None
        for chapter in args.chapters:
            for budget in args.budgets:
                for seed in args.seeds:
                    for schedule in args.schedules:
                        use = text if chapter in ("rnn_lm", "transformer_lm") else None
                        row = run_one(chapter, schedule, budget, use, seed, args.set)
                        print(json.dumps(row), flush=True)
                        key = (row["chapter"], row["text"], row["budget_s"], row["schedule"], row["seed"])
                        rows = [r for r in rows if (r["chapter"], r["text"], r["budget_s"], r["schedule"],
                                                    r["seed"]) != key] + [row]
                        path.write_text(json.dumps({**kept, "rows": rows}, indent=2) + "\n")
    print(f"wrote {path} and {plot(path)}")


if __name__ == "__main__":
    main()

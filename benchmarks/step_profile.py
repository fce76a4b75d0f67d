"""Where does a training step spend its time? ``torch.profiler`` over each chapter's main training loop.

    python benchmarks/step_profile.py --profile class                       # every chapter
    python benchmarks/step_profile.py --profile class --only gan --tag after

For each chapter the script runs the chapter's own ``run(cfg)`` (the code behind
``python -m course_lib train``) until its main training loop starts, then times a few
steps without the profiler and profiles a few more with it (``torch.profiler.schedule``),
and stops. Side trainings before the main one (the GAN's judge) run one step only.

Per chapter it records: milliseconds per step with and without the profiler; the time
inside PyTorch calls (the outermost profiled events: operators, autograd nodes, the
optimizer step); the rest of the step ("outside torch": the course's Python, the loop's
bookkeeping, batch making); and the operators with the most self CPU time. Results go to
``benchmarks/results/profile-<machine>-<profile>.json`` keyed by chapter and ``--tag``
(e.g. ``before`` / ``after`` a change), and to the table ``benchmarks/PROFILE.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from run import RESULTS, _machine  # noqa: E402  (the benchmark runner's machine name and results folder)

# the Task class of each chapter's main training loop (other fit() calls are side trainings)
MAIN_TASK = {"attention": "RoutingTask", "mlm": "MLMTask", "gan": "GANTask", "contrastive": "ContrastiveTask",
             "rnn_lm": "CharLMTask", "transformer_lm": "WindowLMTask"}
SKIP, TIMED, PROFILER_WARMUP = 3, 10, 2          # steps: allocator warm-up, timed without profiler, profiler warm-up


class _Profiled(Exception):
    """Raised from the step hook once the profiled steps are done, to stop the chapter's run()."""


def profile_chapter(chapter: str, profile: str, active: int, device: str | None = None) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile, schedule

    from course_lib.profiles import for_profile
    from course_lib.tasks import chapter_module
    from course_lib import train

    module = chapter_module(chapter)
    cfg = for_profile(module.Config, profile)
    wait = SKIP + TIMED
    total = wait + PROFILER_WARMUP + active
    out: dict = {}

    def patched_fit(model, task, tcfg, **kwargs):
        if type(task).__name__ != MAIN_TASK[chapter]:          # a side training: one step is enough here
            return train.fit(model, task, dataclasses.replace(tcfg, steps=1, warmup_steps=0, eval_every=0,
                                                              checkpoint_every=0), **{**kwargs, "out_dir": None})
        stamps: list[float] = []
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
        prof = torch_profile(activities=activities,
                             schedule=schedule(wait=wait, warmup=PROFILER_WARMUP, active=active, repeat=1))

        def on_step(step: int) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())
            prof.step()
            if step == total:
                raise _Profiled

        short = dataclasses.replace(tcfg, steps=max(tcfg.steps, total), eval_every=0, checkpoint_every=0)
        kwargs = {**kwargs, "out_dir": None, "resume": False, "progress": False, "on_step": on_step}
        with prof:
            try:
                train.fit(model, task, short, **kwargs)
            except _Profiled:
                pass
        steps = torch.tensor(stamps).diff() * 1000          # ms; stamps[k] is the end of step k + 1
        unprofiled = steps[SKIP - 1: wait - 1]               # steps SKIP+1 .. wait, profiler idle
        profiled = steps[-active:]
        events = prof.key_averages()
        # time inside PyTorch calls: outermost events only (their totals include the nested ones)
        outermost = [e for e in prof.events() if not e.name.startswith("ProfilerStep")
                     and (e.cpu_parent is None or e.cpu_parent.name.startswith("ProfilerStep"))]
        inside_ms = sum(e.cpu_time_total for e in outermost) / 1000 / active
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:12]
        out.update({
            "chapter": chapter, "profile": profile, "device": str(next(model.parameters()).device),
            "threads": torch.get_num_threads(), "params": sum(p.numel() for p in model.parameters()),
            "ms_per_step": round(float(unprofiled.median()), 2),
            "ms_per_step_profiled": round(float(profiled.median()), 2),
            "inside_torch_ms_per_step": round(inside_ms, 2),
            "outside_torch_share": round(max(0.0, 1 - inside_ms / float(profiled.mean())), 3),
            "top_operators": [{"name": e.key, "calls_per_step": round(e.count / active, 1),
                               "self_ms_per_step": round(e.self_cpu_time_total / 1000 / active, 2)} for e in top],
        })
        raise _Profiled

    module.fit = patched_fit
    try:
        module.run(cfg, device=device, out_dir=None, progress=False)
    except _Profiled:
        pass
    finally:
        module.fit = train.fit
    if not out:
        raise RuntimeError(f"{chapter}: its run() never started a {MAIN_TASK[chapter]} training loop")
    return out


def write_table() -> Path:
    lines = ["# Training-step profiles", "",
             "Generated by `python benchmarks/step_profile.py` (torch.profiler over each chapter's main training "
             "loop). *outside torch*: the share of a profiled step not spent inside PyTorch calls "
             "(the course's Python, the loop's bookkeeping, batch making).", ""]
    for path in sorted(RESULTS.glob("profile-*.json")):
        data = json.loads(path.read_text())
        env = data["environment"]
        lines += [f"## {path.stem}", "", f"{env['machine']}, torch {env['torch']}, profile `{env['profile']}`", "",
                  "| chapter | tag | commit | ms/step | ms/step (profiled) | inside torch ms/step | outside torch "
                  "| top operators (self ms/step) |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in data["rows"]:
            ops = ", ".join(f"{o['name']} {o['self_ms_per_step']}" for o in r["top_operators"][:5])
            lines.append(f"| {r['chapter']} | {r['tag']} | {r['git_commit']} | {r['ms_per_step']} | "
                         f"{r['ms_per_step_profiled']} | {r['inside_torch_ms_per_step']} | "
                         f"{r['outside_torch_share']:.1%} | {ops} |")
        by_tag = {(r["chapter"], r["tag"]): r for r in data["rows"]}
        for (chapter, tag), before in by_tag.items():
            after = by_tag.get((chapter, "after"))
            if tag == "before" and after is not None:
                change = after["ms_per_step"] / before["ms_per_step"] - 1
                lines.append(f"\n* {chapter}: {before['ms_per_step']} ms/step before, {after['ms_per_step']} after "
                             f"({change:+.0%}; commits {before['git_commit']} -> {after['git_commit']})")
        lines.append("")
    out = ROOT / "benchmarks" / "PROFILE.md"
    out.write_text("\n".join(lines))
    return out


def main() -> int:
    import torch

    from course_lib.checkpoints import git_commit
    from course_lib.profiles import resolve_profile
    from course_lib.tasks import CHAPTERS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="class")
    parser.add_argument("--only", default=None, help="comma-separated chapter names")
    parser.add_argument("--steps", type=int, default=10, help="profiled steps per chapter")
    parser.add_argument("--tag", default="now", help="label of this measurement, e.g. before / after")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    profile = resolve_profile(args.profile)
    chapters = args.only.split(",") if args.only else list(CHAPTERS)
    unknown = [c for c in chapters if c not in MAIN_TASK]
    if unknown:
        parser.error(f"unknown chapter(s) {unknown}; expected some of: {', '.join(MAIN_TASK)}")
    rows = []
    for chapter in chapters:
        row = {**profile_chapter(chapter, profile, args.steps, args.device), "tag": args.tag,
               "git_commit": git_commit(), "date": time.strftime("%Y-%m-%d")}
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "top_operators"}), flush=True)
    path = RESULTS / f"profile-{_machine()}-{profile}.json"
    previous = json.loads(path.read_text())["rows"] if path.exists() else []
    merged = {(r["chapter"], r["tag"]): r for r in previous + rows}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"kind": "profile", "environment": {
        "machine": _machine(), "torch": str(torch.__version__), "profile": profile},
        "rows": sorted(merged.values(), key=lambda r: (list(MAIN_TASK).index(r["chapter"]), r["date"]))},
        indent=2) + "\n")
    print(f"wrote {path} and {write_table()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

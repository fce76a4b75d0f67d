"""Two course processes on one machine: one after the other vs at once, with and without a thread budget.

    python benchmarks/concurrent_runs.py                      # contrastive, smoke (notebook 04's training)
    python benchmarks/concurrent_runs.py --chapter rnn_lm --steps 60

Each run is ``python -m course_lib train CHAPTER --profile smoke`` in a fresh process. Three
settings: *sequential* (two runs, one after the other), *together, default threads* (two runs
at once, each sizing its thread pool from the CPUs it may use: on an N-core machine both ask
for N threads) and *together, COURSE_THREADS=cores/2* (a per-process budget, as a teacher sets
for a shared server). Writes ``benchmarks/results/concurrent-<machine>.json``: wall seconds per
setting and the slowdown against running alone. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _command(chapter: str, steps: int, out: str) -> list[str]:
    return [sys.executable, "-m", "course_lib", "train", chapter, "--profile", "smoke", "--steps", str(steps),
            "--out", out, "--quiet"]


def run_together(chapter: str, steps: int, n: int, threads: int | None) -> list[float]:
    """Start ``n`` runs at once; each one's wall seconds."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    env.pop("COURSE_THREADS", None)
    if threads is not None:
        env["COURSE_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        procs = [subprocess.Popen(_command(chapter, steps, f"{tmp}/run{i}"), env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
        walls = []
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise RuntimeError(f"run failed: {err.decode()[-2000:]}")
            walls.append(time.perf_counter() - started)
    return walls


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapter", default="contrastive")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    alone = run_together(args.chapter, args.steps, 1, None)[0]
    sequential = alone + run_together(args.chapter, args.steps, 1, None)[0]
    default = max(run_together(args.chapter, args.steps, 2, None))
    budget = max(1, cores // 2)
    budgeted = max(run_together(args.chapter, args.steps, 2, budget))
    result = {
        "chapter": args.chapter, "steps": args.steps, "cores": cores, "machine": f"cpu{cores}-{platform.machine()}",
        "alone_s": round(alone, 2),
        "sequential_two_s": round(sequential, 2),
        "together_default_threads_s": round(default, 2),
        f"together_course_threads_{budget}_s": round(budgeted, 2),
        "note": "wall seconds until both runs finished; each run includes start-up and data loading",
    }
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"concurrent-{result['machine']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

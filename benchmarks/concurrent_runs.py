"""Several course processes on one machine: does each get its share of the CPU?

    python benchmarks/concurrent_runs.py                         # rnn_lm smoke, 1 / 2 / 4 processes
    python benchmarks/concurrent_runs.py --chapter contrastive --steps 40 --processes 1 2

Each run is ``python -m course_lib train CHAPTER --profile smoke --steps N`` in a fresh process; N of
them start at once. What is compared is each run's *training* seconds (``train_wall_s`` in its
``metrics.json``; start-up and data loading excluded), against one run alone, under two settings:

* ``course default``: each process sizes its thread pool with ``course_lib.runtime.cpu_budget``: the
  CPUs it may use, divided among the course processes training at that moment (re-checked every 2 s);
* ``COURSE_THREADS=1``: one thread per process (a teacher's per-kernel budget).

Fair sharing means N runs at once each take about N times as long as one alone (on N or fewer cores).
Writes ``benchmarks/results/concurrent-<machine>.json``. Run it on an otherwise idle machine.
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
SETTINGS = {"course default": {}, "COURSE_THREADS=1": {"COURSE_THREADS": "1"}}


def run_together(chapter: str, steps: int, n: int, extra_env: dict[str, str]) -> list[float]:
    """Start ``n`` runs at once; each one's training seconds."""
    env = {**os.environ, "TQDM_DISABLE": "1"}
    for var in ("OMP_NUM_THREADS", "COURSE_THREADS", "OMP_WAIT_POLICY"):
        env.pop(var, None)
    env.update(extra_env)
    with tempfile.TemporaryDirectory() as tmp:
        procs = [subprocess.Popen([sys.executable, "-m", "course_lib", "train", chapter, "--profile", "smoke",
                                   "--steps", str(steps), "--out", f"{tmp}/run{i}", "--quiet"], env=env, cwd=ROOT,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(n)]
        for p in procs:
            _, err = p.communicate()
            if p.returncode:
                raise RuntimeError(f"run failed: {err.decode()[-2000:]}")
        return [json.loads(Path(f"{tmp}/run{i}/metrics.json").read_text())["train_wall_s"] for i in range(n)]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapter", default="rnn_lm")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", default=None)
    parser.add_argument("--label", default="", help="what code this measures, e.g. 'before the fix (commit ...)'")
    args = parser.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rows = []
    for name, extra in SETTINGS.items():
        alone = None
        for n in args.processes:
            walls = run_together(args.chapter, args.steps, n, extra)
            alone = walls[0] if n == 1 else alone
            row = {"setting": name, "processes": n, "train_s_each": [round(w, 2) for w in walls],
                   "slowest_s": round(max(walls), 2),
                   "slowdown_vs_alone": round(max(walls) / alone, 2) if alone else None}
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"label": args.label, "chapter": args.chapter, "steps": args.steps, "cores": cores,
              "machine": f"cpu{cores}-{platform.machine()}", "date": time.strftime("%Y-%m-%d"), "rows": rows,
              "note": "training seconds of each run (start-up and data loading excluded); slowdown = the slowest "
                      "of N runs at once over one run alone with the same setting"}
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / f"concurrent-{result['machine']}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()

"""Chapter 06's whole study at every label budget: the command line's run, with fine-tuning at 1, 5, 20 and all.

    python benchmarks/masked_audio_table.py --profile class

The notebook fine-tunes (a) and (b) at 5 labels per word only (its time budget); this runs
``course_lib.chapters.masked_audio.run`` (what ``python -m course_lib train masked_audio`` runs) with
``study.finetune_budgets`` = (1, 5, 20, 0) and writes its ``metrics.json`` dict, with the wall time, to
``benchmarks/results/masked_audio-table-<machine>-<profile>.json``, and prints the method x budget table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from course_lib import runtime
    from course_lib.chapters import masked_audio
    from course_lib.profiles import for_profile, override
    from course_lib.train import RunOptions

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="class")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/masked_audio-table-...)")
    ap.add_argument("--report", default=None, metavar="JSON", help="only print the table and verdicts of a saved run")
    args = ap.parse_args(argv)
    if args.report:
        report(json.loads(Path(args.report).read_text()))
        return 0
    cfg = override(for_profile(masked_audio.Config, args.profile), {"study.finetune_budgets": (1, 5, 20, 0)})
    started = time.perf_counter()
    summary = masked_audio.run(cfg, device=args.device, options=RunOptions(progress=False, checkpoint_seconds=None))
    summary["benchmark_wall_s"] = round(time.perf_counter() - started, 1)
    machine = f"cpu{runtime.cpu_budget()[0]}-{platform.machine()}" if args.device in (None, "cpu") else args.device
    name = f"masked_audio-table-{machine}-{args.profile}.json"
    out = Path(args.out) if args.out else ROOT / "benchmarks" / "results" / name
    out.write_text(json.dumps(summary, indent=2) + "\n")
    report(summary)
    print(f"wrote {out} ({summary['benchmark_wall_s']} s)")
    return 0


def report(summary: dict) -> None:
    """The method x budget table (mean ± sd over runs), then at each budget the verdicts of ``compare``
    against the best method without pre-training."""
    from course_lib.chapters.masked_audio import PRETRAINED
    from course_lib.notebook.compare import compare

    acc = summary["metrics"]["accuracy"]
    budgets = list(acc["logmel_stats"])
    print(f"{'method':24s}" + "".join(f"{b + '/word':>16s}" for b in budgets))
    for method, per in acc.items():
        print(f"{method:24s}" + "".join(f"{per[b]['mean']:10.3f}±{per[b]['std']:.3f}" if b in per else f"{'-':>16s}"
                                        for b in budgets))
    for b in budgets:
        runs = {m: per[b]["runs"] for m, per in acc.items() if b in per}
        plain = max((m for m in runs if m not in PRETRAINED), key=lambda m: sum(runs[m]) / len(runs[m]))
        print(f"\n{b} per word, reference: {plain}")
        compare(runs, metric=f"test accuracy, {b} per word", higher_is_better=True, reference=plain, over="runs")


if __name__ == "__main__":
    raise SystemExit(main())

"""Time-to-quality and throughput for every chapter: one command, JSON out, a markdown table.

    python benchmarks/run.py --profile smoke                 # every CLI chapter, this machine
    python benchmarks/run.py --profile class --only rnn_lm   # one chapter
    python benchmarks/run.py --profile smoke --ddp 2 --only rnn_lm   # also 1 vs 2 processes (gloo/nccl)

Each chapter is trained by ``python -m course_lib train CHAPTER --profile P`` in a fresh
process (fixed step budget), and its ``metrics.json`` (quality and baselines, wall time,
throughput, peak memory) is stored with the device, versions and git commit in
``benchmarks/results/<machine>-<profile>.json``. ``benchmarks/RESULTS.md`` is regenerated
from every results file, so results from different machines sit side by side.
Time-to-quality is the training time at the first evaluation that meets the chapter's
target (``TARGETS``), or ``null`` when the budget did not reach it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT))

# chapter -> (metric key in metrics.json["metrics"], dotted for nested values, "<=" or ">=", target)
TARGETS = {
    "attention": ("accuracy", ">=", 0.99),
    "mlm": ("masked_accuracy", ">=", 0.30),
    "gan": ("frechet_distance", "<=", 15.0),
    "contrastive": ("probe_acc.simclr.all", ">=", 0.98),
    "rnn_lm": ("val_nats_per_char", "<=", 1.50),
    "transformer_lm": ("val_nats_per_char", "<=", 1.50),
}


def _machine() -> str:
    import torch
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0).replace(" ", "-")
    return f"cpu{os.cpu_count()}-{platform.machine()}"


def _meets(value: float, op: str, target: float) -> bool:
    return value <= target if op == "<=" else value >= target


def time_to_target(chapter: str, metrics: dict, history: dict) -> float | None:
    """Training seconds at the first evaluation meeting the chapter's target, else None."""
    if chapter not in TARGETS:
        return None
    key, op, target = TARGETS[chapter]
    for record in history.get("eval", []):
        if key in record and _meets(record[key], op, target):
            return record.get("time_s", metrics.get("train_wall_s"))
    value: Any = metrics.get("metrics", {})
    for part in key.split("."):                   # "probe_acc.simclr.all" -> metrics["probe_acc"]["simclr"]["all"]
        value = value.get(part) if isinstance(value, dict) else None
    if value is not None and _meets(value, op, target):
        return metrics.get("train_wall_s")
    return None


def run_chapter(chapter: str, profile: str, device: str | None, nproc: int = 1, seconds: float | None = None,
                timeout: float | None = None, max_seconds: float | None = None,
                settings: tuple[str, ...] = ()) -> dict:
    out = ROOT / "runs" / "benchmarks" / f"{chapter}-{profile}-{nproc}p"
    cmd = [sys.executable, "-m", "course_lib", "train", chapter, "--profile", profile, "--out", str(out), "--quiet",
           "--overwrite"]                        # the benchmark's own folder: each run replaces the last
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "course_lib", *cmd[3:]]
    if device:
        cmd += ["--device", device]
    if seconds:                                  # a planned time budget; the step cap is lifted
        cmd += ["--seconds", str(seconds), "--steps", str(10**7)]
    if max_seconds:
        cmd += ["--max-seconds", str(max_seconds)]
    for setting in settings:                     # config changes, e.g. train.lr=3e-3 (a tuning run)
        cmd += ["--set", setting]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    if nproc > 1:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // nproc))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"chapter": chapter, "nproc": nproc, "settings": list(settings), "status": "timeout",
                "error": f"over {timeout} s"}
    if proc.returncode != 0:
        status = "unsupported" if "does not support DDP" in proc.stderr else "FAIL"
        return {"chapter": chapter, "nproc": nproc, "settings": list(settings), "status": status,
                "error": proc.stderr.strip()[-800:]}
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text()) if (out / "history.json").exists() else {}
    from course_lib.checkpoints import git_commit
    return {"chapter": chapter, "nproc": nproc, "settings": list(settings), "status": "pass",
            "command_wall_s": round(time.perf_counter() - t0, 1), "seconds_cap": max_seconds,
            "git_commit": git_commit(), "date": time.strftime("%Y-%m-%d"),
            "time_to_target_s": time_to_target(chapter, metrics, history),
            "target": TARGETS.get(chapter), **{k: v for k, v in metrics.items() if k not in ("config",)}}


_PEAKS: dict[str, tuple[float | None, str]] = {}


def add_mfu(row: dict, peak_tflops: float | None = None) -> None:
    """Model FLOPs utilisation for chapters that report FLOPs per token (course_lib.flops, eq. 1-2)."""
    from course_lib import flops
    if row.get("status") != "pass" or "model_flops_per_token" not in row:
        return
    device = row.get("device", "cpu")
    if peak_tflops is not None:
        _PEAKS[device] = (peak_tflops * 1e12, "given with --peak-tflops")
    if device not in _PEAKS:                       # measured once per device and invocation
        _PEAKS[device] = flops.peak_flops(device)
    peak, source = _PEAKS[device]
    if peak and device.startswith("cuda"):         # one GPU per process; CPU processes share the cores
        peak *= row["nproc"]
    achieved = row["model_flops_per_token"] * row["throughput"]["value"]     # throughput counts all processes
    row["model_tflops"] = round(achieved / 1e12, 4)
    row["peak_tflops"] = round(peak / 1e12, 4) if peak else None
    row["peak_source"] = source
    row["mfu"] = round(flops.mfu(row["model_flops_per_token"], row["throughput"]["value"], peak), 4) if peak else None


def scaling_lines(rows: list[dict]) -> list[str]:
    """Throughput with N processes relative to 1, per chapter (DDP: gloo on CPU, nccl on GPUs)."""
    single = {r["chapter"]: r for r in rows if r["nproc"] == 1 and r["status"] == "pass"}
    out = []
    for r in rows:
        if r["nproc"] > 1 and r["status"] == "pass" and r["chapter"] in single:
            one, many = single[r["chapter"]]["throughput"], r["throughput"]
            out.append(f"* scaling, {r['chapter']}: 1 process {one['value']} {one['unit']}, {r['nproc']} processes "
                       f"{many['value']} {many['unit']} (x{many['value'] / one['value']:.2f})")
    return [""] + out if out else []


def _changes(row: dict) -> str:
    """The config changes a row ran with (``--set``), or "-" for the profile as it is."""
    return ", ".join(f"`{s}`" for s in row.get("settings") or []) or "-"


def _budget(row: dict) -> str:
    """How the run was bounded: the profile's step count, a planned time budget, or a cut."""
    if row.get("seconds_budget"):
        return f"planned {row['seconds_budget']:g} s"
    if row.get("seconds_cap"):
        return f"steps, cut at {row['seconds_cap']:g} s"
    return "steps"


def write_table() -> Path:
    lines = ["# Benchmark results", "",
             "Generated by `python benchmarks/run.py` from `benchmarks/results/*.json`; one section per machine "
             "and profile. Throughput counts training items (characters, images, sequences) per second, over all "
             "processes. *time to target*: training seconds at the first evaluation reaching the target; None = "
             "not reached within the profile's budget. *MFU*: model FLOPs utilisation (course_lib/flops.py). "
             "*scaling*: `--ddp N` on one machine runs N processes that share its cores (OMP_NUM_THREADS = cores / N), "
             "so on a 2-core CPU x1.0 means DDP's communication costs nothing, not that training got faster.", ""]
    for path in sorted(RESULTS.glob("*.json")):
        data = json.loads(path.read_text())
        if data.get("kind") != "chapters":
            continue
        env = data["environment"]
        lines += [f"## {path.stem}", "",
                  f"{env['machine']}, torch {env['torch']}, last run at commit {env['git_commit']}, {env['date']}", "",
                  "| chapter | procs | changes | budget | steps | train s | command s | throughput | peak RSS MiB "
                  "| quality | baselines | target | time to target s | commit |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in data["rows"]:
            if r["status"] != "pass":
                error = r.get("error", "").splitlines()[-1][:100] if r.get("error") else ""
                lines.append(f"| {r['chapter']} | {r['nproc']} | {_changes(r)} | | {r['status']} | | | | | {error} "
                             "| | | | |")
                continue
            q = ", ".join(f"{k}={v}" for k, v in r.get("metrics", {}).items() if not isinstance(v, dict))
            if r.get("mfu") is not None:
                q += f", MFU={r['mfu']:.1%} ({r['model_tflops']} of {r['peak_tflops']} TFLOP/s)"
            b = ", ".join(f"{k}={v}" for k, v in r.get("baselines", {}).items() if not isinstance(v, dict))
            t = r.get("throughput", {})
            target = r.get("target")
            lines.append(f"| {r['chapter']} | {r['nproc']} | {_changes(r)} | {_budget(r)} | {r.get('steps')} "
                         f"| {r.get('train_wall_s')} | {r.get('command_wall_s')} "
                         f"| {t.get('value')} {t.get('unit', '')} | {r.get('peak_memory_mb', {}).get('rss')} "
                         f"| {q} | {b} | "
                         f"{' '.join(map(str, target)) if target else '-'} | {r.get('time_to_target_s')} | "
                         f"{r.get('git_commit', env['git_commit'])} |")
        lines += scaling_lines(data["rows"])
        lines.append("")
    lines += schedule_lines()
    out = ROOT / "benchmarks" / "RESULTS.md"
    out.write_text("\n".join(lines))
    return out


SCHEDULE_QUALITY = {   # what each chapter's rows measure, and which way is better
    "attention": "test accuracy (higher is better)", "gan": "Fréchet distance (lower is better)",
    "rnn_lm": "validation nats/char (lower is better)", "transformer_lm": "validation nats/char (lower is better)",
    "mlm": "masked-token accuracy on validation, pre-training alone (higher is better)",
    "contrastive": "5-NN accuracy of the validation digits on the encoder's features, pre-training alone "
                   "(higher is better)",
    "masked_audio": "L1 on the hidden steps of held-out speech, pre-training alone (lower is better)"}


def schedule_lines() -> list[str]:
    """The time-budget schedules (``benchmarks/time_schedules.py``): quality per chapter, budget and schedule."""
    lines = []
    for path in sorted(RESULTS.glob("schedules-*.json")):
        rows = [r for r in json.loads(path.read_text())["rows"] if r["status"] == "pass"]
        lines += [f"## Learning-rate schedules under a time budget ({path.stem.removeprefix('schedules-')})", "",
                  "`python benchmarks/time_schedules.py`: the `class` recipe trained for a budget of seconds; *cut*: "
                  "the step schedule stopped by `--max-seconds`; *cosine*: `--seconds` with the timed cosine (the "
                  "schedule before warm-up-stable-decay); *wsd*: `--seconds` with warm-up-stable-decay (the "
                  "default: warm-up over 20% of the seconds, decay over the last 10%; a label in brackets names "
                  "the fractions a row ran with instead). *cut* ends at the profile's last step when that comes "
                  "before the budget. One seed per cell "
                  "unless the seed column says otherwise; steps reached in brackets. "
                  + _recipe_sentence(rows), "",
                  "Quality: " + "; ".join(f"{c}: {SCHEDULE_QUALITY.get(c, '?')}"
                                          for c in sorted({r['chapter'] for r in rows})) + ".", "",
                  f"![quality per budget and schedule]({path.stem}.png)", "",
                  "| chapter | text | budget s | seed | cut | cosine | wsd | wsd - cut |",
                  "|---|---|---|---|---|---|---|---|"]
        cells: dict[tuple, dict[str, dict]] = {}
        for r in rows:
            cells.setdefault((r["chapter"], r["text"] or "-", r["budget_s"], r["seed"]), {})[r["schedule"]] = r
        for (chapter, text, budget, seed), by in sorted(cells.items(), key=lambda kv: kv[0]):
            show = {k: f"{v['quality']:.4f} ({v['steps']})" for k, v in by.items()}
            gap = f"{by['wsd']['quality'] - by['cut']['quality']:+.4f}" if {"wsd", "cut"} <= set(by) else ""
            lines.append(f"| {chapter} | {text} | {budget:g} | {seed} | {show.get('cut', '')} | "
                         f"{show.get('cosine', '')} | {show.get('wsd', '')} | {gap} |")
        lines += _paired_lines(cells)
        lines += _variant_lines(cells)
        lines.append("")
    return lines


def _variant_lines(cells: dict[tuple, dict[str, dict]]) -> list[str]:
    """Schedules measured with a config change (``time_schedules.py --set``): each against cut on the same seeds."""
    import statistics
    groups: dict[tuple, list[tuple[int, float, float]]] = {}
    for (chapter, _text, budget, seed), by in cells.items():
        for label, r in by.items():
            if "[" in label and "cut" in by:
                groups.setdefault((chapter, budget, label), []).append(
                    (seed, r["quality"], r["quality"] - by["cut"]["quality"]))
    out = []
    for (chapter, budget, label), rows in sorted(groups.items()):
        diffs = [d for _, _, d in sorted(rows)]
        spread = f" ± {statistics.stdev(diffs) / len(diffs) ** 0.5:.4f} SE" if len(diffs) >= 2 else ""
        out.append(f"* {chapter}, {budget:g} s, {label}, {len(diffs)} seed(s): {label.split(' ')[0]} - cut = "
                   f"{statistics.mean(diffs):+.4f}{spread} (per seed: {', '.join(f'{d:+.4f}' for d in diffs)})")
    return ["", "Variants (a config change with `time_schedules.py --set`), against cut on the same seeds:", ""] + out \
        if out else []


def _recipe_sentence(rows: list[dict]) -> str:
    """Which batch size and code each chapter's rows were measured with (rows of an older recipe would mislead)."""
    parts = []
    for chapter in sorted({r["chapter"] for r in rows}):
        mine = [r for r in rows if r["chapter"] == chapter]
        batches = sorted({r.get("batch_size") for r in mine if r.get("batch_size")})
        commits = sorted({r.get("git_commit") or "?" for r in mine})
        parts.append(f"{chapter}: batch {', '.join(map(str, batches)) or 'not recorded'}, commit {', '.join(commits)}")
    return "Measured with: " + "; ".join(parts) + "."


def _paired_lines(cells: dict[tuple, dict[str, dict]]) -> list[str]:
    """Per chapter and budget with >= 2 seeds of both: mean wsd - cut over the seeds, with its standard error."""
    import statistics
    from course_lib.notebook.compare import compare
    groups: dict[tuple, list[tuple[float, float]]] = {}
    for (chapter, text, budget, _seed), by in sorted(cells.items()):
        if {"wsd", "cut"} <= set(by):
            groups.setdefault((chapter, text, budget), []).append((by["wsd"]["quality"], by["cut"]["quality"]))
    out = []
    for (chapter, _text, budget), pairs in sorted(groups.items()):
        if len(pairs) >= 2:
            diffs = [w - c for w, c in pairs]
            se = statistics.stdev(diffs) / len(diffs) ** 0.5
            verdict = compare({"wsd": [w for w, _ in pairs], "cut": [c for _, c in pairs]}, metric="quality",
                              higher_is_better="higher is better" in SCHEDULE_QUALITY.get(chapter, ""),
                              reference="cut", quiet=True)["wsd"]
            out.append(f"* {chapter}, {budget:g} s, {len(diffs)} seeds: wsd - cut = {statistics.mean(diffs):+.4f} "
                       f"± {se:.4f} (standard error of the paired mean; per seed: "
                       f"{', '.join(f'{d:+.4f}' for d in diffs)}); verdict (the course's comparison rule): "
                       f"**{verdict.outcome}**")
    return [""] + out if out else []


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--only", default=None, help="comma-separated chapter names")
    parser.add_argument("--device", default=None)
    parser.add_argument("--ddp", type=int, default=1, help="also run with this many processes (torchrun)")
    parser.add_argument("--seconds", type=float, default=None,
                        help="train each chapter for a time budget of this many seconds: the learning-rate schedule "
                             "is planned over it (the row records the steps reached)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="hard cap: cut each chapter's step schedule after this many seconds")
    parser.add_argument("--timeout", type=float, default=None, help="give up on a chapter's whole command after this")
    parser.add_argument("--parallel", action="store_true",
                        help="run the chapters at the same time (one process each, sharing the device): to fit "
                             "every chapter into a short GPU lease; rows record how many ran at once, and their "
                             "throughput is shared, not the device's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config change passed to every chapter's run (a tuning run; rows are kept per change set)")
    parser.add_argument("--out", default=None,
                        help="results JSON (default benchmarks/results/<machine>-<profile>.json)")
    parser.add_argument("--peak-tflops", type=float, default=None,
                        help="device peak for MFU (default: datasheet bf16 for known GPUs, measured matmul on CPU)")
    return parser


def main() -> int:
    from course_lib.checkpoints import git_commit
    from course_lib.profiles import resolve_profile
    from course_lib.chapters.registry import CHAPTERS

    parser = build_parser()
    args = parser.parse_args()
    profile = resolve_profile(args.profile)
    chapters = args.only.split(",") if args.only else list(CHAPTERS)
    rows = []
    unknown = [c for c in chapters if c not in CHAPTERS]
    if unknown:
        parser.error(f"unknown chapter(s) {unknown}; expected some of: {', '.join(CHAPTERS)}")
    import torch
    path = Path(args.out) if args.out else RESULTS / f"{_machine()}-{profile}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(path.read_text())["rows"] if path.exists() else []
    jobs = [(chapter, nproc) for chapter in chapters for nproc in sorted({1, args.ddp})]

    def one(job: tuple[str, int]) -> dict:
        row = run_chapter(job[0], profile, args.device, job[1], args.seconds, args.timeout, args.max_seconds,
                          tuple(args.set))
        if args.parallel:
            row["ran_at_once"] = len(jobs)
        return row

    def record(row: dict) -> None:
        add_mfu(row, args.peak_tflops)
        rows.append(row)
        print(json.dumps({k: row.get(k) for k in ("chapter", "nproc", "status", "train_wall_s", "throughput",
                                                   "metrics", "time_to_target_s")}), flush=True)
        result = {"kind": "chapters", "environment": {
            "machine": _machine(), "torch": str(torch.__version__), "python": platform.python_version(),
            "git_commit": git_commit(), "date": time.strftime("%Y-%m-%d"), "profile": profile},
            "rows": []}
        merged = {(r["chapter"], r["nproc"], tuple(r.get("settings") or ())): r for r in previous + rows}
        result["rows"] = list(merged.values())
        path.write_text(json.dumps(result, indent=2) + "\n")              # after every chapter: a cut run keeps rows

    if args.parallel:
        from concurrent.futures import ThreadPoolExecutor, as_completed
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            for future in as_completed([pool.submit(one, job) for job in jobs]):
                record(future.result())
    else:
        for job in jobs:
            record(one(job))
    print(f"wrote {path} and {write_table()}")
    return 0 if all(r["status"] in ("pass", "unsupported") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())

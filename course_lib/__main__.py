"""Command line: ``python -m course_lib {train,run-notebooks,env}`` (see README)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _train(args: argparse.Namespace) -> int:
    from .profiles import for_profile
    from .tasks import chapter_module

    module = chapter_module(args.chapter)
    overrides = {"steps": args.steps, "seed": args.seed}
    if args.text is not None:
        if "text_file" not in module.Config.__dataclass_fields__:
            raise SystemExit(f"--text is only for text chapters; {args.chapter} does not take it")
        overrides["text_file"] = str(Path(args.text).resolve())
    cfg = for_profile(module.Config, args.profile, **overrides)
    out = Path(args.out or f"runs/{args.chapter}-{cfg.profile}")
    metrics = module.run(cfg, device=args.device, out_dir=out, resume=args.resume,
                         progress=not args.quiet, max_seconds=args.seconds)
    from .train import distributed_info
    if distributed_info()[0] == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(json.dumps({k: metrics[k] for k in ("chapter", "profile", "device", "steps", "wall_s",
                                                  "metrics", "baselines")}, indent=2))
        print(f"wrote {out / 'metrics.json'}")
    return 0


def _run_notebooks(args: argparse.Namespace) -> int:
    from .notebook_runner import run_notebooks
    ok = run_notebooks(profile=args.profile, only=args.only, out_dir=args.out, inplace=args.inplace,
                       timeout=args.timeout)
    return 0 if ok else 1


def _env(args: argparse.Namespace) -> int:
    from .runtime import print_environment
    print_environment(args.profile, device=args.device)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one chapter's model and write DIR/metrics.json")
    t.add_argument("chapter", help="chapter name, e.g. rnn_lm")
    t.add_argument("--profile", default=None, help="smoke | class | full (default: $COURSE_PROFILE or class)")
    t.add_argument("--steps", type=int, default=None, help="override the profile's step budget")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None, help="auto | cpu | cuda[:N] | mps (default: auto)")
    t.add_argument("--out", default=None, help="output folder (default: runs/CHAPTER-PROFILE)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--text", default=None, help="text chapters: train on this UTF-8 file (split 90/10)")
    t.add_argument("--seconds", type=float, default=None, help="stop training after this many seconds")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)

    r = sub.add_parser("run-notebooks", help="execute notebooks headless; write executed copies, HTML, summary")
    r.add_argument("--profile", default=None)
    r.add_argument("--only", default=None, help="substring of the notebook names to run, e.g. 01")
    r.add_argument("--out", default="artifacts/notebooks", help="folder for executed copies, HTML and summary")
    r.add_argument("--inplace", action="store_true",
                   help="also write outputs back into notebooks/ (how committed outputs are made)")
    r.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    r.set_defaults(func=_run_notebooks)

    e = sub.add_parser("env", help="print the environment report")
    e.add_argument("--profile", default=None)
    e.add_argument("--device", default=None)
    e.set_defaults(func=_env)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

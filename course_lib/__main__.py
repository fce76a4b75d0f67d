"""Command line: ``python -m course_lib {train,run-notebooks,env,editions,nbgrader,bundle,site,slides,translate,
timings}`` (``python -m course_lib COMMAND --help``; docs/command_line.md)."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main", "TIME_BUDGET_STEP_CAP"]

TIME_BUDGET_STEP_CAP = 10_000_000     # --seconds without --steps: the steps never bind before the seconds do


def _check_train_args(args: argparse.Namespace) -> None:
    """Reject bad arguments before any work, saying what was expected."""
    for name in ("seconds", "max_seconds", "checkpoint_seconds"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"--{name.replace('_', '-')} expects a positive number of seconds, got {value}")
    if args.seed is not None and not 0 <= args.seed < 2**32:
        raise ValueError(f"--seed expects an integer in [0, 2**32 - 1], got {args.seed}")
    from .chapters.char_lm import BUILTIN_TEXTS
    if args.text is not None and not Path(args.text).is_file() and args.text not in BUILTIN_TEXTS:
        what = "is a folder" if Path(args.text).is_dir() else "does not exist"
        raise FileNotFoundError(f"--text expects a UTF-8 text file or one of {', '.join(BUILTIN_TEXTS)} (a text "
                                f"that ships with the course); {args.text} {what}")


@contextlib.contextmanager
def _exclusive_out(out: Path):
    """Make sure ``out`` is a writable folder, and hold its lock file while a run writes there."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=out):
        pass
    with open(out / ".lock", "w") as lock:
        try:
            import fcntl
        except ImportError:                              # Windows: no advisory locks; one writer is on you
            yield
            return
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"another training run is writing to {out}; wait for it, or choose another --out"
                               ) from None
        yield


RUN_FILES = ("checkpoint.pt", "metrics.json", "history.json")


def _settings_tag(cfg: object) -> str:
    """Six hex digits of the run's settings (its whole config), so runs with other settings never share a folder."""
    import dataclasses
    import hashlib
    text = json.dumps(dataclasses.asdict(cfg), sort_keys=True, default=str)  # type: ignore[call-overload]
    return hashlib.sha256(text.encode()).hexdigest()[:6]


def _output_folder(args: argparse.Namespace, cfg: object) -> Path:
    """``--out``, else a new folder per run: runs/CHAPTER-PROFILE/DATE-TIME-TAG, with ``latest`` pointing to it.

    TAG is :func:`_settings_tag`; ``--resume`` without ``--out`` continues the newest run with the same settings.
    """
    if args.out:
        return Path(args.out)
    parent = Path("runs") / f"{args.chapter}-{cfg.profile}"  # type: ignore[attr-defined]
    tag = _settings_tag(cfg)
    if args.resume:
        same = sorted(p for p in parent.glob(f"*-{tag}") if p.is_dir())
        if same:
            return same[-1]
    from .distributed import distributed_info
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if distributed_info()[0] == 0:                      # one folder for every process of a torchrun job
        out = parent / f"{stamp}-{tag}"
        while out.exists():                             # two runs started in the same second
            stamp = stamp + "x"
            out = parent / f"{stamp}-{tag}"
        out.mkdir(parents=True)
        latest = parent / "latest"
        try:
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(out.name, target_is_directory=True)
        except OSError:                                 # no symbolic links here (Windows without rights)
            (parent / "latest.txt").write_text(out.name + "\n")
        return out
    return parent / "latest"


def _refuse_to_overwrite(out: Path) -> None:
    """A folder holding another run's checkpoint or metrics is never silently replaced."""
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        what = ""
        try:
            made = json.loads((out / "metrics.json").read_text())
            what = f" ({made.get('chapter')}, {made.get('profile')} profile, {made.get('steps')} steps)"
        except (OSError, ValueError):
            pass
        raise FileExistsError(f"{out} already holds a run{what}: {', '.join(found)}. Use --resume to continue it, "
                              f"a new --out, or --overwrite to replace it")


def _train(args: argparse.Namespace) -> int:
    from .chapters.registry import get_chapter
    from .distributed import distributed_info
    from .profiles import parse_setting
    from .runtime import compile_backend
    from .task import RunOptions

    chapter = get_chapter(args.chapter)
    _check_train_args(args)
    backend = compile_backend(args.compile)             # --compile, else $COURSE_COMPILE; checked before training
    if args.precision is not None:                      # read by the loop (runtime.pick_precision)
        os.environ["COURSE_PRECISION"] = args.precision
    overrides = {"train.steps": args.steps, "train.seed": args.seed, "train.seconds": args.seconds}
    if args.seconds is not None and args.steps is None:
        # a time budget ends the run when its seconds are spent, not at the profile's step budget (which a
        # long budget on a fast machine would reach first and stop early); --steps N still caps it
        overrides["train.steps"] = TIME_BUDGET_STEP_CAP
    if args.text is not None:
        if not hasattr(chapter.Config(), "data") or not hasattr(chapter.Config().data, "text_file"):
            raise ValueError(f"--text is only for text chapters; {args.chapter} does not take it")
        from .chapters.char_lm import BUILTIN_TEXTS     # e.g. "songci": the Chinese poems that ship with the course
        builtin = args.text in BUILTIN_TEXTS and not Path(args.text).is_file()
        overrides["data.text_file"] = args.text if builtin else str(Path(args.text).resolve())
    for setting in args.set:                            # --set train.lr=3e-3 (typed like the field)
        key, value = parse_setting(chapter.config(args.profile), setting)
        overrides[key] = value
    cfg = chapter.config(args.profile, overrides)
    out = _output_folder(args, cfg)
    main_rank = distributed_info()[0] == 0
    if main_rank and not args.resume and not args.overwrite:
        _refuse_to_overwrite(out)
    with _exclusive_out(out) if main_rank else contextlib.nullcontext():
        options = RunOptions(out_dir=out, resume=args.resume, progress=not args.quiet, max_seconds=args.max_seconds,
                             compile_backend=backend, checkpoint_seconds=args.checkpoint_seconds)
        metrics = chapter.run(cfg, device=args.device, options=options)
        metrics["peak_memory_mb"] = _peak_memory_mb(metrics.get("device", "cpu"))
        if main_rank:
            (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
            print(json.dumps({k: metrics[k] for k in ("chapter", "profile", "device", "steps", "wall_s",
                                                      "metrics", "baselines")}, indent=2, ensure_ascii=False))
            if "sample" in metrics:                     # a language model's own text, the quickest sanity check
                print(f"sample (temperature {metrics['sample']['temperature']}, top {metrics['sample']['top_k']}):\n"
                      f"{metrics['sample']['text']}")
            print(f"wrote {out / 'metrics.json'}")
    return 0


def _peak_memory_mb(device: str) -> dict[str, float | None]:
    """Peak resident memory of this process (and peak CUDA allocation when on a GPU), MiB.

    ``rss`` is None where the POSIX ``resource`` module does not exist (Windows): the run's
    metrics are written all the same.
    """
    import sys as _sys

    import torch

    try:
        import resource
    except ImportError:
        peak: dict[str, float | None] = {"rss": None}
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 * 1024 if _sys.platform == "darwin" else 1024)
        peak = {"rss": round(rss, 1)}
    if device.startswith("cuda") and torch.cuda.is_available():
        peak["cuda_allocated"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return peak


def _run_notebooks(args: argparse.Namespace) -> int:
    from .tooling.notebook_runner import run_notebooks
    ok = run_notebooks(profile=args.profile, only=args.only, out_dir=args.out, inplace=args.inplace,
                       timeout=args.timeout)
    return 0 if ok else 1


def _env(args: argparse.Namespace) -> int:
    from .runtime import print_environment
    print_environment(args.profile, device=args.device)
    return 0


def _nbgrader(args: argparse.Namespace) -> int:
    from .tooling.grading import write_source
    written = write_source(args.out, args.only)
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} assignments in {Path(args.out) / 'source'}; next, from the repository root: "
          f"nbgrader generate_assignment {written[0].parent.name if written else 'NAME'} (docs/classroom.md)")
    return 0


def _slides(args: argparse.Namespace) -> int:
    from .tooling.slides import build_slides
    decks = build_slides(args.out, args.only)
    print(f"wrote {len(decks)} decks and {Path(args.out) / 'index.html'} (open it in a browser; nothing is fetched)")
    return 0


def _editions(args: argparse.Namespace) -> int:
    from .tooling.editions import make_editions
    index = make_editions(args.out)
    missing = [r for r in index["exercises"] if not r["solution"]]
    print(f"wrote {args.out}/student/ ({len(index['notebooks'])} notebooks, {len(index['exercises'])} exercises "
          f"stubbed) and {args.out}/teacher/ (notebooks, solutions/, SOLUTIONS.md)")
    for r in missing:
        print(f"warning: {r['notebook']} cell {r['cell']}: no solution found for {r['checker']}", file=sys.stderr)
    return 0


def _translate(args: argparse.Namespace) -> int:
    from .tooling import messages, mistakes, translation
    chinese = args.lang == "zh"                 # the common-mistakes page and the message catalog: Chinese only
    if args.run is not None:
        return 0 if translation.run_editions(args.lang, args.run or None) else 1
    if args.update:
        for notebook in translation.english_notebooks():
            counts = translation.update_catalog(notebook, args.lang)
            print(f"{translation.catalog_path(notebook, args.lang).relative_to(translation.ROOT)}: "
                  + ", ".join(f"{v} {k}" for k, v in counts.items()))
        if chinese:
            added = messages.add_missing()
            print(f"{messages.CATALOG.relative_to(translation.ROOT)}: {len(added)} new message(s) to translate")
    if args.check or args.update:
        problems = [str(p) for p in translation.check(args.lang) + translation.doc_problems(args.lang)]
        problems += [p for p in [mistakes.page_problem()] if p] if chinese and not problems else []
        problems += messages.problems() if chinese else []
        print("\n".join(problems + [f"{len(problems)} problem(s) in the {translation.LANGUAGES[args.lang]} edition"]))
        return 1 if problems and args.check else 0
    written = translation.write_editions(args.lang) + ([mistakes.write_page()] if chinese else [])
    for path in written:
        print(f"wrote {path.relative_to(translation.ROOT)}")
    return 0


def _timings(args: argparse.Namespace) -> int:
    from .tooling.timings import README_END, README_START, README_ZH, readme_block
    if not args.write:
        print(readme_block())
        return 0
    root = Path(__file__).resolve().parents[1]
    for name, lang in (("README.md", "en"), (README_ZH, "zh")):
        readme = root / name
        if lang != "en" and not readme.exists():
            continue
        text = readme.read_text(encoding="utf-8")
        if README_START not in text or README_END not in text:
            raise ValueError(f"{name} has no timings markers; expected a line {README_START!r} and {README_END!r}")
        head, rest = text.split(README_START, 1)
        readme.write_text(head + readme_block(lang=lang) + rest.split(README_END, 1)[1], encoding="utf-8")
        print(f"wrote the timings table into {name}")
    return 0


def _site(args: argparse.Namespace) -> int:
    from .tooling.site import build_site
    out = build_site(args.out, quiet=not args.verbose)
    print(f"wrote the course website to {out}/ (open index.html in a browser)")
    return 0


def _bundle(args: argparse.Namespace) -> int:
    from .tooling.bundle import prepare_classroom
    manifest = prepare_classroom(profile=args.profile, only=args.only, verify_only=args.verify, device=args.device,
                                 progress=not args.quiet, steps=args.steps)
    return 0 if manifest["ok"] else 1


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (the docs' commands are checked against it: ``tests/test_docs_commands.py``)."""
    parser = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one chapter's model and write DIR/metrics.json")
    t.add_argument("chapter", help="chapter name, e.g. rnn_lm")
    t.add_argument("--profile", default=None, help="smoke | class | full (default: $COURSE_PROFILE or class)")
    t.add_argument("--steps", type=int, default=None, help="override the profile's step budget")
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--device", default=None, help="auto | cpu | cuda[:N] | mps (default: auto)")
    t.add_argument("--precision", default=None, choices=("auto", "bf16", "fp16", "fp32"),
                   help="auto (default: $COURSE_PRECISION or what fits the device: bf16 on a GPU that has it, "
                        "fp16 + gradient scaler on one that does not, fp32 on CPU/MPS)")
    t.add_argument("--out", default=None, help="output folder (default: a new runs/CHAPTER-PROFILE/DATE-TIME-TAG "
                                                   "per run, TAG from the settings; runs/CHAPTER-PROFILE/latest "
                                                   "points to the newest)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (without --out: the "
                                                         "newest run with the same settings)")
    t.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    t.add_argument("--text", default=None, help="text chapters: train on this UTF-8 file (split 90/10), or on "
                                                "'songci', the Song ci poems in Chinese that ship with the course")
    t.add_argument("--seconds", type=float, default=None, metavar="S",
                   help="time budget: the learning-rate schedule runs over S seconds of training, which then ends "
                        "(the profile's step budget does not cut it short; --steps N still caps it)")
    t.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="hard cap: stop after S seconds even if the schedule has not finished")
    t.add_argument("--checkpoint-seconds", type=float, default=60.0, metavar="S",
                   help="also checkpoint every S seconds of training (default 60), so a killed run loses at most S")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change one config field, dotted and typed like the field, e.g. --set train.lr=3e-3 "
                        "--set model.hidden_dim=384 (repeatable; metrics.json records the config)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--compile", nargs="?", const="inductor", default=None, metavar="BACKEND",
                   help="train through torch.compile (default backend inductor; same as $COURSE_COMPILE)")
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

    d = sub.add_parser("editions", help="write student notebooks (solutions stubbed) and the teacher edition")
    d.add_argument("--out", default="artifacts/editions",
                   help="output folder (default: artifacts/editions/, git-ignored)")
    d.set_defaults(func=_editions)

    g = sub.add_parser("nbgrader", help="write nbgrader assignments: autograded answers + locked test cells")
    g.add_argument("--out", default="artifacts/nbgrader",
                   help="nbgrader course folder (default: artifacts/nbgrader/, what nbgrader_config.py names)")
    g.add_argument("--only", default=None, help="only notebooks whose name starts with this (e.g. 01_)")
    g.set_defaults(func=_nbgrader)

    b = sub.add_parser("bundle", help="prepare an offline classroom machine: data caches + chapter checkpoints")
    b.add_argument("--profile", default=None, help="smoke | class | full (default: $COURSE_PROFILE or class)")
    b.add_argument("--only", default=None, help="comma-separated chapters (default: every available chapter)")
    b.add_argument("--verify", action="store_true", help="only check caches and checkpoints; train nothing")
    b.add_argument("--device", default=None, help="auto | cpu | cuda[:N] | mps (default: auto)")
    b.add_argument("--steps", type=int, default=None, help="override every chapter's step budget (a rehearsal)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=_bundle)

    w = sub.add_parser("site", help="build the course website from the committed notebooks (nothing executes)")
    w.add_argument("--out", default="artifacts/site", help="output folder (default: artifacts/site/, git-ignored)")
    w.add_argument("--verbose", action="store_true", help="show MkDocs' log")
    w.set_defaults(func=_site)

    sl = sub.add_parser("slides", help="one reveal.js deck per chapter from the cells tagged for slides (offline)")
    sl.add_argument("--out", default="artifacts/slides", help="output folder (default: artifacts/slides/)")
    sl.add_argument("--only", default=None, help="only notebooks whose name starts with this (e.g. 01_)")
    sl.set_defaults(func=_slides)

    tr = sub.add_parser("translate", help="build the translated notebooks (notebooks-zh/) from notebooks/ and "
                                          "translations/; --check lists stale or missing translations")
    tr.add_argument("--lang", default="zh", help="language (default zh)")
    tr.add_argument("--update", action="store_true",
                    help="bring the catalogs in step with the English notebooks (flags what to translate)")
    tr.add_argument("--check", action="store_true", help="only list problems; exit 1 if there is one")
    tr.add_argument("--run", nargs="?", const="", default=None, metavar="NN",
                    help="execute the editions (those starting with NN, e.g. 05) and keep their outputs")
    tr.set_defaults(func=_translate)

    m = sub.add_parser("timings", help="learner and machine time per notebook (one source for every timing figure)")
    m.add_argument("--write", action="store_true", help="write the table into README.md between its markers")
    m.set_defaults(func=_timings)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt as err:
        print(f"interrupted: {err}" if str(err) else "interrupted", file=sys.stderr)
        return 130
    except OSError as err:                       # files and folders: one line, naming the path
        named = err.filename is not None and err.strerror is not None
        print(f"error: {err.filename}: {err.strerror}" if named else f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, ImportError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

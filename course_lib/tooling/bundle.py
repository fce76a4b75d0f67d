"""Offline classroom bundle: build every data cache and train (or verify) every chapter's checkpoint.

A teacher runs this once on the classroom machine (or on a shared folder named by
``COURSE_DATA_DIR``) before class, with the network available or not: all data
comes from installed packages. Afterwards nothing is downloaded and nobody trains
from scratch unless they want to.

For each chapter of :data:`course_lib.chapters.registry.CHAPTERS`, its checkpoints live in
``data_dir()/checkpoints/<chapter>-<profile>/``, and each is judged by the one checkpoint
policy (:func:`course_lib.checkpoints.inspect` against the chapter's runs for the profile):

* missing, or interrupted: train (``run(..., options=RunOptions(resume=True))`` continues an interrupted run exactly);
* finished runs of this config: verified, nothing trained;
* stale (made by other settings or an older course_lib) or unreadable: moved aside to
  ``<dir>.stale-<time>`` and re-trained (``verify_only`` reports it instead).

A manifest ``data_dir()/bundle-<profile>.json`` lists the caches (with SHA-256), and per
chapter the status, checkpoint digest, config hash, step and metrics.

    python -m course_lib bundle --profile class            # everything
    python -m course_lib bundle --profile smoke --only attention,rnn_lm
    python -m course_lib bundle --profile class --verify   # check only, train nothing
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from pathlib import Path
from collections.abc import Callable
from typing import Any

from .. import checkpoints
from ..chapters.base import Chapter
from ..chapters.registry import CHAPTERS, get_chapter
from ..data.cache import atomic_write_bytes, data_dir, read_only
from ..task import RunOptions

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
    from ..chapters import masked_audio, mlm
    from ..data import images, text
    from ..profiles import for_profile

    built: list[dict[str, Any]] = []
    _timed("plays", text.load_plays, built)
    _timed("MNIST-5k", images.load_mnist5k, built)
    _timed("8x8 digits (scikit-learn)", images.load_digits8x8, built)
    _timed(f"WordPiece tokenizer ({profile})", lambda: mlm.prepare_data(for_profile(mlm.Config, profile)), built)
    _timed(f"spoken keywords, log-mel ({profile})",
           lambda: masked_audio.frames_for(for_profile(masked_audio.Config, profile)), built)
    _timed(f"unlabelled spoken phrases, log-mel ({profile})",
           lambda: masked_audio.pool_for(for_profile(masked_audio.Config, profile)), built)
    return {"built": built, "files": _cache_files()}


def _cache_files() -> list[dict[str, Any]]:
    """The cache entries now in the data folder, with their sizes and SHA-256."""
    return [{"file": p.name, "bytes": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted((data_dir() / "cache").glob("*")) if p.is_file() and not p.name.endswith(".sha256")
            and not p.name.startswith(".")]


_VERDICT = {"finished": "ok", "missing": "missing", "interrupted": "incomplete", "stale": "stale",
            "unreadable": "stale"}
_ORDER = ("stale", "incomplete", "missing", "ok")          # the folder's verdict is its worst checkpoint's


def verify_checkpoints(folder: Path, chapter: Chapter, cfg: Any) -> tuple[str, str, list[dict[str, Any]]]:
    """Judge every run ``chapter`` checkpoints for ``cfg`` in ``folder``: ``(verdict, reason, details)``.

    The verdict is ``"ok"`` (all finished runs of ``cfg``), ``"missing"``, ``"incomplete"``
    (interrupted: resumable) or ``"stale"`` (other settings, or unreadable).
    """
    details, verdicts = [], []
    for sub, setup in chapter.checkpointed(cfg).items():
        status = checkpoints.inspect(folder / sub, setup.fingerprint(), setup.train.steps)
        verdicts.append((_VERDICT[status.kind], f"{sub}: {status.reason}" if sub else status.reason))
        if status.state is not None:
            prov = status.state.get("provenance") or {}
            details.append({"file": str(status.path.relative_to(folder)), "sha256": _sha256(status.path),
                            "step": status.step, "kind": status.kind, "config_hash": prov.get("config_hash"),
                            "git_commit": prov.get("git_commit"), "metrics": prov.get("metrics", {})})
    worst = min(verdicts, key=lambda v: _ORDER.index(v[0]))
    reason = "; ".join(r for v, r in verdicts if v == worst[0])
    if worst[0] == "ok":
        reason = f"{len(verdicts)} checkpoint(s) are finished runs of the {getattr(cfg, 'profile', '?')} config"
    return worst[0], reason, details


def prepare_chapter(chapter: str, profile: str, verify_only: bool = False, device: str | None = None,
                    progress: bool = True, steps: int | None = None) -> dict[str, Any]:
    """Train or verify one chapter's checkpoints; returns its manifest entry (``status`` says which).

    ``steps`` overrides the profile's step budget (a quick rehearsal); the checkpoints'
    provenance then records that budget, so a later run without it re-trains.
    """
    ch = get_chapter(chapter)
    cfg = ch.config(profile, {"train.steps": steps})
    folder = checkpoint_dir(chapter, profile)
    status, reason, details = verify_checkpoints(folder, ch, cfg)
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
        print(f"  {chapter}: {reason}; moved the old checkpoints to {aside.name} and re-training", flush=True)
    t0 = time.perf_counter()
    metrics = ch.run(cfg, device=device, options=RunOptions(out_dir=folder, resume=True, progress=progress))
    atomic_write_bytes(metrics_file, (json.dumps(metrics, indent=2) + "\n").encode())
    after, reason_after, details = verify_checkpoints(folder, ch, cfg)
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
    ``manifest["ok"]`` is True when every requested chapter is trained or verified.
    """
    import torch

    from .. import __version__
    from ..profiles import resolve_profile

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
    caches = build_data_caches(profile) if data and not verify_only else {"built": [], "files": _cache_files()}
    results: dict[str, Any] = {}
    for chapter in chapters:
        print(f"chapter {chapter} ...", flush=True)
        with read_only() if verify_only else contextlib.nullcontext():   # --verify writes nothing but its manifest
            results[chapter] = prepare_chapter(chapter, profile, verify_only, device, progress, steps)
        r = results[chapter]
        why = f" ({r['reason']})" if r["status"] not in {"trained", "verified"} else ""
        print(f"  {chapter}: {r['status']}{why}" + (f" in {r['wall_s']} s" if "wall_s" in r else ""), flush=True)
    ok = all(r["status"] in {"trained", "verified"} for r in results.values())
    manifest = {"format": "course_lib.bundle/1", "ok": ok, "profile": profile, "steps_override": steps,
                "data_dir": str(data_dir()),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git_commit": checkpoints.git_commit(),
                "course_lib": __version__, "torch": str(torch.__version__),
                "wall_s": round(time.perf_counter() - t0, 1), "caches": caches, "chapters": results}
    path = data_dir() / f"bundle-{profile}.json"
    atomic_write_bytes(path, (json.dumps(manifest, indent=2) + "\n").encode())
    print(f"{'ready' if ok else 'NOT ready'}: wrote {path}", flush=True)
    return manifest

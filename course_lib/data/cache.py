"""Processed-data cache: files under ``data/cache`` keyed by a hash of their source.

A cache entry is a file plus a ``.sha256`` sidecar holding the file's own digest.
A missing, truncated or tampered entry is detected and rebuilt, never trusted.
Files are written to a temporary name and moved into place with ``os.replace``,
so a crash mid-write cannot leave a half-written entry behind.

The cache folder is ``$COURSE_DATA_DIR`` if set, else the repository's ``data/``
folder (git-ignored), else ``~/.cache/course_lib``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

__all__ = ["data_dir", "digest_files", "digest_text", "cached_file", "atomic_write_bytes", "read_only",
           "read_shipped"]

_READ_ONLY = contextvars.ContextVar("course_cache_read_only", default=False)


@contextlib.contextmanager
def read_only() -> Iterator[None]:
    """Inside, :func:`cached_file` builds a missing entry in memory and writes nothing (``bundle --verify``)."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def _umask() -> int:
    """The process's umask (reading it means setting it; it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def data_dir() -> Path:
    """The folder for caches and checkpoints (created if needed)."""
    env = os.environ.get("COURSE_DATA_DIR")
    if env:
        path = Path(env)
    else:
        repo_data = Path(__file__).resolve().parents[2] / "data"
        path = repo_data if repo_data.is_dir() and os.access(repo_data, os.W_OK) \
            else Path.home() / ".cache" / "course_lib"
    if _READ_ONLY.get():
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(err.errno, f"cannot create the course's data folder ({err.strerror}); set COURSE_DATA_DIR "
                                 f"to a writable folder", str(path)) from None
    return path


def read_shipped(path: Path, sha256: str, what: str) -> bytes:
    """The bytes of a data file that ships with the course, after checking its SHA-256; a clear error if not."""
    try:
        payload = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} is missing: reinstall the course (pip install -e .) "
                                f"or restore it with git") from None
    digest = hashlib.sha256(payload).hexdigest()
    if digest != sha256:
        raise ValueError(f"{path} is damaged (SHA-256 {digest[:16]}..., expected {sha256[:16]}...): "
                         f"restore it with git or reinstall the course")
    return payload


def digest_files(paths: Iterable[Path]) -> str:
    """SHA-256 over the names and bytes of ``paths`` (sorted), as hex."""
    h = hashlib.sha256()
    for p in sorted(Path(p) for p in paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def digest_text(*parts: str) -> str:
    """SHA-256 of the given strings, as hex."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())        # mkstemp makes 0600; a shared class folder needs the umask's mode
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename != str(path):   # disk full, a folder in the way: name the file
            raise OSError(err.errno, f"cannot write {path} ({err.strerror or err})", str(path)) from err
        raise


def _passes(check: Callable[[bytes], object] | None, payload: bytes) -> bool:
    if check is None:
        return True
    try:
        check(payload)
    except Exception:                          # any failure to read it back means: not what we wrote
        return False
    return True


def cached_file(name: str, source_digest: str, build: Callable[[], bytes],
                check: Callable[[bytes], object] | None = None) -> bytes:
    """Return the bytes cached as ``name`` for ``source_digest``, building them if needed.

    ``build()`` makes the bytes from the source. The entry is valid only if its sidecar digest
    matches the file and, when given, ``check(payload)`` raises nothing (an entry that was
    replaced by well-formed but wrong content, with a recomputed digest); otherwise it is rebuilt.
    """
    folder = data_dir() / "cache"
    path = folder / f"{name}-{source_digest[:16]}"
    sidecar = path.with_name(path.name + ".sha256")
    if path.is_file() and sidecar.is_file():
        payload = path.read_bytes()
        if hashlib.sha256(payload).hexdigest() == sidecar.read_text().strip() and _passes(check, payload):
            return payload
    payload = build()
    if not _READ_ONLY.get():
        atomic_write_bytes(path, payload)
        atomic_write_bytes(sidecar, hashlib.sha256(payload).hexdigest().encode())
    return payload

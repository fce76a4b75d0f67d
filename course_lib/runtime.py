"""Runtime: device choice, mixed precision, seeding and the environment report.

Device preference is cuda > mps > cpu, overridable by an argument or
``$COURSE_DEVICE``. Precision fits the device (:func:`pick_precision`): bf16 autocast
on a GPU that computes in bf16 (Ampere and later), fp16 autocast with a gradient
scaler on one that does not (a T4, a V100), float32 on CPU and MPS; ``$COURSE_PRECISION``
forces one. Every notebook prints :func:`environment_report` at the top.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import random
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "pick_device",
    "rng_state",
    "set_rng_state",
    "PRECISIONS",
    "pick_precision",
    "autocast",
    "grad_scaler",
    "configure_device",
    "cpu_budget",
    "training_processes",
    "training_slot",
    "configure_threads",
    "compile_backend",
    "seed_everything",
    "environment_report",
    "print_environment",
]

_DEVICE_TYPES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(preference: str | torch.device | None = None) -> torch.device:
    """Return the device to use: ``preference``, else ``$COURSE_DEVICE``, else cuda > mps > cpu.

    ``preference`` may be ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``.
    Asking for a device that is not present raises ``RuntimeError``.
    """
    if isinstance(preference, torch.device):
        preference = str(preference)
    choice = (preference or os.environ.get("COURSE_DEVICE") or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = choice.split(":")[0]
    if kind not in _DEVICE_TYPES:
        raise ValueError(f"unknown device {choice!r}; expected 'auto', 'cpu', 'cuda[:N]' or 'mps'")
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False "
                           "(CPU-only torch build, or no NVIDIA driver); use --device cpu")
    if kind == "mps" and not _mps_available():
        raise RuntimeError("device 'mps' requested but torch.backends.mps.is_available() is False")
    return torch.device(choice)


PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _cuda_bf16(device: torch.device) -> bool:
    """Whether this GPU computes in bf16 natively (compute capability >= 8.0), not by emulation."""
    return torch.cuda.get_device_capability(device)[0] >= 8


def pick_precision(device: torch.device | str, choice: str | None = None) -> str:
    """``"bf16"``, ``"fp16"`` or ``"fp32"``: ``choice``, else ``$COURSE_PRECISION``, else what fits the device.

    ``auto``: bf16 autocast on a CUDA GPU with native bf16, fp16 autocast (with a gradient scaler,
    :func:`grad_scaler`) on an older one, float32 on CPU and MPS. Forcing ``bf16``/``fp16`` on the
    CPU uses CPU autocast (slow; for tests of those paths).
    """
    value = (choice if choice is not None else os.environ.get("COURSE_PRECISION", "")).strip().lower() or "auto"
    if value not in PRECISIONS:
        source = "an argument" if choice is not None else "$COURSE_PRECISION"
        raise ValueError(f"unknown precision {value!r} (from {source}); expected one of: {', '.join(PRECISIONS)}")
    device = torch.device(device)
    if value != "auto":
        if value != "fp32" and device.type == "mps":
            raise ValueError(f"precision {value!r} is not supported on MPS here; use fp32 (or auto)")
        return value
    if device.type == "cuda":
        return "bf16" if _cuda_bf16(device) else "fp16"
    return "fp32"


def autocast(device: torch.device | str, precision: str | None = None) -> contextlib.AbstractContextManager:
    """Mixed precision for the forward pass, as :func:`pick_precision` chooses; a no-op for fp32.

    bf16 keeps float32's exponent range, so it needs no loss scaler; fp16 does (:func:`grad_scaler`).
    """
    device = torch.device(device)
    chosen = pick_precision(device, precision)
    if chosen == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=_DTYPES[chosen])


def grad_scaler(device: torch.device | str, precision: str | None = None) -> torch.amp.GradScaler | None:
    """A ``torch.amp.GradScaler`` for fp16 training (small gradients would underflow to 0), else None."""
    device = torch.device(device)
    if pick_precision(device, precision) != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


def cpu_budget() -> tuple[int, str]:
    """(threads, why): how many CPU threads this process should use for PyTorch's intra-op work.

    ``$COURSE_THREADS`` (a teacher's per-kernel budget on a shared server) wins, then
    ``$OMP_NUM_THREADS``; otherwise the CPUs this process may really run on (its CPU affinity,
    capped by a cgroup CPU quota: a container or a JupyterHub limit), divided among the course
    processes training at this moment (:func:`training_slot`). torch's own default counts the
    machine's cores, so two runs on a small machine each start a thread per core and fight:
    measured on 2 cores, two rnn_lm runs at once each took 3.8x as long as one alone and four 20x;
    with the budget divided, 1.9x and 3.5x (``benchmarks/results/concurrent-cpu2-x86_64.json``).
    """
    for var in ("COURSE_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value:
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"${var} must be a positive whole number of threads, got {value!r}")
            return int(value), f"${var}"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    why = "CPU affinity" if hasattr(os, "sched_getaffinity") else "CPU count"
    quota = _cgroup_cpu_quota()
    if quota is not None and quota < cpus:
        cpus, why = max(1, math.ceil(quota)), "cgroup CPU quota"
    live = training_processes()
    if live > 1:
        return max(1, cpus // live), f"{why}, shared by {live} course processes training now"
    return max(1, cpus), why


def _live_dir() -> Path:
    """Where training course processes of this user leave their process id (one empty file each)."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"course_lib-{uid}" / "training"


def training_processes() -> int:
    """How many course processes of this user are training now (stale entries of killed ones are removed)."""
    folder = _live_dir()
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    live = 0
    for name in names:
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            if pid != os.getpid():
                os.kill(pid, 0)                       # signal 0: is it alive? (sends nothing)
            live += 1
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                (folder / name).unlink()
        except PermissionError:                       # alive, another user's process with our pid space
            live += 1
    return live


@contextlib.contextmanager
def training_slot():
    """While inside, this process counts as training in :func:`cpu_budget` of every course process."""
    entry = _live_dir() / str(os.getpid())
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.touch()
    except OSError:                                   # no writable temp folder: share nothing, lose nothing
        entry = None
    try:
        yield
    finally:
        if entry is not None:
            with contextlib.suppress(OSError):
                entry.unlink()


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 ``cpu.cfs_quota_us``), None when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


_SHARED = {"from": None, "to": None}     # threads before / after the course lowered them for other trainers


def configure_threads() -> int:
    """Set torch's intra-op threads to :func:`cpu_budget` (the loop calls it at its start and every few seconds).

    It lowers the count to the budget. It raises it again only to give back what it took for other
    course processes that have since stopped training, and only if the count is still the one it
    set, so a learner's own ``torch.set_num_threads(1)`` stands.
    """
    threads, why = cpu_budget()
    current = torch.get_num_threads()
    if current > threads:
        if "shared by" in why:
            _SHARED["from"] = _SHARED["from"] or current
            _SHARED["to"] = threads
        torch.set_num_threads(threads)
    elif _SHARED["from"] and current == _SHARED["to"] and threads > current and not why.startswith("$"):
        target = min(threads, _SHARED["from"])
        torch.set_num_threads(target)
        _SHARED["to"] = target
        if target == _SHARED["from"]:
            _SHARED["from"] = _SHARED["to"] = None
    return torch.get_num_threads()


def configure_device(device: torch.device | str) -> None:
    """Per-device speed settings: CPU threads sized to this process's budget; TF32 matmuls on CUDA."""
    if torch.device(device).type == "cpu":
        configure_threads()
    if torch.device(device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")


def compile_backend(choice: str | None = None) -> str | None:
    """The ``torch.compile`` backend to train with: ``choice``, else ``$COURSE_COMPILE``; None = eager.

    ``"0"``, ``"off"`` or empty mean eager (the default); ``"1"``, ``"on"`` mean ``"inductor"``;
    any other value must name a backend from ``torch.compiler.list_backends()``.
    """
    value = (choice if choice is not None else os.environ.get("COURSE_COMPILE", "")).strip().lower()
    if value in ("", "0", "off", "false", "no"):
        return None
    if value in ("1", "on", "true", "yes"):
        return "inductor"
    known = torch.compiler.list_backends(exclude_tags=())
    if value not in known:
        raise ValueError(f"unknown torch.compile backend {value!r} (from COURSE_COMPILE or --compile); "
                         f"expected 0/1 or one of: {', '.join(sorted(known))}")
    return value


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices); optionally force deterministic kernels.

    Deterministic mode makes repeated GPU runs bit-identical at some speed cost; on
    CPU the course's runs are already reproducible for a fixed seed and thread count.
    """
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)



def rng_state() -> dict[str, Any]:
    """Python's, NumPy's and torch's (CPU and CUDA) random-number generator states, as torch.save can store them."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Put back what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))

_PRECISION_WORDS = {"bf16": "bf16 autocast", "fp16": "fp16 autocast + gradient scaler", "fp32": "float32"}


def environment_report(profile: str | None = None, seed: int | None = None,
                       device: torch.device | str | None = None) -> str:
    """A short multi-line description of profile, device, versions and seed."""
    from . import __version__
    configure_threads()
    budget, why = cpu_budget()
    from .profiles import resolve_profile

    dev = pick_device(device)
    lines = [
        f"profile      : {resolve_profile(profile)}",
        f"device       : {dev}" + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        f"precision    : {_PRECISION_WORDS[pick_precision(dev)]}",
        f"python       : {sys.version.split()[0]} on {platform.system()} {platform.machine()}",
        f"torch        : {torch.__version__} ({torch.get_num_threads()} CPU threads; budget {budget} from {why})",
        f"numpy        : {np.__version__}",
        f"course_lib   : {__version__}",
    ]
    if seed is not None:
        lines.append(f"seed         : {seed}")
    from .language import language
    if language() != "en":                  # the Chinese edition (set_language or $COURSE_LANG) says so
        lines.append(f"language     : {language()} (checks, verdicts, feedback and figure text)")
    return "\n".join(lines)


def print_environment(profile: str | None = None, seed: int | None = None,
                      device: torch.device | str | None = None) -> None:
    """Print :func:`environment_report` (the first cell of every notebook calls this)."""
    print(environment_report(profile, seed, device))

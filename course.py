#!/usr/bin/env python3
"""One entry point for the course, needing only Python >= 3.11 and pip.

    python3 course.py lab       # set up .venv (first time), then open JupyterLab on notebooks/
    python3 course.py test      # set up .venv (first time), then run every test and every notebook (smoke)
    python3 course.py test --fast   # the inner loop: unit tests not marked slow, no notebooks (about a minute)
    python3 course.py setup     # only create/refresh .venv  (--torch cpu|default|auto: which PyTorch build)
    python3 course.py outputs   # regenerate the committed notebook outputs (class profile)
    python3 course.py editions  # student notebooks (solutions stubbed) + teacher edition, in artifacts/editions/
    python3 course.py nbgrader  # nbgrader assignments (autograded answers + locked tests), in artifacts/nbgrader/
    python3 course.py nbgrader autograde 01_attention   # any nbgrader command, run inside .venv (docs/classroom.md)
    python3 course.py bundle    # offline classroom: data caches + trained, verified checkpoints (--profile P)
    python3 course.py browser-test  # every notebook in JupyterLab in headless Chromium: widgets render and respond
    python3 course.py site      # the course website, rendered offline from the committed notebooks: artifacts/site/
    python3 course.py slides    # one reveal.js deck per chapter from the cells tagged for slides: artifacts/slides/
    python3 course.py translate # rebuild the Chinese notebooks (notebooks-zh/) from notebooks/ + translations/zh/
    python3 course.py env       # the environment report (device, precision, versions): paste it when asking for help

Set-up creates ``.venv`` beside this file and installs the exact versions CI tested
(``requirements/constraints.txt``) plus ``course_lib`` in editable mode with every extra
(``.[all]``: JupyterLab, the notebook tools, the test tools and the website builder). It re-runs only
when the constraints or ``pyproject.toml`` change.

Which PyTorch build (:func:`torch_choice`): on Linux without an NVIDIA GPU, PyPI's torch is the CUDA
build (several GB of NVIDIA libraries that such a machine cannot use), so set-up takes the pinned torch
from PyTorch's CPU wheel index instead, and says so. ``--torch cpu|default|auto`` (or ``$COURSE_TORCH``)
forces a choice; ``$COURSE_TORCH_INDEX`` names any other index for torch. Where the CPU index cannot
be reached (an offline mirror), set-up says so and installs torch from the usual index.
"""

from __future__ import annotations

import hashlib
import time
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
STAMP = VENV / ".course-installed"


def _venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


COMMANDS = ("setup", "lab", "test", "outputs", "editions", "nbgrader", "bundle", "browser-test", "site", "slides",
            "translate", "env")
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_BUILDS = ("auto", "cpu", "default")


def _fingerprint(torch_index: str | None) -> str:
    h = hashlib.sha256()
    for path in (CONSTRAINTS, ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    h.update((torch_index or "").encode())
    return h.hexdigest()


def _has_nvidia_gpu() -> bool:
    """An NVIDIA driver is loaded (Linux: /proc/driver/nvidia) or its ``nvidia-smi`` tool is installed."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


def _reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether ``url`` answers within ``timeout`` seconds (an unreachable index would stall pip for minutes)."""
    import urllib.request
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except Exception:  # noqa: BLE001 - any failure (DNS, refused, timeout, TLS) means: do not use it
        return False


def torch_choice(build: str | None = None, *, platform: str = sys.platform, nvidia: bool | None = None,
                 reachable=_reachable) -> tuple[str | None, str]:
    """``(index URL for torch or None for the usual index, the sentence set-up prints)``.

    ``build``: ``auto`` (default; ``$COURSE_TORCH``), ``cpu`` or ``default``. ``$COURSE_TORCH_INDEX`` wins over both.
    """
    explicit = os.environ.get("COURSE_TORCH_INDEX", "").strip()
    if explicit:
        return explicit, f"torch: from {explicit} ($COURSE_TORCH_INDEX)"
    build = (build or os.environ.get("COURSE_TORCH", "") or "auto").strip().lower()
    if build not in TORCH_BUILDS:
        raise SystemExit(f"unknown torch build {build!r} (from --torch or $COURSE_TORCH); expected one of: "
                         f"{', '.join(TORCH_BUILDS)}")
    if build == "default":
        return None, "torch: from the usual package index (--torch default)"
    if build == "auto":
        if not platform.startswith("linux"):
            return None, "torch: from the usual package index (on macOS and Windows that is already a CPU/MPS build)"
        if (_has_nvidia_gpu() if nvidia is None else nvidia):
            return None, ("torch: the usual (CUDA) build, because an NVIDIA GPU driver was found "
                          "(--torch cpu to avoid it)")
    why = "--torch cpu" if build == "cpu" else "no NVIDIA GPU found; --torch default takes PyPI's CUDA build"
    if not reachable(CPU_TORCH_INDEX + "/"):
        return None, (f"torch: the CPU build was wanted ({why}), but {CPU_TORCH_INDEX} cannot be reached, so torch "
                      f"comes from the usual index (set $COURSE_TORCH_INDEX to a mirror of the CPU wheels)")
    return CPU_TORCH_INDEX, f"torch: the CPU build from {CPU_TORCH_INDEX} ({why})"


def _run(cmd: list[str | Path], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def _check_venv_support() -> None:
    """Debian and Ubuntu ship venv's pip bootstrap separately: say which package to install."""
    try:
        import ensurepip  # noqa: F401
    except ImportError:
        minor = f"3.{sys.version_info.minor}"
        sys.exit(f"this Python cannot create a virtual environment with pip (the 'ensurepip' module is missing). "
                 f"On Debian/Ubuntu: sudo apt install python{minor}-venv, then run the command again")


def setup(torch_build: str | None = None) -> Path:
    """Create ``.venv`` and install the tested versions; a no-op when already up to date."""
    if sys.version_info < (3, 11):
        sys.exit(f"Python >= 3.11 is required; this is {sys.version.split()[0]}. On Ubuntu 22.04 (which ships 3.10): "
                 f"sudo apt install python3.11 python3.11-venv, then run python3.11 course.py ...")
    python = _venv_python()
    if not python.exists():
        _check_venv_support()
        print(f"creating virtual environment {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and torch_build is None and STAMP.read_text().split("\n")[0] in _stamped_fingerprints():
        return python                         # up to date (with whichever torch build it was set up with)
    torch_index, sentence = torch_choice(torch_build)
    print(sentence, flush=True)
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    if torch_index:
        torch_pin = next(line.strip() for line in CONSTRAINTS.read_text().splitlines() if line.startswith("torch=="))
        _run([*pip, torch_pin, "--index-url", torch_index])
    _run([*pip, "-c", CONSTRAINTS, "-e", f"{ROOT}[all]"])     # the kernel's packages + lab, tools, test extras
    STAMP.write_text(_fingerprint(torch_index) + "\n" + sentence + "\n")
    return python


def _stamped_fingerprints() -> set[str]:
    """The fingerprints an up-to-date .venv may carry: one per torch index it could have been set up from."""
    return {_fingerprint(index) for index in (None, CPU_TORCH_INDEX, os.environ.get("COURSE_TORCH_INDEX") or None)}


def _browser_setup(python: Path) -> None:
    """Install the ``[browser]`` extra into .venv and Debian's chromium, each only when missing."""
    if subprocess.call([str(python), "-c", "import playwright"], stderr=subprocess.DEVNULL) != 0:
        print("installing the [browser] extra (playwright) into .venv")
        _run([python, "-m", "pip", "install", "--disable-pip-version-check", "-c", CONSTRAINTS, "-e",
              f"{ROOT}[browser]"])
    chromium = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
    if chromium.exists():
        return
    if not shutil.which("apt-get"):
        sys.exit(f"{chromium} not found and apt-get is unavailable: install Chromium and set COURSE_CHROMIUM")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"{chromium} not found: installing Debian's chromium package with apt-get")
    _run([*sudo, "apt-get", "update"])
    _run([*sudo, "apt-get", "install", "-y", "--no-install-recommends", "chromium"],
         env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _help_without_setup(command: str) -> int:
    """``course.py bundle --help``: the options from .venv if it is set up, else how to get them."""
    python = _venv_python()
    if python.exists() and STAMP.exists():
        return subprocess.call([str(python), "-m", "course_lib", command, "--help"], cwd=ROOT)
    print(f"python3 course.py {command} ... runs `python -m course_lib {command}` inside .venv, which is not set up "
          f"yet. Run `python3 course.py setup` once (a few minutes), then `python3 course.py {command} --help` lists "
          f"its options.")
    return 0


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "help"
    if command not in COMMANDS:
        print(__doc__)
        return 0 if command in {"help", "-h", "--help"} else 2
    if command in {"editions", "nbgrader", "bundle"} and {"-h", "--help"} & set(argv[1:]):
        return _help_without_setup(command)      # help must not start a 2-minute install
    torch_build = None
    if command == "setup" and "--torch" in argv:
        at = argv.index("--torch")
        if at + 1 >= len(argv):
            sys.exit(f"--torch needs a value: one of {', '.join(TORCH_BUILDS)}")
        torch_build = argv[at + 1]
    python = setup(torch_build)
    env = dict(os.environ)
    if command == "setup":
        return 0
    if command == "lab":
        extra = []
        if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in argv:
            # Jupyter refuses to start as root (containers, the devcontainer) unless told it may
            print("course.py lab: running as root (a container?), so JupyterLab is started with --allow-root")
            extra = ["--allow-root"]
        # the server's root is the repository, so the notebooks' links to ../docs/ open;
        # the file browser starts in notebooks/
        return subprocess.call([str(python), "-m", "jupyter", "lab", "--notebook-dir", str(ROOT),
                                "--ContentsManager.preferred_dir=notebooks", *extra, *argv[1:]], cwd=ROOT, env=env)
    if command == "nbgrader" and argv[1:] and not argv[1].startswith("-"):
        # nbgrader's own commands (generate_assignment, autograde, ...), run inside .venv: nbgrader calls its
        # `alembic` tool by name, so .venv's scripts must be on PATH, as in an activated environment
        env["PATH"] = os.pathsep.join([str(python.parent), env.get("PATH", "")])
        return subprocess.call([str(python), "-m", "nbgrader", *argv[1:]], cwd=ROOT, env=env)
    if command in {"editions", "nbgrader", "bundle", "site", "slides", "translate", "env"}:   # offline
        return subprocess.call([str(python), "-m", "course_lib", command, *argv[1:]], cwd=ROOT, env=env)
    if command == "browser-test":   # JupyterLab + headless Chromium, smoke profile; artifacts/browser/
        _browser_setup(python)
        env.update({"COURSE_BROWSER_TEST": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        return subprocess.call([str(python), "-m", "pytest", "-p", "no:cacheprovider", "tests/browser", "-v",
                                "--durations=0", *argv[1:]], cwd=ROOT, env=env)
    if command == "outputs":
        return subprocess.call([str(python), "-m", "course_lib", "run-notebooks", "--profile", "class",
                                "--inplace", *argv[1:]], cwd=ROOT, env=env)
    # test: unit tests and every notebook, English and Chinese (nbval, smoke profile), in one pytest run;
    # --fast: only the unit tests not marked slow (training runs, DDP, notebooks are left out)
    # COURSE_ALWAYS_TRAIN: notebooks train instead of loading a finished checkpoint left by a bundle or an
    # earlier run, so the test exercises the training code of this checkout
    # (a checkpoint written after COURSE_TRAINED_SINCE, by this run, is loaded: each model trains once per run)
    # (and what was computed without a checkpoint, course_lib.test_run: studies, short runs, in test-run-results/,
    # which an earlier run's files only fill up: it is emptied first)
    shutil.rmtree(Path(env.get("COURSE_DATA_DIR") or ROOT / "data") / "test-run-results", ignore_errors=True)
    env.update({"COURSE_PROFILE": "smoke", "TQDM_DISABLE": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1",
                "COURSE_ALWAYS_TRAIN": "1", "COURSE_TRAINED_SINCE": f"{time.time():.3f}"})
    rest = argv[1:]
    if "--fast" in rest:
        rest.remove("--fast")
        targets = ["tests", "-m", "not slow"]
    else:
        targets = ["tests", "notebooks", "notebooks-zh", "--nbval-lax", "--nbval-current-env",
                   "--nbval-cell-timeout=900"]
    return subprocess.call([str(python), "-m", "pytest", "-p", "no:cacheprovider", *targets, "--durations=15",
                            *rest], cwd=ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

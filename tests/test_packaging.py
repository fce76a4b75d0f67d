"""Packaging: pyproject, environment.yml and the constraints file agree; entry points exist."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _split(requirement: str) -> tuple[str, str]:
    match = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*(#.*)?$", requirement)
    assert match, requirement
    return match.group(1).lower(), match.group(2).replace(" ", "")


@pytest.fixture(scope="module")
def pyproject_deps():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["requires-python"] == ">=3.11"
    return dict(_split(r) for r in data["project"]["dependencies"])


def test_constraints_pin_every_dependency_within_its_range(pyproject_deps):
    from packaging.specifiers import SpecifierSet
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    for name, spec in pyproject_deps.items():
        key = name.replace("_", "-")
        assert key in pins, f"{name} is not pinned in requirements/constraints.txt"
        assert pins[key] in SpecifierSet(spec), f"{name}=={pins[key]} is outside {spec}"


def test_entry_points_exist():
    assert (ROOT / ".ci" / "run").stat().st_mode & 0o111
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 course.py test" in ci
    readme = (ROOT / "README.md").read_text()
    assert "python3 course.py lab" in readme and "python3 course.py test" in readme


def test_every_declared_make_target_exists():
    """The Makefile once declared a `bench` target it did not define."""
    import re
    from pathlib import Path
    text = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    declared = set(re.search(r"^\.PHONY:(.*)$", text, re.M).group(1).split())
    defined = set(re.findall(r"^([A-Za-z_-]+):", text, re.M))
    assert declared <= defined, f"declared but not defined: {sorted(declared - defined)}"


def test_course_py_help_never_runs_the_setup(monkeypatch, capsys, tmp_path):
    """`python3 course.py bundle --help` used to install everything before printing its help."""
    course = _course_script()
    monkeypatch.setattr(course, "setup", lambda *_: (_ for _ in ()).throw(AssertionError("setup ran")))
    monkeypatch.setattr(course, "_venv_python", lambda: tmp_path / "no-venv" / "python")
    for command in ("bundle", "editions"):
        assert course.main([command, "--help"]) == 0
        assert "course.py setup" in capsys.readouterr().out


def test_setup_names_the_debian_package_when_venv_cannot_bootstrap_pip(monkeypatch, tmp_path):
    import sys

    import pytest
    course = _course_script()
    monkeypatch.setattr(course, "_venv_python", lambda: tmp_path / "no-venv" / "python")
    monkeypatch.setitem(sys.modules, "ensurepip", None)                   # as on Debian without python3.X-venv
    with pytest.raises(SystemExit, match=rf"apt install python3\.{sys.version_info.minor}-venv"):
        course.setup()
    assert not (tmp_path / "no-venv").exists()


def _course_script():
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("course_script", Path(__file__).resolve().parents[1] / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    return course


def test_lab_as_root_passes_allow_root_and_env_runs_the_report(monkeypatch, capsys):
    """Jupyter exits at once as root ("Running as root is not recommended"): course.py says so and allows it."""
    course = _course_script()
    calls = []
    monkeypatch.setattr(course, "setup", lambda *_: "PY")
    monkeypatch.setattr(course.subprocess, "call", lambda cmd, **kw: calls.append(cmd) or 0)
    monkeypatch.setattr(course.os, "geteuid", lambda: 0, raising=False)
    assert course.main(["lab"]) == 0 and "--allow-root" in calls[-1]
    # the server's root is the repository (notebook 00 links to ../docs/), the file browser opens on notebooks/
    assert calls[-1][calls[-1].index("--notebook-dir") + 1] == str(course.ROOT)
    assert "--ContentsManager.preferred_dir=notebooks" in calls[-1]
    assert "running as root" in capsys.readouterr().out
    monkeypatch.setattr(course.os, "geteuid", lambda: 1000, raising=False)
    assert course.main(["lab"]) == 0 and "--allow-root" not in calls[-1]
    assert course.main(["env"]) == 0 and calls[-1] == ["PY", "-m", "course_lib", "env"]


def test_setup_takes_the_cpu_torch_build_on_linux_without_an_nvidia_gpu(monkeypatch):
    """PyPI's Linux torch is the CUDA build (GBs of NVIDIA wheels): without an NVIDIA GPU set-up picks the CPU index."""
    import pytest
    course = _course_script()
    monkeypatch.delenv("COURSE_TORCH_INDEX", raising=False)
    monkeypatch.delenv("COURSE_TORCH", raising=False)
    up, down = (lambda url: True), (lambda url: False)
    index, said = course.torch_choice(platform="linux", nvidia=False, reachable=up)
    assert index == course.CPU_TORCH_INDEX and "no NVIDIA GPU found" in said
    assert course.torch_choice(platform="linux", nvidia=True, reachable=up)[0] is None         # CUDA where it helps
    assert course.torch_choice(platform="darwin", nvidia=False, reachable=up)[0] is None       # PyPI's is CPU/MPS
    assert course.torch_choice("cpu", platform="linux", nvidia=True, reachable=up)[0] == course.CPU_TORCH_INDEX
    assert course.torch_choice("default", platform="linux", nvidia=False, reachable=up)[0] is None
    monkeypatch.setenv("COURSE_TORCH", "cpu")                                                 # the variable = --torch
    assert course.torch_choice(platform="linux", nvidia=True, reachable=up)[0] == course.CPU_TORCH_INDEX
    # an offline mirror: no index that would stall pip, and the sentence says what happened
    index, said = course.torch_choice(platform="linux", nvidia=False, reachable=down)
    assert index is None and "cannot be reached" in said
    monkeypatch.setenv("COURSE_TORCH_INDEX", "https://mirror.example/cpu")                    # an explicit index wins
    assert course.torch_choice("default", platform="linux", reachable=down)[0] == "https://mirror.example/cpu"
    monkeypatch.delenv("COURSE_TORCH_INDEX")
    with pytest.raises(SystemExit, match="expected one of: auto, cpu, default"):
        course.torch_choice("gpu")


def test_setup_installs_torch_from_the_chosen_index_first_and_stamps_the_choice(monkeypatch, tmp_path, capsys):
    course = _course_script()
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.touch()
    monkeypatch.setattr(course, "_venv_python", lambda: python)
    monkeypatch.setattr(course, "STAMP", tmp_path / "venv" / ".course-installed")
    monkeypatch.setattr(course, "torch_choice", lambda build: (course.CPU_TORCH_INDEX, "torch: the CPU build (test)"))
    runs = []
    monkeypatch.setattr(course, "_run", lambda cmd, **kw: runs.append([str(c) for c in cmd]))
    course.setup()
    assert runs[0][-3:] == [next(line for line in course.CONSTRAINTS.read_text().splitlines()
                                 if line.startswith("torch==")), "--index-url", course.CPU_TORCH_INDEX]
    assert runs[1][-1].endswith("[all]") and "torch: the CPU build (test)" in capsys.readouterr().out
    assert "torch: the CPU build (test)" in course.STAMP.read_text()
    course.setup()                                                # up to date: nothing installed again
    assert len(runs) == 2


def test_every_command_the_docs_name_exists():
    """`python3 course.py X` and `python -m course_lib X` in README and docs/ name real commands (one spelling)."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    course = _course_script()
    main_py = (root / "course_lib" / "__main__.py").read_text()
    subcommands = set(re.findall(r'sub\.add_parser\("([\w-]+)"', main_py))
    assert {"train", "editions", "nbgrader", "slides", "site"} <= subcommands
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for name in re.findall(r"python3? course\.py ([a-z][\w-]*)", text):
            assert name in course.COMMANDS, f"{doc.name}: `python3 course.py {name}` is not a command"
        for name in re.findall(r"python3? -m course_lib ([a-z][\w-]*)", text):
            assert name in subcommands, f"{doc.name}: `python -m course_lib {name}` is not a subcommand"


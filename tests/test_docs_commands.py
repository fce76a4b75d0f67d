"""Every command the README and docs/ show is one a learner can type: read by the parser that will read it,
and run here for real when it takes seconds.

A command is taken from a fenced code block (one per line, comments dropped) or an inline code span that
starts with ``python3 course.py``, ``[.venv/bin/]python -m course_lib[.module]`` or ``[.venv/bin/]python
benchmarks/X.py``. Placeholders the docs use on purpose (``NN_name``, ``--profile P``, ``COMMAND ...``) are
filled in before checking. A renamed flag, a removed subcommand, a chapter or ``--set`` key that does not
exist, or a ``-k`` that selects no browser test fails here.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.__main__ import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "README.zh.md", *sorted((ROOT / "docs").glob("*.md"))]
PREFIX = re.compile(r"^(python3? course\.py|(?:\.venv/bin/)?python3? -m course_lib(?:\.[\w.]+)?"
                    r"|(?:\.venv/bin/)?python3? benchmarks/\w+\.py)(?=\s|$)")
PLACEHOLDERS = {"NN_name": "00_start_here", "--profile P": "--profile smoke"}


def docs_commands() -> dict[str, list[str]]:
    """{command: [doc names that show it]}."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        lines = []
        for block in re.findall(r"```[\w-]*\n(.*?)```", text, re.S):
            joined = re.sub(r"\\\n\s*", " ", block)                      # shell line continuations
            lines += [line.split(" #")[0].strip() for line in joined.splitlines()]
        lines += [span.strip() for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))]
        for line in lines:
            if PREFIX.match(line):
                for old, new in PLACEHOLDERS.items():
                    line = line.replace(old, new)
                found.setdefault(line, []).append(doc.name)
    return found


COMMANDS = docs_commands()


def _course_script():
    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse_course_lib(args: list[str]) -> None:
    """Parse as ``python -m course_lib`` would; a ``train`` command's chapter and ``--set`` keys must exist too.

    A subcommand named alone (prose such as "`python -m course_lib train` also takes --set") must exist."""
    parser = build_parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if len(args) == 1:
        assert args[0] in subcommands, f"`python -m course_lib {args[0]}` is not a subcommand"
        return
    try:
        parsed = parser.parse_args(args)
    except SystemExit as stop:                                          # argparse's error (exit 2) or --help (0)
        assert stop.code == 0, f"`python -m course_lib {' '.join(args)}` is refused by its parser"
        return
    if parsed.command == "train":
        from course_lib.chapters.registry import get_chapter
        from course_lib.profiles import parse_setting
        chapter = get_chapter(parsed.chapter)
        for setting in parsed.set:
            parse_setting(chapter.config(parsed.profile), setting)


def _browser_test_names() -> str:
    text = "\n".join(p.read_text() for p in (ROOT / "tests" / "browser").glob("test_*.py"))
    notebooks = " ".join(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))   # parametrized ids
    return text + " " + " ".join(p.name for p in (ROOT / "tests" / "browser").glob("test_*.py")) + " " + notebooks


def check(command: str) -> None:
    words = shlex.split(command)
    if words[1] == "course.py":
        course = _course_script()
        name, args = words[2], words[3:]
        assert name in course.COMMANDS, f"`{command}`: {name} is not a course.py command"
        if name == "setup":
            assert not args or (args[0] == "--torch" and args[1] in course.TORCH_BUILDS), command
        elif name == "test":
            assert set(args) <= {"--fast"}, command
        elif name == "outputs":
            _parse_course_lib(["run-notebooks", "--profile", "class", "--inplace", *args])
        elif name == "nbgrader" and args and not args[0].startswith("-"):
            from nbgrader.apps import NbGraderApp
            assert args[0] == "COMMAND" or args[0] in NbGraderApp.subcommands, f"`{command}`: not an nbgrader command"
        elif name == "browser-test":
            if "-k" in args:
                selected = args[args.index("-k") + 1]
                assert selected in _browser_test_names(), f"`{command}` selects no browser test"
        elif name != "lab":                                              # lab passes its arguments to JupyterLab
            _parse_course_lib([name, *args])
    elif words[1] == "-m":
        module = words[2]
        if module == "course_lib":
            _parse_course_lib(words[3:])
        else:
            spec = importlib.util.find_spec(module)
            assert spec is not None and 'if __name__ == "__main__":' in Path(spec.origin).read_text(), \
                f"`{command}`: {module} is not a module that runs"
    else:
        path = ROOT / words[1]
        spec = importlib.util.spec_from_file_location(path.stem, path)
        script = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(script)
        try:
            script.build_parser().parse_args(words[2:])
        except SystemExit as stop:
            assert stop.code == 0, f"`{command}` is refused by {words[1]}'s parser"


def test_the_docs_show_commands():
    assert len(COMMANDS) >= 30, sorted(COMMANDS)
    assert "python3 course.py lab" in COMMANDS and "python3 course.py test" in COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_docs_command_is_accepted(command):
    check(command)


@pytest.mark.parametrize("command", ["python3 course.py setup --torch gpu", "python3 course.py teach",
                                     ".venv/bin/python -m course_lib train rnn_lm --epochs 3",
                                     ".venv/bin/python -m course_lib train rnn_lm --set model.cells=gru",
                                     ".venv/bin/python -m course_lib train lstm",
                                     ".venv/bin/python benchmarks/run.py --profiles class",
                                     "python3 course.py browser-test -k 07_diffusion",
                                     "python3 course.py nbgrader grade_everything",
                                     ".venv/bin/python -m course_lib teach"])
def test_the_check_refuses_a_wrong_command(command):
    with pytest.raises((AssertionError, ValueError, KeyError)):
        check(command)


# the commands that take seconds run for real ("runs/lm" becomes a temporary folder)
QUICK = [".venv/bin/python -m course_lib env", ".venv/bin/python -m course_lib timings",
         ".venv/bin/python -m course_lib train rnn_lm --profile smoke --out runs/lm",
         ".venv/bin/python -m course_lib train rnn_lm --profile smoke --resume --out runs/lm",
         "python -m course_lib.tooling.notebook_conventions --paired notebooks/00_start_here.ipynb"]


def test_the_quick_docs_commands_run(tmp_path):
    assert set(QUICK) <= set(COMMANDS), set(QUICK) - set(COMMANDS)
    for command in QUICK:
        words = [sys.executable if w.endswith("python") else w for w in shlex.split(command)]
        words = [str(tmp_path / "lm") if w == "runs/lm" else w for w in words]
        proc = subprocess.run(words, cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "TQDM_DISABLE": "1"})
        assert proc.returncode == 0, (command, proc.stderr[-800:])
        if "--paired" in command:
            assert "already up to date" in proc.stdout               # the committed twin is current: nothing written
    metrics = json.loads((tmp_path / "lm" / "metrics.json").read_text())
    assert metrics["chapter"] == "rnn_lm" and metrics["steps"] > 0

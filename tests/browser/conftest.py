"""Fixtures for the browser test: a JupyterLab server on loopback and headless Debian Chromium.

Nothing here runs unless ``COURSE_BROWSER_TEST=1`` (``python3 course.py browser-test`` sets it):
the default test run does not need a browser.

The server serves a scratch copy of the repository (every top-level entry symlinked,
``notebooks/`` copied), so executing notebooks in the browser can never write smoke
outputs into the committed notebooks; autosave is also switched off. Cell windowing is
off so every cell's output is in the page. Only 127.0.0.1 is used, with a random token.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
LAB_SETTINGS = {
    # no autosave: a notebook run in the browser is never written back
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # every cell in the DOM (JupyterLab 4 otherwise renders only the cells on screen)
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # no "would you like news?" prompt, which would fetch from the network
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
}


def pytest_collection_modifyitems(config, items):
    if os.environ.get("COURSE_BROWSER_TEST") == "1":
        return
    skip = pytest.mark.skip(reason="browser test: run it with `python3 course.py browser-test` "
                                   "(or COURSE_BROWSER_TEST=1 pytest tests/browser)")
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scratch_root(base: Path) -> Path:
    """``base/course``: symlinks to the repository's entries, with real copies of the notebooks."""
    root = base / "course"
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"notebooks", ".git", ".venv", "artifacts"}:
            (root / entry.name).symlink_to(entry)
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return root


class Lab:
    """A running JupyterLab: ``url(path)`` gives an address with the token."""

    def __init__(self, base: Path, profile: str = "smoke"):
        self.root = _scratch_root(base)
        self.port, self.token = _free_port(), secrets.token_hex(16)
        settings = base / "lab-settings"
        for name, values in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)          # the kernel must use the inline backend to show figures
        env.pop("TQDM_DISABLE", None)        # progress bars are widgets the learner sees: test them too
        env.update({"COURSE_PROFILE": profile, "JUPYTERLAB_SETTINGS_DIR": str(settings),
                    "JUPYTERLAB_WORKSPACES_DIR": str(base / "lab-workspaces"),
                    "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"), "PYTHONDONTWRITEBYTECODE": "1"})
        self.log = open(base / "jupyterlab.log", "w")
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--IdentityProvider.token={self.token}",
               "--ServerApp.ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={self.root}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")       # containers and CI machines often run as root
        print("starting:", " ".join(c if self.token not in c else "--IdentityProvider.token=***" for c in cmd))
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready(timeout=180)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def _wait_ready(self, timeout: float) -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"JupyterLab did not answer on 127.0.0.1:{self.port} within {timeout} s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)   # the server and the kernels it started
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


@pytest.fixture(scope="session")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()
    log = Path(server.log.name)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(log, ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[browser]' (playwright)")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) "
                    f"or set COURSE_CHROMIUM; `python3 course.py browser-test` does it for you")
    profile_dir = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 2200})
        yield context
        context.close()

"""The README's quick start, run as written from a fresh clone: its first command (make a virtualenv, install
the pinned dependencies, start the router on its defaults) up to the first 302 of the four answers.

The clone is `git clone` of this repository into tmp_path (a copy of the committed files where git is
missing), so a file the quick start needs but the repository lacks fails here. The command installs from
the package registry, as a newcomer's would: it takes a minute or two. It listens where the README says,
127.0.0.1:8000; the router is stopped by its process group at the end.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests import uas

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
INSTALL_SECONDS = 600  # a cold cache installs every dependency from the registry
ITEM = "https%3A%2F%2Fitem.taobao.com%2Fitem.htm%3Fid%3D123456"


def quick_start_commands() -> list[str]:
    """The quick start's two commands, as the README shows them."""
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"^```sh\n(.*?)^```", section, re.S | re.M)]


def _fresh_clone(target: Path) -> Path:
    git = shutil.which("git")
    if git is not None and (ROOT / ".git").exists():
        subprocess.run([git, "clone", "--quiet", str(ROOT), str(target)], check=True, timeout=120)
    else:
        shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", ".hypothesis", "site",
            "test-artifacts"))
    return target


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_readme_shows_two_commands_and_ci_runs_the_second() -> None:
    first, second = quick_start_commands()
    assert first.endswith(".venv/bin/adlink-router serve") and "-c constraints.txt -e ." in first
    assert second.endswith(".venv/bin/python -m pytest") and "-e '.[test]'" in second
    assert second in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_first_command_as_written_serves_the_first_answer(tmp_path: Path) -> None:
    if not _port_free(8000):
        pytest.fail("127.0.0.1:8000 is taken: the quick start listens there; stop what holds it")
    clone = _fresh_clone(tmp_path / "clone")
    first = quick_start_commands()[0]
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("ROUTER_", "VIRTUAL_ENV", "PYTHON"))}
    env |= {"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "data")}
    log = (tmp_path / "quick-start.log").open("w")
    process = subprocess.Popen(["bash", "-c", first], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + INSTALL_SECONDS
        answer = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:8000/go?url={ITEM}", headers={"user-agent": uas.SAFARI_IOS},
                                   timeout=2)
                break
            except httpx.TransportError:
                time.sleep(1)
        output = (tmp_path / "quick-start.log").read_text(encoding="utf-8", errors="replace")
        assert answer is not None, f"the router did not answer (exit {process.poll()}):\n{output[-3000:]}"
        assert (answer.status_code, answer.headers.get("location")) == (
            302, "taobao://item.taobao.com/item.htm?id=123456")
        # The embedded defaults: the shipped rules, and the short links' SQLite file where the README says.
        assert (tmp_path / "data" / "adlink-router" / "links.db").exists()
    finally:  # the shell, pip or the router, whichever is running: its whole group, by PID
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()

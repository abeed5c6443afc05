"""Hot reload: a changed rules directory serves within two seconds, a bad one is rejected and the last
good set keeps serving, and no request fails while rules change under traffic.

Unit tests drive the directory signature and the Reloader directly; the end-to-end tests run the real
server (tests.servers) on 127.0.0.1 with a short poll interval.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from router.decision import answers
from router.decision.rules import RuleSet, load_rules
from router.serve.config import Settings
from router.serve.reload import ActiveRules, Attempt, Reloader
from router.serve.sources import DirectoryWatch, signature
from router.serve.web import create_app
from tests import servers, uas
from tests.conftest import TEST_KEYS
from tests.servers import Server

ITEM = "https://item.taobao.com/item.htm?id=123456"
CLICK = f"/go?url={quote(ITEM, safe='')}"
DESKTOP = {"user-agent": uas.CHROME_WINDOWS}
STATUS = {"web": 302, "landing": 200}  # what a desktop click gets under `default: <action>`
BROKEN = "rules:\n  - id: x\n    when: {chanel: ad}\n    then: app\n"
BROKEN_ERROR = "broken.yaml:3:12: unknown condition 'chanel'; did you mean 'channel'?"
RELOAD_WITHIN = 2.0  # seconds: the promise made to policy owners


def rules_text(action: str, n: int = 0) -> str:
    return f"# change {n}\nrules: []\ndefault: {action}\n"


def write_configmap(directory: Path, files: dict[str, str], n: int) -> None:
    """What the kubelet does: files in a new timestamped directory, `..data` re-pointed in one rename,
    each visible file a symlink through `..data`, the old directory removed."""
    data = directory / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    version = directory / f"..2026_11_11_00_00_{n:02d}.000000001"
    version.mkdir()
    for name, text in files.items():
        (version / name).write_text(text)
    temporary = directory / "..data_tmp"
    temporary.symlink_to(version.name)
    os.replace(temporary, data)
    for name in files:
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    if old:
        for leftover in (directory / old).iterdir():
            leftover.unlink()
        (directory / old).rmdir()


def write_renamed(path: Path, text: str) -> None:
    """What careful editors do: write a temporary file beside it, then rename over it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def write_in_place(path: Path, text: str) -> None:
    """What other editors do: truncate and write, here in two halves with a pause between."""
    with path.open("w") as handle:
        handle.write(text[: len(text) // 2])
        handle.flush()
        time.sleep(0.05)
        handle.write(text[len(text) // 2 :])


# Reloads are timed against a promise of 2 s: looked at every 20 ms.
wait_until = functools.partial(servers.wait_until, every=0.02)


# --- the directory signature ------------------------------------------------------------------


def test_signature_sees_in_place_edit(rules_dir: Path) -> None:
    """Rewriting a file where it is changes the signature."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    before = signature(rules_dir)
    (rules_dir / "a.yaml").write_text(rules_text("landing"))
    assert signature(rules_dir) != before


def test_signature_ignores_other_files(rules_dir: Path) -> None:
    """Editor leftovers and notes beside the rules are not rule files: no reload for them."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    before = signature(rules_dir)
    (rules_dir / ".a.yaml.swp").write_text("x")
    (rules_dir / "NOTES.md").write_text("x")
    assert signature(rules_dir) == before


def test_signature_sees_new_and_removed_files(rules_dir: Path) -> None:
    """Adding or removing a rule file changes the signature."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    before = signature(rules_dir)
    (rules_dir / "b.yaml").write_text("rules: []\n")
    added = signature(rules_dir)
    (rules_dir / "b.yaml").unlink()
    assert added != before and signature(rules_dir) == before


def test_signature_sees_atomic_rename(rules_dir: Path) -> None:
    """Write-then-rename (same size, maybe the same mtime tick) is seen: the inode changes."""
    (rules_dir / "a.yaml").write_text(rules_text("web", 1))
    before = signature(rules_dir)
    write_renamed(rules_dir / "a.yaml", rules_text("web", 2))
    assert signature(rules_dir) != before


def test_signature_sees_configmap_swap(rules_dir: Path) -> None:
    """A ConfigMap update moves `..data` to a new directory; the file links themselves never change."""
    write_configmap(rules_dir, {"a.yaml": rules_text("web", 1)}, 1)
    before = signature(rules_dir)
    write_configmap(rules_dir, {"a.yaml": rules_text("web", 2)}, 2)
    assert signature(rules_dir) != before
    assert load_rules(rules_dir).files == (f"{rules_dir}/a.yaml",)  # read through the links


# --- validate, then swap --------------------------------------------------------------------


def _reloader(directory: Path) -> tuple[Reloader, ActiveRules]:
    watch = DirectoryWatch(directory, settle=0.05)
    active = ActiveRules(watch.load(), str(directory))
    return Reloader(active, watch, interval=0.1), active


def test_valid_change_is_swapped_in(rules_dir: Path) -> None:
    """A changed directory that validates becomes the active set, and the attempt says ok."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    reloader, active = _reloader(rules_dir)
    first = active.current
    write_renamed(rules_dir / "a.yaml", rules_text("landing"))
    attempt = asyncio.run(reloader.reload("watch", force=False))
    assert attempt is not None and attempt.ok and attempt.trigger == "watch"
    assert active.current is not first and active.current.default.action.value == "landing"
    assert active.status()["last_reload"]["version"] == active.current.version


def test_unchanged_directory_is_not_read(rules_dir: Path) -> None:
    """Nothing changed, nothing to do: no attempt is recorded."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    reloader, active = _reloader(rules_dir)
    assert asyncio.run(reloader.reload("watch", force=False)) is None
    assert active.last_attempt is None


def test_invalid_change_keeps_last_good(rules_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A change that does not validate is rejected whole: the old set serves, each problem is logged."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    reloader, active = _reloader(rules_dir)
    good = active.current
    (rules_dir / "broken.yaml").write_text(BROKEN)
    with caplog.at_level(logging.INFO, logger="router"):
        attempt = asyncio.run(reloader.reload("watch", force=False))
    assert attempt is not None and not attempt.ok
    assert active.current is good
    assert attempt.errors == (f"{rules_dir}/{BROKEN_ERROR}",)
    lines = [record.getMessage() for record in caplog.records]
    assert any(line.startswith("rules rejected: ") and line.endswith(BROKEN_ERROR) for line in lines)
    assert f"still serving rules {good.version}" in lines[-1]
    status = active.status()
    assert status["rules_version"] == good.version and status["last_reload"]["result"] == "rejected"


def test_rejected_directory_is_not_reread_until_it_changes(rules_dir: Path) -> None:
    """A rejected set is logged once, not on every poll; fixing it is picked up."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    reloader, _ = _reloader(rules_dir)
    write_renamed(rules_dir / "a.yaml", BROKEN)
    assert asyncio.run(reloader.reload("watch", force=False)) is not None
    assert asyncio.run(reloader.reload("watch", force=False)) is None
    write_renamed(rules_dir / "a.yaml", rules_text("landing"))
    attempt = asyncio.run(reloader.reload("watch", force=False))
    assert attempt is not None and attempt.ok


def test_half_written_save_ends_on_the_final_one(rules_dir: Path) -> None:
    """A save in two steps close together is read once, after the second step."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    watch = DirectoryWatch(rules_dir, settle=0.3)
    active = ActiveRules(watch.load())
    reloader = Reloader(active, watch, interval=0.1)

    async def save_twice() -> Attempt | None:
        (rules_dir / "a.yaml").write_text("# half\nrules: [")  # not valid YAML yet
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, (rules_dir / "a.yaml").write_text, rules_text("landing"))  # within the settle time
        return await reloader.reload("watch", force=False)

    attempt = asyncio.run(save_twice())
    assert attempt is not None and attempt.ok
    assert active.current.default.action.value == "landing"


def test_signal_reloads_an_unchanged_directory(rules_dir: Path) -> None:
    """SIGHUP reads the directory even when it looks unchanged; the same rules are 'unchanged', ok."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    reloader, active = _reloader(rules_dir)
    first = active.current
    attempt = asyncio.run(reloader.reload("signal", force=True))
    assert attempt is not None and attempt.ok and attempt.trigger == "signal"
    assert active.current is first


def test_reloader_survives_an_unexpected_error(rules_dir: Path) -> None:
    """A source that blows up is a rejected attempt, never a dead reloader."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    _, active = _reloader(rules_dir)

    class Exploding:
        def load(self) -> RuleSet:
            raise AssertionError("not called")

        async def poll(self, force: bool = False) -> RuleSet | None:
            raise KeyError("surprise")

    attempt = asyncio.run(Reloader(active, Exploding(), interval=0.1).reload())
    assert attempt is not None and not attempt.ok and "unexpected error: KeyError('surprise')" in attempt.errors[0]


# --- the app -------------------------------------------------------------------------------


def _settings(directory: Path, poll: float = 0.1) -> Settings:
    return Settings(rules_dir=directory, signing_keys=TEST_KEYS, rules_poll_seconds=poll)


def test_readyz_reports_version_count_and_last_attempt(rules_dir: Path) -> None:
    """/readyz: the active version and rule count, where rules come from, and the last reload."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    app = create_app(_settings(rules_dir))
    http = TestClient(app, client=("127.0.0.1", 50000))  # from this machine: /readyz shows its details
    ready = http.get("/readyz").json()
    version = load_rules(rules_dir).version
    assert ready == {"status": "ready", "reason": f"serving rules {version}", "rules_version": version, "rules": 0,
                     "rules_source": str(rules_dir),
                     "rules_loaded_at": ready["rules_loaded_at"], "last_reload": None, "pid": os.getpid(),
                     "ua_tables": ready["ua_tables"]}
    assert ready["ua_tables"] in ("none", "os", "all")
    app.state.active_rules.reject(["x.yaml:1:2: nope"], "signal")
    last = http.get("/readyz").json()["last_reload"]
    assert last["result"] == "rejected" and last["errors"] == ["x.yaml:1:2: nope"] and last["version"] == version


def test_click_finishes_on_the_set_it_started_with(
    rules_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A swap in the middle of a click changes neither its decision nor the version it logs."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    app = create_app(_settings(rules_dir))
    active: ActiveRules = app.state.active_rules
    started_with = active.current
    (rules_dir / "a.yaml").write_text(rules_text("landing"))
    newer = load_rules(rules_dir)
    real_decide = answers.decide_timeless

    def decide_during_a_swap(rules: RuleSet, ctx: Any) -> Any:
        active.accept(newer, "watch")  # lands while this click is being decided
        return real_decide(rules, ctx)

    monkeypatch.setattr(answers, "decide_timeless", decide_during_a_swap)
    with caplog.at_level(logging.INFO, logger="router.clicks"):
        response = TestClient(app, follow_redirects=False).get(CLICK, headers=DESKTOP)
    assert response.status_code == 302 and active.current is newer
    (record,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "router.clicks"]
    assert record["rules"] == started_with.version != newer.version


def test_running_app_picks_up_a_change(rules_dir: Path) -> None:
    """With its lifespan running (TestClient as a context), the app watches its directory."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    with TestClient(create_app(_settings(rules_dir)), follow_redirects=False, client=("127.0.0.1", 50000)) as http:
        assert http.get(CLICK, headers=DESKTOP).status_code == 302
        write_renamed(rules_dir / "a.yaml", rules_text("landing"))
        wait_until(lambda: http.get(CLICK, headers=DESKTOP).status_code == 200, RELOAD_WITHIN, "reload")
        assert http.get("/readyz").json()["last_reload"]["trigger"] == "watch"


def test_app_can_run_twice(rules_dir: Path) -> None:
    """The same app started again (a new event loop) still watches: nothing is bound to the first loop."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    app = create_app(_settings(rules_dir))
    with TestClient(app, follow_redirects=False) as http:
        assert http.get(CLICK, headers=DESKTOP).status_code == 302
    with TestClient(app, follow_redirects=False) as http:
        write_renamed(rules_dir / "a.yaml", rules_text("landing"))
        wait_until(lambda: http.get(CLICK, headers=DESKTOP).status_code == 200, RELOAD_WITHIN, "reload")


# --- the real server ---------------------------------------------------------------------------


class Traffic:
    """Clicks sent from a thread, as fast as one connection allows, until stopped (or a bounded count)."""

    def __init__(self, base: str, limit: int = 20_000) -> None:
        self.base, self.limit = base, limit
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            for _ in range(self.limit):
                if self._stop.is_set():
                    return
                try:
                    status = http.get(CLICK, headers=DESKTOP).status_code
                except httpx.HTTPError as err:
                    self.failures.append(repr(err))
                    continue
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if not 200 <= status < 400:
                    self.failures.append(f"status {status}")

    @property
    def count(self) -> int:
        return sum(self.statuses.values())


@pytest.fixture()
def serve_dir(rules_dir: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str, poll: str = "0.2") -> Server:
        server = Server("--rules", str(rules_dir), *args, env={"ROUTER_RULES_POLL_SECONDS": poll})
        started.append(server)
        return server.wait_ready()

    yield start
    for server in started:
        server.stop()


def _served(base: str) -> int:
    return httpx.get(base + CLICK, headers=DESKTOP).status_code


CHANGES = {
    "in_place": lambda directory, text, n: write_in_place(directory / "a.yaml", text),
    "rename": lambda directory, text, n: write_renamed(directory / "a.yaml", text),
    "configmap": lambda directory, text, n: write_configmap(directory, {"a.yaml": text}, n),
}


@pytest.mark.parametrize("kind", list(CHANGES))
def test_no_request_fails_while_rules_change(
    kind: str, rules_dir: Path, serve_dir: Callable[..., Server]
) -> None:
    """Rules changed again and again under steady traffic: every click is answered 2xx/3xx, and each
    change serves within two seconds."""
    change = CHANGES[kind]
    change(rules_dir, rules_text("web", 0), 0)
    server = serve_dir()
    with Traffic(server.base) as traffic:
        for n in range(1, 7):
            action = "landing" if n % 2 else "web"
            change(rules_dir, rules_text(action, n), n)
            changed_at = time.monotonic()
            wait_until(lambda action=action: _served(server.base) == STATUS[action], RELOAD_WITHIN + 1,
                       f"change {n}")
            assert time.monotonic() - changed_at <= RELOAD_WITHIN, f"change {n} took too long to serve"
    assert traffic.failures == [] and traffic.count > 0
    assert set(traffic.statuses) <= {200, 302}
    assert httpx.get(server.base + "/readyz").json()["rules_version"] == load_rules(rules_dir).version


def test_files_added_and_removed_are_picked_up(rules_dir: Path, serve_dir: Callable[..., Server]) -> None:
    """A new file's rules apply, and stop applying when it is removed."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    server = serve_dir()
    (rules_dir / "b.yaml").write_text("rules:\n  - {id: desktops, when: {device: desktop}, then: landing}\n")
    wait_until(lambda: _served(server.base) == 200, RELOAD_WITHIN, "new file")
    (rules_dir / "b.yaml").unlink()
    wait_until(lambda: _served(server.base) == 302, RELOAD_WITHIN, "removed file")


def test_invalid_change_is_rejected_and_old_rules_serve(rules_dir: Path, serve_dir: Callable[..., Server]) -> None:
    """A broken save: the server keeps its rules, /readyz and the log name file:line:col; a fix applies."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    server = serve_dir()
    good = httpx.get(server.base + "/readyz").json()["rules_version"]
    (rules_dir / "broken.yaml").write_text(BROKEN)

    def rejected() -> dict[str, Any] | None:
        last = httpx.get(server.base + "/readyz").json()
        return last if last["last_reload"] and last["last_reload"]["result"] == "rejected" else None

    ready = wait_until(rejected, RELOAD_WITHIN, "rejection")
    assert ready["rules_version"] == good
    assert ready["last_reload"]["errors"] == [f"{rules_dir}/{BROKEN_ERROR}"]
    assert _served(server.base) == 302  # still `default: web`
    write_renamed(rules_dir / "broken.yaml", "rules:\n  - {id: desktops, when: {device: desktop}, then: landing}\n")
    wait_until(lambda: _served(server.base) == 200, RELOAD_WITHIN, "fixed rules")
    output = server.output()
    reloads = [record for record in map(json.loads, output.splitlines()) if record["type"] == "reload"]
    assert any(record["message"].startswith("rules rejected: ") and record["message"].endswith(BROKEN_ERROR)
               and record["level"] == "warning" for record in reloads), reloads
    assert f"still serving rules {good}" in output


def test_sighup_reloads(rules_dir: Path, serve_dir: Callable[..., Server]) -> None:
    """With polling off, a changed directory serves only after SIGHUP, which /readyz names."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    server = serve_dir(poll="0")
    write_renamed(rules_dir / "a.yaml", rules_text("landing"))
    assert httpx.get(server.base + "/readyz").json()["last_reload"] is None
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: _served(server.base) == 200, RELOAD_WITHIN, "reload on SIGHUP")
    assert httpx.get(server.base + "/readyz").json()["last_reload"]["trigger"] == "signal"
    assert server.process.poll() is None  # SIGHUP's default would have ended the process


def test_two_workers_pick_up_a_change(rules_dir: Path, serve_dir: Callable[..., Server]) -> None:
    """Each worker process watches the directory on its own."""
    (rules_dir / "a.yaml").write_text(rules_text("web"))
    server = serve_dir("--workers", "2")
    write_renamed(rules_dir / "a.yaml", rules_text("landing"))
    # Connections land on either worker: once every one of a run of clicks is 200, both have reloaded.
    wait_until(lambda: all(_served(server.base) == 200 for _ in range(10)), RELOAD_WITHIN + 1, "both workers")

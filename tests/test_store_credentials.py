"""A shared store that refuses the credentials at start is a configuration error (issue 25, 3): `serve`
exits 2 with one line naming the store, never its password. A store that merely does not answer at start
is served through as before: the router starts, each process on its own, and tries the store again.
A real `redis-server` (Debian's) with `--requirepass` on a free loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from router.serve.shared import credentials_refused
from tests.servers import Server, debian_tool, free_port, stop_process

KEYS_TEXT = "k2:second-secret-0123456789,k1:first-secret-0123456789"
PASSWORD = "secret"
WRONG = "wrong-password-4711"
ITEM = "https://item.taobao.com/item.htm?id=123456"


class GuardedRedis:
    """redis-server with a password on a free loopback port, no persistence; stopped by PID."""

    def __init__(self, directory: Path) -> None:
        import redis

        self.port = free_port()
        self.process = subprocess.Popen(
            [debian_tool("redis-server", package="redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(directory), "--requirepass", PASSWORD],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis(port=self.port, password=PASSWORD, socket_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.client.ping():
                    return
            except redis.RedisError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)

    def url(self, credentials: str = "") -> str:
        return f"redis://{credentials + '@' if credentials else ''}127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process, timeout=10)


@pytest.fixture()
def guarded(tmp_path: Path) -> Iterator[GuardedRedis]:
    server = GuardedRedis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def serve(redis_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`serve` expected to refuse: it exits by itself."""
    return subprocess.run([sys.executable, "-m", "router", "serve", "--port", str(free_port()), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": redis_url,
                               "ROUTER_DRAIN_SECONDS": "0"})


def refusal(result: subprocess.CompletedProcess[str], *secrets: str) -> str:
    """The one line a refused `serve` writes (JSON, like everything serve writes): its message."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == "" and "Traceback" not in result.stdout
    (line,) = result.stdout.splitlines()
    record = json.loads(line)
    assert record["level"] == "critical" and record["logger"] == "router.startup"
    for secret in secrets:
        assert secret not in line
    return str(record["message"])


def test_a_wrong_password_stops_serve_with_one_line(guarded: GuardedRedis) -> None:
    message = refusal(serve(guarded.url(f":{WRONG}")), WRONG)
    assert message == (
        f"error: the shared store redis://127.0.0.1:{guarded.port}/0 refused the password in ROUTER_REDIS_URL "
        "(WRONGPASS invalid username-password pair or user is disabled); give the right one (and the user, for an "
        "ACL user) as redis://[user:]password@host:port/db")
    # With workers: the parent refuses before starting any.
    assert refusal(serve(guarded.url(f":{WRONG}"), "--workers", "2"), WRONG) == message
    # A user that does not exist, as Redis 6's ACL users are given: the same.
    assert "refused the password" in refusal(serve(guarded.url(f"nobody:{WRONG}")), WRONG, "nobody")


def test_no_password_for_a_store_that_wants_one(guarded: GuardedRedis) -> None:
    message = refusal(serve(guarded.url()))
    assert message.startswith(f"error: the shared store redis://127.0.0.1:{guarded.port}/0 wants a password, and "
                              "ROUTER_REDIS_URL gives none (NOAUTH ")
    assert message.endswith("); give it as redis://[user:]password@host:port/db")


def test_an_acl_user_denied_the_commands(guarded: GuardedRedis) -> None:
    guarded.client.execute_command("ACL", "SETUSER", "bob", "on", ">bob-password-0815", "-@all")
    message = refusal(serve(guarded.url("bob:bob-password-0815")), "bob-password-0815")
    assert message == (
        f"error: the shared store redis://127.0.0.1:{guarded.port}/0 refuses ROUTER_REDIS_URL's user a command the "
        "router needs (NOPERM this user has no permissions to run the 'ping' command); allow it PING, GET, SET, "
        "INCR, EXPIRE and EVAL on keys adlink:*, or give another user as redis://[user:]password@host:port/db")


def test_an_acl_user_allowed_ping_but_not_eval_is_refused_too(guarded: GuardedRedis) -> None:
    """PING alone would pass: the check sends each command the router needs, so a user denied one is told."""
    guarded.client.execute_command("ACL", "SETUSER", "eve", "on", ">eve-password-0815", "~adlink:*", "+@all",
                                   "-eval")
    message = refusal(serve(guarded.url("eve:eve-password-0815")), "eve-password-0815")
    assert "refuses ROUTER_REDIS_URL's user a command the router needs (NOPERM" in message and "'eval'" in message


def test_the_right_password_serves_with_the_store(guarded: GuardedRedis) -> None:
    running = Server(env={"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": guarded.url(f":{PASSWORD}"),
                          "ROUTER_REDIS_TIMEOUT_MS": "300"}).wait_ready()
    try:
        assert httpx.get(f"{running.base}/readyz").json()["shared_store"] == {"configured": True, "up": True}
    finally:
        output = running.stop()
    assert f":{PASSWORD}@" not in output


def test_an_unreachable_store_at_start_is_served_through() -> None:
    """Nothing listens on the store's port: the router starts, serves clicks, says the store does not
    answer (as before this check), and is ready."""
    url = f"redis://:{WRONG}@127.0.0.1:{free_port()}/0"
    running = Server(env={"ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_REDIS_URL": url}).wait_ready()
    try:
        answer = httpx.get(f"{running.base}/go", params={"url": ITEM}, headers={"user-agent": "Mozilla/5.0"})
        assert answer.status_code in (200, 302)
        assert httpx.get(f"{running.base}/readyz").json()["shared_store"]["configured"] is True
    finally:
        output = running.stop()
    assert "does not answer at start-up" in output and WRONG not in output


def test_a_silent_store_is_not_a_refusal_and_holds_the_start_no_longer_than_the_deadline() -> None:
    """A store that takes the connection and never answers (a hung server, a black hole behind a proxy):
    the check gives up within its deadline and calls it not answering, not a refusal."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # connections are taken by the kernel; nothing ever answers
        url = f"redis://:{WRONG}@127.0.0.1:{listener.getsockname()[1]}/0"
        import redis  # noqa: F401  -- imported before the clock starts: the check's time is the check's

        began = time.monotonic()
        assert credentials_refused(url, seconds=0.3) is None
        # Bounded by the 0.3 s deadline (a silent store would otherwise hold the start for ever); the margin is
        # a busy machine's, not the check's.
        assert time.monotonic() - began < 3.0


def test_a_refused_store_right_after_start_is_told_from_the_others(guarded: GuardedRedis) -> None:
    """The check alone: refused, answered, not there."""
    assert credentials_refused(guarded.url(f":{PASSWORD}")) is None
    assert credentials_refused(f"redis://127.0.0.1:{free_port()}/0") is None
    refused = credentials_refused(guarded.url(f"default:{WRONG}"))
    assert refused is not None and "WRONGPASS" in refused and WRONG not in refused and "default" not in refused

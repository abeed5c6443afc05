"""What the benchmarks that start servers share: a free loopback port, a server started, waited for and
stopped, its CPU time and resident set read from /proc, waiting for a server to answer, the user agents
they click with, a router started beside its own Valkey/Redis, and a links' database filled fast."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.4 Mobile/15E148 Safari/604.1")
WECHAT = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], object], what: str, seconds: float = 60) -> None:
    """Until `check()` is true (an error counts as not yet); SystemExit naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # not listening yet, or answering something else: look again
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start within {seconds:g} s")


def store_and_router(redis_server: str, directory: str, redis_port: int, router_port: int,
                     env: dict[str, str]) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes]]:
    """A redis-server without persistence on `redis_port` (its files in `directory`), and a router on
    `router_port` using it, quiet, with `env` on top: (store, router), for the caller to stop."""
    store = subprocess.Popen([redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", directory], stdout=subprocess.DEVNULL)
    router = subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--port", str(router_port), "--log-level", "warning"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "ROUTER_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", "ROUTER_DRAIN_SECONDS": "0",
             "ROUTER_CLICK_LOG": "off", **env})
    return store, router


# --- a server's process -------------------------------------------------------------------------------------


def pinned(core: int, command: list[str]) -> list[str]:
    """`command` run on one core (`taskset`), when there is more than one."""
    cores = os.cpu_count() or 1
    if shutil.which("taskset") and cores > 1:
        return ["taskset", "-c", str(core % cores), *command]
    return command


def router_command(port: int) -> list[str]:
    """`adlink-router serve` on `port`, as a user starts it."""
    return [sys.executable, "-m", "router", "serve", "--port", str(port), "--log-level", "warning"]


@contextmanager
def server(command: list[str], port: int, env: dict[str, str] | None = None,
           core: int = 0) -> Iterator[subprocess.Popen[bytes]]:
    """`command` started pinned to `core`, with `env` on top of ours, until /go answers on `port`; stopped
    at the end. Its output is kept, and shown if it does not start."""
    log = tempfile.TemporaryFile()  # noqa: SIM115 -- closed below
    process = subprocess.Popen(pinned(core, command), stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "ROUTER_DRAIN_SECONDS": "0", **(env or {})}, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/go", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode()[-2000:]
                    raise SystemExit(f"server did not start: {' '.join(command)}\n{output}") from None
                time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def server_pid(process: subprocess.Popen[bytes]) -> int:
    """The server's own process: with taskset in front, its child (taskset usually execs, keeping the pid)."""
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
    if children.exists():
        found = children.read_text().split()
        if found:
            return int(found[-1])
    return process.pid


def rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The server's resident memory."""
    status = Path(f"/proc/{server_pid(process)}/status")
    if status.exists():
        match = re.search(r"VmRSS:\s+(\d+) kB", status.read_text())
        if match:
            return int(match.group(1)) / 1024
    return float("nan")


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """The server's CPU time so far, user and kernel, all threads (/proc/PID/stat: utime and stime)."""
    stat = Path(f"/proc/{server_pid(process)}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- short links ----------------------------------------------------------------------------------------------

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_STRIDE = 62 ** 7 >> 24  # link_code: the codes of 2**24 links, each in a slice of its own
_TAGS = ("spring-sale", "summer", "clearance", "new-arrival", "wechat", "weibo", "douyin", "xiaohongshu")
_WORDS = ("夏季新款", "纯棉短袖T恤", "男女同款", "宽松百搭", "韩版潮流", "官方旗舰店", "正品保障", "包邮")


def link_code(i: int) -> str:
    """The i-th benchmark link's code: 7 characters of base62, as router.decision.short_links.new_code draws
    them, distinct for every i below 2**24 and in the order of i (so that a database is filled in its
    primary key's order, several times faster), scattered within each of 2**24 equal slices of the codes."""
    n = i * _STRIDE + (i * 2654435761 + 982451653) % _STRIDE
    chars = [""] * 7
    for place in range(6, -1, -1):
        n, digit = divmod(n, 62)
        chars[place] = _BASE62[digit]
    return "".join(chars)


def link_record(i: int, *, rich: bool = False) -> dict[str, Any]:
    """The i-th benchmark link as LinkStore.create takes it (and, without its code, as the API does): a
    Taobao item, two tags, a title of some 20 Chinese characters, no image; `rich` adds a description and a
    preview image."""
    record: dict[str, Any] = {
        "code": link_code(i), "url": f"https://item.taobao.com/item.htm?id={600000000000 + i * 7919}",
        "tags": [_TAGS[i % 8], _TAGS[(i + 1 + i // 8 % 7) % 8]],
        "title": f"{_WORDS[i % 8]} {_WORDS[(i // 8) % 8]} {_WORDS[(i // 64) % 8]} {i}号",
    }
    if rich:
        record["description"] = ("领券立减20元，限时特惠，前100名下单送运费险。面料亲肤透气，机洗不变形，"
                                 f"多色可选，尺码齐全，七天无理由退换。商品编号 {i}。")
        record["image"] = f"https://img.alicdn.com/imgextra/i{i % 4 + 1}/2200{i:010d}/O1CN01{link_code(i)}.jpg"
    return record


def fill_links(path: Path, count: int, overrides: Mapping[int, Mapping[str, Any]] | None = None) -> str:
    """A SQLite links' database at `path` (migrated by router.serve.link_store.upgrade) holding `count`
    links, `link_record(i)` for i below `count` with `overrides[i]` on top; its URL. Written straight into
    its tables in one transaction, in code order, its secondary indexes dropped meanwhile and made again
    after (LinkStore.create_many checks every record and inserts some 15,000 a second; this, 100,000).
    The rows as the store writes them, at version 1, and the change counter at 1."""
    from router.serve.link_store import upgrade

    url = f"sqlite:///{path}"
    upgrade(url)
    stamp = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")  # how the store keeps time
    overrides = overrides or {}
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA synchronous = OFF")  # a scratch file: no fsync while it is filled
        connection.execute("PRAGMA journal_mode = MEMORY")
        with connection:
            indexes = connection.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                " AND tbl_name IN ('links', 'link_tags')").fetchall()
            for name, _ in indexes:
                connection.execute(f'DROP INDEX "{name}"')  # names read from the schema itself
            step = 50_000
            for start in range(0, count, step):
                records = [{**link_record(i), **overrides.get(i, {})} for i in range(start, min(count, start + step))]
                connection.executemany(
                    "INSERT INTO links (code, url, channel, advertiser, campaign, tags, title, description, image,"
                    " expires_at, max_clicks, clicks, disabled, custom, created_at, updated_at, created_by, version)"
                    " VALUES (?, ?, NULL, NULL, NULL, ?, ?, ?, ?, NULL, NULL, 0, 0, 0, ?, ?, 'bench', 1)",
                    [(r["code"], r["url"], json.dumps(r["tags"], ensure_ascii=False, separators=(",", ":")),
                      r["title"], r.get("description"), r.get("image"), stamp, stamp) for r in records])
                connection.executemany("INSERT INTO link_tags (code, tag) VALUES (?, ?)",
                                       [(r["code"], tag) for r in records for tag in sorted(r["tags"])])
            for _, sql in indexes:
                connection.execute(sql)
            connection.execute("UPDATE changes SET value = 1 WHERE id = 1")
        connection.execute("PRAGMA journal_mode = DELETE")
    finally:
        connection.close()
    return url

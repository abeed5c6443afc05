"""Short links (`/s/<code>`, router.serve.kept_links) across a fleet: two real router processes on one real
database (PostgreSQL in tmp_path, tests/postgres.py; or one SQLite file), with and without a real
redis-server. A link made through one router's API answers on the other; a change reaches a router that keeps
the link within two seconds (by polling the change counter; with Redis at once, by the pub/sub notice); an
exact `max_clicks` across both; and a database that stops: kept links keep answering, the rest answer 503 in
the reader's language, and the routers recover by themselves once it is back.

"Within 2 s" is measured from when the write's HTTP answer (or the announce call) returned: the other router
is asked every 50 ms over one kept-alive connection, and its answer must have arrived by that deadline."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.serve.clicks import RETRY_AFTER_SECONDS
from router.serve.kept_links import POLL_SECONDS
from router.serve.link_admin import CLI_ACTOR, LinkAdmin
from router.serve.link_changes import CHANNEL, announce
from router.serve.link_store import LinkStore, upgrade
from tests import uas
from tests.postgres import PG_PASSWORD, Postgres, postgres_fixture  # noqa: F401 (the `postgres` fixture)
from tests.scrape import parse, value
from tests.servers import Server, debian_tool, free_port, stop_process, wait_until

PUBLIC = "https://go.example.com"
KEYS_TEXT = "k2:second-secret-0123456789,k1:first-secret-0123456789"
ALLOWED = ("taobao.com", "tmall.com", "tb.cn", "tmall.hk")
SAFARI = {"user-agent": uas.SAFARI_IOS}  # a phone browser: the shipped rules open the app, 302 to taobao://
POLL_EVERY = 0.05  # how often the other router is asked while a change is on its way
FAST_POLL_EVERY = 0.02  # … where how soon it shows the change tells a notice from its clock
GONE_ZH = "这个链接已过期或已被创建者停用"  # the 410 page's sentence, in the default language


def item(number: int) -> str:
    return f"https://item.taobao.com/item.htm?id={number}"


def app_link(number: int) -> str:
    return f"taobao://item.taobao.com/item.htm?id={number}"


# --- routers, the API, the database -----------------------------------------------------------------------


@contextmanager
def fleet(database_url: str, redis_url: str = "", count: int = 2) -> Iterator[list[Server]]:
    """`count` routers on one database (and one redis-server, when given), started together, stopped by PID."""
    env = {"ROUTER_DATABASE_URL": database_url, "ROUTER_REDIS_URL": redis_url, "ROUTER_PUBLIC_URL": PUBLIC,
           "ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_LIMIT_PER_ADDRESS": "", "ROUTER_METRICS_FROM": "private"}
    servers: list[Server] = []
    try:
        for _ in range(count):
            servers.append(Server(env=env))
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


def admin_token(database_url: str) -> dict[str, str]:
    """The schema brought up to date, and an admin token's Authorization header."""
    upgrade(database_url)
    with LinkStore(database_url) as store:
        text, _ = store.create_token("admin")
    return {"Authorization": f"Bearer {text}"}


def create(base: str, auth: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{base}/api/links", json=fields, headers=auth, timeout=30)
    assert response.status_code == 201, response.text
    link: dict[str, Any] = response.json()
    assert link["short_url"] == f"{PUBLIC}/s/{link['code']}"
    return link


def patch(base: str, auth: dict[str, str], code: str, **fields: Any) -> float:
    """PATCH the link; the time its answer arrived (time.monotonic), from which "within 2 s" counts."""
    response = httpx.patch(f"{base}/api/links/{code}", json=fields, headers=auth, timeout=30)
    arrived = time.monotonic()
    assert response.status_code == 200, response.text
    assert all(response.json()[name] == wanted for name, wanted in fields.items()), response.text
    return arrived


def lookups(server: Server, result: str) -> float:
    """adlink_short_link_lookups_total{result=…} on `server` (/metrics, from loopback)."""
    response = httpx.get(f"{server.base}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return value(parse(response.text), "adlink_short_link_lookups_total", result=result)


def keep(server: Server, code: str, number: int) -> None:
    """Click `code` on `server` until a click is answered from what the server keeps (its `kept` lookups grow
    by that click), so that what follows is about a link the server keeps, not one it reads anew each time."""
    def answered_from_kept() -> bool:
        before = lookups(server, "kept")
        response = httpx.get(f"{server.base}/s/{code}", headers=SAFARI, timeout=10)
        assert (response.status_code, response.headers.get("location")) == (302, app_link(number)), response.text
        return lookups(server, "kept") == before + 1

    wait_until(answered_from_kept, 15, f"{code} kept by {server.base}", every=0.2)


class Watch:
    """One router's answers to one short link, asked over one kept-alive connection (cheap to ask often)."""

    def __init__(self, base: str, code: str) -> None:
        self.client = httpx.Client(base_url=base, headers=SAFARI, timeout=5)
        self.path = f"/s/{code}"
        self.sent = 0.0  # when the latest question was sent (time.monotonic)
        self.arrived = 0.0  # when its answer arrived

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def ask(self) -> httpx.Response:
        self.sent = time.monotonic()
        response = self.client.get(self.path)
        self.arrived = time.monotonic()
        return response

    def answers_within(self, status: int, since: float, seconds: float = 2.0,
                       every: float = POLL_EVERY) -> tuple[httpx.Response, float]:
        """Asked every `every` seconds until it answers `status`, which must have arrived within `seconds`
        of `since` (AssertionError naming what it answered meanwhile). Returns that answer, and when the
        question before it was sent: the router had not yet applied the change when it answered that one."""
        deadline = since + seconds
        seen: Counter[int] = Counter()
        while True:
            before = self.sent
            response = self.ask()
            if response.status_code == status and self.arrived <= deadline:
                return response, before
            seen[response.status_code] += 1
            if self.arrived >= deadline:
                raise AssertionError(f"{self.path} did not answer {status} within {seconds} s of the write; it "
                                     f"answered {dict(seen)} (the last after {self.arrived - since:.2f} s)")
            time.sleep(every)


def answer_other_than(url: str, status: int) -> httpx.Response | None:
    response = httpx.get(url, headers=SAFARI, timeout=10)
    return response if response.status_code != status else None


def click_lines(output: str, code: str) -> list[dict[str, Any]]:
    """The click lines (JSON, `"type":"click"`) a server printed for the short link `code`."""
    records = (json.loads(line) for line in output.splitlines() if line.startswith('{"type":"click"'))
    return [record for record in records if record.get("link") == code]


# --- two routers, one PostgreSQL, no Redis ------------------------------------------------------------------


def test_a_link_made_on_one_router_answers_on_the_other_and_a_disable_reaches_it_within_2_s(
        postgres: Postgres) -> None:
    """No Redis: router B learns of A's writes by polling the database's change counter (every POLL_SECONDS)."""
    database = postgres.new_database()
    auth = admin_token(database)
    with fleet(database) as (a, b):
        link = create(a.base, auth, url=item(1001), tags=["spring"])
        code = link["code"]
        on_b = httpx.get(f"{b.base}/s/{code}", headers=SAFARI)
        assert (on_b.status_code, on_b.headers.get("location")) == (302, app_link(1001))
        keep(b, code, 1001)
        with Watch(b.base, code) as watch:
            assert watch.ask().status_code == 302  # the connection open before the write
            since = patch(a.base, auth, code, disabled=True)
            gone, _ = watch.answers_within(410, since)
        assert "location" not in gone.headers and GONE_ZH in gone.text
        assert httpx.get(f"{a.base}/s/{code}", headers=SAFARI).status_code == 410
        assert httpx.get(f"{b.base}/s/no-such-link", headers=SAFARI).status_code == 404
    lines = click_lines(b.stop(), code)
    assert lines and all(line["tags"] == ["spring"] for line in lines if line["rule"] != "short-link-gone"), lines
    assert any(line["rule"] == "short-link-gone" for line in lines), lines


def test_max_clicks_is_exact_across_two_routers(postgres: Postgres) -> None:
    """300 clicks, 20 at a time, every other one on each router: exactly 100 are the link, 200 are 410."""
    database = postgres.new_database()
    auth = admin_token(database)
    with fleet(database) as (a, b):
        code = create(a.base, auth, url=item(2002), max_clicks=100)["code"]
        limits = httpx.Limits(max_connections=20, max_keepalive_connections=20)
        with httpx.Client(base_url=a.base, headers=SAFARI, timeout=30, limits=limits) as to_a, \
                httpx.Client(base_url=b.base, headers=SAFARI, timeout=30, limits=limits) as to_b:

            def click(number: int) -> tuple[int, str | None]:
                response = (to_a, to_b)[number % 2].get(f"/s/{code}")
                return response.status_code, response.headers.get("location")

            with ThreadPoolExecutor(max_workers=20) as pool:
                answers = Counter(pool.map(click, range(300)))
        assert answers == {(302, app_link(2002)): 100, (410, None): 200}, answers
        read = httpx.get(f"{b.base}/api/links/{code}", headers=auth)
        assert read.status_code == 200 and read.json()["clicks"] == 100, read.text
    # Both routers answered some of the 100: the limit is the database's, not one router's.
    per_router = [Counter(line["rule"] == "short-link-gone" for line in click_lines(server.stop(), code))
                  for server in (a, b)]
    assert [sum(counts.values()) for counts in per_router] == [150, 150], per_router
    assert sum(counts[False] for counts in per_router) == 100 and all(counts[False] for counts in per_router), \
        per_router


# --- two routers, one PostgreSQL, one redis-server ------------------------------------------------------------


class RedisServer:
    """Debian's redis-server on a free loopback port, no persistence; stopped by PID."""

    def __init__(self, directory: Path) -> None:
        import redis

        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [debian_tool("redis-server", package="redis-server"), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            wait_until(self._pong, 20, "redis-server starts", every=0.05)
        except AssertionError:
            self.stop()
            raise

    def _pong(self) -> bool:
        import redis

        assert self.process.poll() is None, "redis-server stopped"
        try:
            return bool(self.client.ping())
        except redis.RedisError:
            return False

    def listeners(self) -> int:
        """Subscribers to the links' change channel (router.serve.link_changes)."""
        return int(dict(self.client.pubsub_numsub(CHANNEL)).get(CHANNEL.encode(), 0))

    def stop(self) -> None:
        self.client.close()
        stop_process(self.process, timeout=10)


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_with_redis_a_change_reaches_the_other_router_by_its_notice(postgres: Postgres,
                                                                     redis_server: RedisServer) -> None:
    """A router looks at the change counter by the clock POLL_SECONDS after its last look ended, and at once
    when a notice wakes it. Router B still answered the old link to a question sent at `t`, so the look that
    applied the change ended after `t`, and B's next look by the clock starts after t + POLL_SECONDS: a
    later write that B shows before then reached it by a notice. Three writes in a row, each shown by B
    within 2 s: the API's disable; a write straight to the store plus `announce` (as the CLI does); the API's
    again. The last two are shown before B's clock could have shown them (without notices both fail)."""
    database = postgres.new_database()
    auth = admin_token(database)
    with fleet(database, redis_server.url) as (a, b):
        wait_until(lambda: redis_server.listeners() == 2, 15, "both routers listen for change notices")
        code = create(a.base, auth, url=item(3003))["code"]
        keep(b, code, 3003)
        store = LinkStore(database)
        admin = LinkAdmin(store, allowed_hosts=ALLOWED, public_url=PUBLIC)  # no `changed`: announced below
        try:
            admin.get(code, CLI_ACTOR)  # connected before the clock starts
            with Watch(b.base, code) as watch:
                assert watch.ask().status_code == 302
                since = patch(a.base, auth, code, disabled=True)
                _, unapplied = watch.answers_within(410, since, every=FAST_POLL_EVERY)

                assert admin.update(code, {"disabled": False}, CLI_ACTOR)["disabled"] is False
                assert announce(redis_server.url) is True
                back, next_unapplied = watch.answers_within(302, time.monotonic(), every=FAST_POLL_EVERY)
                assert back.headers["location"] == app_link(3003)
                assert watch.arrived - unapplied < POLL_SECONDS, \
                    f"shown {watch.arrived - unapplied:.2f} s after: B's clock could have seen this write"

                unapplied = next_unapplied
                since = patch(a.base, auth, code, disabled=True)
                watch.answers_within(410, since, every=FAST_POLL_EVERY)
                assert watch.arrived - unapplied < POLL_SECONDS, \
                    f"shown {watch.arrived - unapplied:.2f} s after: B's clock could have seen this write"
        finally:
            store.close()


# --- the database stops, and starts again -------------------------------------------------------------------


@pytest.fixture()
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A PostgreSQL of this test's own: it is stopped and started again."""
    server = Postgres(tmp_path_factory.mktemp("own-postgres"))
    try:
        yield server
    finally:
        server.close()


def test_a_database_that_stops_kept_links_answer_the_rest_503_and_it_recovers(own_postgres: Postgres) -> None:
    """PostgreSQL stopped under a running router (pg_ctl stop), then started again on its port."""
    database = own_postgres.new_database()
    auth = admin_token(database)
    slug = "spring-2031"  # no link has it yet: asked while the database is down, made once it is back
    with fleet(database, count=1) as (b,):
        code = create(b.base, auth, url=item(4004))["code"]
        keep(b, code, 4004)
        own_postgres.stop()

        for _ in range(3):
            kept = httpx.get(f"{b.base}/s/{code}", headers=SAFARI)
            assert (kept.status_code, kept.headers.get("location")) == (302, app_link(4004))
        pages = {}
        for language, words in (("zh-CN", "暂时查不到这个链接，请过几秒再试。"),
                                ("en", "This link can&#39;t be looked up right now: try again in a few seconds.")):
            page = httpx.get(f"{b.base}/s/{slug}", headers={**SAFARI, "accept-language": language})
            assert page.status_code == 503, page.text
            assert page.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
            assert "location" not in page.headers
            assert words in page.text, page.text
            assert page.headers["content-language"] == language
            pages[language] = page.text
        assert "这个链接" not in pages["en"] and "looked up" not in pages["zh-CN"]
        assert lookups(b, "unavailable") >= 2
        assert not any(PG_PASSWORD in page for page in pages.values())
        assert all(str(own_postgres.port) not in page for page in pages.values())

        # The router's own look at the change counter finds the database down (logged, without the password).
        wait_until(lambda: "kept links keep serving" in b.output(), 30, "the router noticing the database is down")
        own_postgres.start()
        wait_until(lambda: "the links' database answers again" in b.output(), 30, "the router following changes again")
        # Back by itself: the code is read again (no link yet: 404), then the link made for it, written
        # straight to the database without telling the router, is found by the router's own polling.
        wait_until(lambda: httpx.get(f"{b.base}/s/{slug}", headers=SAFARI).status_code == 404, 30,
                   "the unknown code read from the database again")
        store = LinkStore(database)
        try:
            LinkAdmin(store, allowed_hosts=ALLOWED, public_url=PUBLIC).create({"url": item(4005), "slug": slug},
                                                                              CLI_ACTOR)
        finally:
            store.close()
        made = wait_until(lambda: answer_other_than(f"{b.base}/s/{slug}", 404), 30, "the new link answered")
        assert (made.status_code, made.headers.get("location")) == (302, app_link(4005))
        kept = httpx.get(f"{b.base}/s/{code}", headers=SAFARI)
        assert (kept.status_code, kept.headers.get("location")) == (302, app_link(4004))
    output = b.stop()
    assert PG_PASSWORD not in output
    [down] = [json.loads(line)["message"] for line in output.splitlines() if "kept links keep serving" in line]
    assert "links_0" in down and PG_PASSWORD not in down, down  # the database named, its password not
    refused = [line for line in click_lines(output, slug) if line["rule"] == "short-link-unavailable"]
    assert len(refused) >= 2, click_lines(output, slug)


# --- two routers, one SQLite file ---------------------------------------------------------------------------


def test_two_routers_on_one_sqlite_file(tmp_path: Path) -> None:
    """Two processes on one SQLite file: what one writes the other serves, a disable within 2 s by polling."""
    database = f"sqlite:///{tmp_path}/links.db"
    auth = admin_token(database)
    with fleet(database) as (a, b):
        code = create(a.base, auth, url=item(5005))["code"]
        on_b = httpx.get(f"{b.base}/s/{code}", headers=SAFARI)
        assert (on_b.status_code, on_b.headers.get("location")) == (302, app_link(5005))
        keep(b, code, 5005)
        with Watch(b.base, code) as watch:
            assert watch.ask().status_code == 302
            since = patch(a.base, auth, code, disabled=True)
            gone, _ = watch.answers_within(410, since)
        assert "location" not in gone.headers and GONE_ZH in gone.text

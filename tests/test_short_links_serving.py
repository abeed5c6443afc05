"""Short links served (`/s/<code>`, router.serve.clicks and router.serve.kept_links), in one router process.

What a short link answers is what its long link answers (the same click path), with its channel stamp, its
advertiser and campaign signed as an /ad link's, its tags for the rules and the click line; 410, 404 and 503
pages in the reader's language; a code read once however many clicks ask at once; changes followed; clicks
counted; a click line a replay decides alike. The fleet (two routers, PostgreSQL, Redis) is in
tests/test_short_links_fleet.py, the preview in Chromium in tests/test_short_links_browser.py.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from router.decision.rules import RuleSource, build_rule_set
from router.decision.short_links import LinkFields, long_link
from router.decision.types import Channel
from router.serve.config import Settings, bundled_rules_dir
from router.serve.kept_links import KeptLinks, LinksUnavailable
from router.serve.link_admin import CLI_ACTOR, LinkAdmin
from router.serve.link_store import LinkStore, StoreError, upgrade
from router.serve.web import create_app
from tests import uas
from tests.conftest import TEST_KEYS

ITEM = "https://item.taobao.com/item.htm?id=123456"
TMALL = "https://detail.tmall.com/item.htm?id=778899"
AGENTS = {"safari": uas.SAFARI_IOS, "wechat": uas.WECHAT_IOS, "chrome": uas.CHROME_ANDROID, "bot": uas.GOOGLEBOT,
          "desktop": uas.CHROME_WINDOWS, "qq": uas.QQ_ANDROID}


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/links.db"
    upgrade(url)
    return url


@pytest.fixture
def admin(database: str) -> Iterator[LinkAdmin]:
    with LinkStore(database) as store:
        yield LinkAdmin(store, allowed_hosts=("taobao.com", "tmall.com", "tb.cn"), public_url="https://go.example.com")


class Router:
    """A router app in process with its lifespan running (the links followed), and its click lines."""

    def __init__(self, database: str, rules_text: str | None = None) -> None:
        self.stream = io.BytesIO()
        settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=TEST_KEYS, database_url=database,
                            public_url="https://go.example.com")
        rules = build_rule_set([RuleSource("t.yaml", rules_text.encode())], origin="t") if rules_text else None
        self.app = create_app(settings, rules, click_stream=self.stream)
        self.client = TestClient(self.app, follow_redirects=False)

    def __enter__(self) -> Router:
        self.client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)

    def get(self, path: str, agent: str = "safari", **headers: str) -> Any:
        return self.client.get(path, headers={"user-agent": AGENTS.get(agent, agent), **headers})

    def lines(self) -> list[dict[str, Any]]:
        time.sleep(0.05)  # the click log is written from a thread: let it catch up
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if b'"type":"click"' in line]


def test_a_short_link_answers_what_its_long_link_answers(admin: LinkAdmin, database: str) -> None:
    """Every client, with and without a channel stamp and a share's from=: the same status and Location as
    the /go click the link stands for."""
    plain = admin.create({"url": ITEM}, CLI_ACTOR)["code"]
    stamped = admin.create({"url": TMALL, "channel": "group_chat"}, CLI_ACTOR)["code"]
    with Router(database) as router:
        links = ((plain, LinkFields(url=ITEM)), (stamped, LinkFields(url=TMALL, channel=Channel.GROUP_CHAT)))
        for code, fields in links:
            for agent in AGENTS:
                for share in ("", "?from=timeline"):
                    long = long_link(fields) + share.replace("?", "&")
                    short, expected = router.get(f"/s/{code}{share}", agent), router.get(long, agent)
                    assert (short.status_code, short.headers.get("location")) == \
                        (expected.status_code, expected.headers.get("location")), (code, agent, share)
        lines = router.lines()
    by_link = [line for line in lines if line.get("link") == stamped]
    assert by_link and all(line["request"].startswith("/go?url=") for line in by_link)
    assert {line["channel"] for line in by_link} == {"group_chat", "moments"}  # a share's from= wins, as on /go


def test_an_advertisers_link_is_signed_as_an_ad_link_and_its_click_line_names_link_and_tags(
        admin: LinkAdmin, database: str) -> None:
    code = admin.create({"url": ITEM, "advertiser": "1001", "campaign": "c-618", "tags": ["spring-sale", "vip"]},
                        CLI_ACTOR)["code"]
    rules = ('rules:\n  - {id: adv, when: {advertiser: "1001", campaign: c-618}, then: web}\n'
             "default: app\n")
    with Router(database, rules) as router:
        answer = router.get(f"/s/{code}?gdt_vid=wx-1")
        replayed = router.get(f"/s/{code}?gdt_vid=wx-1")  # the same click id again: a replay, no ad privileges
        lines = router.lines()
    assert answer.status_code == 302 and answer.headers["location"].startswith("https://")
    assert "gdt_vid=wx-1" in answer.headers["location"]  # the platform's click id passed on
    assert replayed.headers["location"].startswith("taobao://")  # default: app
    first, second = lines[0], lines[1]
    assert first["link"] == code and first["tags"] == ["spring-sale", "vip"]
    assert first["request"].startswith("/ad?") and "src=link" in first["request"]
    assert first["claim"]["verified"] is True and first["claim"]["advertiser"] == "1001"
    assert first["channel"] == "ad" and first["rule"] == "adv"
    assert second["claim"]["verdict"] == "replayed"


def test_rules_match_a_links_tags(admin: LinkAdmin, database: str) -> None:
    """`when: {tag: …}`: a link with the tag gets the rule; one without, and the same destination as a long
    link, do not, whichever comes first (the kept answers are keyed by tags)."""
    tagged = admin.create({"url": ITEM, "tags": ["spring-sale"]}, CLI_ACTOR)["code"]
    other = admin.create({"url": ITEM, "tags": ["other"]}, CLI_ACTOR)["code"]
    rules = "rules:\n  - {id: sale, when: {tag: spring-sale}, then: web}\ndefault: app\n"
    with Router(database, rules) as router:
        answers = [router.get(path).headers["location"][:8] for path in
                   (f"/s/{other}", f"/s/{tagged}", "/go?url=" + ITEM.replace("?", "%3F").replace("=", "%3D"),
                    f"/s/{tagged}", f"/s/{other}")]
    assert answers == ["taobao:/", "https://", "taobao:/", "https://", "taobao:/"], answers


@pytest.mark.parametrize(("language", "words"), [("zh-CN", "已过期"), ("en-US", "expired")])
def test_expired_disabled_and_spent_links_answer_410_in_the_readers_language(
        admin: LinkAdmin, database: str, language: str, words: str) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    expiring = admin.create({"url": ITEM, "expires_at": soon}, CLI_ACTOR)["code"]
    disabled = admin.create({"url": ITEM, "disabled": True}, CLI_ACTOR)["code"]
    limited = admin.create({"url": ITEM, "max_clicks": 2}, CLI_ACTOR)["code"]
    with Router(database) as router:
        assert router.get(f"/s/{expiring}").status_code == 302
        statuses = [router.get(f"/s/{limited}", **{"accept-language": language}).status_code for _ in range(4)]
        time.sleep(max(0.0, datetime.fromisoformat(soon).timestamp() - time.time()) + 0.05)
        answers = [router.get(f"/s/{code}", **{"accept-language": language}) for code in (expiring, disabled, limited)]
        lines = router.lines()
    assert statuses == [302, 302, 410, 410]
    for answer in answers:
        assert answer.status_code == 410
        assert words in answer.text
        assert answer.headers["content-language"] == ("zh-CN" if language == "zh-CN" else "en")
    assert admin.get(limited, CLI_ACTOR)["clicks"] == 2
    gone = [line for line in lines if line["status"] == 410]
    assert gone and all(line["rule"] == "short-link-gone" and line["link"] for line in gone)


def test_a_limited_link_counts_every_answer_that_says_where_it_goes(admin: LinkAdmin, database: str) -> None:
    """max_clicks is exact: a HEAD and a bot learn where the link goes, so they count on a limited link; a
    click refused before it is answered (a bad query added) does not."""
    code = admin.create({"url": ITEM, "max_clicks": 3}, CLI_ACTOR)["code"]
    with Router(database) as router:
        assert router.get(f"/s/{code}?from=a&from=b").status_code == 400  # refused: no click used
        assert router.client.head(f"/s/{code}", headers={"user-agent": uas.SAFARI_IOS}).status_code == 302
        assert router.get(f"/s/{code}", "bot").status_code in (200, 302)
        assert router.get(f"/s/{code}").status_code == 302  # the third
        assert router.get(f"/s/{code}").status_code == 410
        assert router.get(f"/s/{code}", "bot").status_code == 410
    assert admin.get(code, CLI_ACTOR)["clicks"] == 3


def test_an_unlimited_links_clicks_count_people_only(admin: LinkAdmin, database: str) -> None:
    code = admin.create({"url": ITEM}, CLI_ACTOR)["code"]
    with Router(database) as router:
        router.client.head(f"/s/{code}", headers={"user-agent": uas.SAFARI_IOS})
        router.get(f"/s/{code}", "bot")
        for _ in range(3):
            router.get(f"/s/{code}")
    assert admin.get(code, CLI_ACTOR)["clicks"] == 3  # written when the router stops, if not before


def test_the_readers_own_second_jump_takes_no_click(admin: LinkAdmin, database: str) -> None:
    """A limited link opened in WeChat shows the landing page; its own address, opened in the browser with
    its token (the same person leaving WeChat), is answered as the link and recorded as the escape, not
    refused as a click too many. The same token on another link is an ordinary click there."""
    code = admin.create({"url": ITEM, "max_clicks": 1}, CLI_ACTOR)["code"]
    other = admin.create({"url": ITEM, "max_clicks": 1}, CLI_ACTOR)["code"]
    with Router(database) as router:
        page = router.get(f"/s/{code}?from=groupmessage", "wechat")
        assert page.status_code == 200
        token = json.loads(re.search(r'"token": ?"([^"]+)"', page.text).group(1).join('""'))  # type: ignore[union-attr]
        escaped = router.get(f"/s/{code}?from=groupmessage&ct={token}")
        assert escaped.status_code == 302 and escaped.headers["location"].startswith("taobao://")
        assert router.get(f"/s/{code}").status_code == 410  # its one click was the landing page's
        assert router.get(f"/s/{other}?ct={token}").status_code == 302  # a click on the other link: counted
        assert router.get(f"/s/{other}").status_code == 410
        lines = router.lines()
    assert lines[1]["escaped_from"] == lines[0]["request_id"] and "ct=-" in lines[1]["request"]
    assert "escaped_from" not in lines[3]


def test_a_change_committed_while_changes_are_read_is_not_skipped() -> None:
    """The version a router has applied is the change counter it read before asking what changed, never a later
    one it happened to see: a change that committed between the store's two queries (a link changed at 12 seen
    late, a deletion at 13 seen) is read at the next look."""

    class Store:
        def __init__(self) -> None:
            self.counter, self.visible = 11, [("deleted", 13)]
            now = datetime.now(UTC)
            self.rows = {code: {"code": code, "url": ITEM, "tags": [], "created_at": now, "updated_at": now,
                                "clicks": 0, "created_by": "t", "disabled": False} for code in ("kept-one", "deleted")}

        def change_counter(self) -> int:
            return self.counter

        def changes_since(self, version: int) -> list[tuple[str, int]]:
            return [change for change in self.visible if change[1] > version]

        def get_many(self, codes: list[str]) -> list[dict[str, Any]]:
            return [self.rows[code] for code in codes if code in self.rows]

        def get(self, code: str) -> dict[str, Any] | None:
            return self.rows.get(code)

    async def run() -> bool:
        store = Store()
        links = KeptLinks(store, TEST_KEYS, "https://go.example.com", limit=100)  # type: ignore[arg-type]
        links.version = 10
        await links.find("kept-one")
        store.rows["kept-one"] = {**store.rows["kept-one"], "disabled": True}  # changed at 12, committed late
        del store.rows["deleted"]
        await links.refresh()  # the counter said 11; only the deletion (13) was visible
        assert links.version == 11
        store.counter, store.visible = 13, [("kept-one", 12), ("deleted", 13)]
        await links.refresh()
        kept = await links.find("kept-one")
        await links.aclose()
        return kept is not None and kept.disabled

    assert asyncio.run(run())


@pytest.mark.parametrize("path", ["/s/nosuch1", "/s/a%24b", "/s/" + "a" * 65, "/s/", "/s/a/b", "/s/-"])
@pytest.mark.parametrize(("language", "words"), [("zh-CN", "这个地址没有页面"), ("en", "There is no page")])
def test_unknown_and_odd_codes_get_a_404_page_in_the_readers_language(
        database: str, path: str, language: str, words: str) -> None:
    with Router(database) as router:
        answer = router.get(path, **{"accept-language": language})
    assert answer.status_code == 404
    assert words in answer.text and "text/html" in answer.headers["content-type"]


def test_a_short_links_own_parameters_cant_be_added(admin: LinkAdmin, database: str) -> None:
    code = admin.create({"url": ITEM, "advertiser": "1001"}, CLI_ACTOR)["code"]
    with Router(database) as router:
        for added in ("url=https%3A%2F%2Fevil.example%2F", "ch=ad", "adv=2002", "sig=x", "%75rl=x"):
            answer = router.get(f"/s/{code}?{added}")
            assert answer.status_code == 400, added
            assert "can&#39;t be added to a short link" in answer.text or "can't be added" in answer.text


def test_changes_are_followed_and_a_code_unknown_then_created_answers(admin: LinkAdmin, database: str) -> None:
    """A code asked for before it exists, then created, and a kept link disabled: each reaches the router
    through the change counter it polls (no write through this router's own API)."""
    with Router(database) as router:
        assert router.get("/s/later-made").status_code == 404
        admin.create({"url": ITEM, "slug": "later-made"}, CLI_ACTOR)
        kept = admin.create({"url": ITEM}, CLI_ACTOR)["code"]
        assert _within(3.0, lambda: router.get("/s/later-made").status_code == 302)
        assert router.get(f"/s/{kept}").status_code == 302
        admin.disable(kept, CLI_ACTOR)
        assert _within(3.0, lambda: router.get(f"/s/{kept}").status_code == 410)


def test_the_database_gone_kept_links_answer_and_unknown_codes_get_503(admin: LinkAdmin, database: str,
                                                                        tmp_path: Path) -> None:
    kept = admin.create({"url": ITEM}, CLI_ACTOR)["code"]
    with Router(database) as router:
        assert router.get(f"/s/{kept}").status_code == 302
        with sqlite3.connect(tmp_path / "links.db") as broken:  # the database stops answering for links
            broken.execute("DROP TABLE link_tags")
            broken.execute("DROP TABLE links")
        assert router.get(f"/s/{kept}").status_code == 302
        answer = router.get("/s/unknown1", **{"accept-language": "en"})
        assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
        assert "try again" in answer.text
        counted = router.app.metrics.state()["adlink_short_link_lookups"]  # what /metrics exposes
    assert counted[("unavailable",)] == 1 and counted[("kept",)] == 1


def test_a_code_is_read_once_for_every_click_that_asks_at_once(tmp_path: Path) -> None:
    """Single flight: 50 clicks on a code not kept, at once, make one read of the database; a read slower
    than the deadline gives them LinksUnavailable, and the next click the read's answer."""

    class SlowStore:
        def __init__(self, seconds: float) -> None:
            self.reads, self.seconds, self.lock = 0, seconds, threading.Lock()

        def get(self, code: str) -> dict[str, Any] | None:
            with self.lock:
                self.reads += 1
            time.sleep(self.seconds)
            now = datetime.now(UTC)
            return {"code": code, "url": ITEM, "tags": [], "created_at": now, "updated_at": now, "clicks": 0,
                    "created_by": "t", "disabled": False}

        def change_counter(self) -> int:
            return 0

    async def clicks(store: SlowStore) -> list[object]:
        links = KeptLinks(store, TEST_KEYS, "https://go.example.com", limit=100)  # type: ignore[arg-type]
        links.version = 0

        async def one() -> object:
            try:
                return await links.find("abc1234")
            except LinksUnavailable as unavailable:
                return unavailable
        return await asyncio.gather(*(one() for _ in range(50)))

    store = SlowStore(0.2)
    found = asyncio.run(clicks(store))
    assert store.reads == 1 and all(link is not None and link.code == "abc1234" for link in found)  # type: ignore[union-attr]
    slow = SlowStore(1.5)
    assert all(isinstance(result, LinksUnavailable) for result in asyncio.run(clicks(slow)))
    assert slow.reads == 1


def test_the_click_line_of_a_short_link_replays_to_the_same_answer(admin: LinkAdmin, database: str,
                                                                   tmp_path: Path) -> None:
    """`explain --batch` decides a /s/ click from its line alike: its long request and its tags."""
    from router.cli import main

    code = admin.create({"url": ITEM, "tags": ["spring-sale"]}, CLI_ACTOR)["code"]
    rules = "rules:\n  - {id: sale, when: {tag: spring-sale}, then: web}\ndefault: app\n"
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "t.yaml").write_text(rules)
    with Router(database, rules) as router:
        router.get(f"/s/{code}")
        line = router.lines()[0]
    assert line["rule"] == "sale"
    batch = tmp_path / "clicks.jsonl"
    batch.write_text(json.dumps(line) + "\n")
    out = io.StringIO()
    assert main(["explain", "--rules", str(tmp_path / "rules"), "--batch", str(batch)], out=out) == 0
    assert json.loads(out.getvalue().splitlines()[0])["rule"] == "sale"


def test_a_store_error_never_shows_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        LinkStore("postgresql://user:hunter2-secret@127.0.0.1:1/links").get("abc1234")
    assert "hunter2-secret" not in str(caught.value)


def _within(seconds: float, check: Any) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def test_the_schema_head_the_router_checks_is_the_migrations_head(database: str, tmp_path: Path) -> None:
    """A router checks its database's schema without Alembic (router.serve.link_store.SCHEMA_HEAD): it must be
    the newest migration, or an upgraded database would be taken as behind (or an old one as current)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from router.serve.link_store import MIGRATIONS, SCHEMA_HEAD, schema_behind, schema_revision

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_HEAD
    assert schema_revision(database) == SCHEMA_HEAD and schema_behind(database) == ""
    fresh = f"sqlite:///{tmp_path}/fresh.db"
    assert schema_revision(fresh) is None
    assert "has no links schema yet" in schema_behind(fresh) and "adlink-router db upgrade" in schema_behind(fresh)


def test_the_qr_codes_served_encode_the_short_url(admin: LinkAdmin, database: str, tmp_path: Path) -> None:
    """/s/<code>.png?size= decodes, with Debian's zbarimg, to the short URL (ROUTER_PUBLIC_URL + /s/<code>);
    /s/<code>.svg is the very SVG router.serve.qr draws for it (tests/test_qr.py has Chromium draw and zbarimg
    read that one); a bad size is a 400 page, an unknown code a 404 page."""
    from router.serve.qr import qr_svg
    from tests.test_qr import zbar

    code = admin.create({"url": ITEM, "slug": "spring-sale"}, CLI_ACTOR)["code"]
    with Router(database) as router:
        png = router.get(f"/s/{code}.png?size=256")
        svg = router.get(f"/s/{code}.svg")
        bad = router.get(f"/s/{code}.png?size=9000", **{"accept-language": "en"})
        unknown = router.get("/s/nosuch1.svg")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    (tmp_path / "code.png").write_bytes(png.content)
    assert zbar(tmp_path / "code.png") == "https://go.example.com/s/spring-sale"
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.content == qr_svg("https://go.example.com/s/spring-sale")
    assert bad.status_code == 400 and "2048" in bad.text
    assert unknown.status_code == 404


@pytest.mark.parametrize("value", ["Spring-Sale", "[spring, null]", "[]", "'a b'", "x" * 33])
def test_a_tag_rule_takes_tags_as_links_are_made_with_them(value: str) -> None:
    """`when: {tag: …}` takes what a link's tags can be (router.decision.types.is_tag, the one definition the
    links' fields, the rules and the rule tests share): lower case a-z, 0-9 and '-', 1 to 32."""
    from router.decision.rules import RuleSetError

    with pytest.raises(RuleSetError) as refused:
        build_rule_set([RuleSource("t.yaml", f"rules:\n  - {{id: r, when: {{tag: {value}}}, then: web}}\n"
                                             "default: app\n".encode())], origin="t")
    assert "t.yaml:2:" in str(refused.value.problems[0]) and "tag" in str(refused.value.problems[0])

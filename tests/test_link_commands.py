"""`adlink-router db`, `tokens` and `links` (router.link_commands), run through router.cli.main on an SQLite file
in tmp_path, once as a real process, and on a real PostgreSQL for the schema check (tests.test_link_store's)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from router import link_commands
from router.cli import build_parser, main
from router.decision.links import DEFAULT_ALLOWED_HOSTS, LinkError, parse_link
from router.decision.short_links import FIELD_NAMES
from router.serve import link_changes
from router.serve.link_admin import CLI_ACTOR, LinkAdmin
from router.serve.link_store import SCOPES, LinkStore, upgrade

ROOT = Path(__file__).resolve().parent.parent
ITEM = "https://item.taobao.com/item.htm?id=123456"
TOKEN_RE = re.compile(r"alr_[0-9a-f]+_[A-Za-z0-9_-]+")


@pytest.fixture()
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """ROUTER_DATABASE_URL: a fresh SQLite file; no shared store, the default origin and allowlist."""
    url = f"sqlite:///{tmp_path}/links.db"
    monkeypatch.setenv("ROUTER_DATABASE_URL", url)
    for name in ("ROUTER_REDIS_URL", "ROUTER_PUBLIC_URL", "ROUTER_ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return url


@contextlib.contextmanager
def opened(url: str) -> Iterator[LinkStore]:
    """The database, opened beside the commands to look at what they wrote."""
    upgrade(url)
    with LinkStore(url) as store:
        yield store


def run(*argv: str) -> tuple[int, str]:
    """main(argv): its exit status and standard output (stderr is capsys's)."""
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def create(*options: str) -> dict[str, Any]:
    status, out = run("links", "create", "--url", ITEM, *options)
    assert status == 0, out
    link: dict[str, Any] = json.loads(out)
    return link


def stored_links(url: str) -> list[dict[str, Any]]:
    with opened(url) as store:
        return store.list(limit=1000)[0]


# --- db -----------------------------------------------------------------------------------------------------


def test_db_upgrade_twice_names_the_file(database: str, tmp_path: Path) -> None:
    """`db upgrade` is idempotent; its one line names the database file and says the schema is up to date."""
    for _ in range(2):
        status, out = run("db", "upgrade")
        assert status == 0
        assert out == f"sqlite:///{tmp_path}/links.db: the short links' schema is up to date\n"
    with opened(database) as store:
        assert store.change_counter() == 0


def test_sqlite_is_brought_up_to_date_by_any_command(database: str, tmp_path: Path) -> None:
    """SQLite is embedded: a first `links list` on a fresh file makes the schema itself, no `db upgrade` needed."""
    assert not (tmp_path / "links.db").exists()
    assert run("links", "list") == (0, "")
    assert (tmp_path / "links.db").exists()


# --- tokens -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("scope", "advertiser"), [("admin", None), ("links:write", "acme"), ("links:read", None),
                                                   ("links:read", "acme")])
def test_tokens_create_prints_a_token_that_works(database: str, capsys: pytest.CaptureFixture[str], scope: str,
                                                 advertiser: str | None) -> None:
    """Each scope: id, scope, advertiser and expiry, then the token alone on the last line; the store knows it."""
    status, out = run("tokens", "create", "--scope", scope, *(["--advertiser", advertiser] if advertiser else []))
    assert status == 0
    *about, token = out.splitlines()
    assert TOKEN_RE.fullmatch(token)
    assert token not in "\n".join(about) and token not in capsys.readouterr().err
    assert about[1:] == [f"scope: {scope}", f"advertiser: {advertiser or '(every advertiser)'}", "expires: never"]
    with opened(database) as store:
        record = store.token_for(token)
    assert record is not None
    assert about[0] == f"id: {record['id']}"
    assert (record["scope"], record["advertiser"], record["expires_at"]) == (scope, advertiser, None)


def test_a_links_write_token_needs_an_advertiser(database: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """links:write without --advertiser is refused before the database is touched."""
    assert run("tokens", "create", "--scope", "links:write") == (2, "")
    assert capsys.readouterr().err == ("error: a links:write token writes one advertiser's links: give --advertiser "
                                       "ID (or --scope admin for every link)\n")
    assert not (tmp_path / "links.db").exists()


def test_an_admin_token_has_no_advertiser(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """An admin token covers every advertiser: --advertiser with it is a mistake, not a quiet limit."""
    assert run("tokens", "create", "--scope", "admin", "--advertiser", "acme") == (2, "")
    assert "an admin token covers every advertiser" in capsys.readouterr().err


def test_a_token_advertiser_is_read_as_a_links(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A token's advertiser must be one a link can have (the same reader): 65 characters are refused."""
    assert run("tokens", "create", "--scope", "links:read", "--advertiser", "a" * 65) == (2, "")
    assert capsys.readouterr().err == "error: --advertiser: is 65 characters long; the limit is 64\n"


def test_expires_30d_is_thirty_days_ahead(database: str) -> None:
    """--expires 30d: the token expires 30 days after it was made."""
    before = datetime.now(UTC)
    status, out = run("tokens", "create", "--scope", "admin", "--expires", "30d")
    after = datetime.now(UTC)
    assert status == 0
    with opened(database) as store:
        record = store.token_for(out.splitlines()[-1])
    assert record is not None
    assert before + timedelta(days=30) <= record["expires_at"] <= after + timedelta(days=30)
    assert f"expires: {record['expires_at'].isoformat(timespec='seconds')}" in out.splitlines()


@pytest.mark.parametrize(("given", "ahead"), [("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90))])
def test_expires_takes_hours_and_minutes(database: str, given: str, ahead: timedelta) -> None:
    """--expires 12h and 90m: that long after the token was made."""
    before = datetime.now(UTC)
    status, out = run("tokens", "create", "--scope", "admin", "--expires", given)
    assert status == 0
    with opened(database) as store:
        record = store.token_for(out.splitlines()[-1])
    assert record is not None and before + ahead <= record["expires_at"] <= datetime.now(UTC) + ahead


def test_expires_takes_a_time_with_an_offset(database: str) -> None:
    """--expires as ISO 8601 with an offset: that moment."""
    status, out = run("tokens", "create", "--scope", "admin", "--expires", "2031-01-31T18:00:00+08:00")
    assert status == 0
    assert "expires: 2031-01-31T18:00:00+08:00" in out.splitlines()
    with opened(database) as store:
        record = store.token_for(out.splitlines()[-1])
    assert record is not None and record["expires_at"] == datetime(2031, 1, 31, 10, tzinfo=UTC)


@pytest.mark.parametrize(("given", "message"), [
    ("2020-01-01T00:00:00+00:00", "error: --expires: '2020-01-01T00:00:00+00:00' has already passed; give a time in "
     "the future; or a duration such as 30d, 12h or 90m"),
    ("30x", "error: --expires: '30x' is not a time; expected an ISO 8601 time with an offset, such as "
     "2030-01-31T18:00:00+08:00; or a duration such as 30d, 12h or 90m"),
    ("0d", "error: --expires 0d is no time at all; give e.g. 30d, 12h or 90m"),
    ("9999999d", "error: --expires: '9999999d' is not a time; expected an ISO 8601 time with an offset, such as "
     "2030-01-31T18:00:00+08:00; or a duration such as 30d, 12h or 90m"),
])
def test_expires_refuses_what_is_not_ahead(database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           given: str, message: str) -> None:
    """A past time, a typo, no time at all: exit 2, the database untouched."""
    assert run("tokens", "create", "--scope", "admin", "--expires", given) == (2, "")
    assert capsys.readouterr().err == message + "\n"
    assert not (tmp_path / "links.db").exists()


def test_tokens_revoke(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A revoked token no longer works; an unknown id is exit 1."""
    _, out = run("tokens", "create", "--scope", "admin")
    token_id, token = out.splitlines()[0].removeprefix("id: "), out.splitlines()[-1]
    assert run("tokens", "revoke", token_id) == (0, f"revoked token {token_id}\n")
    with opened(database) as store:
        assert store.token_for(token) is None
    capsys.readouterr()
    assert run("tokens", "revoke", "0123456789abcdef") == (1, "")
    assert capsys.readouterr().err == "error: no token has the id '0123456789abcdef'\n"


def test_the_token_is_alone_on_the_last_line_of_a_real_process(database: str, tmp_path: Path) -> None:
    """`python -m router tokens create` as a process: the token is the last stdout line and nowhere else."""
    env = {**os.environ, "ROUTER_DATABASE_URL": database}
    env.pop("ROUTER_REDIS_URL", None)
    done = subprocess.run([sys.executable, "-m", "router", "tokens", "create", "--scope", "links:write",
                           "--advertiser", "acme", "--expires", "30d"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    token = lines[-1]
    assert TOKEN_RE.fullmatch(token)
    assert done.stdout.count(token) == 1 and token not in done.stderr
    assert done.stdout.endswith(token + "\n")
    assert [line.partition(":")[0] for line in lines[:-1]] == ["id", "scope", "advertiser", "expires"]
    with opened(database) as store:
        record = store.token_for(token)
    assert record is not None and (record["scope"], record["advertiser"]) == ("links:write", "acme")


def test_the_scopes_are_the_stores() -> None:
    """The parser names the scopes without loading the database's modules: the same ones, in order."""
    assert tuple(link_commands.SCOPE_HELP) == SCOPES


# --- links --------------------------------------------------------------------------------------------------


def test_links_round_trip(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """create, list, show, update, disable and enable: each prints the API's JSON; update changes what it is given."""
    monkeypatch.setenv("ROUTER_PUBLIC_URL", "https://go.example.com")
    link = create("--slug", "spring-sale", "--channel", "group_chat", "--advertiser", "acme", "--campaign", "c1",
                  "--tag", "promo", "--tag", "Spring", "--title", "Spring sale", "--description", "Half off",
                  "--image", "https://img.example.com/a.png", "--expires-at", "2031-01-31T18:00:00+08:00",
                  "--max-clicks", "500")
    assert {name: link[name] for name in FIELD_NAMES} == {
        "url": ITEM, "slug": "spring-sale", "channel": "group_chat", "advertiser": "acme", "campaign": "c1",
        "tags": ["promo", "spring"], "title": "Spring sale", "description": "Half off",
        "image": "https://img.example.com/a.png", "expires_at": link["expires_at"], "max_clicks": 500,
        "disabled": False}
    assert datetime.fromisoformat(link["expires_at"]) == datetime(2031, 1, 31, 10, tzinfo=UTC)
    assert (link["code"], link["short_url"], link["created_by"]) == ("spring-sale",
                                                                     "https://go.example.com/s/spring-sale", "cli")
    status, out = run("links", "list")
    assert status == 0
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert run("links", "show", "spring-sale") == (0, json.dumps(listed, ensure_ascii=False, indent=2) + "\n")
    # The same link, its expiry the same moment (the create answer keeps the offset given, a read gives UTC).
    assert {**listed, "expires_at": None} == {**link, "expires_at": None}
    assert datetime.fromisoformat(listed["expires_at"]) == datetime.fromisoformat(link["expires_at"])

    status, out = run("links", "update", "spring-sale", "--title", "Spring sale, last day", "--clear", "campaign",
                      "--clear", "expires_at")
    assert status == 0
    changed = json.loads(out)
    assert {name: changed[name] for name in ("title", "campaign", "expires_at")} == {
        "title": "Spring sale, last day", "campaign": None, "expires_at": None}
    untouched = {name: link[name] for name in FIELD_NAMES if name not in ("title", "campaign", "expires_at")}
    assert {name: changed[name] for name in untouched} == untouched

    status, out = run("links", "update", "spring-sale", "--tag", "autumn")
    assert status == 0 and json.loads(out)["tags"] == ["autumn"]  # --tag replaces the list
    status, out = run("links", "update", "spring-sale", "--clear", "tags")
    assert status == 0 and json.loads(out)["tags"] == []

    status, out = run("links", "disable", "spring-sale")
    assert status == 0 and json.loads(out)["disabled"] is True
    assert stored_links(database)[0]["disabled"] is True
    status, out = run("links", "enable", "spring-sale")
    assert status == 0 and json.loads(out)["disabled"] is False
    assert stored_links(database)[0]["disabled"] is False


def test_a_random_code_when_no_slug(database: str) -> None:
    """Without --slug the link gets a random 7-character code, under ROUTER_PUBLIC_URL's default."""
    link = create()
    assert re.fullmatch(r"[0-9A-Za-z]{7}", link["code"]) and link["slug"] is None
    assert link["short_url"] == f"http://localhost:8000/s/{link['code']}"


def test_a_destination_off_the_allowlist_is_refused_as_a_click_is(database: str,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The very sentence a /go click on it gets, under --url; exit 2, nothing written."""
    evil = "https://evil.example.com/item.htm?id=1"
    with pytest.raises(LinkError) as click:
        parse_link(evil, DEFAULT_ALLOWED_HOSTS)
    assert run("links", "create", "--url", evil) == (2, "")
    assert capsys.readouterr().err == f"--url: {click.value}\nerror: 1 option is not valid; nothing was written\n"
    assert stored_links(database) == []


def test_a_taken_slug_is_refused(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A slug another link has: refused under --slug, exit 2, the first link alone."""
    create("--slug", "spring-sale")
    capsys.readouterr()
    assert run("links", "create", "--url", ITEM + "7", "--slug", "spring-sale") == (2, "")
    assert capsys.readouterr().err.splitlines()[0] == "--slug: 'spring-sale' is taken; choose another slug"
    assert [link["url"] for link in stored_links(database)] == [ITEM]


def test_every_bad_option_is_named_on_its_own_line(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--max-clicks 0 and --expires-at in the past: each refused under its option, at once; nothing written."""
    assert run("links", "create", "--url", ITEM, "--max-clicks", "0",
               "--expires-at", "2020-01-01T00:00:00+00:00") == (2, "")
    assert capsys.readouterr().err.splitlines() == [
        "--expires-at: '2020-01-01T00:00:00+00:00' has already passed; give a time in the future",
        "--max-clicks: 0 is out of range; give a whole number from 1 to 1000000000",
        "error: 2 options are not valid; nothing was written",
    ]
    assert stored_links(database) == []


def test_a_refused_update_changes_nothing(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A bad field in an update is named under its option (or its --clear), and the link stays as it was."""
    link = create("--title", "Before")
    capsys.readouterr()
    assert run("links", "update", link["code"], "--title", "After", "--channel", "ad") == (2, "")
    assert capsys.readouterr().err.splitlines()[0].startswith("--channel: 'ad' can't be stamped")
    assert run("links", "update", link["code"], "--slug", "other") == (2, "")
    assert capsys.readouterr().err.splitlines()[0] == ("--slug: a link's code or slug can't be changed; create "
                                                       "another link")
    assert stored_links(database)[0]["title"] == "Before"


@pytest.mark.parametrize(("argv", "message"), [
    (["--title", "x", "--clear", "title"], "error: --clear title and --title are both given; give one of them"),
    ([], "error: nothing to change: give the fields to change (e.g. --title TEXT) or --clear FIELD"),
])
def test_update_mistakes(database: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """A field both set and cleared, or nothing to change: exit 2 before the database is read."""
    link = create()
    capsys.readouterr()
    assert run("links", "update", link["code"], *argv) == (2, "")
    assert capsys.readouterr().err == message + "\n"


def test_clear_offers_only_what_can_be_empty(database: str) -> None:
    """--clear takes the fields that may be null, and tags; a link's url or slug is refused by argparse."""
    assert link_commands.CLEARABLE == ("channel", "advertiser", "campaign", "tags", "title", "description", "image",
                                       "expires-at", "max-clicks")
    with pytest.raises(SystemExit) as refused:
        run("links", "update", "abc", "--clear", "url")
    assert refused.value.code == 2


def test_an_unknown_code_is_exit_1(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """No link has the code: exit 1 with the admin's sentence, for reads and writes alike."""
    for command in ("show", "disable", "enable"):
        assert run("links", command, "nope") == (1, "")
        assert capsys.readouterr().err == "error: no link has the code 'nope'\n"
    assert run("links", "update", "nope", "--title", "x") == (1, "")


def test_list_all_over_250_links_gives_each_once(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--all follows the cursors: 250 links in pages of 100, each once, in code order. Without it, one page
    and the next cursor on stderr; --cursor takes it."""
    with opened(database) as store:
        admin = LinkAdmin(store, allowed_hosts=DEFAULT_ALLOWED_HOSTS, public_url="http://localhost:8000")
        made = admin.create_batch([{"url": f"{ITEM}{n}"} for n in range(250)], CLI_ACTOR)
    codes = sorted(link["code"] for link in made)
    status, out = run("links", "list", "--all")
    assert status == 0 and [json.loads(line)["code"] for line in out.splitlines()] == codes
    assert capsys.readouterr().err == ""

    status, out = run("links", "list", "--limit", "100")
    assert status == 0 and [json.loads(line)["code"] for line in out.splitlines()] == codes[:100]
    cursor = re.fullmatch(r"next cursor: (\S+) \(.*\)\n", capsys.readouterr().err)
    assert cursor is not None and cursor[1] == codes[99]
    status, out = run("links", "list", "--cursor", cursor[1], "--limit", "200")
    assert status == 0 and [json.loads(line)["code"] for line in out.splitlines()] == codes[100:]
    assert capsys.readouterr().err == ""


def test_list_filters_and_its_limit(database: str, capsys: pytest.CaptureFixture[str]) -> None:
    """--tag and --advertiser filter; a --limit out of range is named under --limit."""
    create("--slug", "a-one", "--tag", "promo", "--advertiser", "acme")
    create("--slug", "b-two", "--advertiser", "other")
    assert [json.loads(line)["code"] for line in run("links", "list", "--tag", "promo")[1].splitlines()] == ["a-one"]
    assert [json.loads(line)["code"] for line in run("links", "list", "--advertiser", "other")[1].splitlines()] == [
        "b-two"]
    capsys.readouterr()
    assert run("links", "list", "--limit", "0") == (2, "")
    assert capsys.readouterr().err == ("--limit: give a whole number from 1 to 1000\n"
                                       "error: 1 option is not valid; nothing was listed\n")


def test_every_field_has_its_option() -> None:
    """A refused field is shown under an option `links create` really has."""
    parser = build_parser()
    for name in ("links", "create"):
        commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
        parser = commands.choices[name]
    options = {option for action in parser._actions for option in action.option_strings}
    assert {link_commands.OPTIONS[name] for name in FIELD_NAMES} <= options


# --- settings and the database ------------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["tokens", "create", "--scope", "admin"], ["links", "list"],
                                  ["links", "create", "--url", ITEM]])
def test_a_bad_database_url_is_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                      argv: list[str]) -> None:
    """ROUTER_DATABASE_URL of another kind: exit 2, one sentence naming the setting and its forms."""
    monkeypatch.setenv("ROUTER_DATABASE_URL", "mysql://x")
    assert run(*argv) == (2, "")
    assert capsys.readouterr().err == ("error: ROUTER_DATABASE_URL must be sqlite:///PATH or "
                                       "postgresql://user:password@host:port/database\n")


@pytest.mark.parametrize("argv", [["db", "upgrade"], ["tokens", "create", "--scope", "admin"], ["links", "list"],
                                  ["links", "create", "--url", ITEM], ["tokens", "revoke", "abc"]])
def test_a_database_that_cannot_be_reached_shows_no_password(monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str],
                                                             argv: list[str]) -> None:
    """Nothing listens on port 1: exit 1, the database named by its name alone; its password, host and port
    nowhere."""
    monkeypatch.setenv("ROUTER_DATABASE_URL", "postgresql://u:secret@127.0.0.1:1/db")
    status, out = run(*argv)
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("error: database postgresql://…/db: ")
    assert "secret" not in out + err and "127.0.0.1" not in out + err


# --- announcing changes -------------------------------------------------------------------------------------


def test_without_a_shared_store_writes_succeed(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROUTER_REDIS_URL unset: each write announces to nobody (announce is a no-op) and succeeds."""
    heard: list[tuple[str, bool]] = []
    real = link_changes.announce

    def spy(url: str) -> bool:
        heard.append((url, real(url)))
        return heard[-1][1]

    monkeypatch.setattr(link_changes, "announce", spy)
    link = create()
    assert run("links", "update", link["code"], "--title", "t")[0] == 0
    assert run("links", "disable", link["code"])[0] == 0
    assert run("links", "show", link["code"])[0] == 0  # a read announces nothing
    assert heard == [("", False)] * 3


def test_each_write_is_announced_on_the_shared_store(database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ROUTER_REDIS_URL, each write (not a read) is announced on it."""
    heard: list[str] = []

    def spy(url: str) -> bool:
        heard.append(url)
        return True

    monkeypatch.setenv("ROUTER_REDIS_URL", "redis://127.0.0.1:6390/0")
    monkeypatch.setattr(link_changes, "announce", spy)
    link = create()
    run("links", "enable", link["code"])
    run("links", "list")
    assert heard == ["redis://127.0.0.1:6390/0"] * 2


def test_a_shared_store_that_does_not_answer_fails_no_write(database: str, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    """Nothing listens on port 1: the link is written all the same, and a warning says the routers poll."""
    monkeypatch.setenv("ROUTER_REDIS_URL", "redis://:hush@127.0.0.1:1/0")
    with caplog.at_level(logging.WARNING, logger="router"):
        link = create()
    assert [stored["code"] for stored in stored_links(database)] == [link["code"]]
    assert any(record.levelno == logging.WARNING and record.name.startswith("router") for record in caplog.records)
    assert "hush" not in caplog.text


def test_a_bad_shared_store_url_is_exit_2(database: str, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A ROUTER_REDIS_URL that is no redis:// URL: exit 2 before anything is written."""
    monkeypatch.setenv("ROUTER_REDIS_URL", "http://cache:6379")
    assert run("links", "create", "--url", ITEM) == (2, "")
    assert capsys.readouterr().err.startswith("error: ROUTER_REDIS_URL must be redis://")
    assert stored_links(database) == []


# --- PostgreSQL: never migrated by a command but `db upgrade` -----------------------------------------------


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.test_link_store import Postgres

    server = Postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


def test_postgresql_needs_db_upgrade_first(postgres: Any, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A fresh PostgreSQL database: the commands refuse it and say to run `db upgrade`, which they never do
    themselves; after it, they work. The password is printed nowhere."""
    from tests.test_link_store import PG_PASSWORD

    url = postgres.new_database()
    monkeypatch.setenv("ROUTER_DATABASE_URL", url)
    monkeypatch.delenv("ROUTER_REDIS_URL", raising=False)
    for argv in (["links", "list"], ["links", "create", "--url", ITEM], ["tokens", "create", "--scope", "admin"]):
        assert run(*argv) == (1, "")
        err = capsys.readouterr().err
        assert re.fullmatch(r"error: database postgresql://…/links_\d+ has no links schema yet; "
                            r"this version needs \w+: run `adlink-router db upgrade` "
                            r"\(with the same ROUTER_DATABASE_URL\)\n", err), err
    status, out = run("db", "upgrade")
    assert status == 0 and re.fullmatch(r"postgresql://…/links_\d+: the short links' schema is up "
                                        r"to date\n", out)
    link = create("--slug", "on-postgres")
    status, out = run("links", "list")
    assert status == 0 and [json.loads(line) for line in out.splitlines()] == [link]
    assert PG_PASSWORD not in out + capsys.readouterr().err

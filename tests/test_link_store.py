"""The short-link store (router.serve.link_store) on both of its databases: a SQLite file in tmp_path, and a
real PostgreSQL (Debian's initdb and pg_ctl, run as the postgres user when the tests run as root) on a free
loopback port, stopped at the end. Every test but the settings' runs once on each."""

from __future__ import annotations

import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from router.serve import link_store
from router.serve.link_store import CodeTaken, LinkStore, StoreError, display_url, engine_url, upgrade
from tests.postgres import PG_PASSWORD, Postgres, pg_tool, postgres_fixture  # noqa: F401 (the `postgres` fixture)
from tests.servers import free_port


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database's URL (not yet upgraded)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store/links.sqlite"
    server: Postgres = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture()
def store(database: str) -> Iterator[LinkStore]:
    upgrade(database)
    with LinkStore(database) as opened:
        yield opened


def link(code: str, **fields: object) -> dict[str, object]:
    return {"code": code, "url": f"https://example.com/{code}", "created_by": "tok1", **fields}


def table_rows(url: str) -> str:
    """Every row of every table, as text (what a dump would show)."""
    engine = sa.create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in link_store.METADATA.sorted_tables
                             for row in conn.execute(sa.select(table)))
    finally:
        engine.dispose()


# --- schema and migrations --------------------------------------------------------------------------------


def test_upgrade_twice_is_idempotent(database: str) -> None:
    upgrade(database)
    store = LinkStore(database)
    try:
        store.create(link("keep"))
        upgrade(database)
        assert store.get("keep") is not None and store.change_counter() == 1
    finally:
        store.close()


def _shape(engine: sa.Engine) -> dict[str, object]:
    inspector = sa.inspect(engine)
    shape: dict[str, object] = {}
    for table in sorted(set(inspector.get_table_names()) - {"alembic_version"}):
        columns = {column["name"]: (type(column["type"].as_generic()).__name__,
                                    getattr(column["type"], "length", None), column["nullable"])
                   for column in inspector.get_columns(table)}
        shape[table] = (columns, sorted(inspector.get_pk_constraint(table)["constrained_columns"]),
                        sorted((index["name"], tuple(index["column_names"])) for index in inspector.get_indexes(table)
                               if not index.get("unique")),
                        sorted(tuple(unique["column_names"]) for unique in inspector.get_unique_constraints(table)))
    return shape


def _metadata_shape() -> dict[str, object]:
    shape: dict[str, object] = {}
    for table in sorted(link_store.METADATA.tables.values(), key=lambda table: table.name):
        columns = {}
        for column in table.columns:
            kind = column.type.impl if isinstance(column.type, sa.TypeDecorator) else column.type
            columns[column.name] = (type(kind.as_generic()).__name__, getattr(kind, "length", None), column.nullable)
        shape[table.name] = (columns, sorted(column.name for column in table.primary_key),
                             sorted((index.name, tuple(column.name for column in index.columns))
                                    for index in table.indexes),
                             sorted(tuple(column.name for column in constraint.columns)
                                    for constraint in table.constraints if isinstance(constraint, sa.UniqueConstraint)))
    return shape


def test_migrated_schema_equals_metadata(database: str) -> None:
    """The migration and the queries' MetaData describe the same tables, columns, keys and indexes."""
    upgrade(database)
    engine = sa.create_engine(engine_url(database))
    try:
        assert _shape(engine) == _metadata_shape()
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    link_store.METADATA) == []
    finally:
        engine.dispose()


def test_sqlite_directory_is_made(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/a/b/links.sqlite"
    upgrade(url)
    assert (tmp_path / "a" / "b" / "links.sqlite").is_file()


# --- links ------------------------------------------------------------------------------------------------


def test_create_get_update_delete(store: LinkStore) -> None:
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    made = store.create(link("abc", tags=["spring", "sale", "spring"], advertiser="adv1", max_clicks=5,
                             expires_at=expires, title="T", description="Ü – d"))
    assert made["tags"] == ["spring", "sale"] and made["clicks"] == 0 and made["disabled"] is False
    got = store.get("abc")
    assert got == made
    assert got is not None and got["expires_at"] == expires and got["created_at"].tzinfo is not None
    assert store.get("nope") is None

    changed = store.update("abc", {"tags": ["autumn"], "disabled": True, "title": None})
    assert changed is not None
    assert changed["tags"] == ["autumn"] and changed["disabled"] is True and changed["title"] is None
    assert changed["updated_at"] >= made["updated_at"] and changed["version"] > made["version"]
    assert store.list(tag="spring")[0] == [] and [item["code"] for item in store.list(tag="autumn")[0]] == ["abc"]
    assert store.update("nope", {"title": "x"}) is None
    with pytest.raises(ValueError, match="cannot be changed"):
        store.update("abc", {"code": "other"})
    with pytest.raises(ValueError, match="64"):
        store.update("abc", {"channel": "x" * 65})

    assert store.delete("abc") is True
    assert store.get("abc") is None and store.list(tag="autumn")[0] == []
    assert store.delete("abc") is False


def test_code_taken(store: LinkStore) -> None:
    store.create(link("taken"))
    with pytest.raises(CodeTaken) as raised:
        store.create(link("taken", url="https://other.example"))
    assert raised.value.code == "taken"
    assert store.get("taken")["url"] == "https://example.com/taken"  # type: ignore[index]


def test_list_filters_and_pages(store: LinkStore) -> None:
    store.create_many([link(f"c{number:03}", tags=["even" if number % 2 == 0 else "odd", "all"],
                            advertiser=f"adv{number % 3}") for number in range(25)])
    codes, cursor, pages = [], None, 0
    while True:
        items, cursor = store.list(cursor=cursor, limit=10)
        codes += [item["code"] for item in items]
        pages += 1
        if cursor is None:
            break
    assert codes == [f"c{number:03}" for number in range(25)] and pages == 3

    even = store.list(tag="even", limit=1000)[0]
    assert [item["code"] for item in even] == [f"c{number:03}" for number in range(0, 25, 2)]
    first, cursor = store.list(tag="all", advertiser="adv1", limit=4)
    rest, last = store.list(tag="all", advertiser="adv1", cursor=cursor, limit=4)
    assert [item["code"] for item in first + rest] == [f"c{number:03}" for number in range(1, 25, 3)]
    assert cursor == "c010" and last is None
    assert store.list(tag="odd", advertiser="adv0")[0][0]["code"] == "c003"
    assert store.list(tag="none") == ([], None)
    with pytest.raises(ValueError):
        store.list(limit=0)


def test_create_many_is_all_or_nothing(store: LinkStore, database: str) -> None:
    store.create(link("c00500"))
    before = store.change_counter()
    with pytest.raises(CodeTaken) as raised:
        store.create_many([link(f"c{number:05}", tags=["bulk"]) for number in range(1000)])
    assert raised.value.code == "c00500"
    with pytest.raises(CodeTaken):
        store.create_many([link("twice"), link("fresh"), link("twice")])
    assert [item["code"] for item in store.list(limit=1000)[0]] == ["c00500"]
    assert store.list(tag="bulk") == ([], None) and store.change_counter() == before
    made = store.create_many([link(f"n{number}") for number in range(3)])
    assert [item["code"] for item in made] == ["n0", "n1", "n2"] and len({item["version"] for item in made}) == 1


def test_count_click_stops_at_max_clicks(store: LinkStore, database: str) -> None:
    """8 threads, each with its own store (its own connections), 40 clicks each on a link of 100 clicks."""
    store.create(link("limited", max_clicks=100))
    counted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def clicker() -> None:
        own = LinkStore(database)
        try:
            start.wait()
            results = [own.count_click("limited") for _ in range(40)]
        finally:
            own.close()
        with lock:
            counted.extend(results)

    threads = [threading.Thread(target=clicker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(counted) == 320 and counted.count(True) == 100
    assert store.get("limited")["clicks"] == 100  # type: ignore[index]
    assert store.count_click("missing") is False

    store.create(link("open"))
    assert all(store.count_click("open") for _ in range(5)) and store.get("open")["clicks"] == 5  # type: ignore[index]
    assert store.count_click("open", max_clicks=5) is False  # the caller's own limit applies too


def test_change_counter_bumps_on_every_write(store: LinkStore) -> None:
    assert store.change_counter() == 0
    steps: list[tuple[str, Callable[[], object]]] = [
        ("create", lambda: store.create(link("a"))),
        ("create_many", lambda: store.create_many([link("b"), link("c")])),
        ("update", lambda: store.update("a", {"title": "new"})),
        ("delete", lambda: store.delete("b")),
    ]
    for number, (_, step) in enumerate(steps, start=1):
        step()
        assert store.change_counter() == number
    # Reads, clicks, tokens and writes that change nothing leave it alone.
    store.get("a")
    store.list()
    store.count_click("a")
    store.create_token("admin")
    store.update("missing", {"title": "x"})
    store.delete("missing")
    with pytest.raises(CodeTaken):
        store.create(link("a"))
    assert store.change_counter() == 4

    changed = store.changed_since(2)
    assert [(item["code"], item["version"], item.get("deleted", False)) for item in changed] == [
        ("a", 3, False), ("b", 4, True)]
    assert [item["code"] for item in store.changed_since(0)] == ["c", "a", "b"]
    assert store.changed_since(4) == []
    store.create(link("b"))  # made again: the link, not its deletion
    assert [(item["code"], item.get("deleted", False)) for item in store.changed_since(4)] == [("b", False)]


def test_naive_timestamps_are_refused(store: LinkStore) -> None:
    with pytest.raises(ValueError, match="time zone"):
        store.create(link("naive", expires_at=datetime(2030, 1, 1)))


# --- tokens -----------------------------------------------------------------------------------------------


def _database_text(database: str) -> str:
    if database.startswith("sqlite:///"):
        folder = Path(database[len("sqlite:///"):]).parent
        return "\n".join(path.read_bytes().decode("latin-1") for path in folder.iterdir())
    dump = pg_tool("pg_dump")
    done = subprocess.run([dump, "--dbname", database], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tokens(store: LinkStore, database: str) -> None:
    text, record = store.create_token("links:write", "adv1", datetime.now(UTC) + timedelta(hours=1))
    prefix, token_id, secret = text.split("_", 2)
    assert prefix == "alr" and token_id == record["id"] and len(secret) == 43
    assert "hash" not in record
    found = store.token_for(text)
    assert found is not None and found["scope"] == "links:write" and found["advertiser"] == "adv1"
    assert "hash" not in found

    dumped = _database_text(database) + table_rows(database)
    assert secret not in dumped and text not in dumped
    assert link_store._token_hash(text) in dumped  # stored: its SHA-256 only

    assert store.token_for(f"alr_{token_id}_{'A' * 43}") is None
    assert store.token_for("alr_x") is None and store.token_for("") is None and store.token_for(text + "x") is None

    expired, _ = store.create_token("admin", None, datetime.now(UTC) - timedelta(seconds=1))
    assert store.token_for(expired) is None
    assert store.revoke_token(token_id) is True
    assert store.token_for(text) is None
    assert store.revoke_token("nope") is False
    with pytest.raises(ValueError, match="scope"):
        store.create_token("root")


# --- the setting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "", "mysql://u:p@h/db", "sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite:///db?mode=ro",
    "postgres://u:p@h/db", "postgresql+psycopg2://u:p@h/db", "postgresql://u:p@h:notaport/db",
    "postgresql://u:p@h:5432/", "redis://h", "POSTGRESQL://u:p@h/db",
])
def test_engine_url_refuses(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        engine_url(text)
    message = str(raised.value)
    assert "ROUTER_DATABASE_URL" in message and "sqlite:///PATH" in message and "postgresql://" in message
    assert ":p@" not in message


def test_engine_url_accepts() -> None:
    assert engine_url("sqlite:///links.db").database == "links.db"
    assert engine_url("sqlite:////var/lib/router/links.db").database == "/var/lib/router/links.db"
    url = engine_url("postgresql://app:s3cret@db.internal:6543/links")
    assert (url.drivername, url.host, url.port, url.database, url.username) == (
        "postgresql+psycopg", "db.internal", 6543, "links", "app")
    assert "s3cret" not in str(url)  # SQLAlchemy masks it too


def test_display_url_hides_credentials() -> None:
    assert display_url("postgresql://app:s3cret@db.internal:6543/links?sslpassword=x") == "postgresql://…/links"
    assert display_url("sqlite:///data/links.db") == "sqlite:///data/links.db"


def test_password_never_in_errors() -> None:
    """A PostgreSQL that does not answer: StoreError names the database, never its user, password or address."""
    password = "Hunter2-very-secret"
    url = f"postgresql://someone:{password}@127.0.0.1:{free_port()}/links"
    for attempt in (lambda: upgrade(url), lambda: LinkStore(url).get("x")):
        with pytest.raises(StoreError) as raised:
            attempt()
        shown = "".join(traceback.format_exception(raised.value))
        assert password not in shown and "someone" not in shown
        port = url.split(":")[-1].split("/")[0]
        assert "postgresql://…/links" in str(raised.value)
        assert "127.0.0.1" not in shown and port not in shown


def test_wrong_password_is_not_echoed(postgres: Postgres) -> None:
    url = postgres.url("postgres").replace(PG_PASSWORD, "Wrong-Pa55-0815")
    with pytest.raises(StoreError) as raised:
        LinkStore(url).get("x")
    shown = "".join(traceback.format_exception(raised.value))
    assert "Wrong-Pa55-0815" not in shown and PG_PASSWORD not in shown
    assert "authentication" in str(raised.value)


def test_bulk_insert_rate(tmp_path: Path) -> None:
    """10,000 links in one create_many on SQLite: a few seconds at most (the figure is printed with -s)."""
    url = f"sqlite:///{tmp_path}/links.sqlite"
    upgrade(url)
    store = LinkStore(url)
    records = [link(f"b{number:05}", tags=["bulk", f"t{number % 10}"], advertiser="adv") for number in range(10_000)]
    started = time.perf_counter()
    store.create_many(records)
    seconds = time.perf_counter() - started
    print(f"\nSQLite create_many: 10,000 links in {seconds:.2f} s, {10_000 / seconds:,.0f} links/s")
    assert store.list(tag="t3", limit=1000)[0][0]["code"] == "b00003"
    store.close()
    assert seconds < 30

"""Short links' storage (ROUTER_DATABASE_URL): the links behind `/s/<code>`, the API tokens that manage them,
and a change counter the routers poll.

One setting, two forms, one code path and one schema: `sqlite:///PATH` (a file: one machine, nothing to run)
or `postgresql://user:pass@host:port/db` (a fleet), through SQLAlchemy Core (expressions and bound parameters
only, never SQL built from text) and the psycopg 3 driver. The schema is made and moved by Alembic
(router/serve/migrations, run by `upgrade()`, no alembic.ini); `METADATA` below is the same schema as the
queries see it, and a test checks that a migrated database equals it.

Every method is one transaction. Every link write first bumps the one-row `changes` counter and stamps the
link (or its deletion, in `link_deletions`) with the new value: the counter's row lock (PostgreSQL) or the
database's write lock (SQLite) is held until commit, so link writes commit in counter order, and a router
that remembers the highest version it has seen learns every later change from `changed_since(version)`.
Clicks (`count_click`) are counted in place with one conditional UPDATE, exact across processes on both
databases; they do not bump the counter.

Tags are kept once as a JSON array in `links.tags` (text: the same on both databases) and once per tag in
`link_tags`, indexed, for listing by tag; the store's functions keep the two in step. Field lengths are
checked here, not left to the database (SQLite would not check them; PostgreSQL would), so both behave alike.

API tokens are `alr_<id>_<secret>`: 256 random bits of secret, base64url. Only the SHA-256 hex of the whole
token is stored: a secret that cannot be guessed needs no slow password hash, and a leaked database holds
nothing that logs in. The token's text is returned once, by `create_token`.

Errors never show the database's address, user or password: a driver's error is raised again as StoreError
naming the database with `display_url`, the driver's first line with the password and host blotted out.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url

SETTING = "ROUTER_DATABASE_URL"
FORMS = "sqlite:///PATH or postgresql://user:password@host:port/database"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCOPES = ("admin", "links:write", "links:read")
TOKEN_PREFIX = "alr"
MAX_LIST = 1000  # the most links one list() page returns
_CHUNK = 500  # codes per `IN (…)` when create_many looks for taken codes
STATEMENT_SECONDS = 5  # PostgreSQL: the longest a connection, a pooled connection or a statement is waited for


class StoreError(Exception):
    """The database failed or refused: the message names the database by its display URL only."""


class CodeTaken(Exception):
    """A link with this code already exists."""

    def __init__(self, code: str) -> None:
        super().__init__(f"the code {code!r} is taken")
        self.code = code


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp with time zone, in UTC, aware in Python on both databases (SQLite keeps none: it is
    stored as UTC and read back as UTC). A naive datetime is refused rather than guessed at."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("timestamps must carry a time zone")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


METADATA = sa.MetaData()

links = sa.Table(
    "links", METADATA,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("channel", sa.String(64), nullable=True),
    sa.Column("advertiser", sa.String(64), nullable=True),
    sa.Column("campaign", sa.String(64), nullable=True),
    sa.Column("tags", sa.Text, nullable=False),  # a JSON array of strings
    sa.Column("title", sa.Text, nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("image", sa.Text, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("max_clicks", sa.BigInteger, nullable=True),
    sa.Column("clicks", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("custom", sa.Boolean, nullable=False, server_default=sa.false()),  # the code is a chosen slug
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Index("ix_links_advertiser", "advertiser"),
    sa.Index("ix_links_version", "version"),
)

link_tags = sa.Table(
    "link_tags", METADATA,
    sa.Column("code", sa.String(64), sa.ForeignKey("links.code", ondelete="CASCADE"), primary_key=True),
    sa.Column("tag", sa.String(64), primary_key=True),
    sa.Index("ix_link_tags_tag", "tag"),
)

link_deletions = sa.Table(
    "link_deletions", METADATA,
    sa.Column("code", sa.String(64), primary_key=True),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Index("ix_link_deletions_version", "version"),
)

tokens = sa.Table(
    "tokens", METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("hash", sa.String(128), nullable=False, unique=True),
    sa.Column("scope", sa.String(32), nullable=False),
    sa.Column("advertiser", sa.String(64), nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False, server_default=sa.false()),
)

counter = sa.Table(
    "changes", METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)

# What a link record may say, and how long its short texts may be.
_SHORT = ("code", "channel", "advertiser", "campaign", "created_by")
_TEXTS = ("url", "title", "description", "image")
_UPDATABLE = frozenset({"url", "channel", "advertiser", "campaign", "tags", "title", "description", "image",
                        "expires_at", "max_clicks", "disabled"})
_CREATABLE = _UPDATABLE | {"code", "custom", "created_by", "clicks", "created_at", "updated_at"}
_REQUIRED = ("code", "url", "created_by")


# --- the setting ------------------------------------------------------------------------------------------


def engine_url(text: str) -> URL:
    """ROUTER_DATABASE_URL as SQLAlchemy's URL: `sqlite:///PATH` (relative, or absolute with a fourth slash)
    or `postgresql://…` (the psycopg 3 driver). Anything else: ValueError naming the setting and both forms
    (never the text itself, which may hold a password)."""
    if text.startswith("sqlite:///"):
        path = text[len("sqlite:///"):]
        if not path or path == ":memory:" or "?" in path:
            raise ValueError(f"{SETTING}: a SQLite URL names a file (sqlite:///PATH, no options); use {FORMS}")
        return URL.create("sqlite", database=path)
    if text.startswith("postgresql://"):
        try:
            url = make_url(text)
            port = url.port  # a port that is not a number fails here
        except (ValueError, sa.exc.ArgumentError):
            raise ValueError(f"{SETTING}: not a readable PostgreSQL URL; use {FORMS}") from None
        if not url.database or (port is not None and not 0 < port < 65536):
            raise ValueError(f"{SETTING}: a PostgreSQL URL names host, port and database; use {FORMS}")
        return url.set(drivername="postgresql+psycopg")
    raise ValueError(f"{SETTING} must be {FORMS}")


def display_url(text: str) -> str:
    """The database as logs, errors and commands name it: an SQLite file by its path (on this machine, where
    docs/links.md says it is), a PostgreSQL database by its name only, `postgresql://…/links`: never its user,
    password, host, port or query. The operator who set ROUTER_DATABASE_URL knows the rest; nobody else
    reading a log needs the database's address."""
    if text.startswith("sqlite:///"):
        return text.split("?", 1)[0]
    try:
        name = make_url(text).database or ""
    except (ValueError, sa.exc.ArgumentError):
        name = ""
    return f"postgresql://…/{name}" if name and name.isprintable() and len(name) <= 63 else "postgresql://…"


def _make_engine(url: URL, bounded: bool = True) -> Engine:
    if url.get_backend_name() == "sqlite":
        # Threads and processes share the file; a writer waits up to 30 s for another's lock. Write-ahead
        # logging: readers (every router's clicks) never wait for a writer (the API, a command), nor it for them.
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        sa.event.listen(engine, "connect", _write_ahead)
        return engine
    # Nothing waits on PostgreSQL unbounded: a connection, a free one from the pool, a statement (but a
    # migration's, `bounded=False`, which may rewrite a large table).
    options = {"options": f"-c statement_timeout={STATEMENT_SECONDS * 1000}"} if bounded else {}
    return sa.create_engine(url, pool_pre_ping=True, pool_timeout=STATEMENT_SECONDS,
                            connect_args={"connect_timeout": STATEMENT_SECONDS, **options})


def _write_ahead(connection: Any, record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def _sqlite_parent(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def _guarded(text: str, password: str | None, host: str | None = None, port: int | None = None) -> Iterator[None]:
    """A driver's or SQLAlchemy's error as StoreError: the display URL and the driver's first line, with
    the password, should the driver have echoed it, blotted out. The original is not chained (its text
    may carry the statement and parameters)."""
    try:
        yield
    except sa.exc.SQLAlchemyError as error:
        original = getattr(error, "orig", None) or error
        lines = str(original).strip().splitlines()
        reason = lines[0] if lines else type(original).__name__
        if password:
            reason = reason.replace(password, "***")
        if host:  # the driver names where it connected ("connection to server at \"10.0.0.5\", port 5432 failed")
            reason = reason.replace(host, "…")
        if port:
            reason = reason.replace(f"port {port}", "port …")
        raise StoreError(f"database {display_url(text)}: {reason}") from None


def _quiet_alembic() -> None:
    """Alembic's progress lines (plugins set up, each step run) say nothing an operator needs in the router's log."""
    logging.getLogger("alembic").setLevel(logging.WARNING)


def upgrade(url: str) -> None:
    """Bring the database to the newest schema (Alembic `upgrade head`); makes a SQLite file's directory if
    missing. Idempotent: an up-to-date database is left as it is."""
    _quiet_alembic()
    from alembic import command
    from alembic.config import Config

    target = engine_url(url)
    _sqlite_parent(target)
    engine = _make_engine(target, bounded=False)
    try:
        with _guarded(url, target.password, target.host, target.port), engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    finally:
        engine.dispose()


SCHEMA_HEAD = "0001"  # the newest migration's revision (router/serve/migrations; a test holds them equal)


def schema_revision(url: str) -> str | None:
    """The revision the database's schema is at (Alembic's `alembic_version`), None for none yet: read with
    SQLAlchemy alone, so a router whose schema is current never loads Alembic (megabytes it would keep)."""
    target = engine_url(url)
    _sqlite_parent(target)
    engine = _make_engine(target)
    version = sa.table("alembic_version", sa.column("version_num"))
    try:
        with _guarded(url, target.password, target.host, target.port), engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.select(version.c.version_num)).scalar()
    finally:
        engine.dispose()


def schema_behind(url: str) -> str:
    """Why the database's schema is not the one this version needs (a sentence that says to run `adlink-router
    db upgrade`), or "" when it is. StoreError when the database does not answer."""
    current = schema_revision(url)
    if current == SCHEMA_HEAD:
        return ""
    have = f"is at schema {current}" if current else "has no links schema yet"
    return (f"database {display_url(url)} {have}; this version needs {SCHEMA_HEAD}: run `adlink-router db "
            f"upgrade` (with the same {SETTING})")


# --- records ----------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _tags(value: Any) -> builtins.list[str]:
    if not isinstance(value, list | tuple) or not all(isinstance(tag, str) and 0 < len(tag) <= 64
                                                      for tag in value):
        raise ValueError("tags must be a list of strings of 1 to 64 characters")
    return list(dict.fromkeys(value))  # once each, in the order given


def _check(row: dict[str, Any]) -> dict[str, Any]:
    """A link row's fields checked alike on both databases; `tags` comes back as a list."""
    for name in _SHORT:
        if name in row and row[name] is not None and (not isinstance(row[name], str) or len(row[name]) > 64):
            raise ValueError(f"{name} must be a string of at most 64 characters")
    if "code" in row and not row["code"]:
        raise ValueError("code must not be empty")
    for name in _TEXTS:
        if name in row and row[name] is not None and not isinstance(row[name], str):
            raise ValueError(f"{name} must be a string")
    if "url" in row and not row["url"]:
        raise ValueError("url must not be empty")
    for name in ("max_clicks", "clicks"):
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a whole number, 0 or more")
    for name in ("disabled", "custom"):
        if name in row and not isinstance(row[name], bool):
            raise ValueError(f"{name} must be true or false")
    for name in ("expires_at", "created_at", "updated_at"):
        value = row.get(name)
        if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
            raise ValueError(f"{name} must be a datetime with a time zone")
    if "tags" in row:
        row["tags"] = _tags(row["tags"])
    return row


def _new_row(record: Mapping[str, Any], version: int, now: datetime) -> dict[str, Any]:
    unknown = set(record) - _CREATABLE
    if unknown:
        raise ValueError(f"a link has no field {sorted(unknown)[0]!r}")
    missing = [name for name in _REQUIRED if record.get(name) is None]
    if missing:
        raise ValueError(f"a link needs {missing[0]}")
    row = _check({"tags": [], "clicks": 0, "disabled": False, "custom": False, "created_at": now, "updated_at": now,
                  **{column.name: None for column in links.columns if column.nullable}, **record})
    return {**row, "version": version}


def _stored(row: dict[str, Any]) -> dict[str, Any]:
    """A checked row as the database keeps it: the tags as their JSON array."""
    if "tags" in row:
        return {**row, "tags": json.dumps(row["tags"], ensure_ascii=False, separators=(",", ":"))}
    return row


def _link(row: sa.Row[Any]) -> dict[str, Any]:
    found = dict(row._mapping)
    found["tags"] = json.loads(found["tags"])
    return found


def _token(row: sa.Row[Any]) -> dict[str, Any]:
    found = dict(row._mapping)
    found.pop("hash", None)
    return found


def _token_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _Nothing(Exception):
    """Control flow: nothing was found, roll the transaction back."""


# --- the store --------------------------------------------------------------------------------------------


class LinkStore:
    """Links, tokens and the change counter in one database (ROUTER_DATABASE_URL). Sync: a server calls it
    from a thread. `upgrade(url)` first; `close()` at the end."""

    def __init__(self, url: str) -> None:
        target = engine_url(url)
        self._text = url
        self._password = target.password
        self._host, self._port = target.host, target.port  # blotted out of errors, as the password is
        self._engine = _make_engine(target)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> LinkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with _guarded(self._text, self._password, self._host, self._port), self._engine.begin() as conn:
            yield conn

    @staticmethod
    def _bump(conn: Connection) -> int:
        """The change counter, plus one: first in every link write, so it holds the write lock until commit."""
        bumped = conn.execute(sa.update(counter).where(counter.c.id == 1)
                              .values(value=counter.c.value + 1).returning(counter.c.value)).scalar_one()
        return int(bumped)

    @staticmethod
    def _write_tags(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
        pairs = [{"code": row["code"], "tag": tag} for row in rows for tag in row["tags"]]
        if pairs:
            conn.execute(sa.insert(link_tags), pairs)

    # links

    def create(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one link: code, url and created_by needed. A code already used: CodeTaken."""
        return self.create_many([record])[0]

    def create_many(self, records: Iterable[Mapping[str, Any]]) -> builtins.list[dict[str, Any]]:
        """Insert links all or nothing, in one transaction (executemany). Any code taken, in the database or
        twice in `records`: CodeTaken, and nothing is written."""
        pending = list(records)
        if not pending:
            return []
        now = _now()
        rows = [_new_row(record, 0, now) for record in pending]
        seen: set[str] = set()
        for row in rows:
            if row["code"] in seen:
                raise CodeTaken(row["code"])
            seen.add(row["code"])
        with self._transaction() as conn:
            version = self._bump(conn)
            codes = [row["code"] for row in rows]
            for start in range(0, len(codes), _CHUNK):
                taken = conn.execute(sa.select(links.c.code).where(links.c.code.in_(codes[start:start + _CHUNK]))
                                     .limit(1)).scalar()
                if taken is not None:
                    raise CodeTaken(taken)
            for row in rows:
                row["version"] = version
            conn.execute(sa.insert(links), [_stored(row) for row in rows])
            self._write_tags(conn, rows)
            for start in range(0, len(codes), _CHUNK):
                conn.execute(sa.delete(link_deletions).where(link_deletions.c.code.in_(codes[start:start + _CHUNK])))
        return [{column.name: row[column.name] for column in links.columns} for row in rows]

    def get(self, code: str) -> dict[str, Any] | None:
        with self._transaction() as conn:
            row = conn.execute(sa.select(links).where(links.c.code == code)).first()
        return None if row is None else _link(row)

    def list(self, tag: str | None = None, advertiser: str | None = None, cursor: str | None = None,
             limit: int = 100) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """Links in code order, those with `tag` and/or `advertiser` only when given; a page of at most
        `limit` after `cursor` (keyset: the last code of the page before), and the next page's cursor, None
        on the last page."""
        if not 0 < limit <= MAX_LIST:
            raise ValueError(f"limit must be 1 to {MAX_LIST}")
        query = sa.select(links)
        if tag is not None:
            query = query.join(link_tags, link_tags.c.code == links.c.code).where(link_tags.c.tag == tag)
        if advertiser is not None:
            query = query.where(links.c.advertiser == advertiser)
        if cursor is not None:
            query = query.where(links.c.code > cursor)
        with self._transaction() as conn:
            rows = conn.execute(query.order_by(links.c.code).limit(limit + 1)).all()
        items = [_link(row) for row in rows[:limit]]
        return items, (items[-1]["code"] if len(rows) > limit else None)

    def update(self, code: str, changes: Mapping[str, Any]) -> dict[str, Any] | None:
        """Change some of a link's fields (not its code, creator or clicks); None when there is no such link."""
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise ValueError(f"a link's {sorted(unknown)[0]!r} cannot be changed")
        values = _check(dict(changes))
        try:
            with self._transaction() as conn:
                version = self._bump(conn)
                done = conn.execute(sa.update(links).where(links.c.code == code)
                                    .values(**_stored(values), updated_at=_now(), version=version))
                if done.rowcount != 1:
                    raise _Nothing
                if "tags" in values:
                    conn.execute(sa.delete(link_tags).where(link_tags.c.code == code))
                    self._write_tags(conn, [{"code": code, "tags": values["tags"]}])
                row = conn.execute(sa.select(links).where(links.c.code == code)).one()
        except _Nothing:
            return None
        return _link(row)

    def delete(self, code: str) -> bool:
        """Delete a link (its deletion is kept, with its version, for changed_since); False if none."""
        try:
            with self._transaction() as conn:
                version = self._bump(conn)
                conn.execute(sa.delete(link_tags).where(link_tags.c.code == code))
                if conn.execute(sa.delete(links).where(links.c.code == code)).rowcount != 1:
                    raise _Nothing
                conn.execute(sa.delete(link_deletions).where(link_deletions.c.code == code))
                conn.execute(sa.insert(link_deletions).values(code=code, version=version))
        except _Nothing:
            return False
        return True

    def count_click(self, code: str, max_clicks: int | None = None) -> bool:
        """Count one click, atomically, unless the link's clicks have reached its max_clicks (as stored, and
        also `max_clicks` when the caller passes the limit it knows). True when counted; False when the limit
        is reached or there is no such link. One conditional UPDATE: exact across processes."""
        query = (sa.update(links).where(links.c.code == code)
                 .where(sa.or_(links.c.max_clicks.is_(None), links.c.clicks < links.c.max_clicks)))
        if max_clicks is not None:
            query = query.where(links.c.clicks < max_clicks)
        with self._transaction() as conn:
            return conn.execute(query.values(clicks=links.c.clicks + 1)).rowcount == 1

    def add_clicks(self, counts: Mapping[str, int]) -> None:
        """Add clicks counted elsewhere (a router's links without max_clicks, counted in the process and
        written every few seconds) to their links: one UPDATE per link, in one transaction; a link since
        deleted is skipped. Not a change: the counter is not bumped."""
        items = [(code, count) for code, count in counts.items() if count > 0]
        if not items:
            return
        with self._transaction() as conn:
            for code, count in sorted(items):  # one order for every writer: no deadlock between routers
                conn.execute(sa.update(links).where(links.c.code == code).values(clicks=links.c.clicks + count))

    def change_counter(self) -> int:
        """The change counter: the version of the latest link write (0: none yet)."""
        with self._transaction() as conn:
            return int(conn.execute(sa.select(counter.c.value).where(counter.c.id == 1)).scalar_one())

    def get_many(self, codes: Iterable[str]) -> builtins.list[dict[str, Any]]:
        """The links among `codes` that exist, in no particular order."""
        wanted = builtins.list(dict.fromkeys(codes))
        found: builtins.list[dict[str, Any]] = []
        with self._transaction() as conn:
            for start in range(0, len(wanted), _CHUNK):
                found += [_link(row) for row in conn.execute(
                    sa.select(links).where(links.c.code.in_(wanted[start:start + _CHUNK])))]
        return found

    def changes_since(self, version: int) -> builtins.list[tuple[str, int]]:
        """(code, version) of every link written or deleted after `version`, in version order: what a router
        must look at again (only the codes: most of what changed is not kept by any one router)."""
        with self._transaction() as conn:
            written = conn.execute(sa.select(links.c.code, links.c.version).where(links.c.version > version)).all()
            deleted = conn.execute(sa.select(link_deletions.c.code, link_deletions.c.version)
                                   .where(link_deletions.c.version > version)).all()
        changes = [(code, int(number)) for code, number in (*written, *deleted)]
        return sorted(changes, key=lambda change: (change[1], change[0]))

    def changed_since(self, version: int) -> builtins.list[dict[str, Any]]:
        """Links written after `version`, and `{"code", "version", "deleted": True}` for links deleted
        after it, in version order."""
        with self._transaction() as conn:
            written = [_link(row) for row in conn.execute(
                sa.select(links).where(links.c.version > version).order_by(links.c.version, links.c.code))]
            deleted = [{**row._mapping, "deleted": True} for row in conn.execute(
                sa.select(link_deletions).where(link_deletions.c.version > version)
                .order_by(link_deletions.c.version, link_deletions.c.code))]
        return sorted([*written, *deleted], key=lambda item: (item["version"], item["code"]))

    # tokens

    def create_token(self, scope: str, advertiser: str | None = None,
                     expires_at: datetime | None = None) -> tuple[str, dict[str, Any]]:
        """A new API token: its text (`alr_<id>_<secret>`, shown this once, never stored) and its record."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
        _check({"advertiser": advertiser, "expires_at": expires_at})
        token_id = secrets.token_hex(8)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode("ascii")
        text = f"{TOKEN_PREFIX}_{token_id}_{secret}"
        record = {"id": token_id, "scope": scope, "advertiser": advertiser, "expires_at": expires_at,
                  "created_at": _now(), "revoked": False}
        with self._transaction() as conn:
            conn.execute(sa.insert(tokens).values(**record, hash=_token_hash(text)))
        return text, record

    def token_for(self, text: str) -> dict[str, Any] | None:
        """The record of the token whose text this is; None for an unknown, revoked or expired one."""
        parts = text.split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            return None
        digest = _token_hash(text)
        with self._transaction() as conn:
            row = conn.execute(sa.select(tokens).where(tokens.c.hash == digest)).first()
        if row is None or not hmac.compare_digest(row.hash, digest) or row.id != parts[1] or row.revoked:
            return None
        if row.expires_at is not None and row.expires_at <= _now():
            return None
        return _token(row)

    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token for good; False if there is no such token."""
        with self._transaction() as conn:
            return conn.execute(sa.update(tokens).where(tokens.c.id == token_id).values(revoked=True)).rowcount == 1

"""`adlink-router db`, `tokens` and `links`: the short links' database from the command line.

The commands translate their options into the JSON body the API takes and hand it to
router.serve.link_admin.LinkAdmin as the CLI actor (an administrator: whoever holds the database's
credentials). Every check of a link lives there, so a link the CLI writes is one the API would write, and
refusals carry the same sentences, each under the option it came from (`--max-clicks: …`).

Each command reads the database from ROUTER_DATABASE_URL. SQLite is embedded: a command brings its schema
up to date itself (as `serve` does by default), so the first `links create` on a machine just works. A
PostgreSQL database is shared by a fleet whose routers run one schema: a command never migrates it, it
refuses an out-of-date one and says to run `adlink-router db upgrade`, as a deployment does once.

Exit status: 0 done; 1 the database failed or holds no such link or token (or an old schema); 2 a mistake
in the command line or the settings, nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import IO, TYPE_CHECKING, Any

from router.decision.short_links import FIELD_NAMES, STAMP_CHANNELS, LinkFieldErrors, read_link_fields

if TYPE_CHECKING:  # loaded when a command runs: importing SQLAlchemy would slow every other command's start
    from router.serve.config import Settings
    from router.serve.link_admin import LinkAdmin
    from router.serve.link_store import LinkStore

DONE, FAILED, USAGE = 0, 1, 2

Runner = Callable[[argparse.Namespace, IO[str]], int]

# Each link field's option, by its JSON name (router.decision.short_links.FIELD_NAMES): how a refusal of a
# field is shown, and how `--clear` names it. `limit` is the list's.
OPTIONS = {
    "url": "--url", "slug": "--slug", "channel": "--channel", "advertiser": "--advertiser", "campaign": "--campaign",
    "tags": "--tag", "title": "--title", "description": "--description", "image": "--image",
    "expires_at": "--expires-at", "max_clicks": "--max-clicks", "disabled": "--disabled", "limit": "--limit",
}
if not set(FIELD_NAMES) <= set(OPTIONS):
    raise ImportError("router.link_commands: a link field has no option")


def _nullable(name: str) -> bool:
    """Whether a PATCH may give the field as null, as read_link_fields says (it alone knows)."""
    try:
        read_link_fields({name: None}, allowed_hosts=(), now=datetime.now(UTC), partial=True)
    except LinkFieldErrors:
        return False
    return True


# `--clear NAME`: a field's JSON name with '-' for '_' (`expires-at`): those that may be null, and `tags`, which
# is cleared to the empty list (a link always has one). Not the slug: a link's code never changes.
CLEARABLE = tuple(name.replace("_", "-") for name in FIELD_NAMES
                  if name == "tags" or (name != "slug" and _nullable(name)))

# The scopes as link_store.SCOPES has them (a test checks): named here so that building the parser does not
# load the database's modules.
SCOPE_HELP = {
    "admin": "every link, and every advertiser's",
    "links:write": "creates, changes and reads the links of one advertiser (--advertiser)",
    "links:read": "reads links: every advertiser's, or with --advertiser one advertiser's",
}
_DURATION = re.compile(r"(?P<amount>[0-9]{1,6})(?P<unit>[dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class CommandError(Exception):
    """What stops a command: one sentence on stderr, and the exit status (USAGE or FAILED)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --- the parsers ------------------------------------------------------------------------------------------


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`db`, `tokens` and `links`, each with its commands."""
    database_epilog = ("The database is ROUTER_DATABASE_URL (default: an SQLite file, "
                       "$XDG_DATA_HOME/adlink-router/links.db).")
    db = commands.add_parser("db", help="the short links' database: bring its schema up to date",
                             description="The short links' database.", epilog=database_epilog)
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = db_commands.add_parser(
        "upgrade", help="bring the schema to the newest (run once per release on PostgreSQL; safe to repeat)",
        description="Bring the database's schema to the newest version; an up-to-date one is left as it is.",
        epilog=database_epilog)
    upgrade.set_defaults(run=_command(run_db_upgrade))

    tokens = commands.add_parser("tokens", help="create and revoke the API's tokens",
                                 description="API tokens for /api/links.", epilog=database_epilog)
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="COMMAND")
    create = token_commands.add_parser(
        "create", help="create a token; it is printed once, alone on the last line",
        description="Create an API token. Its id, scope, advertiser and expiry are printed, then the token "
        "itself, alone on the last line of standard output: it is shown this once, and the database keeps "
        "only its hash.", epilog=database_epilog)
    create.add_argument("--scope", required=True, choices=tuple(SCOPE_HELP), metavar="SCOPE",
                        help="; ".join(f"{scope}: {words}" for scope, words in SCOPE_HELP.items()))
    create.add_argument("--advertiser", metavar="ID",
                        help="the one advertiser the token covers (required for links:write)")
    create.add_argument("--expires", metavar="WHEN",
                        help="when the token stops working: a duration (30d, 12h, 90m) or an ISO 8601 time with "
                        "an offset (2030-01-31T18:00:00+08:00); default: never")
    create.set_defaults(run=_command(run_tokens_create))
    revoke = token_commands.add_parser("revoke", help="revoke a token for good",
                                       description="Revoke an API token for good.", epilog=database_epilog)
    revoke.add_argument("id", metavar="ID", help="the token's id, as `tokens create` printed it")
    revoke.set_defaults(run=_command(run_tokens_revoke))

    links = commands.add_parser(
        "links", help="create, list, show and change short links (/s/CODE)",
        description="Short links (/s/CODE), as the API manages them; each link is printed as the API's JSON, "
        "its short_url made with ROUTER_PUBLIC_URL.", epilog=database_epilog)
    link_commands = links.add_subparsers(dest="links_command", required=True, metavar="COMMAND")
    create = link_commands.add_parser("create", help="create a short link and print it as JSON",
                                      description="Create a short link and print it as JSON.",
                                      epilog=database_epilog)
    _link_options(create, creating=True)
    create.set_defaults(run=_command(run_links_create))

    listing = link_commands.add_parser(
        "list", help="print links as JSON lines, in code order",
        description="Print links, one JSON object per line, in code order. When more follow, the next "
        "page's cursor is printed on stderr; --all reads every page.", epilog=database_epilog)
    listing.add_argument("--tag", help="only the links with this tag")
    listing.add_argument("--advertiser", metavar="ID", help="only this advertiser's links")
    listing.add_argument("--cursor", help="start after this code (the cursor the previous page printed)")
    listing.add_argument("--limit", type=int, default=100, metavar="N",
                         help="links per page, 1 to 1000 (default: 100)")
    listing.add_argument("--all", action="store_true", help="follow the cursors to the last link")
    listing.set_defaults(run=_command(run_links_list, untouched="nothing was listed"))

    show = link_commands.add_parser("show", help="print one link as JSON", description="Print one link as JSON.",
                                    epilog=database_epilog)
    show.add_argument("code", metavar="CODE", help="the link's code or slug")
    show.set_defaults(run=_command(run_links_show))

    update = link_commands.add_parser(
        "update", help="change some of a link's fields",
        description="Change the fields given, and only those; --clear FIELD empties one. Prints the link.",
        epilog=database_epilog)
    update.add_argument("code", metavar="CODE", help="the link's code or slug")
    _link_options(update, creating=False)
    update.add_argument("--clear", action="append", choices=CLEARABLE, metavar="FIELD",
                        type=lambda text: text.strip().replace("_", "-"),
                        help=f"empty a field (repeatable): one of {', '.join(CLEARABLE)}")
    update.set_defaults(run=_command(run_links_update))

    for name, disabled, words in (("disable", True, "its short URL stops redirecting"),
                                  ("enable", False, "its short URL redirects again")):
        switch = link_commands.add_parser(name, help=f"{name} a link: {words}", description=f"{name.title()} a "
                                          f"link: {words}. Prints the link.", epilog=database_epilog)
        switch.add_argument("code", metavar="CODE", help="the link's code or slug")
        switch.set_defaults(run=_command(run_links_switch), disabled=disabled)


def _link_options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    """A link's fields as options, each stored under its JSON name; None (left out of the body) when not given."""
    parser.add_argument("--url", required=creating,
                        help="the Taobao or Tmall link (or share text) to open; checked as a /go click checks it")
    parser.add_argument("--slug", help="a readable code instead of a random one (3-64 of A-Z, a-z, 0-9 and '-')"
                        if creating else "a link's slug can't be changed (create another link)")
    parser.add_argument("--channel", help=f"the channel its clicks are stamped with: {', '.join(STAMP_CHANNELS)}")
    parser.add_argument("--advertiser", metavar="ID", help="the advertiser the link belongs to")
    parser.add_argument("--campaign", metavar="ID", help="the campaign the link belongs to")
    parser.add_argument("--tag", dest="tags", action="append", metavar="TAG",
                        help="a tag (a-z, 0-9, '-'), repeatable" + ("" if creating else "; replaces every tag"))
    parser.add_argument("--title", help="its preview's title")
    parser.add_argument("--description", help="its preview's description")
    parser.add_argument("--image", metavar="URL", help="its preview's image, an https URL")
    parser.add_argument("--expires-at", dest="expires_at", metavar="TIME",
                        help="when it stops redirecting: ISO 8601 with an offset, e.g. 2030-01-31T18:00:00+08:00")
    parser.add_argument("--max-clicks", dest="max_clicks", type=int, metavar="N",
                        help="the clicks it redirects, at most (1 or more)")
    parser.add_argument("--disabled", action="store_const", const=True, default=None,
                        help="create it disabled (`links enable CODE` turns it on)" if creating
                        else "disable it (as `links disable CODE`)")


# --- running a command --------------------------------------------------------------------------------------


def _command(run: Runner, untouched: str = "nothing was written") -> Runner:
    """`run`, its refusals printed on stderr and turned into an exit status; `untouched` says, after refused
    options, what was not done."""

    def guarded(args: argparse.Namespace, out: IO[str]) -> int:
        from router.serve.link_admin import Forbidden, NotFound
        from router.serve.link_store import StoreError

        try:
            return run(args, out)
        except CommandError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.status
        except LinkFieldErrors as bad:
            # Each refused field under the option it came from (`--clear FIELD` for one being cleared).
            cleared = {name.replace("-", "_") for name in getattr(args, "clear", None) or ()}
            for name, message in bad.fields.items():
                shown = f"--clear {name.replace('_', '-')}" if name in cleared else OPTIONS.get(name, name)
                print(f"{shown}: {message}", file=sys.stderr)
            count = len(bad.fields)
            summary = f"{count} option{'s are' if count != 1 else ' is'} not valid" if count else bad.error
            print(f"error: {summary}; {untouched}", file=sys.stderr)
            return USAGE
        except (NotFound, Forbidden, StoreError) as err:  # StoreError's message never shows a password
            print(f"error: {err}", file=sys.stderr)
            return FAILED

    return guarded


def _settings() -> Settings:
    from router.serve.config import Settings

    try:
        return Settings.from_env(serving=False)
    except ValueError as err:  # ROUTER_DATABASE_URL, ROUTER_PUBLIC_URL and the other settings' sentences
        raise CommandError(str(err), USAGE) from None


@contextlib.contextmanager
def _store(settings: Settings) -> Iterator[LinkStore]:
    """The database, its schema current: SQLite's brought up to date here, PostgreSQL's refused when it is not
    (a fleet's routers run one schema; its migration is a deployment's step, `db upgrade`)."""
    from router.serve.link_store import LinkStore, schema_behind, upgrade

    url = settings.database_url
    if url.startswith("sqlite:"):
        upgrade(url)
    else:
        behind = schema_behind(url)
        if behind:
            raise CommandError(behind, FAILED)
    store = LinkStore(url)
    try:
        yield store
    finally:
        store.close()


def _admin(settings: Settings, store: LinkStore, *, writes: bool) -> LinkAdmin:
    """LinkAdmin over `store`; a writing one announces each change on ROUTER_REDIS_URL, when set, so that running
    routers read it at once rather than at their next poll (announcing never fails a write)."""
    from router.serve.config import check_redis_url
    from router.serve.link_admin import LinkAdmin
    from router.serve.link_changes import announce

    redis_url = ""
    if writes:
        try:
            redis_url = check_redis_url(os.environ.get("ROUTER_REDIS_URL", ""))
        except ValueError as err:
            raise CommandError(str(err), USAGE) from None

    def changed() -> None:
        announce(redis_url)  # unheard (no store, or it did not answer): the routers' polling catches up

    return LinkAdmin(store, allowed_hosts=settings.allowed_hosts, public_url=settings.public_url, changed=changed)


def _print_json(value: object, out: IO[str], *, lines: bool = False) -> None:
    out.write(json.dumps(value, ensure_ascii=False, indent=None if lines else 2) + "\n")


# --- db -----------------------------------------------------------------------------------------------------


def run_db_upgrade(args: argparse.Namespace, out: IO[str]) -> int:
    from router.serve.link_store import display_url, upgrade

    url = _settings().database_url
    upgrade(url)
    out.write(f"{display_url(url)}: the short links' schema is up to date\n")
    return DONE


# --- tokens -------------------------------------------------------------------------------------------------


def run_tokens_create(args: argparse.Namespace, out: IO[str]) -> int:
    settings = _settings()
    now = datetime.now(UTC)
    advertiser = _token_advertiser(args.scope, args.advertiser, settings.allowed_hosts, now)
    expires_at = _token_expiry(args.expires, settings.allowed_hosts, now)
    with _store(settings) as store:
        text, record = store.create_token(args.scope, advertiser, expires_at)
    out.write(f"id: {record['id']}\n")
    out.write(f"scope: {record['scope']}\n")
    out.write(f"advertiser: {record['advertiser'] or '(every advertiser)'}\n")
    expiry = record["expires_at"]
    out.write(f"expires: {expiry.isoformat(timespec='seconds') if expiry else 'never'}\n")
    out.write(text + "\n")  # alone on the last line: `| tail -n 1` takes it
    out.flush()
    print(f"note: the token (the last line) is shown this once; the database keeps only its hash. Store it now; "
          f"`adlink-router tokens revoke {record['id']}` revokes it", file=sys.stderr)
    return DONE


def _token_advertiser(scope: str, advertiser: str | None, allowed_hosts: tuple[str, ...],
                      now: datetime) -> str | None:
    """The advertiser a token is limited to, read as a link's advertiser is (a token must match its links)."""
    if advertiser is None:
        if scope == "links:write":
            raise CommandError("a links:write token writes one advertiser's links: give --advertiser ID "
                               "(or --scope admin for every link)", USAGE)
        return None
    if scope == "admin":
        raise CommandError("an admin token covers every advertiser: drop --advertiser, or give --scope "
                           "links:write or links:read for one advertiser's links", USAGE)
    try:
        return read_link_fields({"advertiser": advertiser}, allowed_hosts=allowed_hosts, now=now,
                                partial=True).advertiser
    except LinkFieldErrors as bad:
        raise CommandError(f"--advertiser: {bad.fields['advertiser']}", USAGE) from None


def _token_expiry(text: str | None, allowed_hosts: tuple[str, ...], now: datetime) -> datetime | None:
    """--expires: a duration from now (30d, 12h, 90m), or a time as a link's expires_at is read."""
    if text is None:
        return None
    duration = _DURATION.fullmatch(text.strip())
    if duration:
        amount = int(duration["amount"])
        if amount == 0:
            raise CommandError(f"--expires {text.strip()} is no time at all; give e.g. 30d, 12h or 90m", USAGE)
        return now + timedelta(**{_UNITS[duration["unit"]]: amount})  # 6 digits of days: year 4700 at most
    try:
        return read_link_fields({"expires_at": text}, allowed_hosts=allowed_hosts, now=now,
                                partial=True).expires_at
    except LinkFieldErrors as bad:
        raise CommandError(f"--expires: {bad.fields['expires_at']}; or a duration such as 30d, 12h or 90m",
                           USAGE) from None


def run_tokens_revoke(args: argparse.Namespace, out: IO[str]) -> int:
    with _store(_settings()) as store:
        if not store.revoke_token(args.id):
            raise CommandError(f"no token has the id {args.id[:64]!r}", FAILED)
    out.write(f"revoked token {args.id}\n")
    return DONE


# --- links --------------------------------------------------------------------------------------------------


def _body(args: argparse.Namespace) -> dict[str, Any]:
    """The options given, as the API's JSON body (JSON names; those not given left out)."""
    return {name: getattr(args, name) for name in FIELD_NAMES if getattr(args, name, None) is not None}


def run_links_create(args: argparse.Namespace, out: IO[str]) -> int:
    from router.serve.link_admin import CLI_ACTOR

    settings = _settings()
    with _store(settings) as store:
        link = _admin(settings, store, writes=True).create(_body(args), CLI_ACTOR)
    _print_json(link, out)
    return DONE


def run_links_list(args: argparse.Namespace, out: IO[str]) -> int:
    from router.serve.link_admin import CLI_ACTOR

    settings = _settings()
    cursor: str | None = args.cursor
    with _store(settings) as store:
        admin = _admin(settings, store, writes=False)
        while True:
            items, cursor = admin.list(CLI_ACTOR, tag=args.tag, advertiser=args.advertiser, cursor=cursor,
                                       limit=args.limit)
            for item in items:
                _print_json(item, out, lines=True)
            if cursor is None or not args.all:
                break
    if cursor is not None:
        out.flush()  # the links before the note that more follow
        print(f"next cursor: {cursor} (more links follow: add --cursor {cursor}, or --all for every page)",
              file=sys.stderr)
    return DONE


def run_links_show(args: argparse.Namespace, out: IO[str]) -> int:
    from router.serve.link_admin import CLI_ACTOR

    settings = _settings()
    with _store(settings) as store:
        link = _admin(settings, store, writes=False).get(args.code, CLI_ACTOR)
    _print_json(link, out)
    return DONE


def run_links_update(args: argparse.Namespace, out: IO[str]) -> int:
    from router.serve.link_admin import CLI_ACTOR

    body = _body(args)
    for name in args.clear or ():
        field = name.replace("-", "_")
        if field in body:
            raise CommandError(f"--clear {name} and {OPTIONS[field]} are both given; give one of them", USAGE)
        body[field] = [] if field == "tags" else None  # a link always has a list of tags: the empty one
    if not body:
        raise CommandError("nothing to change: give the fields to change (e.g. --title TEXT) or --clear FIELD",
                           USAGE)
    settings = _settings()
    with _store(settings) as store:
        link = _admin(settings, store, writes=True).update(args.code, body, CLI_ACTOR)
    _print_json(link, out)
    return DONE


def run_links_switch(args: argparse.Namespace, out: IO[str]) -> int:
    """`links disable` and `links enable`."""
    from router.serve.link_admin import CLI_ACTOR

    settings = _settings()
    with _store(settings) as store:
        link = _admin(settings, store, writes=True).disable(args.code, CLI_ACTOR, disabled=args.disabled)
    _print_json(link, out)
    return DONE

"""Managing short links: what the JSON API (router.serve.links_api) and the CLI (`adlink-router links`) do,
written once so that both check the same things and answer the same JSON.

A caller acts as an `Actor`: an API token's record, or the CLI (an administrator on the machine, with the
database's credentials). Scopes:

- `admin`: every link;
- `links:write`: creates, changes and deletes the links of its one advertiser (a link it creates without an
  advertiser gets it), and reads them;
- `links:read`: reads links; those of its advertiser only when the token names one.

Every body is read by router.decision.short_links.read_link_fields (each bad field named; a destination
refused with the very sentence a click on it would get), so nothing reaches the store that a click would
refuse. Writes call `changed()` afterwards: the routers of a fleet hear of it (router.serve.kept_links).
The store is synchronous: the API calls these methods from a thread.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.decision.short_links import (
    FIELD_NAMES,
    LinkFieldErrors,
    LinkFields,
    new_code,
    patched,
    read_link_fields,
    to_json,
)
from router.decision.types import Channel
from router.serve.link_store import MAX_LIST, CodeTaken, LinkStore

MAX_BATCH = 1000  # links per `links:batch` call
_CODE_ATTEMPTS = 8  # fresh random codes tried when one is taken (3.5e12 codes: a second try is already rare)
_ANSWER_EXTRAS = ("code", "short_url", "created_at", "updated_at", "clicks", "created_by")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks: a token's id (a link's `created_by`), its scope and the advertiser it is limited to."""

    token_id: str
    scope: str
    advertiser: str | None = None

    @property
    def writes(self) -> bool:
        return self.scope in ("admin", "links:write")


CLI_ACTOR = Actor("cli", "admin")


class Forbidden(Exception):
    """The actor's scope does not cover this (HTTP 403); the message says what it does cover."""


class NotFound(Exception):
    """No link has this code (HTTP 404)."""

    def __init__(self, code: str) -> None:
        super().__init__(f"no link has the code {code[:64]!r}")


class SlugTaken(LinkFieldErrors):
    """A slug already names a link (HTTP 409)."""


class LinkAdmin:
    def __init__(self, store: LinkStore, *, allowed_hosts: tuple[str, ...], public_url: str,
                 changed: Callable[[], None] = lambda: None, clock: Callable[[], datetime] | None = None,
                 random_bytes: Callable[[int], bytes] | None = None) -> None:
        self.store = store
        self.allowed_hosts = allowed_hosts
        self.public_url = public_url.rstrip("/")
        self.changed = changed
        self._clock = clock or (lambda: datetime.now(UTC))
        self._new_code = (lambda: new_code(random_bytes)) if random_bytes else new_code

    # --- reading ------------------------------------------------------------------------------------------

    def short_url(self, code: str) -> str:
        return f"{self.public_url}/s/{code}"

    def answer(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A stored link as the API answers it: its fields under their JSON names, then code, short_url,
        created_at, updated_at, clicks and the creator's token id."""
        fields = to_json(fields_of(row))
        if row.get("expires_at") is not None:  # in UTC, as the database gives it back: every answer alike
            fields["expires_at"] = row["expires_at"].astimezone(UTC).isoformat()
        fields["slug"] = row["code"] if row.get("custom") else None
        return {**{name: fields.get(name) for name in FIELD_NAMES},
                "code": row["code"], "short_url": self.short_url(row["code"]),
                "created_at": row["created_at"].isoformat(), "updated_at": row["updated_at"].isoformat(),
                "clicks": int(row["clicks"]), "created_by": row["created_by"]}

    def get(self, code: str, actor: Actor) -> dict[str, Any]:
        return self.answer(self._readable(code, actor))

    def list(self, actor: Actor, *, tag: str | None = None, advertiser: str | None = None,
             cursor: str | None = None, limit: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        """A page of links (code order) and the next page's cursor (None on the last)."""
        if actor.advertiser is not None:
            if advertiser is not None and advertiser != actor.advertiser:
                raise Forbidden(f"this token reads the links of advertiser {actor.advertiser!r} only")
            advertiser = actor.advertiser
        if not 0 < limit <= MAX_LIST:
            raise LinkFieldErrors({"limit": f"give a whole number from 1 to {MAX_LIST}"}, "bad query parameter")
        tag = tag.lower() if tag is not None and tag.isascii() else tag  # tags are kept in lower case
        rows, following = self.store.list(tag=tag, advertiser=advertiser, cursor=cursor, limit=limit)
        return [self.answer(row) for row in rows], following

    # --- writing ------------------------------------------------------------------------------------------

    def create(self, data: object, actor: Actor) -> dict[str, Any]:
        """One link from a JSON body; LinkFieldErrors (400), SlugTaken (409), Forbidden (403)."""
        return self.create_batch([data], actor, single=True)[0]

    def create_batch(self, items: object, actor: Actor, *, single: bool = False) -> builtins.list[dict[str, Any]]:
        """Links from a list of JSON bodies, all or nothing: one bad link, and nothing is written; the
        errors name each bad field as `links[i].field`."""
        self._check_writes(actor)
        if not isinstance(items, list):
            raise LinkFieldErrors({"links": "expected a list of links"}, "expected {\"links\": [ … ]}")
        if not items:
            raise LinkFieldErrors({"links": "the list is empty; give 1 to 1000 links"}, "no links given")
        if len(items) > MAX_BATCH:
            raise LinkFieldErrors({"links": f"{len(items)} links given; the limit is {MAX_BATCH} per call"},
                                  "too many links in one call")
        now = self._clock()
        errors: dict[str, str] = {}
        records: builtins.list[dict[str, Any]] = []
        slugs: dict[str, int] = {}
        for index, item in enumerate(items):
            where = "" if single else f"links[{index}]."
            try:
                fields = read_link_fields(item, allowed_hosts=self.allowed_hosts, now=now)
                fields = self._owned(fields, actor)
            except LinkFieldErrors as bad:
                errors.update({f"{where}{name}": message for name, message in bad.fields.items()}
                              or {where.rstrip(".") or "body": bad.error})
                continue
            if fields.slug is not None:
                if fields.slug in slugs:
                    first = slugs[fields.slug]
                    errors[f"{where}slug"] = f"{fields.slug!r} is given twice in this batch (links[{first}])"
                    continue
                slugs[fields.slug] = index
            records.append(_record(fields, actor))
        if errors:
            count = len({name.partition(".")[0] for name in errors})
            verb = "are" if count != 1 else "is"
            summary = (LinkFieldErrors(errors).error if single
                       else f"{count} of {len(items)} links {verb} not valid; nothing was written")
            raise LinkFieldErrors(errors, summary)
        for _ in range(_CODE_ATTEMPTS):
            for record in records:
                if not record["custom"] and "code" not in record:
                    record["code"] = self._new_code()
            try:
                rows = self.store.create_many(records)
                break
            except CodeTaken as taken:
                record = next(record for record in records if record["code"] == taken.code)
                if record["custom"]:
                    index = records.index(record)
                    name = "slug" if single else f"links[{index}].slug"
                    raise SlugTaken({name: f"{taken.code!r} is taken; choose another slug"},
                                    "the slug is taken") from None
                del record["code"]  # a random code met another link's: draw again
        else:  # pragma: no cover - 8 collisions in 3.5e12 codes
            raise RuntimeError("could not find a free code")
        self.changed()
        return [self.answer(row) for row in rows]

    def update(self, code: str, data: object, actor: Actor) -> dict[str, Any]:
        """Change some fields (PATCH: only those given; null clears one)."""
        self._check_writes(actor)
        row = self._readable(code, actor)
        patch = read_link_fields(data, allowed_hosts=self.allowed_hosts, now=self._clock(), partial=True)
        if "slug" in patch.given:
            raise LinkFieldErrors({"slug": "a link's code or slug can't be changed; create another link"})
        merged = self._owned(patched(fields_of(row), patch), actor)
        changes = {name: value for name, value in _record(merged, actor).items()
                   if name in patch.given or name == "advertiser"}
        changes.pop("code", None)
        changes.pop("custom", None)
        changes.pop("created_by", None)
        updated = self.store.update(code, changes)
        if updated is None:
            raise NotFound(code)
        self.changed()
        return self.answer(updated)

    def disable(self, code: str, actor: Actor, disabled: bool = True) -> dict[str, Any]:
        return self.update(code, {"disabled": disabled}, actor)

    def delete(self, code: str, actor: Actor) -> None:
        self._check_writes(actor)
        self._readable(code, actor)
        if not self.store.delete(code):
            raise NotFound(code)
        self.changed()

    # --- scopes -------------------------------------------------------------------------------------------

    def _check_writes(self, actor: Actor) -> None:
        if not actor.writes:
            raise Forbidden(f"a {actor.scope} token can't change links; it takes an admin or links:write token")

    def _readable(self, code: str, actor: Actor) -> dict[str, Any]:
        row = self.store.get(code)
        if row is None:
            raise NotFound(code)
        if actor.advertiser is not None and row["advertiser"] != actor.advertiser:
            raise Forbidden(f"this token covers the links of advertiser {actor.advertiser!r} only")
        return row

    @staticmethod
    def _owned(fields: LinkFields, actor: Actor) -> LinkFields:
        """The link as this actor may write it: a links:write token's advertiser filled in, another refused."""
        if actor.advertiser is None:
            return fields
        if fields.advertiser is None:
            return LinkFields(**{**_as_dict(fields), "advertiser": actor.advertiser}, given=fields.given)
        if fields.advertiser != actor.advertiser:
            raise Forbidden(f"this token writes the links of advertiser {actor.advertiser!r} only, "
                            f"not {fields.advertiser[:64]!r}")
        return fields


def _as_dict(fields: LinkFields) -> dict[str, Any]:
    return {name: getattr(fields, name) for name in FIELD_NAMES}


def _record(fields: LinkFields, actor: Actor) -> dict[str, Any]:
    """A link's fields as the store keeps them."""
    record: dict[str, Any] = {
        "url": fields.url, "channel": fields.channel.value if fields.channel else None,
        "advertiser": fields.advertiser, "campaign": fields.campaign, "tags": list(fields.tags or ()),
        "title": fields.title, "description": fields.description, "image": fields.image,
        "expires_at": fields.expires_at, "max_clicks": fields.max_clicks, "disabled": bool(fields.disabled),
        "custom": fields.slug is not None, "created_by": actor.token_id,
    }
    if fields.slug is not None:
        record["code"] = fields.slug
    return record


def fields_of(row: Mapping[str, Any]) -> LinkFields:
    """A stored link's fields as LinkFields (the slug aside: the code is the store's)."""
    return LinkFields(
        url=row["url"], channel=Channel(row["channel"]) if row.get("channel") else None,
        advertiser=row.get("advertiser"), campaign=row.get("campaign"), tags=tuple(row.get("tags") or ()),
        title=row.get("title"), description=row.get("description"), image=row.get("image"),
        expires_at=row.get("expires_at"), max_clicks=row.get("max_clicks"), disabled=bool(row.get("disabled")),
    )

"""Short links (`GET /s/<code>`): what one is, and how the JSON that creates or changes one is read.

Pure, like the rest of the wing: no storage, no web framework. The API layer reads a JSON body, hands the
decoded value to `read_link_fields`, and answers a `LinkFieldErrors` with `err.to_json()`:
`{"error": "…", "fields": {"url": "…", "max_clicks": "…"}}`, every bad field named at once.

The one thing this module must never allow is an open redirect. A short link stands for a `/go` click
(`long_link`), so its `url` is checked exactly as the click will check it: `parse_link` against the same
allowlist, the same length limit on what it becomes, and the same sentence when it is refused. The text is
stored as given, so the click reads it exactly as `/go?url=` would; nothing is re-serialised on the way.
The preview `image` is not a destination (nobody is redirected there), so it is not held to the allowlist,
but it must be a plain https URL on a DNS name: no userinfo, no IP literal, no control characters.

Codes are 7 characters of base62 drawn without modulo bias (`new_code`); a custom slug is a readable
alternative that may not shadow a path the router serves (`RESERVED_SLUGS`). Whether a code or slug is
already taken is the store's business, not this module's: it must check a slug against codes too.
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote_plus

from router.decision.click import MAX_LINK_CHARS, MAX_QUERY_LENGTH
from router.decision.links import LinkError, parse_link
from router.decision.types import MAX_TAG_CHARS, Channel, is_tag

# --- codes and slugs -------------------------------------------------------------------------------------

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CODE_LENGTH = 7  # 62**7 ≈ 3.5e12 codes: guessing a live one is hopeless, and it still fits in a chat line
# A byte below 248 (= 4 × 62) maps to a character by `% 62` with every character equally likely; a byte
# of 248 or more is thrown away and another drawn (rejection sampling: no modulo bias).
_UNBIASED_LIMIT = 256 - 256 % len(BASE62)
_BYTES_PER_DRAW = 16  # enough for 7 characters almost always (each byte is kept with p = 248/256)

SLUG_MIN_CHARS = 3
SLUG_MAX_CHARS = 64
_SLUG_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_CODE_SHAPED_RE = re.compile(r"[A-Za-z0-9-]{1,64}")

# Words a slug may not be, in any case. Short links live at /s/<slug>, but a slug is also what people read
# and type, and a future router may serve links from the root (`/<slug>`) too: so every path the router
# serves today (the /go and /ad clicks, /s itself, the /outcome beacon, the health and readiness probes,
# the metrics scrape) and the ones it may serve (the JSON API, an admin UI and its login, static assets,
# the API's docs and OpenAPI schema) is kept out, lest a link shadow it or pass for it.
RESERVED_SLUGS: frozenset[str] = frozenset({
    "s", "go", "ad", "outcome", "healthz", "readyz", "metrics",  # served today (router.serve)
    "api", "admin", "login", "logout", "static", "assets", "docs", "openapi", "livez",  # may be served
})


def new_code(random_bytes: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh code: CODE_LENGTH characters of base62, each uniformly random.

    `random_bytes(n)` gives n random bytes (os.urandom; a test passes its own)."""
    chars: list[str] = []
    while len(chars) < CODE_LENGTH:
        for byte in random_bytes(_BYTES_PER_DRAW):
            if byte < _UNBIASED_LIMIT:
                chars.append(BASE62[byte % len(BASE62)])
                if len(chars) == CODE_LENGTH:
                    break
    return "".join(chars)


def slug_problem(slug: object) -> str | None:
    """Why `slug` can't be a custom slug, or None when it can."""
    if not isinstance(slug, str):
        return f"expected text, got {_json_type_name(slug)}"
    if not SLUG_MIN_CHARS <= len(slug) <= SLUG_MAX_CHARS:
        return (f"{_shown(slug)} is {len(slug)} characters long; a slug is {SLUG_MIN_CHARS} to "
                f"{SLUG_MAX_CHARS} characters")
    if not _SLUG_RE.fullmatch(slug):
        return (f"{_shown(slug)} is not a slug: use letters, digits and '-' (ASCII), not starting or "
                "ending with '-'")
    if slug.lower() in RESERVED_SLUGS:
        return f"{_shown(slug)} is reserved: the router serves or may serve that path"
    return None


def is_slug(slug: object) -> bool:
    """Whether `slug` may be a custom slug."""
    return slug_problem(slug) is None


# What a short link fixes itself: its destination, its channel stamp and (signed) its ad fields. A click on it
# may carry what a share or an ad platform appends (from=, isappinstalled=, click ids), never these.
_OWN_PARAMETERS = frozenset({"url", "ch", "src", "adv", "cmp", "exp", "kid", "sig"})


def own_parameter(query: str) -> str:
    """Why a query added to a short link's URL can't be (it sets what the link fixes), or "" when it can."""
    for chunk in query.split("&"):
        name = unquote_plus(chunk.partition("=")[0]) if "%" in chunk or "+" in chunk else chunk.partition("=")[0]
        if name in _OWN_PARAMETERS:
            return (f"parameter {name[:20]!r} can't be added to a short link: its destination, channel and ad "
                    "fields are its own")
    return ""


def is_code_shaped(text: object) -> bool:
    """Whether a `/s/<segment>` could name a code or slug at all (1–64 of [A-Za-z0-9-]): anything else is a
    404 without a lookup."""
    return isinstance(text, str) and _CODE_SHAPED_RE.fullmatch(text) is not None


# --- the link's fields -------------------------------------------------------------------------------------

STAMP_CHANNELS: tuple[str, ...] = tuple(c.value for c in Channel if c is not Channel.AD)
"""The channels a link may be stamped with, as `/go?ch=` takes them. Not `ad`: a /go click ignores `ch=ad`
(the ad channel comes only from a verified /ad link), so a link stamped so would never be counted as one."""

MAX_LABEL_CHARS = 64  # advertiser, campaign
MAX_TAGS = 20
MAX_TITLE_CHARS = 200
MAX_DESCRIPTION_CHARS = 500
MAX_IMAGE_CHARS = 1000
MAX_CLICKS_LIMIT = 1_000_000_000
_MAX_TIME_CHARS = 64
_SHOWN_CHARS = 60

# Only the characters RFC 3986 allows in a URL (so an image URL is already in its serialised form and
# needs no quoting in a page: no quotes, '<', '>', spaces or backslashes), '%' only as a %xx escape.
_IMAGE_RE = re.compile(
    r"(?i:https)://(?P<authority>[^/?#]*)(?P<rest>[/?#][A-Za-z0-9\-._~:/?#@!$&'()*+,;=%]*)?"
)
_BAD_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_IMAGE_HOST_RE = re.compile(r"(?P<host>[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*)\.?(?::(?P<port>[0-9]{1,5}))?")
# A WHATWG URL parser reads a host whose last label is numeric (or 0x-hex) as IPv4: 10.0.0.1, 2130706433.
_IPV4ISH_LABEL_RE = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
# Unicode categories refused in text fields: controls, surrogates, private use, unassigned, line and
# paragraph separators, and format characters (bidi overrides would make a title read differently on a
# page), except the zero-width joiner that emoji sequences are made with.
_BAD_CATEGORIES = frozenset({"Cc", "Cs", "Co", "Cn", "Zl", "Zp", "Cf"})
_ALLOWED_FORMAT = frozenset({"\u200d"})


@dataclass(frozen=True, slots=True)
class LinkFields:
    """A short link's fields, under their JSON names (to_json).

    From a full read (create), `url`, `tags` and `disabled` are always set; the rest is None when not
    given. From a partial read (PATCH), a field is None when the body did not give it, or gave it as null
    (to clear it): `given` tells the two apart. `given` is bookkeeping, not a JSON field."""

    url: str | None = None  # the destination, as given: what `/go?url=` reads
    slug: str | None = None
    channel: Channel | None = None  # stamped as `/go?ch=`; never Channel.AD
    advertiser: str | None = None
    campaign: str | None = None
    tags: tuple[str, ...] | None = None
    title: str | None = None
    description: str | None = None
    image: str | None = None  # the preview image: https, on a DNS name
    expires_at: datetime | None = None  # timezone-aware
    max_clicks: int | None = None
    disabled: bool | None = None
    given: frozenset[str] = field(default=frozenset(), compare=False, repr=False)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(LinkFields) if f.name != "given")
"""The JSON names, in order."""

# Fields a body may give as null (meaning: not set; in a PATCH, clear it). url, tags and disabled always
# have a value: give [] or false instead.
_NULLABLE = frozenset(FIELD_NAMES) - {"url", "tags", "disabled"}


class LinkFieldErrors(ValueError):
    """The body can't be a short link's fields. `fields` maps each bad field (JSON name; an unknown one as
    given) to a sentence saying what is wrong with it; `error` sums it up. Empty `fields`: the body itself
    is wrong (not a JSON object)."""

    def __init__(self, fields: dict[str, str], error: str | None = None) -> None:
        self.fields = dict(fields)
        if error is None:
            count = len(self.fields)
            error = f"{count} field{'s' if count != 1 else ''} of the link {'are' if count != 1 else 'is'} not valid"
        self.error = error
        details = "; ".join(f"{name}: {message}" for name, message in self.fields.items())
        super().__init__(f"{error}: {details}" if details else error)

    def to_json(self) -> dict[str, Any]:
        """What an API answers (with a 400 or 422): {"error": …, "fields": {name: message}}."""
        return {"error": self.error, "fields": dict(self.fields)}


_MAX_UNKNOWN_SHOWN = 10


def read_link_fields(
    data: object, *, allowed_hosts: tuple[str, ...], now: datetime, partial: bool = False
) -> LinkFields:
    """A decoded JSON body -> LinkFields, or LinkFieldErrors naming every bad field.

    `allowed_hosts`: the destinations the server's clicks accept (ClickSettings.allowed_hosts). `now`
    (timezone-aware): `expires_at` must be after it. `partial` (PATCH): only the fields given are read and
    checked; `url` may be left out."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not isinstance(data, dict):
        raise LinkFieldErrors({}, f"expected a JSON object of link fields, got {_json_type_name(data)}")
    errors: dict[str, str] = {}
    unknown = [name for name in data if name not in _READERS]
    for name in unknown[:_MAX_UNKNOWN_SHOWN]:
        shown = name if isinstance(name, str) and len(name) <= _SHOWN_CHARS else _shown(str(name))
        errors[shown] = f"unknown field; the fields are {', '.join(FIELD_NAMES)}"
    if len(unknown) > _MAX_UNKNOWN_SHOWN:
        errors["…"] = f"{len(unknown) - _MAX_UNKNOWN_SHOWN} more unknown fields"
    values: dict[str, Any] = {}
    context = _Context(allowed_hosts, now, data.get("channel"))
    for name, reader in _READERS.items():
        if name not in data:
            if not partial and name == "url":
                errors["url"] = _MISSING_URL
            continue
        value = data[name]
        if value is None:
            if name in _NULLABLE:
                values[name] = None
            else:
                errors[name] = f"may not be null; {_NOT_NULL[name]}"
            continue
        try:
            values[name] = reader(value, context)
        except _FieldError as err:
            errors[name] = str(err)
    if errors:
        raise LinkFieldErrors(errors)
    given = frozenset(name for name in FIELD_NAMES if name in data)
    if not partial:
        values.setdefault("tags", ())
        values.setdefault("disabled", False)
    return LinkFields(**values, given=given)


def patched(base: LinkFields, patch: LinkFields) -> LinkFields:
    """`base` with the fields a partial read gave (`patch.given`) replaced, those given as null cleared."""
    return dataclasses.replace(base, **{name: getattr(patch, name) for name in patch.given})


@dataclass(frozen=True, slots=True)
class Preview:
    """What a short link shows on its landing page and in link previews (og: and twitter: meta): its title,
    description and image, and its own URL."""

    title: str | None
    description: str | None
    image: str | None
    url: str


def long_link(fields: LinkFields) -> str:
    """The `/go?…` click (path and query) a short link stands for: `url`, and `ch` when a channel is set,
    each percent-encoded whole (urllib.parse.quote, nothing safe), so the click decodes exactly the text
    stored.

    Only /go: the advertiser and campaign are not part of it. A short link that is to count as an ad must
    be served as a signed /ad link (router.decision.signing.sign, with src/adv/cmp/ch), which is done where
    the signing keys are, not here."""
    if fields.url is None:
        raise ValueError("a short link without a url has no long link")
    query = f"url={quote(fields.url, safe='')}"
    if fields.channel is not None:
        query += f"&ch={quote(fields.channel.value, safe='')}"
    return f"/go?{query}"


def to_json(fields: LinkFields) -> dict[str, Any]:
    """The fields under their JSON names, those that are None left out; `expires_at` as ISO 8601 text."""
    out: dict[str, Any] = {}
    for name in FIELD_NAMES:
        value = getattr(fields, name)
        if value is None:
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Channel):
            value = value.value
        elif isinstance(value, tuple):
            value = list(value)
        out[name] = value
    return out


# --- reading each field -----------------------------------------------------------------------------------


class _FieldError(Exception):
    """One field's problem, as a sentence (without the field's name)."""


@dataclass(frozen=True, slots=True)
class _Context:
    allowed_hosts: tuple[str, ...]
    now: datetime
    channel: object  # the body's `channel`, as given: the long link's length depends on it


_MISSING_URL = "missing: give the Taobao or Tmall link (or share text) to open"
_NOT_NULL = {"url": "give the link to open", "tags": "give [] for none", "disabled": "give true or false"}


def _read_url(value: object, ctx: _Context) -> str:
    if not isinstance(value, str):
        raise _FieldError(f"expected a link as text, got {_json_type_name(value)}")
    if not value.strip():
        raise _FieldError(_MISSING_URL)
    try:
        link = parse_link(value, ctx.allowed_hosts)
    except LinkError as err:
        raise _FieldError(str(err)) from None  # the very sentence a /go click on it gets
    longest = max(len(link.web_url or ""), len(link.mobile_url or ""))
    if longest > MAX_LINK_CHARS:
        raise _FieldError(f"the link is {longest} characters long; the limit is {MAX_LINK_CHARS}")
    # The click must fit in a /go query, with the channel given or (a PATCH may set one later) the longest.
    stamp = ctx.channel if isinstance(ctx.channel, str) and ctx.channel in STAMP_CHANNELS else None
    longest_stamp = len(stamp) if stamp else max(len(channel) for channel in STAMP_CHANNELS)
    query = len(long_link(LinkFields(url=value))) - len("/go?") + len("&ch=") + longest_stamp
    if query > MAX_QUERY_LENGTH:
        raise _FieldError(f"the link's /go query would be {query} characters; the limit is {MAX_QUERY_LENGTH}")
    return value


def _read_slug(value: object, ctx: _Context) -> str:
    problem = slug_problem(value)
    if problem:
        raise _FieldError(problem)
    assert isinstance(value, str)
    return value


def _read_channel(value: object, ctx: _Context) -> Channel:
    if not isinstance(value, str):
        raise _FieldError(f"expected one of {', '.join(STAMP_CHANNELS)}, got {_json_type_name(value)}")
    if value == Channel.AD.value:
        raise _FieldError("'ad' can't be stamped: the ad channel comes only from a verified /ad link "
                          f"(a /go click ignores ch=ad); give one of {', '.join(STAMP_CHANNELS)}")
    if value not in STAMP_CHANNELS:
        raise _FieldError(f"{_shown(value)} is not a channel; give one of {', '.join(STAMP_CHANNELS)}")
    return Channel(value)


def _bounded(value: object, limit: int, expected: str) -> str:
    """`value` when it is a string of at most `limit` characters; else the field's error."""
    if not isinstance(value, str):
        raise _FieldError(f"expected {expected}, got {_json_type_name(value)}")
    if len(value) > limit:
        raise _FieldError(f"is {len(value)} characters long; the limit is {limit}")
    return value


def _text(value: object, limit: int) -> str:
    """A printable text field of at most `limit` characters."""
    value = _bounded(value, limit, "text")
    for position, char in enumerate(value):
        if not char.isascii() or not char.isprintable():
            category = unicodedata.category(char)
            if category in _BAD_CATEGORIES and char not in _ALLOWED_FORMAT:
                raise _FieldError(f"contains a control or invisible character (U+{ord(char):04X}) at "
                                  f"position {position}; use printable text only")
    return value


def _read_label(value: object, ctx: _Context) -> str:
    text = _text(value, MAX_LABEL_CHARS)
    if not text.strip():
        raise _FieldError("is empty; give a name or leave the field out")
    return text


def _read_title(value: object, ctx: _Context) -> str:
    return _text(value, MAX_TITLE_CHARS)


def _read_description(value: object, ctx: _Context) -> str:
    return _text(value, MAX_DESCRIPTION_CHARS)


def _read_tags(value: object, ctx: _Context) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _FieldError(f"expected a list of tags, got {_json_type_name(value)}")
    if len(value) > MAX_TAGS:
        raise _FieldError(f"{len(value)} tags given; the limit is {MAX_TAGS}")
    tags: dict[str, None] = {}  # insertion-ordered: duplicates dropped, order kept
    for index, tag in enumerate(value):
        if not isinstance(tag, str):
            raise _FieldError(f"tag {index} is {_json_type_name(tag)}, not text")
        lowered = tag.lower() if tag.isascii() else tag
        if not is_tag(lowered):
            raise _FieldError(f"tag {index} ({_shown(tag)}) is not a tag: 1 to {MAX_TAG_CHARS} of a-z, 0-9 and '-'")
        tags[lowered] = None
    return tuple(tags)


def _read_image(value: object, ctx: _Context) -> str:
    value = _bounded(value, MAX_IMAGE_CHARS, "an https URL as text")
    if not value.isascii() or any(not char.isprintable() or char.isspace() for char in value):
        raise _FieldError(f"{_shown(value)} contains whitespace, a control character or non-ASCII text; "
                          "give an https URL with its non-ASCII parts percent-encoded")
    if "\\" in value:
        raise _FieldError(f"{_shown(value)} contains a backslash, which browsers read as '/'; give a plain URL")
    if not value[:8].lower().startswith("https://"):
        raise _FieldError(f"{_shown(value)} is not an https URL; an image must be served over https")
    match = _IMAGE_RE.fullmatch(value)
    if not match or _BAD_PERCENT_RE.search(value):
        raise _FieldError(f"{_shown(value)} is not a valid URL: it holds characters a URL may not")
    authority = match.group("authority")
    if "@" in authority:
        raise _FieldError(f"{_shown(value)} has a user name or password (before '@'); give the plain URL")
    if authority.startswith("["):
        raise _FieldError(f"{_shown(value)} names an IP address; give a host name")
    host_match = _IMAGE_HOST_RE.fullmatch(authority)
    if not host_match:
        raise _FieldError(f"{_shown(value)} has no valid host name")
    labels = host_match.group("host").split(".")
    if _IPV4ISH_LABEL_RE.fullmatch(labels[-1]):
        raise _FieldError(f"{_shown(value)} names an IP address; give a host name")
    if len(labels) < 2:
        raise _FieldError(f"{_shown(value)} names a bare host name; give a public one such as img.example.com")
    if any(label.startswith("-") or label.endswith("-") for label in labels):
        raise _FieldError(f"{_shown(value)} has no valid host name")
    port = host_match.group("port")
    if port is not None and not 1 <= int(port) <= 65535:
        raise _FieldError(f"{_shown(value)} has an invalid port")
    return value


def _read_expires_at(value: object, ctx: _Context) -> datetime:
    expected = "an ISO 8601 time with an offset, such as 2030-01-31T18:00:00+08:00"
    if not isinstance(value, str):
        raise _FieldError(f"expected {expected}, got {_json_type_name(value)}")
    if len(value) > _MAX_TIME_CHARS or not value.isascii():
        raise _FieldError(f"{_shown(value)} is not a time; expected {expected}")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _FieldError(f"{_shown(value)} is not a time; expected {expected}") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise _FieldError(f"{_shown(value)} has no offset, so the moment it names is unknown; expected {expected}")
    if when <= ctx.now:
        raise _FieldError(f"{_shown(value)} has already passed; give a time in the future")
    return when


def _read_max_clicks(value: object, ctx: _Context) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _FieldError(f"expected a whole number from 1 to {MAX_CLICKS_LIMIT}, got {_json_type_name(value)}")
    if not 1 <= value <= MAX_CLICKS_LIMIT:
        raise _FieldError(f"{value} is out of range; give a whole number from 1 to {MAX_CLICKS_LIMIT}")
    return value


def _read_disabled(value: object, ctx: _Context) -> bool:
    if not isinstance(value, bool):
        raise _FieldError(f"expected true or false, got {_json_type_name(value)}")
    return value


_READERS: dict[str, Callable[[object, _Context], Any]] = {
    "url": _read_url,
    "slug": _read_slug,
    "channel": _read_channel,
    "advertiser": _read_label,
    "campaign": _read_label,
    "tags": _read_tags,
    "title": _read_title,
    "description": _read_description,
    "image": _read_image,
    "expires_at": _read_expires_at,
    "max_clicks": _read_max_clicks,
    "disabled": _read_disabled,
}
if tuple(_READERS) != FIELD_NAMES:
    raise ImportError("router.decision.short_links: LinkFields and its readers disagree")


def _shown(value: str) -> str:
    return repr(value if len(value) <= _SHOWN_CHARS else value[: _SHOWN_CHARS - 1] + "…")


def _json_type_name(value: object) -> str:
    """What a decoded JSON value is called in JSON's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return f"a number with a decimal point or exponent ({value!r})"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

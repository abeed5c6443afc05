"""The closed vocabulary of rule conditions: one class per condition type, declared once.

A condition type is the key a rule writes under `when:` and one class that says, in one place:

- `reads`: what it reads of a click (the parts below, or a request header). Everything that keeps an
  answer for more than one click derives its key from these declarations (router.decision.memo), and
  so does whether a rule is timeless: a condition can't be added in a way that hands one click another's
  answer;
- `build`: its rule-file value checked and compiled (bad values are rejected when the rules load, never
  at match time), and `value_schema`: the JSON Schema of that value;
- `meaning` and `example`: its line in the rules reference;
- `holds`, `explain` and `describe`: whether a click passes, and why not, in domain words.

`@condition_type` checks those declarations and adds the class to CONDITION_TYPES, which the loader,
the schema, the reference and the memo keys all read: a new condition type is one class.

Conditions never read the clock or parse a user agent: everything they look at is already in the Context.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from router.decision.apps import Catalogue
from router.decision.slots import slot_constructor
from router.decision.types import (
    EXPANDABLE,
    MAX_TAG_CHARS,
    OS,
    TAG_PATTERN,
    Channel,
    Client,
    Context,
    Device,
    Expansion,
    LinkKind,
    Platform,
    Version,
    is_tag,
)
from router.decision.versions import RANGE_PART_PATTERN, VersionRange, VersionRangeError, format_version, parse_range


class ConditionError(ValueError):
    """A rule's condition value is wrong; the message names the value and what is expected."""


class Part(StrEnum):
    """The parts of a click a condition can read (besides a request header: `Header`)."""

    LINK = "link"  # the destination: its kind, platform, ids, and what became of a short link
    CLIENT = "client"  # what the user agent says: app, OS, device, versions, mini program
    CHANNEL = "channel"  # where the link was tapped
    AD = "ad"  # the ad claim of an /ad link, verified or not
    TIME = "time"  # when the click happens
    VISITOR = "visitor"  # who clicks (the sticky visitor id)
    TAGS = "tags"  # the tags of the short link clicked (/s/<code>); none for any other click


@dataclass(frozen=True, slots=True)
class Header:
    """A request header a condition reads, by its lower-case name."""

    name: str

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower():
            raise ValueError(f"a header is named in lower case, got {self.name!r}")


Read = Part | Header
PER_CLICK = frozenset({Part.TIME, Part.VISITOR})
"""Parts that differ from one click to the next: an answer that read them is never kept for another click."""

# Which part of a click each field of a Context is. `forward` (the attribution ids passed on) is read by no
# condition; `headers` holds the Header reads. A Context field added without a part here stops the import.
CONTEXT_PARTS: dict[str, Part | None] = {
    "link": Part.LINK, "expansion": Part.LINK, "expansion_reason": Part.LINK,
    "client": Part.CLIENT,
    "channel": Part.CHANNEL, "channel_reason": Part.CHANNEL,
    "ad": Part.AD,
    "at": Part.TIME,
    "visitor": Part.VISITOR, "in_rollout": Part.VISITOR,
    "tags": Part.TAGS,
    "forward": None, "headers": None,
}
if set(CONTEXT_PARTS) != set(Context.__dataclass_fields__):
    raise ImportError(f"router.decision.conditions: Context fields without a part: "
                      f"{sorted(set(Context.__dataclass_fields__) ^ set(CONTEXT_PARTS))}")


def header(ctx: Context, name: str) -> str:
    """The value of a request header the rules read (`name` in lower case), "" when the click had none."""
    for key, value in ctx.headers:
        if key == name:
            return value
    return ""


class UndeclaredRead(Exception):
    """A condition used a part of a click it does not declare in `reads`."""


class _Unread:
    """Stands in for a part of a click that was not declared: any use of it raises UndeclaredRead."""

    __slots__ = ("_what",)
    _what: str

    def __init__(self, what: str) -> None:
        object.__setattr__(self, "_what", what)

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise UndeclaredRead(f"read the click's {self._what} without declaring it in `reads`")

    __getattr__ = __hash__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __bool__ = __iter__ = __len__ = __contains__ = __format__ = __str__ = _refuse

    def __repr__(self) -> str:
        return f"<undeclared {self._what}>"


def declared_only(ctx: Context, reads: frozenset[Read]) -> Context:
    """`ctx` with every part not in `reads` replaced by a stand-in that raises UndeclaredRead when used, and
    only the declared headers: what a condition that declares `reads` may look at."""
    fields = {}
    for name, part in CONTEXT_PARTS.items():
        if part is None or part in reads:
            fields[name] = getattr(ctx, name)
        else:
            fields[name] = _Unread(f"{name} ({part})")
    names = {read.name for read in reads if isinstance(read, Header)}
    fields["headers"] = tuple(pair for pair in ctx.headers if pair[0] in names) if names else _Unread("headers")
    fields["forward"] = _Unread("forwarded ids")
    return Context(**fields)


NO_RULE: str = _Unread("rule id")  # type: ignore[assignment]
"""The rule id a client-only condition is asked with (Condition.holds): using it raises UndeclaredRead."""


def client_only(client: Client) -> Context:
    """A click of which only the client may be read: what a condition that reads the client alone sees."""
    return _new_context(*_UNREAD_BEFORE_CLIENT, client, *_UNREAD_AFTER_CLIENT)


# The stand-ins client_only puts in, in Context's field order around the client (made once: a new client's
# kind is worked out per never-seen Client), and the constructor that takes them all positionally.
_unread = [_Unread(f"{name} ({part or name})") for name, part in
           ((name, CONTEXT_PARTS[name]) for name in Context.__dataclass_fields__)]
_CLIENT_AT = list(Context.__dataclass_fields__).index("client")
_UNREAD_BEFORE_CLIENT, _UNREAD_AFTER_CLIENT = tuple(_unread[:_CLIENT_AT]), tuple(_unread[_CLIENT_AT + 1:])
_new_context = slot_constructor(Context)


class Condition:
    """What every condition type declares (checked by @condition_type) and does."""

    __slots__ = ()
    key: ClassVar[str]  # the name written under `when:`
    reads: ClassVar[frozenset[Read]]
    meaning: ClassVar[str]  # for the reference and the schema's description
    example: ClassVar[str]  # a `when:` entry, as a rule writes it

    @classmethod
    def build(cls: type[C], value: object, apps: Catalogue) -> C:
        """The condition from its rule-file value (already plain Python), or ConditionError. `apps`: the
        catalogue the rules are read with (router.decision.apps), for the types whose names it holds."""
        raise NotImplementedError

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        """The JSON Schema of the value written under `when: {key: …}`, with `apps` the catalogue."""
        raise NotImplementedError

    @classmethod
    def choices(cls, apps: Catalogue) -> tuple[str, ...]:
        """The closed set of names the value takes, for the reference; () when it is not a set of names."""
        return ()

    def per_click(self) -> bool:
        """Whether this condition's answer can differ between two clicks alike in all but time and visitor."""
        return not self.reads.isdisjoint(PER_CLICK)

    def holds(self, ctx: Context, rule_id: str) -> bool:
        """Whether `ctx` passes. `rule_id` is for an answer drawn per rule and visitor (a rollout's bucket): a
        condition that reads the client alone is asked once per client for every rule, and must not use it."""
        raise NotImplementedError

    def explain(self, ctx: Context) -> str:
        """Why `ctx` fails this condition, in domain words."""
        raise NotImplementedError

    def describe(self) -> str:
        """What this condition asks for, in domain words."""
        raise NotImplementedError

    def covers(self, other: Condition) -> bool:
        """Whether every click `other` lets through also passes this condition (for shadowing)."""
        return other == self


C = TypeVar("C", bound=Condition)

CONDITION_TYPES: dict[str, type[Condition]] = {}
"""Every condition type a rule may use, by its key, in the order they are declared (the reference's)."""

_DECLARED = ("key", "reads", "meaning", "example")
_IMPLEMENTED = ("build", "value_schema", "holds", "explain", "describe")


def condition_type(cls: type[C]) -> type[C]:
    """Check a condition type's declarations and add it to CONDITION_TYPES (a class decorator)."""
    name = cls.__name__
    missing = [attr for attr in _DECLARED if getattr(cls, attr, None) is None]
    if missing:
        raise TypeError(f"condition type {name} does not declare {', '.join(missing)}")
    if not isinstance(cls.key, str) or not cls.key.isidentifier() or cls.key != cls.key.lower():
        raise TypeError(f"condition type {name}: key {cls.key!r} is not a lower-case identifier")
    reads = cls.reads
    if not isinstance(reads, frozenset) or not reads or not all(isinstance(r, Part | Header) for r in reads):
        raise TypeError(f"condition type {name}: 'reads' must be a non-empty frozenset of Part and Header, "
                        f"got {reads!r}")
    abstract = [attr for attr in _IMPLEMENTED if _defined_by(cls, attr) is Condition]
    if abstract:
        raise TypeError(f"condition type {name} does not implement {', '.join(abstract)}")
    if cls.key in CONDITION_TYPES and CONDITION_TYPES[cls.key] is not cls:
        raise TypeError(f"condition key {cls.key!r} is taken by {CONDITION_TYPES[cls.key].__name__}")
    CONDITION_TYPES[cls.key] = cls
    return cls


def _defined_by(cls: type, attr: str) -> type:
    return next(klass for klass in cls.__mro__ if attr in klass.__dict__)


def build_condition(key: str, value: object, apps: Catalogue) -> Condition:
    """Build one condition from its rule-file value, or raise ConditionError (KeyError: no such type)."""
    return CONDITION_TYPES[key].build(value, apps)


# Reading rule-file values.


def _words(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _one_or_many(item: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [item, {"type": "array", "items": item, "minItems": 1}]}


def _names(value: object, allowed: dict[str, str], condition: str) -> frozenset[str]:
    """A name or a list of names (any of), each a key of `allowed`, as its value there (an enum's members,
    the catalogue's entries): what the click's fields hold too."""
    items = _as_list(value)
    if not items:
        raise ConditionError(f"'{condition}' needs at least one value; expected one of: {_words(allowed)}")
    names = set()
    for item in items:
        if not isinstance(item, str) or item not in allowed:
            close = difflib.get_close_matches(str(item), list(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {_words(allowed)}"
            raise ConditionError(f"unknown {condition} {item!r}; {hint}")
        names.add(allowed[item])
    return frozenset(names)


def _strings(value: object, condition: str) -> frozenset[str]:
    """Free-form identifiers (advertiser ids, sources): strings or numbers, compared as text."""
    items = _as_list(value)
    if not items:
        raise ConditionError(f"'{condition}' needs at least one value")
    out = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ConditionError(f"'{condition}' values must be strings, got {item!r}")
        out.add(str(item))
    return frozenset(out)


# The shapes most condition types share: one of a set of names, a version range, an ad field.


@dataclass(frozen=True, slots=True)
class OneOf(Condition):
    """The click's value (`value_of`) is one of a set of names from a closed vocabulary."""

    values: frozenset[str]
    size: int = 0  # how many names the vocabulary has (it was read with): listing them all holds for any click
    vocabulary: ClassVar[type[StrEnum]]

    @staticmethod
    def value_of(ctx: Context) -> str:
        raise NotImplementedError

    @classmethod
    def names_in(cls, apps: Catalogue) -> dict[str, str]:
        """The names the value may take, each with what the click's field holds for it."""
        return dict(cls.vocabulary._value2member_map_)

    @classmethod
    def build(cls: type[C], value: object, apps: Catalogue) -> C:
        names = cls.names_in(apps)  # type: ignore[attr-defined]
        values = _names(value, names, cls.key)
        return cls(values, len(names))  # type: ignore[call-arg]

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return _one_or_many({"enum": list(cls.choices(apps))})

    @classmethod
    def choices(cls, apps: Catalogue) -> tuple[str, ...]:
        return tuple(cls.names_in(apps))

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return self.value_of(ctx) in self.values

    def explain(self, ctx: Context) -> str:
        return f"{self.key} is {self.value_of(ctx)}, not {self._wanted()}"

    def describe(self) -> str:
        return f"{self.key} is {self._wanted()}"

    def _wanted(self) -> str:
        return " or ".join(sorted(str(value) for value in self.values))

    def covers(self, other: Condition) -> bool:
        if len(self.values) >= self.size:
            return True  # lists every value there is: it holds for any click
        return type(other) is type(self) and other.values <= self.values


@dataclass(frozen=True, slots=True)
class VersionIn(Condition):
    """The client's version (`version_of`: whose version, and the version) is inside a range."""

    range: VersionRange

    @staticmethod
    def version_of(client: Client) -> tuple[str, Version]:
        raise NotImplementedError

    @classmethod
    def build(cls: type[C], value: object, apps: Catalogue) -> C:
        if not isinstance(value, str):
            raise ConditionError(
                f"'{cls.key}' must be a quoted string such as '>=8.0.30', got {value!r}"
                " (write versions in quotes: YAML reads 8.0 as a number)"
            )
        try:
            return cls(parse_range(value))  # type: ignore[call-arg]
        except VersionRangeError as err:
            raise ConditionError(str(err)) from None

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return {"type": "string", "pattern": f"^{RANGE_PART_PATTERN}(,{RANGE_PART_PATTERN})*$"}

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return self.range.contains(self.version_of(ctx.client)[1])

    def explain(self, ctx: Context) -> str:
        whose, version = self.version_of(ctx.client)
        if not version:
            return f"{whose} version is unknown, so it is not {self.range}"
        failed = next((c for c in self.range.comparisons if not c.holds(version)), None)
        how = {">=": "older than", ">": "not newer than", "<": "not older than", "<=": "newer than"}
        verb = how.get(failed.op, "not") if failed is not None and not failed.wildcard else "not"
        return f"{whose} {format_version(version)} is {verb} {self.range}"

    def describe(self) -> str:
        return f"{self.key} {self.range}"

    def covers(self, other: Condition) -> bool:
        return type(other) is type(self) and other.range == self.range


@dataclass(frozen=True, slots=True)
class AdField(Condition):
    """A field of the ad claim (`value_of`): only a verified /ad link carries ad fields."""

    values: frozenset[str]

    @staticmethod
    def value_of(ctx: Context) -> str:
        raise NotImplementedError

    @classmethod
    def build(cls: type[C], value: object, apps: Catalogue) -> C:
        return cls(_strings(value, cls.key))  # type: ignore[call-arg]

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return _one_or_many({"type": ["string", "integer"]})

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return ctx.ad is not None and ctx.ad.verified and self.value_of(ctx) in self.values

    def explain(self, ctx: Context) -> str:
        if ctx.ad is None:
            return f"{self.key}: not an ad click"
        if not ctx.ad.verified:
            return f"{self.key}: ad fields not trusted ({ctx.ad.reason})"
        return f"{self.key} is {self.value_of(ctx) or '(none)'}, not {_words(self.values)}"

    def describe(self) -> str:
        return f"{self.key} is {' or '.join(sorted(self.values))}"

    def covers(self, other: Condition) -> bool:
        return type(other) is type(self) and other.values <= self.values


_CLIENT, _LINK = frozenset({Part.CLIENT}), frozenset({Part.LINK})


# The condition types, in the order the reference lists them.


@condition_type
class ChannelIs(OneOf):
    __slots__ = ()
    key = "channel"
    reads = frozenset({Part.CHANNEL})
    vocabulary = Channel
    meaning = "Where the link was tapped: a verified ad, a 1:1 chat, a group chat, Moments, or unknown."
    example = "channel: [moments, unknown]"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.channel


@condition_type
class AppIs(OneOf):
    __slots__ = ()
    key = "app"
    reads = _CLIENT
    meaning = ("The app the tap happens in, from the user agent: an id of the app catalogue (`apps:`, "
               "rules/apps.yaml; WeCom is never WeChat; a bot is `bot`).")
    example = "app: wechat"

    @classmethod
    def names_in(cls, apps: Catalogue) -> dict[str, str]:
        return dict(apps.by_id)

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.client.app


@condition_type
class OsIs(OneOf):
    __slots__ = ()
    key = "os"
    reads = _CLIENT
    vocabulary = OS
    meaning = "The operating system."
    example = "os: [ios, android]"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.client.os


@condition_type
class DeviceIs(OneOf):
    __slots__ = ()
    key = "device"
    reads = _CLIENT
    vocabulary = Device
    meaning = "Phone, tablet or computer."
    example = "device: desktop"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.client.device


@condition_type
class AppVersion(VersionIn):
    __slots__ = ()
    key = "app_version"
    reads = _CLIENT
    meaning = ("The version of the app the tap happens in (WeChat's MicroMessenger version, a browser's version); "
               "a quoted range, comparisons joined by commas. An unknown version matches no range.")
    example = 'app_version: ">=8.0.30,<9"'

    @staticmethod
    def version_of(client: Client) -> tuple[str, Version]:
        return str(client.app), client.app_version


@condition_type
class OsVersion(VersionIn):
    __slots__ = ()
    key = "os_version"
    reads = _CLIENT
    meaning = "The OS version, as a quoted range."
    example = 'os_version: ">=16"'

    @staticmethod
    def version_of(client: Client) -> tuple[str, Version]:
        return client.os.value, client.os_version


@condition_type
class LinkIs(OneOf):
    __slots__ = ()
    key = "link"
    reads = _LINK
    vocabulary = LinkKind
    meaning = "What kind of Taobao link was tapped."
    example = "link: item"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.link.kind


@condition_type
class PlatformIs(OneOf):
    __slots__ = ()
    key = "platform"
    reads = _LINK
    vocabulary = Platform
    meaning = "Taobao or Tmall."
    example = "platform: tmall"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.link.platform


@condition_type
@dataclass(frozen=True, slots=True)
class MiniProgram(Condition):
    wanted: bool
    key = "mini_program"
    reads = _CLIENT
    meaning = "Inside a WeChat mini program's webview."
    example = "mini_program: true"

    @classmethod
    def build(cls, value: object, apps: Catalogue) -> MiniProgram:
        if not isinstance(value, bool):
            raise ConditionError(f"'mini_program' is true or false, got {value!r}")
        return cls(value)

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return {"type": "boolean"}

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return ctx.client.mini_program is self.wanted

    def explain(self, ctx: Context) -> str:
        return "not inside a mini program" if self.wanted else "inside a mini program"

    def describe(self) -> str:
        return "inside a mini program" if self.wanted else "not inside a mini program"


@condition_type
class AdSource(AdField):
    __slots__ = ()
    key = "ad_source"
    reads = frozenset({Part.AD})
    meaning = "The ad source of a verified /ad link (an unverified link never matches)."
    example = "ad_source: unidesk"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.ad.source if ctx.ad else ""


@condition_type
class Advertiser(AdField):
    __slots__ = ()
    key = "advertiser"
    reads = frozenset({Part.AD})
    meaning = "The advertiser id of a verified /ad link."
    example = 'advertiser: ["1001", "1002"]'

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.ad.advertiser if ctx.ad else ""


@condition_type
class Campaign(AdField):
    __slots__ = ()
    key = "campaign"
    reads = frozenset({Part.AD})
    meaning = "The campaign id of a verified /ad link."
    example = "campaign: c-618"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return ctx.ad.campaign if ctx.ad else ""


def _moment(value: object, zone: ZoneInfo | None, what: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ConditionError(
                f"window {what} {value!r} is not an ISO time such as '2026-11-11T00:00:00+08:00'"
            ) from None
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    else:
        raise ConditionError(f"window {what} must be an ISO time string, got {value!r}")
    if moment.tzinfo is None:
        if zone is None:
            raise ConditionError(
                f"window {what} {value!s} has no timezone; add an offset (+08:00) or 'timezone: Asia/Shanghai'"
            )
        moment = moment.replace(tzinfo=zone)
    return moment


@condition_type
@dataclass(frozen=True, slots=True)
class Window(Condition):
    """A time window [from, until); either end may be open."""

    start: datetime | None
    end: datetime | None
    key = "window"
    reads = frozenset({Part.TIME})
    meaning = ("A time window: from (inclusive) and/or until (exclusive), ISO times with an offset, or naive "
               "times with a `timezone`.")
    example = 'window: {from: "2026-11-11T00:00:00", until: "2026-11-12T00:00:00", timezone: Asia/Shanghai}'

    @classmethod
    def build(cls, value: object, apps: Catalogue) -> Window:
        if not isinstance(value, dict):
            raise ConditionError("'window' must be a mapping with 'from' and/or 'until' (and optional 'timezone')")
        unknown = set(value) - {"from", "until", "timezone"}
        if unknown:
            raise ConditionError(f"unknown window key {sorted(unknown)[0]!r}; expected from, until, timezone")
        if "from" not in value and "until" not in value:
            raise ConditionError("'window' needs 'from', 'until' or both")
        zone = None
        if "timezone" in value:
            try:
                zone = ZoneInfo(str(value["timezone"]))
            except (ZoneInfoNotFoundError, ValueError):
                close = difflib.get_close_matches(str(value["timezone"]), sorted(available_timezones()), n=1)
                hint = f"did you mean {close[0]!r}?" if close else "use an IANA name such as Asia/Shanghai"
                raise ConditionError(f"unknown timezone {value['timezone']!r}; {hint}") from None
        start = _moment(value["from"], zone, "from") if "from" in value else None
        end = _moment(value["until"], zone, "until") if "until" in value else None
        if start is not None and end is not None and start >= end:
            raise ConditionError(f"window 'from' {start.isoformat()} is not before 'until' {end.isoformat()}")
        return cls(start, end)

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {"from": {"type": "string"}, "until": {"type": "string"}, "timezone": {"type": "string"}},
            "anyOf": [{"required": ["from"]}, {"required": ["until"]}],
        }

    def holds(self, ctx: Context, rule_id: str) -> bool:
        if self.start is not None and ctx.at < self.start:
            return False
        return self.end is None or ctx.at < self.end

    def explain(self, ctx: Context) -> str:
        # The click's time in the window's own zone, as the rule writes it: "10:00+08:00 is before 12:00+08:00"
        # reads at a glance; "02:00+00:00 is before 12:00+08:00" does not.
        edge = self.start or self.end
        zone = edge.tzinfo if edge is not None else None
        at = (ctx.at.astimezone(zone) if zone is not None else ctx.at).isoformat(timespec="seconds")
        if self.start is not None and ctx.at < self.start:
            return f"{at} is before the window opens at {self.start.isoformat(timespec='seconds')}"
        closed = self.end.isoformat(timespec="seconds") if self.end else "?"
        return f"{at} is after the window closed at {closed}"

    def describe(self) -> str:
        parts = []
        if self.start is not None:
            parts.append(f"from {self.start.isoformat(timespec='seconds')}")
        if self.end is not None:
            parts.append(f"until {self.end.isoformat(timespec='seconds')}")
        return "time " + " ".join(parts)

    def covers(self, other: Condition) -> bool:
        if not isinstance(other, Window):
            return False
        starts_inside = self.start is None or (other.start is not None and other.start >= self.start)
        ends_inside = self.end is None or (other.end is not None and other.end <= self.end)
        return starts_inside and ends_inside


def rollout_bucket(rule_id: str, visitor: str) -> float:
    """A visitor's fixed place in [0, 100) for one rule: sticky across clicks, independent across rules."""
    digest = hashlib.blake2b(f"{rule_id}\x00{visitor}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10_000 / 100


@condition_type
@dataclass(frozen=True, slots=True)
class Rollout(Condition):
    percent: float
    key = "rollout"
    reads = frozenset({Part.VISITOR})
    meaning = "A share of visitors, 0-100 percent, sticky per visitor and rule (a grayscale launch)."
    example = "rollout: 5"

    @classmethod
    def build(cls, value: object, apps: Catalogue) -> Rollout:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
            raise ConditionError(f"'rollout' is a percentage from 0 to 100, got {value!r}")
        return cls(float(value))

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return {"type": "number", "minimum": 0, "maximum": 100}

    def per_click(self) -> bool:
        # At 0 % (a pilot shipped dark) or 100 % it takes nobody or everybody: the visitor changes nothing.
        # (The what-if of explain and rule tests, `in_rollout`, is part of every kept answer's key.)
        return 0 < self.percent < 100

    def holds(self, ctx: Context, rule_id: str) -> bool:
        if ctx.in_rollout is not None:
            return ctx.in_rollout or self.percent >= 100
        return rollout_bucket(rule_id, ctx.visitor) < self.percent

    def explain(self, ctx: Context) -> str:
        if ctx.in_rollout is False:
            return f"visitor taken as outside every rollout (what-if), so outside the {self.percent:g}%"
        if self.percent <= 0:
            return "rollout is at 0%: nobody is in it yet"
        return f"visitor is outside the {self.percent:g}% rollout"

    def describe(self) -> str:
        return f"rollout {self.percent:g}%"

    def covers(self, other: Condition) -> bool:
        # Buckets are drawn per rule, so only a full rollout is sure to let a click through.
        return self.percent >= 100


def expansion_state(ctx: Context) -> Expansion:
    """What became of the click's short link: as the server recorded it, else `skipped` or `none`."""
    if ctx.expansion is not None:
        return ctx.expansion
    return Expansion.SKIPPED if ctx.link.kind in EXPANDABLE else Expansion.NONE


@condition_type
class ExpansionIs(OneOf):
    __slots__ = ()
    key = "expansion"
    reads = _LINK
    vocabulary = Expansion
    meaning = ("What became of a short or affiliate link: `expanded` (the click is on the item it points at), "
               "`failed` (the upstream failed, was too slow or redirected somewhere refused: the original link is "
               "kept), `skipped` (not tried: expansion is off, or `explain` and `rules test`, which never use the "
               "network), `none` (not a short or affiliate link).")
    example = "expansion: failed"

    @staticmethod
    def value_of(ctx: Context) -> str:
        return expansion_state(ctx)


@condition_type
@dataclass(frozen=True, slots=True)
class TagIs(Condition):
    """The short link clicked carries one of the tags (any of)."""

    values: frozenset[str]
    key = "tag"
    reads = frozenset({Part.TAGS})
    meaning = ("A tag of the short link clicked (`/s/<code>`; its tags are set when the link is made, through "
               "the API or `adlink-router links`); any of a list. A click on a long link has no tags.")
    example = "tag: spring-sale"

    @classmethod
    def build(cls, value: object, apps: Catalogue) -> TagIs:
        items = _as_list(value)
        if not items:
            raise ConditionError("'tag' needs at least one tag")
        wrong = [item for item in items if not is_tag(item)]
        if wrong:
            raise ConditionError(f"'tag' values are 1 to {MAX_TAG_CHARS} of a-z, 0-9 and '-' (as links' tags "
                                 f"are written), got {wrong[0]!r}")
        return cls(frozenset(str(item) for item in items))

    @classmethod
    def value_schema(cls, apps: Catalogue) -> dict[str, Any]:
        return _one_or_many({"type": "string", "pattern": f"^{TAG_PATTERN}$"})

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return not self.values.isdisjoint(ctx.tags)

    def explain(self, ctx: Context) -> str:
        if not ctx.tags:
            return f"the click carries no tags (not a tagged short link), not {self._wanted()}"
        return f"the link's tags are {', '.join(ctx.tags)}, not {self._wanted()}"

    def describe(self) -> str:
        return f"tag is {self._wanted()}"

    def _wanted(self) -> str:
        return " or ".join(sorted(self.values))

    def covers(self, other: Condition) -> bool:
        return type(other) is type(self) and other.values <= self.values

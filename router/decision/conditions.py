"""The closed vocabulary of rule conditions.

Each condition type is one class that does three things and keeps them
together, so they cannot drift apart: it is *built* from the value written in a
rule file (rejecting bad values then, never at match time), it *holds* or not
for a click Context, and it *explains* a failure in domain words for `explain`.

Conditions never read the clock or parse a user agent: everything they look at
is already in the Context.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from router.decision.types import OS, App, Channel, Client, Context, Device, Expansion, LinkKind, Platform
from router.decision.versions import VersionRange, VersionRangeError, format_version, parse_range


class ConditionError(ValueError):
    """A rule's condition value is wrong; the message names the value and what is expected."""


def _words(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _names(value: object, allowed: type[StrEnum], condition: str) -> frozenset[StrEnum]:
    """A name or a list of names (any of), each one of the enum's values, as enum members.

    Members, not strings: the click's fields are members too, and comparing members avoids the
    comparatively slow `.value` lookup on the per-click path."""
    items = _as_list(value)
    if not items:
        raise ConditionError(f"'{condition}' needs at least one value; expected one of: {_words(allowed)}")
    names = set()
    for item in items:
        if not isinstance(item, str) or item not in allowed._value2member_map_:
            close = difflib.get_close_matches(str(item), list(allowed._value2member_map_), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {_words(allowed)}"
            raise ConditionError(f"unknown {condition} {item!r}; {hint}")
        names.add(allowed(item))
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


@dataclass(frozen=True, slots=True)
class OneOf:
    """channel / app / os / device / link / platform: the click's value is one of a set."""

    name: str
    values: frozenset[StrEnum]
    read: Callable[[Context], StrEnum]

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return self.read(ctx) in self.values

    def explain(self, ctx: Context) -> str:
        return f"{self.name} is {self.read(ctx)}, not {self._wanted()}"

    def describe(self) -> str:
        return f"{self.name} is {self._wanted()}"

    def _wanted(self) -> str:
        return " or ".join(sorted(str(value) for value in self.values))

    def covers(self, other: Condition) -> bool:
        """Whether every click `other` lets through also passes this condition (for shadowing)."""
        if len(self.values) == len(type(next(iter(self.values)))):
            return True  # lists every value there is: it holds for any click
        return isinstance(other, OneOf) and other.name == self.name and other.values <= self.values


@dataclass(frozen=True, slots=True)
class VersionIn:
    """app_version / os_version: the client's version is inside a range."""

    name: str
    range: VersionRange
    read: Callable[[Client], tuple[str, tuple[int, ...]]]  # (whose version, the version): the client's alone

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return self.range.contains(self.read(ctx.client)[1])

    def holds_for(self, client: Client) -> bool:
        """holds() for any click from `client` (router.decision.memo: a client's kind)."""
        return self.range.contains(self.read(client)[1])

    def explain(self, ctx: Context) -> str:
        whose, version = self.read(ctx.client)
        if not version:
            return f"{whose} version is unknown, so it is not {self.range}"
        failed = next((c for c in self.range.comparisons if not c.holds(version)), None)
        how = {">=": "older than", ">": "not newer than", "<": "not older than", "<=": "newer than"}
        verb = how.get(failed.op, "not") if failed is not None and not failed.wildcard else "not"
        return f"{whose} {format_version(version)} is {verb} {self.range}"

    def describe(self) -> str:
        return f"{self.name} {self.range}"

    def covers(self, other: Condition) -> bool:
        return isinstance(other, VersionIn) and other.name == self.name and other.range == self.range


@dataclass(frozen=True, slots=True)
class AdField:
    """ad_source / advertiser / campaign: only a verified /ad link carries ad fields."""

    name: str
    values: frozenset[str]
    read: Callable[[Context], str]

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return ctx.ad is not None and ctx.ad.verified and self.read(ctx) in self.values

    def explain(self, ctx: Context) -> str:
        if ctx.ad is None:
            return f"{self.name}: not an ad click"
        if not ctx.ad.verified:
            return f"{self.name}: ad fields not trusted ({ctx.ad.reason})"
        return f"{self.name} is {self.read(ctx) or '(none)'}, not {_words(self.values)}"

    def describe(self) -> str:
        return f"{self.name} is {' or '.join(sorted(self.values))}"

    def covers(self, other: Condition) -> bool:
        return isinstance(other, AdField) and other.name == self.name and other.values <= self.values


@dataclass(frozen=True, slots=True)
class MiniProgram:
    wanted: bool

    def holds(self, ctx: Context, rule_id: str) -> bool:
        return ctx.client.mini_program is self.wanted

    def explain(self, ctx: Context) -> str:
        return "not inside a mini program" if self.wanted else "inside a mini program"

    def describe(self) -> str:
        return "inside a mini program" if self.wanted else "not inside a mini program"

    def covers(self, other: Condition) -> bool:
        return other == self


@dataclass(frozen=True, slots=True)
class Window:
    """A time window [from, until); either end may be open."""

    start: datetime | None
    end: datetime | None

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


@dataclass(frozen=True, slots=True)
class Rollout:
    percent: float

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


Condition = OneOf | VersionIn | AdField | MiniProgram | Window | Rollout


_EXPANDABLE = frozenset({LinkKind.SHORT, LinkKind.AFFILIATE})


def expansion_state(ctx: Context) -> Expansion:
    """What became of the click's short link: as the server recorded it, else `skipped` or `none`."""
    if ctx.expansion is not None:
        return ctx.expansion
    return Expansion.SKIPPED if ctx.link.kind in _EXPANDABLE else Expansion.NONE


def _app_version(client: Client) -> tuple[str, tuple[int, ...]]:
    return client.app.value, client.app_version


def _os_version(client: Client) -> tuple[str, tuple[int, ...]]:
    return client.os.value, client.os_version


def _version_range(value: object, condition: str) -> VersionRange:
    if not isinstance(value, str):
        raise ConditionError(
            f"'{condition}' must be a quoted string such as '>=8.0.30', got {value!r}"
            " (write versions in quotes: YAML reads 8.0 as a number)"
        )
    try:
        return parse_range(value)
    except VersionRangeError as err:
        raise ConditionError(str(err)) from None


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


def _window(value: object) -> Window:
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
    return Window(start, end)


def _rollout(value: object) -> Rollout:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ConditionError(f"'rollout' is a percentage from 0 to 100, got {value!r}")
    return Rollout(float(value))


def _mini_program(value: object) -> MiniProgram:
    if not isinstance(value, bool):
        raise ConditionError(f"'mini_program' is true or false, got {value!r}")
    return MiniProgram(value)


class ConditionName(StrEnum):
    """Every condition a rule may use; the values are the keys written under `when:`."""

    CHANNEL = "channel"
    APP = "app"
    OS = "os"
    DEVICE = "device"
    APP_VERSION = "app_version"
    OS_VERSION = "os_version"
    LINK = "link"
    PLATFORM = "platform"
    MINI_PROGRAM = "mini_program"
    AD_SOURCE = "ad_source"
    ADVERTISER = "advertiser"
    CAMPAIGN = "campaign"
    WINDOW = "window"
    ROLLOUT = "rollout"
    EXPANSION = "expansion"


_BUILDERS: dict[ConditionName, Callable[[object], Condition]] = {
    ConditionName.CHANNEL: lambda v: OneOf("channel", _names(v, Channel, "channel"), lambda c: c.channel),
    ConditionName.APP: lambda v: OneOf("app", _names(v, App, "app"), lambda c: c.client.app),
    ConditionName.OS: lambda v: OneOf("os", _names(v, OS, "os"), lambda c: c.client.os),
    ConditionName.DEVICE: lambda v: OneOf("device", _names(v, Device, "device"), lambda c: c.client.device),
    ConditionName.LINK: lambda v: OneOf("link", _names(v, LinkKind, "link"), lambda c: c.link.kind),
    ConditionName.PLATFORM: lambda v: OneOf(
        "platform", _names(v, Platform, "platform"), lambda c: c.link.platform
    ),
    ConditionName.APP_VERSION: lambda v: VersionIn(
        "app_version", _version_range(v, "app_version"), _app_version
    ),
    ConditionName.OS_VERSION: lambda v: VersionIn("os_version", _version_range(v, "os_version"), _os_version),
    ConditionName.MINI_PROGRAM: _mini_program,
    ConditionName.AD_SOURCE: lambda v: AdField(
        "ad_source", _strings(v, "ad_source"), lambda c: c.ad.source if c.ad else ""
    ),
    ConditionName.ADVERTISER: lambda v: AdField(
        "advertiser", _strings(v, "advertiser"), lambda c: c.ad.advertiser if c.ad else ""
    ),
    ConditionName.CAMPAIGN: lambda v: AdField(
        "campaign", _strings(v, "campaign"), lambda c: c.ad.campaign if c.ad else ""
    ),
    ConditionName.WINDOW: _window,
    ConditionName.ROLLOUT: _rollout,
    ConditionName.EXPANSION: lambda v: OneOf("expansion", _names(v, Expansion, "expansion"), expansion_state),
}


def build_condition(name: ConditionName, value: object) -> Condition:
    """Build one condition from its rule-file value, or raise ConditionError."""
    return _BUILDERS[name](value)


@dataclass(frozen=True, slots=True)
class ConditionDoc:
    """What a condition means and takes, for the rules reference and the JSON Schema."""

    meaning: str
    example: str
    values: tuple[str, ...] = ()  # the closed set of names, for one-of conditions


CONDITION_DOCS: dict[ConditionName, ConditionDoc] = {
    ConditionName.CHANNEL: ConditionDoc(
        "Where the link was tapped: a verified ad, a 1:1 chat, a group chat, Moments, or unknown.",
        "channel: [moments, unknown]", tuple(Channel)),
    ConditionName.APP: ConditionDoc(
        "The app the tap happens in, from the user agent (WeCom is never WeChat; a bot is `bot`).",
        "app: wechat", tuple(App)),
    ConditionName.OS: ConditionDoc("The operating system.", "os: [ios, android]", tuple(OS)),
    ConditionName.DEVICE: ConditionDoc("Phone, tablet or computer.", "device: desktop", tuple(Device)),
    ConditionName.APP_VERSION: ConditionDoc(
        "The version of the app the tap happens in (WeChat's MicroMessenger version, a browser's version); "
        "a quoted range, comparisons joined by commas. An unknown version matches no range.",
        'app_version: ">=8.0.30,<9"'),
    ConditionName.OS_VERSION: ConditionDoc("The OS version, as a quoted range.", 'os_version: ">=16"'),
    ConditionName.LINK: ConditionDoc("What kind of Taobao link was tapped.", "link: item", tuple(LinkKind)),
    ConditionName.PLATFORM: ConditionDoc("Taobao or Tmall.", "platform: tmall", tuple(Platform)),
    ConditionName.MINI_PROGRAM: ConditionDoc("Inside a WeChat mini program's webview.", "mini_program: true"),
    ConditionName.AD_SOURCE: ConditionDoc(
        "The ad source of a verified /ad link (an unverified link never matches).", "ad_source: unidesk"),
    ConditionName.ADVERTISER: ConditionDoc(
        "The advertiser id of a verified /ad link.", 'advertiser: ["1001", "1002"]'),
    ConditionName.CAMPAIGN: ConditionDoc("The campaign id of a verified /ad link.", "campaign: c-618"),
    ConditionName.WINDOW: ConditionDoc(
        "A time window: from (inclusive) and/or until (exclusive), ISO times with an offset, or naive "
        "times with a `timezone`.",
        'window: {from: "2026-11-11T00:00:00", until: "2026-11-12T00:00:00", timezone: Asia/Shanghai}'),
    ConditionName.ROLLOUT: ConditionDoc(
        "A share of visitors, 0-100 percent, sticky per visitor and rule (a grayscale launch).", "rollout: 5"),
    ConditionName.EXPANSION: ConditionDoc(
        "What became of a short or affiliate link: `expanded` (the click is on the item it points at), "
        "`failed` (the upstream failed, was too slow or redirected somewhere refused: the original link is "
        "kept), `skipped` (not tried: expansion is off, or `explain` and `rules test`, which never use the "
        "network), `none` (not a short or affiliate link).",
        "expansion: failed", tuple(Expansion)),
}

"""The core vocabulary: what a click is made of and what the router answers.

Everything else in the package is a function of these types. They are frozen:
a Context is built once per click and never changes while rules are walked, and
the values of the enums are exactly the words written in rule files and printed
by `explain`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from router.decision.slots import HASH_FIELD, field_hash

Version = tuple[int, ...]
"""A dotted version as integers: "8.0.30" -> (8, 0, 30). Empty when unknown."""


class Action(StrEnum):
    APP = "app"  # 302 into the Taobao/Tmall app
    WEB = "web"  # 302 to the mobile web page
    LANDING = "landing"  # 200, an intermediate page
    BLOCK = "block"  # 4xx page that says why


class Channel(StrEnum):
    AD = "ad"
    PRIVATE_CHAT = "private_chat"
    GROUP_CHAT = "group_chat"
    MOMENTS = "moments"
    UNKNOWN = "unknown"


class App(StrEnum):
    """The apps the router's code names (the rest are data: the catalogue, router.decision.apps). A
    catalogue must list each of these, or it is refused; a Client's `app` is the catalogue's entry."""

    WECHAT = "wechat"
    WECOM = "wecom"
    DOUYIN = "douyin"
    TIKTOK = "tiktok"
    TAOBAO = "taobao"
    TMALL = "tmall"
    OTHER_INAPP = "other_inapp"
    BROWSER = "browser"
    BOT = "bot"


LANGUAGES = ("zh-CN", "en")
"""The languages the pages speak (the first is the default): every app's names, a block's message."""


class AppEntry(str):
    """One app of the catalogue (router.decision.apps reads it from `apps:`): its id as a string (what rules,
    logs and explain write), with its entry.

    Equal to its id and hashed as it, so it stands wherever the name does (`client.app == "wechat"`,
    `client.app in {"qq", "weibo"}`); `details` tells two catalogues' entries of one id apart."""

    id: str
    names: dict[str, str]
    markers: tuple[str, ...]
    kind: str
    leave: str
    menu: dict[str, str]
    menu_ios: dict[str, str]
    versions: tuple[str, ...]
    where: str  # file:line of the entry ("" for an entry built in code)
    marker_where: dict[str, str]  # file:line of each marker, where the file gives them

    def __new__(cls, id: str, *, names: dict[str, str], markers: tuple[str, ...] = (), kind: str,
                leave: str, menu: dict[str, str] | None = None, menu_ios: dict[str, str] | None = None,
                versions: tuple[str, ...] = (), where: str = "",
                marker_where: dict[str, str] | None = None) -> AppEntry:
        self = super().__new__(cls, id)
        self.id, self.names, self.markers, self.kind, self.leave = id, dict(names), tuple(markers), kind, leave
        self.menu, self.menu_ios = dict(menu or {}), dict(menu_ios or {})
        self.versions, self.where = tuple(versions), where
        self.marker_where = dict(marker_where or {})
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a worker's snapshot, a test's copy) as the entry it is, not as the bare id.
        return (_entry, (self.id, self.names, self.markers, self.kind, self.leave, self.menu, self.menu_ios,
                           self.versions, self.where, self.marker_where))

    def __repr__(self) -> str:
        return f"AppEntry({self.id!r})"

    @property
    def value(self) -> str:
        """The id, as an enum member's `.value` is (code that handles both reads this)."""
        return self.id

    @property
    def details(self) -> tuple[object, ...]:
        """Everything the entry says, for keys of what is built from it (a rendered page)."""
        return (self.id, tuple(self.names.items()), self.markers, self.kind, self.leave,
                tuple(self.menu.items()), tuple(self.menu_ios.items()), self.versions)

    def name(self, lang: str) -> str:
        """What the pages call the app in `lang` (every entry has every language: checked on load)."""
        return self.names[lang]

    def menu_label(self, lang: str, os: str) -> str | None:
        """The menu item that opens a browser, in `lang` on `os`; None when the entry gives none (the pages
        then use their own generic words)."""
        if os == "ios" and self.menu_ios:
            return self.menu_ios[lang]
        return self.menu.get(lang)


def _entry(id: str, names: dict[str, str], markers: tuple[str, ...], kind: str, leave: str,
           menu: dict[str, str], menu_ios: dict[str, str], versions: tuple[str, ...], where: str,
           marker_where: dict[str, str]) -> AppEntry:
    return AppEntry(id, names=names, markers=markers, kind=kind, leave=leave, menu=menu, menu_ios=menu_ios,
                    versions=versions, where=where, marker_where=marker_where)


class OS(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    HARMONYOS = "harmonyos"
    WINDOWS = "windows"
    MACOS = "macos"
    LINUX = "linux"
    OTHER = "other"


class Device(StrEnum):
    MOBILE = "mobile"
    TABLET = "tablet"
    DESKTOP = "desktop"


class Platform(StrEnum):
    TAOBAO = "taobao"
    TMALL = "tmall"


class LinkKind(StrEnum):
    ITEM = "item"  # one product, item id known
    SHOP = "shop"  # a shop, shop id known when the link carries it
    SHORT = "short"  # m.tb.cn / e.tb.cn share short link (expanded by the server when it can)
    AFFILIATE = "affiliate"  # s.click.taobao.com Taobaoke link (expanded by the server when it can)
    COUPON = "coupon"  # uland.taobao.com coupon page
    PAGE = "page"  # any other page on an allowlisted host
    TOKEN = "token"  # a share text with a Taobao token and no link at all


class Expansion(StrEnum):
    """What became of a short or affiliate link (the `expansion` condition)."""

    NONE = "none"  # nothing to expand: not a short or affiliate link
    EXPANDED = "expanded"  # the link is now the page it pointed at
    FAILED = "failed"  # tried and failed (timeout, upstream error, refused redirect): the original link is kept
    SKIPPED = "skipped"  # not tried: expansion is off, or explain/rules test (which never use the network)


LANDING_PAGES = ("moments",)
"""Landing page variants a rule may name with `page:` (the plain page needs none).
`moments`: WeChat bans share codes in Moments, so the page offers only the plain link to copy."""


EXPANDABLE = frozenset({LinkKind.SHORT, LinkKind.AFFILIATE})
"""Link kinds that only point at an item: the server expands them (router.serve.expand), explain never does."""

@dataclass(frozen=True, slots=True)
class Client:
    """What the user agent says about where the tap happened."""

    app: AppEntry  # the catalogue's entry: equal to the app's id (router.decision.apps)
    app_version: Version
    os: OS
    os_version: Version
    device: Device
    bot: bool
    mini_program: bool = False
    browser: str = ""  # ua-parser's browser family for browsers and bots; empty inside named apps
    # A key of the kept answers and the client store: its hash worked out once (router.decision.slots).
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, HASH_FIELD, field_hash(self))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class Link:
    """A recognised Taobao/Tmall destination, normalised."""

    platform: Platform
    kind: LinkKind
    web_url: str | None  # canonical web URL, re-serialised by the router; None for TOKEN
    mobile_url: str | None  # the mobile web page a phone should get; None for TOKEN
    item_id: str | None = None
    shop_id: str | None = None
    token: str | None = None  # tk= of a short link or the ￥…￥ code of a share text
    title: str | None = None  # from a share text, when it carries one
    # A key of the kept answers (router.decision.decide): its hash worked out once (router.decision.slots).
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, HASH_FIELD, field_hash(self))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True, slots=True)
class AdClaim:
    """The ad fields of an /ad click and whether their signature held: what its click line records as
    `claim` (orjson writes every field), and what a replay of that line reads back instead of checking a
    signature (router.policy.replay)."""

    source: str
    advertiser: str
    campaign: str
    verified: bool
    reason: str  # why it was or was not trusted, in plain words
    # What the check concluded (router.decision.signing.Verdict's value): verified, unsigned, unknown_key,
    # forged, expired or replayed.
    verdict: str
    channel: str = ""  # the channel the signer stamped (`ch=`), as given; "" for none
    kid: str = ""  # the key id the link names (never a secret)


MAX_TAG_CHARS = 32
TAG_PATTERN = f"[a-z0-9-]{{1,{MAX_TAG_CHARS}}}"
"""A short link's tag (Context.tags), as links are made with them and rules and cases match them: lower case."""
_TAG_RE = re.compile(TAG_PATTERN)


def is_tag(text: object) -> bool:
    return isinstance(text, str) and _TAG_RE.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Context:
    """One click, fully resolved before any rule is looked at."""

    link: Link
    client: Client
    channel: Channel
    channel_reason: str
    at: datetime  # timezone-aware
    visitor: str  # stable per visitor; rollouts hash it with the rule id
    forward: tuple[tuple[str, str], ...] = ()  # attribution params passed to the destination
    ad: AdClaim | None = None
    # What-if for rule tests and explain: True puts the visitor inside every rollout (a pilot at 0% can
    # be tested before it is raised), False outside every partial one. None (real clicks): sticky buckets.
    in_rollout: bool | None = None
    # Short-link expansion (router.serve.expand): None when it was not tried; the reason says how it went.
    expansion: Expansion | None = None
    expansion_reason: str = ""
    # The request headers the rules being served read (RuleSet.headers_read), lower-case names in that order.
    headers: tuple[tuple[str, str], ...] = ()
    # The tags of the short link clicked (`/s/<code>`, router.serve.kept_links); () for any other click.
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Step:
    """One rule tried during a decision: matched, or the first condition that failed."""

    rule: str
    matched: bool
    reason: str  # the failing condition in plain words, or "all conditions hold"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: str  # rule id, or "default"
    status: int  # HTTP status the web layer answers with
    location: str | None = None  # for 302s
    reason: str = ""  # for blocks and degraded answers: what a person is told
    landing: str = ""  # landing page variant named by the rule, if any
    app_link: str | None = None  # landing: the app link the page tries and offers
    app: str = "taobao"  # landing: the app that link opens (taobao or tmall)
    notes: tuple[str, ...] = ()  # why the answer differs from the plain action
    trace: tuple[Step, ...] = field(default=())
    messages: tuple[tuple[str, str], ...] = ()  # block: `reason` per language, when the rule gives several

"""A click as it reached the router (path, query, user agent, time) -> Context.

This is the one place request data is read, for the server and for `explain`
alike, so both decide the same click the same way. Bad input raises BadClick
with a status and a sentence for the person; nothing here redirects anywhere.

Channel, in order of precedence:
1. WeChat's `from=` share parameter (the click came from a re-shared card: the
   latest place it was shared is where the tap happened, even for an ad link);
2. a verified /ad link: `ad`, or the channel the signer stamped with `ch=`;
3. a channel stamped into a /go link when it was generated (`ch=`, never `ad`);
4. otherwise `unknown`. An /ad link whose signature fails is always `unknown`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple
from urllib.parse import unquote_plus

from router.decision.apps import Catalogue
from router.decision.clients import parse_client, reader_of
from router.decision.links import DEFAULT_ALLOWED_HOSTS, LinkError, parse_link
from router.decision.recent import Recent
from router.decision.signing import SIGNED_FIELDS, ClickReplays, SigningKeys, Verdict, check, expiry_passed
from router.decision.slots import slot_constructor
from router.decision.types import AdClaim, Channel, Client, Context, Link

MAX_QUERY_LENGTH = 8192
# Longer destinations are refused: real Taobao links are far shorter, and the landing page repeats
# the link a few times and must stay small.
MAX_LINK_CHARS = 1500
MAX_PARAMS = 100
CLICK_PATHS = ("/go", "/ad")
DEFAULT_FORWARD_PARAMS = ("gdt_vid", "qz_gdt", "weixinadinfo", "click_id")
_DEVELOPMENT_KEYS = SigningKeys.development_keys()  # parsed once: every default shares it

WECHAT_FROM = {
    "singlemessage": Channel.PRIVATE_CHAT,
    "groupmessage": Channel.GROUP_CHAT,
    "timeline": Channel.MOMENTS,
}
# Parameters that steer the decision: giving one twice is ambiguous, so it is refused.
CONTROL_PARAMS = ("url", "from", "ch", "isappinstalled", *SIGNED_FIELDS, "sig")
_CONTROL = frozenset(CONTROL_PARAMS)
# The click ids ad platforms append: unique per click, so a repeat means a replayed link. `weixinadinfo` is
# `<aid>.<gdt_vid>.0.<n>`: it carries the click's id too, so it is checked as one.
CLICK_ID_PARAMS = ("gdt_vid", "qz_gdt", "click_id", "weixinadinfo")


@dataclass(frozen=True, slots=True)
class ClickSettings:
    """What reading a click depends on. The server's settings (router.serve.config.Settings) extend these,
    read from the environment; the decision only ever sees these three."""

    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS  # destinations (dot-boundary suffixes)
    signing_keys: SigningKeys = _DEVELOPMENT_KEYS  # verify /ad links
    forward_params: tuple[str, ...] = DEFAULT_FORWARD_PARAMS  # query parameters passed on to the destination
    # Derived, never passed in: the parameter names that change per click (click ids, forwarded ids), none
    # of them steering the decision; empty when a forwarded name is also a control parameter (then an /ad
    # query is read whole every time).
    per_click_params: frozenset[str] = field(init=False, repr=False, compare=False)
    # A forwarded name in lower case (as one_spelling gives it) -> as configured, the spelling passed on.
    forward_names: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "forward_names", {name.lower(): name for name in self.forward_params})
        names = id_names(self)
        object.__setattr__(self, "per_click_params", frozenset() if names & _CONTROL else names)


def id_names(settings: ClickSettings) -> frozenset[str]:
    """The click ids and forwarded ids, as a query's names are matched against them: in lower case."""
    return frozenset(name.lower() for name in (*CLICK_ID_PARAMS, *settings.forward_params))


def one_spelling(params: Sequence[tuple[str, str]], names: frozenset[str]) -> list[tuple[str, str]]:
    """The parameters among `params` whose name is one of `names` (lower case) in any case, each once and named
    in lower case, in the order they came. An id given twice with the same value is one id; with different
    values the click is refused: which one the platform meant can't be told, and every id passed on must be
    one the replay check saw."""
    found: dict[str, str] = {}
    for name, value in params:
        if name not in names:
            name = name.lower()
            if name not in names:
                continue
        seen = found.setdefault(name, value)
        if seen != value:
            raise BadClick(400, f"parameter {name!r} is given more than once with different values; give it once")
    return list(found.items())


class BadClick(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _short(value: str, limit: int = 60) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _query_params(query: str) -> list[tuple[str, str]]:
    """Like urllib's parse_qsl (blank values kept, one decoding pass) but cheaper for typical clicks."""
    chunks = [chunk for chunk in query.split("&") if chunk]
    if len(chunks) > MAX_PARAMS:
        raise BadClick(400, f"too many query parameters; the limit is {MAX_PARAMS}")
    params = []
    for chunk in chunks:
        name, _, value = chunk.partition("=")
        if "%" in name or "+" in name:
            name = unquote_plus(name)
        if "%" in value or "+" in value:
            value = unquote_plus(value)
        params.append((name, value))
    return params


def visitor_id(ua: str) -> str:
    """A click's visitor when none is given (explain, a rule test without `visitor:`): stable per user agent.
    The server always gives one: its own (router.serve.visitors)."""
    return hashlib.blake2b(f"\x00{ua}".encode(), digest_size=12).hexdigest()


def read_click(
    path: str,
    query: str,
    ua: str | None,
    *,
    at: datetime,
    settings: ClickSettings,
    visitor: str = "",
    replays: ClickReplays | None = None,
    client: Client | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    apps: Catalogue | None = None,
    claim: AdClaim | None = None,
    tags: tuple[str, ...] = (),
) -> Context:
    """Resolve everything the rules look at, or raise BadClick. `client`: what the user agent says, when the
    caller has read it already; else it is read with `apps` (the rules' catalogue, RuleSet.apps; the shipped
    one when None). `headers`: the request headers the rules read (RuleSet.headers_read). `claim`: for an
    /ad click replayed from its click line, what the server concluded of its signature, taken as is (no
    signature is checked, so no key is needed); ClaimMismatch when it is not this request's. `tags`: the
    short link's, for a click that came through `/s/<code>` (router.serve.kept_links)."""
    if client is None:
        client = parse_client(ua) if apps is None else reader_of(apps).parse(ua)
    if path == "/go":
        # What a /go query says depends on nothing else: read once per query, however many user agents.
        key = (id(settings), query)
        known = _go_queries.get(key)
        if known is None or known[0] is not settings:
            known = (settings, _read_go_query(query, settings))
            if len(query) <= _GO_QUERY_KEPT_CHARS:
                _go_queries.put(key, known)
        link, channel, reason, forward = known[1]
        return _new_context(link, client, channel, reason, at, visitor or visitor_id(ua or ""), forward,
                            None, None, None, "", headers, tags)
    if path not in CLICK_PATHS:
        raise BadClick(404, f"no such click path {_short(path)}; use /go?url=… or a signed /ad?… link")
    if claim is not None:
        link, values, params = _read_query(query, settings)
        _check_recorded(claim, values)
        claim = _expired_by(claim, values, at)
        channel, reason = _channel(values, claim)
        forward = _forwarded(one_spelling(params, id_names(settings)), settings)
        return _new_context(link, client, channel, reason, at, visitor or visitor_id(ua or ""), forward,
                            claim, None, None, "", headers, tags)
    ad_query, extra = _read_ad_query(query, settings, at)
    trusted = ad_query.trusted
    if trusted is not None and at.timestamp() < trusted.expires:
        # The ad's signature held when its query was first read, and has not expired since: only the click
        # ids are read per click (and checked for replays).
        ad, channel, reason = trusted.claim, trusted.channel, trusted.reason
        ids = one_spelling(extra, settings.per_click_params) if extra else []
        forward = trusted.forward + _forwarded(ids, settings) if ids else trusted.forward
        if replays is not None and ids:
            replay_keys = _replay_keys(ad_query.fields, ids)
            if replay_keys:
                ad, channel, reason = _replay_checked(ad, channel, reason, replay_keys, ad_query.fields, replays, at)
        return _new_context(ad_query.link, client, channel, reason, at, visitor or visitor_id(ua or ""),
                            forward, ad, None, None, "", headers, tags)
    values, params = ad_query.values, ad_query.params
    ids = one_spelling(params + extra if extra else params, settings.per_click_params or id_names(settings))
    ad = _ad_claim(values, ad_query.fields, settings, at, replays, ids)
    channel, reason = _channel(values, ad)
    forward = _forwarded(ids, settings)
    return _new_context(ad_query.link, client, channel, reason, at, visitor or visitor_id(ua or ""),
                        forward, ad, None, None, "", headers, tags)


# A Context per click read, at half the cost of Context(...) (router.decision.slots); every field given, in
# order: link, client, channel, channel_reason, at, visitor, forward, ad, in_rollout, expansion, expansion_reason,
# headers, tags.
_new_context = slot_constructor(Context)
if tuple(f.name for f in dataclasses.fields(Context)) != (
    "link", "client", "channel", "channel_reason", "at", "visitor", "forward", "ad", "in_rollout", "expansion",
    "expansion_reason", "headers", "tags",
):
    raise ImportError("router.decision.click: Context's fields changed; update the _new_context calls")

def with_client(ctx: Context, client: Client) -> Context:
    """`ctx` as read for a click from `client` (router.decision.answers: a kept Context for another client
    of the same kind)."""
    return _new_context(ctx.link, client, ctx.channel, ctx.channel_reason, ctx.at, ctx.visitor, ctx.forward, ctx.ad,
                        ctx.in_rollout, ctx.expansion, ctx.expansion_reason, ctx.headers, ctx.tags)


# Queries of /go clicks already read, with the settings they were read with (bounded: router.decision.recent).
# Keyed by the settings' id, checked with `is`: an id is only unique while its object lives.
_GO_QUERY_LIMIT = 4096
_GO_QUERY_KEPT_CHARS = 1024  # longer queries are read every time: the store stays a few MB at most
_GoQuery = tuple[Link, Channel, str, tuple[tuple[str, str], ...]]
_go_queries: Recent[tuple[int, str], tuple[ClickSettings, _GoQuery]] = Recent(_GO_QUERY_LIMIT)


def _read_go_query(query: str, settings: ClickSettings) -> tuple[Link, Channel, str, tuple[tuple[str, str], ...]]:
    link, values, params = _read_query(query, settings)
    channel, reason = _channel(values, None)
    return link, channel, reason, _forwarded(one_spelling(params, id_names(settings)), settings)


def _forwarded(ids: Sequence[tuple[str, str]], settings: ClickSettings) -> tuple[tuple[str, str], ...]:
    """The ids that are passed on to the destination (ROUTER_FORWARD_PARAMS), each named as configured there
    (a destination may read `clickId`, not `clickid`), whatever spelling the click came with."""
    names = settings.forward_names
    return tuple((names[name], value) for name, value in ids if name in names)


# /ad queries already read, without their per-click part (bounded: router.decision.recent). An ad's link
# is fixed when the ad is made; the platform appends a click id (gdt_vid, qz_gdt, click_id) per click. So
# the fixed part (link, ad fields, signature, and what a verified signature makes of the click: its claim
# and channel) is read once per ad, and only the click ids per click; whether the signature still holds
# (expiry) and whether the click id was seen before (replays) are checked per click, after this.
_AD_QUERY_LIMIT = 1024


class _Trusted(NamedTuple):
    """What an ad query's signature, verified when the query was first read, makes of every click on it
    until `expires` (a POSIX time; infinite without an expiry)."""

    claim: AdClaim
    channel: Channel
    reason: str
    forward: tuple[tuple[str, str], ...]  # the forwarded parameters among the fixed ones
    expires: float


class _AdQuery(NamedTuple):
    link: Link
    values: dict[str, str]  # the first value of each fixed parameter
    params: list[tuple[str, str]]  # the fixed parameters in order
    fields: dict[str, str]  # the signed fields and the signature
    trusted: _Trusted | None  # None: the signature did not hold when read (then it is checked per click)


_ad_queries: Recent[tuple[int, str], tuple[ClickSettings, _AdQuery]] = Recent(_AD_QUERY_LIMIT)


def _read_ad_query(query: str, settings: ClickSettings, at: datetime) -> tuple[_AdQuery, list[tuple[str, str]]]:
    """_read_query, plus the signed fields, for an /ad click: the part its ad fixes (read once per ad), and
    the per-click parameters (click ids, forwarded ids) in order."""
    per_click = settings.per_click_params
    if per_click and len(query) <= MAX_QUERY_LENGTH:
        # Platforms append their click ids at the end: peel them off and look the rest up, without
        # splitting the whole query. A kept fixed part holds no per-click, encoded or empty chunk, so a
        # query shaped otherwise finds none and is read below.
        fixed_query, varying_chunks = query, []
        while True:
            head, _, last = fixed_query.rpartition("&")
            if not head or last.partition("=")[0].lower() not in per_click:
                break
            varying_chunks.append(last)
            fixed_query = head
        known = _ad_queries.get((id(settings), fixed_query))
        if known is not None and known[0] is settings:
            if len(known[1].params) + len(varying_chunks) > MAX_PARAMS:
                raise BadClick(400, f"too many query parameters; the limit is {MAX_PARAMS}")
            varying_chunks.reverse()
            return known[1], _query_params("&".join(varying_chunks)) if varying_chunks else []
    chunks = [chunk for chunk in query.split("&") if chunk] if per_click and len(query) <= MAX_QUERY_LENGTH else []
    fixed: list[str] = []
    varying: list[str] = []
    whole = not chunks
    for chunk in chunks:
        name = chunk.partition("=")[0]
        if "%" in name or "+" in name:
            whole = True  # an encoded name could be a click id's: read it all in order, as it came
            break
        (varying if name.lower() in per_click else fixed).append(chunk)
    if whole:
        link, values, params = _read_query(query, settings)
        return _AdQuery(link, values, params, _signed(values), None), []
    if len(chunks) > MAX_PARAMS:
        raise BadClick(400, f"too many query parameters; the limit is {MAX_PARAMS}")
    fixed_query = "&".join(fixed)
    key = (id(settings), fixed_query)
    known = _ad_queries.get(key)
    if known is None or known[0] is not settings:
        link, values, params = _read_query(fixed_query, settings)
        fields = _signed(values)
        known = (settings, _AdQuery(link, values, params, fields, _trusted(values, params, fields, settings, at)))
        if len(fixed_query) <= _GO_QUERY_KEPT_CHARS:
            _ad_queries.put(key, known)
    return known[1], _query_params("&".join(varying)) if varying else []


def _trusted(
    values: dict[str, str], params: list[tuple[str, str]], fields: dict[str, str], settings: ClickSettings,
    at: datetime,
) -> _Trusted | None:
    """What every click on an ad whose fixed part is `values` gets while its signature holds; None when it
    does not hold now."""
    claim = _ad_claim(values, fields, settings, at, None)
    if not claim.verified:
        return None
    expires = float(int(fields["exp"])) if "exp" in fields else math.inf  # as verify reads it
    channel, reason = _channel(values, claim)
    wanted = settings.forward_params
    return _Trusted(claim, channel, reason, tuple((name, value) for name, value in params if name in wanted), expires)


def _read_query(query: str, settings: ClickSettings) -> tuple[Link, dict[str, str], list[tuple[str, str]]]:
    """The link, the first value of each parameter, and all parameters in order; or BadClick."""
    if len(query) > MAX_QUERY_LENGTH:
        raise BadClick(414, f"the query is {len(query)} characters; the limit is {MAX_QUERY_LENGTH}")
    params = _query_params(query)
    values: dict[str, str] = {}
    for name, value in params:
        if name in values and name in _CONTROL:
            count = sum(1 for other, _ in params if other == name)
            raise BadClick(400, f"parameter {name!r} is given {count} times; give it once")
        values.setdefault(name, value)
    raw = values.get("url")
    if raw is None or not raw.strip():
        raise BadClick(400, "missing 'url' parameter: give the Taobao or Tmall link (or share text) to open")
    try:
        link = parse_link(raw, settings.allowed_hosts)
    except LinkError as err:
        raise BadClick(400, str(err)) from None
    longest = max(len(link.web_url or ""), len(link.mobile_url or ""))
    if longest > MAX_LINK_CHARS:
        raise BadClick(414, f"the link is {longest} characters long; the limit is {MAX_LINK_CHARS}")
    return link, values, params




def _signed(values: dict[str, str]) -> dict[str, str]:
    """The fields a signature covers, and the signature."""
    return {name: values[name] for name in (*SIGNED_FIELDS, "sig") if name in values}


def _ad_claim(
    values: dict[str, str], fields: dict[str, str], settings: ClickSettings, at: datetime,
    replays: ClickReplays | None, ids: Sequence[tuple[str, str]] = (),
) -> AdClaim:
    verdict, reason = check(fields, settings.signing_keys, at)
    verified = verdict is Verdict.VERIFIED
    claim = AdClaim(
        source=values.get("src", ""),
        advertiser=values.get("adv", ""),
        campaign=values.get("cmp", ""),
        verified=verified,
        reason=reason,
        verdict=verdict.value,
        channel=values.get("ch", ""),
        kid=fields.get("kid", "")[:32],
    )
    keys = _replay_keys(fields, ids) if verified and replays is not None else ()
    if keys and replays is not None:
        claim = _replay_checked(claim, Channel.UNKNOWN, "", keys, fields, replays, at)[0]
    return claim


class ClaimMismatch(ValueError):
    """A recorded claim whose ad fields are not its request's: a replay can't take it as the server's."""


def _check_recorded(claim: AdClaim, values: dict[str, str]) -> None:
    request = (values.get("src", ""), values.get("adv", ""), values.get("cmp", ""), values.get("ch", ""))
    recorded = (claim.source, claim.advertiser, claim.campaign, claim.channel)
    if request != recorded:
        names = [name for name, a, b in zip(("src", "adv", "cmp", "ch"), request, recorded, strict=True) if a != b]
        raise ClaimMismatch(f"its recorded claim's {', '.join(names)} differ from the request's")
    if claim.verified != (claim.verdict == Verdict.VERIFIED.value):
        raise ClaimMismatch(f"its recorded claim says verified={claim.verified} but verdict {claim.verdict!r}")


def _expired_by(claim: AdClaim, values: dict[str, str], at: datetime) -> AdClaim:
    """A verified recorded claim as it stands at `at` (a replay moved in time, `rules diff --at`): expired once
    past its link's signed expiry. The server checked that `exp` is one of the signed fields; no key needed."""
    expired = expiry_passed(values["exp"], at) if claim.verified and "exp" in values else ""
    if not expired:
        return claim
    return dataclasses.replace(claim, verified=False, verdict=Verdict.EXPIRED.value, reason=expired)


def _replay_keys(fields: dict[str, str], ids: Sequence[tuple[str, str]]) -> tuple[str, ...]:
    """What identifies one click on a signed link: its signature with each of its click ids, one key each, so
    a click id used before is caught whatever other id comes with it (none without click ids). The gdt_vid
    inside a `weixinadinfo` (`<aid>.<gdt_vid>.0.<n>`) is keyed as a gdt_vid: its other parts can be
    changed, and `gdt_vid=` dropped, without making the click another."""
    sig = fields.get("sig", "")
    keys = [f"{sig}|{_click_id(name, value)}" for name, value in ids if name in _CLICK_IDS and value]
    return tuple(dict.fromkeys(keys))  # a gdt_vid given both ways is one id


def _click_id(name: str, value: str) -> str:
    if name == "weixinadinfo":
        embedded = value.split(".")
        if len(embedded) >= 2 and embedded[1]:
            return f"gdt_vid={embedded[1]}"
    return f"{name}={value}"


_CLICK_IDS = frozenset(CLICK_ID_PARAMS)


def _replay_checked(
    claim: AdClaim, channel: Channel, reason: str, keys: tuple[str, ...], fields: dict[str, str],
    replays: ClickReplays, at: datetime,
) -> tuple[AdClaim, Channel, str]:
    """The verified `claim` (with its channel and reason), or, when one of its click ids (`keys`) was used
    before, the claim of a replayed click. Every key is recorded, replayed or not."""
    now = at.timestamp()
    used = [key for key in keys if not replays.first_use(key, now)]
    if used:
        claim = dataclasses.replace(claim, verified=False, reason=_replayed_reason(used[0]),
                                    verdict=Verdict.REPLAYED.value)
        channel, reason = _channel({}, claim)
    elif isinstance(replays, DeferredReplays):
        replays.asked(keys, fields.get("exp", ""))
    return claim, channel, reason


def _replayed_reason(key: str) -> str:
    first_click_id = key.partition("|")[2].partition("&")[0]
    return f"click id {first_click_id[:60]} was already used: a replayed ad click"


class DeferredReplays(ClickReplays):
    """For replays checked after reading, in a store read_click can't wait for (router.serve.shared):
    answers "first use" and remembers what it was asked, and the link's signed expiry."""

    def __init__(self) -> None:
        super().__init__(max_entries=1)
        self.keys: tuple[str, ...] = ()
        self.expires = ""

    def first_use(self, key: str, now: float) -> bool:
        return True

    def asked(self, keys: tuple[str, ...], expires: str) -> None:
        self.keys, self.expires = keys, expires


def as_replayed(ctx: Context, key: str) -> Context:
    """The click `ctx` read, now that its click id (`key`, as DeferredReplays was asked) turned out to be
    used before: what read_click answers for a replay."""
    if ctx.ad is None:
        return ctx
    ad = dataclasses.replace(ctx.ad, verified=False, reason=_replayed_reason(key), verdict=Verdict.REPLAYED.value)
    channel, reason = _channel({}, ad)
    return dataclasses.replace(ctx, ad=ad, channel=channel, channel_reason=reason)


def _channel(values: dict[str, str], ad: AdClaim | None) -> tuple[Channel, str]:
    if ad is not None and not ad.verified:
        return Channel.UNKNOWN, f"ad link not trusted: {ad.reason}"
    shared_from = values.get("from")
    if shared_from in WECHAT_FROM:
        channel = WECHAT_FROM[shared_from]
        again = " (an ad link re-shared by a user)" if ad is not None else ""
        return channel, f"WeChat share parameter from={shared_from}{again}"
    if ad is not None:
        signed_channel = values.get("ch", "")
        if signed_channel in Channel._value2member_map_:
            return Channel(signed_channel), f"verified /ad link stamped ch={signed_channel}"
        return Channel.AD, f"verified /ad link ({ad.reason})"
    stamped = values.get("ch")
    if stamped is not None:
        if stamped == Channel.AD.value:
            return Channel.UNKNOWN, "ch=ad is ignored: the ad channel comes only from a verified /ad link"
        if stamped in Channel._value2member_map_:
            return Channel(stamped), f"channel stamped into the link: ch={stamped}"
        return Channel.UNKNOWN, f"unknown stamped channel ch={_short(stamped, 30)} ignored"
    if shared_from is not None:
        return Channel.UNKNOWN, f"unrecognised share parameter from={_short(shared_from, 30)}"
    return Channel.UNKNOWN, "no share parameter or channel stamp"

"""ua-parser's tables, for the user agents router.decision.clients can't read on its own.

Imported the first time a user agent needs them (a bot or named app on an unusual platform, a browser
none of router.decision.browser_shapes' templates fits), or at start-up with ROUTER_UA_TABLES=startup.
Until then neither ua-parser's tables nor user-agents are in memory: the tables compiled by ua-parser's
Rust resolver weigh tens of megabytes and take a noticeable pause to build (docs/speed.md), the OS table
alone a small part of both. So each is built when first asked for: the OS table for a named app or bot
(nothing else of theirs is read), all of them for an unknown browser; once all are built, they answer for
the OS too.

OS, device and the bot flag come from ua-parser 1.x, wrapped in a subclass of user-agents' ``UserAgent``
so its ``is_mobile``/``is_tablet``/``is_bot`` classification is reused as is (its own parser, pure
Python, is far slower per new UA).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import ua_parser
from ua_parser import Domain
from ua_parser.regex import Resolver
from user_agents.parsers import (  # type: ignore[import-untyped]  # no stubs
    UserAgent,
    parse_browser,
    parse_device,
    parse_operating_system,
)

__all__ = ["FastUserAgent", "agent", "built", "warm_up"]

_os_parser: ua_parser.Parser | None = None
_full_parser: ua_parser.Parser | None = None
_lock = threading.Lock()


def agent(ua: str, *, os_only: bool) -> FastUserAgent:
    """ua-parser's reading of `ua` (a str it can encode as UTF-8): only the OS when `os_only`."""
    domains = Domain.OS if os_only else Domain.ALL
    return FastUserAgent(_parser(domains)(ua, domains))


def built() -> str:
    """Which tables are in memory: "none", "os" or "all"."""
    return "all" if _full_parser is not None else "os" if _os_parser is not None else "none"


def warm_up(uas: Iterable[str]) -> None:
    """Build all the tables and compile the regexes these user agents need (the Rust resolver compiles
    lazily: hundreds of µs per first hit, moved off the first real clicks)."""
    parser = _parser(Domain.ALL)
    for ua in uas:
        parser.parse(ua)


def _parser(domains: Domain) -> ua_parser.Parser:
    """A parser that resolves `domains`: the full one once built, else the OS-only one for Domain.OS."""
    # Double-checked: the common case reads a global without taking the lock.
    full = _full_parser
    if full is not None:
        return full
    if domains == Domain.OS:
        parser = _os_parser
        if parser is None:
            with _lock:
                parser = _full_parser or _os_parser or _build(Domain.OS)
        return parser
    with _lock:
        return _full_parser or _build(Domain.ALL)


def _build(domains: Domain) -> ua_parser.Parser:
    """Build (with _lock held) the parser for `domains` and keep it."""
    global _os_parser, _full_parser
    # No CachingResolver: router.decision.clients caches the final Client, a second cache would only double
    # the memory for the same hits.
    user_agent, os, device = ua_parser.load_lazy_builtins()
    if domains == Domain.OS:
        _os_parser = ua_parser.Parser(Resolver(([], os, [])))
        return _os_parser
    _full_parser = ua_parser.Parser(Resolver((user_agent, os, device)))
    _os_parser = None  # the full one answers for the OS too
    return _full_parser


class FastUserAgent(UserAgent):
    """user-agents' UserAgent filled from a ua-parser 1.x Result.

    Only ``__init__`` differs, so the inherited ``is_mobile``, ``is_tablet``,
    ``is_pc`` and ``is_bot`` classify exactly as user-agents does.
    """

    def __init__(self, result: ua_parser.Result | ua_parser.PartialResult) -> None:
        # Deliberately no super().__init__(): that would parse the string again
        # with user-agents' slow pure-Python parser.
        # Result uses None for "no match"; user-agents expects family "Other" then.
        # Spelled out rather than result.with_defaults(): that copies the Result.
        self.ua_string = result.string
        o = result.os
        self.os = (
            parse_operating_system(o.family, o.major, o.minor, o.patch, o.patch_minor) if o else _OTHER_OS
        )
        b = result.user_agent
        self.browser = (
            parse_browser(b.family, b.major, b.minor, b.patch, b.patch_minor) if b else _OTHER_BROWSER
        )
        d = result.device
        self.device = parse_device(d.family, d.brand, d.model) if d else _OTHER_DEVICE


_OTHER_OS = parse_operating_system("Other")
_OTHER_BROWSER = parse_browser("Other")
_OTHER_DEVICE = parse_device("Other", None, None)

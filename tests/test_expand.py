"""Short-link expansion (router.serve.expand, fetching through router.serve.upstream): fault shapes behind
httpx.MockTransport, cache, single-flight, circuit breaker and the public-address check. That only
router.serve.upstream opens connections is checked, with the other import rules, in tests/test_architecture.py.

Nothing here leaves the process: every upstream is a handler function. The real-server tests are in
tests/test_expand_http.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpcore
import httpx
import pytest

from router.serve.expand import EXPANSION_RESULTS, Expanded, Expander, ExpandPolicy, item_in_page
from router.serve.upstream import PublicOnlyBackend, address_refusal

SHORT = "https://m.tb.cn/h.gYx1a2b?tk=AbCd1234"
ITEM = "https://item.taobao.com/item.htm?id=123456"
PAGE = b"<html><script>var url = 'https:\\/\\/a.m.taobao.com\\/i654321.htm?price=1&amp;sourceType=item';</script>"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def expander(handler: Callable[[httpx.Request], Any], clock: Clock | None = None, **policy: Any) -> Expander:
    return Expander(ExpandPolicy(**policy), transport=httpx.MockTransport(handler), clock=clock or Clock())


def expand(exp: Expander, url: str = SHORT) -> Expanded:
    return asyncio.run(exp.expand(url))


def redirect(location: str) -> httpx.Response:
    return httpx.Response(302, headers={"location": location})


# --- fault shapes: (name, handler, item id or None, reason fragment) -------------------------------

CASES: list[tuple[str, Callable[[httpx.Request], httpx.Response], str | None, str]] = [
    ("redirect to an item", lambda r: redirect(ITEM), "123456", "expanded"),
    ("200 page naming the item", lambda r: httpx.Response(200, content=PAGE), "654321", "expanded"),
    ("two hops on expansion hosts",
     lambda r: redirect("https://e.tb.cn/h.next") if r.url.host == "m.tb.cn" else redirect(ITEM), "123456", ""),
    ("relative redirect on the same host",
     lambda r: redirect("/h.other") if r.url.path == "/h.gYx1a2b" else redirect(ITEM), "123456", ""),
    ("5xx", lambda r: httpx.Response(503), None, "m.tb.cn answered 503"),
    ("404", lambda r: httpx.Response(404), None, "m.tb.cn answered 404"),
    ("redirect loop", lambda r: redirect(SHORT), None, "redirect loop"),
    ("redirect to a port out of range", lambda r: redirect("https://m.tb.cn:99999/x"), None, "unreadable address"),
    ("redirect to an unclosed IPv6 bracket", lambda r: redirect("https://[m.tb.cn/x"), None, "unreadable address"),
    ("redirect with credentials", lambda r: redirect("https://evil.com:pw@e.tb.cn/h.y"), None,
     "redirect with credentials refused"),
    ("endless hops", lambda r: redirect(f"https://m.tb.cn/h.n{len(str(r.url))}{r.url.path[3:]}x"), None,
     "more than 5 redirects"),
    ("redirect to another host", lambda r: redirect("https://evil.example/item.htm?id=1"), None,
     "redirect refused: host 'evil.example' is not allowed"),
    ("redirect to a private address", lambda r: redirect("https://10.0.0.7/item.htm?id=1"), None,
     "is an IP address"),
    ("redirect to plain http", lambda r: redirect("http://item.taobao.com/item.htm?id=1"), None, "not https"),
    ("redirect to a short link elsewhere", lambda r: redirect("https://x.tb.cn/h.abc"), None,
     "not an expansion host"),
    ("redirect to javascript:", lambda r: redirect("javascript:alert(1)"), None, "not a usable URL"),
    ("redirect to ftp:", lambda r: redirect("ftp://item.taobao.com/item.htm?id=1"), None, "not https"),
    ("page without an item", lambda r: httpx.Response(200, content=b"<html>nothing https://evil.example/x"), None,
     "page without an item link"),
    ("huge page, item past the cap",
     lambda r: httpx.Response(200, content=b"x" * 200_000 + PAGE), None, "page without an item link"),
    ("connection refused", lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused")), None, "refused"),
]


@pytest.mark.parametrize(("name", "handler", "item", "reason"), CASES, ids=[c[0] for c in CASES])
def test_fault_shapes(name: str, handler: Callable[[httpx.Request], httpx.Response], item: str | None,
                      reason: str) -> None:
    """Each upstream answer shape expands to the right item, or fails with a reason that names the problem."""
    result = expand(expander(handler))
    assert (result.link.item_id if result.link else None) == item
    assert reason in result.reason


def test_slow_upstream_fails_at_the_deadline() -> None:
    """An upstream slower than the deadline fails within it (plus a little), never hangs."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return redirect(ITEM)

    exp = Expander(ExpandPolicy(timeout=0.2), transport=httpx.MockTransport(slow))
    started = asyncio.run(_timed(exp))
    assert started[0].link is None and "no answer within 0.2 s" in started[0].reason
    assert started[1] < 1.0


async def _timed(exp: Expander) -> tuple[Expanded, float]:
    loop = asyncio.get_running_loop()
    begin = loop.time()
    result = await exp.expand(SHORT)
    return result, loop.time() - begin


def test_only_expansion_hosts_are_contacted_first() -> None:
    """A link on a host that is not on the expansion list is not expandable."""
    from router.decision.links import parse_link

    exp = expander(lambda r: redirect(ITEM), hosts=("e.tb.cn",))
    assert not exp.expandable(parse_link(SHORT))
    assert exp.expandable(parse_link("https://e.tb.cn/h.abc"))
    assert not exp.expandable(parse_link(ITEM))


# --- cache ---------------------------------------------------------------------------------------------


def test_success_is_cached_for_its_ttl() -> None:
    """A success is served from the cache until ok_ttl passes, then fetched again."""
    calls: list[str] = []
    clock = Clock()
    exp = expander(lambda r: calls.append(str(r.url)) or redirect(ITEM), clock, ok_ttl=600)
    assert expand(exp).link and expand(exp).link
    assert len(calls) == 1
    clock.now += 601
    assert expand(exp).link and len(calls) == 2


def test_failure_is_cached_briefly() -> None:
    """A failure is remembered for failure_ttl only, so a recovered upstream is used again soon."""
    answers = [httpx.Response(503), redirect(ITEM)]
    clock = Clock()
    exp = expander(lambda r: answers.pop(0), clock, failure_ttl=30)
    assert expand(exp).link is None
    assert expand(exp).link is None and len(answers) == 1  # from the cache
    clock.now += 31
    assert expand(exp).link is not None


def test_cache_is_bounded() -> None:
    """The oldest entry goes when the cache is full."""
    calls: list[str] = []
    exp = expander(lambda r: calls.append(r.url.path) or redirect(ITEM), cache_size=2)
    for code in ("a", "b", "c", "a"):
        expand(exp, f"https://m.tb.cn/h.{code}")
    assert calls == ["/h.a", "/h.b", "/h.c", "/h.a"]


# --- single flight -------------------------------------------------------------------------------------


def test_concurrent_expansions_share_one_fetch() -> None:
    """Fifty clicks at once for the same link make one upstream request and all get the item."""
    calls: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        await asyncio.sleep(0.05)
        return redirect(ITEM)

    exp = Expander(ExpandPolicy(), transport=httpx.MockTransport(handler))

    async def many() -> list[Expanded]:
        return await asyncio.gather(*(exp.expand(SHORT) for _ in range(50)))

    results = asyncio.run(many())
    assert len(calls) == 1
    assert {r.link.item_id for r in results if r.link} == {"123456"} and all(r.link for r in results)


# --- circuit breaker -----------------------------------------------------------------------------------


def test_breaker_opens_after_consecutive_failures_and_half_opens() -> None:
    """After N faults in a row the host is not called; after the cool-down one trial call decides."""
    calls: list[str] = []
    clock = Clock()
    answers: list[httpx.Response] = [httpx.Response(502)] * 3 + [redirect(ITEM)]
    exp = expander(lambda r: calls.append(r.url.path) or answers.pop(0), clock,
                   breaker_failures=3, breaker_cooldown=20, failure_ttl=0)
    for n in range(3):
        assert expand(exp, f"https://m.tb.cn/h.f{n}").link is None
    assert exp.breaker.is_open("m.tb.cn") and exp.breaker.refusing("m.tb.cn")
    blocked = expand(exp, "https://m.tb.cn/h.other")
    assert blocked.link is None and blocked.reason.startswith("circuit open for m.tb.cn") and len(calls) == 3
    assert blocked.result == "circuit_open" and exp.results == {"upstream_error": 3, "circuit_open": 1}
    assert set(exp.results) <= set(EXPANSION_RESULTS)  # the metric's label values, all shown from the start
    clock.now += 21
    assert not exp.breaker.refusing("m.tb.cn")  # cooled down: the next click is the trial (the metric says so)
    assert expand(exp, "https://m.tb.cn/h.trial").link is not None  # the trial call succeeds: closed again
    assert not exp.breaker.is_open("m.tb.cn") and len(calls) == 4


def test_breaker_ignores_answers_that_are_not_faults() -> None:
    """A 404 or a refused redirect is the upstream working: it does not open the breaker."""
    exp = expander(lambda r: httpx.Response(404), breaker_failures=2, failure_ttl=0)
    for n in range(4):
        expand(exp, f"https://m.tb.cn/h.x{n}")
    assert not exp.breaker.is_open("m.tb.cn")


# --- public addresses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("address", ["10.0.0.1", "127.0.0.1", "169.254.169.254", "192.168.1.1", "::1",
                                     "fd00::1", "::ffff:10.0.0.1", "100.64.0.1", "0.0.0.0"])
def test_private_addresses_are_refused(address: str) -> None:
    """Loopback, private, link-local (cloud metadata), CGNAT and mapped private addresses are never contacted."""
    assert address_refusal(address) == f"{address} is not a public address"


def test_public_address_is_accepted_and_loopback_only_when_allowed() -> None:
    assert address_refusal("140.205.94.189") is None
    assert address_refusal("127.0.0.1", allow_loopback=True) is None
    assert address_refusal("10.0.0.1", allow_loopback=True) is not None


def test_a_name_resolving_to_a_private_address_is_not_connected() -> None:
    """DNS answers are checked before connecting; a private one stops the hop, and no socket is opened."""

    async def rebinding(host: str, port: int) -> list[str]:
        return ["140.205.94.189", "10.0.0.7"]

    backend = PublicOnlyBackend(rebinding)
    with pytest.raises(httpcore.ConnectError, match=r"m\.tb\.cn resolves to 10\.0\.0\.7 is not a public address"):
        asyncio.run(backend.connect_tcp("m.tb.cn", 443))


def test_expansion_through_the_real_transport_refuses_private_dns() -> None:
    """The network path (no fake transport) resolves first and fails the expansion on a private answer."""

    async def private(host: str, port: int) -> list[str]:
        return ["192.168.0.10"]

    exp = Expander(ExpandPolicy(timeout=1), resolve=private)
    result = expand(exp)
    assert result.link is None and "not a public address" in result.reason


def test_item_in_page_takes_only_allowlisted_items() -> None:
    """From a page, only an item URL on an allowlisted host is taken."""
    assert item_in_page(b"https://evil.example/item.htm?id=1 https://item.taobao.com/item.htm?id=9", ()) is not None
    assert item_in_page(b"https://item.taobao.com.evil.example/item.htm?id=1", ()) is None
    assert item_in_page(b"https://s.click.taobao.com/t?e=1", ()) is None


@pytest.mark.parametrize("address", ["64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::7f00:1", "64:ff9b:1::a00:1"])
def test_ipv6_forms_wrapping_ipv4_are_refused(address: str) -> None:
    """NAT64, 6to4 and IPv4-compatible addresses may reach an IPv4 target: never contacted."""
    from router.serve.upstream import address_refusal

    assert address_refusal(address) is not None

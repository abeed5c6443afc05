"""Start-up's warm-up: everything a first click would otherwise pay for once, paid before the router listens.

Python loads and compiles lazily: ua-parser's tables (built the first time an unusual user agent needs
them), the Rust resolver's regexes (on first hit), the page templates (Jinja compiles a template on first
use) and their words, the rules' own app catalogue's reader. Left to the first clicks, each of these would
make one click after a deploy wait many times longer than the rest (benchmarks/startup_bench.py measures
it: docs/speed.md). Here each path a click takes is walked once with made-up clicks: a /go and a signed /ad
link, for the kinds of client that dominate traffic and a few that only the tables place, decided on the
rules being served and answered in each language; the landing and message templates are rendered for each.

`create_app` calls this before it returns, so uvicorn binds its socket (and /readyz can answer "ready")
only once it is done. Nothing here is counted: no click line, no metric, and the kept answers
(router.decision.answers) are not touched. A reload that brings a new app catalogue warms its reader the
same way before it serves (router.serve.reload).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime
from time import perf_counter
from urllib.parse import quote, urlencode

from router.decision.click import BadClick, ClickSettings, read_click
from router.decision.clients import WARM_UP_TABLE_UAS, WARM_UP_UAS, tables_built
from router.decision.clients import warm_up as warm_up_clients
from router.decision.decide import decide
from router.decision.rules import RuleSet
from router.decision.signing import sign
from router.decision.types import LANGUAGES, Action
from router.serve.pages import Pages

log = logging.getLogger("router")

_ITEM = "https://item.taobao.com/item.htm?id=1"
# The queries a click brings: a plain link, a chat share, a Moments share, a stamped channel.
_GO_QUERIES = tuple(f"url={quote(_ITEM, safe='')}{extra}"
                    for extra in ("", "&from=groupmessage", "&from=singlemessage", "&from=timeline", "&ch=moments"))
# A few more clients than the readers' own warm-up: other apps' in-app browsers, whose landing pages differ.
_OTHER_CLIENTS = (
    "Mozilla/5.0 (Linux; Android 13; PGT-AN10 Build/HONORPGT-AN10; wv) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Version/4.0 Chrome/99.0.4844.88 Mobile Safari/537.36 V1_AND_SQ_8.9.58_4108_YYB_D QQ/8.9.58.11175 "
    "NetType/WIFI WebP/0.3.0 AppTheme/1000 StatusBarHeight/98 StatusBarPadding/37",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 aweme_28.6.0 JsSdk/2.0 NetType/WIFI Channel/App Store ByteLocale/zh Region/CN",
)
# ...and, with ua-parser's tables built, clients only they can place (a lazy start leaves them unbuilt).
_TABLE_CLIENTS = (*WARM_UP_TABLE_UAS, "curl/8.5.0", "Opera/9.80 (X11; Linux i686) Presto/2.12.388 Version/12.16")


def warm_up(settings: ClickSettings, ruleset: RuleSet, pages: Pages, *, tables: bool) -> float:
    """Walk every path a click takes once (see the module's docstring); the seconds it took."""
    started = perf_counter()
    warm_up_clients(tables=tables)
    agents = _agents(tables)
    at = datetime.now(UTC)
    ad = "/ad", urlencode(sign({"url": _ITEM, "src": "warm-up", "adv": "0"}, settings.signing_keys), quote_via=quote)
    requests = [*(("/go", query) for query in _GO_QUERIES), ad]
    for ua in agents:
        client = ruleset.reader.parse(ua)  # compiles what the rules' reader compiles on first use
        for path, query in requests:
            try:
                ctx = read_click(path, query, ua, at=at, settings=settings, client=client)
            except BadClick:  # the allowed hosts leave Taobao out: nothing more to walk here
                continue
            decision = decide(ruleset, ctx)
            for lang in LANGUAGES:
                pages.respond(lang, ctx, decision, "warm-up")
                # The landing page, whatever these rules answer: its template and words are compiled now.
                pages.landing(lang, ctx, dataclasses.replace(decision, action=Action.LANDING), "warm-up")
    for lang in LANGUAGES:
        pages.message(lang, 400, "warm-up", technical=True)
        pages.message(lang, 404, "warm-up", technical=True)
    seconds = perf_counter() - started
    log.info("warmed up in %.0f ms: user agents, rules, pages", seconds * 1000)
    return seconds


def warm_reader(ruleset: RuleSet, agents: tuple[str, ...] | None = None) -> None:
    """Compile what the rule set's reader of user agents compiles on first use (its own catalogue's markers),
    without filling its cache of read user agents: by default for every client the start-up walks (those only
    ua-parser's tables place when the tables are built)."""
    ruleset.reader.warm(_agents(tables_built() == "all") if agents is None else agents)


def _agents(tables: bool) -> tuple[str, ...]:
    """The clients the warm-up reads: with ua-parser's tables built, those only they can place too."""
    return (*WARM_UP_UAS, *_OTHER_CLIENTS, *(_TABLE_CLIENTS if tables else ()))


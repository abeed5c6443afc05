"""Answers kept for the clicks that repeat: an ad's destination tapped from the same app a thousand times.

A `/go` click is read from its query, the Client its user agent says (router.decision.clients) and the
request headers the rules read; who clicks and when only matter to rules that read them. So when deciding a
click tried no such rule (`decide_timeless`), the same query from the same Client with the same headers
gets the same Context's link, client and channel and the same Decision on the same rule set, and both are
kept: the next such click skips reading and deciding. Keyed by the query, the headers the rule set reads,
and what it reads of the Client (its kind: router.decision.memo), not by the user agent or the Client:
nearly every WeChat user agent is new (it carries a per-install id), and the Clients they say are
thousands (every app, OS and browser build is one), while their kinds are a few dozen. A kept Context is
handed out with the click's own Client in it, so what is logged and shown of the client is always this
click's. `/ad` clicks are never kept (their signature can expire and their click id must be checked for
replays every time), and neither is a click whose link the server expanded (the expansion is the
server's, and it has its own cache).

A kept Context carries the time and visitor of the click that made it: whoever reuses it takes only
what does not depend on them (the link, client, channel and forwarded ids), and logs its own.

The store belongs to one rule set: it empties when another one serves. It holds at most `limit`
answers, each keyed by at most MAX_KEY_CHARS of query (router.decision.recent: the clicks that repeat stay,
the long tail goes).
"""

from __future__ import annotations

from router.decision.click import with_client
from router.decision.decide import decide_timeless
from router.decision.memo import ClientKind
from router.decision.recent import Recent
from router.decision.rules import RuleSet
from router.decision.types import Client, Context, Decision

MAX_KEY_CHARS = 1024  # a longer query is decided afresh each time, never kept (bounds memory)
DEFAULT_LIMIT = 4096  # by (query, Client): the popular links times the common clients


# The query, the client's kind, the headers the rules read, and the short link's tags (router.serve.kept_links:
# one destination may stand behind links of different tags; a tag is not in the query).
_Key = tuple[str, ClientKind, tuple[tuple[str, str], ...], tuple[str, ...]]


class Answers:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._rules: RuleSet | None = None
        self._kept: Recent[_Key, tuple[Context, Decision]] = Recent(limit)

    def get(self, rules: RuleSet, path: str, query: str, client: Client,
            headers: tuple[tuple[str, str], ...] = (), tags: tuple[str, ...] = ()) -> tuple[Context, Decision] | None:
        """What was kept for this click: `headers` are the ones `rules` reads (RuleSet.headers_read), as the
        click's Context will carry them; `tags` the short link's, as its Context will carry them."""
        if path != "/go" or rules is not self._rules:
            return None
        kept = self._kept.get((query, rules.kind_of(client), headers, tags))
        if kept is None or kept[0].client is client:
            return kept
        return with_client(kept[0], client), kept[1]

    def keep(self, rules: RuleSet, path: str, query: str, ctx: Context, decision: Decision) -> None:
        """Keep a timeless decision of a /go click that was not expanded."""
        if path != "/go" or ctx.expansion is not None or len(query) > MAX_KEY_CHARS:
            return
        if rules is not self._rules:
            self._rules = rules
            self._kept = Recent(self.limit)
        self._kept.put((query, rules.kind_of(ctx.client), ctx.headers, ctx.tags), (ctx, decision))

    def __len__(self) -> int:
        return len(self._kept)

    def decide(self, rules: RuleSet, path: str, query: str, ctx: Context) -> Decision:
        """Decide a click read (and perhaps expanded) by the caller, and keep the decision if it may be."""
        decision, timeless = decide_timeless(rules, ctx)
        if timeless:
            self.keep(rules, path, query, ctx, decision)
        return decision

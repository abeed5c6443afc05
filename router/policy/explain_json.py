"""`explain --format json`: one click's decision as a document, beside its text form (explain_text.py).

What was read of the click (client, channel, link, ad claim, forwarded ids), the answer, and the trace of
every rule tried. `explain --batch` writes one per click line it replays.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from router.decision.click import BadClick, read_click
from router.decision.decide import explain
from router.decision.deeplinks import app_url
from router.decision.rules import RuleSet
from router.decision.types import EXPANDABLE, Context, Decision
from router.decision.versions import format_version
from router.policy.replay import NotReplayable, RecordedClick, checked_again, read_recorded
from router.serve.config import Settings


def result_json(
    ctx: Context | None, decision: Decision | None, rules: RuleSet, error: BadClick | None = None, ua: str = ""
) -> dict[str, Any]:
    """The explain output for one click: decision, what was read from the click, and the trace."""
    if error is not None or ctx is None or decision is None:
        status = error.status if error else 400
        reason = error.message if error else "unreadable click"
        return {"action": "block", "rule": "bad-request", "status": status, "reason": reason,
                "rules_version": rules.version}
    client, link = ctx.client, ctx.link
    out: dict[str, Any] = {
        "action": decision.action.value,
        "rule": decision.rule,
        "status": decision.status,
        "location": decision.location,
        "channel": ctx.channel.value,
        "channel_reason": ctx.channel_reason,
        "client": {
            "app": str(client.app),
            "app_version": format_version(client.app_version) if client.app_version else None,
            "os": client.os.value,
            "os_version": format_version(client.os_version) if client.os_version else None,
            "device": client.device.value,
            "bot": client.bot,
            "mini_program": client.mini_program,
            # What the app catalogue (rules.apps) says of the app, and how the user agent came to be it.
            "app_kind": client.app.kind,
            "app_leave": client.app.leave,
            "app_names": dict(client.app.names),
            "app_named_by": rules.apps.named_by(client.app, ua) if ua else None,
        },
        "link": {
            "platform": link.platform.value,
            "kind": link.kind.value,
            "item_id": link.item_id,
            "shop_id": link.shop_id,
            "web_url": link.web_url,
            "app_url": app_url(link),
        },
        "ad": None if ctx.ad is None else {
            "source": ctx.ad.source, "advertiser": ctx.ad.advertiser, "campaign": ctx.ad.campaign,
            "verified": ctx.ad.verified, "verdict": ctx.ad.verdict, "reason": ctx.ad.reason,
        },
        "forwarded": [list(pair) for pair in ctx.forward],
        # explain never uses the network: a short link is decided as it is, unexpanded.
        "expansion": ctx.expansion.value if ctx.expansion else (
            "skipped (explain is offline)" if link.kind in EXPANDABLE else "none"),
        "trace": [{"rule": s.rule, "matched": s.matched, "reason": s.reason} for s in decision.trace],
        "rules_version": rules.version,
    }
    if decision.reason:
        out["reason"] = decision.reason
    if decision.action.value == "landing":
        out["landing"] = {"page": decision.landing or "default", "app_link": decision.app_link}
    if decision.notes:
        out["notes"] = list(decision.notes)
    if decision.rule == "default":
        out["trace"].append({"rule": "default", "matched": True, "reason": "no rule matched"})
    return out


def explain_click(
    request: str, ua: str, at: datetime, settings: Settings, rules: RuleSet, visitor: str = "",
    in_rollout: bool | None = None, headers: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """Explain one click; `headers`: the request headers it came with (a click line's), of which the
    ones `rules` read go into its Context, as the server puts them."""
    path, _, query = request.partition("?")
    try:
        ctx = read_click(path, query, ua, at=at, settings=settings, visitor=visitor, headers=_read(rules, headers),
                         apps=rules.apps)
    except BadClick as bad:
        return result_json(None, None, rules, bad)
    if in_rollout is not None:  # the what-if of --in-rollout / --out-of-rollout, as case files have it
        ctx = dataclasses.replace(ctx, in_rollout=in_rollout)
    return result_json(ctx, explain(rules, ctx), rules, ua=ua)


def explain_recorded(click: RecordedClick, settings: Settings, rules: RuleSet) -> dict[str, Any]:
    """One click line explained as the server judged it (`explain --batch`): an /ad click by its recorded
    claim. A line that can't be replayed faithfully is `{"line": N, "not_replayed": why}`; an /ad line
    without a claim, whose signature the keys here checked again, says `"reverified": true`."""
    try:
        ctx = read_recorded(click, settings, rules.apps, headers=_read(rules, click.headers))
    except BadClick as bad:
        return result_json(None, None, rules, bad)
    except NotReplayable as err:
        return {"line": click.line, "not_replayed": str(err)}
    out = result_json(ctx, explain(rules, ctx), rules, ua=click.ua)
    if checked_again(click, ctx):
        out["reverified"] = True
    return out


def _read(rules: RuleSet, headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """The request headers `rules` read, from those a click came with ("" for one it lacked)."""
    given = dict(headers)
    return tuple((name, given.get(name, "")) for name in rules.headers_read)

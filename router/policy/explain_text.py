"""`explain --format text`: the decision walk written for people.

Each rule tried, in order, with ✓ or ✗ for every one of its conditions in domain words, stopping at
the rule that decided. It renders the same trace `explain` returns (router.decision.decide); the per-condition
marks come from the same condition objects that matched.
"""

from __future__ import annotations

from router.decision.rules import RuleSet
from router.decision.types import Context, Decision
from router.decision.versions import format_version


def _client_line(ctx: Context) -> str:
    client = ctx.client
    app = str(client.app) + (f" {format_version(client.app_version)}" if client.app_version else "")
    os = client.os.value + (f" {format_version(client.os_version)}" if client.os_version else "")
    extra = ", mini program" if client.mini_program else ""
    return f"{app} on {os} ({client.device.value}{extra})"


def _link_line(ctx: Context) -> str:
    link = ctx.link
    ident = f" {link.item_id}" if link.item_id else f" shop {link.shop_id}" if link.shop_id else ""
    return f"{link.platform.value} {link.kind.value}{ident}" + (f" — {link.web_url}" if link.web_url else "")


def render(ctx: Context, decision: Decision, rules: RuleSet, ua: str = "") -> str:
    by_id = {rule.id: rule for rule in rules.rules}
    app = ctx.client.app
    lines = [
        f"client   {_client_line(ctx)}",
        f"app      {app.names.get('en', app)} / {app.names.get('zh-CN', app)}, {app.kind}"
        + (f" (leave: {app.leave})" if app.kind == "inapp" else "")
        + (f"; {rules.apps.named_by(app, ua)}" if ua else ""),
        f"channel  {ctx.channel.value} ({ctx.channel_reason})",
        f"link     {_link_line(ctx)}",
    ]
    if ctx.ad is not None:
        trusted = "trusted" if ctx.ad.verified else f"NOT trusted, {ctx.ad.verdict.replace('_', ' ')}"
        lines.append(f"ad       source {ctx.ad.source or '-'}, advertiser {ctx.ad.advertiser or '-'}: {trusted} "
                     f"({ctx.ad.reason})")
    lines.append(f"rules    version {rules.version}")
    lines.append("")
    for step in decision.trace:
        rule = by_id.get(step.rule)
        if rule is None:
            continue
        lines.append(f"{'✓' if step.matched else '✗'} {rule.id}  ({rule.where})")
        for condition in rule.conditions:
            if condition.holds(ctx, rule.id):
                lines.append(f"    ✓ {condition.describe()}")
            else:
                lines.append(f"    ✗ {condition.explain(ctx)}")
    if decision.rule == "default":
        lines.append("✓ default  (no rule matched)")
    lines.append("")
    answer = f"→ {decision.action.value} ({decision.status}) by {decision.rule}"
    if decision.location:
        answer += f"\n  Location: {decision.location}"
    if decision.reason:
        answer += f"\n  says: {decision.reason}"
    for note in decision.notes:
        answer += f"\n  note: {note}"
    lines.append(answer)
    return "\n".join(lines) + "\n"

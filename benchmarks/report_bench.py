"""How long the readout takes on a day of clicks: `python -m router report` over 1,000,000 click lines and
their outcome lines.

    python benchmarks/report_bench.py [--clicks 1000000] [--gzip] [--keep FILE]

Generates a day the way the router writes it (router/serve/clicks.py's click lines, router/serve/outcomes.py's
outcome lines, a few server lines between them): WeChat group chats in a 30 % rollout of `web` against the
landing page, 1:1 chats, Moments, ad clicks, browsers; landing pages shown, copied from, left for the app,
escaped from, followed to the web, as often as such pages are. Then times the report by rule, by arm and by
app and OS, each from the files as written (reading included), and prints the timings. Generating is not timed.
"""

from __future__ import annotations

import argparse
import gzip
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.decision.conditions import rollout_bucket  # noqa: E402
from router.policy.report import build_report  # noqa: E402
from router.policy.report_render import render_text  # noqa: E402

ROLLOUT = "wechat-group-chat-pilot-web"
# (weight, channel, app, os, rule, action, status)
KINDS = [
    (30, "group_chat", "wechat", "android", None, None, None),  # the rollout decides
    (15, "group_chat", "wechat", "ios", None, None, None),
    (15, "private_chat", "wechat", "android", "wechat-private-landing", "landing", 200),
    (10, "moments", "wechat", "ios", "wechat-moments-landing", "landing", 200),
    (10, "ad", "wechat", "android", "wechat-ad-unidesk-app", "app", 302),
    (8, "unknown", "browser", "ios", "phone-browsers-app", "app", 302),
    (7, "unknown", "browser", "android", "phone-browsers-app", "app", 302),
    (3, "private_chat", "qq", "android", "qq-landing", "landing", 200),
    (2, "unknown", "bot", "other", "bots-web", "web", 302),
]


def generate(path: Path, clicks: int, compress: bool) -> tuple[int, int]:
    rng = random.Random(7)
    weights = [kind[0] for kind in KINDS]
    start = datetime(2026, 12, 1, tzinfo=UTC)
    opener = gzip.open if compress else open
    outcomes = 0
    with opener(path, "wb") as out:  # type: ignore[operator]
        batch: list[bytes] = []
        for n in range(clicks):
            _, channel, app, os, rule, action, status = rng.choices(KINDS, weights)[0]
            at = start + timedelta(seconds=n * 86_400 / clicks)
            # Most people tap once; one in ten comes back (as someone seen earlier that day).
            visitor = f"v{rng.randrange(n):08d}" if n and rng.random() < 0.1 else f"v{n:08d}"
            arms = None
            if rule is None:
                inside = rollout_bucket(ROLLOUT, visitor) < 30
                arms = [{"rule": ROLLOUT, "in": inside}]
                landing = ("wechat-group-chat-landing", "landing", 200)
                rule, action, status = (ROLLOUT, "web", 302) if inside else landing
            click_id = f"{n:010x}-{n % 7}"
            line = {"type": "click", "at": at.isoformat(timespec="milliseconds"), "request": "/go?url=…",
                    "ua": "Mozilla/5.0", "visitor": visitor, "visitor_from": "cookie", "action": action, "rule": rule,
                    "status": status, "channel": channel, "app": app, "os": os, "rules": "5561cf19d5ac",
                    "expansion": None, "expansion_reason": None, "request_id": click_id, "duration_ms": 0.4}
            if arms:
                line["arms"] = arms
            batch.append(orjson.dumps(line))
            if action == "landing":
                for event, chance in (("shown", 0.92), ("copied", 0.22), ("app_attempt", 0.3), ("app_left", 0.12),
                                      ("escaped", 0.06), ("web_tap", 0.1), ("fallback_web", 0.03)):
                    if rng.random() < chance:
                        outcomes += 1
                        batch.append(orjson.dumps({
                            "type": "outcome", "at": (at + timedelta(seconds=3)).isoformat(timespec="milliseconds"),
                            "click": click_id, "event": event, "rule": rule, "rules": "5561cf19d5ac", "arms": arms,
                            "app": app}))
            if n % 10_000 == 0:
                batch.append(b'{"type":"server","level":"info","message":"rules 5561cf19d5ac unchanged"}')
            if len(batch) >= 10_000:
                out.write(b"\n".join(batch) + b"\n")
                batch = []
        if batch:
            out.write(b"\n".join(batch) + b"\n")
    return clicks, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clicks", type=int, default=1_000_000)
    parser.add_argument("--gzip", action="store_true", help="write the day gzip-compressed (.gz), as shipped logs are")
    parser.add_argument("--keep", metavar="FILE", help="write the day to FILE and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(args.keep) if args.keep else Path(scratch) / ("day.log.gz" if args.gzip else "day.log")
        started = time.perf_counter()
        clicks, outcomes = generate(path, args.clicks, args.gzip)
        print(f"generated {clicks:,} clicks and {outcomes:,} outcome lines ({path.stat().st_size / 2**20:.0f} MiB"
              f"{', gzip' if args.gzip else ''}) in {time.perf_counter() - started:.1f} s (not timed below)")
        for by in (["rule"], ["arm"], ["app", "os"]):
            started = time.perf_counter()
            report = build_report([str(path)], by=by)
            render_text(report)
            print(f"report --by {' '.join(by):<7}: {time.perf_counter() - started:5.2f} s "
                  f"({report['total']['clicks']:,} clicks, {len(report['groups'])} groups)")
        for comparison in report["arms"]:  # every report compares the rollouts' arms
            print(comparison["sentence"])


if __name__ == "__main__":
    main()

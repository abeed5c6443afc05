"""Microseconds per click decision for a realistic mix of clicks, with warm and with never-seen user agents.

    python benchmarks/bench_decide.py [--clicks 20000]

"warm, as served": repeated clicks as the server answers them, from kept answers (router.decision.answers);
"warm, read and decided every time": every user agent has been seen before (the per-UA cache answers).
Links are skewed as a day's traffic is: ad clicks go to 50 ads (each a signed link naming its advertiser,
with a click id per click); 80% of shared links are among 500 popular items and the rest a long tail
where almost every link is new.
"new agents": every click carries a user agent the process has never parsed, as real WeChat traffic
does (a per-install id; models, builds, versions and network types from real-sized sets: agents.py), on
the popular links, clicked before by others (the long tail of links seen once is the next line's), read
and decided every time; "new agents, as served": the same as the server answers them, where a kept
answer serves every user agent whose client is of the same kind (what the rules read of it).
"new agents and links": the worst case, nothing seen before, every link a different item.
All include reading the click (query parsing, link normalisation, signature check for ad clicks) and
walking the shipped rules: everything but HTTP.
The last line gives what reading a never-seen WeChat user agent costs: a day's (agents.wechat_android) and
one whose every part is new (agents.worst_case), beside `user_agents.parse`'s default parser.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import random
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import agents

from router.decision import clients
from router.decision.answers import Answers
from router.decision.click import read_click
from router.decision.clients import parse_client
from router.decision.decide import decide
from router.decision.links import link_cache_clear
from router.decision.rules import RuleSet, RuleSource, build_rule_set, load_rules
from router.decision.signing import SigningKeys, sign
from router.decision.types import Context
from router.serve.config import Settings, bundled_rules_dir

KEYS = SigningKeys.parse("bench:benchmark-secret-0123456789")
MODELS = ["V2148A", "PEHM00", "M2012K11AC", "NOH-AN00", "SM-S9180", "22081212C", "PJA110", "RMX3706"]
NETS = ["WIFI", "4G", "5G"]


# A day's WeChat user agents on Android: every one new, models, builds and versions from real-sized sets
# (benchmarks/agents.py, shared with http_bench.py).
wechat_android = agents.wechat_android


def wechat_ios(i: int) -> str:
    return (
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {15 + i % 3}_{i % 7} like Mac OS X) AppleWebKit/605.1.15 "
        f"(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.{40 + i % 10}(0x{0x18002F00 + i:x}) "
        f"NetType/{NETS[i % 3]} Language/zh_CN"
    )


def qq_android(i: int) -> str:
    return (
        f"Mozilla/5.0 (Linux; Android 12; {MODELS[i % len(MODELS)]} Build/SKQ1.{i}; wv) AppleWebKit/537.36 "
        f"(KHTML, like Gecko) Version/4.0 Chrome/98.0.4758.{i % 200} MQQBrowser/6.2 TBS/046313 Mobile "
        f"Safari/537.36 V1_AND_SQ_8.9.28_4108_YYB_D QQ/8.9.28.{10000 + i} NetType/WIFI"
    )


# Browsers vary where real ones do (OS, build and browser versions, the model), each field within its
# real range: Safari's Mobile/ build is a two-digit, letter, up-to-four-digit code; Chrome's build and
# patch are at most five and three digits.
def safari_ios(i: int) -> str:
    return (
        f"Mozilla/5.0 (iPhone; CPU iPhone OS {15 + i % 4}_{i % 7} like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
        f"like Gecko) Version/{15 + i % 4}.{i % 7} Mobile/{15 + i % 8}{'ABCDEFG'[i % 7]}{i // 56 % 10000} "
        "Safari/604.1"
    )


def chrome_android(i: int) -> str:
    return (
        f"Mozilla/5.0 (Linux; Android {10 + i % 5}; {MODELS[i % len(MODELS)]}) AppleWebKit/537.36 (KHTML, like "
        f"Gecko) Chrome/{110 + i % 25}.0.{i // 25 % 7000}.{i // 175000 % 200} Mobile Safari/537.36"
    )


def chrome_desktop(i: int) -> str:
    return (
        f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{100 + i % 25}.0.{i // 25 % 7000}.{i // 175000 % 200} Safari/537.36"
    )


def bot(i: int) -> str:
    return f"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) r{i}"


ITEM = "https://item.taobao.com/item.htm?id=6{:011d}"
# (weight, user agent maker, how the click arrives)
MIX = [
    (25, wechat_android, "group"), (15, wechat_ios, "private"), (10, wechat_ios, "moments"),
    (10, wechat_android, "ad"), (8, qq_android, "private"), (12, safari_ios, "plain"),
    (10, chrome_android, "plain"), (7, chrome_desktop, "plain"), (3, bot, "plain"),
]
FROM = {"group": "groupmessage", "private": "singlemessage", "moments": "timeline"}


def make_clicks(
    count: int, seed: int, ua_offset: int, fresh_links: bool = False, tail: bool = True
) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    weights = [weight for weight, _, _ in MIX]
    clicks = []
    for n in range(count):
        _, make_ua, how = rng.choices(MIX, weights)[0]
        if fresh_links:
            url = ITEM.format(rng.randrange(10**10))
        else:
            popular = rng.random() < 0.8 or not tail
            url = ITEM.format(rng.randrange(50) if how == "ad" else rng.randrange(500) if popular
                              else 1000 + rng.randrange(10**9))
        if how == "ad":
            # An ad's link is fixed when the ad is made (its advertiser with it); the platform appends a
            # click id per click. With fresh links, every ad is a new one.
            fields = sign({"url": url, "src": "unidesk", "adv": str(1000 + int(url.rsplit("=", 1)[1]) % 1000)}, KEYS)
            path, query = "/ad", urlencode(fields, quote_via=quote) + f"&gdt_vid=wx0{n:x}"
        else:
            params = {"url": url}
            if how in FROM:
                params["from"] = FROM[how]
            path, query = "/go", urlencode(params, quote_via=quote)
        clicks.append((path, query, make_ua(ua_offset + n)))
    return clicks


def run(clicks: list[tuple[str, str, str]], settings: Settings, rules) -> float:  # type: ignore[no-untyped-def]
    at = datetime.now(UTC)
    start = time.perf_counter()
    for path, query, ua in clicks:
        decide(rules, read_click(path, query, ua, at=at, settings=settings))
    return (time.perf_counter() - start) / len(clicks) * 1e6


def run_served(clicks: list[tuple[str, str, str]], settings: Settings, rules, answers: Answers) -> float:  # type: ignore[no-untyped-def]
    """As the server decides: repeated /go clicks from kept answers (router.decision.answers)."""
    at = datetime.now(UTC)
    start = time.perf_counter()
    for path, query, ua in clicks:  # as the click handler does (router.serve.clicks)
        client = parse_client(ua)
        if answers.get(rules, path, query, client) is None:
            ctx = read_click(path, query, ua, at=at, settings=settings, visitor="bench-visitor", client=client)
            answers.decide(rules, path, query, ctx)
    return (time.perf_counter() - start) / len(clicks) * 1e6


def scaled_rules(count: int) -> RuleSet:
    """`count` rules as a large deployment writes them: mostly per-advertiser rules, then per-app ones."""
    lines = ["rules:"]
    for n in range(count - 9):
        lines.append(f"  - {{id: adv-{n}, when: {{channel: ad, advertiser: '{100000 + n}'}}, then: block}}")
    apps = ["wechat", "qq", "weibo", "alipay", "dingtalk", "douyin", "other_inapp", "wecom", "taobao"]
    for app in apps[: min(9, count)]:
        lines.append(f"  - {{id: app-{app}, when: {{app: {app}, channel: [group_chat, moments]}}, then: landing}}")
    lines.append("default: app")
    return build_rule_set([RuleSource("scaled.yaml", "\n".join(lines).encode())], origin="scaled")


def decide_only(contexts: list[Context], rules: RuleSet) -> float:
    start = time.perf_counter()
    for ctx in contexts:
        decide(rules, ctx)
    return (time.perf_counter() - start) / len(contexts) * 1e6


# Inputs built to be slow: repeated brackets, marks, breaks and look-alike markers. Linear readers cost
# about three (links: 1 vs 3 KB) or four (user agents: 256 B vs 1 KB) times as much; a quadratic one nine
# or sixteen times.
HOSTILE_LINKS = {"brackets": "【a】", "marks": "￥a", "breaks": "https://item.taobao.com/\n1", "parens": "(CZ3457 "}
HOSTILE_AGENTS = {"pads": "pad tab; ", "parens": "(", "bot words": "bot spider "}


def _fastest(read: Callable[[str], object], text: str) -> float:
    """The best of five reads of fresh variants of `text` (never a cached answer), in µs."""
    best = float("inf")
    for _ in range(5):
        variant = text[:-8] + f"{random.random():.6f}"[-8:]
        start = time.perf_counter()
        with contextlib.suppress(ValueError):  # LinkError is a ValueError
            read(variant)
        best = min(best, (time.perf_counter() - start) * 1e6)
    return best


def hostile_costs() -> dict[str, list[tuple[str, float]]]:
    """µs to read hostile links of 1 and 3 KB, and hostile user agents of 256 B and 1 KB (their cap)."""
    from router.decision.links import parse_link

    costs: dict[str, list[tuple[str, float]]] = {}
    for name, unit in HOSTILE_LINKS.items():
        costs[f"link {name}"] = [
            (f"{kb} KB", _fastest(parse_link, (unit * (kb * 1024 // len(unit) + 1))[: kb * 1024]))
            for kb in (1, 3)]
    for name, unit in HOSTILE_AGENTS.items():
        prefix = "Mozilla/5.0 (Linux; Android 13; "
        costs[f"ua {name}"] = [
            (f"{size} B", _fastest(clients.parse_client, (prefix + unit * size)[:size])) for size in (256, 1024)]
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clicks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    settings = Settings(rules_dir=bundled_rules_dir(), signing_keys=KEYS)
    rules = load_rules(settings.rules_dir)
    clients.warm_up()
    gc.collect()
    gc.freeze()  # as `serve` does after start-up: what start-up loaded is not walked by every collection

    # Warm: fewer clicks than the per-UA cache and the kept answers hold (4,096 each), replayed in a loop; a
    # loop over more than an LRU holds would miss every time, which no real traffic does.
    warm_clicks = make_clicks(min(args.clicks, 3000), seed=1, ua_offset=0)
    run(warm_clicks, settings, rules)  # fill the cache
    warm = [run(warm_clicks, settings, rules) for _ in range(args.rounds)]
    answers = Answers()
    run_served(warm_clicks, settings, rules, answers)
    served = [run_served(warm_clicks, settings, rules, answers) for _ in range(args.rounds)]
    at = datetime.now(UTC)
    contexts = [read_click(path, query, ua, at=at, settings=settings) for path, query, ua in warm_clicks]
    # The two sizes' rounds taken in turns, so a busy spell of a shared machine weighs on both alike.
    sized = {count: scaled_rules(count) for count in (10, 2000)}
    times: dict[int, list[float]] = {count: [] for count in sized}
    for scaled in sized.values():
        decide_only(contexts, scaled)
    for _ in range(args.rounds):
        for count, scaled in sized.items():
            times[count].append(decide_only(contexts, scaled))
    scaling = {count: min(taken) for count, taken in times.items()}
    cold, cold_served, worst = [], [], []
    for r in range(args.rounds):
        # The same links clicked before by other user agents (a server that has run a while), then every
        # user agent new: what a never-seen user agent costs.
        run(make_clicks(args.clicks, seed=100 + r, ua_offset=500_000_000 + 1_000_000 * r, tail=False), settings, rules)
        clients.cache_clear()
        clicks = make_clicks(args.clicks, seed=100 + r, ua_offset=1_000_000 * (r + 1), tail=False)
        cold.append(run(clicks, settings, rules))
        # As served: the same kind of clicks, their answers kept by client kind (router.decision.answers).
        clients.cache_clear()
        clicks = make_clicks(args.clicks, seed=150 + r, ua_offset=300_000_000 + 1_000_000 * r, tail=False)
        cold_served.append(run_served(clicks, settings, rules, answers))
    for r in range(args.rounds):
        clients.cache_clear()
        link_cache_clear()
        clicks = make_clicks(args.clicks, seed=200 + r, ua_offset=100_000_000 * (r + 1), fresh_links=True)
        worst.append(run(clicks, settings, rules))

    clients.cache_clear()
    link_cache_clear()
    tracemalloc.start()
    run(make_clicks(clients.cache_info().maxsize or 0, seed=7, ua_offset=50_000_000, fresh_links=True), settings, rules)
    cache_bytes, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    import user_agents

    day = [agents.wechat_android(90_000_000 + i) for i in range(300)]
    start = time.perf_counter()
    for ua in day:
        user_agents.parse(ua)
    baseline = (time.perf_counter() - start) / len(day) * 1e6
    parse_costs = {}
    for name, uas in (("a day's", [agents.wechat_android(80_000_000 + i) for i in range(20_000)]),
                      ("every part new", [agents.worst_case(80_000_000 + i) for i in range(20_000)])):
        clients.cache_clear()
        start = time.perf_counter()
        for ua in uas:
            clients.parse_client(ua)
        parse_costs[name] = (time.perf_counter() - start) / len(uas) * 1e6

    print(f"clicks per round: warm {len(warm_clicks)}, others {args.clicks}; rounds: {args.rounds}; "
          "the fastest round shown (the least disturbed on a shared machine)")
    print(f"warm, as served      : {min(served):7.1f} µs per decision (from kept answers)")
    print(f"warm, read and decided every time: {min(warm):7.1f} µs per decision")
    print(f"new agents           : {min(cold):7.1f} µs per decision")
    print(f"new agents, as served: {min(cold_served):7.1f} µs per decision (kept answers by client kind)")
    print(f"new agents and links : {min(worst):7.1f} µs per decision")
    print(f"caches, full ({clients.cache_info().maxsize:,} agents, 4,096 links): about {cache_bytes / 2**20:.1f} MiB")
    print(f"rules walked, 10 vs 2,000 rules: {scaling[10]:5.1f} µs vs {scaling[2000]:5.1f} µs per decision "
          f"({scaling[2000] / scaling[10]:.2f}×)")
    for name, per_kb in hostile_costs().items():
        print(f"hostile {name:<13}: " + ", ".join(f"{size} {cost:6.0f} µs" for size, cost in per_kb))
    print("new WeChat UA parse  : " + ", ".join(f"{name} {cost:.1f} µs" for name, cost in parse_costs.items())
          + f" here; {baseline:.0f} µs with user_agents.parse's default parser")


if __name__ == "__main__":
    main()

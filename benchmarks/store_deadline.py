"""Which deadline for the fleet's store (ROUTER_REDIS_TIMEOUT_MS): the share of calls it leaves to the
process's own store under a busy moment, for a few deadlines side by side.

    python benchmarks/store_deadline.py [--deadlines 10,20,50,100,250] [--seconds 10] [--connections 64]

For each deadline: Debian's redis-server and one router (`adlink-router serve`, ROUTER_REDIS_URL, both click
limits on: three store calls per ad click) on free loopback ports; wrk sends signed ad clicks, each with a
click id of its own, as fast as the router answers (wrk on the same machine: the busy moment of a small
node), and /metrics says afterwards how many store calls were answered by the store and how many fell back.
Also each run's clicks per second and wrk's latency percentiles: what the deadline costs while the store is
up. A deadline is only waited out in full when the store hangs; then FAILURES_TO_REST calls in a row rest it
(router.serve.shared). Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loopback import WECHAT, free_port, store_and_router, wait_for  # noqa: E402

from router.decision.signing import SigningKeys, sign  # noqa: E402

KEYS_TEXT = "bench:benchmark-secret-0123456789"
# Each request its own click id (a replay check per click, as real ad traffic brings).
WRK_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread) threads = threads + 1; thread:set("id", threads) end
function init(args) prefix = args[1] end
function request()
  counter = counter + 1
  return wrk.format("GET", prefix .. "&gdt_vid=w" .. id .. "x" .. counter, {["User-Agent"] = ua})
end
"""


def _sum(metrics: str, name: str) -> float:
    return sum(float(value) for value in re.findall(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", metrics, re.M))


def one_run(deadline_ms: int, seconds: float, connections: int, wrk: str, redis_server: str) -> dict[str, float]:
    redis_port, router_port = free_port(), free_port()
    ad = urlencode(sign({"url": "https://item.taobao.com/item.htm?id=600000000001", "src": "gdt", "adv": "1001"},
                        SigningKeys.parse(KEYS_TEXT)), quote_via=quote)
    with tempfile.TemporaryDirectory() as directory:
        script = Path(directory) / "clicks.lua"
        script.write_text(f'ua = "{WECHAT}"\n' + WRK_SCRIPT, encoding="utf-8")
        store, router = store_and_router(redis_server, directory, redis_port, router_port, {
            "ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_LIMIT_PER_ADDRESS": "100000000/60s",
            "ROUTER_LIMIT_PER_AD_LINK": "100000000/60s", "ROUTER_REDIS_TIMEOUT_MS": str(deadline_ms)})
        base = f"http://127.0.0.1:{router_port}"
        try:
            wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, "the router")
            done = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                                   base, "--", f"/ad?{ad}"], capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"wrk failed: {done.stdout}{done.stderr}")
            metrics = httpx.get(f"{base}/metrics").text
        finally:
            router.terminate()
            router.wait(15)
            store.terminate()
            store.wait(15)
    calls = _sum(metrics, "adlink_shared_store_calls_total")
    fallbacks = _sum(metrics, "adlink_shared_store_fallbacks_total")
    rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", done.stdout).group(1))  # type: ignore[union-attr]
    latencies = dict(re.findall(r"^\s+(50|99)%\s+([0-9.]+\w+)$", done.stdout, re.M))
    return {"calls": calls, "fallbacks": fallbacks, "rate": rate, "p50": _ms(latencies.get("50", "0ms")),
            "p99": _ms(latencies.get("99", "0ms"))}


def _ms(text: str) -> float:
    number, unit = re.match(r"([0-9.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--deadlines", default="10,20,50,100,250", help="milliseconds, comma-separated")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="runs per deadline, reported as a range")
    args = parser.parse_args()
    wrk, redis_server = shutil.which("wrk"), shutil.which("redis-server")
    if wrk is None or redis_server is None:
        raise SystemExit("needs Debian's wrk and redis-server")
    print(f"{os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds:g}s of signed ad clicks, "
          f"limits on; {args.rounds} rounds per deadline (ranges)")
    print(f"{'deadline':>9} {'fallback share':>17} {'clicks/s':>15} {'p50 ms':>13} {'p99 ms':>15}")
    for deadline in (int(text) for text in args.deadlines.split(",")):
        runs = [one_run(deadline, args.seconds, args.connections, wrk, redis_server) for _ in range(args.rounds)]
        shares = [100 * run["fallbacks"] / max(1.0, run["calls"] + run["fallbacks"]) for run in runs]

        def span(values: list[float], digits: int = 1) -> str:
            return f"{min(values):.{digits}f}–{max(values):.{digits}f}"

        print(f"{deadline:>7}ms {span(shares):>16}% {span([r['rate'] for r in runs], 0):>15} "
              f"{span([r['p50'] for r in runs]):>13} {span([r['p99'] for r in runs]):>15}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

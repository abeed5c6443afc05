"""How big a Valkey/Redis a fleet needs: keys and bytes the router writes per click, measured.

    python benchmarks/redis_sizing.py [--clicks 5000]

Starts Debian's redis-server and one router (`adlink-router serve` with ROUTER_REDIS_URL, both click limits
on) on free loopback ports, then sends signed ad clicks, each with its own click id (what the replay check
records), and reads what the store holds after them: keys, `used_memory`, and `MEMORY USAGE` of one key of
each kind. Short-link expansions add one key per distinct short link (for 10 minutes, 30 s for a failure)
and limits two counters per address or ad link and window: both are per link or address, not per click,
and counted apart. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loopback import WECHAT, free_port, store_and_router, wait_for  # noqa: E402

from router.decision.signing import SigningKeys, sign  # noqa: E402

KEYS_TEXT = "bench:benchmark-secret-0123456789"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clicks", type=int, default=5000)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("needs Debian's redis-server (apt-get install redis-server)")
    redis_port, router_port = free_port(), free_port()
    url = f"redis://127.0.0.1:{redis_port}/0"
    with tempfile.TemporaryDirectory() as directory:
        store, router = store_and_router(binary, directory, redis_port, router_port, {
            "ROUTER_SIGNING_KEYS": KEYS_TEXT, "ROUTER_LIMIT_PER_ADDRESS": "1000000/60s",
            "ROUTER_LIMIT_PER_AD_LINK": "1000000/60s"})
        try:
            client = redis.Redis.from_url(url)
            wait_for(client.ping, "redis-server")
            base = f"http://127.0.0.1:{router_port}"
            wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, "the router")
            before_keys, before_bytes = client.dbsize(), client.info("memory")["used_memory"]
            keys = SigningKeys.parse(KEYS_TEXT)
            ads = [urlencode(sign({"url": f"https://item.taobao.com/item.htm?id={600000000000 + n}", "src": "unidesk",
                                   "adv": str(1000 + n)}, keys), quote_via=quote) for n in range(50)]
            with httpx.Client(base_url=base) as http:
                for n in range(args.clicks):
                    http.get(f"/ad?{ads[n % len(ads)]}&gdt_vid=wx0{n:08x}", headers={"user-agent": WECHAT})
            after_keys, after_bytes = client.dbsize(), client.info("memory")["used_memory"]
            kinds: dict[str, tuple[int, int]] = {}
            for key in client.scan_iter(count=1000):
                kind = key.decode().split(":")[1]
                count, size = kinds.get(kind, (0, 0))
                kinds[kind] = (count + 1, size or int(client.memory_usage(key) or 0))
        finally:
            router.terminate()
            router.wait(15)
            store.terminate()
            store.wait(15)
    added_keys, added_bytes = after_keys - before_keys, after_bytes - before_bytes
    print(f"{args.clicks:,} signed ad clicks (50 ads, a click id each), limits on, through one router")
    print(f"  keys added        : {added_keys:,} ({added_keys / args.clicks:.3f} per click)")
    print(f"  used_memory added : {added_bytes / 2**20:.2f} MiB ({added_bytes / args.clicks:.0f} bytes per click)")
    for kind, (count, size) in sorted(kinds.items()):
        print(f"  {kind:<10} keys: {count:>7,}, MEMORY USAGE of one: {size} bytes")
    per_click = added_bytes / args.clicks
    print(f"per million ad clicks a day, each click id kept 24 h: about {per_click * 1e6 / 2**20:.0f} MiB "
          f"(keys for limits and expansions come and go with their windows and TTLs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

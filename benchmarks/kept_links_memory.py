"""Memory per short link kept in a router's process (router.serve.kept_links; ROUTER_LINKS_KEPT, 100,000 by
default): in Python's own accounting, and in a real router's resident set.

    python benchmarks/kept_links_memory.py [--sizes 10000,100000] [--clicks 100000]

First, for each kind of link and each of `--sizes`: as many links, each made by
`router.serve.kept_links.kept_link` from a row as the store reads one (every string its own object, as
the database driver gives them; the code's key a string of its own too, as a click's path gives it) and
kept in a `Recent` as KeptLinks keeps them, measured with tracemalloc: the bytes allocated and still held
after a garbage collection, per link. Kinds of link (loopback.link_record):

  plain        a Taobao item's URL, two tags, a title of some 20 Chinese characters, no image
  rich         the same with a description of some 70 characters and a preview image's URL
  advertiser   the plain link with an advertiser and a campaign: kept as a signed /ad click

Beside them, the router's own estimate (`KeptLinks.kept_bytes()`, what sys.getsizeof says of each link's
parts) for `--sizes`' first size of each kind, kept through `KeptLinks.find` from a stand-in store.

Then, unless `--clicks 0`: a real router (`adlink-router serve`, ROUTER_LINKS_KEPT set to `--clicks`) on
a SQLite database of `--clicks` plain links (loopback.fill_links), its resident set once one /go and one
/s/ click have warmed it, again once wrk has clicked a tenth of the links once each (each a read of the
database; /metrics says when they are kept), and again once it has clicked the rest: what the process grew
by per link, allocator and all, over the first tenth (with what reading links costs once: threads, the
database's connections and page caches) and over the rest (a link's own cost). Also how fast the first
clicks on links not yet kept were answered. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from loopback import SAFARI, fill_links, free_port, link_code, link_record, pinned, router_command, rss_mb, server

from router.decision.recent import Recent
from router.decision.signing import SigningKeys
from router.serve.kept_links import READS_IN_FLIGHT, KeptLink, KeptLinks, kept_link

PUBLIC_URL = "https://go.example.com"
KINDS = ("plain", "rich", "advertiser")

# wrk's Lua: every code of a file clicked in turn, numbered on from `start`; report as JSON.
LUA = """
local codes = {}
for line in io.lines("CODES") do codes[#codes + 1] = "/s/" .. line end
local counter = START
request = function()
  local path = codes[counter % #codes + 1]
  counter = counter + 1
  return wrk.format("GET", path, {["User-Agent"] = "UA"})
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "errors": %d, "non2xx3xx": %d}\\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def stored_row(i: int, kind: str) -> dict[str, Any]:
    """The i-th link of `kind` as LinkStore.get returns it: every string a new object, as a driver's are."""
    record = link_record(i, rich=kind == "rich")
    now = datetime.now(UTC)
    advertiser = kind == "advertiser"
    return {"code": record["code"], "url": record["url"], "channel": None,
            "advertiser": f"shop-{i % 1000}" if advertiser else None,
            "campaign": f"summer-2025-{i % 7}" if advertiser else None,
            "tags": json.loads(json.dumps(record["tags"])), "title": record["title"],
            "description": record.get("description"), "image": record.get("image"), "expires_at": None,
            "max_clicks": None, "clicks": 0, "disabled": False, "custom": False, "created_at": now,
            "updated_at": now, "created_by": "bench", "version": 1}


def traced_bytes(count: int, kind: str, keys: SigningKeys) -> float:
    """Bytes per link held by `count` links of `kind` kept as KeptLinks keeps them (tracemalloc)."""
    kept: Recent[str, KeptLink] = Recent(count)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            kept.put(link_code(i), kept_link(stored_row(i, kind), keys, PUBLIC_URL))
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(kept) == count
    return held / count


class StandIn:
    """What KeptLinks asks of a store to find links: rows, and a change counter that never moves."""

    def __init__(self, kind: str, count: int) -> None:
        self.kind = kind
        self.index = {link_code(i): i for i in range(count)}

    def change_counter(self) -> int:
        return 0

    def get(self, code: str) -> dict[str, Any] | None:
        i = self.index.get(code)
        return None if i is None else stored_row(i, self.kind)


async def estimated_bytes(count: int, kind: str, keys: SigningKeys) -> float:
    """KeptLinks.kept_bytes() per link, `count` links of `kind` kept through KeptLinks.find."""
    links = KeptLinks(StandIn(kind, count), keys, PUBLIC_URL, limit=count)  # type: ignore[arg-type]
    await links.refresh()  # the change counter learnt: what is found is kept from now on
    codes = [link_code(i) for i in range(count)]
    step = READS_IN_FLIGHT  # as many reads at once as KeptLinks takes before it answers "try again"
    for start in range(0, count, step):
        await asyncio.gather(*(links.find(code) for code in codes[start:start + step]))
    assert len(links) == count
    return links.kept_bytes() / count


def kept_in(base: str) -> int:
    """The router's adlink_short_links_kept, from /metrics."""
    text = httpx.get(base + "/metrics", timeout=10).text
    match = re.search(r"^adlink_short_links_kept(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.M)
    if match is None:
        raise SystemExit("/metrics has no adlink_short_links_kept")
    return int(float(match.group(1)))


def click_codes(base: str, codes_file: Path, start: int, seconds: int, connections: int) -> tuple[int, float, int]:
    """One wrk run clicking the codes in `codes_file` from the `start`-th on: (requests, seconds, errors)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.replace("CODES", str(codes_file)).replace("START", str(start)).replace("UA", SAFARI))
    try:
        command = pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", script.name,
                             base])
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        Path(script.name).unlink()
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    return data["requests"], data["duration_us"] / 1e6, data["errors"] + data["non2xx3xx"]


def router_rss(count: int, connections: int) -> dict[str, float]:
    """A real router's resident set as its links are clicked once each (see the module's docstring)."""
    with tempfile.TemporaryDirectory(prefix="kept-links-") as scratch:
        folder = Path(scratch)
        filling = time.monotonic()
        database = fill_links(folder / "links.sqlite", count)
        filled = time.monotonic() - filling
        tenth = max(2, count // 10)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {"ROUTER_DATABASE_URL": database, "ROUTER_LINKS_KEPT": str(max(100, count)), "ROUTER_CLICK_LOG": "off",
               "ROUTER_LOG_LEVEL": "warning", "ROUTER_METRICS_FROM": "127.0.0.1/32"}
        figures: dict[str, float] = {"filled": filled, "tenth links": tenth, "clicked": 0, "errors": 0}
        with server(router_command(port), port, env) as router:
            item = quote("https://item.taobao.com/item.htm?id=123456", safe="")
            httpx.get(f"{base}/go?url={item}", headers={"user-agent": SAFARI})
            warm = httpx.get(f"{base}/s/{link_code(0)}", headers={"user-agent": SAFARI})
            if warm.status_code != 302:
                raise SystemExit(f"/s/{link_code(0)} answered {warm.status_code}")
            time.sleep(3)  # the clicks' counts flushed to the database
            figures["before"] = rss_mb(router)
            # Links 1 to a tenth first (what a process pays once for reading links settles: its threads, the
            # database's connections and page caches), then the rest: the slope between is a link's own cost.
            for step, (first, last) in (("tenth", (1, tenth)), ("after", (tenth, count))):
                codes_file = folder / f"codes-{step}"
                codes_file.write_text("".join(f"{link_code(i)}\n" for i in range(first, last)))
                clicked = 0
                while kept_in(base) < last:
                    if clicked > 4 * (last - first):
                        raise SystemExit(f"{clicked:,} clicks and only {kept_in(base):,} of {last:,} links kept")
                    requests, seconds, failed = click_codes(base, codes_file, clicked, 5, connections)
                    if step == "after" and clicked == 0:
                        figures["first"] = requests / seconds
                    clicked += requests
                    figures["errors"] += failed
                figures["clicked"] += clicked
                time.sleep(3)  # the last clicks' counts flushed
                figures[step] = rss_mb(router)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="links kept, for tracemalloc (comma-separated)")
    parser.add_argument("--clicks", type=int, default=100_000,
                        help="links clicked in a real router for its resident set (0: not measured)")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections for those clicks")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    keys = SigningKeys.development_keys()
    traced = {(kind, size): traced_bytes(size, kind, keys) for kind in KINDS for size in sizes}
    estimated = {kind: asyncio.run(estimated_bytes(sizes[0], kind, keys)) for kind in KINDS}
    print("bytes per kept link: tracemalloc, what kept_link's links and their Recent hold after a gc; the router's "
          f"own estimate (KeptLinks.kept_bytes) at {sizes[0]:,} links")
    header = "".join(f" {f'{size:,} links':>14} |" for size in sizes)
    print(f"| {'link':<10} |{header} {'estimate':>8} |")
    print(f"| {'-' * 10} |{''.join(' ' + '-' * 14 + ':|' for _ in sizes)} {'-' * 8}:|")
    for kind in KINDS:
        cells = "".join(f" {traced[kind, size]:>12.0f} B |" for size in sizes)
        print(f"| {kind:<10} |{cells} {estimated[kind]:>6.0f} B |")
    if args.clicks > 0:
        if shutil.which("wrk") is None:
            print("wrk is not installed (Debian: apt-get install wrk): no resident set measured", file=sys.stderr)
            return 2
        rss = router_rss(args.clicks, args.connections)
        tenth = int(rss["tenth links"])
        print()
        print(f"a router's resident set, {args.clicks:,} plain links in its SQLite database (filled in "
              f"{rss['filled']:.0f} s), ROUTER_LINKS_KEPT={max(100, args.clicks)}, each link clicked once "
              f"({int(rss['clicked']):,} clicks, {int(rss['errors'])} errors):")
        for label, kept, mb, since, links in (
                ("warmed up", 1, rss["before"], 0.0, 0),
                ("a tenth kept", tenth, rss["tenth"], rss["before"], tenth - 1),
                ("all kept", args.clicks, rss["after"], rss["tenth"], args.clicks - tenth)):
            grown = f"{(mb - since) * 1024 * 1024 / links:6.0f} B per link since the line above" if links else ""
            print(f"  {label:<13} {kept:>9,} links {mb:7.1f} MB  {grown}".rstrip())
        print(f"  first clicks on links not kept (each a read of the database): {rss['first']:,.0f}/s over 5 s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

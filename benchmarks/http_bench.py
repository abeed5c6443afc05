"""The router over HTTP, side by side with a bare Starlette app on the same server stack, in one run.

    python benchmarks/http_bench.py [--seconds 5] [--rounds 5] [--connections 50] [--rss-clicks 100000]
                                    [--links 1000000]

Each server is one process started the way a user starts it (`adlink-router serve`; the baseline with
uvicorn's own command and the same loop and protocol), pinned to core 0 with `taskset` where there is
one; `wrk` (Debian's package) runs pinned to core 1. Every row gets a warm-up, then in each of `--rounds`
rounds every compared row runs for `--seconds` right beside a run of its baseline (baseline first in
even rounds, second in odd ones), so a busy spell on a shared machine weighs on both sides of a ratio
alike; the median run is shown, and each ratio is the median of its paired runs' ratios.
Rows:

  bare redirect          Starlette RedirectResponse, uvicorn with uvloop + httptools (the 100 % line)
  bare redirect, h11     the same app on uvicorn's pure-Python h11 protocol (for reference)
  router 302, same UA    /go with an item link, iPhone Safari every time -> 302 to the app
  router 302, /s/<code>  the same item link as a short link, one of --links (1,000,000) in the router's SQLite
                         database (two tags and a title, like every link there), clicked the same way: compared
                         with the /go row, not the bare app (the goal: at least 90 % of it)
  router 302, new UA     a WeChat 1:1 chat tap -> 302 to the web page, with a never-seen WeChat user agent
                         on every request (wrk's Lua)
  bare HTML              Starlette HTMLResponse as large as the router's landing page (the landing's 100 %)
  router 302, flood      iPhone Safari's user agent with ` r/<counter>` appended: a new string every request
  router 200 landing     a WeChat group-chat click -> the landing page
  router p99 at half     the 302 row at half of the router's own peak rate (wrk's Lua paces each
                         connection), for the latency a click sees when the router is not saturated

Ratios are each row's req/s over its baseline's. CPU µs is the server's own CPU time (all its threads, user
and kernel, from /proc) per request in the median run: what a request costs the machine, whatever the load
generator did meanwhile. RSS is the server's after its rows. Both routers serve short links from the same
SQLite file, filled once per invocation (straight into its tables: loopback.fill_links). Then memory as the
goal states it: a fresh router, --rss-clicks (100,000) clicks with a day's new user agents, then as many
of the every-part-new flood, then --flood-clicks (200,000) of made-up Safari ones, and its resident set
after each. Absolute figures move between machines;
the ratios are what docs/speed.md quotes. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
from agents import lua_tables
from loopback import (
    SAFARI,
    WECHAT,
    cpu_seconds,
    fill_links,
    free_port,
    link_code,
    pinned,
    router_command,
    rss_mb,
    server,
)

ITEM = quote("https://item.taobao.com/item.htm?id=123456", safe="")

# wrk's Lua: report as JSON; optionally a new user agent per request (as benchmarks/agents.py builds them:
# "day" a day's traffic, "worst" every part new), optionally pace each connection.
LUA = """
{tables}
local counter = {start}
local new_agents = "{new_agents}"
local delay_ms = {delay_ms}
local path = "{path}"
local fixed = "{ua}"
local floor = math.floor
local function pick(list, i) return list[i % #list + 1] end
request = function()
  local ua = fixed
  local i = counter
  counter = counter + 1
  if new_agents == "day" then
    local m = i * 7 % #MODELS
    local b = m % 2 * 2 + floor(i / #MODELS) % 2
    ua = "Mozilla/5.0 (Linux; Android " .. pick(ANDROID, m + b) .. "; " .. MODELS[m + 1] .. " Build/" ..
      BUILD_BASES[b + 1] .. "; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/" ..
      pick(CHROME, i) .. " Mobile Safari/537.36 XWEB/" .. (1160000 + floor(i / IDS)) ..
      " MMWEBSDK/20240404 MMWEBID/" .. (i % IDS) .. " MicroMessenger/" .. pick(WECHAT, i) .. "(" ..
      pick(CODES, i) .. ") WeChat/arm64 Weixin NetType/" .. pick(NETS, i) .. " Language/zh_CN ABI/arm64"
  elseif new_agents == "worst" then
    ua = "Mozilla/5.0 (Linux; Android " .. (10 + i % 6) .. "; V" .. i .. " Build/TP1A." .. i ..
      "; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099." .. (i % 999) ..
      " Mobile Safari/537.36 XWEB/" .. (i % 100000000) .. " MMWEBSDK/20240404 MMWEBID/" .. (i % IDS) ..
      " MicroMessenger/8.0.47." .. (i % 100000) .. "(0x28002F30) WeChat/arm64 Weixin NetType/WIFI " ..
      "Language/zh_CN ABI/arm64"
  elseif new_agents == "flood" then
    ua = fixed .. " r/" .. i
  end
  return wrk.format("GET", path, {{["User-Agent"] = ua}})
end
if delay_ms > 0 then
  delay = function() return delay_ms end
end
done = function(summary, latency, requests)
  io.write(string.format('RESULT {{"requests": %d, "duration_us": %d, "errors": %d, "non2xx3xx": %d, ' ..
    '"p50_us": %d, "p99_us": %d}}\\n', summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float = float("nan")  # the server's CPU time (all its threads, user and kernel) per request


def wrk(url: str, path: str, seconds: float, connections: int, *, new_agents: str = "", ua: str = SAFARI,
        delay_ms: int = 0, start: int = 0) -> Result:
    """One wrk run; new user agents are numbered from `start` (a run that follows another sends new ones)."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA.format(tables=lua_tables(), new_agents=new_agents, delay_ms=delay_ms, path=path, ua=ua,
                                start=start))
    try:
        command = pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
                             "-s", script.name, url])
        output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(script.name)
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    return Result(rps=data["requests"] / (data["duration_us"] / 1e6), p50_ms=data["p50_us"] / 1000,
                  p99_ms=data["p99_us"] / 1000, errors=data["errors"] + data["non2xx3xx"], requests=data["requests"])


@dataclass
class Row:
    name: str
    base: str  # the server's URL
    path: str
    baseline: str  # the row this one is compared with ("" for none)
    options: dict[str, object]
    results: list[Result] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # this row's req/s over its baseline's, run beside it


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rss-clicks", type=int, default=100_000, help="clicks per step of the memory run")
    parser.add_argument("--flood-clicks", type=int, default=200_000,
                        help="clicks of made-up user agents in the memory run's last step")
    parser.add_argument("--links", type=int, default=1_000_000,
                        help="short links in the routers' database (one of them is the /s/ row's)")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="http-bench-") as folder:
        return run(args, Path(folder))


def run(args: argparse.Namespace, folder: Path) -> int:
    """The rows, the memory run and the table, the routers' database in `folder`."""
    python = sys.executable
    go = f"/go?url={ITEM}"
    group = f"/go?url={ITEM}&from=groupmessage"

    def uvicorn(port: int, protocol: str) -> list[str]:
        return [python, "-m", "uvicorn", "benchmarks.bare_app:app", "--port", str(port), "--no-access-log",
                "--log-level", "warning", "--loop", "uvloop", "--http", protocol]

    router_port, bare_port, h11_port = free_port(), free_port(), free_port()
    # The routers' short links: --links of them in a SQLite file of their own, filled once; the one clicked
    # stands for the /go row's link, and sits in the middle of the codes.
    links = max(1, args.links)
    clicked = links // 2
    filling = time.monotonic()
    database = fill_links(folder / "links.sqlite", links,
                          {clicked: {"url": "https://item.taobao.com/item.htm?id=123456"}})
    filled = time.monotonic() - filling
    router_env = {"ROUTER_LOG_LEVEL": "warning", "ROUTER_DATABASE_URL": database}
    short = f"/s/{link_code(clicked)}"

    # All three servers run at once, idle but for the row being measured, and the rows take turns round by
    # round: whatever else the machine is doing meanwhile weighs on a row and its baseline alike.
    with server(router_command(router_port), router_port, router_env) as router:
        router_base = f"http://127.0.0.1:{router_port}"
        landing_bytes = len(httpx.get(router_base + group, headers={"user-agent": WECHAT}).content)
        bare_env = {"BARE_HTML_BYTES": str(landing_bytes)}
        with server(uvicorn(bare_port, "httptools"), bare_port, bare_env) as bare, \
                server(uvicorn(h11_port, "h11"), h11_port, bare_env) as h11:
            bare_base, h11_base = f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{h11_port}"
            processes = {router_base: router, bare_base: bare, h11_base: h11}
            rows = [
                Row("bare redirect (uvloop + httptools)", bare_base, "/go", "", {}),
                Row("bare redirect, h11", h11_base, "/go", "bare redirect (uvloop + httptools)", {}),
                Row("router 302, same UA", router_base, go, "bare redirect (uvloop + httptools)", {}),
                # The same link as a short link, beside the /go row: what the code's lookup costs a click.
                Row("router 302, /s/<code> (vs the /go row)", router_base, short, "router 302, same UA", {}),
                # A never-seen WeChat user agent on every request, as a day of WeChat traffic brings them
                # (benchmarks/agents.py); a 1:1 chat tap, answered with a 302. Then the same with every part
                # of each user agent new (model, build, versions): what a flood of made-up ones costs.
                Row("router 302, new UA every request", router_base, f"{go}&from=singlemessage",
                    "bare redirect (uvloop + httptools)", {"new_agents": "day"}),
                Row("router 302, new UA, every part new", router_base, f"{go}&from=singlemessage",
                    "bare redirect (uvloop + httptools)", {"new_agents": "worst"}),
                # A flood of made-up user agents: iPhone Safari's string with a counter appended, a new
                # string on every request (what a client inventing user agents costs).
                Row("router 302, flood of made-up UAs", router_base, go,
                    "bare redirect (uvloop + httptools)", {"new_agents": "flood"}),
                Row(f"bare HTML ({landing_bytes} bytes)", bare_base, "/landing", "", {}),
                Row("router 200 landing (WeChat group)", router_base, group, f"bare HTML ({landing_bytes} bytes)",
                    {"ua": WECHAT}),
            ]
            by_name = {row.name: row for row in rows}

            def measure(row: Row) -> Result:
                process = processes[row.base]
                before = cpu_seconds(process)
                result = wrk(row.base, row.path, args.seconds, args.connections, **row.options)  # type: ignore[arg-type]
                if result.requests:
                    result.cpu_us = (cpu_seconds(process) - before) / result.requests * 1e6
                row.results.append(result)
                return result

            for row in rows:  # warm-up
                wrk(row.base, row.path, min(args.seconds, 2), args.connections, **row.options)  # type: ignore[arg-type]
            for turn in range(args.rounds):
                # Each compared row runs right beside a run of its baseline, in turns A-B then B-A, so a
                # busy spell on a shared machine weighs on both sides of a ratio alike.
                for row in rows:
                    if not row.baseline:
                        continue
                    baseline = by_name[row.baseline]
                    if turn % 2 == 0:
                        theirs, mine = measure(baseline), measure(row)
                    else:
                        mine, theirs = measure(row), measure(baseline)
                    row.ratios.append(mine.rps / theirs.rps)
            # Half the router's own peak: each connection paced to its share of that rate.
            peak = median([result.rps for result in by_name["router 302, same UA"].results])
            half = Row(f"router 302 at half its peak ({peak / 2:.0f}/s offered)", router_base, go, "",
                       {"delay_ms": max(1, round(args.connections * 1000 / (peak / 2)))})
            for _ in range(args.rounds):
                measure(half)
            rows.append(half)
            router_rss, bare_rss = rss_mb(router), rss_mb(bare)

    # Memory as the goal states it: a fresh router, --rss-clicks clicks with never-seen user agents (a
    # day's), then as many again of the every-part-new flood; the resident set after each.
    fresh_port = free_port()
    memory = []
    with server(router_command(fresh_port), fresh_port, router_env) as fresh:
        memory.append(("a fresh router", 0, rss_mb(fresh)))
        steps = (("day", "then a day's new user agents", args.rss_clicks, f"{go}&from=singlemessage"),
                 ("worst", "then the every-part-new flood", args.rss_clicks, f"{go}&from=singlemessage"),
                 ("flood", "then made-up Safari user agents", args.flood_clicks, go))
        for kind, label, wanted, path in steps:
            clicks = 0
            while clicks < wanted:  # wrk runs for a time, not a count: runs of 5 s, numbered on
                clicks += wrk(f"http://127.0.0.1:{fresh_port}", path, 5, args.connections,
                              new_agents=kind, start=clicks).requests
            memory.append((label, clicks, rss_mb(fresh)))

    print(f"{args.rounds} rounds of {args.seconds:g} s, {args.connections} connections, each row beside a run of "
          f"its baseline; median run, and the median of the paired runs' ratios; servers on core 0, wrk on core 1")
    print(f"short links: {links:,} in the routers' SQLite database (filled in {filled:.0f} s); {short} stands for "
          f"the /go row's link and is compared with it")
    print(f"| {'config':<45} | {'req/s':>8} | {'vs base':>7} | {'range':>9} | {'p50 ms':>6} | {'p99 ms':>6} | "
          f"{'errors':>6} | {'CPU µs':>6} | {'RSS MB':>6} |")
    print(f"| {'-' * 45} | {'-' * 8}:| {'-' * 7}:| {'-' * 9}:| {'-' * 6}:| {'-' * 6}:| {'-' * 6}:| {'-' * 6}:| "
          f"{'-' * 6}:|")
    for row in rows:
        result = sorted(row.results, key=lambda r: r.rps)[len(row.results) // 2]
        ratio = f"{median(row.ratios):.0%}" if row.baseline else "100%" if row.name.startswith("bare") else "—"
        # The paired runs' lowest and highest ratio: how far one run of this machine can be trusted.
        spread = f"{min(row.ratios):.0%}–{max(row.ratios):.0%}" if row.baseline else ""
        rss = router_rss if row.base == router_base else bare_rss if row.base == bare_base else float("nan")
        print(f"| {row.name:<45} | {result.rps:>8.0f} | {ratio:>7} | {spread:>9} | {result.p50_ms:>6.2f} | "
              f"{result.p99_ms:>6.2f} | {sum(r.errors for r in row.results):>6} | {result.cpu_us:>6.1f} | "
              f"{rss:>6.1f} |")
    print()
    print("router RSS (one process, its resident set after each step):")
    for label, clicks, rss in memory:
        print(f"  {label:<32} {clicks:>8,} clicks  {rss:6.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

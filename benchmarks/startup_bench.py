"""From start to ready, and the first click of each kind beside its hundredth.

    python benchmarks/startup_bench.py [--runs 5] [--lazy]

Starts `adlink-router serve` on a free loopback port, times `python -m router serve` to its first 200 from
/readyz (the process's start, imports, rules, warm-up and uvicorn's bind), then sends four kinds of click
that each used to pay for something on first use (an agent only ua-parser's tables place, a WeChat group
chat's landing page, a command-line client, a bad request's page) a hundred times each and reads their
`duration_ms` from the click lines: the first of each kind, its hundredth and its median. Several runs, as a
range: a shared machine moves every figure. `--lazy` runs the same with ROUTER_UA_TABLES=lazy (the tables
built by the first agent that needs them), for comparison. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import quote

import httpx
from loopback import ROOT, SAFARI, WECHAT, free_port

ITEM = quote("https://item.taobao.com/item.htm?id=1", safe="")
KINDS = {
    "unusual agent": ("/go?url=" + ITEM, "Opera/9.80 (X11; Linux i686) Presto/2.12.388 Version/12.16"),
    "landing page": ("/go?url=" + ITEM + "&from=groupmessage", WECHAT),
    "command line": ("/go?url=" + ITEM, "curl/8.5.0"),
    "bad request": ("/go?url=https%3A%2F%2Fexample.com%2F", SAFARI),
}


def one_run(lazy: bool) -> tuple[float, dict[str, tuple[float, float, float]]]:
    """Seconds from start to ready, and per kind of click (first, hundredth, median) duration_ms."""
    port = free_port()
    env = {**os.environ, "ROUTER_DRAIN_SECONDS": "0", "ROUTER_SIGNING_KEYS": "bench:benchmark-secret-0123456789",
           "ROUTER_UA_TABLES": "lazy" if lazy else "startup"}
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as log:
        started = time.monotonic()
        process = subprocess.Popen([sys.executable, "-m", "router", "serve", "--port", str(port)], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.01)
                if process.poll() is not None or time.monotonic() - started > 60:
                    raise SystemExit("the router did not become ready")
            ready = time.monotonic() - started
            with httpx.Client(base_url=base) as client:
                for _ in range(100):
                    for path, ua in KINDS.values():
                        client.get(path, headers={"user-agent": ua})
        finally:
            process.terminate()
            process.wait(30)
        log.seek(0)
        lines = [json.loads(line) for line in log if line.startswith("{")]
    clicks = [line for line in lines if line.get("type") == "click"]
    figures = {}
    for n, kind in enumerate(KINDS):
        durations = [float(line["duration_ms"]) for line in clicks[n::len(KINDS)]]
        figures[kind] = (durations[0], durations[99], statistics.median(durations))
    return ready, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--lazy", action="store_true", help="ROUTER_UA_TABLES=lazy, for comparison")
    args = parser.parse_args()
    runs = [one_run(args.lazy) for _ in range(args.runs)]
    readies = [ready for ready, _ in runs]
    print(f"start → ready: {min(readies):.2f}–{max(readies):.2f} s over {args.runs} runs "
          f"(ROUTER_UA_TABLES={'lazy' if args.lazy else 'startup'})")
    print(f"{'click':<15} {'first ms':>15} {'hundredth ms':>15} {'median ms':>15}")
    for kind in KINDS:
        columns = [[figures[kind][i] for _, figures in runs] for i in range(3)]
        print(f"{kind:<15} " + " ".join(f"{min(c):>6.2f}–{max(c):<8.2f}" for c in columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

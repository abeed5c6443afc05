"""Short links created per second through the JSON API: `POST /api/links:batch` to a real router, on SQLite
and on a real PostgreSQL.

    python benchmarks/link_batch.py [--runs 5] [--calls 20] [--batch 1000] [--databases sqlite,postgresql]

For each database: a fresh one (a SQLite file in a temporary folder; Debian's PostgreSQL, when it is
installed, started with initdb and pg_ctl as tests/test_link_store.py does: under `runuser -u postgres`
when run as root, in a temporary folder, on a free loopback port, with its defaults, fsync on, and
stopped by its PID at the end), migrated, an admin token made (`LinkStore.create_token`), and one
`adlink-router serve` on it, pinned to core 0 like http_bench.py's servers. One call to warm up, then
`--runs` runs of `--calls` calls, one after another on one keep-alive connection, each of `--batch` links
(a Taobao item, two tags, a title: loopback.link_record) built before the clock starts. Each call must
answer 201 with as many links as it sent.

Per database: links created a second over each run (the median run, and the range over the runs: a
shared machine moves every figure), a call's time (the median call, and the slowest), and the router's
own CPU time (all its threads, user and kernel, from /proc) per link created in the median run; not the
database server's. Each run's links stay: the last run writes into a database the earlier ones filled.
The goal: 1,000 links a second on SQLite. Nothing here asserts a figure.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from loopback import cpu_seconds, free_port, link_record, router_command, server

from router.serve.link_store import LinkStore, upgrade

PG_PASSWORD = "bench-Pa55-word-4711"


@dataclass
class Run:
    links_per_second: float
    call_seconds: list[float]
    cpu_us_per_link: float


def postgres_tool(name: str) -> str | None:
    """Debian's PostgreSQL program `name` (the newest version installed), or None."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@contextmanager
def postgres(folder: Path) -> Iterator[str]:
    """A throwaway PostgreSQL cluster in `folder` (127.0.0.1 only, password auth, its defaults otherwise):
    the URL of its `postgres` database. Stopped at the end by the PID it wrote (fast shutdown: SIGINT)."""
    initdb, pg_ctl = postgres_tool("initdb"), postgres_tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise SystemExit("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    as_owner: list[str] = []
    folder.mkdir()
    if os.geteuid() == 0:
        # The cluster must belong to postgres, who must be able to reach its folder through ours.
        as_owner = ["runuser", "-u", "postgres", "--"]
        place = folder.parent
        while place != place.parent and place.stat().st_uid == 0 and place.stat().st_mode & 0o001 == 0:
            place.chmod(place.stat().st_mode | 0o001)
            place = place.parent
        shutil.chown(folder, "postgres", "postgres")
    data, sockets, pwfile = folder / "data", folder / "sockets", folder / "pw"
    sockets.mkdir()
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_owner:
        shutil.chown(sockets, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    port = free_port()

    def run(*command: str) -> None:
        done = subprocess.run([*as_owner, *command], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command[:2])} failed:\n{done.stdout}{done.stderr}")

    run(initdb, "-D", str(data), "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256", "--encoding=UTF8",
        "--locale=C")
    run(pg_ctl, "start", "-D", str(data), "-w", "-t", "60", "-l", str(folder / "log"),
        "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {sockets}")
    pid = int((data / "postmaster.pid").read_text().split()[0])
    try:
        yield f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 60
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGQUIT)


def bodies(count: int, batch: int, first: int) -> list[bytes]:
    """`count` request bodies of `batch` links each, link_record(first) on (without their codes: the API draws
    them)."""
    made = []
    for call in range(count):
        links = []
        for i in range(first + call * batch, first + (call + 1) * batch):
            record = link_record(i)
            del record["code"]
            links.append(record)
        made.append(json.dumps({"links": links}, ensure_ascii=False).encode())
    return made


def measure(url: str, runs: int, calls: int, batch: int) -> tuple[list[Run], int]:
    """The runs on the database at `url` (empty, not yet migrated), and the links it holds at the end."""
    upgrade(url)
    with LinkStore(url) as store:
        token = store.create_token("admin")[0]
    port = free_port()
    env = {"ROUTER_DATABASE_URL": url, "ROUTER_CLICK_LOG": "off", "ROUTER_LOG_LEVEL": "warning"}
    results = []
    created = 0
    with server(router_command(port), port, env) as router, \
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120,
                         headers={"authorization": f"Bearer {token}", "content-type": "application/json"}) as client:

        def post(body: bytes) -> float:
            started = time.perf_counter()
            answer = client.post("/api/links:batch", content=body)
            seconds = time.perf_counter() - started
            if answer.status_code != 201 or len(answer.json()["links"]) != batch:
                raise SystemExit(f"POST /api/links:batch answered {answer.status_code}: {answer.text[:500]}")
            return seconds

        post(bodies(1, batch, 0)[0])  # warm-up
        created += batch
        for run in range(runs):
            prepared = bodies(calls, batch, created)
            cpu_before, started = cpu_seconds(router), time.perf_counter()
            call_seconds = [post(body) for body in prepared]
            elapsed, cpu = time.perf_counter() - started, cpu_seconds(router) - cpu_before
            created += calls * batch
            results.append(Run(calls * batch / elapsed, call_seconds, cpu / (calls * batch) * 1e6))
            print(f"  run {run + 1}: {calls * batch / elapsed:,.0f} links/s", file=sys.stderr)
    return results, created


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20, help="calls per run")
    parser.add_argument("--batch", type=int, default=1000, help="links per call (the API takes 1 to 1000)")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="sqlite, postgresql or both (PostgreSQL only when Debian's is installed)")
    args = parser.parse_args(argv)
    wanted = [name.strip() for name in args.databases.split(",") if name.strip()]
    table: list[tuple[str, list[Run], int]] = []
    with tempfile.TemporaryDirectory(prefix="link-batch-") as scratch:
        folder = Path(scratch)
        if "sqlite" in wanted:
            print("SQLite …", file=sys.stderr)
            table.append(("SQLite", *measure(f"sqlite:///{folder}/links.sqlite", args.runs, args.calls, args.batch)))
        if "postgresql" in wanted:
            if postgres_tool("initdb") is None:
                print("PostgreSQL: not installed (Debian: apt-get install postgresql); skipped", file=sys.stderr)
            else:
                print("PostgreSQL …", file=sys.stderr)
                with postgres(folder / "postgres") as url:
                    table.append(("PostgreSQL", *measure(url, args.runs, args.calls, args.batch)))
    print(f"{args.runs} runs of {args.calls} calls of {args.batch} links (POST /api/links:batch, one after another, "
          f"one connection); the median run, and the range over the runs; the router on core 0")
    print(f"| {'database':<10} | {'links/s':>7} | {'range':>11} | {'call ms':>7} | {'slowest':>7} | "
          f"{'CPU µs/link':>11} | {'links at end':>12} |")
    print(f"| {'-' * 10} | {'-' * 7}:| {'-' * 11}:| {'-' * 7}:| {'-' * 7}:| {'-' * 11}:| {'-' * 12}:|")
    for name, runs, created in table:
        middle = sorted(runs, key=lambda run: run.links_per_second)[len(runs) // 2]
        rates = [run.links_per_second for run in runs]
        calls = [seconds for run in runs for seconds in run.call_seconds]
        call_ms, slowest_ms = statistics.median(calls) * 1000, max(calls) * 1000
        print(f"| {name:<10} | {middle.links_per_second:>7.0f} | {min(rates):>5.0f}–{max(rates):<5.0f} | "
              f"{call_ms:>7.0f} | {slowest_ms:>7.0f} | {middle.cpu_us_per_link:>11.0f} | {created:>12,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

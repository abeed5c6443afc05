"""benchmarks/http_bench.py runs end to end (a second per row): servers start, wrk drives them, the table
prints. A benchmark, not a timed test: no figure is asserted, only that every row is there and error-free."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.servers import debian_tool

ROOT = Path(__file__).resolve().parent.parent


def test_the_http_benchmark_runs() -> None:
    """One short round of every row: a table with a ratio for each row and no errors."""
    debian_tool("wrk", package="wrk")
    result = subprocess.run([sys.executable, "benchmarks/http_bench.py", "--seconds", "1", "--rounds", "1",
                             "--connections", "8", "--rss-clicks", "500", "--flood-clicks", "500",
                             "--links", "1000"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "config" not in line
            and not line.startswith("| --")]
    names = [row.split("|")[1].strip() for row in rows]
    assert [name.split(" (")[0] for name in names] == [
        "bare redirect", "bare redirect, h11", "router 302, same UA", "router 302, /s/<code>",
        "router 302, new UA every request",
        "router 302, new UA, every part new", "router 302, flood of made-up UAs", "bare HTML", "router 200 landing",
        "router 302 at half its peak"]
    for row in rows:
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert float(cells[1]) > 0 and cells[6] == "0", row  # requests served, no errors
        assert re.fullmatch(r"\d+%|—", cells[2]), row
        compared = cells[2] not in ("100%", "—")  # a row measured beside its baseline: its ratios' range too
        assert re.fullmatch(r"\d+%–\d+%", cells[3]) if compared else cells[3] == "", row
        assert float(cells[7]) > 0, row  # the server's CPU time per request
    memory = re.findall(r"^  (.+?) +([\d,]+) clicks +([\d.]+) MB$", result.stdout, re.M)
    assert [label for label, _, _ in memory] == [
        "a fresh router", "then a day's new user agents", "then the every-part-new flood",
        "then made-up Safari user agents"], result.stdout
    assert [int(clicks.replace(",", "")) >= 500 for _, clicks, _ in memory] == [False, True, True, True]
    assert all(float(rss) > 0 for _, _, rss in memory)

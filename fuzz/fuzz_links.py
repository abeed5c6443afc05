"""Fuzz the link and share-text parsers, and the decision that turns a click into a Location.

Hypothesis-driven, so it needs nothing beyond the test dependencies:

    python fuzz/fuzz_links.py --examples 20000 --seconds 120

It runs batches of generated input until either budget is spent, then stops by itself. For every
input, `parse_link` gives a LinkError or a Link whose URLs a WHATWG parser (ada-url) reads as https
on an allowlisted host, already serialised; and the same input as a `/go` click, from every client
kind in tests/uas.py with tricky forwarded parameters, gives a Location (if any) with a scheme the
router builds and only allowlisted web hosts inside. Nothing raises. A failure prints the smallest
input Hypothesis found and exits 1.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, as a plain script
warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")  # as pyproject.toml does for tests

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from router.decision.click import BadClick, read_click  # noqa: E402
from router.decision.decide import decide  # noqa: E402
from router.decision.rules import load_rules  # noqa: E402
from router.serve.config import Settings, bundled_rules_dir  # noqa: E402
from tests.test_destinations import (  # noqa: E402
    CLIENTS,
    FORWARD_VALUES,
    SHARE_TEXTS,
    URLS,
    assert_location,
    check_link,
)

INPUTS = st.one_of(
    URLS,
    SHARE_TEXTS,
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda data: data.decode("utf-8", "surrogateescape")),
)
_SETTINGS = Settings(rules_dir=bundled_rules_dir())
_RULES = load_rules(bundled_rules_dir())
_AT = datetime(2026, 6, 18, 12, tzinfo=UTC)


def check_click(raw: str, ua: str, forward: str) -> None:
    """The input as a /go click: a BadClick, or a decision whose Location is an allowed destination."""
    # Bytes that are not UTF-8 (surrogate-escaped here) go out as the %xx they came in as.
    query = f"url={quote(raw, safe='', errors='surrogateescape')}&gdt_vid={forward}&ch=private_chat"
    try:
        ctx = read_click("/go", query, ua, at=_AT, settings=_SETTINGS)
    except BadClick as bad:
        assert 400 <= bad.status < 500, bad.status
        return
    decision = decide(_RULES, ctx)
    if decision.location:
        assert_location(decision.location)


def run_batch(examples: int) -> None:
    """One batch of `examples` inputs, fresh random ones each time (no example database)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=INPUTS, ua=st.sampled_from(CLIENTS), forward=FORWARD_VALUES)
    def fuzz(raw: str, ua: tuple[str, str], forward: str) -> None:
        check_link(raw)
        check_click(raw, ua[1], forward)

    fuzz()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000, help="stop after this many inputs (default 10000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="or after this many seconds (default 60)")
    parser.add_argument("--batch", type=int, default=500, help="inputs per Hypothesis run (default 500)")
    args = parser.parse_args(argv)
    start, done = time.monotonic(), 0
    while done < args.examples and time.monotonic() - start < args.seconds:
        batch = min(args.batch, args.examples - done)
        try:
            run_batch(batch)
        except Exception as failure:
            notes = "\n".join(getattr(failure, "__notes__", []))  # Hypothesis's falsifying example
            print(f"FAIL after {done} inputs: {type(failure).__name__}: {failure}\n{notes}", file=sys.stderr)
            return 1
        done += batch
    print(f"ok: {done} inputs in {time.monotonic() - start:.1f} s, no failure")
    return 0


if __name__ == "__main__":
    sys.exit(main())

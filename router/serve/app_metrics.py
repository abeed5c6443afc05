"""The app's side of /metrics (router.serve.metrics keeps the counts): what its parts keep, read as samples
when a snapshot is taken; this worker's snapshot written while the app runs; the exposition made off the
event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from router.decision.signing import ClickReplays
from router.serve.clicklog import ClickLog
from router.serve.expand import EXPANSION_RESULTS, Expander
from router.serve.kept_links import LOOKUP_RESULTS, KeptLinks
from router.serve.metrics import FLUSH_SECONDS, Metrics, Snapshot, render
from router.serve.outcomes import ESCAPED, EVENTS, IGNORED_REASONS, Outcomes
from router.serve.reload import ActiveRules
from router.serve.replay_checks import ReplayCheck
from router.serve.shared import SharedStore

log = logging.getLogger("router")


def metrics_state(active: ActiveRules, expander: Expander | None, replays: ClickReplays,
                  click_log: ClickLog, shared: SharedStore | None = None, outcomes: Outcomes | None = None,
                  replay_checks: Mapping[ReplayCheck, int] | None = None,
                  links: KeptLinks | None = None) -> Snapshot:
    """What the parts keep, as metrics samples (router.serve.metrics), read when a snapshot is taken."""
    current = active.current
    last = active.last_attempt
    state: Snapshot = {
        "adlink_rules_info": {(current.version,): 1},
        "adlink_rules": {(): len(current.rules)},
        "adlink_rules_reloads": {(result,): count for result, count in active.reloads.items()},
        "adlink_rules_last_reload_rejected": {(): int(last is not None and last.result == "rejected")},
        "adlink_ad_click_replays": {(): replays.replays},
        "adlink_click_lines_dropped": {(): click_log.dropped_total},
    }
    if replay_checks is not None:  # every check from the start (at 0): the first `local` shows in an increase()
        state["adlink_ad_click_replay_checks"] = {(check.value,): count for check, count in replay_checks.items()}
    if links is not None:  # every result from the start (at 0): the first `unavailable` shows in an increase()
        state["adlink_short_link_lookups"] = {(result,): links.results.get(result, 0) for result in LOOKUP_RESULTS}
        state["adlink_short_links_kept"] = {(): len(links)}
    if outcomes is not None:
        state["adlink_outcomes"] = {
            **{(event, "recorded"): outcomes.recorded[event] for event in (*EVENTS, ESCAPED)},
            **{(event, "duplicate"): outcomes.duplicates[event] for event in (*EVENTS, ESCAPED)}}
        state["adlink_outcome_beacons_ignored"] = {(reason,): outcomes.ignored[reason] for reason in IGNORED_REASONS}
    if shared is not None:
        operations = {*shared.calls, *shared.fallbacks, "first_use"}
        state["adlink_shared_store_calls"] = {(op,): shared.calls.get(op, 0) for op in operations}
        state["adlink_shared_store_fallbacks"] = {(op,): shared.fallbacks.get(op, 0) for op in operations}
        state["adlink_shared_store_up"] = {(): int(shared.healthy and shared.up)}
    if expander is not None:
        # Every result from the start (at 0): the first timeout shows in an increase() too.
        state["adlink_expansions"] = {(result,): expander.results.get(result, 0) for result in EXPANSION_RESULTS}
        state["adlink_expansion_upstream_requests"] = {(): expander.requests}
        state["adlink_expansion_circuit_open"] = {
            (host,): int(expander.breaker.refusing(host)) for host in expander.policy.hosts}
    return state


@asynccontextmanager
async def metrics_flushed(metrics: Metrics) -> AsyncIterator[None]:
    """For the lifespan: with a shared metrics directory, this worker's snapshot written every FLUSH_SECONDS
    and once more when it stops (its last clicks count)."""
    if metrics.files is None:
        yield
        return

    async def flush_every_second() -> None:
        logged_at = -60.0
        while True:
            try:
                metrics.flush()
            except Exception:  # a bug here must not end the flushing (the other workers' sums would freeze)
                if time.monotonic() - logged_at >= 60:
                    logged_at = time.monotonic()
                    log.exception("metrics: writing this worker's snapshot failed")
            await asyncio.sleep(FLUSH_SECONDS)

    task = asyncio.get_running_loop().create_task(flush_every_second(), name="metrics-flush")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        metrics.flush()


async def exposition(metrics: Metrics, accept: str | None) -> tuple[bytes, str]:
    """/metrics' body and content type: this worker's counts taken (and its file written) on the loop, like
    every count; the other workers' files read, summed and formatted in a thread, so clicks don't wait."""
    own = metrics.scrape()
    return await asyncio.to_thread(lambda: render(metrics.total(own), accept))

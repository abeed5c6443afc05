"""Prometheus metrics at /metrics: what the router decided and how fast, what it refused, and the state of
its rules, short-link expansion, ad-click replays and click log.

Cheap on the click path. A click adds one to a plain dict entry and observes two fixed-bucket histograms
(well under a microsecond, no lock: one event loop per process). Everything else is read from the parts
that keep it when a snapshot is taken. Label values are bounded: rule ids, enums, statuses and the
configured expansion hosts. Never a URL, a user agent or an address.

Workers. With `serve --workers N` every worker is a process of its own and a scrape reaches one of them.
Each worker writes its snapshot to a file of its own in a directory they share (ROUTER_METRICS_DIR; the
supervisor makes one), once a second and whenever it is scraped. The scraped worker answers with the sum
of every file. Reading files only, never one worker's live counts beside the others' older ones, keeps
every counter monotonic whichever worker answers. A worker that has ended keeps its counters in the sum
(a counter must not go down while the router runs). Its gauges no longer count.

Exposition is prometheus_client's: text format, or OpenMetrics when the scraper asks for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger("router")

FLUSH_SECONDS = 1.0  # how often a worker writes its snapshot for the others
_FILE_PREFIX = "worker-"

# Request durations: a click answered from memory takes well under a millisecond; a short link waits for its
# upstream (up to the expansion deadline, 1.5 s by default).
REQUEST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Decisions: a kept answer is a few microseconds, a new user agent tens of them.
DECISION_BUCKETS = (0.000002, 0.000005, 0.00001, 0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.025)

UNREAD = "none"  # the channel and app of a click that could not be read (rule bad-request)


@dataclass(frozen=True, slots=True)
class Family:
    name: str  # without _total: prometheus_client adds it to counters
    kind: str  # counter, gauge or histogram
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    # How the workers' values add up: counters and histograms always sum; a gauge sums (workers in a state,
    # memory) or takes the largest (an info metric is 1, the rule count is one set's).
    merge: str = "sum"


FAMILIES = {family.name: family for family in (
    Family("adlink_clicks", "counter", "Clicks answered, by what was decided, which rule decided it, the channel "
           "and the app the click came from (action error: the safe page after an unexpected error)",
           ("action", "rule", "channel", "app")),
    Family("adlink_click_errors", "counter",
           "Clicks that met an unexpected error and got the safe page (there from the start, at 0)", ()),
    Family("adlink_request_duration_seconds", "histogram",
           "Time from a request's head to the end of its answer, by route", ("route",), REQUEST_BUCKETS),
    Family("adlink_decision_duration_seconds", "histogram",
           "Time to read and decide a click (short-link waits excluded): answer kept is a repeated click "
           "answered from memory, decided is one read and decided", ("answer",), DECISION_BUCKETS),
    Family("adlink_refusals", "counter", "Requests refused with a 4xx, by status and where: protocol (the HTTP "
           "server, before the app), edge (header size, host name), route (no such page or method), click "
           "(a link that could not be read), limit (a click limit reached: 429)", ("status", "stage")),
    Family("adlink_rules_info", "gauge", "Rules versions being served (1 each; more than one during a reload)",
           ("version",), merge="max"),
    Family("adlink_rules", "gauge", "Rules in the version served (the largest set, when workers differ)", (),
           merge="max"),
    Family("adlink_rules_reloads", "counter", "Reload attempts, by result: accepted (a new version serves), "
           "unchanged, rejected (they do not validate; the last good rules keep serving), unavailable (they "
           "could not be read or fetched); each worker reloads on its own", ("result",)),
    Family("adlink_rules_last_reload_rejected", "gauge",
           "Workers whose last reload attempt was rejected: rules were changed and do not serve", ()),
    Family("adlink_expansions", "counter", "Short-link expansions asked for by clicks, by result", ("result",)),
    Family("adlink_expansion_upstream_requests", "counter", "Requests sent to short-link hosts", ()),
    Family("adlink_expansion_circuit_open", "gauge", "Workers whose circuit breaker for an expansion host is open "
           "and cooling down: no call goes there until the cooldown ends", ("host",)),
    Family("adlink_ad_click_replays", "counter",
           "Signed ad clicks refused ad treatment because their click id had been used before", ()),
    Family("adlink_ad_click_replay_checks", "counter", "Signed ad clicks with click ids, by how their ids were "
           "checked for replays (router.serve.replay_checks): fleet (the shared store), process (no store "
           "configured: this process's memory), local (the store did not answer: this process's memory only) "
           "or restarted (the store had forgotten click ids from before its start)", ("check",)),
    Family("adlink_short_link_lookups", "counter", "Short links (/s/<code>) looked up by clicks, by result: kept "
           "(in the process), read (from the database), unknown (no such code), unavailable (the database did "
           "not answer in time: the click got 503 and Retry-After)", ("result",)),
    Family("adlink_short_links_kept", "gauge", "Short links kept in the workers' memory", ()),
    Family("adlink_click_lines_dropped", "counter",
           "Click lines dropped because the click stream stopped taking them", ()),
    Family("adlink_outcomes", "counter", "What happened after a landing page, as its beacons and second jumps "
           "told (router.serve.outcomes), by event and result: recorded, or a duplicate of one recorded",
           ("event", "result")),
    Family("adlink_outcome_beacons_ignored", "counter", "Outcome beacons and second jumps ignored, by what was "
           "wrong: token (forged, expired or another key's), event (unknown), body (too large or not a beacon), "
           "visitor (without the visitor cookie its token was made for), limit (past the bounds per address or "
           "per visitor)",
           ("reason",)),
    Family("adlink_shared_store_calls", "counter", "Calls answered by the fleet's shared store, by operation",
           ("operation",)),
    Family("adlink_shared_store_fallbacks", "counter", "Calls the shared store did not answer (down, slow, "
           "garbage, or resting after a failure): this process's own store answered, by operation", ("operation",)),
    Family("adlink_shared_store_up", "gauge", "Workers asking the shared store (not resting after a failure)", ()),
    Family("adlink_workers", "gauge", "Worker processes serving", ()),
    Family("adlink_worker_resident_memory_bytes", "gauge", "Resident memory of the workers, summed", ()),
    Family("adlink_worker_cpu_seconds", "counter", "CPU time (user and system) of the workers, summed", ()),
    Family("adlink_metrics_write_errors", "counter",
           "Failed writes of a worker's metrics snapshot (a full or missing ROUTER_METRICS_DIR): the sum is stale", ()),
)}

Labels = tuple[str, ...]
Snapshot = dict[str, dict[Labels, Any]]  # family name -> label values -> number, or histogram [counts..., sum]


class Histogram:
    """Counts per bucket (the last one is +Inf) and a sum; cumulated only when exposed."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(self.bounds, seconds)] += 1  # le: a value equal to a bound falls in its bucket
        self.total += seconds

    def sample(self) -> list[float]:
        return [*self.counts, self.total]


# Refused before any app sees the request (router.serve.protocol): one count per process.
PROTOCOL_REFUSALS: dict[int, int] = {}


def count_protocol_refusal(status: int) -> None:
    PROTOCOL_REFUSALS[status] = PROTOCOL_REFUSALS.get(status, 0) + 1


class Metrics:
    """One process's counts, and where the rest of its state is read from (`state`, set by the app)."""

    __slots__ = ("clicks", "decisions", "errors", "files", "refusals", "requests", "state")

    def __init__(self, directory: str = "") -> None:
        self.clicks: dict[tuple[Any, ...], int] = {}
        self.refusals: dict[tuple[int, str], int] = {}
        self.errors = 0  # clicks answered with the safe page after an unexpected error
        # Per route; /go and /ad from the start, so a click never looks for its histogram twice.
        self.requests = {route: Histogram(REQUEST_BUCKETS) for route in ("/go", "/ad", "/s")}
        # kept: a repeated click answered from memory; decided: one read and decided
        self.decisions = {"kept": Histogram(DECISION_BUCKETS), "decided": Histogram(DECISION_BUCKETS)}
        self.state: Callable[[], Snapshot] = dict  # gauges and counters kept elsewhere, read at snapshot time
        self.files = WorkerFiles(Path(directory)) if directory else None

    def click(self, route: str, action: str, rule: str, channel: object, app: object, seconds: float) -> None:
        """One click answered on /go, /ad or /s (channel and app are enums, or None for a click that could not be
        read). Inlined: this runs on every click."""
        clicks = self.clicks
        key = (action, rule, channel, app)
        clicks[key] = clicks.get(key, 0) + 1
        histogram = self.requests[route]
        histogram.counts[bisect_left(histogram.bounds, seconds)] += 1
        histogram.total += seconds

    def request(self, route: str, seconds: float) -> None:
        histogram = self.requests.get(route)
        if histogram is None:
            histogram = self.requests[route] = Histogram(REQUEST_BUCKETS)
        histogram.observe(seconds)

    def refused(self, status: int, stage: str) -> None:
        key = (status, stage)
        self.refusals[key] = self.refusals.get(key, 0) + 1

    def snapshot(self) -> Snapshot:
        """This process's numbers, every label value a string."""
        out: Snapshot = {name: {} for name in FAMILIES}
        clicks = out["adlink_clicks"]
        for (action, rule, channel, app), count in self.clicks.items():
            labels: Labels = (str(action), rule, _label(channel), _label(app))
            clicks[labels] = clicks.get(labels, 0) + count  # an enum and its string are one label value
        refusals = out["adlink_refusals"]
        for (status, stage), count in self.refusals.items():
            refusals[(str(status), stage)] = count
        for status, count in PROTOCOL_REFUSALS.items():
            refusals[(str(status), "protocol")] = count
        out["adlink_request_duration_seconds"] = {(route,): h.sample() for route, h in self.requests.items()}
        out["adlink_decision_duration_seconds"] = {(answer,): h.sample() for answer, h in self.decisions.items()}
        for name, samples in self.state().items():
            out[name].update(samples)
        out["adlink_click_errors"] = {(): self.errors}
        out["adlink_workers"] = {(): 1}
        out["adlink_worker_resident_memory_bytes"] = {(): _resident_bytes()}
        times = os.times()
        out["adlink_worker_cpu_seconds"] = {(): times.user + times.system}
        out["adlink_metrics_write_errors"] = {(): self.files.failures if self.files else 0}
        return out

    def scrape(self) -> Snapshot:
        """This worker's numbers for a scrape, its file written with them (on the event loop, where the
        counts change)."""
        snapshot = self.snapshot()
        if self.files is not None:
            self.files.write(snapshot)
        return snapshot

    def total(self, own: Snapshot) -> Snapshot:
        """What a scrape shows: every worker's numbers summed, `own` for this one (only `own` without a shared
        directory). Reads files only: safe off the event loop."""
        return own if self.files is None else self.files.total(own)

    def flush(self) -> None:
        """Write this worker's snapshot for the others (every FLUSH_SECONDS, and when stopping)."""
        if self.files is not None:
            self.files.write(self.snapshot())


def render(snapshot: Snapshot, accept: str | None) -> tuple[bytes, str]:
    """The exposition's body and content type: OpenMetrics when the scraper asks for it, else text."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Exposed(snapshot))
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


class WorkerFiles:
    """One snapshot file per worker process in a shared directory; written whole (a rename), read whole.

    A file is named by the worker's pid and a token of its own, so a later process given the same pid never
    overwrites a dead worker's counts. The supervisor folds a dead worker's file into RETIRED
    (`retire_worker`): the directory holds one file per live worker, plus one.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.own = directory / f"{_FILE_PREFIX}{os.getpid()}-{os.urandom(4).hex()}.json"
        self.failures = 0  # writes that failed (adlink_metrics_write_errors_total)
        self._warned_at = -_WARN_EVERY_SECONDS

    def write(self, snapshot: Snapshot) -> None:
        data = orjson.dumps({"pid": os.getpid(), "families": _families_json(snapshot)})
        temporary = self.own.with_suffix(".tmp")
        try:
            try:
                temporary.write_bytes(data)
            except FileNotFoundError:  # the directory went away (cleaned up by someone): make it again
                self.directory.mkdir(parents=True, exist_ok=True)
                temporary.write_bytes(data)
            temporary.replace(self.own)
        except OSError as err:  # a full or read-only disk must not take clicks down: the scrape shows less
            self.failures += 1
            with contextlib.suppress(OSError):
                temporary.unlink()
            now = time.monotonic()
            if now - self._warned_at >= _WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("metrics: could not write %s (%d failures so far): %s", self.own, self.failures, err)

    def total(self, own: Snapshot) -> Snapshot:
        """Every worker's snapshot summed, this worker's taken as `own` (the same as its file when the write
        worked); the gauges of workers that have ended left out. A file that can't be read is skipped.

        A file that vanished between listing and reading was folded into RETIRED meanwhile: the sum is
        taken again, so those counts are neither lost nor counted twice."""
        for _ in range(3):
            total: Snapshot = {name: {} for name in FAMILIES}
            _merge_into(total, _families_json(own), alive=True)
            retired_files, retired = _read_retired(self.directory)
            _merge_into(total, retired, alive=False)
            vanished = False
            for path in sorted(self.directory.glob(f"{_FILE_PREFIX}*.json")):
                if path == self.own or path.name in retired_files:  # already folded into the retired counts
                    continue
                pid, families = _read_snapshot(path)
                if families is None:
                    vanished = vanished or not path.exists()
                    continue
                _merge_into(total, families, alive=_alive(pid))
            if not vanished:
                break
        return total


_WARN_EVERY_SECONDS = 60.0
RETIRED = "retired.json"  # the counters of workers that have ended, summed (written by the supervisor only)


def retire_worker(directory: Path, pid: int) -> None:
    """Fold the snapshots of worker `pid`, which has ended, into RETIRED, then remove them. Readers skip a
    worker file that RETIRED names, so a scrape in between never counts it twice. Gauges are dropped: they
    describe live workers."""
    names, retired = _read_retired(directory)
    folded: list[Path] = []
    for path in directory.glob(f"{_FILE_PREFIX}{pid}-*.json"):
        if path.name in names:  # folded already; only its removal failed
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        file_pid, families = _read_snapshot(path)
        if families is None or file_pid != pid:
            continue
        total: Snapshot = {}
        _merge_into(total, retired, alive=True)
        _merge_into(total, families, alive=False)
        retired = _families_json(total)
        names.add(path.name)
        folded.append(path)
    if not folded:
        return
    # The names of files already removed are dropped (a later worker never has the same name: a token).
    present = {path.name for path in directory.glob(f"{_FILE_PREFIX}*.json")}
    data = orjson.dumps({"files": sorted(names & present), "families": retired})
    temporary = directory / (RETIRED + ".tmp")
    try:
        temporary.write_bytes(data)
        temporary.replace(directory / RETIRED)
    except OSError as err:
        log.warning("metrics: could not write %s: %s", directory / RETIRED, err)
        return
    for path in folded:
        with contextlib.suppress(OSError):
            path.unlink()


def clear_directory(directory: Path) -> None:
    """Remove the snapshots of an earlier run (its counts belong to processes that are gone)."""
    for path in [*directory.glob(f"{_FILE_PREFIX}*"), *directory.glob(f"{RETIRED}*")]:
        with contextlib.suppress(OSError):
            path.unlink()


def _families_json(snapshot: Snapshot) -> dict[str, list[list[Any]]]:
    return {name: [[list(labels), value] for labels, value in samples.items()]
            for name, samples in snapshot.items() if samples}


def _read_snapshot(path: Path) -> tuple[int, dict[str, Any] | None]:
    try:
        data = orjson.loads(path.read_bytes())
        return int(data["pid"]), dict(data["families"])
    except (OSError, ValueError, KeyError, TypeError):  # gone meanwhile, half a file from a crash, not ours
        return 0, None


def _read_retired(directory: Path) -> tuple[set[str], dict[str, Any]]:
    """The worker files already folded into RETIRED (until they are removed), and the folded counts."""
    try:
        data = orjson.loads((directory / RETIRED).read_bytes())
        return {str(name) for name in data["files"]}, dict(data["families"])
    except (OSError, ValueError, KeyError, TypeError):
        return set(), {}


def _merge_into(total: Snapshot, families: dict[str, Any], alive: bool) -> None:
    """Add one worker's samples (as written to its file) into `total`; a sample that does not fit (another
    version's buckets, a broken file) is skipped rather than failing the scrape."""
    for name, samples in families.items():
        family = FAMILIES.get(name)
        if family is None or (family.kind == "gauge" and not alive) or not isinstance(samples, list):
            continue
        into = total.setdefault(name, {})
        for sample in samples:
            try:
                labels, value = sample
                key = tuple(str(label) for label in labels)
                if len(key) != len(family.labels):
                    continue
                into[key] = _combine(family, into.get(key), value)
            except (TypeError, ValueError):
                continue


class _Exposed(Collector):
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        for name, family in FAMILIES.items():
            yield _family(family, self.snapshot.get(name, {}))


def _family(family: Family, samples: dict[Labels, Any]) -> Metric:
    metric: Any
    labels = list(family.labels)
    if family.kind == "histogram":
        metric = HistogramMetricFamily(family.name, family.help, labels=labels)
        for key, value in sorted(samples.items()):
            counts, total = value[:-1], value[-1]
            cumulative, buckets = 0.0, []
            for bound, count in zip([*map(_bound, family.buckets), "+Inf"], counts, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            metric.add_metric(list(key), buckets, total)
        return metric
    metric = (CounterMetricFamily if family.kind == "counter" else GaugeMetricFamily)(
        family.name, family.help, labels=labels)
    if not samples and not labels:
        samples = {(): 0}  # a series from the start: an alert on its increase sees the first one
    for key, value in sorted(samples.items()):
        metric.add_metric(list(key), value)
    return metric


def _label(value: object) -> str:
    return UNREAD if value is None else str(value)


def _bound(value: float) -> str:
    return repr(float(value))


def _combine(family: Family, into: Any, value: Any) -> Any:
    if family.kind == "histogram":
        if not isinstance(value, list) or len(value) != len(family.buckets) + 2:
            raise ValueError("not this version's buckets")
        return list(value) if into is None else [a + b for a, b in zip(into, value, strict=True)]
    if not isinstance(value, int | float):
        raise TypeError("not a number")
    if into is None:
        return value
    return max(into, value) if family.merge == "max" else into + value


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _resident_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0

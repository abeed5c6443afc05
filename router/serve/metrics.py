"""Prometheus metrics at /metrics: what the router decided and how fast, what it refused, and the state of
its rules, short-link expansion, ad-click replays and click log.

Cheap on the click path. A click adds one to a plain dict entry and observes two fixed-bucket histograms
(about half a microsecond, no lock: one event loop per process). Everything else is read from the parts
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
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
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

# Request durations: a click answered from memory takes ~0.1 ms; a short link waits for its upstream (up to
# the expansion deadline, 1.5 s by default).
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


FAMILIES = {family.name: family for family in (
    Family("adlink_clicks", "counter", "Clicks answered, by what was decided, which rule decided it, the channel "
           "and the app the click came from (action error: the safe page after an unexpected error)",
           ("action", "rule", "channel", "app")),
    Family("adlink_request_duration_seconds", "histogram",
           "Time from a request's head to the end of its answer, by route", ("route",), REQUEST_BUCKETS),
    Family("adlink_decision_duration_seconds", "histogram",
           "Time to read and decide a click (short-link waits excluded): answer kept is a repeated click "
           "answered from memory, decided is one read and decided", ("answer",), DECISION_BUCKETS),
    Family("adlink_refusals", "counter", "Requests refused with a 4xx, by status and where: protocol (the HTTP "
           "server, before the app), edge (header size, host name), route (no such page or method), click "
           "(a link that could not be read)", ("status", "stage")),
    Family("adlink_rules_info", "gauge", "Workers serving each rules version", ("version",)),
    Family("adlink_rules", "gauge", "Rules in the version served, per worker, summed", ()),
    Family("adlink_rules_reloads", "counter", "Reload attempts, by result: accepted (a new version serves), "
           "unchanged, rejected (the last good rules keep serving); each worker reloads on its own",
           ("result",)),
    Family("adlink_rules_last_reload_rejected", "gauge",
           "Workers whose last reload attempt was rejected: rules were changed and do not serve", ()),
    Family("adlink_expansions", "counter", "Short-link expansions asked for by clicks, by result", ("result",)),
    Family("adlink_expansion_upstream_requests", "counter", "Requests sent to short-link hosts", ()),
    Family("adlink_expansion_circuit_open", "gauge",
           "Workers whose circuit breaker is open (not calling) for an expansion host", ("host",)),
    Family("adlink_ad_click_replays", "counter",
           "Signed ad clicks refused ad treatment because their click id had been used before", ()),
    Family("adlink_click_lines_dropped", "counter",
           "Click lines dropped because the click stream stopped taking them", ()),
    Family("adlink_workers", "gauge", "Worker processes serving", ()),
    Family("adlink_worker_resident_memory_bytes", "gauge", "Resident memory of the workers, summed", ()),
    Family("adlink_worker_cpu_seconds", "counter", "CPU time (user and system) of the workers, summed", ()),
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

    __slots__ = ("clicks", "decisions", "files", "refusals", "requests", "state")

    def __init__(self, directory: str = "") -> None:
        self.clicks: dict[tuple[Any, ...], int] = {}
        self.refusals: dict[tuple[int, str], int] = {}
        # Per route; /go and /ad from the start, so a click never looks for its histogram twice.
        self.requests = {route: Histogram(REQUEST_BUCKETS) for route in ("/go", "/ad")}
        # kept: a repeated click answered from memory; decided: one read and decided
        self.decisions = {"kept": Histogram(DECISION_BUCKETS), "decided": Histogram(DECISION_BUCKETS)}
        self.state: Callable[[], Snapshot] = dict  # gauges and counters kept elsewhere, read at snapshot time
        self.files = WorkerFiles(Path(directory)) if directory else None

    def click(self, route: str, action: str, rule: str, channel: object, app: object, seconds: float) -> None:
        """One click answered on /go or /ad (channel and app are enums, or None for a click that could not be
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
        out["adlink_workers"] = {(): 1}
        out["adlink_worker_resident_memory_bytes"] = {(): _resident_bytes()}
        times = os.times()
        out["adlink_worker_cpu_seconds"] = {(): times.user + times.system}
        return out

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """The scrape's body and content type: every worker's numbers summed (this one's alone without a
        shared directory)."""
        snapshot = self.snapshot()
        if self.files is not None:
            self.files.write(snapshot)
            snapshot = self.files.total()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Exposed(snapshot))
        encoder, content_type = choose_encoder(accept or "")
        return encoder(registry), content_type

    def flush(self) -> None:
        """Write this worker's snapshot for the others (every FLUSH_SECONDS, and when stopping)."""
        if self.files is not None:
            self.files.write(self.snapshot())


class WorkerFiles:
    """One snapshot file per worker process in a shared directory; written whole (a rename), read whole."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.own = directory / f"{_FILE_PREFIX}{os.getpid()}.json"

    def write(self, snapshot: Snapshot) -> None:
        data = {"pid": os.getpid(),
                "families": {name: [[list(labels), value] for labels, value in samples.items()]
                             for name, samples in snapshot.items() if samples}}
        temporary = self.own.with_suffix(".tmp")
        try:
            temporary.write_bytes(orjson.dumps(data))
            temporary.replace(self.own)
        except OSError as err:  # a full or read-only disk must not take clicks down: the scrape shows less
            log.warning("metrics: could not write %s: %s", self.own, err)

    def total(self) -> Snapshot:
        """Every worker's snapshot summed; the gauges of workers that have ended left out."""
        total: Snapshot = {name: {} for name in FAMILIES}
        for pid, families in self._read():
            alive = pid == os.getpid() or _alive(pid)
            for name, samples in families.items():
                family = FAMILIES.get(name)
                if family is None or (family.kind == "gauge" and not alive):
                    continue
                into = total[name]
                for labels, value in samples:
                    key = tuple(labels)
                    into[key] = _add(into.get(key), value)
        return total

    def _read(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for path in sorted(self.directory.glob(f"{_FILE_PREFIX}*.json")):
            try:
                data = orjson.loads(path.read_bytes())
                yield int(data["pid"]), data["families"]
            except (OSError, ValueError, KeyError, TypeError):  # gone meanwhile, or not ours
                continue


def clear_directory(directory: Path) -> None:
    """Remove the snapshots of an earlier run (its counts belong to processes that are gone)."""
    for path in directory.glob(f"{_FILE_PREFIX}*"):
        with contextlib.suppress(OSError):
            path.unlink()


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


def _add(into: Any, value: Any) -> Any:
    if into is None:
        return list(value) if isinstance(value, list) else value
    if isinstance(into, list):
        return [a + b for a, b in zip(into, value, strict=True)]
    return into + value


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

"""Hot reload: notice new rules, validate them whole, swap them in atomically, keep the last good set.

`ActiveRules.current` is the RuleSet being served. A request reads it once, at its start, and decides
on that object to the end; a reload replaces the attribute with a new, fully validated RuleSet (one
assignment, atomic in CPython), so no request ever sees half of one set and half of another. A set that
does not validate never replaces anything: it is logged one problem a line and shown in /readyz, and
the last good set keeps serving.

Where rules come from is a source (router.serve.sources): `DirectoryWatch` there, or `RemoteBundle`
(router.serve.remote), which fetches a bundle URL with If-None-Match; `rules_source(settings)` picks one.

The `Reloader` polls its source every `ROUTER_RULES_POLL_SECONDS` and also on SIGHUP.

Errors, drawn once:

    RuleSetError (router.decision.rules)  the new rules were read and do not validate
    RulesUnavailable (router.serve.sources)  they could not be read at all
     └─ FetchError (router.serve.remote)      a bundle could not be fetched
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from router.decision.rules import RuleSet, RuleSetError
from router.serve.config import Settings
from router.serve.remote import RemoteBundle
from router.serve.sources import SETTLE_SECONDS, DirectoryWatch, RulesSource, RulesUnavailable
from router.serve.warm import warm_reader

log = logging.getLogger("router.reload")  # its lines are type "reload" (router.serve.logs)

@dataclass(frozen=True, slots=True)
class Attempt:
    """One reload: when, why, and whether the new rules now serve."""

    at: datetime
    trigger: str  # "watch" (the periodic look found a change) or "signal" (SIGHUP)
    ok: bool
    version: str  # the version serving after the attempt
    errors: tuple[str, ...] = ()  # file:line:col: message, when rejected
    unavailable: bool = False  # not ok because the rules could not be read or fetched, not because they are wrong

    @property
    def result(self) -> str:
        return "ok" if self.ok else "unavailable" if self.unavailable else "rejected"

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at.isoformat(timespec="milliseconds"), "trigger": self.trigger,
                               "result": self.result, "version": self.version}
        if self.errors:
            out["errors"] = list(self.errors)
        return out


class ActiveRules:
    """The rule set being served, swapped whole; the outcome of the last reload attempt."""

    def __init__(self, rules: RuleSet, source: str = "") -> None:
        self.current = rules
        self.source = source
        self.loaded_at = datetime.now(UTC)
        self.last_attempt: Attempt | None = None
        # Attempts since the start, by result (router.serve.metrics)
        self.reloads = {"accepted": 0, "unchanged": 0, "rejected": 0, "unavailable": 0}

    def accept(self, rules: RuleSet, trigger: str) -> Attempt:
        old = self.current
        if rules.version != old.version:
            if rules.reader is not old.reader:  # a new app catalogue: its reader compiles before it serves
                warm_reader(rules)
            self.current = rules  # the swap: requests that already read `current` finish on `old`
            self.loaded_at = datetime.now(UTC)
            log.info("rules %s loaded (was %s, %s): %d rules from %s", rules.version, old.version, trigger,
                     len(rules.rules), ", ".join(rules.files))
            self.reloads["accepted"] += 1
        else:
            log.info("rules %s unchanged (%s)", rules.version, trigger)
            self.reloads["unchanged"] += 1
        self.last_attempt = Attempt(datetime.now(UTC), trigger, True, rules.version)
        return self.last_attempt

    def reject(self, errors: list[str], trigger: str, unavailable: bool = False) -> Attempt:
        """Keep serving what serves: the new rules do not validate, or (`unavailable`) could not be read."""
        for error in errors:
            log.warning("rules rejected: %s", error)
        count = len(errors)
        self.reloads["unavailable" if unavailable else "rejected"] += 1
        log.warning("rules rejected (%s): %d problem%s; still serving rules %s", trigger, count,
                    "" if count == 1 else "s", self.current.version)
        self.last_attempt = Attempt(datetime.now(UTC), trigger, False, self.current.version, tuple(errors),
                                    unavailable)
        return self.last_attempt

    def status(self) -> dict[str, Any]:
        """What /readyz says about the rules."""
        current = self.current
        return {
            "rules_version": current.version,
            "rules": len(current.rules),
            "rules_source": self.source,
            "rules_loaded_at": self.loaded_at.isoformat(timespec="milliseconds"),
            "last_reload": self.last_attempt.as_json() if self.last_attempt else None,
        }


def rules_source(settings: Settings) -> RulesSource:
    """The settings' rules directory, or their bundle URL."""
    if settings.rules_url:
        return RemoteBundle(settings.rules_url, timeout=settings.rules_timeout_seconds)
    interval = settings.rules_poll_interval
    return DirectoryWatch(settings.rules_dir, settle=min(SETTLE_SECONDS, interval) if interval else SETTLE_SECONDS)


def load_reporting(settings: Settings, report: Callable[[str], object]) -> RuleSet | None:
    """The rules as the server loads them (directory or bundle URL), or None after reporting why not:
    one `file:line:col: error: …` line per problem, or one `error: …` when they couldn't be read."""
    try:
        return rules_source(settings).load()
    except RulesUnavailable as err:
        report(f"error: {err}")
    except RuleSetError as err:
        for problem in err.problems:
            report(problem.labelled("error"))
    return None


class Reloader:
    """Polls a source every `interval` seconds (0: never) and on SIGHUP; applies what it finds."""

    def __init__(self, active: ActiveRules, source: RulesSource, interval: float) -> None:
        self.active = active
        self.source = source
        self.interval = interval
        self._wake: asyncio.Event | None = None  # made in the running loop: an Event belongs to one loop

    async def reload(self, trigger: str = "signal", force: bool = True) -> Attempt | None:
        """Look once; validate and swap what is new. None when nothing changed. Never raises."""
        try:
            rules = await self.source.poll(force)
        except RuleSetError as err:
            return self.active.reject([str(problem) for problem in err.problems], trigger)
        except (RulesUnavailable, OSError) as err:
            return self.active.reject([str(err)], trigger, unavailable=True)
        except Exception as err:  # a reloader that dies would silently stop all future reloads
            log.exception("reloading rules from %s failed", self.source)
            return self.active.reject([f"{self.source}: unexpected error: {err!r}"], trigger)
        if rules is None:
            return None
        return self.active.accept(rules, trigger)

    def wake(self) -> None:
        """Reload now (SIGHUP). Call from the event loop's thread."""
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        wake = self._wake = asyncio.Event()
        while True:
            try:
                async with asyncio.timeout(self.interval or None):
                    await wake.wait()
                trigger = "signal"
            except TimeoutError:
                trigger = "watch"
            wake.clear()
            await self.reload(trigger, force=trigger == "signal")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the app's lifespan: the polling task, and SIGHUP when this process can take signals."""
        loop = asyncio.get_running_loop()
        task = loop.create_task(self.run(), name="rules-reload")
        on_hup = _listen_for_sighup(loop, self.wake)
        every = f"every {self.interval:g} s" if self.interval else "never (ROUTER_RULES_POLL_SECONDS=0)"
        log.info("looking for new rules at %s %s; SIGHUP %s", self.source, every,
                 "reloads" if on_hup else "is not handled in this thread")
        try:
            yield
        finally:
            if on_hup:
                loop.remove_signal_handler(signal.SIGHUP)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _listen_for_sighup(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> bool:
    """Install a SIGHUP handler when serving from the main thread (uvicorn, one process or each worker).

    Signal handlers belong to the main thread: an app run elsewhere (TestClient runs it in a thread of
    its own) is left alone, and so is whatever handler the process already has there.
    """
    sighup = getattr(signal, "SIGHUP", None)
    if sighup is None or threading.current_thread() is not threading.main_thread():
        return False
    try:
        loop.add_signal_handler(sighup, callback)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True

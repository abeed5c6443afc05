"""Hot reload: notice new rules, validate them whole, swap them in atomically, keep the last good set.

`ActiveRules.current` is the RuleSet being served. A request reads it once, at its start, and decides
on that object to the end; a reload replaces the attribute with a new, fully validated RuleSet (one
assignment, atomic in CPython), so no request ever sees half of one set and half of another. A set that
does not validate never replaces anything: it is logged one problem a line and shown in /readyz, and
the last good set keeps serving.

Where rules come from is a source with two methods: `load()` at startup (blocking, every problem
raised) and `poll(force)` afterwards (a new RuleSet, or None when nothing changed):

- `DirectoryWatch` (here) looks at a cheap signature of the directory — each rule file's resolved path
  and the inode, size and times of what it points to — so it sees in-place edits, new and removed files,
  editors' write-then-rename and Kubernetes ConfigMap updates (`x.yaml -> ..data/x.yaml`, with `..data`
  re-pointed at a new directory in one rename);
- `RemoteBundle` (router.remote) fetches a URL with If-None-Match.

The `Reloader` polls its source every `ROUTER_RULES_POLL_SECONDS` and also on SIGHUP.

Errors, drawn once:

    RuleSetError (router.rules)  the new rules were read and do not validate
    RulesUnavailable             they could not be read at all (router.remote.FetchError: a fetch failed)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from router.config import Settings
from router.rules import RULE_FILE_SUFFIXES, RuleSet, RuleSetError, load_rules

log = logging.getLogger("router")

# How long a directory must look the same before it is read, so that a save in progress (truncate,
# write, write again) is read once it is finished rather than half-way.
SETTLE_SECONDS = 0.25
_SETTLE_ROUNDS = 8  # a directory that never stops changing is still read, a couple of seconds late


class RulesUnavailable(Exception):
    """The rules could not be read at all; the message is one sentence naming where from."""


class RulesSource(Protocol):
    def load(self) -> RuleSet:
        """Read and validate everything now (startup); raises RuleSetError or RulesUnavailable."""
        ...

    async def poll(self, force: bool = False) -> RuleSet | None:
        """A newly read RuleSet, or None when nothing changed; `force` reads even if nothing seems to."""
        ...


@dataclass(frozen=True, slots=True)
class Attempt:
    """One reload: when, why, and whether the new rules now serve."""

    at: datetime
    trigger: str  # "watch" (the periodic look found a change) or "signal" (SIGHUP)
    ok: bool
    version: str  # the version serving after the attempt
    errors: tuple[str, ...] = ()  # file:line:col: message, when rejected

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"at": self.at.isoformat(timespec="milliseconds"), "trigger": self.trigger,
                               "result": "ok" if self.ok else "rejected", "version": self.version}
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

    def accept(self, rules: RuleSet, trigger: str) -> Attempt:
        old = self.current
        if rules.version != old.version:
            self.current = rules  # the swap: requests that already read `current` finish on `old`
            self.loaded_at = datetime.now(UTC)
            log.info("rules %s loaded (was %s, %s): %d rules from %s", rules.version, old.version, trigger,
                     len(rules.rules), ", ".join(rules.files))
        else:
            log.info("rules %s unchanged (%s)", rules.version, trigger)
        self.last_attempt = Attempt(datetime.now(UTC), trigger, True, rules.version)
        return self.last_attempt

    def reject(self, errors: list[str], trigger: str) -> Attempt:
        for error in errors:
            log.warning("rules rejected: %s", error)
        count = len(errors)
        log.warning("rules rejected (%s): %d problem%s; still serving rules %s", trigger, count,
                    "" if count == 1 else "s", self.current.version)
        self.last_attempt = Attempt(datetime.now(UTC), trigger, False, self.current.version, tuple(errors))
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


Signature = tuple[object, ...]


def signature(directory: Path) -> Signature:
    """What the rule files in `directory` are right now, cheaply: a change in any file changes it.

    stat() follows symlinks, so a file that is a symlink is described by what it points to; the
    resolved path changes too when a ConfigMap's `..data` link moves to a new directory.
    """
    try:
        names = sorted(os.listdir(directory))
        where = os.path.realpath(directory)
    except OSError as err:
        return ("unreadable", err.errno)
    files: list[object] = [where]
    for name in names:
        if Path(name).suffix not in RULE_FILE_SUFFIXES:
            continue
        path = os.path.join(directory, name)
        try:
            st = os.stat(path)
            files.append((name, os.path.realpath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns,
                          st.st_ctime_ns))
        except OSError:  # a dangling link, or removed while we looked
            files.append((name, None))
    return tuple(files)


class DirectoryWatch:
    """A rules directory, looked at for changes."""

    def __init__(self, directory: Path, settle: float = SETTLE_SECONDS) -> None:
        self.directory = Path(directory)
        self.settle = settle
        self.seen = signature(self.directory)

    def __str__(self) -> str:
        return str(self.directory)

    def load(self) -> RuleSet:
        self.seen = signature(self.directory)  # taken first: a change made while loading is seen next time
        return load_rules(self.directory)

    async def poll(self, force: bool = False) -> RuleSet | None:
        now = await asyncio.to_thread(signature, self.directory)
        if now == self.seen and not force:
            return None
        for _ in range(_SETTLE_ROUNDS if now != self.seen else 0):
            await asyncio.sleep(self.settle)
            again = await asyncio.to_thread(signature, self.directory)
            if again == now:
                break
            now = again
        # Remembered before reading, and whether or not the rules validate: a rejected directory is not
        # read again (nor logged again) until it changes, and a change made during the read is seen next.
        self.seen = now
        return await asyncio.to_thread(load_rules, self.directory)


def rules_source(settings: Settings) -> RulesSource:
    """The settings' rules directory, or their bundle URL."""
    if settings.rules_url:
        from router.remote import RemoteBundle  # the one module that talks to the network

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
            return self.active.reject([str(err)], trigger)
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

"""Where rules come from: the protocol every source follows, its error, and the directory source.

A source has two methods: `load()` at startup (blocking, every problem raised) and `poll(force)`
afterwards (a new RuleSet, or None when nothing changed). `DirectoryWatch` looks at a cheap signature of
the directory — each rule file's resolved path and the inode, size and times of what it points to — so it
sees in-place edits, new and removed files, editors' write-then-rename and Kubernetes ConfigMap updates
(`x.yaml -> ..data/x.yaml`, with `..data` re-pointed at a new directory in one rename). The other source,
a bundle URL, is `router.serve.remote.RemoteBundle`; `router.serve.reload` picks one and applies what it reads.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Protocol

from router.decision.rules import RULE_FILE_SUFFIXES, RuleSet, load_rules

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
        if now[0] == "unreadable":  # gone or not readable (a volume unmounted): not the rules' fault
            errno = now[1]
            reason = os.strerror(errno) if isinstance(errno, int) else "unreadable"
            raise RulesUnavailable(f"{self.directory}: the rules directory can't be read ({reason})")
        return await asyncio.to_thread(load_rules, self.directory)

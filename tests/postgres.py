"""A real, throwaway PostgreSQL for the tests (Debian's initdb and pg_ctl, run as the postgres user when the
tests run as root) in a folder of the test's own, on a free loopback port, with a password; stopped at the end.
Missing, the tests that need it skip on a developer's machine and fail under CI=true (.ci/run installs it).

`postgres` is a module-scoped fixture: a test module imports it (`from tests.postgres import postgres_fixture`,
its name as a fixture being `postgres`) and takes a fresh database of its own with `new_database()`. A test
that stops the server (to see the routers ride out a database that is down) makes a `Postgres` of its own,
and may `start()` it again on its port."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest
import sqlalchemy as sa

from router.serve.link_store import engine_url
from tests.servers import debian_tool, free_port

PG_PASSWORD = "pg-Pa55-word-4711"


def pg_tool(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else debian_tool(name, package="postgresql")


class Postgres:
    """A throwaway PostgreSQL cluster: 127.0.0.1 only, its socket in its own folder, password auth."""

    def __init__(self, folder: Path) -> None:
        initdb, self.pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
        self.as_owner: list[str] = []
        if os.geteuid() == 0:
            # The cluster must belong to postgres, who must be able to reach the folder through pytest's own.
            self.as_owner = ["runuser", "-u", "postgres", "--"]
            self.folder = folder
            self._reachable()
            shutil.chown(folder, "postgres", "postgres")
        self.data, self.sockets, self.log = folder / "data", folder / "sockets", folder / "log"
        self.sockets.mkdir()
        pwfile = folder / "pw"
        pwfile.write_text(PG_PASSWORD + "\n")
        if self.as_owner:
            shutil.chown(self.sockets, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
        self.port = free_port()
        self._run(initdb, "-D", str(self.data), "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256",
                  "--encoding=UTF8", "--locale=C")
        self.running = False
        self.start()
        self._databases = count()

    def _reachable(self) -> None:
        """Let postgres pass through every root-owned folder above its own: pytest makes its base folder 0700
        again when a session starts, so this is done before each command, not once."""
        place = self.folder.parent
        while place != place.parent:
            mode = place.stat().st_mode
            if place.stat().st_uid == 0 and mode & 0o001 == 0:
                place.chmod(mode | 0o001)
            place = place.parent

    def _run(self, *command: str) -> None:
        if self.as_owner:
            self._reachable()
        done = subprocess.run([*self.as_owner, *command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    def start(self) -> None:
        """Start the server (again), on its own port; returns once it accepts connections."""
        self._run(self.pg_ctl, "start", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.log),
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.sockets} -c fsync=off")
        self.running = True

    def url(self, database: str) -> str:
        return f"postgresql://postgres:{PG_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"links_{next(self._databases)}"
        engine = sa.create_engine(engine_url(self.url("postgres")), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))  # a name of our own making
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown: open connections are cut); returns once it has stopped."""
        self._run(self.pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w")
        self.running = False

    def close(self) -> None:
        """Stopped at the end, unless a test has stopped it already."""
        if self.running:
            self.stop()


@pytest.fixture(scope="module", name="postgres")
def postgres_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    server = Postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.close()

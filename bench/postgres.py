"""A real PostgreSQL server for the bench and the district's test suite: a fresh cluster in
a temporary directory (`initdb`), started with `pg_ctl` on a free loopback port and stopped
again to make outages. As root, the server runs as the unprivileged `postgres` user (Debian's
package makes it), because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench.ports import free_port

START_S = 30.0
DATABASE = "posko"


def pg_bin(name: str) -> str:
    """A PostgreSQL server program: on PATH, else in Debian's versioned directory."""
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    if not found:
        raise FileNotFoundError(f"{name} not found: install Debian's postgresql package")
    return found if isinstance(found, str) else found[0]


def available() -> bool:
    try:
        pg_bin("initdb")
        pg_bin("pg_ctl")
    except FileNotFoundError:
        return False
    return True


class Postgres:
    """One cluster in a directory of its own; `start()`, `stop()` (fast shutdown, or `kill`
    for an immediate one), `close()` stops it and deletes the directory. `url` connects to
    the `posko` database."""

    def __init__(self, base: Path | None = None, port: int | None = None) -> None:
        self._user = "postgres" if os.geteuid() == 0 else None
        # Under root the server's user must reach the directory: pytest's tmp_path is 0700.
        self.workdir = Path(tempfile.mkdtemp(prefix="posko-pg-", dir=base))
        self.data = self.workdir / "pgdata"
        self.port = port or free_port()
        self.log = self.workdir / "postgres.log"
        self._made = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._user is not None:  # PostgreSQL will not run as root
            command = ["runuser", "-u", self._user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)

    def _make(self) -> None:
        if self._user is not None:
            owner = pwd.getpwnam(self._user)
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
        self._run(
            pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync",
        )  # fmt: skip
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.workdir}'\n"
                "max_connections = 100\nshared_buffers = 64MB\n"
                # The suite's clusters are thrown away: durability is tested against a
                # real fsync elsewhere (SQLite); a crash here only loses the test's data.
                "fsync = on\nsynchronous_commit = on\n"
            )
        self._made = True

    def start(self) -> Postgres:
        if not self._made:
            self._make()
            fresh = True
        else:
            fresh = False
        self._run(
            pg_bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(int(START_S)), "start",
        )  # fmt: skip
        if fresh:
            self._run(
                "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
                "postgres", "-q", "-c", f"CREATE DATABASE {DATABASE}",
            )  # fmt: skip
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the server: `kill` as a crash would (immediate mode: no checkpoint)."""
        mode = "immediate" if kill else "fast"
        self._run(pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        return (
            self._run(pg_bin("pg_ctl"), "-D", str(self.data), "status", check=False).returncode == 0
        )

    def close(self) -> None:
        if self._made and self.running():
            self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

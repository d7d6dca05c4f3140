"""The suite's PostgreSQL: one cluster per pytest worker (bench/postgres.py), a fresh
database per test on it, and the `--db` values the backend-neutral tests run on.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bench.postgres import Postgres, available

BACKENDS = ("sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


def need_postgres() -> None:
    """Fail, not skip, without PostgreSQL's programs: a skipped backend would pass unseen."""
    if not available():
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (`make test` does)")


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin(server: Postgres) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(with_database(server.url, "postgres"), autocommit=True)


@contextmanager
def fresh_database(server: Postgres) -> Iterator[str]:
    """A new empty database on `server`, dropped afterwards; its URL."""
    name = f"t_{secrets.token_hex(6)}"
    with _admin(server) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield with_database(server.url, name)
    finally:
        if server.running():
            with _admin(server) as admin:
                # FORCE: a receiver the test killed may still hold a connection.
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

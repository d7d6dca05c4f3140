"""Shared fixtures: a post on mock pins with a virtual clock and a guard to press its buttons,
a real Mosquitto on a free port, a running `posko run`, and an ExitStack for the rest.

Only the hardware edge is fake (gpiozero's MockFactory, a scripted thermometer, a fake
camera); the store, the station, the broker and the files are real.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.broker import Mosquitto
from bench.postgres import Postgres
from district.backends import open_storage
from district.sqlite import SQLiteStorage
from district.storage import Storage
from edge.clock import VirtualClock
from edge.config import Config, defaults
from edge.post import Post
from sensors.simulated import ScriptedThermometer
from tests.support.guard import Guard
from tests.support.postgres import (
    BACKENDS,
    fresh_database,
    need_postgres,
)
from tests.support.station_proc import running_station

START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 in Jakarta


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return defaults().replace(
        data__dir=str(tmp_path / "data"),
        post__id="test-post",
        buttons__emergency_hold_s=0.2,
        buttons__recheck_hold_s=0.2,
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def open_post(config: Config, clock: VirtualClock) -> Iterator[Callable[..., Post]]:
    posts: list[Post] = []

    def opener(script: list[Any] | None = None, cfg: Config | None = None, **kwargs: Any) -> Post:
        thermometer = kwargs.pop("thermometer", ScriptedThermometer(script or [36.6]))
        post = Post(
            cfg or config,
            mock=True,
            clock=clock,
            thermometer=thermometer,
            use_config_sensors=False,
            monotonic=clock.monotonic,
            **kwargs,
        )
        posts.append(post)
        return post

    yield opener
    for post in posts:
        post.close()


@pytest.fixture
def guard(open_post: Callable[..., Post], clock: VirtualClock) -> Callable[..., Guard]:
    def make(script: list[Any] | None = None, **kwargs: Any) -> Guard:
        return Guard(open_post(script, **kwargs), clock)

    return make


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """What a test starts (workers, receivers, stores), entered here, is closed after it."""
    with ExitStack() as s:
        yield s


@pytest.fixture
def mosquitto(tmp_path: Path, stack: ExitStack) -> Mosquitto:
    """A Mosquitto on a free port, not started yet: outage tests start, kill and restart it.
    Stopped after the test."""
    broker = Mosquitto(tmp_path / "broker")
    stack.callback(broker.close)
    return broker


@pytest.fixture
def broker(mosquitto: Mosquitto) -> Mosquitto:
    """A running Mosquitto on a free port."""
    return mosquitto.start()


@pytest.fixture
def station(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A running `posko run --mock` on `tmp_path / "data"`, its page on a free port; stopped
    with SIGTERM after the test (which must be a clean stop)."""
    with running_station(tmp_path / "data") as process:
        yield process


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    """One PostgreSQL cluster per pytest worker, on a free port, started on first use."""
    need_postgres()
    with Postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: Postgres) -> Iterator[str]:
    """A fresh database on the worker's cluster, dropped after the test; its address."""
    with fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def district_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A `--db` value of each backend: an SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "district.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def db(district_db: str) -> Iterator[Storage]:
    """The district storage of each backend, open (a module may define its own `db`)."""
    with open_storage(district_db) as storage:
        yield storage


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[SQLiteStorage]:
    """The SQLite storage only: for what only SQLite has (its file, its PRAGMAs)."""
    with SQLiteStorage(tmp_path / "district.db") as storage:
        yield storage

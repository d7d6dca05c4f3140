"""`posko district run` and `posko district export` as real processes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.ports import free_port
from edge.store import EventStore
from sync.worker import SyncWorker
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import (
    FAST_BACKOFF,
    POST,
    ReceiverProcess,
    assert_exactly_once,
    backlog,
    options,
)

POSKO = [sys.executable, "-m", "posko.cli"]


def posko(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    return subprocess.run([*POSKO, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.broker
@pytest.mark.slow
def test_district_two_receivers_on_a_shared_subscription_store_everything_once(
    tmp_path: Path, stack: ExitStack, broker: Mosquitto
) -> None:
    db_path = tmp_path / "district.db"
    receivers = [
        ReceiverProcess(db_path, broker.address, "--share", "district").start() for _ in range(2)
    ]
    try:
        for receiver in receivers:
            receiver.wait_subscribed()
        backlog(tmp_path / "pi", 20_000)
        store = stack.enter_context(EventStore(tmp_path / "pi", POST))
        sync = stack.enter_context(
            SyncWorker(
                store, options(broker.address, batch_events=250, window=8), backoff=FAST_BACKOFF
            )
        )
        assert sync.wait_drained(60), sync.last_error
    finally:
        logs = [receiver.stop() for receiver in receivers]
    assert_exactly_once(db_path, store)
    stored = [int(re.findall(r"district: (\d+) events stored", log)[-1]) for log in logs]
    assert sum(stored) == 20_000 and all(n > 0 for n in stored), stored  # both did work


@pytest.mark.broker
@pytest.mark.slow
def test_district_receiver_waits_for_the_broker(
    tmp_path: Path, stack: ExitStack, mosquitto: Mosquitto
) -> None:
    db_path = tmp_path / "district.db"
    broker = mosquitto  # not started yet
    receiver = ReceiverProcess(db_path, broker.address).start()
    try:
        wait_for(
            lambda: any("not reachable yet" in line for line in receiver.lines),
            20,
            "the receiver to find no broker",
        )
        with broker:
            receiver.wait_subscribed()
            backlog(tmp_path / "pi", 1000)
            store = stack.enter_context(EventStore(tmp_path / "pi", POST))
            sync = stack.enter_context(
                SyncWorker(store, options(broker.address), backoff=FAST_BACKOFF)
            )
            assert sync.wait_drained(30), sync.last_error
            sync.close()
    finally:
        receiver.stop()
    assert receiver.process is not None and receiver.process.returncode == 0
    assert_exactly_once(db_path, store)


def test_district_run_names_an_unreachable_postgresql_in_one_line_without_its_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://district:s3cret@127.0.0.1:{port}/posko"
    result = posko("district", "run", "--db", url, "--broker", "127.0.0.1:1")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"posko: district database postgresql://127.0.0.1:{port}/posko: ")
    assert "s3cret" not in result.stderr + result.stdout and "Traceback" not in line


@pytest.mark.slow  # a real process
def test_district_run_names_a_database_path_it_cannot_open(tmp_path: Path) -> None:
    where = tmp_path / "no" / "such" / "dir" / "x.db"
    result = posko("district", "run", "--db", str(where), "--broker", "127.0.0.1:1")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"posko: cannot open the district database {where}"
    )


@pytest.mark.slow  # a real process
def test_district_run_names_a_busy_page_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = posko(
            "district", "run", "--db", str(tmp_path / "d.db"), "--broker", "127.0.0.1:1",
            "--web", f"127.0.0.1:{port}",
        )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"posko: cannot serve the district page on 127.0.0.1:{port}: Address already in use"
    )


@pytest.fixture(scope="module")
def district_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A district database holding one post's backlog, and those events."""
    from district.receiver import Receiver
    from district.sqlite import SQLiteStorage
    from sync import codec
    from sync.batch import Batch

    where = tmp_path_factory.mktemp("export")
    backlog(where / "pi", 3000)
    with EventStore(where / "pi", POST, read_only=True) as store:
        events = store.since(0)
    with SQLiteStorage(where / "district.db") as db:
        receiver = Receiver(db)
        for i in range(0, len(events), 1000):
            receiver.handle(
                f"posko/v1/{POST}/events", codec.encode(Batch.of(POST, events[i : i + 1000]))
            )
    return where / "district.db", events


def test_district_export_writes_every_event_as_json_lines(
    district_db: tuple[Path, list[dict]],
) -> None:
    db_path, events = district_db
    result = posko("district", "export", "--db", str(db_path), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == events


def test_district_export_csv_for_a_range_of_days(district_db: tuple[Path, list[dict]]) -> None:
    db_path, events = district_db
    with EventStore(db_path.parent / "pi", POST, read_only=True) as store:
        days = sorted({store.today(_time(e)) for e in events})
        expected = store.between(days[1], days[2])
    result = posko(
        "district",
        "export",
        "--db",
        str(db_path),
        "--from",
        days[1],
        "--to",
        days[2],
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["post"], int(r["seq"])) for r in rows] == [(POST, e["seq"]) for e in expected]
    assert expected and len(expected) < len(events)


def test_district_export_refuses_a_backwards_range(district_db: tuple[Path, list[dict]]) -> None:
    result = posko(
        "district",
        "export",
        "--db",
        str(district_db[0]),
        "--from",
        "2026-02-02",
        "--to",
        "2026-02-01",
        "--format",
        "csv",
    )
    assert result.returncode == 2 and "after" in result.stderr


def _time(event: dict):  # type: ignore[no-untyped-def]
    from edge.events import parse_time

    return parse_time(event["time"])

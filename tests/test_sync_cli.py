"""`posko sync` (one-shot) and the worker inside `posko run`, as a technician runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import pytest

from district.backends import open_storage
from district.server import District, district_link
from district.sqlite import SQLiteStorage
from edge.clock import VirtualClock
from edge.config import Config
from edge.post import Post
from edge.store import EventStore
from posko.runtime import Runtime
from tests.support.guard import Guard
from tests.support.keys import SIGNER, public_key_file
from tests.support.sync_broker import Mosquitto, free_port, wait_for
from tests.support.sync_helpers import POST, assert_exactly_once, backlog, district_count

POSKO = [sys.executable, "-m", "posko.cli"]


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    keys = str(public_key_file())
    return {
        **base,
        "POSKO_POST_ID": POST,
        "POSKO_SYNC_ACK_TIMEOUT_S": "3",
        "POSKO_MQTT_DISTRICT_KEYS": keys,
        **extra,
    }


def posko(data: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POSKO, "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
    )


@pytest.fixture
def district(broker: Mosquitto, tmp_path: Path, stack: ExitStack) -> District:
    receiver = stack.enter_context(
        District(
            open_storage(tmp_path / "district.db"),
            district_link(("127.0.0.1", broker.port)),
            signer=SIGNER,
        )
    )
    assert receiver.subscribed.wait(10)
    return receiver


@pytest.mark.broker
def test_sync_command_drains_the_backlog_and_reports_progress(
    tmp_path: Path, broker: Mosquitto, district: District
) -> None:
    backlog(tmp_path / "pi", 5000)
    result = posko(
        tmp_path / "pi", "sync", "--broker", broker.address, "--until-drained", "--timeout", "60"
    )
    assert result.returncode == 0, result.stderr
    assert "5000 events waiting" in result.stderr
    assert "acknowledged up to 5000 of 5000 (0 waiting)" in result.stderr
    assert "events/s" in result.stderr
    with EventStore(tmp_path / "pi", POST) as store:
        assert store.acked == 5000
        assert_exactly_once(tmp_path / "district.db", store)
    again = posko(tmp_path / "pi", "sync", "--broker", broker.address, "--until-drained")
    assert again.returncode == 0 and "nothing waiting" in again.stderr


@pytest.mark.broker
@pytest.mark.slow
def test_sync_command_times_out_when_nobody_acknowledges(tmp_path: Path, broker: Mosquitto) -> None:
    backlog(tmp_path / "pi", 200)
    result = posko(
        tmp_path / "pi", "sync", "--broker", broker.address, "--until-drained", "--timeout", "1.5"
    )
    assert result.returncode == 1
    assert "timed out after 1.5 s with 200 events waiting" in result.stderr
    best_effort = posko(tmp_path / "pi", "sync", "--broker", broker.address, "--timeout", "1")
    assert best_effort.returncode == 0  # without --until-drained, a timeout is not a failure


@pytest.mark.broker
def test_sync_command_refuses_while_the_station_runs(tmp_path: Path, broker: Mosquitto) -> None:
    backlog(tmp_path / "pi", 10)
    with EventStore(tmp_path / "pi", POST):  # this process owns the data directory now
        result = posko(tmp_path / "pi", "sync", "--broker", broker.address)
    assert result.returncode == 1
    assert f"posko process {os.getpid()}" in result.stderr
    assert "syncs by itself" in result.stderr


def test_sync_command_needs_a_broker(tmp_path: Path) -> None:
    backlog(tmp_path / "pi", 10)
    result = posko(tmp_path / "pi", "sync")
    assert result.returncode == 2 and "--broker" in result.stderr


@pytest.mark.broker
@pytest.mark.slow
def test_sync_run_drains_the_backlog_and_says_offline_when_stopped(
    tmp_path: Path, broker: Mosquitto, district: District
) -> None:
    backlog(tmp_path / "pi", 3000)
    process = subprocess.Popen(
        [*POSKO, "--data", str(tmp_path / "pi"), "run", "--mock", "--broker", broker.address],
        env=env(POSKO_WEB_LISTEN=f"127.0.0.1:{free_port()}"),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: district_count(tmp_path / "district.db") == 3000,
            60,
            "the backlog at the district",
        )
        with SQLiteStorage(tmp_path / "district.db", read_only=True) as db:
            wait_for(lambda: db.posts()[0]["status"].get("pending") == 0, 10, "drained status")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    with SQLiteStorage(tmp_path / "district.db", read_only=True) as db:
        wait_for(lambda: db.posts()[0]["state"] == "offline", 10, "the offline status")
    with EventStore(tmp_path / "pi", POST, read_only=True) as store:
        assert store.acked == 3000


@pytest.mark.broker
def test_sync_worker_in_a_post_sends_each_press_and_alerts_at_once(
    config: Config,
    clock: VirtualClock,
    open_post: Callable[..., Post],
    broker: Mosquitto,
    district: District,
    tmp_path: Path,
    stack: ExitStack,
) -> None:
    post = open_post(
        cfg=config.replace(
            mqtt__broker=broker.address,
            sync__ack_timeout_s=3.0,
            mqtt__district_keys=[str(public_key_file())],
        )
    )
    worker = stack.enter_context(Runtime(post.config, post=post, page=False).start()).sync
    assert worker is not None
    guard = Guard(post, clock)
    for button in ("masuk_warga", "keluar_warga", "masuk_pendatang"):
        assert guard.press(button).event is not None
    assert guard.hold("darurat").pattern == "emergency"
    assert worker.wait_drained(20), worker.last_error
    with SQLiteStorage(tmp_path / "district.db", read_only=True) as db:
        stored = list(db.events(post="test-post"))
        (row,) = db.posts()
    assert stored == post.store.since(0)
    assert row["alerts"] == 1 and row["last_alert"] == 4


def test_sync_run_without_a_broker_leaves_sync_off(
    config: Config, open_post: Callable[..., Post], stack: ExitStack
) -> None:
    post = open_post()
    assert stack.enter_context(Runtime(post.config, post=post, page=False).start()).sync is None


@pytest.mark.broker
@pytest.mark.slow
def test_sync_command_says_once_that_the_district_is_not_acknowledging(
    tmp_path: Path, broker: Mosquitto
) -> None:
    import io

    from posko.commands.sync import watch
    from sync.worker import SyncWorker
    from tests.support.sync_helpers import options

    backlog(tmp_path / "pi", 50)
    out = io.StringIO()
    with (
        EventStore(tmp_path / "pi", POST) as store,
        SyncWorker(store, options(broker.address)) as worker,
    ):  # a broker, but no district receiver behind it
        assert watch(worker, False, 4.0, out, hint_after=1.0) == 0
    said = out.getvalue().splitlines()
    hints = [line for line in said if "is the receiver running?" in line]
    assert len(hints) == 1, said
    assert hints[0].startswith("posko sync: the district is not acknowledging")
    online = [line for line in said if line.endswith(", online")]
    assert len(online) <= 3, said  # not one "acknowledged up to 0 … online" per second


@pytest.mark.slow
def test_sync_command_says_each_connection_failure_in_one_line(tmp_path: Path) -> None:
    backlog(tmp_path / "pi", 10)
    port = free_port()  # nobody listens there
    result = posko(
        tmp_path / "pi", "sync", "--broker", f"127.0.0.1:{port}", "--timeout", "2.5", timeout=30
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 0
    assert all(line.startswith("posko sync: ") for line in lines), lines
    assert "[Errno" not in result.stderr
    failures = [line for line in lines if "cannot connect" in line]
    assert failures and all(line.endswith("connection refused; trying again") for line in failures)

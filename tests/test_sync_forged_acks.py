"""Forged acks and hostile batches against a real Mosquitto: whoever can publish on a post's
ack topic must not make the post drop what the district never stored, and a batch that
declares the rest of time lost must not wedge the post. Also what the technician and the
guard see when sync has no district key, or when acks were ignored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest

from district.backends import open_storage
from district.server import District, district_link
from district.sqlite import SQLiteStorage
from edge.config import Config
from edge.events import Kind
from edge.post import Post
from edge.store import EventStore
from posko.runtime import Runtime
from sync import codec
from sync.acks import AckGate, AckTrust
from sync.batch import MAX_SEQ, Batch
from sync.messages import Ack
from sync.options import split_address
from sync.signing import Signer
from sync.worker import SyncWorker
from tests.support.keys import NEXT_SIGNER, SIGNER, STRANGER, TRUST, public_key_file
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import (
    FAST_BACKOFF,
    POST,
    assert_exactly_once,
    backlog,
    options,
    realistic,
)
from tests.support.web_support import Screen

POSKO = [sys.executable, "-m", "posko.cli"]
ACK_TOPIC = f"posko/v1/{POST}/ack"
NOW = "2026-11-27T03:04:05.123Z"
DRAIN_S = 60.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "district.db"


@pytest.fixture
def district(broker: Mosquitto, db_path: Path, stack: ExitStack) -> Callable[..., District]:
    def start(signer: Signer | None = SIGNER) -> District:
        link = district_link(("127.0.0.1", broker.port))
        receiver = stack.enter_context(District(open_storage(db_path), link, signer=signer))
        assert receiver.subscribed.wait(10)
        return receiver

    return start


def forge(broker: Mosquitto, payload: bytes, topic: str = ACK_TOPIC, retain: bool = True) -> None:
    """What anyone with a publishing credential on the broker can do."""
    host, port = split_address(broker.address)
    publish.single(topic, payload, qos=1, retain=retain, hostname=host, port=port)


def run_posko(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    base.update(POSKO_POST_ID=POST, POSKO_SYNC_ACK_TIMEOUT_S="3", **env)
    return subprocess.run(
        [*POSKO, "--data", str(data), *args], capture_output=True, text=True, timeout=120, env=base
    )


def synced_up_to(data: Path, broker: Mosquitto, n: int) -> None:
    """The district holds 1..n of the post's backlog and has acked it (retained, signed)."""
    with EventStore(data, POST) as store, SyncWorker(store, options(broker.address)) as sync:
        assert sync.wait_drained(DRAIN_S), sync.last_error
        assert store.acked == n


def append(data: Path, n: int) -> None:
    with EventStore(data, POST) as store:
        for _ in range(n):
            store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced")


# -- section 1 of issue 9: forged acks ---------------------------------------------------


@pytest.mark.broker
@pytest.mark.slow
def test_forged_retained_ack_does_not_let_sync_claim_it_drained(
    tmp_path: Path, broker: Mosquitto, district: Callable[..., District], db_path: Path
) -> None:
    data = tmp_path / "pi"
    backlog(data, 300)
    receiver = district()
    synced_up_to(data, broker, 300)
    receiver.close()  # the district is down: nobody can truly acknowledge 301-500
    append(data, 200)
    forge(broker, json.dumps({"ack": 500}).encode())  # replaces the district's retained ack
    keys = str(public_key_file())
    result = run_posko(
        data,
        "sync",
        "--broker",
        broker.address,
        "--until-drained",
        "--timeout",
        "4",
        POSKO_MQTT_DISTRICT_KEYS=keys,
    )
    assert result.returncode == 1, result.stderr
    assert "every event is acknowledged" not in result.stderr
    assert "timed out after 4 s with 200 events waiting" in result.stderr
    assert "ignoring an ack (ack 500)" in result.stderr and "not signed" in result.stderr
    with EventStore(data, POST, read_only=True) as store:
        assert store.acked == 300
    status = run_posko(data, "status", "--json")
    assert json.loads(status.stdout)["acks_ignored"]["by_reason"] == {"unsigned": 1}
    assert "1 ack IGNORED (unsigned 1)" in run_posko(data, "status").stdout
    district()  # the district is back: 301-500 still reach it, exactly once
    again = run_posko(
        data, "sync", "--broker", broker.address, "--until-drained", "--timeout", "60",
        POSKO_MQTT_DISTRICT_KEYS=keys,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    with EventStore(data, POST, read_only=True) as store:
        assert_exactly_once(db_path, store)


def _signed(ack: Ack, signer: Signer = SIGNER, post: str = POST) -> bytes:
    return ack.signed_by(signer, post, NOW).encode()


FORGERIES: dict[str, tuple[Callable[[], bytes], str]] = {
    "range-unsigned": (
        lambda: json.dumps({"ack": 450, "first": 1, "last": 450}).encode(),
        "unsigned",
    ),
    "wrong-key": (lambda: _signed(Ack(450, 1, 450), signer=STRANGER), "unknown_key"),
    "other-post": (lambda: _signed(Ack(450, 1, 450), post="another-post"), "other_post"),
    "beyond-last-seq": (lambda: _signed(Ack(900, 801, 900)), "beyond_last_seq"),
    "bad-signature": (
        lambda: json.dumps(
            {**json.loads(_signed(Ack(300, 1, 300))), "ack": 450, "last": 450}
        ).encode(),
        "bad_signature",
    ),
}


@pytest.mark.broker
@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_forged_ack_is_ignored_counted_and_every_event_still_arrives(
    tmp_path: Path,
    broker: Mosquitto,
    district: Callable[..., District],
    db_path: Path,
    stack: ExitStack,
    name: str,
) -> None:
    make, reason = FORGERIES[name]
    backlog(tmp_path / "pi", 500)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    district()
    forge(broker, make())  # retained before the post connects: it is the first thing it sees
    sync = stack.enter_context(
        SyncWorker(store, options(broker.address, batch_events=100), backoff=FAST_BACKOFF)
    )
    assert sync.wait_drained(DRAIN_S), sync.last_error
    assert_exactly_once(db_path, store)  # 301-450 were not skipped, no gap left
    assert sync.acks.counts == {reason: 1}
    assert sync.status("online") and json.loads(sync.status())["acks_ignored"] == 1


@pytest.mark.broker
def test_forged_ack_key_rotation_with_two_pinned_keys(
    tmp_path: Path,
    broker: Mosquitto,
    district: Callable[..., District],
    db_path: Path,
    stack: ExitStack,
) -> None:
    backlog(tmp_path / "pi", 400)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    district(signer=NEXT_SIGNER)  # the district has moved to its new key
    old_only = SyncWorker(store, options(broker.address), backoff=FAST_BACKOFF).start()
    wait_for(lambda: old_only.acks.counts.get("unknown_key", 0) > 0, 20, "an ignored ack")
    assert not old_only.wait_drained(0.5) and store.acked == 0
    old_only.close()
    both = AckTrust((SIGNER.public, NEXT_SIGNER.public))
    sync = stack.enter_context(
        SyncWorker(store, options(broker.address, trust=both), backoff=FAST_BACKOFF)
    )
    assert sync.wait_drained(DRAIN_S), sync.last_error
    assert_exactly_once(db_path, store)


# -- section 2 of issue 9: lost ranges ---------------------------------------------------


@pytest.mark.broker
@pytest.mark.parametrize("version", [2, 3])
def test_forged_lost_range_to_the_end_of_time_is_refused(
    tmp_path: Path,
    broker: Mosquitto,
    district: Callable[..., District],
    db_path: Path,
    stack: ExitStack,
    version: int,
) -> None:
    district()
    hostile = codec.encode(Batch(POST, 1, MAX_SEQ, realistic(3)), version)
    forge(broker, hostile, topic=f"posko/v1/{POST}/events", retain=False)
    with SQLiteStorage(db_path, read_only=True) as db:
        wait_for(lambda: len(db.quarantined(POST)) == 1, 10, "the hostile batch quarantined")
        assert db.contiguous(POST) == 0 and db.lost(POST) == []
    backlog(tmp_path / "pi", 200)  # the real post is not wedged: its acks stay believable
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    sync = stack.enter_context(SyncWorker(store, options(broker.address), backoff=FAST_BACKOFF))
    assert sync.wait_drained(DRAIN_S), sync.last_error
    assert_exactly_once(db_path, store)
    assert sync.acks.total == 0


@pytest.mark.broker
def test_forged_acks_never_stop_a_legitimate_loss_from_being_acked_past(
    tmp_path: Path,
    broker: Mosquitto,
    district: Callable[..., District],
    db_path: Path,
    stack: ExitStack,
) -> None:
    data = tmp_path / "pi"
    backlog(data, 300)
    newest = sorted((data / "events").glob("*.jsonl"))[-1]
    with newest.open("ab") as f:  # a power cut while seq 305 was written: 301-305 are lost
        f.write(b'0badf00d {"post":"%s","seq":305,"time":"20' % POST.encode())
    store = stack.enter_context(EventStore(data, POST))
    for _ in range(5):
        store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced")
    district()
    forge(broker, json.dumps({"ack": 310}).encode())
    sync = stack.enter_context(SyncWorker(store, options(broker.address), backoff=FAST_BACKOFF))
    assert sync.wait_drained(DRAIN_S), sync.last_error
    assert_exactly_once(db_path, store)
    with SQLiteStorage(db_path, read_only=True) as db:
        assert db.lost(POST) == [(301, 305)]


# -- what the technician and the guard see ----------------------------------------------


@pytest.mark.slow
def test_forged_ack_sync_command_without_a_key_exits_1_with_one_line(tmp_path: Path) -> None:
    backlog(tmp_path / "pi", 10)
    result = run_posko(tmp_path / "pi", "sync", "--broker", "127.0.0.1:1", "--until-drained")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "posko: sync is off: no district key to check acks with; install the district's "
        "district.pub and list it in mqtt.district_keys (or set mqtt.insecure_acks = true "
        "for a demo)"
    ]


def test_forged_ack_run_without_a_key_keeps_the_station_and_says_why(
    config: Config, open_post: Callable[..., Post], stack: ExitStack
) -> None:
    post = open_post(cfg=config.replace(mqtt__broker="127.0.0.1:1"))
    runtime = stack.enter_context(Runtime(post.config, post=post, page=False).start())
    assert runtime.sync is None and runtime.sync_off is not None
    assert runtime.health().ok  # the station runs on
    screen = Screen(post)
    screen.services.sync = runtime.sync_state
    html = screen.text("/live/panel")
    assert "Pengiriman mati: kunci kabupaten belum dipasang" in html


def test_forged_ack_insecure_acks_warn_at_every_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EventStore(tmp_path / "pi", POST) as store:
        loose = options("127.0.0.1:1", trust=AckTrust(insecure=True))
        for _ in range(2):
            with caplog.at_level("WARNING", "sync.worker"), SyncWorker(store, loose):
                pass
    assert caplog.text.count("mqtt.insecure_acks is on") == 2


def test_forged_ack_guard_screen_counts_ignored_acks(open_post: Callable[..., Post]) -> None:
    screen = Screen(open_post())
    screen.services.sync = lambda: {"configured": True, "connected": True, "acks_ignored": 3}
    assert "3 tanda terima tidak sah diabaikan" in screen.text("/live/panel")


@pytest.mark.slow
def test_forged_ack_status_shows_nothing_when_all_is_well(tmp_path: Path) -> None:
    backlog(tmp_path / "pi", 5)
    text = run_posko(tmp_path / "pi", "status").stdout
    assert "IGNORED" not in text
    gate = AckGate(POST, TRUST, lambda: 5, tmp_path / "pi")
    gate.admit(Ack(3).encode())
    gate.admit(_signed(Ack(3), post="x-post"))
    report: dict[str, Any] = json.loads(run_posko(tmp_path / "pi", "status", "--json").stdout)
    assert report["acks_ignored"]["by_reason"] == {"unsigned": 1, "other_post": 1}
    assert report["acks_ignored"]["last"]["reason"] == "other_post"

"""Restore without loss: the district database's epoch, its signed acks, and the Pi that
rewinds and resends what a restored database lacks (docs/protocol.md, issue 13)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest

from district.backends import open_storage
from district.epoch import current
from district.receiver import Receiver
from district.server import District, district_link
from district.sqlite import SQLiteStorage
from edge.events import Kind
from edge.retention import cutoff, purge_synced_events
from edge.segments import Lost
from edge.store import EventStore
from sync import codec
from sync.batch import Batch
from sync.messages import Ack, status
from sync.options import split_address
from sync.worker import SyncWorker
from tests.support.keys import SIGNER, STRANGER
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import (
    FAST_BACKOFF,
    POST,
    assert_exactly_once,
    backlog,
    options,
    realistic,
)

DRAIN_S = 60.0
OLD, NEW = "a" * 32, "b" * 32
STATUS = f"posko/v1/{POST}/status"
EVENTS = f"posko/v1/{POST}/events"


def copy_db(source: Path, target: Path) -> None:
    """SQLite's online backup API, as a district's backup and its restore would use it."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def held_status(db_path: Path) -> dict[str, Any]:
    with SQLiteStorage(db_path, read_only=True) as db:
        rows = [r for r in db.posts() if r["post"] == POST]
        return rows[0]["status"] if rows and rows[0]["status"] else {}


# -- the Pi's watermark ------------------------------------------------------------------


def test_sync_epoch_rewind_is_durable_and_remembers_the_epoch_it_left(tmp_path: Path) -> None:
    with EventStore(tmp_path, POST) as store:
        for _ in range(5):
            store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced")
        store.acknowledge(5)
        store.adopt_epoch(OLD)
        assert store.rewind(2, NEW) == 5
        assert not store.acknowledge(2)  # the watermark moves up only by acks after that
    with EventStore(tmp_path, POST) as store:
        assert (store.acked, store.pending, store.epoch, store.epochs_left) == (2, 3, NEW, [OLD])


# -- the district's epoch ----------------------------------------------------------------


def test_sync_epoch_a_new_district_database_gets_one_and_keeps_it(tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "d.db") as db:
        epoch = current(db)
        assert len(epoch) == 32 and current(db) == epoch
    with SQLiteStorage(tmp_path / "d.db") as db:
        assert current(db) == epoch
    with SQLiteStorage(tmp_path / "other.db") as db:
        assert current(db) != epoch


def test_sync_epoch_a_status_beyond_the_database_renews_it_and_is_answered(
    tmp_path: Path,
) -> None:
    with SQLiteStorage(tmp_path / "d.db") as db:
        receiver = Receiver(db, signer=SIGNER)
        epoch = current(db)
        calm = status("online", acked=0, epoch=epoch)
        assert receiver.handle(STATUS, calm) is None  # nothing lost, nothing to say
        reply = receiver.handle(STATUS, status("online", acked=40, epoch=epoch))
        assert reply is not None and reply.retain
        ack = Ack.decode(reply.payload)
        assert (ack.ack, ack.post) == (0, POST) and ack.epoch == current(db) != epoch
        stale = receiver.handle(STATUS, status("online", acked=0, epoch=epoch))
        assert stale is not None and Ack.decode(stale.payload).epoch == current(db)


# -- end to end against a real Mosquitto -------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "district.db"


@pytest.fixture
def district(mosquitto: Mosquitto, db_path: Path, stack: ExitStack) -> Callable[[], District]:
    def start() -> District:
        link = district_link(("127.0.0.1", mosquitto.port))
        started = stack.enter_context(District(open_storage(db_path), link, signer=SIGNER))
        assert started.subscribed.wait(10)
        return started

    return start


@pytest.fixture
def synced(
    tmp_path: Path, broker: Mosquitto, stack: ExitStack
) -> Callable[[int], tuple[EventStore, SyncWorker]]:
    def start(events: int) -> tuple[EventStore, SyncWorker]:
        backlog(tmp_path / "pi", events)
        store = stack.enter_context(EventStore(tmp_path / "pi", POST))
        chosen = options(broker.address, batch_events=100, window=1, status_interval=0.3)
        return store, stack.enter_context(SyncWorker(store, chosen, backoff=FAST_BACKOFF))

    return start


@pytest.mark.broker
@pytest.mark.slow
def test_sync_epoch_a_restored_district_gets_back_everything_exactly_once(
    broker: Mosquitto,
    district: Callable[[], District],
    synced: Callable[[int], tuple[EventStore, SyncWorker]],
    db_path: Path,
    tmp_path: Path,
) -> None:
    first = district()
    store, sync = synced(1500)
    assert sync.wait_drained(DRAIN_S)
    old = store.epoch
    assert old is not None and old == current(first.storage)  # type: ignore[arg-type]
    copy_db(db_path, tmp_path / "backup.db")
    for _ in range(300):
        sync.notify(store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced"))
    assert sync.wait_drained(DRAIN_S)
    wait_for(lambda: held_status(db_path).get("acked") == store.last_seq, 10, "the status")
    first.close()
    copy_db(tmp_path / "backup.db", db_path)  # the disk died; last night's backup is back
    district()
    wait_for(lambda: store.epoch not in (None, old), 20, "the new epoch to reach the Pi")
    assert sync.wait_drained(DRAIN_S)
    assert_exactly_once(db_path, store)
    note = store.get(store.last_seq)
    assert note is not None and note["kind"] == Kind.NOTE
    assert note["data"]["district_epoch"] == {
        "from": 1800,
        "to": 1500,
        "epoch": store.epoch,
        "lost": 0,
    }
    with SQLiteStorage(db_path, read_only=True) as db:
        assert current(db) == store.epoch


@pytest.mark.broker
@pytest.mark.slow
def test_sync_epoch_a_forged_or_unsigned_new_epoch_changes_nothing(
    broker: Mosquitto,
    district: Callable[[], District],
    synced: Callable[[int], tuple[EventStore, SyncWorker]],
) -> None:
    district()
    store, sync = synced(500)
    assert sync.wait_drained(DRAIN_S)
    epoch, acked = store.epoch, store.acked
    host, port = split_address(broker.address)
    forged = Ack(0, epoch=NEW).signed_by(STRANGER, POST, "2026-11-27T03:04:05.123Z")
    for ack in (forged, Ack(0, post=POST, epoch=NEW)):
        publish.single(f"posko/v1/{POST}/ack", ack.encode(), qos=1, hostname=host, port=port)
    wait_for(lambda: sync.acks.total >= 2, 10, "both acks to be ignored")
    assert sync.acks.counts == {"unknown_key": 1, "unsigned": 1}
    assert (store.epoch, store.acked, store.pending) == (epoch, acked, 0)


def test_sync_epoch_a_post_on_older_software_gets_acks_it_can_verify(tmp_path: Path) -> None:
    """A district upgraded before its posts: a post whose status does not say it reads
    epochs gets version 2 acks (no epoch, the signed bytes it knows); the others get 3."""
    with SQLiteStorage(tmp_path / "d.db") as db:
        receiver = Receiver(db, signer=SIGNER)
        receiver.handle(STATUS, status("online", acked=0))  # older software: no ack_v
        old = receiver.handle(
            EVENTS, codec.encode(Batch.of(POST, [{**e, "post": POST} for e in realistic(3)]))
        )
        assert old is not None
        ack = Ack.decode(old.payload)
        assert (ack.v, ack.epoch) == (2, None) and ack.ack == 3
        assert ack.sig is not None and SIGNER.public.verify(ack.signed_bytes(), ack.sig)
        receiver.handle(STATUS, status("online", acked=3, ack_v=3))  # upgraded
        new = receiver.handle(
            EVENTS, codec.encode(Batch.of(POST, [{**e, "post": POST} for e in realistic(6)[3:]]))
        )
        assert new is not None
        ack = Ack.decode(new.payload)
        assert (ack.v, ack.epoch) == (3, current(db)) and ack.ack == 6


def append_day(store: EventStore, days_ago: int, count: int) -> list[int]:
    """`count` of the post's presses on a local day `days_ago` days before today."""
    today = datetime.now(store.zone).date()
    morning = datetime.combine(today - timedelta(days=days_ago), time(8), tzinfo=store.zone)
    return [
        store.append(Kind.OUT, moment=morning + timedelta(minutes=n), clock="synced")["seq"]
        for n in range(count)
    ]


@pytest.mark.broker
@pytest.mark.slow
def test_sync_epoch_what_the_pi_purged_since_the_backup_is_declared_lost_the_rest_resent(
    broker: Mosquitto,
    district: Callable[[], District],
    db_path: Path,
    tmp_path: Path,
    stack: ExitStack,
) -> None:
    first = district()
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    chosen = options(broker.address, batch_events=100, window=1, status_interval=0.3)
    sync = stack.enter_context(SyncWorker(store, chosen, backoff=FAST_BACKOFF))
    backed_up = append_day(store, 4, 50)
    sync.notify(store.get(store.last_seq))  # type: ignore[arg-type]
    assert sync.wait_drained(DRAIN_S)
    old = store.epoch
    copy_db(db_path, tmp_path / "backup.db")  # last night's backup: seqs 1-50
    purged = append_day(store, 3, 50)  # drained after the backup, then purged on the Pi
    kept = append_day(store, 2, 50) + append_day(store, 0, 10)  # today's closes the day before
    sync.notify(store.get(store.last_seq))  # type: ignore[arg-type]
    assert sync.wait_drained(DRAIN_S)
    wait_for(lambda: held_status(db_path).get("acked") == store.last_seq, 10, "the status")
    today = store.today(datetime.now(UTC))
    assert purge_synced_events(store, cutoff(today, 2)) == len(backed_up + purged)
    assert store.lost_between(purged[0], purged[-1]) == [Lost(purged[0], purged[-1], "purged")]
    first.close()
    copy_db(tmp_path / "backup.db", db_path)  # the disk died; the backup is back
    district()
    wait_for(lambda: store.epoch not in (None, old), 20, "the new epoch to reach the Pi")
    assert sync.wait_drained(DRAIN_S) and store.pending == 0
    still = [e["seq"] for e in store.since(0)]
    assert still == [*kept, store.last_seq]  # what the Pi holds: the kept days and its note
    with SQLiteStorage(db_path, read_only=True) as db:
        assert db.seqs(POST) == backed_up + still  # each once
        assert db.count() == len(backed_up + still)
        assert db.lost(POST) == [(purged[0], purged[-1])]  # declared, not waited for
        assert db.gaps(POST) == [] and db.contiguous(POST) == store.last_seq
        assert current(db) == store.epoch
    note = store.get(store.last_seq)
    assert note is not None and note["data"]["district_epoch"] == {
        "from": kept[-1],
        "to": backed_up[-1],
        "epoch": store.epoch,
        "lost": len(purged),
    }

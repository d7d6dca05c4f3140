"""Seqs a post lost, without a broker: the store records them with the reason, the outbox
declares exactly those, and the district refuses a batch whose range implies any others."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from edge.events import Kind
from edge.segments import Lost
from edge.store import EventStore
from sync import codec, codec_v1, codec_v2
from sync.batch import MAX_LOST_RANGES, MAX_LOST_SEQS, MAX_SEQ, Batch, PayloadError, check_lost
from sync.messages import Ack
from sync.outbox import Outbox
from tests.support.sync_helpers import POST, options, realistic

START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
EVENTS = f"posko/v1/{POST}/events"


def fill(store: EventStore, n: int) -> None:
    for _ in range(n):
        moment = START + timedelta(seconds=30 * store.next_seq)
        store.append(Kind.OUT, moment=moment, clock="synced")


def tear(store: EventStore, seq: int) -> None:
    """A cut while `seq` was being written to the newest journal (the store must be closed)."""
    newest = sorted(store.events_dir.glob("*.jsonl"))[-1]
    with newest.open("ab") as f:
        f.write(b'0badf00d {"post":"%s","seq":%d,"time":"20' % (POST.encode(), seq))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "pi"


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "district.db") as storage:
        yield storage


def ack_of(reply: object) -> Ack:
    assert reply is not None
    return Ack.decode(reply.payload)  # type: ignore[attr-defined]


# -- the store records what it lost ------------------------------------------------------


def test_sync_lost_store_records_a_torn_record_with_its_reason(data: Path) -> None:
    with EventStore(data, POST) as store:
        fill(store, 10)
    tear(store, 14)
    with EventStore(data, POST) as store:
        assert store.last_seq == 14
        assert store.lost == [Lost(11, 14, "torn")]
        fill(store, 2)
    with EventStore(data, POST, read_only=True) as again:  # durable, in the index
        assert again.lost == [Lost(11, 14, "torn")] and again.last_seq == 16


def test_sync_lost_store_records_purged_segments(data: Path) -> None:
    with EventStore(data, POST, segment_max=5) as store:
        fill(store, 12)  # segments 1-5, 6-10, 11-12
        store.acknowledge(12)
        gone = store.drop_synced("9999-12-31")
        assert [(s.first, s.last) for s in gone] == [(1, 5), (6, 10)]
        assert store.lost == [Lost(1, 10, "purged")]
        assert store.lost_between(4, 6) == [Lost(4, 6, "purged")]


def test_sync_lost_store_from_before_the_record_finds_its_holes(data: Path) -> None:
    with EventStore(data, POST, segment_max=5) as store:
        fill(store, 12)
    (data / "events" / sorted(p.name for p in (data / "events").glob("*.jsonl"))[1]).unlink()
    with EventStore(data, POST, segment_max=5) as store:
        assert store.lost == [Lost(6, 10, "missing")]  # a journal gone: said once, loudly


# -- the outbox declares exactly those ---------------------------------------------------


def test_sync_lost_outbox_never_declares_a_seq_the_store_did_not_record(
    data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EventStore(data, POST) as store:
        fill(store, 10)
        store.last_seq = 14  # a bug that skips seqs: 11-14 are missing but not recorded lost
        fill(store, 3)
        box = Outbox(store, options("127.0.0.1:1883", batch_events=1000))
        with caplog.at_level(logging.ERROR, "sync.outbox"):
            (flight,) = box.due()
            assert box.due() == []
        batch = codec.decode(flight.payload)
        assert (batch.first, batch.last, batch.declared) == (1, 10, ())
        assert "seq 11 is missing" in caplog.text
        assert caplog.text.count("seq 11 is missing") == 1


def test_sync_lost_outbox_spreads_a_long_loss_over_batches(data: Path, db: SQLiteStorage) -> None:
    with EventStore(data, POST) as store:
        fill(store, 5)
    tear(store, 5 + MAX_LOST_SEQS + 500)
    with EventStore(data, POST) as store:
        fill(store, 3)
        box = Outbox(store, options("127.0.0.1:1883", window=8))
        flights = box.due()
        batches = [codec.decode(f.payload) for f in flights]
        for batch in batches:
            check_lost(batch)  # what the district checks
            assert sum(r.size for r in batch.declared) <= MAX_LOST_SEQS
        assert [(b.first, b.last) for b in batches] == [
            (1, 5 + MAX_LOST_SEQS),
            (6 + MAX_LOST_SEQS, store.last_seq),
        ]
        receiver = Receiver(db)
        acks = [ack_of(receiver.handle(EVENTS, f.payload)).ack for f in flights]
        assert acks[-1] == store.last_seq  # acked past the loss


def test_sync_lost_outbox_lists_at_most_the_allowed_ranges(data: Path) -> None:
    with EventStore(data, POST) as store:
        fill(store, 1)
        for _ in range(MAX_LOST_RANGES + 10):  # one lost seq after every event
            store.last_seq += 1
            store.lost.append(Lost(store.last_seq, store.last_seq, "corrupt"))
            fill(store, 1)
        box = Outbox(store, options("127.0.0.1:1883", window=4))
        batches = [codec.decode(f.payload) for f in box.due()]
    assert len(batches[0].declared) == MAX_LOST_RANGES
    for batch in batches:
        check_lost(batch)
    assert batches[1].first == batches[0].last + 1


# -- the district refuses what is not listed ---------------------------------------------


def hostile(version: int, declared: tuple[Lost, ...] = ()) -> bytes:
    """Three events and a range to the end of time."""
    batch = Batch(POST, 1, MAX_SEQ, realistic(3), declared)
    return codec.encode(batch, version)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_sync_lost_receiver_refuses_a_range_to_the_end_of_time(
    db: SQLiteStorage, version: int
) -> None:
    receiver = Receiver(db)
    ack = ack_of(receiver.handle(EVENTS, hostile(version)))
    assert ack.ack == 0 and ack.error is not None and "implies lost seqs" in ack.error
    assert db.contiguous(POST) == 0 and db.count() == 0
    assert receiver.stats.quarantined == 1 and len(db.quarantined(POST)) == 1


def test_sync_lost_receiver_caps_what_one_batch_may_declare(db: SQLiteStorage) -> None:
    receiver = Receiver(db)
    declared = (Lost(4, MAX_SEQ, "purged"),)
    ack = ack_of(receiver.handle(EVENTS, hostile(3, declared)))
    assert ack.error is not None and f"max {MAX_LOST_SEQS}" in ack.error
    assert db.contiguous(POST) == 0 and db.lost(POST) == []


def test_sync_lost_receiver_takes_a_listed_loss_and_acks_past_it(db: SQLiteStorage) -> None:
    events = [e for e in realistic(20) if not 8 <= e["seq"] <= 11]
    declared = (Lost(8, 11, "corrupt"), Lost(21, 25, "torn"))
    ack = ack_of(Receiver(db).handle(EVENTS, codec.encode(Batch(POST, 1, 25, events, declared))))
    assert (ack.ack, ack.error) == (25, None)
    assert db.lost(POST) == [(8, 11), (21, 25)] and db.gaps(POST) == []


def test_sync_lost_old_versions_still_read_when_nothing_is_implied(db: SQLiteStorage) -> None:
    receiver = Receiver(db)
    events = realistic(20)
    for version, part in ((codec_v1.VERSION, events[:10]), (codec_v2.VERSION, events[10:])):
        assert (
            ack_of(receiver.handle(EVENTS, codec.encode(Batch.of(POST, part), version))).error
            is None
        )
    assert db.contiguous(POST) == 20


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ((Lost(3, 3, "corrupt"),), "lists"),  # a seq the batch carries
        ((Lost(6, 7, "corrupt"), Lost(5, 5, "torn")), "out of order"),
        ((Lost(5, 5, "corrupt"),), "implies lost seqs 5-7"),  # 6-7 unlisted
        ((Lost(5, 7, "eaten by goats"),), "unknown"),
        (tuple(Lost(5, 5, "torn") for _ in range(MAX_LOST_RANGES + 1)), "ranges listed"),
    ],
    ids=["carried", "order", "partial", "reason", "too-many"],
)
def test_sync_lost_check_refuses_lists_that_do_not_match_the_range(
    declared: tuple[Lost, ...], message: str
) -> None:
    batch = Batch(POST, 1, 7, realistic(4), declared)
    with pytest.raises(PayloadError, match=message):
        check_lost(batch)


def test_sync_lost_version_3_refuses_a_malformed_lost_list() -> None:
    import json
    import struct
    import zlib

    for lost in ([[1, 2]], [[2, 1, "torn"]], [[1, 2, 3]], "x", [[True, 2, "torn"]]):
        head = json.dumps({"body": 2, "lost": lost}).encode()
        inner = codec_v2.encode(Batch(POST, 1, 3, []))
        payload = b"Po\x03" + zlib.compress(struct.pack("<I", len(head)) + head + inner)
        with pytest.raises(PayloadError):
            codec.decode(payload)

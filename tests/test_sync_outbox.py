"""The Pi's outbox without a broker: what it sends, and what an ack changes (or not)."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge.events import Kind, Screening, Who
from edge.segments import Lost
from edge.store import EventStore
from sync import codec
from sync.messages import Ack
from sync.outbox import GAP_GRACE_S, Outbox
from tests.support.sync_helpers import POST, options

START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore(tmp_path / "pi", POST) as s:
        yield s


def fill(store: EventStore, n: int, **fields: Any) -> None:
    for i in range(n):
        store.append(
            Kind.IN,
            moment=START + timedelta(seconds=37 * store.next_seq + i),
            clock="synced",
            who=Who.RESIDENT,
            temp_c=36.5 + (i % 7) / 10,
            temp_raw_c=36.0 + (i % 5) / 10,
            screening=Screening.NORMAL,
            **fields,
        )


@pytest.fixture
def outbox(store: EventStore) -> Callable[..., Outbox]:
    def make(**changes: Any) -> Outbox:
        return Outbox(store, options("127.0.0.1:1883", **changes), now=clock)

    clock = Clock()
    make.clock = clock  # type: ignore[attr-defined]
    return make


def sent_seqs(flights: list[Any]) -> list[tuple[int, int]]:
    return [(f.first, f.last) for f in flights]


def test_sync_outbox_cuts_batches_by_count_and_fills_the_window(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 25)
    box = outbox(batch_events=10, window=2)
    assert sent_seqs(box.due()) == [(1, 10), (11, 20)]
    assert box.due() == []  # window full, nothing timed out
    box.acknowledge(Ack(10, 1, 10))
    assert sent_seqs(box.due()) == [(21, 25)]


def test_sync_outbox_cuts_batches_by_bytes(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 10)
    for i in range(40):  # notes whose text does not compress away
        store.append(Kind.NOTE, moment=START, data={"text": random.Random(i).randbytes(150).hex()})
    box = outbox(batch_events=1000, batch_bytes=1024, window=32)
    flights = box.due()
    assert len(flights) > 2
    assert all(len(f.payload) <= 1024 for f in flights if f.events > 1)
    assert flights[0].first == 1 and flights[-1].last == store.last_seq
    assert all(a.last + 1 == b.first for a, b in itertools.pairwise(flights))


def test_sync_outbox_moves_the_watermark_only_on_an_ack(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 30)
    box = outbox(batch_events=10, window=3)
    box.due()
    assert store.acked == 0  # published (and PUBACKed, for all it knows) is not stored
    assert box.acknowledge(Ack(20, 11, 20))
    assert store.acked == 20 and store.acked_at is not None
    assert not box.acknowledge(Ack(10, 1, 10))  # an older ack never moves it back
    assert store.acked == 20
    assert EventStore(store.data_dir, POST, read_only=True).acked == 20  # durable


def test_sync_outbox_ignores_an_ack_beyond_the_last_event(
    store: EventStore, outbox: Callable[..., Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    fill(store, 5)
    box = outbox()
    box.due()
    with caplog.at_level(logging.WARNING):
        assert not box.acknowledge(Ack(99, 90, 99))
    assert store.acked == 0
    assert "acknowledges seq 99" in caplog.text


def test_sync_outbox_resends_after_the_timeout_then_backs_off(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 5)
    box = outbox(ack_timeout=10.0)
    clock = outbox.clock  # type: ignore[attr-defined]
    first = box.due()
    clock.t += 9.9
    assert box.due() == []
    clock.t += 0.2
    again = box.due()
    assert [f.payload for f in again] == [f.payload for f in first]
    clock.t += 19.9
    assert box.due() == []  # the second wait is twice as long
    clock.t += 0.2
    assert len(box.due()) == 1
    assert box.stats.resent == 2


def test_sync_outbox_resends_soon_what_the_district_lacks_behind_a_later_batch(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 30)
    box = outbox(batch_events=10, window=3, ack_timeout=60.0)
    clock = outbox.clock  # type: ignore[attr-defined]
    box.due()
    box.acknowledge(Ack(10, 1, 10))
    box.acknowledge(Ack(10, 21, 30))  # the district holds 21-30 but not 11-20
    clock.t += GAP_GRACE_S + 0.01
    assert sent_seqs(box.due()) == [(11, 20)]
    box.acknowledge(Ack(30, 11, 20))
    assert store.acked == 30 and box.flights == []


def test_sync_outbox_starts_again_at_the_watermark_on_a_new_connection(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 30)
    box = outbox(batch_events=10, window=3)
    box.due()
    box.acknowledge(Ack(10, 1, 10))
    box.restart()
    assert sent_seqs(box.due()) == [(11, 20), (21, 30)]


def test_sync_outbox_batches_cover_seqs_the_store_lost(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 10)
    store.close()
    (segment,) = store.events_dir.glob("*.jsonl")
    with segment.open("ab") as f:  # a cut while seq 14 was written: 11-14 are gone
        f.write(b'0badf00d {"post":"bench","seq":14,"time":"20')
    again = EventStore(store.data_dir, POST)
    fill(again, 3)
    box = Outbox(again, options("127.0.0.1:1883", batch_events=1000))
    (flight,) = box.due()
    batch = codec.decode(flight.payload)
    assert (batch.first, batch.last) == (1, 17)
    assert batch.lost() == [(11, 14)]
    assert batch.declared == (Lost(11, 14, "torn"),)  # listed, with the store's reason
    again.close()


def test_sync_outbox_drops_the_nik_unless_asked(
    store: EventStore, outbox: Callable[..., Outbox]
) -> None:
    fill(store, 1)
    store.append(
        Kind.VISITOR, moment=START, ref=1, data={"name": "Budi", "nik": "3201234567890001"}
    )
    (flight,) = outbox().due()
    assert codec.decode(flight.payload).events[1]["data"] == {"name": "Budi"}
    (flight,) = outbox(send_nik=True).due()
    assert codec.decode(flight.payload).events[1]["data"]["nik"] == "3201234567890001"
    kept = store.get(2)
    assert kept is not None and kept["data"]["nik"] == "3201234567890001"  # the Pi keeps it

"""The district receiver without a broker: exactly once, gaps, and quarantine of bad input."""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from district.storage import Storage
from edge.events import FIELDS, Kind, Screening
from edge.segments import Lost
from sync import codec
from sync.batch import Batch
from sync.messages import Ack, status
from tests.support.sync_helpers import realistic

EVENTS = "posko/v1/bench/events"


@pytest.fixture
def receiver(db: Storage) -> Receiver:
    return Receiver(db, max_payload=64 * 1024)


def batches(events: list[dict[str, Any]], size: int) -> list[bytes]:
    return [
        codec.encode(Batch.of("bench", events[i : i + size])) for i in range(0, len(events), size)
    ]


def stored(db: SQLiteStorage) -> list[tuple[Any, ...]]:
    return db.conn.execute(
        "SELECT post, seq, time, kind, who, temp_c, temp_raw_c, screening,"
        " fault, ref, photo, data FROM events ORDER BY post, seq"
    ).fetchall()


def ack_of(reply: Any) -> Ack:
    """The ack in a reply (a post that never said it reads epochs gets none: a version 2
    ack; tests/test_sync_epoch.py has the others)."""
    assert reply is not None and reply.topic == "posko/v1/bench/ack"
    ack = Ack.decode(reply.payload)
    assert ack.epoch is None
    return ack


def test_district_stores_a_batch_and_acks_after_the_commit(receiver: Receiver, db: Storage) -> None:
    events = realistic(300)
    reply = receiver.handle(EVENTS, batches(events, 300)[0])
    assert ack_of(reply) == Ack(300, 1, 300)
    assert list(db.events()) == events


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(order=st.permutations(range(6)), repeats=st.lists(st.integers(0, 5), max_size=6))
@pytest.mark.slow
def test_district_duplicate_replayed_and_out_of_order_batches_change_nothing(
    tmp_path_factory: pytest.TempPathFactory, order: list[int], repeats: list[int]
) -> None:
    events = realistic(600, seed=5)
    payloads = batches(events, 100)
    with SQLiteStorage(tmp_path_factory.mktemp("d") / "district.db") as db:
        receiver = Receiver(db)
        acks = [ack_of(receiver.handle(EVENTS, payloads[i])).ack for i in [*order, *repeats]]
        assert acks == sorted(acks)  # the cumulative ack never goes back
        assert acks[-1] == 600 and db.gaps("bench") == []
        assert list(db.events()) == events
        assert receiver.stats.duplicates == 100 * len(repeats)


def test_district_tracks_gaps_until_they_fill(receiver: Receiver, db: Storage) -> None:
    payloads = batches(realistic(40), 10)
    assert ack_of(receiver.handle(EVENTS, payloads[0])).ack == 10
    assert ack_of(receiver.handle(EVENTS, payloads[2])) == Ack(10, 21, 30)
    assert db.gaps("bench") == [(11, 20)]
    assert ack_of(receiver.handle(EVENTS, payloads[1])).ack == 30
    assert db.gaps("bench") == [] and db.contiguous("bench") == 30


def test_district_seqs_lost_on_the_pi_do_not_stall_the_ack(receiver: Receiver, db: Storage) -> None:
    events = realistic(20)
    kept = [e for e in events if not 8 <= e["seq"] <= 11]
    declared = (Lost(8, 11, "corrupt"), Lost(21, 25, "torn"))  # what the Pi's store recorded
    payload = codec.encode(Batch("bench", 1, 25, kept, declared))
    assert ack_of(receiver.handle(EVENTS, payload)).ack == 25
    assert db.lost("bench") == [(8, 11), (21, 25)]
    assert db.gaps("bench") == []


def test_district_alerts_are_stored_but_not_acknowledged(receiver: Receiver, db: Storage) -> None:
    events = realistic(10)
    alert = codec.encode(Batch.of("bench", [events[6]]))
    assert receiver.handle("posko/v1/bench/alert", alert) is None
    assert [e["seq"] for e in db.events(post="bench")] == [7]
    assert db.posts()[0]["alerts"] == 1 and db.posts()[0]["last_alert"] == 7
    assert ack_of(receiver.handle(EVENTS, batches(events, 10)[0])).ack == 10


def test_district_records_status_and_last_will(receiver: Receiver, db: Storage) -> None:
    receiver.handle("posko/v1/bench/status", status("online", pending=12, clock="synced"))
    (post,) = db.posts()
    assert (post["state"], post["status"]["pending"]) == ("online", 12)
    receiver.handle("posko/v1/bench/status", status("offline"))
    assert db.posts()[0]["state"] == "offline"


def test_district_withholds_the_ack_when_the_storage_fails(
    sqlite_db: SQLiteStorage, tmp_path: Path
) -> None:
    db = sqlite_db  # a read-only SQLite file fails every write
    with SQLiteStorage(tmp_path / "district.db", read_only=True) as read_only:
        receiver = Receiver(read_only)  # every write fails, as on a full or broken disk
        assert receiver.handle(EVENTS, good()) is None  # no ack: the post sends it again
    assert (receiver.stats.db_errors, receiver.stats.quarantined) == (1, 0)
    assert db.count() == 0


# -- quarantine --------------------------------------------------------------------------


def good() -> bytes:
    return batches(realistic(50), 50)[0]


def deflated(version: int, body: bytes) -> bytes:
    return codec.MAGIC + bytes([version]) + zlib.compress(body)


def v1(events: list[dict[str, Any]], **frame: Any) -> bytes:
    body = {"post": "bench", "first": 1, "last": len(events) or 1, "events": events, **frame}
    return deflated(1, json.dumps(body).encode())


def bad_event(**change: Any) -> bytes:
    events = realistic(5)
    events[2] = {**events[2], **change}
    return v1(events)


BAD = {
    "malformed": (EVENTS, b"\x00\x01garbage"),
    "oversized": (EVENTS, codec.MAGIC + b"\x02" + bytes(70_000)),
    "wrong version": (EVENTS, deflated(99, b"{}")),
    "truncated": (EVENTS, good()[:-9]),
    "trailing bytes": (EVENTS, good() + b"x"),
    "deflate bomb": (EVENTS, deflated(1, b" " * (codec.MAX_BODY + 10))),
    "wrong post for the topic": ("posko/v1/other/events", good()),
    "not a posko topic": ("posko/v1/bench/events/extra", good()),
    "bad post id in the topic": ("posko/v1/Bad Post/events", good()),
    "unknown kind": (EVENTS, bad_event(kind="party")),
    "temperature out of range": (EVENTS, bad_event(temp_c=99.5)),
    "temperature not a number": (EVENTS, bad_event(temp_c="36.6")),
    "seq not an int": (EVENTS, bad_event(seq=3.0)),
    "ref not earlier": (EVENTS, bad_event(ref=3)),
    "bad time": (EVENTS, bad_event(time="yesterday")),
    "unknown field": (EVENTS, bad_event(nik_plain="3201")),
    "another post inside": (EVENTS, bad_event(post="other")),
    "seqs out of order": (EVENTS, v1(list(reversed(realistic(3))))),
    "range too small": (EVENTS, v1(realistic(3), last=2)),
    "status not json": ("posko/v1/bench/status", b"online"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_district_quarantines_bad_payloads_and_keeps_working(
    name: str, receiver: Receiver, db: Storage
) -> None:
    topic, payload = BAD[name]
    reply = receiver.handle(topic, payload)
    assert db.count() == 0  # never half a batch
    (row,) = db.quarantined()
    assert row["topic"] == topic and row["reason"]
    assert receiver.stats.quarantined == 1
    if reply is not None:  # the post is told why, without moving its watermark
        assert Ack.decode(reply.payload).error == row["reason"]
        assert not reply.retain
    assert ack_of(receiver.handle(EVENTS, good())).ack == 50


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(payload=st.binary(max_size=2000))
def test_district_quarantines_arbitrary_bytes(
    receiver: Receiver, db: Storage, payload: bytes
) -> None:
    before = receiver.stats.quarantined
    receiver.handle(EVENTS, payload)
    assert receiver.stats.quarantined == before + 1
    assert db.count() == 0
    assert not db.quarantined()[-1]["reason"].startswith("unexpected")


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
@pytest.mark.slow
def test_district_quarantines_damaged_batches_or_stores_them_exactly(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    events = realistic(30, seed=9)
    payload = bytearray(codec.encode(Batch.of("bench", events)))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(payload) - 1))
        payload[position] = data.draw(st.integers(0, 255))
    with SQLiteStorage(tmp_path_factory.mktemp("d") / "district.db") as db:
        receiver = Receiver(db)
        receiver.handle(EVENTS, bytes(payload))
        assert list(db.events()) in ([], events)
        assert (db.count() == 0) == (receiver.stats.quarantined == 1)
        assert not any(q["reason"].startswith("unexpected") for q in db.quarantined())


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**6)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["in", "visitor", "normal", "synced", "2026-11-27T01:02:03.004Z"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


def acceptable(field: str, value: Any) -> bool:
    """An independent statement of what the district accepts for the 4th of 4 events."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    word = isinstance(value, str) and re.fullmatch(r"[\w.:-]{1,64}", value) is not None
    rules = {
        "post": value == "bench",
        "seq": value == 4 and type(value) is int,
        "time": isinstance(value, str)
        and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value) is not None
        and "2020-01-01" <= value <= "2099-12-31T23:59:59.999Z",
        "clock": word,
        "kind": value in [k.value for k in Kind],
        "who": value is None or value in ["resident", "visitor"],
        "temp_c": value is None or (number and 0 <= value <= 60),
        "temp_raw_c": value is None or (number and -273.15 <= value <= 1000),
        "screening": value is None or value in [s.value for s in Screening],
        "fault": value is None or word,
        "ref": value is None or (type(value) is int and 1 <= value <= 3),
        "photo": value is None or value is True,
        "data": isinstance(value, dict) and finite(value),
    }
    return rules[field]


def finite(value: Any) -> bool:
    """No NaN or Infinity anywhere inside: they are not JSON."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict | list):
        return all(finite(v) for v in (value.values() if isinstance(value, dict) else value))
    return True


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(FIELDS),
    value=json_values,
)
@pytest.mark.slow
def test_district_checks_the_type_and_range_of_every_field(
    sqlite_db: SQLiteStorage, field: str, value: Any
) -> None:
    db, receiver = sqlite_db, Receiver(sqlite_db, max_payload=64 * 1024)  # tables emptied by SQL
    events = realistic(4, seed=2)
    events[3] = {**events[3], field: value}
    before = receiver.stats.quarantined
    reply = receiver.handle(EVENTS, v1(events))
    if acceptable(field, value):
        assert db.count() == 4 and ack_of(reply).error is None
        for table in ("events", "posts", "lost"):
            db.conn.execute(f"DELETE FROM {table}")
    else:
        assert db.count() == 0 and receiver.stats.quarantined == before + 1
        assert not db.quarantined()[-1]["reason"].startswith("unexpected")

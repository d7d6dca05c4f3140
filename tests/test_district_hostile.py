"""The receiver against a hostile post (issue 9), without a broker: decoding that costs a
bounded amount, the events' time window, NaN and lone surrogates, log lines that cannot be
forged, a quarantine that stays small, and an intake that serves every post in turn."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bench.payloads import bombs, deflated, v1_body
from district.board import board
from district.intake import Intake, IntakeLimits
from district.receiver import Receiver, Refusal, Reply
from district.registry import Registry
from district.sqlite import SQLiteStorage
from district.storage import QuarantineLimits
from sync import bounded, codec
from sync.batch import Batch, PayloadError
from sync.messages import Ack
from sync.schema import check_event, check_frame
from tests.support.sync_helpers import realistic

EVENTS = "posko/v1/bench/events"
MIB = 1 << 20


@pytest.fixture
def db(tmp_path: Path) -> Iterator[SQLiteStorage]:
    with SQLiteStorage(tmp_path / "district.db") as d:
        yield d


@pytest.fixture
def receiver(db: SQLiteStorage) -> Receiver:
    return Receiver(db)


@pytest.fixture(scope="module")
def hostile() -> dict[str, bytes]:
    return bombs()


def reason_of(work: Any) -> str:
    assert isinstance(work, Refusal), f"accepted: {work!r}"
    return work.rejected.reason


def good(n: int = 5, version: int = codec.CURRENT, **change: Any) -> bytes:
    events = realistic(n)
    events[-1] = {**events[-1], **change}
    return codec.encode(Batch.of("bench", events), version)


# -- amplification ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(bombs()))
def test_district_refuses_a_decoding_bomb_within_64_mib(
    name: str, hostile: dict[str, bytes], receiver: Receiver, db: SQLiteStorage
) -> None:
    tracemalloc.start()
    try:
        work = receiver.examine(EVENTS, hostile[name])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    reason = reason_of(work)
    assert not reason.startswith("unexpected"), reason
    assert peak < 64 * MIB, f"{name}: {peak / MIB:.0f} MiB"
    receiver.store([work])
    assert db.count() == 0


@pytest.mark.slow  # a CPU time: measured alone, not beside the unit layer's other workers
def test_district_refuses_every_decoding_bomb_within_100_ms(
    hostile: dict[str, bytes], receiver: Receiver
) -> None:
    honest = codec.encode(Batch.of("bench", realistic(10_000)), 1)
    honest_ms = min(cpu_ms(receiver, honest) for _ in range(3))  # about 60 ms, quiet
    costs = {name: min(cpu_ms(receiver, p) for _ in range(5)) for name, p in hostile.items()}
    print(f"largest honest batch {honest_ms:.0f} ms; bombs (ms): ", end="")
    print(", ".join(f"{n} {c:.0f}" for n, c in sorted(costs.items(), key=lambda kv: -kv[1])))
    # 100 ms on a quiet machine; on a busy one, no more than half again the cost of the
    # largest honest batch measured alongside.
    budget = max(100, 1.5 * honest_ms)
    assert {n: round(c) for n, c in costs.items() if c >= budget} == {}


def cpu_ms(receiver: Receiver, payload: bytes) -> float:
    started = time.thread_time()
    receiver.examine(EVENTS, payload)
    return (time.thread_time() - started) * 1000


@pytest.mark.slow
def test_district_bombs_at_the_caps_reach_the_json_reader() -> None:
    """The "-at-cap" bombs are as large as the caps let through: they test the worst case."""
    for name, payload in bombs().items():
        if name.endswith("-at-cap"):
            body = zlib.decompress(payload[3:])
            assert bounded.values_in(body) <= bounded.MAX_JSON_VALUES, name
            assert len(body) <= bounded.MAX_JSON_BYTES, name


@pytest.mark.parametrize("version", sorted(codec.ENCODERS))
def test_district_bounds_a_body_by_the_events_it_claims(version: int) -> None:
    events = realistic(3)
    payload = codec.encode(Batch.of("bench", events), version)
    body = zlib.decompress(payload[3:])
    assert codec.LIMITS[version](body) < 2 * bounded.BASE_BYTES  # 3 events claimed
    padded = deflated(1, v1_body("bench", 1, 3, b"[]," * 40_000 + b"[]"))
    with pytest.raises(PayloadError, match="inflates beyond"):
        codec.decode(padded)


@pytest.mark.slow
def test_district_decodes_an_honest_batch_of_the_largest_size() -> None:
    events = realistic(10_000)
    for version in sorted(codec.ENCODERS):
        batch = Batch.of("bench", events)
        assert codec.decode(codec.encode(batch, version)) == batch


def test_district_refuses_integers_too_long_to_parse_cheaply() -> None:
    payload = good(data={"n": 10**150})
    with pytest.raises(PayloadError, match="digits"):
        codec.decode(payload)


# -- the time an event may carry -------------------------------------------------------------


@pytest.mark.parametrize("version", sorted(codec.ENCODERS))
@pytest.mark.parametrize(
    ("time_text", "accepted"),
    [
        ("1970-01-01T00:00:00.000Z", False),
        ("2019-12-31T23:59:59.999Z", False),
        ("2020-01-01T00:00:00.000Z", True),
        ("2099-12-31T23:59:59.999Z", True),
        ("2100-01-01T00:00:00.000Z", False),
        ("9999-12-31T23:59:59.999Z", False),
    ],
)
def test_district_accepts_event_times_from_2020_to_2099_only(
    version: int, time_text: str, accepted: bool, receiver: Receiver, db: SQLiteStorage
) -> None:
    reply = receiver.handle(EVENTS, good(version=version, time=time_text))
    assert reply is not None
    if accepted:
        assert Ack.decode(reply.payload).error is None
        assert time_text in [e["time"] for e in db.events()]
    else:
        assert "outside 2020-01-01..2099-12-31" in str(Ack.decode(reply.payload).error)
        assert list(db.events()) == []  # an export never meets it


# -- NaN, Infinity and lone surrogates -----------------------------------------------------


@pytest.mark.parametrize("version", sorted(codec.ENCODERS))
@pytest.mark.parametrize(
    "data",
    [
        {"x": float("nan")},
        {"x": float("inf")},
        {"x": [{"deep": float("-inf")}]},
    ],
)
def test_district_refuses_nan_and_infinity_inside_data(
    version: int, data: dict[str, Any], receiver: Receiver, db: SQLiteStorage
) -> None:
    reason = reason_of(receiver.examine(EVENTS, good(version=version, kind="note", data=data)))
    assert "not a JSON number" in reason
    assert db.count() == 0


def test_district_refuses_a_number_that_overflows_to_infinity(receiver: Receiver) -> None:
    event = json.dumps({**realistic(1)[0], "kind": "note", "data": {"x": 1}}).encode()
    body = v1_body("bench", 1, 1, event.replace(b'"x": 1', b'"x": 1e999'))
    reason = reason_of(receiver.examine(EVENTS, deflated(1, body)))
    assert "inf" in reason and "not a JSON number" in reason


@pytest.mark.parametrize(
    "field",
    ["data", "data-key", "kind", "who", "clock", "fault", "screening", "time", "post", "extra"],
)
def test_district_classifies_a_lone_surrogate_as_what_it_is(
    field: str, receiver: Receiver, db: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    event = {**realistic(1)[0], "kind": "note"}
    marker = "SURROGATE"
    if field == "data":
        event["data"] = {"name": marker}
    elif field == "data-key":
        event["data"] = {marker: "x"}
    else:
        event[field] = marker
    text = json.dumps(event).replace(marker, "\\ud800").encode()  # an escape JSON allows
    with caplog.at_level(logging.WARNING):
        work = receiver.examine(EVENTS, deflated(1, v1_body("bench", 1, 1, text)))
        receiver.store([work])
    reason = reason_of(work)
    assert not reason.startswith("unexpected"), reason
    assert "Traceback" not in caplog.text and db.count() == 0
    assert reason.isprintable()
    (row,) = db.quarantined()
    assert row["reason"] == reason


# -- log hygiene -----------------------------------------------------------------------------

FORGED = "x\nWARNING district.receiver: forged line\x00\r\u2028\ud800"


@pytest.mark.parametrize(
    "check",
    [
        lambda: check_frame(FORGED, 1, 1, 0),
        lambda: check_frame("bench", FORGED, 1, 0),
        lambda: check_frame("bench", 1, FORGED, 0),
        *(
            (lambda f=f: check_event({**realistic(2)[1], f: FORGED}, "bench"))
            for f in ("seq", "ref", "time", "kind", "who", "screening", "fault", "clock", "photo")
        ),
        lambda: check_event({**realistic(1)[0], FORGED: 1}, "bench"),
        lambda: check_event({**realistic(1)[0], "temp_c": FORGED}, "bench"),
    ],
)
def test_district_reasons_quote_what_a_batch_says(check: Any) -> None:
    with pytest.raises(PayloadError) as refused:
        check()
    assert refused.value.reason.isprintable(), refused.value.reason


def test_district_log_lines_cannot_be_forged(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    bad_kind = json.dumps({**realistic(1)[0], "kind": FORGED}).encode()
    with caplog.at_level(logging.DEBUG):
        receiver.handle("posko/v1/bench\nWARNING forged/events\x00", b"junk")
        receiver.handle(EVENTS, deflated(1, v1_body("bench", 1, 1, bad_kind)))
        receiver.handle("posko/v1/other/events", good())  # names another post
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("district")]
    assert len(lines) == 3
    for line in lines:
        assert line.isprintable(), line


def test_district_logs_a_flood_of_refusals_once(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="district"):
        receiver.store([receiver.examine(EVENTS, b"junk %d" % i) for i in range(200)])
        receiver.handle("posko/v1/other/events", b"junk")
    assert receiver.stats.quarantined == 201
    assert [r.getMessage().split(" on ")[1][:22] for r in caplog.records] == [
        "posko/v1/bench/events ",
        "posko/v1/other/events ",
    ]


# -- quarantine ------------------------------------------------------------------------------


def test_district_quarantine_of_a_flood_stays_small_and_counts_everything(
    tmp_path: Path, receiver: Receiver, db: SQLiteStorage
) -> None:
    junk = codec.MAGIC + b"\x02" + bytes(range(256)) * 256  # 64 KiB that does not inflate
    for _ in range(300):
        receiver.handle(EVENTS, junk)
    rows = db.quarantined()
    assert 1 <= len(rows) <= 10 and all(r["size"] == len(junk) for r in rows)  # one a second
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert (tmp_path / "district.db").stat().st_size < 1 * MIB  # 300 × 64 KiB before
    assert db.quarantine_counts() == {"bench": 300}
    report = board(db, "2026-11-27", ZoneInfo("Asia/Jakarta"), Registry())  # the page's
    assert report["rejected_total"] == 300


def test_district_quarantine_keeps_the_newest_rows_of_each_post_cut_short(
    db: SQLiteStorage,
) -> None:
    receiver = Receiver(db, quarantine=QuarantineLimits(rows=20, every_s=0))
    junk = codec.MAGIC + b"\x02" + bytes(range(256)) * 256
    for i in range(150):
        receiver.handle(EVENTS, junk[:-1] + bytes([i]))
    rows = db.quarantined()
    assert len(rows) == 20
    kept = db.conn.execute("SELECT SUM(length(payload)), MIN(payload) FROM quarantine").fetchone()
    assert kept[0] == 20 * 16 * 1024  # a prefix of each
    newest = db.conn.execute("SELECT size FROM quarantine ORDER BY id DESC").fetchone()
    assert newest == (len(junk),) and db.quarantine_counts() == {"bench": 150}


def test_district_quarantine_caps_every_post_and_all_of_them(db: SQLiteStorage) -> None:
    receiver = Receiver(db, quarantine=QuarantineLimits(rows=10, rows_total=25, every_s=0))
    works = [receiver.examine(f"posko/v1/post-{i % 4}/events", b"junk %d" % i) for i in range(100)]
    receiver.store(works)
    rows = db.quarantined()
    assert len(rows) == 25
    assert max(sum(r["post"] == f"post-{i}" for r in rows) for i in range(4)) <= 10
    assert db.quarantine_counts() == {f"post-{i}": 25 for i in range(4)}


def test_district_quarantine_rows_expire_but_their_counts_stay(db: SQLiteStorage) -> None:
    receiver = Receiver(db, quarantine=QuarantineLimits(every_s=0))
    for topic in (EVENTS, EVENTS, "not/a/topic"):
        receiver.handle(topic, b"junk")
    assert receiver.purge()["quarantine"] == 0
    later = datetime.now(UTC) + timedelta(days=receiver.retention.quarantine_days, minutes=1)
    assert receiver.purge(lambda: later)["quarantine"] == 3
    assert db.quarantined() == []
    assert db.quarantine_counts() == {"bench": 2, None: 1}


def test_district_quarantine_counts_of_an_older_database_carry_over(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with SQLiteStorage(path) as db:
        Receiver(db).handle(EVENTS, b"junk")
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("DROP TABLE quarantine_totals")  # as schema version 1 left it
        conn.execute("ALTER TABLE lost DROP COLUMN reason")
        conn.execute("PRAGMA user_version=1")
    with SQLiteStorage(path) as db:
        assert db.quarantine_counts() == {"bench": 1}
        assert len(db.quarantined()) == 1


# -- fairness --------------------------------------------------------------------------------


class Published:
    """The intake's publish callback: each reply, with how many messages were examined."""

    def __init__(self) -> None:
        self.replies: list[tuple[Reply, int]] = []
        self.intake: Intake | None = None
        self.honest = threading.Event()

    def __call__(self, reply: Reply) -> None:
        assert self.intake is not None
        self.replies.append((reply, self.intake.stats.examined))
        if reply.topic == "posko/v1/bench/ack" and Ack.decode(reply.payload).error is None:
            self.honest.set()


def intake_of(receiver: Receiver, limits: IntakeLimits | None = None) -> tuple[Intake, Published]:
    published = Published()
    intake = Intake(receiver, published, limits)
    published.intake = intake
    return intake, published


@pytest.mark.slow
def test_district_intake_serves_an_honest_post_between_a_flooders_payloads(
    receiver: Receiver, hostile: dict[str, bytes]
) -> None:
    intake, published = intake_of(receiver)
    order: list[str] = []  # the topics in the order the decode stage took them
    examine = receiver.examine
    receiver.examine = lambda topic, payload: order.append(topic) or examine(topic, payload)  # type: ignore[method-assign]
    for _ in range(40):  # each costs tens of ms to refuse
        intake.put("posko/v1/flood/events", hostile["mixed-at-cap"])
    intake.put(EVENTS, good())
    with intake:
        assert published.honest.wait(30)
    # One payload of the flood, then the honest post's; the flood's next waits its turn
    # (its credit spent: about 16 s for each further payload).
    assert order[:2] == ["posko/v1/flood/events", EVENTS]
    assert len(order) <= 3


def test_district_intake_sheds_a_flood_beyond_its_post_queue(receiver: Receiver) -> None:
    limits = IntakeLimits(post_messages=10, total_bytes=4 * 64 * 1024 + 200)
    intake, published = intake_of(receiver, limits)
    for i in range(50):
        intake.put("posko/v1/flood/events", b"junk %d" % i)
    assert intake.stats.shed == 40
    for _ in range(4):
        intake.put("posko/v1/flood-2/events", bytes(64 * 1024))
    assert intake.stats.shed == 40
    intake.put(EVENTS, good())  # over the total: the longest queue (flood-2's) pays
    assert intake.stats.shed == 41
    with intake:
        assert published.honest.wait(30)
    assert receiver.stats.batches == 1


@pytest.mark.slow
def test_district_intake_answers_refused_batches_at_a_bounded_rate(receiver: Receiver) -> None:
    intake, published = intake_of(receiver)
    with intake:
        for i in range(30):
            intake.put(EVENTS, b"junk %d" % i)
        intake.put(EVENTS, good())
        assert published.honest.wait(30)  # the junk came first: it is stored by now
    errors = [r for r, _ in published.replies if Ack.decode(r.payload).error]
    assert receiver.stats.quarantined == 30
    assert 1 <= len(errors) <= 3 and intake.stats.refusals_unanswered >= 27

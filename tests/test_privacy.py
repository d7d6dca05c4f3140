"""Privacy (UU PDP): retention purges, a data subject's find and erase, what sync may carry.

Real stores, real segment files, a real district database; only the clock is chosen.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from edge.clock import VirtualClock
from edge.config import Config
from edge.erasure import erase
from edge.events import Kind, Who
from edge.post import Post
from edge.retention import (
    cutoff,
    purge,
    purge_photos,
    purge_synced_events,
    purge_visitor_details,
)
from edge.station import photo_path
from edge.store import EventStore
from posko import cli
from posko.runtime import Runtime
from sync import codec
from sync.batch import Batch
from sync.options import Link, SyncOptions
from sync.outbox import Outbox

POST = "test-post"
ZONE = "Asia/Jakarta"
TODAY = date(2026, 11, 27)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64
DAYS = 100  # days of history, today included
SETTINGS = {
    "privacy.photo_days": 14,
    "privacy.visitor_days": 30,
    "privacy.synced_event_days": 90,
    "privacy.purge_interval_s": 3600,
}


def nik_of(age: int) -> str:
    return f"3201{age:012d}"


def name_of(age: int) -> str:
    return f"Tamu Hari{age:03d}"


def moment(age: int, minute: int = 0) -> datetime:
    """10:00 in Jakarta, `age` days before TODAY."""
    day = TODAY - timedelta(days=age)
    return datetime(day.year, day.month, day.day, 3, minute, tzinfo=UTC)


def fill(store: EventStore, ages: range) -> dict[int, dict[str, int]]:
    """Per day (oldest first): a visitor enters with a photo, gives details, a resident leaves."""
    seqs = {}
    for age in ages:
        entry = store.append(Kind.IN, moment=moment(age), who=Who.VISITOR, photo=True)
        path = photo_path(store.data_dir, entry["seq"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(JPEG)
        details = {
            "name": name_of(age),
            "origin": "Bandung",
            "phone": "0812 555",
            "nik": nik_of(age),
        }
        visitor = store.append(Kind.VISITOR, moment=moment(age, 1), ref=entry["seq"], data=details)
        out = store.append(Kind.OUT, moment=moment(age, 2), who=Who.RESIDENT)
        seqs[age] = {"in": entry["seq"], "visitor": visitor["seq"], "out": out["seq"]}
    return seqs


def all_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((data_dir / "events").glob("*.jsonl")))


def kinds(store: EventStore) -> Counter[str]:
    return Counter(e["kind"] for e in store.iter_between("0000-01-01", "9999-12-31"))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def opened(data_dir: Path) -> Iterator[Callable[..., EventStore]]:
    stores: list[EventStore] = []

    def open_(**kwargs: Any) -> EventStore:
        store = EventStore(data_dir, POST, ZONE, **kwargs)
        stores.append(store)
        return store

    yield open_
    for store in stores:
        store.close()


@pytest.fixture(scope="module")
def history_made(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, dict[int, dict[str, int]]]:
    """DAYS days of history, written once (a hundred days of durable writes take a while)."""
    made = tmp_path_factory.mktemp("history") / "data"
    with EventStore(made, POST, ZONE) as store:
        return made, fill(store, range(DAYS - 1, -1, -1))


@pytest.fixture
def history(
    history_made: tuple[Path, dict[int, dict[str, int]]],
    data_dir: Path,
    opened: Callable[..., EventStore],
) -> tuple[EventStore, dict[int, dict[str, int]]]:
    made, seqs = history_made
    shutil.copytree(made, data_dir)  # each test changes its own copy
    return opened(), seqs


def today_text() -> str:
    return TODAY.isoformat()


# -- retention: photos -----------------------------------------------------------------


def test_privacy_photos_older_than_the_period_are_deleted(history: Any, data_dir: Path) -> None:
    store, seqs = history
    removed = purge_photos(store, cutoff(today_text(), 14))
    assert removed == DAYS - 15
    for age, day in seqs.items():
        assert photo_path(data_dir, day["in"]).exists() == (age <= 14), age


def test_privacy_photo_without_its_event_falls_back_to_mtime(history: Any, data_dir: Path) -> None:
    store, _ = history
    stray = photo_path(data_dir, store.last_seq + 500)
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(JPEG)
    fresh = photo_path(data_dir, store.last_seq + 501)
    fresh.write_bytes(JPEG)
    old = moment(40).timestamp()
    os.utime(stray, (old, old))
    purge_photos(store, cutoff(today_text(), 14))
    assert not stray.exists()
    assert fresh.exists()


# -- retention: visitor details --------------------------------------------------------


@pytest.mark.slow
def test_privacy_old_visitor_details_are_purged_from_disk(
    history: Any, data_dir: Path, opened: Callable[..., EventStore]
) -> None:
    store, seqs = history
    before_kinds, last = kinds(store), store.last_seq
    purged = purge_visitor_details(store, cutoff(today_text(), 30))
    assert purged == DAYS - 31
    raw = all_bytes(data_dir)
    for age in seqs:
        assert (name_of(age).encode() in raw) == (age <= 30), age
        assert (nik_of(age).encode() in raw) == (age <= 30), age
    store.close()
    again = opened()
    assert kinds(again) == before_kinds
    assert [e["seq"] for e in again.since(0)] == list(range(1, last + 1))
    old = again.get(seqs[45]["visitor"])
    assert old is not None and old["data"] == {"purged": True} and old["ref"] == seqs[45]["in"]
    recent = again.get(seqs[3]["visitor"])
    assert recent is not None and recent["data"]["name"] == name_of(3)
    assert again.damage == []
    assert again.append(Kind.OUT, moment=moment(0, 30))["seq"] == last + 1


def test_privacy_a_cut_before_the_index_is_updated_is_harmless(
    history: Any, data_dir: Path, opened: Callable[..., EventStore]
) -> None:
    store, _ = history
    index = data_dir / "events" / "index.json"
    stale, last, count = index.read_bytes(), store.last_seq, store.count
    purge_visitor_details(store, cutoff(today_text(), 30))
    store.close()
    index.write_bytes(stale)  # the segments were rewritten, the index not yet
    again = opened()
    assert (again.last_seq, again.count, again.damage) == (last, count, [])
    assert name_of(45).encode() not in all_bytes(data_dir)
    assert json.loads(index.read_bytes()) != json.loads(stale)  # sizes brought up to date


def test_privacy_visitor_purge_reaches_the_day_file_still_being_written_to(
    opened: Callable[..., EventStore], data_dir: Path
) -> None:
    store = opened()
    fill(store, range(40, 39, -1))  # the only segment is the active one, 40 days old
    assert purge_visitor_details(store, cutoff(today_text(), 30)) == 1
    assert name_of(40).encode() not in all_bytes(data_dir)
    assert nik_of(40).encode() not in all_bytes(data_dir)
    after = store.append(Kind.OUT, moment=moment(0, 30))  # the press path goes on
    store.close()
    again = opened()
    assert again.get(after["seq"]) == after and again.damage == []


# -- retention: synced events ----------------------------------------------------------


def test_privacy_synced_old_segments_are_deleted_unsynced_kept(
    history: Any, data_dir: Path, opened: Callable[..., EventStore]
) -> None:
    store, seqs = history
    store.acknowledge(seqs[93]["out"])  # days 99..93 synced; 92 and 91 are as old but not
    last, acked = store.last_seq, store.acked
    deleted = purge_synced_events(store, cutoff(today_text(), 90))
    assert deleted == 7 * 3
    assert store.count == DAYS * 3 - 21
    files = sorted(p.name for p in (data_dir / "events").glob("*.jsonl"))
    assert len(files) == DAYS - 7
    assert store.get(seqs[92]["in"]) is not None and store.get(seqs[93]["out"]) is None
    assert [e["seq"] for e in store.since(acked)] == list(range(acked + 1, last + 1))
    store.close()
    again = opened()
    assert (again.last_seq, again.count, again.damage) == (last, DAYS * 3 - 21, [])
    assert again.append(Kind.OUT, moment=moment(0, 30))["seq"] == last + 1
    assert again.since(acked)[0]["seq"] == acked + 1


def test_privacy_seq_floor_survives_a_lost_watermark(
    history: Any, data_dir: Path, opened: Callable[..., EventStore]
) -> None:
    store, _ = history
    store.acknowledge(store.last_seq)
    last = store.last_seq
    purge_synced_events(store, cutoff(today_text(), 0))  # every closed segment
    store.close()
    (data_dir / "sync.json").unlink()
    again = opened()
    # Only today's segment is left: without the floor, numbering would restart below.
    assert again.last_seq == last
    assert again.append(Kind.OUT, moment=moment(0, 30))["seq"] == last + 1


# -- retention: the thread of `posko run` ----------------------------------------------


def test_privacy_each_purge_is_recorded_as_a_note(history: Any) -> None:
    store, seqs = history
    store.acknowledge(seqs[93]["out"])

    def record(data: dict[str, Any]) -> None:
        store.append(Kind.NOTE, moment=moment(0, 40), data=data)

    done = purge(store, SETTINGS, today_text(), record)
    notes = [e["data"]["purge"] for e in store.since(0) if e["kind"] == Kind.NOTE]
    assert notes == [
        {"class": "photos", "count": done["photos"], "before": "2026-11-13"},
        {"class": "visitor_details", "count": done["visitor_details"], "before": "2026-10-28"},
        {"class": "synced_events", "count": 21, "before": "2026-08-29"},
    ]
    assert purge(store, SETTINGS, today_text(), record) == dict.fromkeys(done, 0)
    assert sum(1 for e in store.since(0) if e["kind"] == Kind.NOTE) == 3  # nothing new


def test_privacy_retention_runs_at_start_in_a_running_post(
    config: Config, clock: VirtualClock, open_post: Callable[..., Post]
) -> None:
    assert clock.now().astimezone(UTC).date() == TODAY
    with EventStore(config["data.dir"], config["post.id"], ZONE) as store:
        fill(store, range(40, 35, -1))
    post = open_post()
    with Runtime(config, post=post, page=False).start() as runtime:
        retention = runtime.retention
        assert retention is not None and retention.alive
    assert retention.rounds == 1  # once at start-up, then stopped with the services
    notes = [e for e in post.store.since(0) if e["kind"] == Kind.NOTE]
    assert [n["data"]["purge"]["class"] for n in notes] == ["photos", "visitor_details"]
    assert name_of(38).encode() not in all_bytes(Path(config["data.dir"]))


# -- a data subject's request ----------------------------------------------------------


def posko(data_dir: Path, *args: str) -> int:
    return cli.main(["--data", str(data_dir), *args])


def test_privacy_find_lists_matches_with_the_nik_masked(
    history: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, seqs = history
    store.close()
    assert posko(data_dir, "privacy", "find", "--nik", nik_of(7)) == 0
    out = capsys.readouterr().out
    assert name_of(7) in out and nik_of(7) not in out and "*" * 12 + nik_of(7)[-4:] in out
    assert str(seqs[7]["visitor"]) in out
    assert posko(data_dir, "privacy", "find", "--name", "tamu hari00") == 0
    listed = capsys.readouterr().out.splitlines()[1:]
    assert len(listed) == 10


def test_privacy_erase_redacts_everywhere_and_records_a_note(
    history: Any, data_dir: Path, opened: Callable[..., EventStore]
) -> None:
    store, seqs = history
    store.close()
    targets = (50, 0)  # a closed segment and today's, the active one
    for age in targets:
        assert posko(data_dir, "privacy", "erase", "--name", name_of(age), "--yes") == 0
    raw = all_bytes(data_dir)
    again = opened()
    for age in targets:
        assert name_of(age).encode() not in raw and nik_of(age).encode() not in raw
        assert not photo_path(data_dir, seqs[age]["in"]).exists()
    assert name_of(49).encode() in raw
    notes = [e["data"]["erasure"] for e in again.since(0) if e["kind"] == Kind.NOTE]
    assert notes == [
        {
            "seqs": [seqs[a]["visitor"]],
            "reason": "data subject request",
            "photos": [seqs[a]["in"]],
        }
        for a in targets
    ]
    assert again.damage == [] and again.last_seq == DAYS * 3 + 2
    assert [e["seq"] for e in again.since(0)] == list(range(1, DAYS * 3 + 3))


def test_privacy_erase_refuses_while_the_station_runs(
    history: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, seqs = history  # its store holds the data directory as `posko run` does
    assert posko(data_dir, "privacy", "erase", "--seq", str(seqs[3]["visitor"]), "--yes") == 1
    err = capsys.readouterr().err
    assert f"posko process {os.getpid()}" in err and "stop it first" in err
    assert name_of(3).encode() in all_bytes(data_dir)


def test_privacy_erase_refuses_a_seq_that_is_not_a_visitor_record(
    history: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, seqs = history
    store.close()
    assert posko(data_dir, "privacy", "erase", "--seq", str(seqs[3]["out"]), "--yes") == 1
    assert f"#{seqs[3]['out']}" in capsys.readouterr().err
    assert name_of(3).encode() in all_bytes(data_dir)


def test_privacy_erase_takes_the_number_the_pendatang_page_shows(
    history: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, seqs = history
    store.close()
    shown = seqs[4]["in"]  # the Pendatang page lists a visitor as "#<entry seq>"
    assert posko(data_dir, "privacy", "erase", "--seq", str(shown), "--yes") == 0
    assert "erased 1 record(s)" in capsys.readouterr().out
    raw = all_bytes(data_dir)
    assert name_of(4).encode() not in raw and nik_of(4).encode() not in raw
    assert name_of(5).encode() in raw


def test_privacy_find_lists_the_pendatang_number(
    history: Any, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, seqs = history
    store.close()
    assert posko(data_dir, "privacy", "find", "--nik", nik_of(6)) == 0
    assert f"#{seqs[6]['in']}" in capsys.readouterr().out


def test_privacy_find_suggests_only_its_own_flags(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir()
    assert posko(data_dir, "privacy", "find") == 2
    err = capsys.readouterr().err
    assert "--name" in err and "--seq" not in err


def test_privacy_find_says_a_short_nik_is_too_short(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir()
    assert posko(data_dir, "privacy", "find", "--nik", "1234") == 2
    err = capsys.readouterr().err
    assert "too short" in err and "16 digits" in err


# -- what sync carries -----------------------------------------------------------------


def outgoing(store: EventStore, send_nik: bool) -> tuple[bytes, list[dict[str, Any]]]:
    options = SyncOptions(POST, Link("127.0.0.1", 1883, "t"), send_nik=send_nik)
    payload = b"".join(f.payload for f in Outbox(store, options).due())
    events: list[dict[str, Any]] = []
    for flight in Outbox(store, options).due():
        events += codec.decode(flight.payload).events
        payload += zlib.decompress(flight.payload[3:])
    return payload, events


@pytest.mark.parametrize("send_nik", [False, True])
def test_privacy_nik_leaves_the_pi_only_when_asked(
    opened: Callable[..., EventStore], send_nik: bool
) -> None:
    store = opened()
    fill(store, range(3, -1, -1))
    payload, events = outgoing(store, send_nik)
    visitors = [e for e in events if e["kind"] == Kind.VISITOR]
    assert len(visitors) == 4 and all(e["data"]["name"] for e in visitors)
    assert all(("nik" in e["data"]) == send_nik for e in visitors)
    assert (nik_of(2).encode() in payload) == send_nik


def test_privacy_photos_never_leave_the_pi(opened: Callable[..., EventStore]) -> None:
    store = opened()
    fill(store, range(3, -1, -1))
    payload, events = outgoing(store, True)
    assert [e["photo"] for e in events if e["kind"] == Kind.IN] == [True] * 4
    assert b"\xff\xd8" not in payload and b"JFIF" not in payload


# -- the district applies an erasure ---------------------------------------------------


def visitor_rows(db: SQLiteStorage) -> dict[int, Any]:
    rows = db.conn.execute("SELECT seq, data FROM events WHERE kind = 'visitor' ORDER BY seq")
    return {seq: json.loads(data) for seq, data in rows}


@pytest.mark.parametrize("order", ["in-order", "erasure-first"])
def test_privacy_district_redacts_on_an_erasure_note(
    opened: Callable[..., EventStore], tmp_path: Path, order: str
) -> None:
    store = opened()
    seqs = fill(store, range(3, -1, -1))
    before = store.since(0)
    erase(store, [seqs[2]["visitor"]], moment(0, 50))
    note = store.since(before[-1]["seq"])
    batches = [Batch.of(POST, before), Batch.of(POST, note)]
    if order == "erasure-first":
        batches.reverse()
    topic = f"posko/v1/{POST}/events"
    with SQLiteStorage(tmp_path / "district.db") as db:
        receiver = Receiver(db)
        for batch in batches:
            assert receiver.handle(topic, codec.encode(batch)) is not None
        rows = visitor_rows(db)
        assert rows[seqs[2]["visitor"]] == {"purged": True}
        assert rows[seqs[1]["visitor"]]["name"] == name_of(1)
        assert db.count(POST) == store.last_seq

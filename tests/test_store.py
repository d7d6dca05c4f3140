"""The event store: seq, reading, segments and index, the sync watermark, append-only,
one owner, and what it does with torn, corrupt, full and read-only storage.

Real files and real processes throughout; the tmpfs tests need root and `mount`.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tinydb import Query

from edge import events as ev
from edge import journal
from edge.journal import JournalStorage, encode
from edge.store import EventStore, segment_name
from sensors.errors import AppendOnlyError, DataDirBusy, StoreError, StoreUnavailable
from tests.support.store_proc import SUPPORT, Child

POST = "posko-01"
ZONE = "Asia/Jakarta"
T0 = datetime(2026, 1, 1, 1, tzinfo=UTC)  # 08:00 in Jakarta
Event = dict[str, Any]


# -- helpers -------------------------------------------------------------------------


def append_events(
    store: EventStore,
    n: int,
    start: datetime = T0,
    step: timedelta = timedelta(minutes=1),
    **fields: Any,
) -> list[Event]:
    return [
        store.append(ev.Kind.IN, moment=start + i * step, who=ev.Who.RESIDENT, **fields)
        for i in range(n)
    ]


def seqs(events: list[Event]) -> list[int]:
    return [e["seq"] for e in events]


def segment_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "events").glob("*.jsonl"))


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def read_index(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / "events" / "index.json").read_bytes())


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under a directory with its bytes and modification time."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def kept_files(data_dir: Path, pattern: str = "*") -> list[Path]:
    damaged = data_dir / "damaged"
    return sorted(damaged.glob(pattern)) if damaged.exists() else []


def local_day(event: Event) -> str:
    return ev.parse_time(event["time"]).astimezone(ZoneInfo(ZONE)).date().isoformat()


# -- fixtures ------------------------------------------------------------------------


class Mounts:
    """tmpfs mounts made by a test; skipped where this machine cannot mount."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def tmpfs(self, path: Path, size: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        self.mounted.append(path)
        return path

    def remount(self, path: Path, options: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{options}", str(path)], check=True)

    def unmount_all(self) -> None:
        for path in reversed(self.mounted):
            subprocess.run(["umount", str(path)], check=True)
        self.mounted.clear()


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    made = Mounts()
    try:
        yield made
    finally:
        made.unmount_all()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


OpenStore = Callable[..., EventStore]


@pytest.fixture
def open_store(data_dir: Path, mounts: Mounts) -> Iterator[OpenStore]:
    """Open stores (default: the test's data dir); all are closed before any unmount."""
    opened: list[EventStore] = []

    def open_(directory: Path | None = None, **kwargs: Any) -> EventStore:
        kwargs.setdefault("segment_max", 4)
        store = EventStore(directory or data_dir, POST, ZONE, **kwargs)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> EventStore:
    return open_store()


@dataclass
class History:
    store: EventStore
    events: list[Event]


# One test body, several shapes of history: TinyDB's tests do the same over storages.
SHAPES = {
    "one-segment": (1000, timedelta(minutes=1)),
    "full-segments": (4, timedelta(minutes=1)),
    "day-segments": (1000, timedelta(hours=7)),
}


@pytest.fixture(
    params=[(shape, reopened) for shape in SHAPES for reopened in (False, True)],
    ids=lambda p: f"{p[0]}-{'reopened' if p[1] else 'open'}",
)
def history(request: pytest.FixtureRequest, open_store: OpenStore) -> History:
    shape, reopened = request.param
    segment_max, step = SHAPES[shape]
    store = open_store(segment_max=segment_max)
    events = append_events(store, 13, step=step)
    if reopened:
        store.close()
        store = open_store(segment_max=segment_max)
    return History(store, events)


# -- seq and reading -----------------------------------------------------------------


def test_store_seq_starts_at_one_and_rises_by_one(history: History) -> None:
    assert seqs(history.events) == list(range(1, 14))
    assert seqs(history.store.since(0)) == list(range(1, 14))


def test_store_events_carry_post_and_seq(history: History) -> None:
    assert [(e["post"], e["seq"]) for e in history.store.since(0)] == [
        (POST, seq) for seq in range(1, 14)
    ]


def test_store_count_and_last_seq_cover_every_event(history: History) -> None:
    assert (history.store.count, history.store.last_seq) == (13, 13)


@pytest.mark.parametrize(
    ("after", "limit"), [(0, None), (0, 1), (3, 4), (5, 100), (12, None), (13, None)]
)
def test_store_since_returns_later_events_oldest_first(
    history: History, after: int, limit: int | None
) -> None:
    expected = [e for e in history.events if e["seq"] > after][:limit]
    assert history.store.since(after, limit) == expected


def test_store_get_returns_each_event(history: History) -> None:
    assert [history.store.get(seq) for seq in range(1, 14)] == history.events


@pytest.mark.parametrize("seq", [-1, 0, 14])
def test_store_get_outside_the_log_is_none(history: History, seq: int) -> None:
    assert history.store.get(seq) is None


@pytest.mark.parametrize("n", [1, 5, 13, 20])
def test_store_recent_is_newest_first(history: History, n: int) -> None:
    assert history.store.recent(n) == history.events[::-1][:n]


def test_store_recent_of_zero_is_empty(store: EventStore) -> None:
    append_events(store, 6)
    assert store.recent(0) == []


def test_store_between_selects_by_local_day(history: History) -> None:
    days = sorted({local_day(e) for e in history.events})
    for day in days:
        assert history.store.between(day, day) == [e for e in history.events if local_day(e) == day]
    assert history.store.between(days[0], days[-1]) == history.events


def test_store_between_puts_a_jakarta_evening_on_the_next_day(store: EventStore) -> None:
    event = store.append(ev.Kind.IN, moment=datetime(2026, 1, 1, 20, tzinfo=UTC))
    assert store.between("2026-01-02", "2026-01-02") == [event]
    assert store.between("2026-01-01", "2026-01-01") == []


def test_store_seq_continues_after_reopen(open_store: OpenStore) -> None:
    store = open_store()
    append_events(store, 6)
    store.close()
    assert open_store().append(ev.Kind.OUT, moment=T0)["seq"] == 7


# -- segments and the index ----------------------------------------------------------


def test_store_segment_starts_when_the_local_day_changes(store: EventStore, data_dir: Path) -> None:
    for moment in (
        datetime(2026, 1, 1, 16, 0, tzinfo=UTC),  # 23:00 in Jakarta, 1 January
        datetime(2026, 1, 1, 16, 59, tzinfo=UTC),  # 23:59
        datetime(2026, 1, 1, 17, 0, tzinfo=UTC),  # 00:00, 2 January
        datetime(2026, 1, 2, 1, 0, tzinfo=UTC),  # UTC's day changed, Jakarta's did not
    ):
        store.append(ev.Kind.IN, moment=moment)
    files = segment_files(data_dir)
    assert [p.name for p in files] == [segment_name(1, "2026-01-01"), segment_name(3, "2026-01-02")]
    assert [len(lines_of(p)) for p in files] == [2, 2]


def test_store_segment_starts_when_full(open_store: OpenStore, data_dir: Path) -> None:
    append_events(open_store(segment_max=3), 7)
    files = segment_files(data_dir)
    assert [p.name for p in files] == [segment_name(s, "2026-01-01") for s in (1, 4, 7)]
    assert [len(lines_of(p)) for p in files] == [3, 3, 1]


def test_store_index_lists_closed_segments(open_store: OpenStore, data_dir: Path) -> None:
    append_events(open_store(segment_max=3), 7)
    files = segment_files(data_dir)
    index = read_index(data_dir)["segments"]
    assert [(s["file"], s["first"], s["last"], s["count"], s["size"]) for s in index] == [
        (p.name, first, first + 2, 3, p.stat().st_size)
        for p, first in zip(files[:2], (1, 4), strict=True)
    ]


@pytest.mark.parametrize(
    "damage",
    [b"", b"\x00" * 64, b"{not json", b'{"version": 99, "segments": []}', b"[]", None],
    ids=["empty", "zeros", "garbage", "other-version", "json-list", "missing"],
)
def test_store_damaged_index_is_rebuilt(
    open_store: OpenStore, data_dir: Path, damage: bytes | None
) -> None:
    store = open_store(segment_max=3)
    events = append_events(store, 10, step=timedelta(hours=5))
    store.close()
    index_path = data_dir / "events" / "index.json"
    expected = read_index(data_dir)
    if damage is None:
        index_path.unlink()
    else:
        index_path.write_bytes(damage)
    store = open_store(segment_max=3)
    assert (store.count, store.since(0), store.next_seq) == (10, events, 11)
    assert read_index(data_dir) == expected


def test_store_reopen_does_not_rescan_closed_segments_of_unchanged_size(
    open_store: OpenStore, data_dir: Path
) -> None:
    # Opening must not read months of closed segments: what the index says is used as is.
    store = open_store(segment_max=3)
    append_events(store, 7)
    store.close()
    index_path = data_dir / "events" / "index.json"
    index = read_index(data_dir)
    index["segments"][0]["count"] = 1000
    index_path.write_text(json.dumps(index))
    assert open_store(segment_max=3).count == 1000 + 3 + 1


# -- the sync watermark --------------------------------------------------------------


def test_store_acknowledge_moves_the_watermark(store: EventStore) -> None:
    append_events(store, 10)
    assert store.acknowledge(7) is True
    assert (store.acked, store.pending) == (7, 3)


def test_store_acknowledge_survives_reopen(open_store: OpenStore, data_dir: Path) -> None:
    store = open_store()
    append_events(store, 10)
    store.acknowledge(7)
    store.close()
    reopened = open_store()
    assert (reopened.acked, reopened.pending) == (7, 3)
    assert json.loads((data_dir / "sync.json").read_bytes())["acked"] == 7


def test_store_acknowledge_ignores_a_lower_ack(store: EventStore, data_dir: Path) -> None:
    append_events(store, 10)
    store.acknowledge(7)
    before = (data_dir / "sync.json").read_bytes()
    assert store.acknowledge(5) is False
    assert store.acknowledge(7) is False
    assert (store.acked, (data_dir / "sync.json").read_bytes()) == (7, before)


def test_store_acknowledge_beyond_last_seq_is_refused(store: EventStore, data_dir: Path) -> None:
    append_events(store, 10)
    store.acknowledge(4)
    with pytest.raises(StoreError, match="11"):
        store.acknowledge(11)
    assert store.acked == 4
    assert json.loads((data_dir / "sync.json").read_bytes())["acked"] == 4


def test_store_acknowledge_does_not_rewrite_the_journal(store: EventStore, data_dir: Path) -> None:
    append_events(store, 10)
    before = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in segment_files(data_dir)
    }
    store.acknowledge(3)
    store.acknowledge(10)
    after = {
        p.name: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
        for p in segment_files(data_dir)
    }
    assert after == before


# -- append-only ---------------------------------------------------------------------

EDITS: dict[str, Callable[[EventStore], object]] = {
    "update": lambda s: s._active.events.update({"kind": "out"}),  # type: ignore[union-attr]
    "update-by-id": lambda s: s._active.events.update(  # type: ignore[union-attr]
        {"kind": "out"}, doc_ids=[5]
    ),
    "update-multiple": lambda s: s._active.events.update_multiple(  # type: ignore[union-attr]
        [({"kind": "out"}, Query().seq == 5)]
    ),
    "upsert": lambda s: s._active.events.upsert(  # type: ignore[union-attr]
        {"seq": 5, "kind": "out"}, Query().seq == 5
    ),
    "remove-by-id": lambda s: s._active.events.remove(doc_ids=[5]),  # type: ignore[union-attr]
    "remove-by-query": lambda s: s._active.events.remove(  # type: ignore[union-attr]
        Query().seq == 5
    ),
    "truncate": lambda s: s._active.events.truncate(),  # type: ignore[union-attr]
    "drop-tables": lambda s: s._active.drop_tables(),  # type: ignore[union-attr]
    "drop-table": lambda s: s._active.drop_table("events"),  # type: ignore[union-attr]
    "storage-write": lambda s: s._active.journal.write({}),  # type: ignore[union-attr]
}


@pytest.mark.parametrize("edit", EDITS.values(), ids=list(EDITS))
def test_store_edits_are_refused_and_change_nothing(
    store: EventStore, data_dir: Path, edit: Callable[[EventStore], object]
) -> None:
    events = append_events(store, 6)  # the active segment holds seqs 5 and 6
    before = snapshot(data_dir / "events")
    with pytest.raises(AppendOnlyError):
        edit(store)
    assert snapshot(data_dir / "events") == before
    assert store.since(0) == events


def test_store_journal_storage_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "segment.jsonl"
    journal = JournalStorage(path)
    journal.append(ev.make(POST, 1, T0, ev.Kind.IN))
    before = path.read_bytes()
    with pytest.raises(AppendOnlyError):
        journal.write({"events": {}})
    journal.close()
    assert path.read_bytes() == before


# -- one owner -----------------------------------------------------------------------


@pytest.fixture
def owner(data_dir: Path) -> Iterator[Child]:
    """Another process that owns the data directory (and stored one event)."""
    child = Child(SUPPORT / "store_child.py", "hold", str(data_dir))
    try:
        assert child.wait_lines(1, timeout=30), f"owner did not start: {child.stderr}"
        yield child
    finally:
        child.kill()


def test_store_second_owner_is_refused_naming_the_pid(owner: Child, open_store: OpenStore) -> None:
    with pytest.raises(DataDirBusy, match=rf"\b{owner.pid}\b") as refused:
        open_store()
    assert refused.value.pid == owner.pid
    assert owner.lines == [f"ready {owner.pid}\n"]


def test_store_lock_is_released_when_the_owner_is_killed(
    owner: Child, open_store: OpenStore
) -> None:
    owner.kill()
    store = open_store()
    assert store.last_seq == 1
    assert store.append(ev.Kind.IN, moment=T0)["seq"] == 2


def test_store_lock_is_released_on_close(open_store: OpenStore) -> None:
    first = open_store()
    append_events(first, 2)
    first.close()
    assert open_store().append(ev.Kind.IN, moment=T0)["seq"] == 3


def test_store_read_only_view_opens_alongside_the_owner(open_store: OpenStore) -> None:
    events = append_events(open_store(), 9)
    view = open_store(read_only=True)
    assert (view.count, view.since(0), view.recent(2)) == (9, events, events[::-1][:2])


READ_ONLY_WRITES: dict[str, Callable[[EventStore], object]] = {
    "append-same-day": lambda s: s.append(ev.Kind.IN, moment=T0),
    "append-next-day": lambda s: s.append(ev.Kind.IN, moment=T0 + timedelta(days=1)),
    "acknowledge": lambda s: s.acknowledge(3),
}


@pytest.mark.parametrize("write", READ_ONLY_WRITES.values(), ids=list(READ_ONLY_WRITES))
def test_store_read_only_view_never_writes(
    open_store: OpenStore, data_dir: Path, write: Callable[[EventStore], object]
) -> None:
    owner = open_store(segment_max=1000)
    append_events(owner, 5)
    view = open_store(read_only=True, segment_max=1000)
    before = snapshot(data_dir)
    with pytest.raises(StoreError):
        write(view)
    assert snapshot(data_dir) == before


# -- torn tails ----------------------------------------------------------------------


def next_line(seq: int) -> bytes:
    return encode(ev.make(POST, seq, T0, ev.Kind.IN))


def bad_crc(line: bytes) -> bytes:
    return b"%08x" % (int(line[:8], 16) ^ 1) + line[8:]


# name: (the bytes written after the last whole event, whether they show seq 11)
TAILS: dict[str, tuple[Callable[[int], bytes], bool]] = {
    "garbage-without-newline": (lambda seq: b"\x13\x37 garbage without a newline", False),
    "zeros": (lambda seq: b"\x00" * 300, False),
    "half-a-json": (lambda seq: next_line(seq)[: len(next_line(seq)) // 2], True),
    "whole-line-without-newline": (lambda seq: next_line(seq)[:-1], True),
    "bad-crc-line": (lambda seq: bad_crc(next_line(seq)), True),
    "bad-crc-line-then-garbage": (lambda seq: bad_crc(next_line(seq)) + b'{"po', True),
}


@dataclass
class Torn:
    data_dir: Path
    events: list[Event]
    tail: bytes
    segment: Path
    expected_next: int  # a seq seen in damaged bytes is never given again


@pytest.fixture(params=list(TAILS.values()), ids=list(TAILS))
def torn(request: pytest.FixtureRequest, open_store: OpenStore, data_dir: Path) -> Torn:
    make_tail, seq_visible = request.param
    store = open_store()
    events = append_events(store, 10)  # the active segment holds seqs 9 and 10
    store.close()
    segment = segment_files(data_dir)[-1]
    tail = make_tail(11)
    with segment.open("ab") as f:
        f.write(tail)
    return Torn(data_dir, events, tail, segment, 12 if seq_visible else 11)


def test_store_torn_tail_keeps_every_whole_event(torn: Torn, open_store: OpenStore) -> None:
    store = open_store()
    assert (store.since(0), store.count) == (torn.events, 10)
    assert torn.segment.read_bytes().endswith(encode(torn.events[-1]))


def test_store_torn_tail_is_reported_and_kept(torn: Torn, open_store: OpenStore) -> None:
    store = open_store()
    assert [(d.file, d.kind) for d in store.damage] == [(torn.segment.name, "torn_tail")]
    assert [p.read_bytes() for p in kept_files(torn.data_dir)] == [torn.tail]
    assert store.health()["damage_found"] == [store.damage[0].describe()]


def test_store_torn_tail_next_append_gets_the_next_seq(torn: Torn, open_store: OpenStore) -> None:
    store = open_store()
    added = store.append(ev.Kind.OUT, moment=T0)
    store.close()
    reopened = open_store()
    assert added["seq"] == torn.expected_next
    assert (reopened.since(0), reopened.damage) == ([*torn.events, added], [])


def test_store_torn_tail_seq_is_not_reused_after_another_reopen(
    torn: Torn, open_store: OpenStore
) -> None:
    open_store().close()  # cuts the tail
    assert open_store().append(ev.Kind.OUT, moment=T0)["seq"] == torn.expected_next


def test_store_tails_cut_within_one_second_are_all_kept(
    open_store: OpenStore, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "_stamp", lambda: "20260101T080000")  # one second
    store = open_store()
    append_events(store, 2)
    store.close()
    tails = [b"first torn write", b"second torn write"]
    for tail in tails:
        with segment_files(data_dir)[-1].open("ab") as f:
            f.write(tail)
        open_store().close()  # cuts the tail and keeps it
    assert sorted(p.read_bytes() for p in kept_files(data_dir)) == sorted(tails)


# -- corruption in the middle --------------------------------------------------------


@dataclass
class Corrupt:
    data_dir: Path
    events: list[Event]
    segment: Path
    damaged_bytes: bytes
    lost_seq: int


def damage_line(path: Path, seq: int, shorten: bool) -> bytes:
    """Overwrite bytes inside the line of one seq, keeping its seq readable."""
    lines = lines_of(path)
    i = next(i for i, line in enumerate(lines) if b'"seq":%d,' % seq in line)
    line = lines[i]
    lines[i] = line[:40] + b"#### bit rot ####" + line[(70 if shorten else 57) :]
    data = b"".join(lines)
    path.write_bytes(data)
    return data


@pytest.fixture(
    params=[("closed", 3, True), ("active", 12, False)],
    ids=["closed-segment-resized", "active-segment"],
)
def corrupt(request: pytest.FixtureRequest, open_store: OpenStore, data_dir: Path) -> Corrupt:
    which, seq, shorten = request.param
    store = open_store(segment_max=5)
    events = append_events(store, 13)  # segments: 1-5, 6-10, 11-13 (active)
    store.close()
    segment = segment_files(data_dir)[0 if which == "closed" else -1]
    return Corrupt(data_dir, events, segment, damage_line(segment, seq, shorten), seq)


def test_store_corrupt_segment_is_moved_aside_whole(
    corrupt: Corrupt, open_store: OpenStore
) -> None:
    open_store(segment_max=5)
    kept = kept_files(corrupt.data_dir, f"{corrupt.segment.name}.corrupt-*")
    assert [p.read_bytes() for p in kept] == [corrupt.damaged_bytes]


def test_store_corrupt_segment_keeps_lines_before_and_after(
    corrupt: Corrupt, open_store: OpenStore
) -> None:
    store = open_store(segment_max=5)
    expected = [e for e in corrupt.events if e["seq"] != corrupt.lost_seq]
    assert (store.since(0), store.count) == (expected, 12)
    assert store.get(corrupt.lost_seq) is None


def test_store_corrupt_segment_is_named_in_health(corrupt: Corrupt, open_store: OpenStore) -> None:
    found = open_store(segment_max=5).health()["damage_found"]
    assert len(found) == 1
    assert corrupt.segment.name in found[0]
    assert "corrupt" in found[0]


def test_store_corrupt_segment_seq_is_never_given_again(
    corrupt: Corrupt, open_store: OpenStore
) -> None:
    store = open_store(segment_max=5)
    first = store.append(ev.Kind.IN, moment=T0)
    store.close()
    second = open_store(segment_max=5).append(ev.Kind.IN, moment=T0)
    assert (first["seq"], second["seq"]) == (14, 15)


# -- empty and truncated segments ----------------------------------------------------


def empty_roll_before_index(data_dir: Path) -> None:
    (data_dir / "events" / segment_name(7, "2026-01-02")).touch()


def empty_roll_after_index(data_dir: Path) -> None:
    # A roll whose index was written but whose first event never was.
    with EventStore(data_dir, POST, ZONE, segment_max=3) as store:
        store.append(ev.Kind.IN, moment=T0 + timedelta(days=1))
    segment_files(data_dir)[-1].write_bytes(b"")


@pytest.mark.parametrize(
    "crash", [empty_roll_before_index, empty_roll_after_index], ids=["before-index", "after-index"]
)
def test_store_empty_segment_after_a_roll_is_dropped(
    open_store: OpenStore, data_dir: Path, crash: Callable[[Path], None]
) -> None:
    store = open_store(segment_max=3)
    events = append_events(store, 6)
    store.close()
    crash(data_dir)
    store = open_store(segment_max=3)
    assert (store.since(0), store.next_seq, store.damage) == (events, 7, [])
    added = store.append(ev.Kind.IN, moment=T0 + timedelta(days=1))
    store.close()
    assert open_store(segment_max=3).since(0) == [*events, added]


@pytest.fixture
def zeroed(open_store: OpenStore, data_dir: Path) -> tuple[list[Event], Path]:
    """A history of three segments whose middle one was truncated to zero length."""
    store = open_store(segment_max=3)
    events = append_events(store, 9)
    store.close()
    middle = segment_files(data_dir)[1]
    middle.write_bytes(b"")
    return events, middle


def test_store_segment_truncated_to_zero_keeps_the_rest(
    zeroed: tuple[list[Event], Path], open_store: OpenStore
) -> None:
    events, _ = zeroed
    store = open_store(segment_max=3)
    assert store.since(0) == events[:3] + events[6:]
    assert store.append(ev.Kind.IN, moment=T0)["seq"] == 10


def test_store_segment_truncated_to_zero_is_reported(
    zeroed: tuple[list[Event], Path], open_store: OpenStore
) -> None:
    _, middle = zeroed
    found = open_store(segment_max=3).health()["damage_found"]
    assert any(middle.name in text for text in found), found


# -- a full disk, one process's view: RLIMIT_FSIZE -----------------------------------


@dataclass
class FileSizeLimit:
    data_dir: Path
    events: list[Event]
    report: dict[str, Any]


@pytest.fixture(scope="module")
def file_size_limit(tmp_path_factory: pytest.TempPathFactory) -> FileSizeLimit:
    """A child process appends with its active segment 10 bytes under RLIMIT_FSIZE."""
    data_dir = tmp_path_factory.mktemp("fsize") / "data"
    with EventStore(data_dir, POST, ZONE) as store:
        events = append_events(store, 5)
        store.acknowledge(5)
    limit = segment_files(data_dir)[-1].stat().st_size + 10
    child = Child(SUPPORT / "store_child.py", "fsize", str(data_dir), str(limit), T0.isoformat())
    code = child.finish(timeout=60)
    assert code == 0 and len(child.lines) == 1, child.stderr
    return FileSizeLimit(data_dir, events, json.loads(child.lines[0]))


def test_store_file_size_limit_append_raises_efbig(file_size_limit: FileSizeLimit) -> None:
    assert [e["errno"] for e in file_size_limit.report["errors"]] == [errno.EFBIG] * 3


def test_store_file_size_limit_shows_in_health(file_size_limit: FileSizeLimit) -> None:
    report = file_size_limit.report
    assert report["last_error"] == report["errors"][-1]["message"]
    assert (report["health"]["ok"], report["health"]["last_error"]) == (False, report["last_error"])
    assert report["health_after_lift"]["ok"] is True


def test_store_file_size_limit_leaves_no_partial_line(file_size_limit: FileSizeLimit) -> None:
    assert file_size_limit.report["size_after_failures"] == file_size_limit.report["size_before"]


def test_store_file_size_limit_keeps_stored_events(
    file_size_limit: FileSizeLimit, open_store: OpenStore
) -> None:
    store = open_store(file_size_limit.data_dir)
    assert (store.since(0)[:5], store.damage) == (file_size_limit.events, [])
    assert (store.acked, store.count) == (5, 6)
    assert segment_files(file_size_limit.data_dir)[-1].read_bytes().endswith(b"\n")


def test_store_file_size_limit_lifted_next_append_gets_next_seq(
    file_size_limit: FileSizeLimit,
) -> None:
    assert file_size_limit.report["seq_after_lift"] == 6


# -- a full disk for real: a tiny tmpfs ----------------------------------------------


@dataclass
class FullDisk:
    mount: Path
    data_dir: Path
    store: EventStore
    events: list[Event]
    error: StoreUnavailable
    size_before: int  # the active segment's size before the failed append
    last_moment: datetime


@pytest.fixture
def full_disk(tmp_path: Path, mounts: Mounts, open_store: OpenStore) -> FullDisk:
    mount = mounts.tmpfs(tmp_path / "tiny", "256k")
    data_dir = mount / "data"
    store = open_store(data_dir, segment_max=100_000)
    events: list[Event] = []
    moment = T0
    for _ in range(10_000):
        size = segment_files(data_dir)[-1].stat().st_size if events else 0
        try:
            events.append(store.append(ev.Kind.IN, moment=moment, data={"pad": "x" * 200}))
        except StoreUnavailable as e:
            return FullDisk(mount, data_dir, store, events, e, size, moment)
        moment += timedelta(seconds=1)
    pytest.fail("a 256k tmpfs never filled up")


def test_store_disk_full_append_raises_enospc(full_disk: FullDisk) -> None:
    assert full_disk.error.errno == errno.ENOSPC
    assert len(full_disk.events) > 100


def test_store_disk_full_shows_in_health(full_disk: FullDisk) -> None:
    health = full_disk.store.health()
    assert (health["ok"], health["last_error"]) == (False, str(full_disk.error))


def test_store_disk_full_keeps_stored_events(full_disk: FullDisk, open_store: OpenStore) -> None:
    segment = segment_files(full_disk.data_dir)[-1]
    assert segment.stat().st_size == full_disk.size_before
    full_disk.store.close()
    store = open_store(full_disk.data_dir)
    assert (store.since(0), store.damage) == (full_disk.events, [])


def test_store_disk_full_append_works_when_space_returns(
    full_disk: FullDisk, mounts: Mounts
) -> None:
    mounts.remount(full_disk.mount, "size=2m")
    added = full_disk.store.append(ev.Kind.OUT, moment=full_disk.last_moment)
    assert added["seq"] == len(full_disk.events) + 1
    assert full_disk.store.health()["ok"] is True


def test_store_disk_full_failed_roll_keeps_each_event_once(full_disk: FullDisk) -> None:
    store = full_disk.store
    for _ in range(2):
        with pytest.raises(StoreUnavailable):
            store.append(ev.Kind.IN, moment=full_disk.last_moment + timedelta(days=1))
    assert seqs(store.since(0)) == list(range(1, len(full_disk.events) + 1))
    assert store.count == len(full_disk.events)


# -- a read-only filesystem ----------------------------------------------------------


@dataclass
class ReadOnlyDisk:
    events_mount: Path
    store: EventStore
    events: list[Event]


@pytest.fixture
def read_only_disk(data_dir: Path, mounts: Mounts, open_store: OpenStore) -> ReadOnlyDisk:
    """A store whose events/ went read-only under it (the way an SD card fails).

    Linux refuses to remount read-only while a file is open for writing, so events/ is a
    mount of its own and the store is reopened (it opens a segment lazily) before it.
    """
    events_mount = mounts.tmpfs(data_dir / "events", "1m")
    store = open_store(segment_max=4)
    events = append_events(store, 6)
    store.close()
    store = open_store(segment_max=4)
    mounts.remount(events_mount, "ro")
    return ReadOnlyDisk(events_mount, store, events)


NEXT_MOMENTS = {"same-day": T0 + timedelta(hours=1), "next-day": T0 + timedelta(days=1)}


@pytest.mark.parametrize("moment", NEXT_MOMENTS.values(), ids=list(NEXT_MOMENTS))
def test_store_read_only_filesystem_refuses_append(
    read_only_disk: ReadOnlyDisk, moment: datetime
) -> None:
    store = read_only_disk.store
    with pytest.raises(StoreUnavailable) as refused:
        store.append(ev.Kind.IN, moment=moment)
    assert refused.value.errno == errno.EROFS
    assert (store.health()["ok"], store.last_error) == (False, str(refused.value))


@pytest.mark.parametrize("moment", NEXT_MOMENTS.values(), ids=list(NEXT_MOMENTS))
def test_store_read_only_filesystem_loses_nothing(
    read_only_disk: ReadOnlyDisk, mounts: Mounts, open_store: OpenStore, moment: datetime
) -> None:
    store = read_only_disk.store
    with pytest.raises(StoreUnavailable):
        store.append(ev.Kind.IN, moment=moment)
    mounts.remount(read_only_disk.events_mount, "rw")
    added = store.append(ev.Kind.IN, moment=moment)
    store.close()
    reopened = open_store(segment_max=4)
    assert added["seq"] == 7
    assert (reopened.since(0), reopened.damage) == ([*read_only_disk.events, added], [])

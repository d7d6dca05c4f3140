"""The post's event log: TinyDB over day segments, crash-safe, with bounded cost per insert.

Events go to the active segment (today's journal, the only one held in memory); a new
segment starts when the post's day changes or a segment is full, and closed ones are
read-only and described in `events/index.json`. The sync state is one durable number,
the highest seq the district acknowledged (`sync.json`), with the district's epoch.
"""

from __future__ import annotations

import json
import logging
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge import events as ev
from edge.journal import (
    Damage,
    JournalStorage,
    SegmentDB,
    atomic_write,
    encode,
    fsync_dir,
    recover,
    scan,
)
from edge.ownership import DataDirLock
from edge.segments import (
    Edit,
    Lost,
    Segment,
    add_lost,
    describe,
    load_index,
    lost_of,
    segment_name,
    write_index,
)
from sensors.errors import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

EPOCHS_LEFT = 16  # the district epochs a post remembers leaving (their acks are stale)


class EventStore:
    """The single writer of a data directory (or a read-only view of one)."""

    def __init__(
        self,
        data_dir: str | Path,
        post: str,
        zone: str | ZoneInfo = "Asia/Jakarta",
        *,
        read_only: bool = False,
        segment_max: int = 10_000,
        cached_segments: int = 4,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.post = post
        self.zone = zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone)
        self.read_only = read_only
        self.segment_max = segment_max
        self.events_dir = self.data_dir / "events"
        self.damaged_dir = self.data_dir / "damaged"
        # Bumped by every rewrite (a purge, an erasure): caches of events read before it
        # may hold personal data that is gone now.
        self.rewrites = 0
        self.damage: list[Damage] = []
        self.lost: list[Lost] = []  # seqs given out but no longer held, with the reason
        self._damaged_spans: list[Lost] = []  # seqs the damage found at this opening may cover
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._rewriting = threading.Lock()  # one rewrite at a time (closed files: outside _lock)
        self._cache: OrderedDict[str, list[tuple[str, ev.Event]]] = OrderedDict()
        self._cache_size = cached_segments
        self._active: SegmentDB | None = None
        self._active_rows: list[tuple[str, ev.Event]] = []
        self._active_day = ""
        self._owner: DataDirLock | None = None
        if not read_only:
            self.events_dir.mkdir(parents=True, exist_ok=True)
            self._owner = DataDirLock(self.data_dir).acquire()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- opening -------------------------------------------------------------------

    def _open(self) -> None:
        files = sorted(self.events_dir.glob("*.jsonl")) if self.events_dir.exists() else []
        if not self.read_only:
            while files and files[-1].stat().st_size == 0:  # a roll cut before its first event
                files.pop().unlink()
        index = self._load_index()
        known = {s["file"]: Segment(**s) for s in index.get("segments", [])}
        self._seq_floor = int(index.get("seq_floor", 0))
        self.lost = lost_of(index)
        self.closed: list[Segment] = [
            self._closed_segment(p, known.get(p.name)) for p in files[:-1]
        ]
        if files:
            self._active = SegmentDB(
                files[-1], read_only=self.read_only, damaged_dir=self.damaged_dir
            )
            self._note_damage(self._active.journal.damage, self._active.journal.max_seq_seen)
            docs = self._active.journal.read()["events"].values()
            self._active_rows = [(ev.local_day(d["time"], self.zone), d) for d in docs]
            self._active_info = describe(files[-1], [d for _, d in self._active_rows], self.zone)
            self._active_day = files[-1].stem.split("_", 1)[1]
        self.acked = self._load_watermark()
        tail = self._active.journal.last_seq if self._active else 0
        self.last_seq = max(
            tail, self.closed[-1].last if self.closed else 0, self._seq_floor, self.acked
        )
        self._record_holes()
        if not self.read_only and (
            [asdict(s) for s in self.closed] != index.get("segments")
            or self._seq_floor != index.get("seq_floor", 0)
            or [[r.first, r.last, r.reason] for r in self.lost] != index.get("lost", [])
        ):
            self._write_index()

    def _closed_segment(self, path: Path, known: Segment | None) -> Segment:
        if known is not None and known.size == path.stat().st_size:
            return known
        if self.read_only:
            docs = JournalStorage(path, read_only=True).read()["events"].values()
            return describe(path, list(docs), self.zone)
        result, damage = recover(path, self.damaged_dir)
        if damage is None and known is not None and len(result.docs) < known.count:
            # Cut short at a line boundary: nothing to keep, but the loss must be seen.
            damage = Damage(
                path.name,
                "corrupt",
                "nothing (the file was cut short)",
                known.count - len(result.docs),
            )
        self._note_damage(damage, max(result.max_seq_seen, known.last if known else 0))
        return describe(path, result.docs, self.zone)

    def _note_damage(self, damage: Damage | None, max_seq_seen: int) -> None:
        if damage is not None:
            self.damage.append(damage)
            first = int(damage.file.split("_", 1)[0])
            reason = "torn" if damage.kind == "torn_tail" else "corrupt"
            self._damaged_spans.append(Lost(first, max(first, max_seq_seen), reason))
            # Never reuse a seq that might have been acknowledged from the damaged bytes.
            self._seq_floor = max(self._seq_floor, max_seq_seen)

    def _record_holes(self) -> None:
        """Record every seq up to `last_seq` that no segment holds and no record explains yet:
        sync declares exactly these lost (docs/protocol.md), never a seq it merely lacks."""
        held: list[tuple[int, int]] = []
        for segment, docs in self._segments():
            if segment.count == segment.last - segment.first + 1 and segment.count:
                held.append((segment.first, segment.last))
            elif segment.count:
                rows = docs if docs is not None else self._docs_of(segment)
                for _, doc in rows:
                    seq = doc["seq"]
                    if held and held[-1][1] + 1 == seq:
                        held[-1] = (held[-1][0], seq)
                    else:
                        held.append((seq, seq))
        holes, expected = [], 1
        for first, last in held:
            if first > expected:
                holes.append((expected, first - 1))
            expected = max(expected, last + 1)
        if expected <= self.last_seq:
            holes.append((expected, self.last_seq))
        new = add_lost([], [self._why_lost(a, b) for a, b in holes])
        found = [r for r in add_lost(self.lost, new) if r not in self.lost]
        if found:
            self.lost = add_lost(self.lost, new)
            for r in found:
                log.log(
                    logging.ERROR if r.reason == "missing" else logging.WARNING,
                    "seqs %d-%d are lost on this post (%s): the district will be told",
                    r.first,
                    r.last,
                    r.reason,
                )

    def _why_lost(self, first: int, last: int) -> Lost:
        for span in self._damaged_spans:
            if span.first <= last and first <= span.last:
                return Lost(first, last, span.reason)
        return Lost(first, last, "purged" if last <= self.acked else "missing")

    def lost_between(self, first: int, last: int) -> list[Lost]:
        """The recorded lost seqs within first..last, cut to that range, in order."""
        with self._lock:
            return [
                Lost(max(r.first, first), min(r.last, last), r.reason)
                for r in self.lost
                if r.last >= first and r.first <= last
            ]

    def _load_index(self) -> dict[str, Any]:
        return load_index(self.events_dir)

    def _write_index(self) -> None:
        write_index(self.events_dir, self._seq_floor, self.closed, self.lost)

    def _load_watermark(self) -> int:
        path = self.data_dir / "sync.json"
        self.acked_at: str | None = None  # when the district last acknowledged (UTC text)
        self.epoch: str | None = None  # the district database's epoch the watermark is of
        self.epochs_left: list[str] = []  # epochs this post rewound away from, oldest first
        try:
            saved = json.loads(path.read_bytes())
            acked = int(saved["acked"])
            self.acked_at = saved["time"] if isinstance(saved.get("time"), str) else None
            self.epoch = saved["epoch"] if isinstance(saved.get("epoch"), str) else None
            left = saved.get("left")
            left = left if isinstance(left, list) else []
            self.epochs_left = [e for e in left if isinstance(e, str)]
            return acked
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError):
            # Resending is harmless (the district skips what it has); losing events is not.
            log.error("%s is unreadable; every event will be offered to the district again", path)
            return 0

    # -- writing -------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        return self.last_seq + 1

    def append(
        self, kind: ev.Kind, *, moment: datetime, clock: str = "unknown", **fields: Any
    ) -> ev.Event:
        """Give the next seq to a new event and make it durable; raise StoreUnavailable."""
        self._writable()
        with self._lock:
            seq = self.last_seq + 1
            event = ev.make(self.post, seq, moment, kind, clock=clock, **fields)
            day = ev.local_day(event["time"], self.zone)
            try:
                active = self._segment_for(seq, day)
                active.events.insert(event)
            except StoreUnavailable as e:
                self.last_error = str(e)
                log.error("event %d not stored: %s", seq, e)
                raise
            self.last_seq = seq
            self.last_error = None
            self._active_rows.append((day, event))
            info = self._active_info
            info.last, info.count = seq, info.count + 1
            info.min_day, info.max_day = min(info.min_day, day), max(info.max_day, day)
            return event

    def _segment_for(self, seq: int, day: str) -> SegmentDB:
        active = self._active
        if (
            active is not None
            and day == self._active_day
            and (len(active.journal) < self.segment_max)
        ):
            return active
        try:
            path = self.events_dir / segment_name(seq, day)
            path.touch()
            fsync_dir(self.events_dir)
            if active is not None:
                self._close_active()
            self._active = SegmentDB(path, damaged_dir=self.damaged_dir)
            self._active_info = Segment(path.name, seq, seq - 1, 0, day, day, 0)
            self._active_rows, self._active_day = [], day
        except OSError as e:
            raise StoreUnavailable(e.errno, f"cannot start a new segment: {e}") from e
        return self._active

    def _close_active(self) -> None:
        assert self._active is not None
        self._active.close()
        info, path = self._active_info, self.events_dir / self._active_info.file
        if len(self._active.journal) == 0:
            path.unlink()  # started but never used: it would only confuse the index
        else:
            info.size = path.stat().st_size
            self.closed.append(info)
            try:
                self._write_index()
            except OSError:
                self.closed.pop()  # the roll failed: the segment stays the active one
                raise
        self._active = None

    def acknowledge(self, seq: int) -> bool:
        """Move the synced watermark up to seq (a cumulative ack); False if it was not new."""
        self._writable()
        with self._lock:
            if seq <= self.acked:
                return False
            if seq > self.last_seq:
                raise StoreError(f"ack {seq} is beyond the last event {self.last_seq}")
            self._save_watermark(seq, self.epoch, self.epochs_left)
            return True

    def adopt_epoch(self, epoch: str) -> None:
        """Take the district's epoch as the one the watermark is of (first seen, or a new
        one that holds at least the watermark): nothing is sent again."""
        self._writable()
        with self._lock:
            if epoch != self.epoch:
                left = self.epochs_left if self.epoch is None else [*self.epochs_left, self.epoch]
                self._save_watermark(self.acked, epoch, left[-EPOCHS_LEFT:])

    def rewind(self, seq: int, epoch: str) -> int:
        """Move the watermark DOWN to seq for the district's new `epoch` (its database was
        restored and holds only up to seq), so that the rest is offered again. The only way
        the watermark goes down; returns where it was."""
        self._writable()
        with self._lock:
            was = self.acked
            if not 0 <= seq <= self.last_seq:
                raise StoreError(f"a rewind to {seq} is beyond the last event {self.last_seq}")
            left = [*self.epochs_left, self.epoch] if self.epoch is not None else self.epochs_left
            self._save_watermark(seq, epoch, [e for e in left if e != epoch][-EPOCHS_LEFT:])
            log.error(
                "the district's database is a new one (epoch %s): the watermark goes back "
                "from %d to %d and events %d-%d are offered to it again",
                epoch,
                was,
                seq,
                seq + 1,
                self.last_seq,
            )
            return was

    def _save_watermark(self, seq: int, epoch: str | None, left: list[str]) -> None:
        stamp = ev.utc_text(datetime.now().astimezone())
        payload: dict[str, Any] = {"acked": seq, "time": stamp}
        if epoch is not None:
            payload |= {"epoch": epoch, "left": left}
        try:
            atomic_write(self.data_dir / "sync.json", json.dumps(payload).encode())
        except OSError as e:
            raise StoreUnavailable(e.errno, f"cannot save the sync watermark: {e}") from e
        self.acked, self.acked_at, self.epoch, self.epochs_left = seq, stamp, epoch, left

    # -- reading -------------------------------------------------------------------

    @property
    def pending(self) -> int:
        return self.last_seq - self.acked

    @property
    def count(self) -> int:
        with self._lock:
            active = len(self._active.journal) if self._active else 0
            return sum(s.count for s in self.closed) + active

    def _docs_of(self, segment: Segment) -> list[tuple[str, ev.Event]]:
        """(day, event) pairs of a closed segment, from a small cache of parsed segments."""
        cached = self._cache.get(segment.file)
        if cached is not None:
            self._cache.move_to_end(segment.file)
            return cached
        storage = JournalStorage(self.events_dir / segment.file, read_only=True)
        docs = [(ev.local_day(d["time"], self.zone), d) for d in storage.read()["events"].values()]
        self._cache[segment.file] = docs
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return docs

    def _segments(self) -> list[tuple[Segment, list[tuple[str, ev.Event]] | None]]:
        """Every segment, oldest first; the active one comes with its documents."""
        out: list[tuple[Segment, list[tuple[str, ev.Event]] | None]] = [
            (s, None) for s in self.closed
        ]
        if self._active is not None:
            out.append((self._active_info, self._active_rows))
        return out

    def between(self, first_day: str, last_day: str) -> list[ev.Event]:
        """Events whose local day lies in [first_day, last_day], in seq order."""
        return list(self.iter_between(first_day, last_day))

    def iter_between(self, first_day: str, last_day: str) -> Iterator[ev.Event]:
        """Like `between`, one segment in memory at a time (for exports of a whole year)."""
        with self._lock:
            segments = [
                (s, None if d is None else list(d))
                for s, d in self._segments()
                if s.max_day >= first_day and s.min_day <= last_day
            ]
        for segment, docs in segments:
            if docs is None:
                with self._lock:
                    docs = self._docs_of(segment)
            yield from (doc for day, doc in docs if first_day <= day <= last_day)

    def on_day(self, day: str) -> list[ev.Event]:
        return self.between(day, day)

    def since(self, seq: int, limit: int | None = None) -> list[ev.Event]:
        """Events with a seq above `seq`, oldest first, at most `limit` of them."""
        with self._lock:
            found: list[ev.Event] = []
            start = max(bisect_right([s.first for s in self.closed], seq + 1) - 1, 0)
            for segment, docs in self._segments()[start:]:
                if segment.last <= seq:
                    continue
                for _, doc in docs if docs is not None else self._docs_of(segment):
                    if doc["seq"] > seq:
                        found.append(doc)
                        if limit is not None and len(found) >= limit:
                            return found
            return found

    def get(self, seq: int) -> ev.Event | None:
        found = self.since(seq - 1, limit=1)
        return found[0] if found and found[0]["seq"] == seq else None

    def recent(self, n: int) -> list[ev.Event]:
        """The last n events, newest first."""
        if n <= 0:
            return []
        with self._lock:
            found: list[ev.Event] = []
            for segment, docs in reversed(self._segments()):
                rows = docs if docs is not None else self._docs_of(segment)
                found.extend(doc for _, doc in reversed(rows[-(n - len(found)) :]))
                if len(found) >= n:
                    break
            return found

    def today(self, now: datetime) -> str:
        return now.astimezone(self.zone).date().isoformat()

    def health(self) -> dict[str, Any]:
        damaged = (
            sorted(p.name for p in self.damaged_dir.glob("*"))
            if (self.damaged_dir.exists())
            else []
        )
        return {
            "ok": self.last_error is None,
            "writable": self.last_error is None and not self.read_only,
            "last_error": self.last_error,
            "damage_found": [d.describe() for d in self.damage],
            "damaged_files_kept": damaged,
            "segments": len(self.closed) + (1 if self._active else 0),
        }

    # -- rewriting: only to remove personal data (edge/redaction.py) -----------------

    def segment_days(self) -> list[tuple[int, int, str]]:
        """(first seq, last seq, last local day) of every segment, the active one included."""
        with self._lock:
            return [(s.first, s.last, s.max_day) for s, _ in self._segments()]

    def closed_before(self, day: str | None) -> list[Segment]:
        """The closed segments holding a day before `day` (all of them for None)."""
        with self._lock:
            return [s for s in self.closed if day is None or s.min_day < day]

    def rewrite_closed(self, segment: Segment, edit: Edit) -> bool:
        """Replace a closed segment's events by `edit(events)`, atomically; False if unchanged.

        A damaged file is left to the recovery of the next opening (logged, not rewritten).
        """
        self._writable()
        with self._rewriting:
            path = self.events_dir / segment.file
            found = scan(path.read_bytes())
            if found.tail_bytes or found.corrupt:
                log.error("%s is damaged: personal data in it is not purged", segment.file)
                return False
            docs = edit(found.docs)
            with self._lock:
                if docs is None or segment not in self.closed:  # unchanged, or dropped
                    return False
            atomic_write(path, b"".join(encode(d) for d in docs))
            with self._lock:
                self._cache.pop(segment.file, None)
                segment.size = path.stat().st_size
                self._write_index()
                self.rewrites += 1
            return True

    def rewrite_active(self, edit: Edit, before_day: str | None = None) -> bool:
        """Like `rewrite_closed`, for the segment being appended to (if its day is before
        `before_day`): the press path waits meanwhile, so no event can be lost."""
        self._writable()
        with self._rewriting, self._lock:
            if self._active is None or (before_day is not None and self._active_day >= before_day):
                return False
            docs = edit([d for _, d in self._active_rows])
            if docs is None:
                return False
            path = self._active.journal.path
            self._active.close()  # its append descriptor would point at the replaced file
            atomic_write(path, b"".join(encode(d) for d in docs))
            self._active = SegmentDB(path, damaged_dir=self.damaged_dir)
            rows = self._active.journal.read()["events"].values()
            self._active_rows = [(ev.local_day(d["time"], self.zone), d) for d in rows]
            self.rewrites += 1
            return True

    def drop_synced(self, before_day: str) -> list[Segment]:
        """Delete closed segments wholly acknowledged by the district, of days before `before_day`.

        An unsynced event is never deleted. The index remembers the highest deleted seq as
        the seq floor, so numbering never goes back; `count` is then what the Pi holds.
        """
        self._writable()
        with self._rewriting, self._lock:
            gone = [s for s in self.closed if s.last <= self.acked and s.max_day < before_day]
            if not gone:
                return []
            floor, closed, lost = self._seq_floor, self.closed, self.lost
            self._seq_floor = max(floor, *(s.last for s in gone))
            self.closed = [s for s in closed if s not in gone]
            self.lost = add_lost(lost, [Lost(s.first, s.last, "purged") for s in gone if s.count])
            try:  # the index first: a cut before the unlinks only leaves files to delete again
                self._write_index()
            except OSError:
                self._seq_floor, self.closed, self.lost = floor, closed, lost
                raise
            for segment in gone:
                self._cache.pop(segment.file, None)
                (self.events_dir / segment.file).unlink(missing_ok=True)
            fsync_dir(self.events_dir)
            return gone

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.data_dir} is open read-only")

    # -- closing -------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._active is not None:
                self._active.close()
                self._active = None
            if self._owner is not None:
                self._owner.close()
                self._owner = None

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The one exception to append-only: removing personal data that UU PDP says must go.

A legal purge or a data subject's erasure replaces the `data` of events already written;
events keep post, seq, kind, ref and time, so counts and seq contiguity stay. Whole closed
segments the district has acknowledged may be deleted after their retention. `EventStore`
inherits this; edge/privacy.py and edge/retention.py decide when it is done.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from edge import events as ev
from edge.journal import SegmentDB, atomic_write, encode, fsync_dir, scan
from sensors.errors import StoreError

if TYPE_CHECKING:
    from edge.store import Segment

log = logging.getLogger(__name__)


class Redaction:
    """Purge and erasure on an `EventStore` (which provides the attributes below)."""

    read_only: bool
    data_dir: Path
    events_dir: Path
    damaged_dir: Path
    zone: ZoneInfo
    closed: list[Segment]
    acked: int
    _lock: threading.RLock
    _cache: OrderedDict[str, list[tuple[str, dict[str, Any]]]]
    _active: SegmentDB | None
    _active_day: str
    _active_rows: list[tuple[str, dict[str, Any]]]
    _seq_floor: int

    if TYPE_CHECKING:

        def _segments(self) -> list[tuple[Segment, list[tuple[str, dict[str, Any]]] | None]]: ...

        def _write_index(self) -> None: ...

    PURGED: ClassVar[dict[str, Any]] = {"purged": True}  # what a purged event's `data` becomes
    _purging = threading.Lock()  # one rewrite at a time (closed files are read outside _lock)

    def segment_days(self) -> list[tuple[int, int, str]]:
        """(first seq, last seq, last local day) of every segment, the active one included."""
        with self._lock:
            return [(s.first, s.last, s.max_day) for s, _ in self._segments()]

    def redact(
        self,
        choose: Callable[[str, dict[str, Any]], bool],
        *,
        before_day: str | None = None,
        active: bool = False,
    ) -> list[int]:
        """Replace the `data` of the events `choose(day, event)` picks with PURGED.

        Each segment holding one is rewritten atomically (temp, fsync, rename, dir fsync);
        only segments with a day before `before_day` are read. The active segment is
        rewritten only when `active` is true: the caller must be this store's only writer
        and no station may be appending. Returns the seqs redacted.
        """
        if self.read_only:
            raise StoreError(f"{self.data_dir} is open read-only")
        done: list[int] = []
        with self._purging:
            with self._lock:
                closed = [s for s in self.closed if before_day is None or s.min_day < before_day]
            for segment in closed:
                done += self._redact_closed(segment, choose)
            if active:
                with self._lock:
                    done += self._redact_active(choose, before_day)
        return done

    def _redact_closed(
        self, segment: Segment, choose: Callable[[str, dict[str, Any]], bool]
    ) -> list[int]:
        path = self.events_dir / segment.file
        data = path.read_bytes()
        found = scan(data)
        if found.tail_bytes or found.corrupt:  # left to the recovery of the next opening
            log.error("%s is damaged: personal data in it is not purged", segment.file)
            return []
        docs, seqs = self._redacted(found.docs, choose)
        if not seqs:
            return []
        atomic_write(path, b"".join(encode(d) for d in docs))
        with self._lock:
            self._cache.pop(segment.file, None)
            for known in self.closed:
                if known.file == segment.file:
                    known.size = path.stat().st_size
            self._write_index()
        return seqs

    def _redact_active(
        self, choose: Callable[[str, dict[str, Any]], bool], before_day: str | None
    ) -> list[int]:
        if self._active is None or (before_day is not None and self._active_day >= before_day):
            return []
        path = self._active.journal.path
        docs, seqs = self._redacted([d for _, d in self._active_rows], choose)
        if not seqs:
            return []
        self._active.close()  # its append descriptor would point at the replaced file
        atomic_write(path, b"".join(encode(d) for d in docs))
        self._active = SegmentDB(path, damaged_dir=self.damaged_dir)
        rows = self._active.journal.read()["events"].values()
        self._active_rows = [(ev.local_day(d["time"], self.zone), d) for d in rows]
        return seqs

    def _redacted(
        self, docs: list[dict[str, Any]], choose: Callable[[str, dict[str, Any]], bool]
    ) -> tuple[list[dict[str, Any]], list[int]]:
        out, seqs = [], []
        for doc in docs:
            if (
                "data" in doc
                and doc["data"] != self.PURGED
                and choose(ev.local_day(doc["time"], self.zone), doc)
            ):
                doc = {**doc, "data": dict(self.PURGED)}
                seqs.append(doc["seq"])
            out.append(doc)
        return out, seqs

    def drop_synced(self, before_day: str) -> list[Segment]:
        """Delete closed segments wholly acknowledged by the district, of days before `before_day`.

        An unsynced event is never deleted. The index remembers the highest deleted seq as
        the seq floor, so numbering never goes back; `count` is then what the Pi holds.
        """
        if self.read_only:
            raise StoreError(f"{self.data_dir} is open read-only")
        with self._purging, self._lock:
            gone = [s for s in self.closed if s.last <= self.acked and s.max_day < before_day]
            if not gone:
                return []
            floor, closed = self._seq_floor, self.closed
            self._seq_floor = max(floor, *(s.last for s in gone))
            self.closed = [s for s in closed if s not in gone]
            try:  # the index first: a cut before the unlinks only leaves files to delete again
                self._write_index()
            except OSError:
                self._seq_floor, self.closed = floor, closed
                raise
            for segment in gone:
                self._cache.pop(segment.file, None)
                (self.events_dir / segment.file).unlink(missing_ok=True)
            fsync_dir(self.events_dir)
            return gone

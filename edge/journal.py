"""A crash-safe TinyDB storage: one append-only file of checksummed lines per segment.

Stock `JSONStorage` rewrites the whole file on every insert, so a power cut tears it and
each insert costs the whole history. Here an insert appends one line `<crc32> <json>` and
fdatasyncs it; a reader keeps every whole, valid line and cuts a torn tail. TinyDB's
whole-table writes are refused: events are never edited, corrections are new events.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import time
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from tinydb import TinyDB
from tinydb.storages import Storage
from tinydb.table import Document, Table

from edge.events import Event
from sensors.errors import AppendOnlyError, StoreUnavailable

log = logging.getLogger(__name__)

TABLE = "events"
_SEQ = re.compile(rb'"seq":\s*(\d+)')


def encode(doc: Mapping[str, Any]) -> bytes:
    """One journal line: CRC-32 of the JSON text in hex, a space, the JSON, a newline."""
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> Event | None:
    """The event of one line (without its newline), or None if it is damaged."""
    if len(line) < 11 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        doc = json.loads(body.decode())
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("seq"), int):
        return None
    return cast(Event, doc)  # its checksum holds: the store wrote it, from `make`


@dataclass
class Scan:
    """What a journal file holds: its valid documents and where it is damaged."""

    docs: list[Event] = field(default_factory=list)
    good_end: int = 0  # byte offset just after the last valid line
    bad_lines: int = 0  # damaged lines followed by a valid one (real corruption)
    tail_bytes: int = 0  # bytes after the last valid line (a torn write)
    max_seq_seen: int = 0  # highest seq anywhere in the bytes, damaged lines too

    @property
    def corrupt(self) -> bool:
        return self.bad_lines > 0


def scan(data: bytes) -> Scan:
    """Every valid document of a journal and where it is damaged (see `Scan`)."""
    whole = _scan_whole(data)
    return whole if whole is not None else _scan_lines(data)


def _scan_whole(data: bytes) -> Scan | None:
    """The fast path for an undamaged file: check every CRC, then parse all lines at once."""
    if data and not data.endswith(b"\n"):
        return None
    bodies = []
    for line in data.split(b"\n")[:-1]:
        body = line[9:]
        if len(line) < 11 or line[8:9] != b" " or line[:8] != b"%08x" % zlib.crc32(body):
            return None
        bodies.append(body)
    try:
        docs = json.loads(b"[" + b",".join(bodies) + b"]")
    except ValueError:
        return None
    if not all(isinstance(d, dict) and isinstance(d.get("seq"), int) for d in docs):
        return None
    events = cast(list[Event], docs)  # every checksum holds, as in `decode`
    return Scan(docs=events, good_end=len(data), max_seq_seen=events[-1]["seq"] if events else 0)


def _scan_lines(data: bytes) -> Scan:
    result = Scan()
    offset = 0
    pending_bad = 0
    for line in data.split(b"\n")[:-1]:
        end = offset + len(line) + 1
        doc = decode(line)
        if doc is None:
            pending_bad += 1
        else:
            result.bad_lines += pending_bad
            pending_bad = 0
            result.docs.append(doc)
            result.good_end = end
        offset = end
    result.tail_bytes = len(data) - result.good_end
    seen = (int(m) for m in _SEQ.findall(data)) if result.tail_bytes or result.corrupt else ()
    result.max_seq_seen = max((*seen, *(d["seq"] for d in result.docs[-1:])), default=0)
    return result


@dataclass
class Damage:
    """A damaged journal found on opening, and what was done about it."""

    file: str
    kind: str  # "torn_tail" (a cut write, trimmed) or "corrupt" (moved aside, salvaged)
    kept_as: str  # where the original bytes were kept
    lines_lost: int
    found: float = field(default_factory=time.time)

    def describe(self) -> str:
        what = "a torn final record was cut" if self.kind == "torn_tail" else "it was corrupt"
        return f"{self.file}: {what}; original kept as {self.kept_as}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace a small file so that a cut leaves either the old or the new one whole."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%S")


def _unused(path: Path) -> Path:
    """path, or path.1, path.2, ...: kept bytes are never overwritten."""
    n = 0
    while (candidate := path.with_name(f"{path.name}.{n}" if n else path.name)).exists():
        n += 1
    return candidate


def recover(path: Path, damaged_dir: Path) -> tuple[Scan, Damage | None]:
    """Read a journal for writing: trim a torn tail, set a corrupt file aside and salvage it."""
    data = path.read_bytes()
    result = scan(data)
    if not result.tail_bytes and not result.corrupt:
        return result, None
    damaged_dir.mkdir(parents=True, exist_ok=True)
    stamp = _stamp()
    if not result.corrupt:
        kept = _unused(damaged_dir / f"{path.name}.tail-{stamp}")
        atomic_write(kept, data[result.good_end :])
        with path.open("r+b") as f:
            f.truncate(result.good_end)
            os.fsync(f.fileno())
        log.warning("%s: cut %d bytes of a torn final record", path.name, result.tail_bytes)
        return result, Damage(path.name, "torn_tail", str(kept), 1)
    kept = _unused(damaged_dir / f"{path.name}.corrupt-{stamp}")
    # Keep the original first, then swap in the salvage: a cut at any point leaves both.
    atomic_write(kept, data)
    atomic_write(path, b"".join(encode(doc) for doc in result.docs))
    lost = result.bad_lines + (1 if result.tail_bytes else 0)
    log.error(
        "%s was corrupt: moved to %s, %d valid records kept, %d damaged lines",
        path.name,
        kept,
        len(result.docs),
        lost,
    )
    return result, Damage(path.name, "corrupt", str(kept), lost)


class JournalStorage(Storage):
    """TinyDB storage over one journal file: documents keyed by their seq."""

    def __init__(
        self, path: str | Path, *, read_only: bool = False, damaged_dir: Path | None = None
    ) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self.damage: Damage | None = None
        if read_only:
            result = scan(self.path.read_bytes()) if self.path.exists() else Scan()
        else:
            self.path.touch(exist_ok=True)
            result, self.damage = recover(self.path, damaged_dir or self.path.parent / "damaged")
        self.max_seq_seen = result.max_seq_seen
        self._docs: dict[str, Event] = {str(d["seq"]): d for d in result.docs}
        self._tables = {TABLE: self._docs}
        self.last_seq = max((d["seq"] for d in result.docs), default=0)
        self._fd: int | None = None

    def read(self) -> dict[str, dict[str, Event]]:
        return self._tables

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        raise AppendOnlyError("events are never rewritten; a correction is a new event")

    def append(self, doc: Event) -> None:
        """Make one document durable, then visible; on failure nothing changes."""
        if self.read_only:
            raise AppendOnlyError(f"{self.path.name} is closed for writing")
        if doc["seq"] <= self.last_seq:
            raise AppendOnlyError(f"seq {doc['seq']} is not after {self.last_seq}")
        line = encode(doc)
        fd = self._open()
        size = os.fstat(fd).st_size
        try:
            _write_all(fd, line)
            os.fdatasync(fd)
        except OSError as e:
            self._undo(fd, size)
            reason = errno.errorcode.get(e.errno or 0, "EIO")
            raise StoreUnavailable(e.errno, f"cannot write {self.path.name}: {reason}") from e
        self._docs[str(doc["seq"])] = doc
        self.last_seq = doc["seq"]

    def _open(self) -> int:
        if self._fd is None:
            try:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except OSError as e:
                raise StoreUnavailable(e.errno, f"cannot open {self.path.name}: {e}") from e
        return self._fd

    def _undo(self, fd: int, size: int) -> None:
        # A half-written line would be cut on the next start anyway; trimming it now keeps
        # the next append's line whole when the disk comes back.
        try:
            os.ftruncate(fd, size)
        except OSError:
            log.warning("%s: could not trim a failed write", self.path.name)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __len__(self) -> int:
        return len(self._docs)


class EventTable(Table):
    """A TinyDB table that only appends: insert writes one line, edits are refused."""

    def insert(self, document: Mapping[str, Any]) -> int:
        doc = document if isinstance(document, dict) else dict(document)
        storage = self._storage
        if not isinstance(storage, JournalStorage):
            raise TypeError("EventTable needs a JournalStorage")
        storage.append(cast(Event, doc))  # TinyDB's signature: the store inserts only events
        self.clear_cache()
        return int(doc["seq"])

    def insert_multiple(self, documents: Iterable[Mapping[str, Any]]) -> list[int]:
        return [self.insert(doc) for doc in documents]

    def _update_table(self, updater: Any) -> None:
        raise AppendOnlyError("events are never edited; a correction is a new event")

    def get_seq(self, seq: int) -> Document | None:
        doc = self._read_table().get(str(seq))
        return Document(doc, seq) if doc is not None else None


class SegmentDB(TinyDB):
    """TinyDB over one journal segment; its single table holds events keyed by seq."""

    table_class = EventTable
    default_table_name = TABLE

    def __init__(self, path: str | Path, **kwargs: Any) -> None:
        super().__init__(path, storage=JournalStorage, **kwargs)

    @property
    def journal(self) -> JournalStorage:
        storage = self.storage
        assert isinstance(storage, JournalStorage)
        return storage

    @property
    def events(self) -> EventTable:
        table = self.table(TABLE)
        assert isinstance(table, EventTable)
        return table

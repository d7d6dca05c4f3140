"""The seam between the district's code and where it keeps its data: `Storage`, what a
stored batch returns, and the seam's own errors. The receiver, page, report and export
use only this; `district.backends` picks the implementation from the `--db` value.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self

from edge.events import Event
from sensors.errors import PoskoError
from sync.batch import Batch

log = logging.getLogger(__name__)

SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")  # of a `--db` that is an address


def shown(db: str | Path) -> str:
    """A `--db` value as messages and logs may show it: an address loses its user name and
    password (a file path is shown whole)."""
    text = str(db)
    if not SCHEME.match(text):
        return text
    return re.sub(r"//[^@/]*@", "//", text.split("?")[0])


def is_address(db: str | Path) -> bool:
    """Whether `db` names a database server rather than a file."""
    return SCHEME.match(str(db)) is not None


class StorageError(PoskoError):
    """The storage failed (not the payload's fault): nothing was stored, nothing is acked."""


class UnsupportedStorage(StorageError, ValueError):
    """The `--db` value names a kind of storage this version cannot open."""


@dataclass(frozen=True)
class Stored:
    inserted: int  # events new to the storage
    contiguous: int  # the post's highest seq held with everything before it


@dataclass(frozen=True)
class Rejected:
    """A payload the receiver refused, with why; `keep`: keep a row of it, not only count it."""

    topic: str
    post: str | None  # None: no post could be told (a topic that is not a post's)
    reason: str
    payload: bytes
    keep: bool = True


@dataclass(frozen=True)
class QuarantineLimits:
    """How much of the refused payloads is kept (docs/protocol.md): the newest `rows` per
    post (and `rows_total` in all), each cut to `payload_bytes`, and of a post that keeps
    sending them one every `every_s` at most (for how long: `district.retention`). Every
    refusal is counted."""

    rows: int = 100
    rows_total: int = 5000
    payload_bytes: int = 16 * 1024
    every_s: float = 1.0


@dataclass(frozen=True)
class Purge:
    """One retention round: UTC time texts before which each class is purged."""

    visitor_details: str  # visitor and referral records' data (events' time)
    nik: str  # the NIK inside visitor records
    events: str  # whole events
    quarantine: str  # refused payloads (their receipt time; their counts stay)


def joined(
    db: Any, names: str, rows: Sequence[tuple[Any, ...]], query: str, chunk: int = 150
) -> Iterator[tuple[Any, ...]]:
    """The rows `query` gives with `rows` as a table `k` (columns `names`), for an SQL
    storage: `WITH k (names) AS (VALUES ...) query`, `chunk` rows at a time (150 rows of 5:
    under SQLite's old limit of 999 variables), so one statement serves many posts."""
    for at in range(0, len(rows), chunk):
        part = rows[at : at + chunk]
        marks = ", ".join(["(" + ", ".join("?" * len(part[0])) + ")"] * len(part))
        params = [value for row in part for value in row]
        yield from db.execute(f"WITH k ({names}) AS (VALUES {marks}) {query}", params)


class SQLHandle(Protocol):
    """What the district page's own tables (accounts, registry, emergencies, daily
    figures) need of an SQL storage: its connection for reads, a transaction for writes
    (`SQLiteStorage` is one; raise `StorageError` only)."""

    @property
    def conn(self) -> Any: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


class Storage(Protocol):
    """Every post's events exactly once, their gaps and lost ranges, statuses, quarantine.

    Safe to share between threads; raises only `StorageError`. `close()` is idempotent.
    """

    # -- writing (the receiver) --------------------------------------------------------

    def store_batch(self, batch: Batch, *, alert: bool = False) -> Stored:
        """Store a checked batch in one transaction, duplicates skipped, with its lost
        ranges and the erasures it calls for; what the ack needs, once committed."""
        ...

    def store_batches(self, batches: Sequence[tuple[Batch, bool]]) -> list[Stored]:
        """Store checked (batch, alert) pairs, of any posts, as `store_batch` does but all
        in ONE transaction (group commit); for each batch, in order, what its ack needs,
        once committed. Nothing of the group is stored if the commit fails."""
        ...

    def quarantine(self, rejected: Sequence[Rejected], limits: QuarantineLimits) -> None:
        """Count these refused payloads and keep those marked `keep` (cut to
        `limits.payload_bytes`) in one transaction, dropping each post's oldest rows beyond
        `limits.rows` and the oldest of all beyond `limits.rows_total`."""
        ...

    def record_status(self, post: str, status: dict[str, Any]) -> None:
        """The post's latest status (`state` and the rest) and when it was seen."""
        ...

    def purge(self, before: Purge) -> dict[str, int]:
        """Remove each class of personal data older than its time, each class's removal
        recorded in the privacy log, and leave no copy in free pages or a write-ahead log;
        how many records each class lost."""
        ...

    def privacy_log(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest purges and erasures: `at`, `action`, `class`, `records`, `detail`."""
        ...

    # -- reading (the receiver, the page, the report, the export) ---------------------

    def contiguous(self, post: str) -> int:
        """The post's highest seq held with everything before it (0 for a new post)."""
        ...

    def count(self, post: str | None = None) -> int:
        """Events stored, of one post or of all."""
        ...

    def posts(self) -> list[dict[str, Any]]:
        """One row per post by name: its counters, state, last seen and `status` dict."""
        ...

    def gaps(self, post: str, limit: int = 100) -> list[tuple[int, int]]:
        """Seq ranges the district is still waiting for (neither stored nor declared lost)."""
        ...

    def lost(self, post: str) -> list[tuple[int, int]]:
        """Seq ranges the post declared lost, in order."""
        ...

    def lost_reasons(self, post: str, limit: int = 100) -> list[dict[str, Any]]:
        """The post's newest lost ranges, in order: `first`, `last`, `reason` (None where
        the post gave none), `reported`."""
        ...

    def quarantined(self, post: str | None = None) -> list[dict[str, Any]]:
        """Rejected payloads, oldest first, without their bytes."""
        ...

    def quarantine_counts(self) -> dict[str | None, int]:
        """Every payload ever refused, per post (None: no post could be told), including
        those whose rows are gone (cap, retention)."""
        ...

    def events(self, start: str = "", end: str = "~", post: str | None = None) -> Iterator[Event]:
        """Events whose UTC time text lies in [start, end), by post then seq."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

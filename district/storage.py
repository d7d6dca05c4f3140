"""The seam between the district's code and where it keeps its data: `Storage`, what a
stored batch returns, and the seam's own errors. The receiver, page, report and export
use only this; `district.backends` picks the implementation from the `--db` value.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, Self

from edge.events import Event
from sensors.errors import PoskoError
from sync.batch import Batch

log = logging.getLogger(__name__)


class StorageError(PoskoError):
    """The storage failed (not the payload's fault): nothing was stored, nothing is acked."""


class UnsupportedStorage(StorageError, ValueError):
    """The `--db` value names a kind of storage this version cannot open."""


@dataclass(frozen=True)
class Stored:
    inserted: int  # events new to the storage
    contiguous: int  # the post's highest seq held with everything before it


class Storage(Protocol):
    """Every post's events exactly once, their gaps and lost ranges, statuses, quarantine.

    Safe to share between threads; raises only `StorageError`. `close()` is idempotent.
    """

    # -- writing (the receiver) --------------------------------------------------------

    def store_batch(self, batch: Batch, *, alert: bool = False) -> Stored:
        """Store a checked batch in one transaction, duplicates skipped, with its lost
        ranges and the erasures it calls for; what the ack needs, once committed."""
        ...

    def quarantine(self, topic: str, post: str | None, reason: str, payload: bytes) -> None:
        """Keep a rejected payload (cut to a bounded size) with its reason."""
        ...

    def record_status(self, post: str, status: dict[str, Any]) -> None:
        """The post's latest status (`state` and the rest) and when it was seen."""
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

    def quarantined(self, post: str | None = None) -> list[dict[str, Any]]:
        """Rejected payloads, oldest first, without their bytes."""
        ...

    def quarantine_counts(self) -> dict[str | None, int]:
        """Rejected payloads per post (None: no post could be told)."""
        ...

    def events(self, start: str = "", end: str = "~", post: str | None = None) -> Iterator[Event]:
        """Events whose UTC time text lies in [start, end), by post then seq."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

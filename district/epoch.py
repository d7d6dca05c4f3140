"""The district database's epoch: a random id in its `meta` table, named in every signed
ack. A new database gets one; a database found older than what it acknowledged (a restore
from backup) gets a new one, and the posts then resend what it lacks (docs/protocol.md).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from district.storage import SQLHandle
from edge.events import utc_text

log = logging.getLogger(__name__)

KEY = "epoch"
RENEWED = "epoch_renewed"  # when and why, for the operator
REFRESH_S = 2.0  # receivers sharing one database follow a renewal within this
RENEW_EVERY_S = 3600.0  # evidence renews at most this often: a lying post cannot churn it


def new_epoch() -> str:
    return secrets.token_hex(16)


def current(handle: SQLHandle) -> str:
    """The database's epoch; a database without one (new, or made before epochs) gets one."""
    row = handle.conn.execute("SELECT value FROM meta WHERE key = ?", (KEY,)).fetchone()
    if row is not None:
        return str(row[0])
    with handle.transaction() as db:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (KEY, new_epoch()),
        )
        (value,) = db.execute("SELECT value FROM meta WHERE key = ?", (KEY,)).fetchone()
    return str(value)


def renew(handle: SQLHandle, reason: str) -> str:
    """Give the database a new epoch (it was restored): every post that sees it rewinds
    its watermark to what this database holds and sends the rest again."""
    epoch = new_epoch()
    note = f"{utc_text(datetime.now(UTC))} {reason}"
    with handle.transaction() as db:
        for key, value in ((KEY, epoch), (RENEWED, note)):
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
    log.error("NEW DISTRICT EPOCH %s: %s; the posts will resend what it lacks", epoch, reason)
    return epoch


def as_handle(storage: object) -> SQLHandle | None:
    """The storage's SQL handle, or None for a storage without SQL (its acks name no epoch)."""
    if hasattr(storage, "conn") and hasattr(storage, "transaction"):
        return cast(SQLHandle, storage)  # checked just above
    return None


class Epoch:
    """A receiver's view of the epoch: read at most every REFRESH_S, and renewed when a
    post shows it was acknowledged more than this database holds. Read lazily: a storage
    that fails raises `StorageError` where the ack would be made, and no ack goes."""

    def __init__(self, handle: SQLHandle, now: Callable[[], float] = time.monotonic) -> None:
        self.handle = handle
        self.now = now
        self._value = ""
        self._read_at = float("-inf")
        self._renewed_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def value(self) -> str:
        with self._lock:
            if self.now() - self._read_at >= REFRESH_S:
                self._value, self._read_at = current(self.handle), self.now()
            return self._value

    def heard(self, post: str, status: dict[str, Any], contiguous: int) -> bool:
        """A post's status: True if it shows acks beyond what this database holds, in this
        very epoch (the database is older than its own acks: restored), and the epoch is
        renewed. A post of another epoch, or none, only needs this epoch's ack."""
        acked = status.get("acked")
        if status.get("epoch") != self.value or not isinstance(acked, int) or acked <= contiguous:
            return False
        with self._lock:
            if self.now() - self._renewed_at < RENEW_EVERY_S:
                return False
            reason = (
                f"post {post} was acknowledged up to seq {acked} in epoch {self._value} "
                f"but this database holds it only up to {contiguous} (restored from a backup?)"
            )
            self._value = renew(self.handle, reason)
            self._read_at = self._renewed_at = self.now()
        return True

"""Each receiver's link to the broker, as the page shows it: connected since, or cut off
since. The receiver writes a row when its link changes (`receiver_link`); the page, in the
same process or another, reads them, so that a dead broker reads as such, not as dead posts.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from typing import Any

from district.storage import SQLHandle, StorageError
from edge.events import utc_text

log = logging.getLogger(__name__)

CONNECTED, CUT, STOPPED = "connected", "cut", "stopped"


def record(handle: Any, receiver: str, broker: str, state: str, at: str | None = None) -> None:
    """`receiver`'s link is now `state` (since `at`, default now); kept when unchanged, so
    that "since" stays the moment it changed. Never raises: the receiver goes on."""
    if not hasattr(handle, "transaction"):
        return  # a storage without the page's tables
    db: SQLHandle = handle
    at = at or utc_text(datetime.now(UTC))
    try:
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO receiver_link VALUES (?, ?, ?, ?) ON CONFLICT (receiver) DO "
                "UPDATE SET broker = excluded.broker, state = excluded.state, "
                "since = excluded.since WHERE receiver_link.state != excluded.state",
                (receiver, broker, state, at),
            )
    except StorageError as e:
        log.warning("could not record the receiver's link (%s): %s", state, e)


def links(handle: Any) -> list[dict[str, Any]]:
    """Every receiver's link: `receiver`, `broker`, `state`, `since`; stopped ones left out."""
    if not hasattr(handle, "conn"):
        return []
    try:
        cursor = handle.conn.execute(
            "SELECT receiver, broker, state, since FROM receiver_link "
            "WHERE state != ? ORDER BY receiver",
            (STOPPED,),
        )
    except (
        sqlite3.Error,
        StorageError,
    ):  # an older database: no table yet (read-only pages cannot create it)
        return []
    return [dict(zip(("receiver", "broker", "state", "since"), r, strict=True)) for r in cursor]


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The page's one line: "connected" (since the latest connection), "cut" (since the
    earliest cut, if any receiver is cut off), or "unknown" (no receiver has reported)."""
    cut = [r for r in rows if r["state"] == CUT]
    if cut:
        return {"state": CUT, "since": min(r["since"] for r in cut), "receivers": len(rows)}
    if rows:
        return {"state": CONNECTED, "since": max(r["since"] for r in rows), "receivers": len(rows)}
    return {"state": "unknown", "since": None, "receivers": 0}

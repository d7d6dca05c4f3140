"""What the district page and export show: per-post figures, day ranges in the post's zone.

Today's counts come from `edge.tally.summarize`, the same function the Pi's status and the
guard's screen use, so every screen agrees on what a day was.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from district.storage import Storage
from edge.events import Event, utc_text
from edge.tally import summarize

log = logging.getLogger(__name__)

DEFAULT_ZONE = "Asia/Jakarta"


def day_bounds(first_day: str, last_day: str, zone: ZoneInfo) -> tuple[str, str]:
    """[start, end) in UTC time text covering local days first_day..last_day. At the
    calendar's ends (0001-01-01 east of UTC, 9999-12-31) the range stays open on that side
    ("" or "~", below and above every time text) instead of overflowing."""
    first, last = date.fromisoformat(first_day), date.fromisoformat(last_day)
    start = _midnight(first, zone) or ""
    end = _midnight(last + timedelta(days=1), zone) if last < date.max else None
    return start, end or "~"


def _midnight(day: date, zone: ZoneInfo) -> str | None:
    """The UTC time text of the start of `day` in `zone` (None past the calendar's ends)."""
    try:
        return utc_text(datetime.combine(day, time(), zone))
    except OverflowError:
        return None


def overview(db: Storage, today: str, zone: ZoneInfo) -> dict[str, Any]:
    """Every post with its state, backlog, today's counts, gaps and rejected payloads."""
    start, end = day_bounds(today, today, zone)
    by_post: dict[str, list[Event]] = defaultdict(list)
    for event in db.events(start, end):
        by_post[event["post"]].append(event)
    rejected = db.quarantine_counts()
    rows = []
    for post in db.posts():
        name = post["post"]
        gaps = db.gaps(name)
        day = summarize(by_post.get(name, []))
        rows.append(
            {
                **post,
                "pending": _waiting(post),
                "clock": post["status"].get("clock"),
                "version": post["status"].get("version"),
                "gaps": gaps,
                "missing": sum(b - a + 1 for a, b in gaps),
                "lost": sum(b - a + 1 for a, b in db.lost(name)),
                "rejected": rejected.get(name, 0),
                "today": day,
                "fevers": day["by_screening"]["recheck"],
            }
        )
    return {
        "today": today,
        "posts": rows,
        "rejected_unknown": rejected.get(None, 0),
        "rejected_total": sum(rejected.values()),
    }


def _waiting(post: dict[str, Any]) -> int | None:
    """Events the Pi holds that the district does not: from its last status, corrected by
    the batches that arrived since (a batch's range ends at the Pi's last seq)."""
    status = post["status"]
    if "last_seq" not in status and not post["max_seq"]:
        return None
    held: int = max(status.get("last_seq", 0), post["max_seq"]) - post["contiguous"]
    return held

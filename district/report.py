"""Day ranges in the district's zone, for the page, the rekap and the export: a range of
local days as UTC time texts, safe at the calendar's ends. (The overview is `district.board`.)
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge.events import utc_text

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

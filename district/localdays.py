"""Local days of UTC time texts for the daily figures (district.daily): many events at
once by bisecting midnights, and the calendar's ends without overflowing."""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge.events import local_day, utc_text

MAX_SPAN_DAYS = 400  # beyond, the midnights would cost more than converting each event


class Calendar:
    """The local day of UTC time texts, by bisecting the midnights of a range of days
    (reading 15 days of events converts ~20,000 distinct minutes: too many to cache)."""

    def __init__(self, zone: ZoneInfo, first: str, last: str) -> None:
        self.zone = zone
        self.days: list[str] = []
        self.starts: list[str] = []
        one, end = date.fromisoformat(first), date.fromisoformat(last)
        if (end - one).days > MAX_SPAN_DAYS:  # a stray far date: each event by itself
            return
        try:
            while one <= end and one < date.max:
                self.days.append(one.isoformat())
                self.starts.append(utc_text(datetime.combine(one, time(), zone)))
                one += timedelta(days=1)
            self.starts.append(utc_text(datetime.combine(one, time(), zone)) if one > end else "~")
        except OverflowError:  # at the calendar's ends: every event by itself
            self.days, self.starts = [], []

    def day(self, time_text: str) -> str:
        at = bisect_right(self.starts, time_text) - 1
        if 0 <= at < len(self.days):
            return self.days[at]
        return day_of(time_text, self.zone)  # outside the range


def day_of(time_text: str, zone: ZoneInfo) -> str:
    """`edge.events.local_day`, or the UTC day where the local one would leave the calendar
    (9999-12-31 late in UTC is year 10000 in Jakarta)."""
    try:
        return local_day(time_text, zone)
    except OverflowError:
        return time_text[:10]


def days(first: str, last: str) -> list[str]:
    """The local days from `first` to `last` inclusive (YYYY-MM-DD), in order."""
    found, one, end = [], date.fromisoformat(first), date.fromisoformat(last)
    while one <= end:
        found.append(one.isoformat())
        if one == date.max:
            break
        one += timedelta(days=1)
    return found

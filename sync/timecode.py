"""Event times as milliseconds since 1970 (UTC) and back, exactly, with a cache per day.

Only the canonical text `edge.events.utc_text` writes (2026-11-27T03:04:05.123Z) is read;
anything else raises ValueError, so that a decoded time is always the text that was sent.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache

DAY_MS = 86_400_000
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
_ONE = r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z"
_MANY = re.compile(f"(?:{_ONE}\n)*{_ONE}|")
_EPOCH = date(1970, 1, 1)
_EPOCH_DT = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


@lru_cache(maxsize=4096)
def _day_ms(day: str) -> int:
    return (date.fromisoformat(day) - _EPOCH).days * DAY_MS


@lru_cache(maxsize=4096)
def _day_text(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat()


def to_ms(text: str) -> int:
    if not isinstance(text, str) or not TIME.fullmatch(text):
        raise ValueError(f"time {str(text)[:40]!r} is not like 2026-11-27T03:04:05.123Z")
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"time {text!r} is not a real time of day")
    return _day_ms(text[:10]) + ((hour * 60 + minute) * 60 + second) * 1000 + int(text[20:23])


def all_to_ms(texts: list[str]) -> list[int]:
    """Many times at once: one regular-expression pass checks the whole list."""
    if not all(type(t) is str for t in texts) or not _MANY.fullmatch("\n".join(texts)):
        raise ValueError("a time is not like 2026-11-27T03:04:05.123Z")
    parse = datetime.fromisoformat
    return [(parse(t[:23]) - _EPOCH_DT) // _MS for t in texts]


def to_text(ms: int) -> str:
    days, rest = divmod(ms, DAY_MS)
    seconds, milli = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_day_text(days)}T{hour:02d}:{minute:02d}:{second:02d}.{milli:03d}Z"

"""Small helpers for the technician's English on the command line: counted nouns and times.

"1 visitor", "2 visitors", "1 batch", "3 emergencies"; a moment in the post's own zone.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from edge.events import parse_time


def plural(n: int, singular: str, many: str | None = None) -> str:
    """`n` and the noun, in the singular only for exactly one."""
    if n == 1:
        return f"{n} {singular}"
    if many is None:
        if singular.endswith(("s", "x", "ch", "sh")):
            many = singular + "es"
        elif singular.endswith("y") and singular[-2:-1] not in ("a", "e", "i", "o", "u"):
            many = singular[:-1] + "ies"
        else:
            many = singular + "s"
    return f"{n} {many}"


def local_time(utc: str | None, zone: ZoneInfo, never: str = "never") -> str:
    """A stored UTC time as the post's local date and minute (with the zone's name)."""
    if not utc:
        return never
    try:
        return parse_time(utc).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    except ValueError:
        return utc

"""The district page's words, numbers and times: its catalogs (`district/i18n/<lang>.json`,
through `web.i18n`'s mechanism), Indonesian separators ("1.234", "36,6") and times in the
district's zone ("14.05 WIB", "12 menit lalu").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

from edge.events import parse_time
from web import i18n
from web.i18n import language, translate

CATALOG_DIR = Path(__file__).resolve().parent / "i18n"
GiB = 1024**3
MiB = 1024**2


def init_app(app: Flask, zone: ZoneInfo, name: str) -> None:
    """The catalogs (Indonesian unless the browser chose English) and the page's filters."""
    i18n.init_app(app, lambda: "id", CATALOG_DIR)
    app.jinja_env.filters["num"] = number
    app.jinja_env.filters["bytes"] = size
    app.jinja_env.filters["clock"] = lambda text: local_time(text, zone)
    app.jinja_env.filters["ago"] = ago
    app.jinja_env.filters["age"] = age

    @app.context_processor
    def district() -> dict[str, Any]:
        return {"district_name": name or translate("district.default_name")}


def number(value: Any, digits: int = 0) -> str:
    """1.234 (Indonesian) or 1,234 (English); with `digits`, 36,6 or 36.6; "" for none."""
    if value is None or value == "":
        return ""
    text = f"{float(value):,.{digits}f}" if digits else f"{int(value):,}"
    if language() == "id":  # swap the separators: 1,234.5 -> 1.234,5
        text = text.translate(str.maketrans(",.", ".,"))
    return text


def size(value: Any) -> str:
    """Free disk as a person reads it: "3,2 GB" or "512 MB" ("" when unknown)."""
    if not isinstance(value, int):
        return ""
    if value >= GiB:
        return translate("unit.gb", n=number(value / GiB, 1))
    return translate("unit.mb", n=number(value // MiB))


def local_time(text: Any, zone: ZoneInfo, now: datetime | None = None) -> str:
    """UTC time text as the district reads it: "14.05 WIB" today, "2021-07-03 14.05 WIB"
    on another day ("" for none or bad text)."""
    try:
        moment = parse_time(text).astimezone(zone)
    except (AttributeError, TypeError, ValueError):
        return ""
    today = (now or datetime.now(UTC)).astimezone(zone).date()
    sep = "." if language() == "id" else ":"
    clock = f"{moment:%H}{sep}{moment:%M} {moment.tzname()}"
    return clock if moment.date() == today else f"{moment:%Y-%m-%d} {clock}"


def ago(text: Any, now: datetime | None = None) -> str:
    """How long ago UTC time text was: "baru saja", "12 menit lalu", "3 jam lalu"."""
    try:
        then = parse_time(text)
    except (AttributeError, TypeError, ValueError):
        return ""
    return age((now or datetime.now(UTC)) - then, suffix="ago")


def age(value: Any, suffix: str = "age") -> str:
    """A duration (seconds or a timedelta) in the largest whole unit: "12 menit"."""
    seconds = value.total_seconds() if hasattr(value, "total_seconds") else value
    if not isinstance(seconds, int | float):
        return ""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return translate(f"{suffix}.now")
    for unit, span in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= span:
            n = seconds // span
            return translate(f"{suffix}.{unit}" if n > 1 else f"{suffix}.{unit}.one", n=number(n))
    return ""

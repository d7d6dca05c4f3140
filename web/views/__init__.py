"""The page areas, one blueprint each, and the small helpers they share."""

from __future__ import annotations

from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date, datetime, timedelta

from flask import abort, request

from edge.station import Outcome, Record
from sensors.buttons import Press
from web.present import is_day
from web.services import posko

STATION_WAIT_S = 5.0  # how long a request waits for the station to store its event


def now() -> datetime:
    return posko().post.clock.now()


def today() -> str:
    store = posko().post.store
    return store.today(now())


def day_arg(name: str = "date", default: str | None = None) -> str:
    """A YYYY-MM-DD query argument (today when absent); 400 when malformed."""
    text = request.args.get(name, "")
    if not text:
        return default or today()
    if not is_day(text):
        abort(400)
    return text


def submit(item: Press | Record) -> Outcome | None:
    """Hand a press or record to the station and wait for its outcome (None: no answer)."""
    station = posko().post.station
    if not station.alive:
        abort(503)
    future = station.submit(item)
    try:
        return future.result(STATION_WAIT_S)
    except FutureTimeout:
        return None


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or (
        request.headers.get("X-Requested-With") == "fetch"
    )


def shift_day(day: str, days: int) -> str | None:
    """The day `days` after `day` (None past the calendar's ends)."""
    try:
        return (date.fromisoformat(day) + timedelta(days=days)).isoformat()
    except (ValueError, OverflowError):
        return None

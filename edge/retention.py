"""Retention under UU PDP No. 27/2022: each class of personal data is purged after its period.

Photos, visitors' personal details and events the district already holds are removed from
the Pi by themselves; each purge that removed something is recorded as a NOTE event.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.options import PrivacyOptions
from edge.redaction import Redactor, names_a_person
from edge.store import EventStore

log = logging.getLogger(__name__)

Record = Callable[[dict[str, Any]], object]  # stores the data of one NOTE event


def cutoff(today: str, days: int) -> str:
    """The first day kept: data of any earlier day is older than `days` days."""
    return (date.fromisoformat(today) - timedelta(days=days)).isoformat()


def photo_seq(path: Path) -> int | None:
    return (
        int(path.stem)
        if path.suffix == ".jpg" and path.stem.isascii() and path.stem.isdigit()
        else None
    )


def purge_photos(store: EventStore, before: str) -> int:
    """Delete photos whose event's local day is before `before`; returns how many.

    The event's day comes from the store's segments (a copy or restore can change a file's
    mtime); a photo whose event the Pi no longer holds falls back to the file's mtime.
    """
    root = store.data_dir / "photos"
    if not root.is_dir():
        return 0
    spans = store.segment_days()
    limit = datetime.fromisoformat(before).replace(tzinfo=store.zone).timestamp()
    removed = 0
    for path in sorted(root.glob("*/*.jpg")):
        seq = photo_seq(path)
        if seq is None:
            continue
        day = next((d for first, last, d in spans if first <= seq <= last), None)
        try:
            old = day < before if day is not None else path.stat().st_mtime < limit
            if old:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    for folder in root.iterdir():
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def purge_visitor_details(store: EventStore, before: str) -> int:
    """Redact the personal data of VISITOR events of days before `before`, in the segment
    still being appended to as well: a quiet post opens no new day file, and the deadline
    must not wait for the next press."""
    seqs = Redactor(store).redact(
        lambda day, event: names_a_person(event) and day < before,
        before_day=before,
        active=True,
    )
    return len(seqs)


DAMAGED_DAY = re.compile(r"^\d+_(\d{4}-\d{2}-\d{2})\.jsonl\.")  # <first seq>_<day>.jsonl.*
SET_ASIDE = re.compile(r"-(\d{4})(\d{2})(\d{2})T\d{6}")  # ...corrupt-20261127T101500


def damaged_day(path: Path, zone: ZoneInfo) -> str:
    """The local day a file set aside in damaged/ holds events of: its segment's day, else
    the day it was set aside, else its mtime's."""
    if found := DAMAGED_DAY.match(path.name):
        return found.group(1)
    if found := SET_ASIDE.search(path.name):
        return "-".join(found.groups())
    return datetime.fromtimestamp(path.stat().st_mtime, zone).date().isoformat()


def purge_damaged(store: EventStore, before: str) -> int:
    """Delete files set aside in damaged/ whose day is before `before`. What could be read
    of them was salvaged into the store; the rest may hold visitors' details, so they are
    kept no longer than those details are."""
    removed = 0
    if not store.damaged_dir.is_dir():
        return 0
    for path in sorted(store.damaged_dir.iterdir()):
        try:
            if path.is_file() and damaged_day(path, store.zone) < before:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def purge_synced_events(store: EventStore, before: str) -> int:
    """Delete whole segments the district acknowledged, of days before `before`."""
    return sum(s.count for s in store.drop_synced(before))


Period = Callable[[PrivacyOptions], int]  # the days a class of data is kept
PURGES: dict[str, tuple[Period, Callable[[EventStore, str], int]]] = {
    "photos": (lambda p: p.photo_days, purge_photos),
    "visitor_details": (lambda p: p.visitor_days, purge_visitor_details),
    "synced_events": (lambda p: p.synced_event_days, purge_synced_events),
    "damaged_files": (lambda p: p.visitor_days, purge_damaged),
}


def purge(
    store: EventStore, settings: Mapping[str, Any], today: str, record: Record
) -> dict[str, int]:
    """Run every purge once; record a NOTE for each that removed something. {class: count}."""
    done: dict[str, int] = {}
    privacy = PrivacyOptions.from_config(settings)
    for name, (period, run) in PURGES.items():
        before = cutoff(today, period(privacy))
        try:
            count = run(store, before)
        except OSError as e:  # the next round tries again; the press path is untouched
            log.error("retention: purging %s failed: %s", name, e)
            continue
        done[name] = count
        if count:
            log.info("retention: purged %d %s from before %s", count, name, before)
            record({"purge": {"class": name, "count": count, "before": before}})
    return done


class Retention:
    """The purge thread of a running post: once at start-up, then every interval."""

    def __init__(
        self,
        store: EventStore,
        settings: Callable[[], Mapping[str, Any]],
        record: Record,
        now: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.settings = settings  # read each round: the admin may change the periods
        self.record = record
        self.now = now
        self.rounds = 0
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> Retention:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def run_once(self) -> dict[str, int]:
        self.last = purge(self.store, self.settings(), self.store.today(self.now()), self.record)
        self.rounds += 1
        return self.last

    def _run(self) -> None:
        while True:
            try:
                self.run_once()
            except Exception:  # a bug here must not take the station down
                log.exception("retention round failed")
            if self._stop.wait(PrivacyOptions.from_config(self.settings()).purge_interval_s):
                return

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> Retention:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

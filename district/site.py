"""What the district page's views share: the database, the zone, the retention, the
registry of regions and posts, and today's local day (`pages()` inside a request)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app

from district.backends import open_storage
from district.registry import Registry
from district.retention import Retention
from district.storage import Storage


class Pages:
    """What the views need, kept in `app.extensions["posko_district"]`."""

    def __init__(
        self, db: str | Path, zone: str, keep: Retention, registry: Registry | None = None
    ) -> None:
        self.db = str(db)
        self.zone = ZoneInfo(zone)
        self.keep = keep
        self.registry = registry or Registry()

    def open(self) -> Storage:
        return open_storage(self.db, read_only=True)

    def today(self) -> str:
        return datetime.now(self.zone).date().isoformat()


def pages() -> Pages:
    """The running app's `Pages` (inside a request)."""
    site: Pages = current_app.extensions["posko_district"]
    return site

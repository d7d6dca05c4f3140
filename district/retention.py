"""The district's own retention under UU PDP No. 27/2022 (Pasal 16): each class of personal
data it holds is purged after its period, each purge is recorded in the privacy log, and
the database's free pages and write-ahead log are cleared of it (docs/privacy.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from district.storage import Purge, Storage, StorageError
from edge.events import utc_text

log = logging.getLogger(__name__)

Now = Callable[[], datetime]


@dataclass(frozen=True)
class Retention:
    """Days each class is kept at the district, counted from the event's time (defaults and
    their reasons: docs/privacy.md)."""

    visitor_days: int = 30  # a visitor's details (name, origin, phone, referral contact)
    nik_days: int = 14  # a NIK, where a post sends them (`sync.send_nik`)
    events_days: int = 365  # whole events (times, temperatures, verdicts)
    quarantine_days: int = 30  # refused payloads (may hold a copy of any of the above)

    def problems(self) -> list[str]:
        """What is wrong with these periods, in words (empty when nothing)."""
        found = [
            f"{name} must be a whole number of days from 1 to 3650, got {days}"
            for name, days in vars(self).items()
            if not 1 <= days <= 3650
        ]
        if self.nik_days > self.visitor_days:
            found.append("a NIK cannot be kept longer than the visitor details it belongs to")
        if self.visitor_days > self.events_days:
            found.append("visitor details cannot be kept longer than the events they belong to")
        return found

    def cutoffs(self, now: datetime) -> Purge:
        """The UTC times before which each class is purged, as of `now`."""

        def before(days: int) -> str:
            return utc_text(now - timedelta(days=days))

        return Purge(
            visitor_details=before(self.visitor_days),
            nik=before(self.nik_days),
            events=before(self.events_days),
            quarantine=before(self.quarantine_days),
        )


def purge(storage: Storage, retention: Retention, now: Now | None = None) -> dict[str, int]:
    """One round: purge every class past its period; what was removed, by class. A storage
    failure is logged and the round is tried again at the next one."""
    moment = (now or (lambda: datetime.now(UTC)))()
    try:
        removed = storage.purge(retention.cutoffs(moment))
    except StorageError as e:
        log.error("the district's retention round failed (tried again next round): %s", e)
        return {}
    if any(removed.values()):
        log.info(
            "retention: %s",
            ", ".join(f"{count} {name.replace('_', ' ')}" for name, count in removed.items()),
        )
    return removed

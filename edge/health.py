"""The post's health: one answer for systemd's watchdog, the page's `/healthz` and `posko status`.

A part that is not running in this process (the station, seen from `posko status`) is left
out rather than reported dead; the store's own health comes from `EventStore.health()`.
Only the watchdog asks whether the page answers over HTTP (`page_answers`): `/healthz`
asking it would ask itself. A thermometer that does not answer is a warning, not a reason:
the post still records every press (as "not measured"), and a restart would not plug it in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from edge.probe import ThermometerState
from edge.store import EventStore


class Alive(Protocol):
    @property
    def alive(self) -> bool: ...


@dataclass(frozen=True)
class Health:
    post: str
    store: dict[str, Any]  # EventStore.health()
    last_seq: int
    pending: int
    station: bool | None = None  # None: no station in this process
    page: bool | None = None  # None: no page server in this process
    reasons: list[str] = field(default_factory=list)
    thermometer: ThermometerState | None = None  # None: no thermometer in this process
    warnings: list[str] = field(default_factory=list)  # shown, but the watchdog keeps feeding

    @property
    def ok(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict[str, Any]:
        """What `/healthz` answers."""
        return {
            "ok": self.ok,
            "post": self.post,
            "station": self.station is not False,
            "store": bool(self.store["ok"]),
            "web": self.page is not False,
            "last_seq": self.last_seq,
            "pending": self.pending,
            "reasons": self.reasons,
            "thermometer": None if self.thermometer is None else self.thermometer.as_json(),
            "warnings": self.warnings,
        }


def check(
    post: str,
    store: EventStore,
    *,
    station: Alive | None = None,
    page: Alive | None = None,
    page_answers: bool | None = None,
    thermometer: ThermometerState | None = None,
) -> Health:
    """Whether the press path, the store and the page work; `reasons` says why not.
    `page_answers`: whether the page answered an HTTP request (None: not asked);
    `thermometer`: the last probe's verdict, a warning when it failed (`Post.thermometer_state`)."""
    stored = store.health()
    station_alive = None if station is None else station.alive
    page_alive = None if page is None else page.alive
    reasons = [
        reason
        for bad, reason in (
            (station_alive is False, "the station thread has stopped"),
            (not stored["ok"], f"store unavailable: {stored['last_error']}"),
            (page_alive is False, "the guard's page is not being served"),
            (page_alive and page_answers is False, "the guard's page does not answer"),
        )
        if bad
    ]
    if page_answers is False:
        page_alive = False
    return Health(
        post=post,
        store=stored,
        last_seq=store.last_seq,
        pending=store.pending,
        station=station_alive,
        page=page_alive,
        reasons=reasons,
        thermometer=thermometer,
        warnings=[thermometer.describe()] if thermometer and thermometer.ok is False else [],
    )

"""Is the thermometer there? Probed once at start and then every `probe_interval_s`, so a
missing or broken sensor is known before the first person is measured, not at their entry.

A change (fault, recovery) is logged and handed to `on_change`, which records it as an event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.events import utc_text
from sensors.thermometer import Thermometer, probe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ThermometerState:
    """The last probe's verdict: `ok` None until the first probe (or when it cannot probe)."""

    driver: str
    ok: bool | None = None
    fault: str | None = None
    detail: str = ""
    since: str | None = None  # UTC text: when the sensor went into this state

    def describe(self) -> str:
        """One line for logs and `/healthz`."""
        if self.ok is False:
            return f"thermometer {self.driver} not answering: {self.fault} ({self.detail})"
        return f"thermometer {self.driver} ok"

    def as_json(self) -> dict[str, Any]:
        return {
            "driver": self.driver,
            "ok": self.ok,
            "fault": self.fault,
            "detail": self.detail,
            "since": self.since,
        }


class ThermometerWatch:
    """Probes `thermometer` now (`probe_now`) and, once started, every `interval()` seconds."""

    def __init__(
        self,
        thermometer: Thermometer,
        driver: str,
        *,
        interval: Callable[[], float],
        now: Callable[[], datetime],
        on_change: Callable[[ThermometerState, ThermometerState], None] | None = None,
    ) -> None:
        self.thermometer = thermometer
        self.state = ThermometerState(driver)
        self._interval = interval
        self._now = now
        self._on_change = on_change
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one probe at a time (thread and an explicit call)
        self._thread = threading.Thread(target=self._run, name="thermometer-probe", daemon=True)

    def probe_now(self) -> ThermometerState:
        """Probe once; on a change of verdict, log it and tell `on_change`."""
        with self._lock:
            ok, fault, detail = self._probe()
            before = self.state
            if ok == before.ok and fault == before.fault:
                return before
            self.state = ThermometerState(before.driver, ok, fault, detail, utc_text(self._now()))
        self._changed(before, self.state)
        return self.state

    def _probe(self) -> tuple[bool | None, str | None, str]:
        """(ok, fault, detail) of one probe; ok is None when the driver cannot be probed."""
        try:
            reading = probe(self.thermometer)
        except Exception as e:  # a driver bug is a fault like any other
            log.exception("thermometer probe failed")
            return False, "driver_error", str(e)
        if reading is None:
            return None, None, ""
        return reading.fault is None, reading.fault, reading.detail

    def _changed(self, before: ThermometerState, after: ThermometerState) -> None:
        if after.ok is False:
            log.error("%s", after.describe())
        elif after.ok and before.ok is False:
            log.warning("thermometer %s answers again (was: %s)", after.driver, before.fault)
        if self._on_change is not None:
            try:
                self._on_change(before, after)
            except Exception:
                log.exception("recording the thermometer's state failed")

    def start(self) -> ThermometerWatch:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval()):
            self.probe_now()

    def close(self) -> None:
        """Stop probing. Idempotent."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5.0)

    def __enter__(self) -> ThermometerWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def worth_recording(before: ThermometerState, after: ThermometerState) -> bool:
    """A first fault and a recovery are events; the first "ok" at start is not."""
    first_fault = after.ok is False and before.ok is not False
    return first_fault or (after.ok is True and before.ok is False)


def note(after: ThermometerState) -> dict[str, Any]:
    """The data of the NOTE event that records a change."""
    return {"thermometer": {"state": "fault" if after.ok is False else "ok", **after.as_json()}}

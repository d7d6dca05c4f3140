"""What the guard sees and hears: a green LED, a red LED and a buzzer (gpiozero).

Each outcome has its own pattern so that a guard who is not looking at the screen still
knows what happened; the README's feedback table is written from `PATTERNS`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Blink:
    on: float
    off: float
    n: int


@dataclass(frozen=True)
class Pattern:
    meaning: str
    green: Blink | None = None
    red: Blink | None = None
    buzzer: Blink | None = None


PATTERNS: dict[str, Pattern] = {
    "stored": Pattern(
        "Event stored (durable)", green=Blink(0.4, 0.1, 1), buzzer=Blink(0.08, 0.1, 1)
    ),
    "recheck": Pattern(
        "Ukur ulang: wait and measure again", red=Blink(4.0, 0.1, 1), buzzer=Blink(0.6, 0.3, 3)
    ),
    "refused": Pattern(
        "Ditolak: refer to the puskesmas", red=Blink(10.0, 0.1, 1), buzzer=Blink(1.5, 0.5, 3)
    ),
    "fault": Pattern(
        "Sensor fault: not measured", red=Blink(0.1, 0.1, 10), buzzer=Blink(0.08, 0.08, 2)
    ),
    "store_unavailable": Pattern(
        "Store unavailable: event NOT saved",
        green=Blink(0.2, 0.2, 15),
        red=Blink(0.2, 0.2, 15),
        buzzer=Blink(0.2, 0.2, 8),
    ),
    "voided": Pattern(
        "Batal: last event voided", green=Blink(0.15, 0.15, 2), buzzer=Blink(0.05, 0.1, 2)
    ),
    "denied": Pattern("Nothing to do (nothing to void, re-check not due)", red=Blink(0.3, 0.2, 2)),
    "emergency": Pattern(
        "Darurat recorded", red=Blink(0.25, 0.25, 12), buzzer=Blink(0.25, 0.25, 12)
    ),
}


class Feedback:
    """Plays a named pattern on the LEDs and the buzzer, in the background."""

    def __init__(
        self, green_pin: int, red_pin: int, buzzer_pin: int, *, pin_factory: Any = None
    ) -> None:
        from gpiozero import LED, Buzzer

        self._lock = threading.Lock()
        self.played: list[str] = []
        self.green = LED(green_pin, pin_factory=pin_factory)
        try:
            self.red = LED(red_pin, pin_factory=pin_factory)
            self.buzzer = Buzzer(buzzer_pin, pin_factory=pin_factory)
        except BaseException:
            self.close()
            raise

    def play(self, name: str) -> None:
        pattern = PATTERNS[name]
        with self._lock:
            self.played.append(name)
            for device, blink in (
                (self.green, pattern.green),
                (self.red, pattern.red),
                (self.buzzer, pattern.buzzer),
            ):
                if device is None:
                    continue
                if blink is None:
                    device.off()
                else:
                    device.blink(on_time=blink.on, off_time=blink.off, n=blink.n, background=True)

    def close(self) -> None:
        for name in ("green", "red", "buzzer"):
            device = getattr(self, name, None)
            if device is not None:
                device.close()
                setattr(self, name, None)

    def __enter__(self) -> Feedback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

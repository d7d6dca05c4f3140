"""The guard's six buttons (gpiozero `Button`), turned into `Press` values.

A bounce or a second press of the same button within the dead time is one press.
Entry buttons give an entry on release, or a re-check when held; Darurat fires only
after a long hold, so that a brush against it never raises an alarm.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

ENTRY = ("masuk_warga", "masuk_pendatang")
INSTANT = ("keluar_warga", "keluar_pendatang", "batal")
BUTTONS = (*ENTRY, *INSTANT, "darurat")


@dataclass(frozen=True)
class Press:
    """One deliberate press of a button; `held` marks an entry button held for a re-check."""

    button: str
    held: bool = False


class ButtonPanel:
    """Watches the buttons and calls `on_press` once per deliberate press.

    `on_press` runs in gpiozero's callback threads: keep it short (put it on a queue).
    """

    def __init__(
        self,
        pins: Mapping[str, int],
        on_press: Callable[[Press], object],
        *,
        dead_time: float = 0.4,
        emergency_hold: float = 3.0,
        recheck_hold: float = 2.0,
        pin_factory: Any = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        from gpiozero import Button

        self.on_press = on_press
        self.dead_time = dead_time
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._ignoring: set[str] = set()
        self._held: set[str] = set()
        self.buttons: dict[str, Any] = {}
        try:
            for name in BUTTONS:
                hold = {"darurat": emergency_hold}.get(name, recheck_hold)
                button = Button(pins[name], pull_up=True, hold_time=hold, pin_factory=pin_factory)
                self.buttons[name] = button
                self._wire(name, button)
        except BaseException:
            self.close()
            raise

    def _wire(self, name: str, button: Any) -> None:
        button.when_pressed = lambda: self._pressed(name)
        if name in ENTRY:
            button.when_released = lambda: self._released(name)
            button.when_held = lambda: self._fire_held(name, Press(name, held=True))
        elif name == "darurat":
            button.when_held = lambda: self._fire_held(name, Press(name))

    def _pressed(self, name: str) -> None:
        now = self._monotonic()
        with self._lock:
            self._held.discard(name)
            last = self._last.get(name)
            if last is not None and now - last < self.dead_time:
                self._ignoring.add(name)
                log.debug(
                    "%s: ignored a bounce %.0f ms after the last press", name, (now - last) * 1000
                )
                return
            self._ignoring.discard(name)
            self._last[name] = now
        if name in INSTANT:
            self._emit(Press(name))

    def _released(self, name: str) -> None:
        with self._lock:
            if name in self._ignoring or name in self._held:
                return
        self._emit(Press(name))

    def _fire_held(self, name: str, press: Press) -> None:
        with self._lock:
            if name in self._ignoring:
                return
            self._held.add(name)
        self._emit(press)

    def _emit(self, press: Press) -> None:
        try:
            self.on_press(press)
        except Exception:  # a callback error must not kill gpiozero's thread
            log.exception("press %s could not be handled", press)

    def close(self) -> None:
        # gpiozero's hold threads look for their stop only every 0.1 s, and each close()
        # joins one: ask them all to stop (and wake them) first, so closing takes no wait.
        for button in self.buttons.values():
            thread = getattr(button, "_hold_thread", None)
            if thread is not None:
                thread.stopping.set()
                thread.holding.set()
        for button in self.buttons.values():
            button.close()
        self.buttons.clear()

    def __enter__(self) -> ButtonPanel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

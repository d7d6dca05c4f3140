"""Realistic presses on mock pins, through the real button and station code.

`posko simulate` runs them as fast as the store allows on a virtual clock (a day of a
busy post in seconds); `posko run --demo` runs them in real time for a demonstration.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from edge.clock import VirtualClock, kernel_clock_state
from edge.config import Config
from edge.events import Event, Kind, handled
from edge.post import Post
from edge.station import Outcome
from sensors.simulated import SimulatedThermometer

log = logging.getLogger(__name__)

# How often each button is pressed at a typical post (re-checks are added when due).
MIX = {
    "masuk_warga": 36,
    "keluar_warga": 33,
    "masuk_pendatang": 14,
    "keluar_pendatang": 12,
    "batal": 3,
    "darurat": 0.4,
}
MEAN_GAP_S = 45.0  # mean time between two people at the post
PRESS_TIMEOUT_S = 10.0


class Driver:
    """Presses the mock pins of a post like a guard would, and waits for each outcome."""

    def __init__(self, post: Post, rng: random.Random) -> None:
        self.post = post
        self.rng = rng
        self._outcomes: queue.Queue[Outcome] = queue.Queue()
        post.station.watch(self._outcomes.put)

    def next_action(self) -> tuple[str, bool]:
        """(button, held): a due re-check first, otherwise a button from the mix."""
        station = self.post.station
        wait = station.config.screening.recheck_wait_s
        now = station.clock.now()
        for pending in station.pending:
            if pending.due(wait) <= now:
                button = "masuk_warga" if pending.who == "resident" else "masuk_pendatang"
                return button, True
        return self.rng.choices(list(MIX), weights=list(MIX.values()))[0], False

    def press(self, button: str, held: bool = False) -> Outcome | None:
        """Drive one press on the button's mock pin; the station's outcome, or None."""
        pin = self.post.mock_pin(button)
        pin.drive_low()
        outcome = self._wait(button) if button == "darurat" or held else None
        pin.drive_high()  # the hold has fired while the pin was low
        outcome = outcome or self._wait(button)
        if outcome is not None and outcome.event is not None and button == "darurat":
            # The guard deals with it and marks it handled, as on the screen.
            self.post.station.record(Kind.NOTE, **handled(outcome.event["seq"]))
            self._wait("record")
        return outcome

    def _wait(self, button: str) -> Outcome | None:
        while True:
            try:
                outcome = self._outcomes.get(timeout=PRESS_TIMEOUT_S)
            except queue.Empty:
                log.warning("no outcome for %s within %.0f s", button, PRESS_TIMEOUT_S)
                return None
            if outcome.press.button == button:
                return outcome


def simulation_config(config: Config) -> Config:
    """Short holds and dead time so that a simulated guard is fast (the rules stay the same)."""
    return config.replace(
        buttons__emergency_hold_s=0.05,
        buttons__recheck_hold_s=0.05,
        thermometer__driver="simulated",
        camera__driver="none",
    )


def simulate(
    config: Config,
    presses: int,
    *,
    seed: int | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> dict[str, int]:
    """Drive `presses` presses through a post on a virtual clock that ends by now (never
    ahead of the wall clock) and trusts time only as far as the system clock is trusted."""
    rng = random.Random(seed)
    gaps = [1 + rng.expovariate(1 / MEAN_GAP_S) for _ in range(presses)]
    now = datetime.now(UTC)
    clock = VirtualClock(now - timedelta(seconds=sum(gaps)), state=kernel_clock_state())
    thermometer = SimulatedThermometer(seed=rng.randrange(2**32))
    counts = {"presses": 0, "events": 0, "no_event": 0}
    with Post(
        simulation_config(config),
        mock=True,
        clock=clock,
        thermometer=thermometer,
        use_config_sensors=False,
        monotonic=clock.monotonic,
    ) as post:
        if on_event is not None:
            post.station.subscribe(on_event)
        driver = Driver(post, rng)
        for gap in gaps:
            clock.advance(gap)
            button, held = driver.next_action()
            # People sent to wait are more often feverish on the second reading.
            thermometer.fever_rate = 0.35 if held else 0.08
            outcome = driver.press(button, held)
            counts["presses"] += 1
            counts["events" if outcome and outcome.event else "no_event"] += 1
    return counts


def run_demo(post: Post, stop: threading.Event, *, seed: int | None = None) -> None:
    """Press buttons every few seconds until `stop` is set (for `posko run --demo`)."""
    rng = random.Random(seed)
    driver = Driver(post, rng)
    while not stop.wait(rng.uniform(2.0, 7.0)):
        button, held = driver.next_action()
        try:
            driver.press(button, held)
        except Exception:
            log.exception("demo press failed")

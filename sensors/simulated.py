"""Thermometers without hardware: a random one for laptops and demos, a scripted one for tests.

Both speak the same `Thermometer` protocol as the real drivers and return uncalibrated values.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterable
from typing import Self

from sensors.thermometer import Reading

log = logging.getLogger(__name__)

NORMAL_MEAN = 36.6
NORMAL_SD = 0.3
NORMAL_RANGE = (35.8, 37.2)
FEVER_RANGE = (37.4, 39.5)
FAULT_CODES = ("i2c_error", "pec_mismatch", "error_flag")
ROOM_C = 28.0  # what a probe finds with nobody in front of the sensor


class SimulatedThermometer:
    """Mostly normal foreheads, some fevers, some sensor faults; `fever_rate` and
    `fault_rate` (0–1) may be changed at any time."""

    def __init__(
        self,
        *,
        fever_rate: float = 0.08,
        fault_rate: float = 0.04,
        seed: int | None = None,
    ) -> None:
        self.fever_rate = fever_rate
        self.fault_rate = fault_rate
        self._random = random.Random(seed)
        self._faults = itertools.cycle(FAULT_CODES)

    def read(self) -> Reading:
        if self._random.random() < self.fault_rate:
            fault = next(self._faults)
            return Reading.failed(fault, "simulated fault")
        if self._random.random() < self.fever_rate:
            value = self._random.uniform(*FEVER_RANGE)
        else:
            low, high = NORMAL_RANGE
            value = min(max(self._random.gauss(NORMAL_MEAN, NORMAL_SD), low), high)
        value = round(value, 2)
        spread = round(self._random.uniform(0.0, 0.3), 2)
        return Reading(celsius=value, raw=value, spread=spread)

    def probe(self) -> Reading:
        """The simulated sensor always answers, with a room's temperature."""
        return Reading(celsius=ROOM_C, raw=ROOM_C)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ScriptedThermometer:
    """Returns the script's items in order, then repeats the last one.

    A float is a reading of that value, a str a fault with that code, None a "no_value" fault.
    """

    def __init__(self, script: Iterable[float | str | None]) -> None:
        self.script = list(script)
        if not self.script:
            raise ValueError("a ScriptedThermometer needs at least one item")
        self.reads = 0
        self.probes = 0
        self.probe_fault: str | None = None  # what `probe()` reports; None: it answers
        self.closed = False

    def read(self) -> Reading:
        item = self.script[min(self.reads, len(self.script) - 1)]
        self.reads += 1
        if item is None:
            return Reading.failed("no_value", "scripted")
        if isinstance(item, str):
            return Reading.failed(item, "scripted")
        return Reading(celsius=float(item), raw=float(item))

    def probe(self) -> Reading:
        """`probe_fault`, or a room's temperature; never takes an item of the script."""
        self.probes += 1
        if self.probe_fault is not None:
            return Reading.failed(self.probe_fault, "scripted probe")
        return Reading(celsius=ROOM_C, raw=ROOM_C)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The thermometer seam: one `Reading` type, one `Thermometer` protocol, calibration.

Drivers (`mlx90614`, `ds18b20`, `simulated`) return raw readings; `Calibrated` turns
them into the values screening uses and turns implausible values into faults.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol


@dataclass(frozen=True)
class Reading:
    """One screening measurement: a temperature or a fault, never both."""

    celsius: float | None = None  # calibrated value, what screening uses
    raw: float | None = None  # what the sensor said, before calibration
    fault: str | None = None  # short machine-readable reason, e.g. "pec_mismatch"
    detail: str = ""  # one line for logs and the technician
    spread: float | None = None  # max - min of the samples behind this reading

    @property
    def ok(self) -> bool:
        return self.fault is None and self.celsius is not None

    @classmethod
    def failed(cls, fault: str, detail: str = "", raw: float | None = None) -> Reading:
        return cls(celsius=None, raw=raw, fault=fault, detail=detail)


class Thermometer(Protocol):
    """Anything that can take one reading of a forehead (or a probe)."""

    def read(self) -> Reading: ...

    def close(self) -> None: ...


def probe(thermometer: Thermometer) -> Reading | None:
    """Whether the sensor answers, by its driver's cheap `probe()` (never a screening: no
    forehead is needed and nothing is recorded); None when the driver cannot be probed."""
    check = getattr(thermometer, "probe", None)
    if check is None:
        return None
    reading = check()
    assert isinstance(reading, Reading)
    return reading


class Calibrated:
    """Applies gain and offset to a driver's raw reading and rejects what no forehead shows."""

    def __init__(
        self,
        driver: Thermometer,
        *,
        offset: float = 0.0,
        gain: float = 1.0,
        plausible_min: float = 30.0,
        plausible_max: float = 43.0,
    ) -> None:
        self.driver = driver
        self.offset = offset
        self.gain = gain
        self.plausible_min = plausible_min
        self.plausible_max = plausible_max

    def read(self) -> Reading:
        reading = self.driver.read()
        if reading.fault is not None or reading.celsius is None:
            return reading if reading.fault else Reading.failed("no_value", raw=reading.raw)
        raw = reading.celsius
        value = round(raw * self.gain + self.offset, 2)
        if not self.plausible_min <= value <= self.plausible_max:
            return Reading.failed(
                "implausible",
                f"{value:.2f} °C is outside {self.plausible_min}–{self.plausible_max} °C",
                raw=raw,
            )
        return replace(reading, celsius=value, raw=raw)

    def probe(self) -> Reading | None:
        """The driver's probe, uncalibrated: a room, not a forehead, is in front of it."""
        return probe(self.driver)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Calibrated:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

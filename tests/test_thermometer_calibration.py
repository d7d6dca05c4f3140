"""Tests for `Calibrated`: gain and offset, implausible values, faults passing through.

The driver underneath is a `ScriptedThermometer`, so every raw value is exact.
"""

from __future__ import annotations

import pytest

from sensors.simulated import ScriptedThermometer
from sensors.thermometer import Calibrated, Reading


def calibrated(value: float | str | None, **kwargs: float) -> Reading:
    return Calibrated(ScriptedThermometer([value]), **kwargs).read()


def test_calibration_applies_the_offset() -> None:
    reading = calibrated(36.0, offset=0.7)
    assert reading.celsius == 36.7
    assert reading.raw == 36.0


def test_calibration_applies_the_gain_before_the_offset() -> None:
    assert calibrated(36.0, gain=1.01, offset=-0.2).celsius == 36.16


def test_calibration_without_settings_keeps_the_value() -> None:
    assert calibrated(36.55).celsius == 36.55


@pytest.mark.parametrize("value", [30.0, 43.0])
def test_calibration_accepts_the_plausible_bounds(value: float) -> None:
    assert calibrated(value).celsius == value


@pytest.mark.parametrize(("value", "offset"), [(29.9, 0.0), (43.1, 0.0), (42.8, 0.5), (30.3, -0.5)])
def test_calibration_implausible_value_is_a_fault(value: float, offset: float) -> None:
    reading = calibrated(value, offset=offset)
    assert reading.fault == "implausible"
    assert reading.celsius is None
    assert reading.raw == value


@pytest.mark.parametrize("fault", ["pec_mismatch", "error_flag", "unstable"])
def test_calibration_passes_a_driver_fault_through(fault: str) -> None:
    driver = ScriptedThermometer([fault])
    expected = ScriptedThermometer([fault]).read()
    assert Calibrated(driver, offset=0.5).read() == expected


def test_calibration_passes_no_value_through() -> None:
    assert calibrated(None, offset=0.5).fault == "no_value"


def test_calibration_close_closes_the_driver() -> None:
    driver = ScriptedThermometer([36.6])
    with Calibrated(driver):
        pass
    assert driver.closed

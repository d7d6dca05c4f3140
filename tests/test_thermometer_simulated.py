"""Tests for the hardware-free thermometers: the random demo one and the scripted test one.

The random one is always seeded here, so every run sees the same readings.
"""

from __future__ import annotations

import pytest

from sensors.simulated import FAULT_CODES, ScriptedThermometer, SimulatedThermometer

READS = 300


def read_many(sensor: SimulatedThermometer | ScriptedThermometer, count: int = READS):
    return [sensor.read() for _ in range(count)]


def test_simulated_normal_readings_stay_in_the_normal_range() -> None:
    readings = read_many(SimulatedThermometer(fever_rate=0, fault_rate=0, seed=1))
    assert all(r.ok and 35.8 <= r.celsius <= 37.2 for r in readings)


def test_simulated_fever_rate_one_gives_only_fevers() -> None:
    readings = read_many(SimulatedThermometer(fever_rate=1, fault_rate=0, seed=2))
    assert all(r.ok and 37.4 <= r.celsius <= 39.5 for r in readings)


def test_simulated_fault_rate_one_gives_only_faults() -> None:
    readings = read_many(SimulatedThermometer(fever_rate=1, fault_rate=1, seed=3))
    assert all(r.celsius is None and r.fault in FAULT_CODES for r in readings)


def test_simulated_faults_cycle_through_every_code() -> None:
    readings = read_many(SimulatedThermometer(fault_rate=1, seed=4), len(FAULT_CODES))
    assert [r.fault for r in readings] == list(FAULT_CODES)


def test_simulated_default_rates_mix_normal_fever_and_fault() -> None:
    readings = read_many(SimulatedThermometer(seed=5), 1000)
    faults = sum(r.fault is not None for r in readings)
    fevers = sum(r.ok and r.celsius >= 37.4 for r in readings)
    assert 10 <= faults <= 80
    assert 40 <= fevers <= 130


def test_simulated_rates_can_change_after_construction() -> None:
    sensor = SimulatedThermometer(fever_rate=0, fault_rate=0, seed=6)
    sensor.fault_rate = 1
    assert sensor.read().fault in FAULT_CODES


def test_simulated_seeded_runs_are_reproducible() -> None:
    first = read_many(SimulatedThermometer(seed=7), 50)
    second = read_many(SimulatedThermometer(seed=7), 50)
    assert first == second


def test_scripted_returns_items_in_order() -> None:
    readings = read_many(ScriptedThermometer([36.5, "pec_mismatch", None, 38]), 4)
    assert [r.celsius for r in readings] == [36.5, None, None, 38.0]
    assert [r.fault for r in readings] == [None, "pec_mismatch", "no_value", None]


def test_scripted_repeats_the_last_item() -> None:
    readings = read_many(ScriptedThermometer([36.5, 37.9]), 4)
    assert [r.celsius for r in readings] == [36.5, 37.9, 37.9, 37.9]


def test_scripted_reading_is_uncalibrated() -> None:
    reading = ScriptedThermometer([36.5]).read()
    assert reading.raw == reading.celsius == 36.5


def test_scripted_needs_an_item() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ScriptedThermometer([])


def test_scripted_closes_when_leaving_with() -> None:
    with ScriptedThermometer([36.5]) as sensor:
        assert not sensor.closed
    assert sensor.closed

"""Tests for the MLX90614 driver against a scripted SMBus: conversion, PEC, faults, retries.

No hardware and no real sleeps: the bus is `tests.support.fake_smbus.FakeSMBus` and `sleep` records.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.mlx90614 import MLX90614, crc8, raw_to_celsius
from tests.support.fake_smbus import BadPec, FakeSMBus, ScriptItem, celsius_word, frame, pec

EIO = OSError(5, "Input/output error")
NACK = OSError(121, "Remote I/O error")
BODY = celsius_word(36.51)  # 0x3C7B


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sensor_on(sleeps: list[float]):
    """Build an MLX90614 on a FakeSMBus that answers with `script`."""

    def build(script: list[ScriptItem], **kwargs: object) -> tuple[MLX90614, FakeSMBus]:
        bus = FakeSMBus(script)
        return MLX90614(bus=bus, sleep=sleeps.append, **kwargs), bus  # type: ignore[arg-type]

    return build


def test_crc8_matches_the_smbus_check_value() -> None:
    assert crc8(b"123456789") == 0xF4  # CRC-8/SMBUS catalogue check value


def test_crc8_matches_the_datasheet_read_example() -> None:
    # Address 0x5A reads register 0x07 and gets 0x3AD2 with PEC 0x30.
    data = bytes([0x5A << 1, 0x07, 0x5A << 1 | 1, 0xD2, 0x3A])
    assert crc8(data) == 0x30 == pec(data)


@given(st.binary(max_size=16))
def test_crc8_agrees_with_long_division(data: bytes) -> None:
    assert crc8(data) == pec(data)


def test_raw_to_celsius_converts_the_datasheet_word() -> None:
    assert raw_to_celsius(0x3AD2) == 28.01


def test_mlx90614_converts_a_good_word(sensor_on) -> None:
    sensor, _ = sensor_on([BODY])
    reading = sensor.read()
    assert reading.ok
    assert reading.celsius == reading.raw == 36.51
    assert reading.spread == 0.0


def test_mlx90614_reads_the_object_register_at_its_address(sensor_on) -> None:
    sensor, bus = sensor_on([BODY], samples=2)
    sensor.read()
    assert bus.calls == [(0x5A, 0x07, 3), (0x5A, 0x07, 3)]


def test_mlx90614_samples_apart_with_the_injected_sleep(sensor_on, sleeps) -> None:
    sensor, bus = sensor_on([BODY], samples=5, sample_interval=0.04)
    sensor.read()
    assert len(bus.calls) == 5
    assert sleeps == [0.04] * 4


def test_mlx90614_median_ignores_one_outlier(sensor_on) -> None:
    spike = celsius_word(38.51)
    sensor, _ = sensor_on([BODY, BODY, spike, BODY, BODY])
    reading = sensor.read()
    assert reading.celsius == 36.51
    assert reading.spread == 0.0


def test_mlx90614_median_ignores_one_invalid_sample(sensor_on) -> None:
    sensor, _ = sensor_on([BODY, BadPec(BODY), BODY, BODY, BODY])
    assert sensor.read().celsius == 36.51


def test_mlx90614_bad_pec_on_all_samples_is_a_fault(sensor_on) -> None:
    sensor, _ = sensor_on([BadPec(BODY)])
    reading = sensor.read()
    assert reading.fault == "pec_mismatch"
    assert reading.celsius is None


def test_mlx90614_minority_of_valid_samples_is_a_fault(sensor_on) -> None:
    sensor, _ = sensor_on([BODY, BadPec(BODY), BODY, BadPec(BODY), BadPec(BODY)])
    reading = sensor.read()
    assert reading.fault == "pec_mismatch"
    assert "2/5 samples valid" in reading.detail


def test_mlx90614_reports_the_most_common_fault(sensor_on) -> None:
    flagged = 0x8000 | BODY
    sensor, _ = sensor_on([EIO, flagged, flagged, BadPec(BODY), flagged])
    assert sensor.read().fault == "error_flag"


def test_mlx90614_error_flag_is_a_fault(sensor_on) -> None:
    sensor, _ = sensor_on([0x8000 | BODY])
    reading = sensor.read()
    assert reading.fault == "error_flag"
    assert reading.celsius is None


def test_mlx90614_retries_a_missing_acknowledge(sensor_on, sleeps) -> None:
    sensor, bus = sensor_on([NACK, NACK, BODY], samples=1, retry_pause=0.01)
    reading = sensor.read()
    assert reading.celsius == 36.51
    assert len(bus.calls) == 3
    assert sleeps == [0.01, 0.01]


def test_mlx90614_gives_up_after_the_retries(sensor_on, sleeps) -> None:
    sensor, bus = sensor_on([NACK], samples=1, retries=3)
    reading = sensor.read()
    assert reading.fault == "i2c_error"
    assert len(bus.calls) == 4
    assert sleeps == [0.01] * 3


def test_mlx90614_does_not_retry_other_bus_errors(sensor_on, sleeps) -> None:
    sensor, bus = sensor_on([EIO, BODY], samples=1)
    assert sensor.read().fault == "i2c_error"
    assert len(bus.calls) == 1
    assert sleeps == []


def test_mlx90614_short_block_is_a_fault(sensor_on) -> None:
    sensor, _ = sensor_on([[0x7B, 0x3C]])
    assert sensor.read().fault == "i2c_error"


def test_mlx90614_unstable_spread_is_a_fault(sensor_on) -> None:
    drifting = [celsius_word(c) for c in (36.51, 37.11, 37.71, 38.31, 38.91)]
    sensor, _ = sensor_on(drifting)
    reading = sensor.read()
    assert reading.fault == "unstable"
    assert reading.celsius is None
    assert reading.spread == 1.2


def test_mlx90614_spread_at_the_limit_is_accepted(sensor_on) -> None:
    steps = [celsius_word(c) for c in (36.01, 36.51, 37.01, 37.51, 38.01)]
    sensor, _ = sensor_on(steps, max_spread=1.0)
    reading = sensor.read()
    assert reading.celsius == 37.01
    assert reading.spread == 1.0


def test_mlx90614_reads_the_ambient_register(sensor_on) -> None:
    sensor, bus = sensor_on([celsius_word(28.01)])
    assert sensor.read_ambient() == 28.01
    assert bus.calls == [(0x5A, 0x06, 3)]


def test_mlx90614_ambient_fault_is_none(sensor_on) -> None:
    sensor, _ = sensor_on([BadPec(BODY)])
    assert sensor.read_ambient() is None


def test_mlx90614_opens_and_closes_its_own_bus(monkeypatch) -> None:
    opened: list[tuple[int, FakeSMBus]] = []

    def open_bus(number: int) -> FakeSMBus:
        opened.append((number, FakeSMBus([BODY])))
        return opened[-1][1]

    monkeypatch.setattr("smbus2.SMBus", open_bus)
    with MLX90614(bus_number=3, samples=1, sleep=lambda _: None) as sensor:
        assert opened == []  # nothing touches the bus before the first read
        assert sensor.read().celsius == 36.51
    assert [number for number, _ in opened] == [3]
    assert opened[0][1].closed


def test_mlx90614_leaves_an_injected_bus_open(sensor_on) -> None:
    sensor, bus = sensor_on([BODY])
    sensor.close()
    sensor.close()
    assert not bus.closed


@given(word=st.integers(0, 0x7FFF), samples=st.integers(1, 5))
def test_mlx90614_any_good_word_converts(word: int, samples: int) -> None:
    sensor = MLX90614(bus=FakeSMBus([word]), samples=samples, sleep=lambda _: None)
    reading = sensor.read()
    assert reading.ok
    assert reading.celsius == pytest.approx(word * 0.02 - 273.15, abs=0.005)


@given(word=st.integers(0, 0xFFFF), wrong=st.integers(1, 0xFF))
def test_mlx90614_any_wrong_pec_is_a_fault(word: int, wrong: int) -> None:
    lsb, msb, right = frame(word)
    bus = FakeSMBus([[lsb, msb, right ^ wrong]])
    reading = MLX90614(bus=bus, sleep=lambda _: None).read()
    assert reading.fault == "pec_mismatch"
    assert reading.celsius is None


@given(word=st.integers(0x8000, 0xFFFF))
def test_mlx90614_any_flagged_word_is_a_fault(word: int) -> None:
    reading = MLX90614(bus=FakeSMBus([word]), sleep=lambda _: None).read()
    assert reading.fault == "error_flag"
    assert reading.celsius is None

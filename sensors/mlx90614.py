"""Driver for the Melexis MLX90614 contactless IR thermometer on I2C (SMBus, via smbus2).

Each `read()` takes a few samples, checks every one (PEC checksum, error flag, bus errors)
and reports their median, or a fault with a machine-readable reason.
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

from sensors.thermometer import Reading

if TYPE_CHECKING:
    from smbus2 import SMBus

log = logging.getLogger(__name__)

OBJECT_REGISTER = 0x07  # Tobj1, the forehead
AMBIENT_REGISTER = 0x06  # Ta, the sensor's own die
ERROR_FLAG = 0x8000
KELVIN_PER_LSB = 0.02
ZERO_CELSIUS_IN_KELVIN = 273.15
# Linux's EREMOTEIO: the device did not acknowledge. Spelled as a number because the errno
# module lacks the name on macOS, where technicians run the tests.
EREMOTEIO = 121


class SMBusLike(Protocol):
    """The part of smbus2's `SMBus` this driver uses."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...


def crc8(data: bytes) -> int:
    """SMBus packet error code: CRC-8, polynomial x^8 + x^2 + x + 1 (0x07), initial value 0."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) if crc & 0x80 else (crc << 1)
            crc &= 0xFF
    return crc


def raw_to_celsius(raw: int) -> float:
    """Convert a 15-bit temperature word (units of 0.02 K) to degrees Celsius."""
    return round(raw * KELVIN_PER_LSB - ZERO_CELSIUS_IN_KELVIN, 2)


@dataclass(frozen=True)
class _Sample:
    celsius: float | None = None
    fault: str | None = None
    detail: str = ""


class MLX90614:
    """One MLX90614 on an I2C bus; `read()` returns the uncalibrated object temperature."""

    def __init__(
        self,
        bus_number: int = 1,
        address: int = 0x5A,
        *,
        samples: int = 5,
        sample_interval: float = 0.04,
        retries: int = 3,
        retry_pause: float = 0.01,
        max_spread: float = 1.0,
        bus: SMBusLike | None = None,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if samples < 1:
            raise ValueError(f"samples must be at least 1, not {samples}")
        self.bus_number = bus_number
        self.address = address
        self.samples = samples
        self.sample_interval = sample_interval
        self.retries = retries
        self.retry_pause = retry_pause
        self.max_spread = max_spread
        self._bus: SMBusLike | None = bus
        self._own_bus: SMBus | None = None  # the bus this driver opened, so must close
        self._sleep = sleep
        self._lock = threading.Lock()  # one I2C transaction sequence at a time

    def read(self) -> Reading:
        """Sample the object temperature and report the median, or a fault."""
        with self._lock:
            samples = self._take_samples(OBJECT_REGISTER)
        reading = self._summarise(samples)
        if reading.fault:
            log.warning("MLX90614 fault %s: %s", reading.fault, reading.detail)
        return reading

    def read_ambient(self) -> float | None:
        """The sensor's own temperature in °C (for self-tests), or None on a fault."""
        with self._lock:
            sample = self._read_register(AMBIENT_REGISTER)
        if sample.fault:
            log.warning("MLX90614 ambient fault %s: %s", sample.fault, sample.detail)
        return sample.celsius

    def probe(self) -> Reading:
        """One read of the sensor's own (ambient) temperature: proves the bus, the address
        and the checksum without a forehead in front of it."""
        with self._lock:
            sample = self._read_register(AMBIENT_REGISTER)
        if sample.fault or sample.celsius is None:
            return Reading.failed(sample.fault or "no_value", sample.detail)
        return Reading(celsius=sample.celsius, raw=sample.celsius)

    def close(self) -> None:
        """Close the bus this driver opened; a later read opens it again. Idempotent."""
        with self._lock:
            if self._own_bus is not None:
                self._own_bus.close()
                self._own_bus = self._bus = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_samples(self, register: int) -> list[_Sample]:
        samples = []
        for index in range(self.samples):
            if index:
                self._sleep(self.sample_interval)
            samples.append(self._read_register(register))
        return samples

    def _summarise(self, samples: list[_Sample]) -> Reading:
        values = [s.celsius for s in samples if s.celsius is not None]
        if len(values) * 2 <= len(samples):
            return _majority_fault(samples, len(values))
        # Median: a spike from a moving hand must not move the value, as it would the mean;
        # the spread of the majority nearest the median tells a steady forehead from none.
        median = round(statistics.median(values), 2)
        core = sorted(values, key=lambda v: abs(v - median))[: len(samples) // 2 + 1]
        spread = round(max(core) - min(core), 2)
        if spread > self.max_spread:
            detail = f"samples spread {spread:.2f} °C > {self.max_spread:.2f} °C: {values}"
            return Reading(fault="unstable", detail=detail, spread=spread)
        return Reading(celsius=median, raw=median, spread=spread)

    def _read_register(self, register: int) -> _Sample:
        try:
            block = self._read_block(register)
        except OSError as exc:
            return _Sample(fault="i2c_error", detail=f"register {register:#04x}: {exc}")
        return self._decode(register, block)

    def _read_block(self, register: int) -> list[int]:
        attempt = 0
        while True:
            try:
                return list(self._open().read_i2c_block_data(self.address, register, 3))
            except OSError as exc:
                if exc.errno != EREMOTEIO or attempt >= self.retries:
                    raise
                attempt += 1
                log.debug("MLX90614 did not acknowledge (try %d), retrying", attempt)
                self._sleep(self.retry_pause)

    def _decode(self, register: int, block: list[int]) -> _Sample:
        if len(block) != 3:
            return _Sample(fault="i2c_error", detail=f"expected 3 bytes, got {block}")
        lsb, msb, pec = block
        write, read = self.address << 1, (self.address << 1) | 1
        expected = crc8(bytes([write, register, read, lsb, msb]))
        if pec != expected:
            return _Sample(fault="pec_mismatch", detail=f"PEC {pec:#04x} != {expected:#04x}")
        raw = msb << 8 | lsb
        if raw & ERROR_FLAG:
            return _Sample(fault="error_flag", detail=f"word {raw:#06x} has the error flag")
        return _Sample(celsius=raw_to_celsius(raw))

    def _open(self) -> SMBusLike:
        if self._bus is None:
            try:
                from smbus2 import SMBus
            except ImportError as exc:  # an OSError so a read reports it as a fault
                raise OSError(f"smbus2 is not installed: {exc}") from exc
            self._own_bus = self._bus = SMBus(self.bus_number)
        return self._bus


def _majority_fault(samples: list[_Sample], valid: int) -> Reading:
    """The fault most samples showed, when too few were valid to trust a value."""
    counts = Counter(s.fault for s in samples if s.fault)
    fault, count = counts.most_common(1)[0]
    first = next(s.detail for s in samples if s.fault == fault)
    detail = f"{valid}/{len(samples)} samples valid, {count} {fault}: {first}"
    return Reading.failed(fault, detail)

"""A scripted stand-in for smbus2's `SMBus`, for driving the MLX90614 driver in tests.

Each read answers with the next script item: a word (framed with a correct PEC), a
`BadPec` word, a literal `[lsb, msb, pec]` list, or an exception to raise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

log = logging.getLogger(__name__)


def pec(data: bytes) -> int:
    """CRC-8 (x^8 + x^2 + x + 1) by plain polynomial long division, bit by bit.

    Written independently of `sensors.mlx90614.crc8` so that each checks the other.
    """
    remainder = int.from_bytes(data, "big") << 8
    divisor = 0x107
    for shift in range(len(data) * 8 - 1, -1, -1):
        if remainder & (1 << (shift + 8)):
            remainder ^= divisor << shift
    return remainder


def celsius_word(celsius: float) -> int:
    """The nearest MLX90614 temperature word (0.02 K per bit) to `celsius`."""
    return round((celsius + 273.15) / 0.02)


@dataclass(frozen=True)
class BadPec:
    """A word framed with a PEC that is wrong (by default, the right one inverted)."""

    word: int
    pec: int | None = None


ScriptItem = int | BadPec | list[int] | BaseException


class FakeSMBus:
    """Answers `read_i2c_block_data` from a script; the last item repeats when it runs out."""

    def __init__(self, script: Iterable[ScriptItem]) -> None:
        self.script = list(script)
        if not self.script:
            raise ValueError("the script needs at least one item")
        self.calls: list[tuple[int, int, int]] = []
        self.closed = False

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]:
        self.calls.append((i2c_addr, register, length))
        item = self.script[min(len(self.calls), len(self.script)) - 1]
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, list):
            return list(item)
        return frame(item, i2c_addr, register)[:length]

    def read_word_data(self, i2c_addr: int, register: int) -> int:
        lsb, msb, _ = self.read_i2c_block_data(i2c_addr, register, 3)
        return msb << 8 | lsb

    def close(self) -> None:
        self.closed = True


def frame(item: int | BadPec, address: int = 0x5A, register: int = 0x07) -> list[int]:
    """The three bytes the sensor sends for `item`: [lsb, msb, pec]."""
    word = item.word if isinstance(item, BadPec) else item
    lsb, msb = word & 0xFF, word >> 8
    right = pec(bytes([address << 1, register, address << 1 | 1, lsb, msb]))
    if isinstance(item, BadPec):
        return [lsb, msb, right ^ 0xFF if item.pec is None else item.pec]
    return [lsb, msb, right]

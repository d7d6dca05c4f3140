"""Integer columns for the columnar encoding: zigzag, then fixed width, then byte planes.

Each column is stored as one width byte and its values' bytes grouped by significance
(all low bytes, then all second bytes, ...): deflate then squeezes the nearly constant high
planes to almost nothing, and packing and unpacking run at C speed through `array`.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable

from sync.batch import PayloadError, Unencodable

_CODES = {array(c).itemsize: c for c in "QLIHB"}  # itemsize -> typecode (smallest wins)
WIDTHS = (1, 2, 4, 8)
_BIG_ENDIAN = sys.byteorder == "big"


def zigzag(values: Iterable[int]) -> list[int]:
    """Signed to unsigned, small magnitudes to small numbers: 0, -1, 1, -2 -> 0, 1, 2, 3."""
    return [v << 1 if v >= 0 else (-v << 1) - 1 for v in values]


def unzigzag(values: Iterable[int]) -> list[int]:
    return [(z >> 1) ^ -(z & 1) for z in values]


def pack(values: list[int]) -> bytes:
    """One column of unsigned integers below 2**64."""
    top = max(values, default=0)
    if top >= 1 << 64 or (values and min(values) < 0):
        raise Unencodable(f"column value {top} does not fit 64 bits")
    width = next(w for w in WIDTHS if top < 1 << (8 * w))
    packed = array(_CODES[width], values)
    if _BIG_ENDIAN:
        packed.byteswap()
    raw = packed.tobytes()
    return bytes([width]) + b"".join(raw[i::width] for i in range(width))


def unpack(buf: bytes, pos: int, count: int) -> tuple[list[int], int]:
    """`count` values of the column at `pos`, and the position after it."""
    if pos >= len(buf):
        raise PayloadError("a column is missing")
    width = buf[pos]
    if width not in WIDTHS:
        raise PayloadError(f"column width {width} is not one of {WIDTHS}")
    start, end = pos + 1, pos + 1 + count * width
    if end > len(buf):
        raise PayloadError("a column is cut short")
    raw = bytearray(count * width)
    for i in range(width):
        raw[i::width] = buf[start + i * count : start + (i + 1) * count]
    values = array(_CODES[width])
    values.frombytes(bytes(raw))
    if _BIG_ENDIAN:
        values.byteswap()
    return values.tolist(), end

"""What decoding one batch may cost the receiver, fixed before any Python object is built.

A batch's start claims how many events it carries (its range, or version 2's `n`); its
inflated bytes and the JSON values in it may grow only in proportion to that claim, under
absolute caps. `Inflater` stops zlib at the limit (max_length); `load_json` counts values
with `bytes.count` before `json.loads`, budgets the numbers it parses, and refuses NaN,
Infinity and integers of more than 100 digits.
"""

from __future__ import annotations

import gc
import json
import zlib
from typing import Any, NoReturn

from sync.batch import MAX_EVENTS, PayloadError

# An honest 10,000-event version 1 body is about 1.4 MB and 190,000 JSON values; the caps
# keep a hostile body of at most these sizes under 64 MiB and 100 ms (docs/protocol.md).
MAX_JSON_BYTES = 4 << 20
MAX_JSON_VALUES = 300_000
# Per batch, whatever it claims: room for a few large `data` objects (16 KiB each at most).
BASE_BYTES = 64 << 10
BASE_VALUES = 8192
# Per claimed event: its fields (about 150 bytes and 19 values) and a share of `data`.
BYTES_PER_EVENT = 1024
VALUES_PER_EVENT = 48
# Numbers cost several times another value to parse (a float about 0.4 µs), so they have
# their own budget: an event carries seq and ref, temp_c and temp_raw_c, seldom more.
BASE_NUMBERS = 4096
NUMBERS_PER_EVENT = 3
MAX_DIGITS = 100  # far beyond any seq (16 digits); int() of thousands of digits is slow
HEAD_BYTES = 40 << 10  # what is inflated first to read a body's claim (version 3's header)


def json_bytes(events: int) -> int:
    """The most bytes of JSON text a batch claiming `events` events may hold."""
    return min(MAX_JSON_BYTES, BASE_BYTES + min(max(events, 0), MAX_EVENTS) * BYTES_PER_EVENT)


def json_values(events: int) -> int:
    """The most JSON values (containers, keys and scalars) such a batch may hold."""
    return min(MAX_JSON_VALUES, BASE_VALUES + min(max(events, 0), MAX_EVENTS) * VALUES_PER_EVENT)


def json_numbers(events: int) -> int:
    """The most integers, and separately the most other numbers, such a batch may hold."""
    return BASE_NUMBERS + min(max(events, 0), MAX_EVENTS) * NUMBERS_PER_EVENT


def values_in(text: bytes) -> int:
    """At least the number of JSON values and keys in `text`, counted at C speed.

    Every value but the first follows `[`, `,` or `:`, and every first key follows `{`;
    the same characters inside strings only make the count larger.
    """
    return 1 + sum(text.count(c) for c in (b"[", b"{", b",", b":"))


def load_json(text: bytes, events: int, what: str) -> Any:
    """`text` as JSON, refused unread when it is larger than `events` claimed events allow."""
    if len(text) > json_bytes(events):
        raise PayloadError(f"{what} of {len(text)} bytes is too large for {events} events")
    if values_in(text) > json_values(events):
        raise PayloadError(f"{what} holds too many JSON values for {events} events")
    numbers = _Numbers(json_numbers(events), f"{what} holds too many numbers for {events} events")
    collecting = gc.isenabled()
    # JSON builds no reference cycles; a collection triggered by its hundreds of thousands
    # of new objects would walk the whole heap, several times over (10 times the cost).
    gc.disable()
    try:
        return json.loads(
            text.decode(),
            parse_constant=_constant,
            parse_int=numbers.integer,
            parse_float=numbers.fraction,
        )
    except PayloadError:
        raise
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise PayloadError(f"{what} is not JSON") from None
    finally:
        if collecting:
            gc.enable()


def _constant(name: str) -> NoReturn:
    raise PayloadError(f"{name} is not a JSON number")


class _Numbers:
    """json.loads's number parsers, which stop it once the budget is spent."""

    def __init__(self, budget: int, reason: str) -> None:
        self.integers = self.fractions = budget
        self.reason = reason

    def integer(self, digits: str) -> int:
        self.integers -= 1
        if self.integers < 0:
            raise PayloadError(self.reason)
        if len(digits) > MAX_DIGITS:
            raise PayloadError(f"an integer of {len(digits)} digits is out of range")
        return int(digits)

    def fraction(self, text: str) -> float:
        self.fractions -= 1
        if self.fractions < 0:
            raise PayloadError(self.reason)
        return float(text)


class Inflater:
    """A zlib stream inflated on demand: its first bytes, then the rest up to a limit."""

    def __init__(self, data: bytes) -> None:
        self._zlib = zlib.decompressobj()
        self._input = data
        self._out = bytearray()

    def head(self, size: int = HEAD_BYTES) -> bytes:
        """The first `size` bytes (fewer if the stream ends or is cut short before)."""
        self._fill(size)
        return bytes(self._out[:size])

    def whole(self, limit: int) -> bytes:
        """Everything, or PayloadError if it inflates beyond `limit` bytes, is cut short or
        has bytes after its end."""
        self._fill(limit + 1)
        if len(self._out) > limit:
            raise PayloadError(f"body inflates beyond {limit} bytes")
        if not self._zlib.eof:
            raise PayloadError("body is cut short")
        if self._zlib.unused_data:
            raise PayloadError("bytes after the end of the body")
        return bytes(self._out)

    def _fill(self, size: int) -> None:
        while len(self._out) < size and not self._zlib.eof:
            try:
                chunk = self._zlib.decompress(self._input, size - len(self._out))
            except zlib.error as e:
                raise PayloadError(f"body does not inflate: {e}") from None
            progress = bool(chunk) or len(self._zlib.unconsumed_tail) < len(self._input)
            self._input = self._zlib.unconsumed_tail
            self._out += chunk
            if not progress:
                return  # everything given is inflated: the stream is cut short

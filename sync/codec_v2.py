"""Batch encoding version 2: columnar and delta-coded, a few bytes per event once deflated.

Body: a 4-byte length, a small JSON header (post, range, first time, the batch's distinct
"shapes", visitor data), then integer columns (`sync.packing`): seq gaps, time deltas in ms,
shape index per event, temperatures against a base, raw readings against the calibrated
one, refs as a distance back from the event's own seq. See docs/protocol.md.
"""

from __future__ import annotations

import json
import re
import struct
from itertools import accumulate
from typing import Any, cast

from edge.events import FIELDS, Event
from sync import bounded
from sync.batch import MAX_EVENTS, Batch, PayloadError, Unencodable
from sync.packing import pack, unpack, unzigzag, zigzag
from sync.schema import (
    EARLIEST,
    LATEST,
    MAX_TIME_MS,
    MIN_TIME_MS,
    TEMP_C,
    TEMP_RAW_C,
    check_data,
    check_frame,
    check_shape,
)
from sync.timecode import all_to_ms, to_text

VERSION = 2
TEMP, RAW, REF, DATA = 1, 2, 4, 8  # shape flags: which optional values an event carries
CARRIED = frozenset(FIELDS)
META_KEYS = {"post", "first", "last", "n", "t0", "base", "dec", "shapes", "data"}
MAX_DECIMALS = 4
_LEN = struct.Struct("<I")
# The start of the header every Pi has written (`encode`): the claim that bounds the rest.
_CLAIM = re.compile(
    rb'\{\s*"post"\s*:\s*"([^"\\]{0,64})"\s*,\s*"first"\s*:\s*(\d{1,20})\s*,'
    rb'\s*"last"\s*:\s*(\d{1,20})\s*,\s*"n"\s*:\s*(\d{1,20})\s*,'
)
COLUMNS = 6  # seq gaps, times, shapes, temps, raws, refs: at most n values of 8 bytes each


# -- encoding ---------------------------------------------------------------------------


class _Columns:
    """The batch split into columns while walking its events once."""

    def __init__(self, batch: Batch) -> None:
        self.shapes: dict[tuple[Any, ...], int] = {}
        self.gaps: list[int] = []
        self.times: list[int] = []
        self.index: list[int] = []
        self.temps: list[float] = []
        self.raws: list[tuple[float, float | None]] = []
        self.refs: list[int] = []
        self.data: list[Any] = []
        self._walk(batch)

    def _walk(self, batch: Batch) -> None:
        # One tight loop with local names: this runs for every event the Pi sends.
        shapes, add = self.shapes, self.shapes.setdefault
        gaps, index = self.gaps.append, self.index.append
        temps, raws, refs, data = (
            self.temps.append,
            self.raws.append,
            self.refs.append,
            self.data.append,
        )
        times: list[str] = []
        get: Any  # bound once per event (hot loop); encode checks what it returns
        post, previous = batch.post, batch.first - 1
        for event in batch.events:
            if not event.keys() <= CARRIED or event["post"] != post:
                raise Unencodable(f"event {event.get('seq')} has fields version 2 cannot carry")
            seq = event["seq"]
            gaps(seq - previous - 1)
            previous = seq
            times.append(event["time"])
            get = event.get
            temp, raw, ref = get("temp_c"), get("temp_raw_c"), get("ref")
            flags = (
                (temp is not None) * TEMP
                | (raw is not None) * RAW
                | (ref is not None) * REF
                | ("data" in event) * DATA
            )
            shape = (
                event["kind"],
                get("who"),
                get("screening"),
                get("fault"),
                event["clock"],
                get("photo"),
                flags,
            )
            index(add(shape, len(shapes)))
            if temp is not None:
                temps(temp)
            if raw is not None:
                raws((raw, temp))
            if ref is not None:
                refs(seq - ref)
            if flags & DATA:
                data(event["data"])
        self.times = all_to_ms(times)


def encode(batch: Batch) -> bytes:
    """The version 2 body of a batch; Unencodable if it cannot carry these events exactly."""
    try:
        cols = _Columns(batch)
        dec = _decimals([*cols.temps, *(r for r, _ in cols.raws)])
        scale = 10**dec
        temps = [round(t * scale) for t in cols.temps]
        raws = [(round(r * scale), None if t is None else round(t * scale)) for r, t in cols.raws]
        base = temps[0] if temps else raws[0][0] if raws else 0
        t0 = cols.times[0] if cols.times else 0
        meta = {
            "post": batch.post,
            "first": batch.first,
            "last": batch.last,
            "n": len(batch.events),
            "t0": t0,
            "base": base,
            "dec": dec,
            "shapes": [list(s) for s in cols.shapes],
            "data": cols.data,
        }
        head = json.dumps(meta, separators=(",", ":"), ensure_ascii=False).encode()
        columns = [
            cols.gaps,
            zigzag(b - a for a, b in zip([t0, *cols.times], cols.times, strict=False)),
            cols.index,
            zigzag(t - base for t in temps),
            zigzag(r - (base if t is None else t) for r, t in raws),
            cols.refs,
        ]
        return _LEN.pack(len(head)) + head + b"".join(pack(c) for c in columns)
    except (TypeError, ValueError, KeyError, OverflowError, AttributeError) as e:
        raise Unencodable(str(e)) from None


def _decimals(values: list[float]) -> int:
    """The fewest decimals that keep every value exact."""
    for value in values:
        if type(value) not in (int, float):
            raise Unencodable(f"temperature {value!r} is not a number")
    for dec in range(MAX_DECIMALS + 1):
        scale = 10**dec
        if all(round(v * scale) / scale == v for v in values):
            return dec
    raise Unencodable(f"temperatures need more than {MAX_DECIMALS} decimals")


# -- decoding ---------------------------------------------------------------------------


def decode(body: bytes) -> Batch:
    try:
        return _decode(body)
    except PayloadError:
        raise
    except (
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        struct.error,
        RecursionError,
    ) as e:
        raise PayloadError(f"version 2 body is malformed: {str(e)[:80]}") from None


def claim(head: bytes) -> tuple[int, tuple[str, int, int, int]]:
    """The header's size and the post, range and event count it claims, checked."""
    if len(head) < _LEN.size:
        raise PayloadError("version 2 body is cut short")
    (size,) = _LEN.unpack_from(head)
    found = _CLAIM.match(head, _LEN.size, _LEN.size + size)
    if found is None:
        raise PayloadError("version 2 header does not start with its post, first, last, n")
    post, first, last, n = found[1].decode(errors="replace"), *map(int, found.group(2, 3, 4))
    check_frame(post, first, last, n)
    if size > bounded.json_bytes(n):
        raise PayloadError(f"version 2 header of {size} bytes is too large for {n} events")
    return size, (post, first, last, n)


def limit(head: bytes) -> int:
    """The most bytes the body that starts with `head` may inflate to."""
    size, (*_, n) = claim(head)
    return _LEN.size + size + COLUMNS * (1 + 8 * n)


def _decode(body: bytes) -> Batch:
    size, claimed = claim(body[: bounded.HEAD_BYTES])
    meta = _meta(body[4 : 4 + size], claimed)
    n, shapes = meta["n"], meta["shapes"]
    pos = 4 + size
    gaps, pos = unpack(body, pos, n)
    deltas, pos = unpack(body, pos, n)
    index, pos = unpack(body, pos, n)
    if index and max(index) >= len(shapes):
        raise PayloadError("a shape index points nowhere")
    flags = [s[6] for s in shapes]
    counts = [0] * len(shapes)
    for i in index:
        counts[i] += 1
    needed = {
        f: sum(c for c, fl in zip(counts, flags, strict=True) if fl & f)
        for f in (TEMP, RAW, REF, DATA)
    }
    temps, pos = unpack(body, pos, needed[TEMP])
    raws, pos = unpack(body, pos, needed[RAW])
    refs, pos = unpack(body, pos, needed[REF])
    if pos != len(body):
        raise PayloadError("bytes left after the last column")
    if len(meta["data"]) != needed[DATA]:
        raise PayloadError("visitor data does not match the events carrying it")
    seqs = list(accumulate((g + 1 for g in gaps), initial=meta["first"] - 1))[1:]
    if seqs and seqs[-1] > meta["last"]:
        raise PayloadError("an event lies beyond the batch's range")
    times = list(accumulate(unzigzag(deltas), initial=meta["t0"]))[1:]
    if times and (min(times) < MIN_TIME_MS or max(times) > MAX_TIME_MS):
        raise PayloadError(f"an event time is outside {EARLIEST[:10]}..{LATEST[:10]}")
    values = _Values(meta, temps, raws, refs)
    events = [
        values.event(meta["post"], seq, text, shapes[i])
        for seq, text, i in zip(seqs, _texts(times), index, strict=True)
    ]
    return Batch(meta["post"], meta["first"], meta["last"], events, rows=values.rows)


def _meta(head: bytes, claimed: tuple[str, int, int, int]) -> dict[str, Any]:
    meta = bounded.load_json(head, claimed[3], "version 2 header")
    if not isinstance(meta, dict) or set(meta) != META_KEYS:
        raise PayloadError("version 2 header has the wrong fields")
    if tuple(meta[k] for k in ("post", "first", "last", "n")) != claimed:
        raise PayloadError("version 2 header names its post, range or count twice")
    n = meta["n"]
    if not isinstance(n, int) or not 0 <= n <= MAX_EVENTS:
        raise PayloadError(f"event count {str(n)[:20]!r} is out of range")
    check_frame(meta["post"], meta["first"], meta["last"], n)
    for key, top in (("t0", MAX_TIME_MS), ("base", 10**9), ("dec", MAX_DECIMALS)):
        value = meta[key]
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not (-top if key == "base" else 0) <= value <= top
        ):
            raise PayloadError(f"header {key} is out of range")
    shapes, data = meta["shapes"], meta["data"]
    if (
        not isinstance(shapes, list)
        or not isinstance(data, list)
        or max(len(shapes), len(data)) > n
    ):
        raise PayloadError("version 2 shapes or data are malformed")
    for shape in shapes:
        if not isinstance(shape, list) or len(shape) != 7 or shape[6] not in range(16):
            raise PayloadError("a shape is malformed")
        check_shape(*shape[:6])
    for item in data:
        check_data(item)
    return meta


def _texts(times: list[int]) -> list[str]:
    """The times as text (`to_text`), each hour's text made once (a batch's events share
    their hours), the rest from tables."""
    hours: dict[int, str] = {}
    texts = []
    for ms in times:
        hour, rest = divmod(ms, 3_600_000)
        head = hours.get(hour)
        if head is None:
            head = hours[hour] = to_text(hour * 3_600_000)[:14]  # 2026-11-27T03:
        second, milli = divmod(rest, 1000)
        texts.append(head + _SECONDS[second] + _MILLIS[milli])
    return texts


_SECONDS = [f"{s // 60:02d}:{s % 60:02d}." for s in range(3600)]  # of an hour: "04:05."
_MILLIS = [f"{m:03d}Z" for m in range(1000)]


class _Values:
    """Hands out the optional values of each event in order, checked as they come."""

    def __init__(
        self, meta: dict[str, Any], temps: list[int], raws: list[int], refs: list[int]
    ) -> None:
        self.scale: int = 10 ** meta["dec"]
        self.base = meta["base"]
        self.temps = iter([t + self.base for t in unzigzag(temps)])  # a list: cheap next()
        self.raws = iter(unzigzag(raws))
        self.refs = iter(refs)
        self.data = iter(meta["data"])
        self.rows: list[tuple[Any, ...]] = []  # each event as a row of `batch.ROW` too

    def event(self, post: str, seq: int, time: str, shape: list[Any]) -> Event:
        kind, who, screening, fault, clock, photo, flags = shape
        event: dict[str, Any] = {
            "post": post,
            "seq": seq,
            "time": time,
            "clock": clock,
            "kind": kind,
        }
        if who is not None:
            event["who"] = who
        scaled = next(self.temps) if flags & TEMP else None
        temp = raw = ref = data = None
        if scaled is not None:
            temp = event["temp_c"] = self._degrees(scaled, TEMP_C, "temp_c")
        if flags & RAW:
            raw_scaled = next(self.raws) + (self.base if scaled is None else scaled)
            raw = event["temp_raw_c"] = self._degrees(raw_scaled, TEMP_RAW_C, "temp_raw_c")
        if screening is not None:
            event["screening"] = screening
        if fault is not None:
            event["fault"] = fault
        if flags & REF:
            ref = seq - next(self.refs)
            if not 1 <= ref < seq:
                raise PayloadError(f"event {seq}: ref {ref} is not an earlier seq")
            event["ref"] = ref
        if photo is not None:
            event["photo"] = photo
        if flags & DATA:
            data = event["data"] = next(self.data)
        text = None if data is None else json.dumps(data, ensure_ascii=False)
        photo_flag = 1 if photo else None
        self.rows.append(
            (post, seq, time, clock, kind, who, temp, raw, screening, fault, ref, photo_flag, text)
        )
        return cast(Event, event)  # every value checked: the header by _meta, the rest here

    def _degrees(self, scaled: int, bounds: tuple[float, float], name: str) -> float:
        value = scaled / self.scale
        if not bounds[0] <= value <= bounds[1]:
            raise PayloadError(f"{name} {value} is outside {bounds[0]:g}..{bounds[1]:g}")
        return value

"""What the district accepts: the shape, types and ranges of a batch and of each event.

Every check raises `PayloadError` with a one-line reason; the receiver quarantines the
whole payload, so a batch is stored whole or not at all.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from edge.events import FIELDS, Kind, Screening, Who
from edge.tally import REFERRAL_OUTCOMES
from sync.batch import MAX_EVENTS, MAX_SEQ, Batch, PayloadError
from sync.timecode import to_ms
from sync.topics import POST_ID

KINDS = frozenset(k.value for k in Kind)
WHOS = frozenset(w.value for w in Who)
SCREENINGS = frozenset(s.value for s in Screening)
REQUIRED = ("post", "seq", "time", "clock", "kind")
OPTIONAL = frozenset(FIELDS) - frozenset(REQUIRED)
WORD = re.compile(r"^[\w.:-]{1,64}$")  # clock states and fault codes
# The times an event may carry (docs/protocol.md): the programme began in 2020 and a Pi's OS
# never boots with its clock before its own build; every day up to 2099 fits every export.
# Fixed, not "now + a day": each receiver, each retry, gives the same batch the same verdict.
EARLIEST = "2020-01-01T00:00:00.000Z"
LATEST = "2099-12-31T23:59:59.999Z"
MIN_TIME_MS = to_ms(EARLIEST)
MAX_TIME_MS = to_ms(LATEST)
TEMP_C = (0.0, 60.0)  # a calibrated reading (the plausible range is a setting up to 50 °C)
TEMP_RAW_C = (-273.15, 1000.0)  # whatever a sensor may say, faults included
MAX_DATA_BYTES = 16_384
MAX_DATA_DEPTH = 16  # an erasure note is 3 deep
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_frame(post: Any, first: Any, last: Any, count: int) -> None:
    """The batch's own fields: post id, a seq range, and not too many events."""
    if not isinstance(post, str) or not POST_ID.fullmatch(post):
        raise PayloadError(f"post id {str(post)[:40]!r} is not valid")
    for name, value in (("first", first), ("last", last)):
        if not _is_int(value) or not 1 <= value <= MAX_SEQ:
            raise PayloadError(f"{name} seq {str(value)[:40]!r} is not a seq")
    if first > last:
        raise PayloadError(f"range {first}-{last} is empty")
    if count > MAX_EVENTS or count > last - first + 1:
        raise PayloadError(f"{count} events do not fit range {first}-{last} (max {MAX_EVENTS})")


def check_batch(batch: Batch) -> None:
    """A whole batch, every event checked in full (used for the JSON row encoding)."""
    check_frame(batch.post, batch.first, batch.last, len(batch.events))
    previous = batch.first - 1
    for event in batch.events:
        if not isinstance(event, dict):
            raise PayloadError("an event is not an object")
        check_event(event, batch.post)
        if not previous < event["seq"] <= batch.last:
            raise PayloadError(f"seq {event['seq']} is out of order or outside the range")
        previous = event["seq"]


def check_event(event: Mapping[str, Any], post: str) -> None:
    missing = [k for k in REQUIRED if k not in event]
    if missing:
        raise PayloadError(f"an event lacks {', '.join(missing)}")
    unknown = set(event) - OPTIONAL - set(REQUIRED)
    if unknown:
        raise PayloadError(f"unknown event field {sorted(map(str, unknown))[0][:40]!r}")
    seq = event["seq"]
    if event["post"] != post:
        raise PayloadError(f"event {seq!r} belongs to another post")
    if not _is_int(seq) or not 1 <= seq <= MAX_SEQ:
        raise PayloadError(f"seq {str(seq)[:40]!r} is not a seq")
    check_time(event["time"])
    check_shape(
        event["kind"],
        event.get("who"),
        event.get("screening"),
        event.get("fault"),
        event["clock"],
        event.get("photo"),
    )
    check_number("temp_c", event.get("temp_c"), TEMP_C)
    check_number("temp_raw_c", event.get("temp_raw_c"), TEMP_RAW_C)
    ref = event.get("ref")
    if ref is not None and (not _is_int(ref) or not 1 <= ref < seq):
        raise PayloadError(f"event {seq}: ref {str(ref)[:40]!r} is not an earlier seq")
    if "data" in event:
        check_data(event["data"])
        if event["kind"] == Kind.NOTE and "referral" in event["data"]:
            check_referral(event["data"], ref)


def check_referral(data: dict[str, Any], ref: Any) -> None:
    """The follow-up of a refusal: a note on the entry (ref), where the person went."""
    if ref is None or data["referral"] not in REFERRAL_OUTCOMES:
        raise PayloadError(f"referral {str(data['referral'])[:40]!r} is not a known follow-up")
    if not isinstance(data.get("contact", ""), str):
        raise PayloadError("referral contact is not text")


def check_time(text: Any) -> int:
    """The event time as milliseconds since 1970 (UTC), from the canonical text only."""
    try:
        ms = to_ms(text)
    except ValueError as e:
        raise PayloadError(str(e)) from None
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise PayloadError(f"time {text!r} is outside {EARLIEST[:10]}..{LATEST[:10]}")
    return ms


def check_shape(kind: Any, who: Any, screening: Any, fault: Any, clock: Any, photo: Any) -> None:
    """The categorical fields of an event (checked once per distinct combination)."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise PayloadError(f"kind {str(kind)[:40]!r} is unknown")
    if who is not None and (not isinstance(who, str) or who not in WHOS):
        raise PayloadError(f"who {str(who)[:40]!r} is unknown")
    if screening is not None and (not isinstance(screening, str) or screening not in SCREENINGS):
        raise PayloadError(f"screening {str(screening)[:40]!r} is unknown")
    for name, value in (("fault", fault), ("clock", clock)):
        if value is not None and (not isinstance(value, str) or not WORD.fullmatch(value)):
            raise PayloadError(f"{name} {str(value)[:40]!r} is not a short code")
    if clock is None:
        raise PayloadError("clock state is missing")
    if photo is not None and photo is not True:
        raise PayloadError(f"photo {str(photo)[:10]!r} is not true")


def check_number(name: str, value: Any, bounds: tuple[float, float]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PayloadError(f"{name} {str(value)[:40]!r} is not a number")
    if not bounds[0] <= value <= bounds[1]:
        raise PayloadError(f"{name} {value} is outside {bounds[0]:g}..{bounds[1]:g}")


def check_data(data: Any) -> None:
    """An object of plain JSON: finite numbers, text without lone surrogates, not too deep,
    at most MAX_DATA_BYTES as UTF-8."""
    if not isinstance(data, dict):
        raise PayloadError("data is not an object")
    _check_plain(data)
    if len(json.dumps(data, ensure_ascii=False).encode()) > MAX_DATA_BYTES:
        raise PayloadError(f"data is larger than {MAX_DATA_BYTES} bytes")


def _check_plain(data: dict[str, Any]) -> None:
    """Walk `data` without recursion: NaN and Infinity are not JSON (JSON readers reject
    them, so an export would break), and a lone surrogate cannot be stored as UTF-8."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise PayloadError("data holds a lone surrogate (not UTF-8 text)")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise PayloadError(f"data holds {value!r}, which is not a JSON number")
        elif isinstance(value, dict | list):
            if depth > MAX_DATA_DEPTH:
                raise PayloadError(f"data is nested deeper than {MAX_DATA_DEPTH}")
            if len(value) > MAX_DATA_BYTES // 2:  # each item takes 2 bytes at least
                raise PayloadError(f"data is larger than {MAX_DATA_BYTES} bytes")
            children = [*value, *value.values()] if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

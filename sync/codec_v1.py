"""Batch encoding version 1: the events as JSON rows (then deflated by `sync.codec`).

The first and simplest encoding. The Pi still uses it for a batch that version 2 cannot
carry exactly (an unexpected field or value), and every receiver keeps reading it.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

from edge.events import Event
from sync import bounded
from sync.batch import Batch, PayloadError
from sync.schema import check_batch, check_frame

VERSION = 1
# The start every Pi has written (`encode`): the claim that bounds the rest (sync.bounded).
_CLAIM = re.compile(
    rb'\{\s*"post"\s*:\s*"([^"\\]{0,64})"\s*,\s*"first"\s*:\s*(\d{1,20})\s*,'
    rb'\s*"last"\s*:\s*(\d{1,20})\s*,\s*"events"\s*:\s*\['
)


def encode(batch: Batch) -> bytes:
    body = {"post": batch.post, "first": batch.first, "last": batch.last, "events": batch.events}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def claim(head: bytes) -> tuple[str, int, int]:
    """The post and range a body's first bytes claim, checked; PayloadError without one."""
    found = _CLAIM.match(head)
    if found is None:
        raise PayloadError("version 1 body does not start with its post, first, last, events")
    post, first, last = found[1].decode(errors="replace"), int(found[2]), int(found[3])
    check_frame(post, first, last, 0)
    return post, first, last


def limit(head: bytes) -> int:
    """The most bytes the body that starts with `head` may inflate to."""
    _, first, last = claim(head)
    return bounded.json_bytes(last - first + 1)


def decode(body: bytes) -> Batch:
    claimed = claim(body[: bounded.HEAD_BYTES])
    doc: Any = bounded.load_json(body, claimed[2] - claimed[1] + 1, "version 1 body")
    if not isinstance(doc, dict) or set(doc) != {"post", "first", "last", "events"}:
        raise PayloadError("version 1 body is not a batch object")
    if (doc["post"], doc["first"], doc["last"]) != claimed:
        raise PayloadError("version 1 body names its post or range twice")
    if not isinstance(doc["events"], list):
        raise PayloadError("version 1 events are not a list")
    events = cast(list[Event], doc["events"])  # Events once check_batch below passes
    batch = Batch(doc["post"], doc["first"], doc["last"], events)
    check_batch(batch)
    return batch

"""Batch encoding version 1: the events as JSON rows (then deflated by `sync.codec`).

The first and simplest encoding. The Pi still uses it for a batch that version 2 cannot
carry exactly (an unexpected field or value), and every receiver keeps reading it.
"""

from __future__ import annotations

import json
from typing import Any, cast

from edge.events import Event
from sync.batch import Batch, PayloadError
from sync.schema import check_batch

VERSION = 1


def encode(batch: Batch) -> bytes:
    body = {"post": batch.post, "first": batch.first, "last": batch.last, "events": batch.events}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def decode(body: bytes) -> Batch:
    try:
        doc: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise PayloadError("version 1 body is not JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"post", "first", "last", "events"}:
        raise PayloadError("version 1 body is not a batch object")
    if not isinstance(doc["events"], list):
        raise PayloadError("version 1 events are not a list")
    events = cast(list[Event], doc["events"])  # Events once check_batch below passes
    batch = Batch(doc["post"], doc["first"], doc["last"], events)
    check_batch(batch)
    return batch

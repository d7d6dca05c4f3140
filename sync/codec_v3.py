"""Batch encoding version 3: the lost seqs listed explicitly, around a version 1 or 2 body.

Body: a 4-byte length, a small JSON header `{"body": 1 or 2, "lost": [[first, last,
reason], ...]}`, then the events exactly as version `body` encodes them. Only the lost
seqs are new: versions 1 and 2 left them implied by the range, which a hostile batch
could stretch to the end of time (docs/protocol.md). The district checks the list against
the range with `sync.batch.check_lost`.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from edge.segments import LOST_REASONS, Lost
from sync import codec_v1, codec_v2
from sync.batch import MAX_LOST_RANGES, MAX_SEQ, Batch, PayloadError, Unencodable

log = logging.getLogger(__name__)

VERSION = 3
MAX_HEADER = 32 * 1024  # MAX_LOST_RANGES ranges of a few dozen bytes each
_LEN = struct.Struct("<I")
INNER: dict[int, tuple[Callable[[Batch], bytes], Callable[[bytes], Batch]]] = {
    codec_v1.VERSION: (codec_v1.encode, codec_v1.decode),
    codec_v2.VERSION: (codec_v2.encode, codec_v2.decode),
}


def encode(batch: Batch) -> bytes:
    """Version 2 inside when it can carry the events exactly, version 1 otherwise."""
    try:
        inner, body = codec_v2.VERSION, codec_v2.encode(batch)
    except Unencodable as e:
        log.info("batch %d-%d carried as version 1 rows: %s", batch.first, batch.last, e)
        inner, body = codec_v1.VERSION, codec_v1.encode(batch)
    lost = [[r.first, r.last, r.reason] for r in batch.declared]
    head = json.dumps({"body": inner, "lost": lost}, separators=(",", ":")).encode()
    return _LEN.pack(len(head)) + head + body


def decode(body: bytes) -> Batch:
    if len(body) < _LEN.size:
        raise PayloadError("version 3 body is cut short")
    (size,) = _LEN.unpack_from(body)
    if size > MAX_HEADER or _LEN.size + size > len(body):
        raise PayloadError("version 3 header is too large or cut short")
    head = _header(body[_LEN.size : _LEN.size + size])
    _, decode_inner = INNER[head["body"]]
    batch = decode_inner(body[_LEN.size + size :])
    return replace(batch, declared=tuple(_lost(head["lost"])))


def limit(head: bytes) -> int:
    """The most bytes the body that starts with `head` may inflate to (`sync.bounded`)."""
    if len(head) < _LEN.size:
        raise PayloadError("version 3 body is cut short")
    (size,) = _LEN.unpack_from(head)
    if size > MAX_HEADER:
        raise PayloadError("version 3 header is too large or cut short")
    inner: int = _header(head[_LEN.size : _LEN.size + size])["body"]
    limits = {codec_v1.VERSION: codec_v1.limit, codec_v2.VERSION: codec_v2.limit}
    return _LEN.size + int(size) + limits[inner](head[_LEN.size + size :])


def _header(raw: bytes) -> dict[str, Any]:
    try:
        head = json.loads(raw)
    except (ValueError, RecursionError):
        raise PayloadError("version 3 header is not JSON") from None
    if not isinstance(head, dict) or set(head) != {"body", "lost"}:
        raise PayloadError("version 3 header has the wrong fields")
    if head["body"] not in INNER or isinstance(head["body"], bool):
        raise PayloadError(f"version 3 inner body {str(head['body'])[:10]} is unknown")
    if not isinstance(head["lost"], list) or len(head["lost"]) > MAX_LOST_RANGES:
        raise PayloadError(f"version 3 lost list is not a list of at most {MAX_LOST_RANGES}")
    return head


def _lost(items: list[Any]) -> list[Lost]:
    found = []
    for item in items:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and all(isinstance(x, int) and not isinstance(x, bool) for x in item[:2])
            and 1 <= item[0] <= item[1] <= MAX_SEQ
            and isinstance(item[2], str)
            and item[2] in LOST_REASONS
        ):
            raise PayloadError("a lost range is not [first, last, known reason]")
        found.append(Lost(item[0], item[1], item[2]))
    return found

"""Batch payloads on the wire: a 3-byte header (magic "Po", version) and a zlib body.

Decoders are kept by version, so a newer receiver reads every older Pi; the Pi writes the
newest version (3: the lost seqs listed, around a version 2 body, or version 1 rows for a
batch version 2 cannot carry).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable

from sync import bounded, codec_v1, codec_v2, codec_v3
from sync.batch import Batch, PayloadError, Unencodable

log = logging.getLogger(__name__)

MAGIC = b"Po"
CURRENT = codec_v3.VERSION
MAX_PAYLOAD = 1 << 20  # compressed bytes a receiver accepts by default
# Inflated bytes of any body; each version also bounds its body by what it claims (LIMITS).
MAX_BODY = 5 << 20
LEVEL = 6  # 9 saves under 0.1 % here at twice the time

ENCODERS: dict[int, Callable[[Batch], bytes]] = {
    codec_v1.VERSION: codec_v1.encode,
    codec_v2.VERSION: codec_v2.encode,
    codec_v3.VERSION: codec_v3.encode,
}
DECODERS: dict[int, Callable[[bytes], Batch]] = {
    codec_v1.VERSION: codec_v1.decode,
    codec_v2.VERSION: codec_v2.decode,
    codec_v3.VERSION: codec_v3.decode,
}
# The most bytes a body may inflate to, judging by its first bytes (`sync.bounded`).
LIMITS: dict[int, Callable[[bytes], int]] = {
    codec_v1.VERSION: codec_v1.limit,
    codec_v2.VERSION: codec_v2.limit,
    codec_v3.VERSION: codec_v3.limit,
}


def encode(batch: Batch, version: int = CURRENT) -> bytes:
    try:
        body = ENCODERS[version](batch)
    except Unencodable as e:
        if version == codec_v1.VERSION:
            raise
        log.info("batch %d-%d sent as version 1: %s", batch.first, batch.last, e)
        version, body = codec_v1.VERSION, codec_v1.encode(batch)
    return MAGIC + bytes([version]) + zlib.compress(body, LEVEL)


def version_of(payload: bytes) -> int | None:
    return payload[2] if len(payload) >= 3 and payload[:2] == MAGIC else None


def decode(payload: bytes, max_bytes: int = MAX_PAYLOAD) -> Batch:
    """The batch in a payload, checked in full; PayloadError says what is wrong with it."""
    if len(payload) > max_bytes:
        raise PayloadError(f"payload of {len(payload)} bytes is larger than {max_bytes}")
    version = version_of(payload)
    if version is None:
        raise PayloadError("not a Posko batch (no magic bytes)")
    decoder = DECODERS.get(version)
    if decoder is None:
        known = ", ".join(map(str, sorted(DECODERS)))
        raise PayloadError(f"batch version {version} is unknown here (known: {known})")
    body = bounded.Inflater(payload[3:])
    return decoder(body.whole(min(LIMITS[version](body.head()), MAX_BODY)))


def inflate(data: bytes, limit: int = MAX_BODY) -> bytes:
    """A whole zlib body of at most `limit` bytes; PayloadError otherwise."""
    return bounded.Inflater(data).whole(limit)

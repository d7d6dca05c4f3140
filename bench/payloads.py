"""Hostile batch payloads, for bench/hostile.py and the adversarial tests: decoding bombs at
and beyond the receiver's caps (sync/bounded.py) and mutations of valid batches.

Every payload here is at most 1 MiB, the receiver's default --max-payload.
"""

from __future__ import annotations

import json
import random
import re
import struct
import zlib
from datetime import date, timedelta
from typing import cast
from zoneinfo import ZoneInfo

from bench.store import day_events
from edge.events import Event
from sync import codec
from sync.batch import MAX_EVENTS, Batch

ZONE = ZoneInfo("Asia/Jakarta")
_LEN = struct.Struct("<I")
# Values a mutation writes over one JSON token of a batch: each a way to be wrong (or, by
# chance, right: a mutated batch that is still valid is stored like any other).
HOSTILE_VALUES = (
    b"NaN",
    b"-Infinity",
    b"1e999",
    b"-1",
    b"0",
    b"9007199254740992",
    b"9" * 200,
    b"1.5",
    b"true",
    b"null",
    b"{}",
    b"[]",
    b"[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]",
    b'""',
    b'"\\ud800"',
    b'"\\udfff\\ud800"',
    b'"\\u0000"',
    b'"line\\nforged: WARNING district"',
    b'"\\u202e"',
    b'"9999-12-31T23:59:59.999Z"',
    b'"2019-12-31T23:59:59.999Z"',
    b'"2020-01-01T00:00:00.000Z"',
    b'"2099-12-31T23:59:59.999Z"',
    b'"2026-02-30T01:02:03.004Z"',
    b'"in"',
    b'"visitor"',
    b'"posko-02"',
    b'"' + b"x" * 5000 + b'"',
)
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null')


def events(post: str, first: int, count: int, seed: int) -> list[Event]:
    """`count` realistic events of `post` (entries, exits, re-checks, visitors, faults)."""
    rng = random.Random(seed)
    found = day_events(rng, date(2026, 9, 1) + timedelta(days=seed % 60), ZONE, first, count, None)
    return [cast(Event, json.loads(json.dumps({**e, "post": post}))) for e in found]


def honest_payloads(post: str = "bench", seed: int = 1) -> list[tuple[str, bytes]]:
    """Valid payloads of every batch version: (what it is, payload)."""
    batch = Batch.of(post, events(post, 1, 30, seed))
    small = Batch.of(post, events(post, 31, 3, seed + 1))
    return [
        *((f"v{v}", codec.encode(batch, v)) for v in sorted(codec.ENCODERS)),
        *((f"v{v}-small", codec.encode(small, v)) for v in sorted(codec.ENCODERS)),
    ]


# -- bombs ---------------------------------------------------------------------------------


def deflated(version: int, body: bytes) -> bytes:
    return codec.MAGIC + bytes([version]) + zlib.compress(body, 9)


def v1_body(post: str, first: int, last: int, events_text: bytes) -> bytes:
    head = b'{"post":"%s","first":%d,"last":%d,"events":[' % (post.encode(), first, last)
    return head + events_text + b"]}"


def v2_body(post: str, n: int, extra: bytes = b"", columns: bytes = b"") -> bytes:
    head = (
        b'{"post":"%s","first":1,"last":%d,"n":%d,"t0":1764547200000,"base":366,"dec":1,'
        b'"shapes":[["in","resident","normal",null,"synced",null,1]],"data":[%s]}'
    ) % (post.encode(), max(n, 1), n, extra)
    return _LEN.pack(len(head)) + head + columns


def v3_around(inner_version: int, inner: bytes) -> bytes:
    head = b'{"body":%d,"lost":[]}' % inner_version
    return _LEN.pack(len(head)) + head + inner


def repeat(item: bytes, count: int) -> bytes:
    return (item + b",") * (count - 1) + item if count else b""


def bombs(post: str = "bench") -> dict[str, bytes]:
    """Payloads that cost a naive decoder seconds and hundreds of MiB, each ≤ 1 MiB."""
    event = b'{"post":"%s","seq":1,"time":"2026-11-27T01:02:03.004Z","clock":"synced",' % (
        post.encode()
    )
    keys = b",".join(b'"k%d":""' % i for i in range(149_000))
    found = {
        # The finding of issue 9: millions of empty lists in 16 KB of payload (under the
        # 16 MiB an older receiver inflated).
        "lists-5.5M": deflated(1, v1_body(post, 1, MAX_EVENTS, repeat(b"[]", 5_500_000))),
        # Just under the caps: the most a hostile body can make the receiver build.
        "lists-at-cap": deflated(1, v1_body(post, 1, MAX_EVENTS, repeat(b"[]", 149_000))),
        "dicts-at-cap": deflated(1, v1_body(post, 1, MAX_EVENTS, repeat(b"{}", 149_000))),
        "strings-at-cap": deflated(1, v1_body(post, 1, MAX_EVENTS, repeat(b'"ab"', 299_000))),
        "floats-at-cap": deflated(1, v1_body(post, 1, MAX_EVENTS, repeat(b"1e-300", 34_000))),
        "keys-at-cap": deflated(
            1, v1_body(post, 1, MAX_EVENTS, event + b'"kind":"in","data":{' + keys + b"}}")
        ),
        "mixed-at-cap": deflated(
            1,
            v1_body(
                post,
                1,
                MAX_EVENTS,
                b",".join(
                    [
                        repeat(b"1e-300", 34_000),
                        repeat(b"12345678901234567890", 34_000),
                        repeat(b"[]", 115_000),
                        b'"' + b"a" * 2_800_000 + "😀".encode() + b'"',
                    ]
                ),
            ),
        ),
        "long-ints": deflated(1, v1_body(post, 1, MAX_EVENTS, repeat(b"9" * 100, 34_000))),
        "huge-int": deflated(1, v1_body(post, 1, MAX_EVENTS, b"9" * 4_000_000)),
        "deep": deflated(1, v1_body(post, 1, MAX_EVENTS, b"[" * 4_000_000)),
        "deep-at-cap": deflated(1, v1_body(post, 1, MAX_EVENTS, b"[" * 250_000)),
        "astral-string": deflated(
            1, v1_body(post, 1, MAX_EVENTS, b'"' + b"a" * 4_100_000 + "😀".encode() + b'"')
        ),
        "nan-in-data": deflated(1, v1_body(post, 1, 1, event + b'"kind":"in","data":{"x":NaN}}')),
        "zeros-v2": deflated(2, bytes(64 << 20)),
        "zeros-v3": deflated(3, bytes(64 << 20)),
        "v2-header-values": deflated(2, v2_body(post, MAX_EVENTS, repeat(b"{}", 149_000))),
        "v2-columns-cut": deflated(2, v2_body(post, MAX_EVENTS, columns=b"\x08" + bytes(100))),
        "v2-header-length": deflated(2, b"\xff\xff\xff\x7f" + bytes(1 << 20)),
        "v3-lists": deflated(3, v3_around(1, v1_body(post, 1, MAX_EVENTS, repeat(b"[]", 149_000)))),
        "random": b"Po\x01" + random.Random(7).randbytes((1 << 20) - 3),
    }
    for name, payload in found.items():
        assert len(payload) <= codec.MAX_PAYLOAD, (name, len(payload))
    return found


# -- mutations -----------------------------------------------------------------------------

# Each operator with its weight: the bombs cost tens of ms each, the rest well under one.
OPERATORS = {
    "flip": 10,
    "set-bytes": 10,
    "truncate": 8,
    "splice": 8,
    "insert": 6,
    "delete": 6,
    "version": 4,
    "body-flip": 10,
    "body-truncate": 6,
    "length": 6,
    "varint": 8,
    "json-value": 16,
    "json-splice": 6,
    "bomb": 1,
}


def mutate(
    rng: random.Random, payload: bytes, donor: bytes, bombs: list[bytes]
) -> tuple[str, bytes]:
    """One random mutation of a valid payload: (operator, mutated payload)."""
    operator = rng.choices(list(OPERATORS), weights=list(OPERATORS.values()))[0]
    data = bytearray(payload)
    if operator == "flip":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif operator == "set-bytes":
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif operator == "truncate":
        del data[rng.randrange(len(data)) :]
    elif operator == "splice":
        data = data[: rng.randrange(len(data))] + donor[rng.randrange(len(donor)) :]
    elif operator == "insert":
        at = rng.randrange(len(data) + 1)
        data[at:at] = rng.randbytes(rng.randint(1, 16))
    elif operator == "delete":
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 16)]
    elif operator == "version":
        data[2] = rng.randrange(256)
    elif operator == "bomb":
        return operator, rng.choice(bombs)
    else:
        return operator, _mutate_body(rng, operator, payload, donor)
    return operator, bytes(data)


def _mutate_body(rng: random.Random, operator: str, payload: bytes, donor: bytes) -> bytes:
    """Mutate the inflated body, then deflate it again (so the Adler-32 holds)."""
    version, body = payload[2], bytearray(zlib.decompress(payload[3:]))
    if operator == "body-flip":
        for _ in range(rng.randint(1, 3)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    elif operator == "body-truncate":
        del body[rng.randrange(len(body)) :]
    elif operator == "length" and version >= 2:
        body[:4] = _LEN.pack(
            rng.choice([0, 1, len(body), 2**31, 2**32 - 1, _LEN.unpack_from(body)[0] + 1])
        )
    elif operator == "varint" and version >= 2:
        # A column width byte or value: somewhere after the (first) JSON header.
        (size,) = _LEN.unpack_from(body)
        at = rng.randrange(min(4 + size, len(body) - 1), len(body))
        body[at] = rng.choice([0, 1, 2, 3, 4, 5, 8, 9, 16, 127, 128, 255, rng.randrange(256)])
    elif operator == "json-splice":
        other = zlib.decompress(donor[3:])
        body = body[: rng.randrange(len(body))] + other[rng.randrange(len(other)) :]
    else:  # json-value, and length/varint of a version 1 body
        tokens = list(_TOKEN.finditer(body))
        if tokens:
            token = rng.choice(tokens)
            body[token.start() : token.end()] = rng.choice(HOSTILE_VALUES)
    return codec.MAGIC + bytes([version]) + zlib.compress(bytes(body))

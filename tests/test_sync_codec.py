"""The batch encodings: exact round trips, every older version still read, few bytes."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import events as ev
from edge.config import defaults
from edge.events import Kind, Screening, Who
from sync import codec
from sync.batch import Batch
from tests.support.sync_helpers import realistic

POST = "posko-01"
GOLDEN_EVENTS: list[dict[str, Any]] = [
    {
        "post": POST,
        "seq": 7,
        "time": "2026-11-27T01:00:00.125Z",
        "clock": "synced",
        "kind": "in",
        "who": "resident",
        "temp_c": 36.6,
        "temp_raw_c": 36.15,
        "screening": "normal",
    },
    {
        "post": POST,
        "seq": 8,
        "time": "2026-11-27T01:00:41.002Z",
        "clock": "synced",
        "kind": "in",
        "who": "visitor",
        "temp_c": 37.5,
        "temp_raw_c": 37.05,
        "screening": "recheck",
        "photo": True,
    },
    {
        "post": POST,
        "seq": 10,
        "time": "2026-11-27T01:06:00.999Z",
        "clock": "unsynced",
        "kind": "recheck",
        "who": "visitor",
        "temp_c": 37.4,
        "temp_raw_c": 36.95,
        "screening": "refused",
        "ref": 8,
    },
    {
        "post": POST,
        "seq": 11,
        "time": "2026-11-27T01:07:13.000Z",
        "clock": "synced",
        "kind": "visitor",
        "ref": 8,
        "data": {"name": "Siti", "origin": "Kab. Bogor"},
    },
    {
        "post": POST,
        "seq": 12,
        "time": "2026-11-27T01:08:00.500Z",
        "clock": "synced",
        "kind": "in",
        "who": "resident",
        "screening": "fault",
        "fault": "i2c_error",
    },
]
# Payloads written by the first release of each version: they must decode forever.
GOLDEN_V1 = (
    "506f0178da8d925d6fc2201486ffca72ae6b03685bdb4b6f77b95d6d590ca3472556e8806a96c6ffbe839a"
    "68d4364b4838bc9c8f272ff4d05a1fa08adbd64e18870456da45a948a09131e0d304708f2678a83efb2705"
    "1e7f4ee941ef906e0413f984f38928de19af18a39572917d50a66aacda528aff350a6b12b6dad474d686e2"
    "c3c652e8d0eb9a86911070d72e1554d33ccd2f27270f17856734583944a3cd9aea8c753bd9c03119249c0f"
    "13ce78ca98f827e15e7b1dacbb052cd2ec0eb048d91da043b541ea9d40bbb1811a05d7e1082e6743bc7974"
    "b42ccb5bdecedc135fe78d60cf1e7c2d1fb0579d3ff5a5884c1c23e643c4057d2272988d397ce53b0f4aa0"
    "964142d58391a79e6f3a68bab54eafe9352a7895dfe9cbc2aea9e638462586a8e6d1c76c9ceaf9cfbc3568"
    "25bb266ae79d2a845aa27391eaebf807da290062"
)
GOLDEN_V2 = (
    "506f0278da5d51b14ec33010754a17fe8011dd6c90e3d04678416265640a5584dcc469ada676653b48a8ea"
    "c2c26ff011fc017fc5c439ad0241b27c774fefbd3b9fdf1342f6b0b33e80886163af580a141aed22945368"
    "654cd28c820131a3101856f9ed2cbf49396329476829bd0291cde78c42ad2a109c825fcb9df220160bd006"
    "0d9df2ba5626606aacdbca16a8e9da1689afa652f5a9ca4a7ae2bf68af8375bdb25aab6af39f1f5ca78efc"
    "813012359d1f6ca133a33679940de41efabdc613a57c18e9cf131ad9b5316a5e3d2be7fa9623192b4bdc85"
    "0c1237b00723b7b82078d44123d13abd4243010f72797d796f57283f9407fc093c53f2f4fd7641eebeb827"
    "c9f9041112f16472364dc8e747521405e63f301b830c"
)


@pytest.mark.parametrize("version,golden", [(1, GOLDEN_V1), (2, GOLDEN_V2)])
def test_sync_codec_reads_every_released_version(version: int, golden: str) -> None:
    payload = bytes.fromhex(golden)
    assert codec.version_of(payload) == version
    assert codec.decode(payload) == Batch(POST, 7, 13, GOLDEN_EVENTS)


def test_sync_codec_newest_version_is_the_default() -> None:
    payload = codec.encode(Batch(POST, 7, 13, GOLDEN_EVENTS))
    assert codec.version_of(payload) == max(codec.DECODERS) == codec.CURRENT


@pytest.mark.parametrize("version", sorted(codec.ENCODERS))
def test_sync_codec_round_trips_the_bench_mix_exactly(version: int) -> None:
    events = realistic(3000)
    for i in range(0, len(events), 1000):
        batch = Batch.of("bench", events[i : i + 1000])
        decoded = codec.decode(codec.encode(batch, version))
        assert decoded == batch
        assert [list(e) for e in decoded.events] == [list(e) for e in batch.events]  # order


def test_sync_codec_is_a_few_bytes_per_event_at_the_default_batch() -> None:
    events, size = realistic(6000), defaults()["sync.batch_events"]
    columnar = sum(
        len(codec.encode(Batch.of("bench", events[i : i + size])))
        for i in range(0, len(events), size)
    )
    rows = sum(
        len(codec.encode(Batch.of("bench", events[i : i + size]), 1))
        for i in range(0, len(events), size)
    )
    assert columnar / len(events) < 6.0
    assert columnar * 2 < rows  # columnar beats JSON rows through the same deflate


def test_sync_codec_declares_the_seqs_it_does_not_carry_as_lost() -> None:
    batch = codec.decode(bytes.fromhex(GOLDEN_V2))
    assert batch.lost() == [(9, 9), (13, 13)]
    empty = Batch(POST, 20, 25, [])
    assert codec.decode(codec.encode(empty)).lost() == [(20, 25)]


@pytest.mark.parametrize(
    "odd",
    [
        {"temp_c": 36.123456},  # more decimals than version 2 keeps
        {"extra": "a field from the future"},
        {"time": "2026-11-27T01:00:00Z"},  # not the canonical millisecond form
    ],
)
def test_sync_codec_falls_back_to_version_1_for_what_version_2_cannot_carry(
    odd: dict[str, Any],
) -> None:
    events = [dict(e) for e in GOLDEN_EVENTS]
    events[0].update(odd)
    payload = codec.encode(Batch(POST, 7, 13, events))
    assert codec.version_of(payload) == 3  # the lost seqs' envelope around version 1 rows
    body = codec.inflate(payload[3:])
    (size,) = struct.unpack_from("<I", body)
    assert json.loads(body[4 : 4 + size])["body"] == 1
    assert json.loads(body[4 + size :])["events"] == events
    assert codec.version_of(codec.encode(Batch(POST, 7, 13, events), 2)) == 1


# -- any valid event ---------------------------------------------------------------------

moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
temps = st.one_of(
    st.none(),
    st.integers(300, 450).map(lambda t: t / 10),
    st.integers(3000, 4500).map(lambda t: t / 100),
    st.floats(20, 50, allow_nan=False).map(lambda t: round(t, 3)),
)
raws = st.one_of(st.none(), st.floats(-273.15, 1000, allow_nan=False).map(lambda t: round(t, 2)))
data = st.dictionaries(
    st.text(max_size=8), st.one_of(st.text(max_size=20), st.integers()), max_size=3
)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    count = draw(st.integers(0, 40))
    first = draw(st.integers(1, 2**40))
    seq, events = first - 1, []
    for _ in range(count):
        seq += draw(st.integers(1, 3))
        fields: dict[str, Any] = {
            "who": draw(st.sampled_from([None, *Who])),
            "temp_c": draw(temps),
            "temp_raw_c": draw(raws),
            "screening": draw(st.sampled_from([None, *Screening])),
            "fault": draw(st.sampled_from([None, "i2c_error", "pec_mismatch"])),
            "ref": draw(st.one_of(st.none(), st.integers(1, seq - 1))) if seq > 1 else None,
            "photo": draw(st.booleans()),
            "data": draw(st.one_of(st.none(), data)),
        }
        event = ev.make(
            POST,
            seq,
            draw(moments),
            draw(st.sampled_from(list(Kind))),
            clock=draw(st.sampled_from(["synced", "unsynced", "unknown"])),
            **fields,
        )
        events.append(json.loads(json.dumps(event)))
    last = seq + draw(st.integers(0, 5)) if events else first + draw(st.integers(0, 5))
    return Batch(POST, first, last, events)


@settings(max_examples=150, deadline=None)
@given(batches())
@pytest.mark.slow
def test_sync_codec_round_trips_any_valid_batch(batch: Batch) -> None:
    for version in codec.ENCODERS:
        assert codec.decode(codec.encode(batch, version)) == batch

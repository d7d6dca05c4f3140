"""Mutation fuzzing of batches against the receiver, in this process, on a real SQLite file:
bit flips, truncations, splices, header length and column tampering, version bytes, hostile
JSON values, zlib bombs (`bench/payloads.py`). Every case is accepted or quarantined with a
reason; no row that did not come from a valid batch is ever stored. Counts are printed.
"""

from __future__ import annotations

import logging
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench.payloads import bombs, honest_payloads, mutate
from district.receiver import Arrival, Receiver, Refusal, Work
from district.sqlite import SQLiteStorage
from sync.schema import check_event

TOPIC = "posko/v1/bench/events"
STORE_EVERY = 500  # cases stored together: refusals share one transaction


def reason_kind(reason: str) -> str:
    """A reason without the values it quotes, so that alike reasons count together."""
    text = re.sub(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", "'…'", reason)
    return re.sub(r"\d+", "N", text)[:70]


def fuzz(db: SQLiteStorage, cases: int, seed: int) -> tuple[Counter[str], dict[Any, Any]]:
    """Mutate valid payloads `cases` times; the outcomes, and the events the district must
    hold afterwards (for each (post, seq), the first accepted batch's)."""
    rng = random.Random(seed)
    receiver = Receiver(db)
    honest = [p for s in (seed, seed + 1) for _, p in honest_payloads("bench", s)]
    hostile = list(bombs().values())
    outcomes: Counter[str] = Counter()
    expected: dict[Any, Any] = {}
    pending: list[Work] = []
    for _ in range(cases):
        operator, payload = mutate(rng, rng.choice(honest), rng.choice(honest), hostile)
        work = receiver.examine(TOPIC, payload)
        outcomes[f"operator {operator}"] += 1
        if isinstance(work, Arrival):
            outcomes["accepted"] += 1
            for event in work.batch.events:
                expected.setdefault((event["post"], event["seq"]), event)
        elif isinstance(work, Refusal):
            outcomes["quarantined"] += 1
            outcomes[f"reason {reason_kind(work.rejected.reason)}"] += 1
        if work is not None:
            pending.append(work)
        if len(pending) >= STORE_EVERY:
            receiver.store(pending)
            pending = []
    receiver.store(pending)
    assert receiver.stats.quarantined == outcomes["quarantined"]
    assert receiver.stats.batches == outcomes["accepted"]
    return outcomes, expected


def report(cases: int, outcomes: Counter[str]) -> None:
    print(
        f"\n{cases:,} mutated batches: {outcomes['accepted']:,} accepted (still valid), "
        f"{outcomes['quarantined']:,} quarantined"
    )
    for key, count in sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0])):
        if key.startswith(("reason ", "operator ")):
            print(f"  {count:7,}  {key}")


def check_fuzzed(
    db: SQLiteStorage, cases: int, outcomes: Counter[str], expected: dict[Any, Any], log: str
) -> None:
    assert outcomes["accepted"] + outcomes["quarantined"] == cases
    assert outcomes["accepted"] > 0 and outcomes["quarantined"] > 0  # both sides reached
    assert not any(k.startswith("reason unexpected") for k in outcomes)
    assert "Traceback" not in log and "unexpected error" not in log
    stored = {(e["post"], e["seq"]): e for e in db.events()}
    assert stored == expected  # every row is an event of a batch that passed every check
    for event in stored.values():
        check_event(event, "bench")
    assert db.quarantine_counts() == {"bench": outcomes["quarantined"]}
    assert len(db.quarantined()) <= 100  # the quarantine kept a bounded sample


@pytest.mark.slow
def test_district_survives_a_few_mutated_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cases = 400
    with caplog.at_level(logging.WARNING), SQLiteStorage(tmp_path / "district.db") as db:
        outcomes, expected = fuzz(db, cases, seed=20261201)
        report(cases, outcomes)
        check_fuzzed(db, cases, outcomes, expected, caplog.text)


@pytest.mark.slow
def test_district_survives_20000_mutated_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cases = 20_000
    with caplog.at_level(logging.WARNING), SQLiteStorage(tmp_path / "district.db") as db:
        outcomes, expected = fuzz(db, cases, seed=9)
        report(cases, outcomes)
        check_fuzzed(db, cases, outcomes, expected, caplog.text)

"""Crash safety for real: a writer process is SIGKILLed at random moments, again and again
on the same data directory, and after each kill the store must hold everything it
acknowledged, with seqs 1..last and an index that agrees with the files.

The seed is fixed so that a failing round can be replayed; the kill moment still depends
on timing, which is the point.
"""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from edge.journal import scan
from edge.store import EventStore
from tests.support.store_proc import SUPPORT, Child

pytestmark = pytest.mark.slow

SEED = 20260101
ROUNDS = 40
WRITER = SUPPORT / "store_writer.py"
LINE_TIMEOUT = 60.0  # seconds for the writer to reach the kill point; never reached normally


@dataclass
class Round:
    """What the test saw when it reopened the store after one kill."""

    number: int
    kill_point: str
    opened: str | None = None  # the error if the store would not open, else None
    acknowledged: int = 0  # events acknowledged so far, over all rounds
    missing: list[int] = field(default_factory=list)  # acknowledged, absent or different
    seqs: list[int] = field(default_factory=list)
    last_seq: int = 0
    count: int = 0
    index_problems: list[str] = field(default_factory=list)
    damage_kinds: list[str] = field(default_factory=list)
    segments: int = 0

    def __str__(self) -> str:
        return f"round {self.number} (seed {SEED}, kill {self.kill_point})"


def index_problems(store: EventStore) -> list[str]:
    """Where events/index.json disagrees with the segment files or the store's counts."""
    events_dir = store.events_dir
    index = json.loads((events_dir / "index.json").read_bytes())
    files = sorted(events_dir.glob("*.jsonl"))
    problems = []
    listed = [s["file"] for s in index["segments"]]
    if listed != [p.name for p in files[:-1]]:
        problems.append(f"index lists {listed}, closed files are {[p.name for p in files[:-1]]}")
    for entry in index["segments"]:
        path = events_dir / entry["file"]
        if not path.exists():
            continue
        docs = scan(path.read_bytes()).docs
        actual = (len(docs), path.stat().st_size, docs[0]["seq"] if docs else None)
        if (entry["count"], entry["size"], entry["first"] if docs else None) != actual:
            problems.append(f"{entry['file']}: index says {entry}, file has {actual}")
    active = len(scan(files[-1].read_bytes()).docs) if files else 0
    if sum(s["count"] for s in index["segments"]) + active != store.count:
        problems.append(f"index counts + active {active} != store count {store.count}")
    return problems


def check(data_dir: Path, acknowledged: dict[int, dict[str, Any]], found: Round) -> None:
    try:
        store = EventStore(data_dir, "crash", "Asia/Jakarta", segment_max=50)
    except Exception as e:  # the finding is that it would not open
        found.opened = f"{type(e).__name__}: {e}"
        return
    with store:
        stored = {e["seq"]: e for e in store.since(0)}
        found.acknowledged = len(acknowledged)
        found.missing = [seq for seq, e in acknowledged.items() if stored.get(seq) != e]
        found.seqs = [e["seq"] for e in store.since(0)]
        found.last_seq, found.count = store.last_seq, store.count
        found.index_problems = index_problems(store)
        found.damage_kinds = [d.kind for d in store.damage]
        found.segments = len(store.closed) + 1


def kill_round(data_dir: Path, rng: random.Random) -> tuple[str, list[dict[str, Any]]]:
    """Start a writer, kill it at a random point; the events it acknowledged."""
    point = rng.choice(["start", "opening", "running", "running", "running"])
    target = {"start": 0, "opening": 1}.get(point, 1 + rng.randint(1, 150))
    delay = rng.uniform(0, 0.05) if point != "opening" else rng.uniform(0, 0.01)
    writer = Child(WRITER, str(data_dir), str(rng.randrange(2**32)))
    try:
        reached = writer.wait_lines(target, timeout=LINE_TIMEOUT)
        assert reached, f"the writer stopped by itself: {writer.stderr}"
        threading.Event().wait(delay)  # a deliberate random offset of the kill, not a wait
    finally:
        writer.kill()
    events = [json.loads(line) for line in writer.lines[1:]]  # line 0 is "opening"
    return f"{point} after {len(events)} events + {delay * 1000:.0f} ms", events


@pytest.fixture(scope="module")
def rounds(tmp_path_factory: pytest.TempPathFactory) -> list[Round]:
    rng = random.Random(SEED)
    data_dir = tmp_path_factory.mktemp("crash") / "data"
    acknowledged: dict[int, dict[str, Any]] = {}
    found: list[Round] = []
    for number in range(ROUNDS):
        kill_point, events = kill_round(data_dir, rng)
        acknowledged.update((e["seq"], e) for e in events)
        found.append(Round(number, kill_point))
        check(data_dir, acknowledged, found[-1])
        if found[-1].opened is not None:
            break
    assert max(r.segments for r in found) > 5, "the kills never met a store of many segments"
    return found


def test_store_crash_reopens_after_every_kill(rounds: list[Round]) -> None:
    assert [(str(r), r.opened) for r in rounds if r.opened] == []
    assert len(rounds) == ROUNDS


def test_store_crash_keeps_every_acknowledged_event(rounds: list[Round]) -> None:
    assert [(str(r), r.missing) for r in rounds if r.missing] == []
    assert rounds[-1].acknowledged > ROUNDS


def test_store_crash_leaves_seqs_contiguous_from_one(rounds: list[Round]) -> None:
    bad = [
        (str(r), r.seqs, r.last_seq, r.count)
        for r in rounds
        if r.opened is None and (r.seqs != list(range(1, r.last_seq + 1)) or r.count != r.last_seq)
    ]
    assert bad == []


def test_store_crash_keeps_the_index_consistent(rounds: list[Round]) -> None:
    assert [(str(r), r.index_problems) for r in rounds if r.index_problems] == []


def test_store_crash_finds_at_most_torn_tails(rounds: list[Round]) -> None:
    # A kill can only cut the last write: nothing in the middle can be damaged.
    assert [(str(r), r.damage_kinds) for r in rounds if set(r.damage_kinds) - {"torn_tail"}] == []

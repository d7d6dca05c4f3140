"""Group commit: the batches that arrive together, of several posts, share one transaction;
each ack goes out only once it is committed, none if the commit fails, and the wait for
more batches is bounded by `group_commit_ms`."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from district.backends import open_storage
from district.intake import Intake, IntakeLimits
from district.receiver import Receiver, Reply
from district.sqlite import SQLiteStorage
from district.storage import Storage, Stored
from sync import codec
from sync.batch import Batch
from sync.messages import Ack
from tests.support.sync_helpers import realistic

POSTS = ("posko-a", "posko-b", "posko-c")
DAILY = "SELECT * FROM daily ORDER BY post, day"


class Counted:
    """A storage that counts the groups handed to it (wrapping the real one)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.groups: list[list[str]] = []

    def store_batches(self, batches: Sequence[tuple[Batch, bool]]) -> list[Stored]:
        self.groups.append([batch.post for batch, _ in batches])
        return self.storage.store_batches(batches)

    def store_batch(self, batch: Batch, *, alert: bool = False) -> Stored:
        self.groups.append([batch.post])  # a transaction of its own
        return self.storage.store_batch(batch, alert=alert)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


class Acks:
    """The intake's publish: each ack with the events then committed (read through a
    connection of its own) and when it went out."""

    def __init__(self, db: str, expected: int) -> None:
        self.db, self.expected = db, expected
        self.seen: list[tuple[str, Ack, int, float]] = []
        self.done = threading.Event()

    def __call__(self, reply: Reply) -> None:
        post = reply.topic.split("/")[2]
        with open_storage(self.db, read_only=True) as reader:
            committed = reader.count(post)
        self.seen.append((post, Ack.decode(reply.payload), committed, time.monotonic()))
        if len(self.seen) >= self.expected:
            self.done.set()


def events_of(post: str, n: int, seed: int) -> list[dict[str, Any]]:
    return [{**e, "post": post} for e in realistic(n, seed)]


def payload(post: str, events: list[dict[str, Any]]) -> bytes:
    return codec.encode(Batch.of(post, events))


def topic(post: str) -> str:
    return f"posko/v1/{post}/events"


def test_district_group_commit_stores_several_posts_in_one_transaction_then_acks(
    db: Storage, district_db: str
) -> None:
    storage = Counted(db)
    acks = Acks(district_db, len(POSTS))
    intake = Intake(Receiver(storage), acks, IntakeLimits(group_commit_ms=1000))  # type: ignore[arg-type]
    for i, post in enumerate(POSTS):
        intake.put(topic(post), payload(post, events_of(post, 300, i)))
    with intake:
        assert acks.done.wait(30)
    assert storage.groups == [list(POSTS)]
    for post, ack, committed, _ in acks.seen:  # committed before its ack went out
        assert ack.ack == 300 and committed == 300, post


def test_district_group_commit_max_of_one_commits_each_batch_on_its_own(
    db: Storage, district_db: str
) -> None:
    storage = Counted(db)
    acks = Acks(district_db, len(POSTS))
    limits = IntakeLimits(group_commit_ms=1000, group_commit_max=1)  # the bench's baseline
    intake = Intake(Receiver(storage), acks, limits)  # type: ignore[arg-type]
    for i, post in enumerate(POSTS):
        intake.put(topic(post), payload(post, events_of(post, 300, i)))
    with intake:
        assert acks.done.wait(30)
    assert sorted(storage.groups) == [[post] for post in POSTS]  # a transaction each
    for post, ack, committed, _ in acks.seen:
        assert ack.ack == 300 and committed == 300, post


def test_district_group_commit_that_fails_acks_none_and_the_resent_batches_land_once(
    sqlite_db: SQLiteStorage,
) -> None:
    db = sqlite_db  # the failure is an SQLite trigger
    payloads = [(post, payload(post, events_of(post, 200, i))) for i, post in enumerate(POSTS)]
    # The disk fails while the last post's batch is written, after the others' rows.
    db.conn.execute(
        "CREATE TEMP TRIGGER disk_fails BEFORE INSERT ON posts WHEN NEW.post = 'posko-c' "
        "BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )
    receiver = Receiver(db)
    works = [receiver.examine(topic(post), body) for post, body in payloads]
    assert receiver.store([w for w in works if w is not None]) == [None, None, None]
    assert db.count() == 0 and receiver.stats.db_errors == 1  # the whole group rolled back
    db.conn.execute("DROP TRIGGER disk_fails")
    acks = Acks(str(db.path), len(POSTS))
    with Intake(receiver, acks, IntakeLimits(group_commit_ms=200)) as intake:
        for post, body in payloads:  # each post sends its batch again
            intake.put(topic(post), body)
        assert acks.done.wait(30)
    assert sorted((post, ack.ack) for post, ack, _, _ in acks.seen) == [
        (post, 200) for post in POSTS
    ]
    assert db.count() == 600 and all(db.contiguous(post) == 200 for post in POSTS)


def test_district_group_commit_stores_out_of_order_and_repeated_batches_once(
    tmp_path: Path, db: Storage
) -> None:
    rng = random.Random(13)
    history = {post: events_of(post, 1500, i) for i, post in enumerate(POSTS)}
    sent = [
        (post, payload(post, events[i : i + rng.randint(250, 400)]))
        for post, events in history.items()
        for i in range(0, len(events), 250)  # overlapping ranges: some events twice
    ]
    sent += rng.sample(sent, 6)  # and some batches twice
    rng.shuffle(sent)
    receiver = Receiver(db)
    for start in range(0, len(sent), 7):  # groups that mix posts, out of order
        works = [receiver.examine(topic(post), body) for post, body in sent[start : start + 7]]
        assert all(reply is not None for reply in receiver.store([w for w in works if w]))
    with SQLiteStorage(tmp_path / "one-by-one.db") as reference:  # in order, one at a time
        for post, events in history.items():
            reference.store_batch(Batch.of(post, events))
        for post in POSTS:
            assert list(db.events(post=post)) == list(reference.events(post=post))
            assert db.contiguous(post) == 1500 and db.gaps(post) == []
        assert db.conn.execute(DAILY).fetchall() == reference.conn.execute(DAILY).fetchall()
    assert receiver.stats.events == 4500


def test_district_group_commit_acks_a_lone_batch_without_waiting(
    db: Storage, district_db: str
) -> None:
    acks = Acks(district_db, 1)
    intake = Intake(Receiver(db), acks, IntakeLimits(group_commit_ms=5000))
    with intake:
        sent = time.monotonic()
        intake.put(topic("posko-a"), payload("posko-a", events_of("posko-a", 50, 1)))
        assert acks.done.wait(30)
    assert acks.seen[0][3] - sent < 1.0  # nothing else was coming: no 5 s wait


@pytest.mark.slow
def test_district_group_commit_waits_no_longer_than_the_setting(
    db: Storage, district_db: str
) -> None:
    wait_ms, margin_s = 100, 1.0  # the margin: one group's commit on a busy test machine
    backlog = events_of("posko-b", 40 * 1000, 2)
    acks = Acks(district_db, 41)
    intake = Intake(Receiver(db), acks, IntakeLimits(group_commit_ms=wait_ms))
    intake.put(topic("posko-a"), payload("posko-a", events_of("posko-a", 10, 1)))
    for i in range(0, len(backlog), 1000):  # keeps the decode stage busy for a while
        intake.put(topic("posko-b"), payload("posko-b", backlog[i : i + 1000]))
    with intake:
        started = time.monotonic()
        assert acks.done.wait(60)
    first = next(at for post, _, _, at in acks.seen if post == "posko-a")
    assert first - started < wait_ms / 1000 + margin_s
    assert acks.seen[-1][3] - first > 0  # the decode stage was still at work: a group was cut
    assert db.count() == 40_010


def test_district_group_commit_stores_decoded_rows_exactly_as_the_events_say(
    tmp_path: Path,
) -> None:
    events = events_of("posko-a", 1500, 7)  # visitors, notes, temperatures, refs, photos
    decoded = [codec.decode(payload("posko-a", events[i : i + 500])) for i in (0, 500, 1000)]
    assert all(batch.rows for batch in decoded)  # the receiver inserts these rows
    plain = [Batch.of("posko-a", list(batch.events)) for batch in decoded]  # no rows
    with (
        SQLiteStorage(tmp_path / "rows.db") as rows,
        SQLiteStorage(tmp_path / "dicts.db") as dicts,
    ):
        rows.store_batches([(decoded[0], False), (decoded[1], False), (decoded[0], False)])
        rows.store_batches([(decoded[2], False)])
        dicts.store_batches([(batch, False) for batch in plain])
        assert list(rows.events(post="posko-a")) == events
        assert list(rows.events(post="posko-a")) == list(dicts.events(post="posko-a"))
        assert rows.conn.execute(DAILY).fetchall() == dicts.conn.execute(DAILY).fetchall()
        assert rows.posts()[0]["duplicates"] == 500  # the batch sent twice counted once

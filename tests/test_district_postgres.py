"""The district on PostgreSQL under trouble: receivers of one `$share` group SIGKILLed while
batches are in flight, the database stopped and restarted mid-sync, one post's batches
arriving at different receivers out of order. Each ends with every post's events held
exactly once, with no gap, and every Pi drained.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import paho.mqtt.publish as publish
import pytest

from bench.postgres import Postgres
from district.backends import open_storage
from district.storage import Storage, StorageError
from edge.store import EventStore
from sync import codec
from sync.batch import Batch
from sync.options import split_address
from sync.worker import SyncWorker
from tests.support.postgres import fresh_database, need_postgres
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import FAST_BACKOFF, ReceiverProcess, backlog, options, realistic

pytestmark = [pytest.mark.slow, pytest.mark.broker, pytest.mark.postgres]

DRAIN_S = 60.0


def held(db: str, post: str) -> int:
    """Events of `post` the district holds (0 while it cannot be read)."""
    try:
        with open_storage(db) as storage:
            return storage.count(post)
    except StorageError:
        return 0


def assert_exactly_once(db: str, stores: list[EventStore]) -> None:
    """Each post's seqs 1..last are held once each: the (post, seq) key forbids twice, so
    as many as its last seq, and contiguous up to it, is every one exactly once."""
    with open_storage(db) as storage:
        for store in stores:
            assert storage.count(store.post) == store.last_seq, store.post
            assert storage.contiguous(store.post) == store.last_seq, store.post
            assert storage.gaps(store.post) == [], store.post
        assert storage.count() == sum(store.last_seq for store in stores)


class District:
    """Posts with a backlog each, their sync workers, and the receivers of one share group."""

    def __init__(self, tmp_path: Path, db: str, broker: Mosquitto, stack: ExitStack) -> None:
        self.tmp_path, self.db, self.broker, self.stack = tmp_path, db, broker, stack
        self.stores: list[EventStore] = []
        self.syncs: list[SyncWorker] = []

    def receiver(self, name: str, *extra: str) -> ReceiverProcess:
        receiver = ReceiverProcess(
            self.db, self.broker.address, "--share", "district", "--name", name, *extra,
            keys=self.tmp_path,
        )  # fmt: skip
        self.stack.callback(receiver.stop)
        receiver.start().wait_subscribed()
        return receiver

    def posts(self, count: int, events: int, **changes: Any) -> None:
        for i in range(count):
            post = f"posko-{i + 1}"
            backlog(self.tmp_path / post, events, seed=i + 1, post=post)
            store = self.stack.enter_context(EventStore(self.tmp_path / post, post))
            self.stores.append(store)
        for store in self.stores:
            settings = options(self.broker.address, post=store.post, **changes)
            sync = SyncWorker(store, settings, backoff=FAST_BACKOFF)
            self.syncs.append(self.stack.enter_context(sync))

    def acked(self) -> int:
        return sum(store.acked for store in self.stores)

    def drained(self) -> None:
        for sync in self.syncs:
            assert sync.wait_drained(DRAIN_S), f"not drained: {sync.last_error}"
        for store in self.stores:  # every Pi's outbox acknowledged to its last seq
            assert store.acked == store.last_seq, store.post
        assert_exactly_once(self.db, self.stores)


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[Postgres]:
    """A cluster of this test's own: it stops and restarts the server."""
    need_postgres()
    with Postgres() as server:
        yield server


@pytest.fixture
def district(tmp_path: Path, postgres_url: str, broker: Mosquitto, stack: ExitStack) -> District:
    return District(tmp_path, postgres_url, broker, stack)


@pytest.mark.parametrize("receivers", [2, 3])
def test_district_postgres_receivers_sigkilled_mid_batch_lose_and_double_nothing(
    district: District, receivers: int
) -> None:
    running = [district.receiver(f"r{i + 1}") for i in range(receivers)]
    district.posts(3, 6000, batch_events=250, window=4, ack_timeout=2.0)
    for victim in range(2):  # two receivers die in turn while batches are in flight
        goal = district.acked() + 2000
        wait_for(lambda: district.acked() >= goal, 30, "batches to flow")  # noqa: B023
        running[victim].kill()
        assert district.acked() < sum(store.last_seq for store in district.stores)
        running[victim].start().wait_subscribed()
    district.drained()
    assert all(receiver.process and receiver.process.poll() is None for receiver in running)


@pytest.mark.parametrize("kill", [False, True], ids=["stopped", "crashed"])
def test_district_postgres_stopped_and_restarted_mid_sync_the_receiver_reconnects(
    tmp_path: Path, own_postgres: Postgres, broker: Mosquitto, stack: ExitStack, kill: bool
) -> None:
    db = stack.enter_context(fresh_database(own_postgres))
    district = District(tmp_path, db, broker, stack)
    receiver = district.receiver("r1")
    district.posts(2, 6000, batch_events=250, window=2, ack_timeout=1.0)
    wait_for(lambda: district.acked() >= 2000, 30, "the first batches acknowledged")
    own_postgres.stop(kill=kill)
    stalled = district.acked()
    assert stalled < sum(store.last_seq for store in district.stores)
    # Nothing is acknowledged while the database is down: the Pis keep their outboxes.
    wait_for(
        lambda: any("database error" in line for line in receiver.lines),
        20,
        "the receiver to report the storage failure",
    )
    assert district.acked() - stalled <= 2 * 250 * 2  # at most the acks already on their way
    own_postgres.start()
    try:
        district.drained()
    except AssertionError as e:
        raise AssertionError(f"{e}; the receiver said: {''.join(receiver.lines)[-3000:]}") from None
    assert receiver.process is not None and receiver.process.poll() is None  # never restarted


def shuffled_batches(post: str, events: int, seed: int) -> list[Batch]:
    """A post's history as overlapping batches, some twice, in a random order."""
    rng = random.Random(seed)
    history: list[Any] = [{**e, "post": post} for e in realistic(events, seed)]
    batches = [
        Batch.of(post, history[i : i + rng.randint(150, 300)]) for i in range(0, events, 150)
    ]
    batches += rng.sample(batches, 4)
    rng.shuffle(batches)
    return batches


def test_district_postgres_one_posts_batches_at_two_receivers_out_of_order(
    district: District,
) -> None:
    district.receiver("r1")
    district.receiver("r2")
    batches = shuffled_batches("posko-x", 3000, 7)
    host, port = split_address(district.broker.address)
    messages: list[Any] = [
        (f"posko/v1/{b.post}/events", codec.encode(b), 1, False) for b in batches
    ]
    publish.multiple(messages, hostname=host, port=port)
    wait_for(lambda: held(district.db, "posko-x") >= 3000, 30, "every event of the post")
    with open_storage(district.db) as storage:
        wait_for(lambda: storage.contiguous("posko-x") == 3000, 10, "the post contiguous")
        assert storage.count("posko-x") == 3000 and storage.gaps("posko-x") == []


def test_district_postgres_two_storages_storing_one_post_from_threads(
    postgres_url: str,
) -> None:
    batches = shuffled_batches("posko-x", 4000, 11)
    failures: list[BaseException] = []

    def deliver(storage: Storage, share: list[Batch]) -> None:
        try:
            for batch in share:
                storage.store_batch(batch)
        except BaseException as e:  # reported below, with the thread's name
            failures.append(e)

    with open_storage(postgres_url) as first, open_storage(postgres_url) as second:
        threads = [
            threading.Thread(target=deliver, args=(storage, batches[i::2]))
            for i, storage in enumerate((first, second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        assert first.count("posko-x") == 4000 and first.gaps("posko-x") == []
        assert first.contiguous("posko-x") == second.contiguous("posko-x") == 4000

"""A hostile post floods the district over a real Mosquitto while honest posts sync: their
batches are acknowledged promptly and exactly once, and the flood costs a bounded amount.
The flooding post is bench/hostile.py's: a child process sending decoding bombs, mutated
batches and random bytes as fast as the broker takes them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from bench.hostile import FLOODER, Flooder, HonestPost
from district.backends import open_storage
from district.server import District, district_link
from edge.store import EventStore
from sync.worker import SyncWorker
from tests.support.keys import SIGNER
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import FAST_BACKOFF, POST, assert_exactly_once, backlog, options

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.fixture
def district(broker: Mosquitto, tmp_path: Path, stack: ExitStack) -> District:
    link = district_link(("127.0.0.1", broker.port))
    receiver = District(open_storage(tmp_path / "district.db"), link, signer=SIGNER)
    stack.enter_context(receiver)
    assert receiver.subscribed.wait(10)
    return receiver


@pytest.fixture
def flooder(broker: Mosquitto) -> Iterator[Flooder]:
    """The flooding post, ready; `tell("on")` starts the flood. Stopped after the test."""
    flooder = Flooder(broker.port, window=20)
    yield flooder
    sent, _ = flooder.stop()
    assert sent >= 20, "the flood never got going"  # one window at least


def test_sync_a_flooding_post_does_not_hold_up_an_honest_posts_acks(
    broker: Mosquitto, district: District, flooder: Flooder
) -> None:
    honest = HonestPost("honest-01", broker.port, seed=1)
    try:
        honest.send()  # it was syncing before the flood: the district knows it
        wait_for(lambda: honest.pending() == 0, 10, "the honest post's first ack")
        flooder.tell("on")
        wait_for(lambda: district.receiver.stats.quarantined > 0, 20, "the flood to arrive")
        # What the broker had queued before the mute still comes first, once.
        wait_for(lambda: district.intake.stats.mutes == 1, 20, "the flooding post's mute")
        for _ in range(20):
            honest.send()
            wait_for(lambda: honest.pending() == 0, 10, "the honest post's ack")
    finally:
        honest.close()
    assert honest.refused == 0 and len(honest.latencies) == 21
    # An older receiver decoded the flood's bombs one after another on the network
    # thread: seconds each (15.6 s for five). Now the flooding post is muted at the broker;
    # the honest post waits at most for what the broker had queued before the mute.
    latencies = sorted(honest.latencies)
    assert latencies[len(latencies) // 2] < 200 and latencies[-1] < 2000, latencies[-5:]
    assert district.intake.stats.slowest_ms < 100
    assert district.storage.quarantine_counts()[FLOODER] == district.receiver.stats.quarantined


def test_sync_an_honest_pi_drains_exactly_once_while_another_post_floods(
    broker: Mosquitto,
    district: District,
    flooder: Flooder,
    tmp_path: Path,
    stack: ExitStack,
) -> None:
    backlog(tmp_path / "pi", 3000)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    flooder.tell("on")
    wait_for(lambda: district.receiver.stats.quarantined > 0, 20, "the flood to arrive")
    started = time.monotonic()
    sync: Any = stack.enter_context(
        SyncWorker(store, options(broker.address), backoff=FAST_BACKOFF)
    )
    assert sync.wait_drained(60), sync.last_error
    seconds = time.monotonic() - started
    assert_exactly_once(tmp_path / "district.db", store)
    assert seconds < 30, f"drained in {seconds:.1f} s"
    assert district.subscribed.is_set()  # the flood never cost the receiver its connection

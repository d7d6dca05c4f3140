"""A post that floods the district is muted at the broker: the receiver subscribes to every
other post by name, the broker drops the flood before it reaches the receiver, new posts are
still heard through their status, and the wildcards come back when the mute ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from bench.hostile import FLOODER, Flooder, HonestPost
from district.backends import open_storage
from district.intake import IntakeLimits
from district.muting import Muting
from district.server import District, district_link
from edge.store import EventStore
from sync.worker import SyncWorker
from tests.support.keys import SIGNER
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import FAST_BACKOFF, POST, assert_exactly_once, backlog, options

WILDCARDS = {"posko/v1/+/events", "posko/v1/+/alert", "posko/v1/+/status"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_muting_names_every_known_post_but_the_muted_one_and_keeps_statuses_open() -> None:
    clock = Clock()
    muting = Muting(mute_s=60, clock=clock)
    muting.hear(["rw-01", "rw-02", "flood"])
    assert set(muting.wanted().filters) == WILDCARDS
    assert muting.mute("flood") and not muting.mute("flood")  # once per mute
    wanted = muting.wanted().filters
    assert "posko/v1/rw-01/events" in wanted and "posko/v1/rw-02/alert" in wanted
    assert not any("flood" in name for name in wanted)
    assert "posko/v1/+/status" in wanted  # a new post is still heard through its status
    assert "posko/v1/+/events" not in wanted
    assert muting.hear(["rw-03"])  # new while named: the subscriptions must follow
    assert "posko/v1/rw-03/events" in muting.wanted().filters
    assert not muting.hear(["rw-03"])
    clock.now += 60
    assert muting.expire() == {"flood"}
    assert set(muting.wanted().filters) == WILDCARDS
    assert muting.next_expiry() is None


def test_muting_a_post_that_floods_its_status_names_the_statuses_too() -> None:
    clock = Clock()
    muting = Muting(share="receivers", mute_s=30, clock=clock)
    muting.hear(["rw-01", "flood"])
    muting.mute("flood")
    clock.now += 10
    assert muting.lock() and not muting.lock()
    wanted = muting.wanted().filters
    assert "posko/v1/rw-01/status" in wanted and "posko/v1/+/status" not in wanted
    assert "$share/receivers/posko/v1/rw-01/events" in wanted
    assert muting.next_expiry() == 20  # the post's mute ends first
    clock.now += 20
    assert muting.expire() == {"flood"}
    assert "posko/v1/+/status" not in muting.wanted().filters  # still locked for 10 s
    clock.now += 10
    assert muting.expire() == {"*"}
    assert set(muting.wanted().filters) == {
        "$share/receivers/posko/v1/+/events",
        "$share/receivers/posko/v1/+/alert",
        "posko/v1/+/status",
    }


@pytest.fixture
def flooder(broker: Mosquitto) -> Iterator[Flooder]:
    flooder = Flooder(broker.port, window=20)
    yield flooder
    flooder.stop()


def start_district(broker: Mosquitto, db: Path, stack: ExitStack, mute_s: float) -> District:
    link = district_link(("127.0.0.1", broker.port))
    limits = IntakeLimits(mute_s=mute_s)
    district = District(open_storage(db), link, signer=SIGNER, intake=limits)
    stack.enter_context(district)
    assert district.subscribed.wait(10)
    return district


@pytest.mark.broker
@pytest.mark.slow
def test_a_flooding_post_is_muted_at_the_broker_and_heard_again_when_the_mute_ends(
    broker: Mosquitto, flooder: Flooder, tmp_path: Path, stack: ExitStack
) -> None:
    district = start_district(broker, tmp_path / "district.db", stack, mute_s=3.0)
    honest = HonestPost("honest-01", broker.port, seed=1)
    stack.callback(honest.close)
    honest.send()
    wait_for(lambda: honest.pending() == 0, 10, "the honest post's first ack")
    flooder.tell("on")
    wait_for(lambda: district.intake.stats.mutes == 1, 20, "the flooding post to be muted")
    listening = {name for name, _ in district.subscriptions()}
    assert f"posko/v1/{FLOODER}/events" not in listening
    assert "posko/v1/honest-01/events" in listening and "posko/v1/+/events" not in listening
    received = district.intake.stats.received
    for _ in range(10):  # the honest post is served while the flood goes on
        honest.send()
        wait_for(lambda: honest.pending() == 0, 10, "the honest post's ack")
    flooder.tell("off")
    wait_for(
        lambda: {name for name, _ in district.subscriptions()} == WILDCARDS,
        20,
        "the wildcards to come back after the mute",
    )
    sent, _ = flooder.stop()
    # While muted, the broker dropped the flood: the receiver got the few in flight only.
    during_mute = district.intake.stats.received - received
    assert during_mute < sent / 4, (during_mute, sent)
    honest.send()  # and everything is heard as before
    wait_for(lambda: honest.pending() == 0, 10, "an ack after the mute")
    assert honest.refused == 0 and len(honest.latencies) == 12


@pytest.mark.broker
@pytest.mark.slow
def test_a_new_pi_that_appears_while_a_post_is_muted_is_heard_through_its_status(
    broker: Mosquitto, flooder: Flooder, tmp_path: Path, stack: ExitStack
) -> None:
    district = start_district(broker, tmp_path / "district.db", stack, mute_s=600.0)
    flooder.tell("on")
    wait_for(lambda: district.intake.stats.mutes == 1, 20, "the flooding post to be muted")
    backlog(tmp_path / "pi", 300)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    sync = stack.enter_context(SyncWorker(store, options(broker.address), backoff=FAST_BACKOFF))
    assert sync.wait_drained(60), sync.last_error
    assert_exactly_once(tmp_path / "district.db", store)
    assert f"posko/v1/{POST}/events" in {name for name, _ in district.subscriptions()}

"""Sync end to end against a real Mosquitto: outages, cut links, a killed receiver, alerts.

In every case the district must end with every event exactly once and no gap.
"""

from __future__ import annotations

import json
import logging
import resource
import threading
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from bench.proxy import Proxy
from district.backends import open_storage
from district.server import District, district_link
from district.sqlite import SQLiteStorage
from edge.events import Kind
from edge.store import EventStore
from sync import codec
from sync.messages import Ack
from sync.options import split_address
from sync.worker import SyncWorker
from tests.support.keys import SIGNER
from tests.support.sync_broker import Mosquitto, wait_for
from tests.support.sync_helpers import (
    FAST_BACKOFF,
    POST,
    ReceiverProcess,
    assert_exactly_once,
    backlog,
    district_count,
    options,
)

pytestmark = pytest.mark.broker

DRAIN_S = 60.0


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "district.db"


@pytest.fixture
def district(mosquitto: Mosquitto, db_path: Path, stack: ExitStack) -> Callable[..., District]:
    def start(**kwargs: Any) -> District:
        link = district_link(("127.0.0.1", mosquitto.port))
        kwargs.setdefault("signer", SIGNER)
        return stack.enter_context(District(open_storage(db_path), link, **kwargs))

    return start


@pytest.fixture
def pi(tmp_path: Path, stack: ExitStack) -> Callable[[int], EventStore]:
    def make(events: int) -> EventStore:
        backlog(tmp_path / "pi", events)
        return stack.enter_context(EventStore(tmp_path / "pi", POST))

    return make


@pytest.fixture
def worker(stack: ExitStack) -> Callable[..., SyncWorker]:
    def start(store: EventStore, address: str, **changes: Any) -> SyncWorker:
        sync = SyncWorker(store, options(address, **changes), backoff=FAST_BACKOFF)
        return stack.enter_context(sync)

    return start


def drained(sync: SyncWorker) -> None:
    assert sync.wait_drained(DRAIN_S), f"not drained: {sync.last_error}"


class Watcher:
    """A plain MQTT client that records every message under posko/v1/<post>/."""

    def __init__(self, address: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
        self.client.on_message = lambda c, u, m: self.messages.append(
            (m.topic, bytes(m.payload), bool(m.retain))
        )
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        host, port = split_address(address)
        self.client.connect(host, port)
        self.client.loop_start()
        self.client.subscribe(f"posko/v1/{POST}/#", qos=1)
        assert subscribed.wait(5)

    def on(self, leaf: str) -> list[bytes]:
        return [p for t, p, _ in list(self.messages) if t.endswith("/" + leaf)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# -- outages -----------------------------------------------------------------------------


@pytest.mark.slow
def test_sync_backlog_recorded_while_the_broker_is_down_arrives_once_it_is_up(
    mosquitto: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
) -> None:
    store = pi(3000)
    district()  # waits for the broker too
    sync = worker(store, mosquitto.address)
    wait_for(lambda: sync.last_error is not None, 10, "a failed connection attempt")
    for _ in range(5):  # the post keeps working while the link is down
        sync.notify(store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced"))
    assert store.acked == 0
    mosquitto.start()
    drained(sync)
    assert_exactly_once(db_path, store)


@pytest.mark.slow
def test_sync_broker_killed_and_restarted_in_the_middle_of_a_sync(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
) -> None:
    store = pi(20_000)
    district().subscribed.wait(10)
    sync = worker(store, broker.address, batch_events=50, window=1)
    wait_for(lambda: store.acked >= 1000, 30, "the first thousand acknowledged")
    broker.stop(kill=True)
    assert 0 < store.acked < store.last_seq
    broker.start()
    drained(sync)
    assert sync.connections >= 2
    assert_exactly_once(db_path, store)


@pytest.mark.slow
def test_sync_link_cut_again_and_again(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
    stack: ExitStack,
) -> None:
    store = pi(12_000)
    district().subscribed.wait(10)
    proxy = stack.enter_context(Proxy(broker.port))
    sync = worker(store, proxy.address, batch_events=100, window=2)
    cuts = 0
    while cuts < 6 and not sync.drained.is_set():
        goal = store.acked + 1000
        wait_for(
            lambda: store.acked >= goal or sync.drained.is_set(),  # noqa: B023
            30,
            "progress between cuts",
        )
        cuts += proxy.cut()
    drained(sync)
    assert cuts >= 4 and proxy.connections >= cuts + 1
    assert_exactly_once(db_path, store)


@pytest.mark.slow
def test_sync_receiver_killed_in_the_middle_of_a_batch_and_restarted(
    broker: Mosquitto,
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
) -> None:
    store = pi(30_000)
    receiver = ReceiverProcess(db_path, broker.address).start()
    try:
        receiver.wait_subscribed()
        sync = worker(store, broker.address, batch_events=1000, window=4, ack_timeout=2.0)
        wait_for(lambda: district_count(db_path) >= 3000, 30, "the receiver to store some")
        receiver.kill()
        held = district_count(db_path)
        assert held < store.last_seq
        assert held % 1000 == 0  # whole batches only, never half of one
        receiver.start().wait_subscribed()
        drained(sync)
    finally:
        receiver.stop()
    assert_exactly_once(db_path, store)


@pytest.mark.slow
def test_sync_a_gap_at_the_district_makes_the_pi_resend_from_the_ack(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
) -> None:
    store = pi(3000)
    receiver = district()
    receiver.subscribed.wait(10)
    examine = receiver.receiver.examine
    dropped: list[int] = []

    def lose_second_batch(topic: str, payload: bytes) -> Any:
        first = codec.decode(payload).first if topic.endswith("/events") else 0
        if first == 501 and not dropped:  # lost between the broker and the database
            dropped.append(first)
            return None
        return examine(topic, payload)

    receiver.receiver.examine = lose_second_batch  # type: ignore[method-assign]
    sync = worker(store, broker.address, batch_events=500, window=4, ack_timeout=60.0)
    assert sync.wait_drained(15), "the gap was not filled before the 60 s timeout"
    assert dropped == [501] and sync.outbox.stats.resent >= 1
    assert_exactly_once(db_path, store)


# -- alerts, status, protocol versions ------------------------------------------------------


def test_sync_emergency_is_published_at_once_ahead_of_the_backlog(
    broker: Mosquitto, pi: Callable[[int], EventStore], worker: Callable[..., SyncWorker]
) -> None:
    store = pi(5000)
    watcher = Watcher(broker.address)
    try:  # no district: the first batch is never acknowledged and the window stays full
        sync = worker(store, broker.address, batch_events=100, window=1, ack_timeout=60.0)
        wait_for(lambda: len(watcher.on("events")) == 1, 10, "the first batch")
        event = store.append(Kind.EMERGENCY, moment=datetime.now(UTC), clock="synced")
        sync.notify(event)
        wait_for(lambda: bool(watcher.on("alert")), 5, "the alert")
        (alert,) = watcher.on("alert")
        assert codec.decode(alert).events == [event]
        assert len(watcher.on("events")) == 1  # the backlog did not move meanwhile
    finally:
        watcher.close()


def test_sync_status_is_retained_and_the_last_will_says_offline(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
    stack: ExitStack,
) -> None:
    store = pi(2500)  # more than a batch: clearing it is worth a status at once
    district().subscribed.wait(10)
    proxy = stack.enter_context(Proxy(broker.port))
    sync = worker(store, proxy.address)
    drained(sync)

    def state() -> dict[str, Any]:
        with SQLiteStorage(db_path, read_only=True) as db:
            posts = db.posts()
            return posts[0] if posts else {}

    wait_for(lambda: state().get("status", {}).get("pending") == 0, 10, "status pending 0")
    status = state()["status"]
    assert (status["state"], status["acked"], status["last_seq"]) == ("online", 2500, 2500)
    assert status["version"] and status["acked_at"] == store.acked_at
    proxy.refusing = True
    proxy.cut()  # the link dies without a goodbye: the broker sends the will
    wait_for(lambda: state().get("state") == "offline", 10, "the last will")
    proxy.refusing = False
    wait_for(lambda: state().get("state") == "online", 10, "online again")
    watcher = Watcher(broker.address)  # a newcomer gets the retained status at once
    try:
        wait_for(lambda: bool(watcher.on("status")), 5, "the retained status")
        assert any(r for t, _, r in watcher.messages if t.endswith("/status"))
    finally:
        watcher.close()
    sync.close()
    wait_for(lambda: state().get("state") == "offline", 10, "offline on close")
    assert state()["status"]["pending"] == 0


def test_sync_speaks_mqtt_3_1_1(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
) -> None:
    store = pi(2000)
    district().subscribed.wait(10)
    link = options(broker.address).link
    sync = worker(store, broker.address, link=type(link)(**{**vars(link), "protocol": "3.1.1"}))
    drained(sync)
    assert_exactly_once(db_path, store)


@pytest.mark.slow
def test_sync_ignores_an_ack_beyond_its_last_event(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = pi(300)
    host, port = split_address(broker.address)
    stale = Ack(10**6, 10**6 - 9, 10**6)  # e.g. left by a Pi that had this post id
    payload = stale.signed_by(SIGNER, POST, "2026-11-27T03:04:05.123Z").encode()
    publish.single(f"posko/v1/{POST}/ack", payload, qos=1, retain=True, hostname=host, port=port)
    with caplog.at_level(logging.WARNING, logger="sync"):
        sync = worker(store, broker.address)
        wait_for(lambda: "claims more than this post ever sent" in caplog.text, 10, "the ignore")
        assert sync.acks.counts == {"beyond_last_seq": 1}
        assert store.acked == 0
        district().subscribed.wait(10)
        drained(sync)
    assert_exactly_once(db_path, store)


# -- the Pi's own losses ---------------------------------------------------------------------


def damage(data_dir: Path) -> None:
    """Bit rot in the middle of today's journal and a torn write at its end."""
    (segment,) = sorted((data_dir / "events").glob("*.jsonl"))[-1:]
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[10] = lines[10][:30] + b"#### bit rot ####" + lines[10][47:]
    torn = b'0badf00d {"post":"bench","seq":%d,"time":"20' % (len(lines) + 25)
    segment.write_bytes(b"".join(lines) + torn)


def test_sync_seqs_the_pi_lost_do_not_leave_a_gap_at_the_district(
    tmp_path: Path,
    broker: Mosquitto,
    district: Callable[..., District],
    worker: Callable[..., SyncWorker],
    db_path: Path,
    stack: ExitStack,
) -> None:
    data = tmp_path / "pi"
    backlog(data, 600)
    damage(data)
    store = stack.enter_context(EventStore(data, POST))
    assert store.damage and store.last_seq > store.since(0)[-1]["seq"]
    district().subscribed.wait(10)
    sync = worker(store, broker.address)
    drained(sync)
    assert_exactly_once(db_path, store)  # contiguous reaches last_seq despite the holes
    with SQLiteStorage(db_path, read_only=True) as db:
        lost = db.lost(POST)
    present = {e["seq"] for e in store.since(0)}
    missing = [s for s in range(1, store.last_seq + 1) if s not in present]
    assert [s for a, b in lost for s in range(a, b + 1)] == missing
    assert len(missing) > 20  # the middle line and the torn tail's seqs


def test_sync_live_events_go_one_batch_each_without_a_status_each(
    broker: Mosquitto,
    district: Callable[..., District],
    pi: Callable[[int], EventStore],
    worker: Callable[..., SyncWorker],
    db_path: Path,
) -> None:
    store = pi(10)
    district().subscribed.wait(10)
    watcher = Watcher(broker.address)
    try:
        sync = worker(store, broker.address)
        drained(sync)
        for _ in range(5):  # a guard pressing now and then: each goes at once
            sync.notify(store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced"))
            drained(sync)
        assert len(watcher.on("events")) == 6
        assert len(watcher.on("status")) == 1  # the one at connection; statuses cost bytes
    finally:
        watcher.close()
    assert_exactly_once(db_path, store)


@pytest.mark.slow
def test_sync_status_timer_reports_changes_only_and_idles_quietly(
    broker: Mosquitto, pi: Callable[[int], EventStore], worker: Callable[..., SyncWorker]
) -> None:
    store = pi(10)
    watcher = Watcher(broker.address)
    try:  # no district: nothing is acknowledged, the backlog only grows
        sync = worker(store, broker.address, status_interval=0.2)
        wait_for(lambda: len(watcher.on("status")) == 1, 10, "the status at connection")
        sync.notify(store.append(Kind.OUT, moment=datetime.now(UTC), clock="synced"))
        wait_for(lambda: len(watcher.on("status")) == 2, 10, "a status on the timer")
        assert json.loads(watcher.on("status")[-1])["last_seq"] == 11
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        threading.Event().wait(1.0)  # an observation window: nothing changes meanwhile
        used = resource.getrusage(resource.RUSAGE_SELF)
        assert len(watcher.on("status")) == 2  # nothing new, nothing sent
        assert (used.ru_utime + used.ru_stime) - (cpu.ru_utime + cpu.ru_stime) < 0.3  # idle
    finally:
        watcher.close()

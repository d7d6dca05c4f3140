"""Against a real Mosquitto: a retained status replayed to a restarted receiver does not make
its post look freshly seen, and when the broker dies the page says the receiver is cut off
(and every post's state unknown) instead of calling every post offline."""

from __future__ import annotations

from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from district import uplink
from district.backends import open_storage
from district.server import District, district_link
from district.sqlite import SQLiteStorage
from edge.events import utc_text
from sync.messages import status
from tests.support.district_client import district_client
from tests.support.keys import SIGNER
from tests.support.sync_broker import Mosquitto, wait_for

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def start_receiver(broker: Mosquitto, db: Path, stack: ExitStack) -> District:
    link = district_link(("127.0.0.1", broker.port))
    district = stack.enter_context(District(open_storage(db), link, signer=SIGNER))
    assert district.subscribed.wait(10), "the receiver never subscribed"
    return district


def publish_retained(broker: Mosquitto, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-post")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def post_row(db: Path, post: str) -> dict[str, Any] | None:
    with SQLiteStorage(db, read_only=True) as storage:
        return next((p for p in storage.posts() if p["post"] == post), None)


def link_state(db: Path) -> str:
    with SQLiteStorage(db, read_only=True) as storage:
        return str(uplink.summary(uplink.links(storage))["state"])


def test_retained_status_replayed_after_a_receiver_restart_keeps_last_seen(
    broker: Mosquitto, tmp_path: Path, stack: ExitStack
) -> None:
    db = tmp_path / "district.db"
    said = utc_text(datetime.now(UTC) - timedelta(minutes=30))
    publish_retained(broker, "posko/v1/rw-a/status", status("online", time=said, last_seq=0))
    first = start_receiver(broker, db, stack)
    wait_for(lambda: post_row(db, "rw-a") is not None, 10, "the first receiver's status")
    first.close()
    again = start_receiver(broker, db, stack)
    wait_for(lambda: again.receiver.stats.statuses >= 1, 10, "the replayed retained status")
    row = post_row(db, "rw-a")
    assert row is not None and row["last_seen"] == said  # not the restart's time


def test_dead_broker_reads_as_a_cut_receiver_not_as_dead_posts(
    mosquitto: Mosquitto, tmp_path: Path, stack: ExitStack
) -> None:
    db = tmp_path / "district.db"
    mosquitto.start()
    publish_retained(mosquitto, "posko/v1/rw-b/status", status("online", last_seq=0))
    receiver = start_receiver(mosquitto, db, stack)
    wait_for(lambda: receiver.receiver.stats.statuses >= 1, 10, "the post's status")
    wait_for(lambda: link_state(db) == "connected", 10, "the receiver's link recorded")
    client = district_client(db, "viewer")
    assert client.get("/api/posts").get_json()["posts"][0]["state"] == "online"

    mosquitto.stop(kill=True)
    wait_for(lambda: link_state(db) == "cut", 15, "the cut link recorded")
    doc = client.get("/api/posts").get_json()
    assert doc["link"]["state"] == "cut"
    assert doc["posts"][0]["state"] == "unknown" and doc["posts"][0]["state_reported"] == "online"
    assert "PENERIMA TERPUTUS" in client.get("/").get_data(as_text=True)

    mosquitto.start()
    wait_for(lambda: link_state(db) == "connected", 45, "the link back after the broker")
    assert client.get("/api/posts").get_json()["posts"][0]["state"] == "online"

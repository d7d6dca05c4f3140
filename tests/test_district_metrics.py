"""The receiver's Prometheus metrics: what an operator's dashboard shows after real batches
went through a real receiver and broker, the refusals by kind, and the Grafana dashboard
naming only metrics that `/metrics` exports."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bench.hostile import BATCH_EVENTS, HonestPost, events
from district.backends import open_storage
from district.metrics import Metrics
from district.receiver import Receiver, refusal_kind
from district.server import district_link
from posko.runtime import DistrictRuntime
from sync import codec
from sync.batch import Batch
from tests.support.keys import SIGNER
from tests.support.sync_broker import Mosquitto, wait_for

REPO = Path(__file__).resolve().parent.parent
DASHBOARD = REPO / "docs" / "grafana-district.json"
STATUS = {"state": "online", "pending": 42, "time": "2026-11-30T01:00:00.000Z"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/plain")
        return samples(answer.read().decode())


def test_metrics_refusal_kinds_are_few_fixed_words() -> None:
    assert refusal_kind("not a posko/v1/<post>/events|alert|status topic") == "topic"
    assert refusal_kind("a batch of post 'a' on the topic of post 'b'") == "wrong_post"
    assert refusal_kind("payload of 9000000 bytes is larger than 1048576") == "too_large"
    assert refusal_kind("7 seqs declared lost in one batch (max 5)") == "lost"
    assert refusal_kind("batch version 9 is unknown here (known: 1, 2, 3)") == "version"
    # Whatever a post writes into a payload, the label stays one of the known words.
    assert refusal_kind("kind 'rw-99 <script>' is unknown") == "malformed"


def stored_once(tmp_path: Path) -> Metrics:
    """A receiver on a real database that stored one batch and one status, and refused one
    payload; its metrics told of the commit, as the intake does."""
    receiver = Receiver(open_storage(tmp_path / "district.db"), signer=SIGNER)
    metrics = Metrics(receiver, posts=receiver.storage.posts)
    batch = Batch.of("rw-01", events("rw-01", 1, BATCH_EVENTS, 1))
    works = [
        receiver.examine("posko/v1/rw-01/events", codec.encode(batch)),
        receiver.examine("posko/v1/rw-01/status", json.dumps(STATUS).encode()),
        receiver.examine("posko/v1/rw-01/events", b"junk"),
    ]
    ready = [w for w in works if w is not None]
    metrics.stored(ready, receiver.store(ready), 0.004)
    return metrics


def test_metrics_count_what_the_receiver_stored_and_refused(tmp_path: Path) -> None:
    found = samples(generate_latest(stored_once(tmp_path).registry).decode())
    assert found[("posko_district_batches_total", ())] == 1
    assert found[("posko_district_events_total", ())] == BATCH_EVENTS
    assert found[("posko_district_quarantined_total", (("reason", "malformed"),))] == 1
    assert found[("posko_district_posts_online", ())] == 1
    assert found[("posko_district_backlog_events", (("post", "rw-01"),))] == 42
    assert found[("posko_district_commit_latency_seconds_count", ())] == 1
    assert found[("posko_district_commit_latency_seconds_bucket", (("le", "0.005"),))] == 1
    # examine() without the intake stamps no arrival: no ack latency is made up.
    assert found[("posko_district_ack_latency_seconds_count", ())] == 0


def test_metrics_grafana_dashboard_names_only_exported_metrics(tmp_path: Path) -> None:
    exported = {
        name for name, _ in samples(generate_latest(stored_once(tmp_path).registry).decode())
    }
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    assert panels, "the dashboard has no panels"
    named: set[str] = set()
    for panel in panels:
        exprs = [t["expr"] for t in panel.get("targets", [])]
        assert exprs, f"panel {panel.get('title')!r} queries nothing"
        for expr in exprs:
            names = set(re.findall(r"\bposko_district_[a-z_]+", expr))
            assert names, f"panel {panel['title']!r}: {expr!r} names no Posko metric"
            assert names <= exported, f"panel {panel['title']!r}: {names - exported} not exported"
            named |= names
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in exported}
    shown = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in named}
    assert families - shown <= {"posko_district_statuses", "posko_district_alerts"}


@pytest.mark.broker
@pytest.mark.slow
def test_metrics_scraped_after_real_batches_through_a_real_receiver(
    broker: Mosquitto, tmp_path: Path
) -> None:
    link = district_link(("127.0.0.1", broker.port), "1")
    assert link.client_id.endswith("-1")  # the systemd instance names the client
    runtime = DistrictRuntime(
        str(tmp_path / "district.db"), link, signer=SIGNER, metrics=("127.0.0.1", 0)
    )
    with runtime:
        assert runtime.receiver is not None and runtime.receiver.subscribed.wait(10)
        assert runtime.metrics_server is not None
        url = runtime.metrics_server.url
        post = HonestPost("rw-01", broker.port, seed=1)
        try:
            for _ in range(3):
                post.send()
                wait_for(lambda: post.pending() == 0, 10, "the batch's ack")
            post.next_seq = 1  # the first batch again, as a Pi does when an ack was lost
            post.send()
            wait_for(lambda: post.pending() == 0, 10, "the resent batch's ack")
        finally:
            post.close()
        other = Batch.of("rw-02", events("rw-02", 1, BATCH_EVENTS, 2))
        publish(broker.port, [
            ("posko/v1/rw-01/events", b"not a batch", False),
            ("posko/v1/rw-01/events", codec.encode(other), False),  # on another post's topic
            ("posko/v1/rw-01/status", json.dumps(STATUS).encode(), True),
        ])  # fmt: skip
        wait_for(
            lambda: scrape(url).get(("posko_district_backlog_events", (("post", "rw-01"),))) == 42,
            10,
            "the post's status in the metrics",
        )
        found = scrape(url)
    assert found[("posko_district_batches_total", ())] == 4
    assert found[("posko_district_events_total", ())] == 3 * BATCH_EVENTS
    assert found[("posko_district_duplicates_total", ())] == BATCH_EVENTS
    assert found[("posko_district_quarantined_total", (("reason", "malformed"),))] == 1
    assert found[("posko_district_quarantined_total", (("reason", "wrong_post"),))] == 1
    assert found[("posko_district_posts_online", ())] == 1
    assert found[("posko_district_ack_latency_seconds_count", ())] == 4  # one per ack
    assert found[("posko_district_ack_latency_seconds_bucket", (("le", "+Inf"),))] == 4
    assert found[("posko_district_commit_latency_seconds_count", ())] >= 4


def publish(port: int, messages: list[tuple[str, bytes, bool]]) -> None:
    """Publish (topic, payload, retain) at QoS 1 and wait until the broker has them."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload, retain in messages:
            client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()

"""The receiver's Prometheus metrics: what it stored, refused and acknowledged, how long its
commits and acks took, and how the posts themselves say they stand (online, backlog).
Each receiver process owns one registry, served on loopback by `MetricsServer`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from district.receiver import Arrival, Receiver, Reply, Work
from district.storage import StorageError

log = logging.getLogger(__name__)

PREFIX = "posko_district"
MAX_POSTS = 10_000  # posts given their own backlog series (a bound on the label's values)
# Seconds: an ack is due within a second even at saturation; a commit within milliseconds.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)

Posts = Callable[[], list[dict[str, Any]]]  # the storage's posts() rows, read at scrape time


class Metrics:
    """The metrics of one receiver: its counters are read from the receiver's own stats
    when scraped; `stored` is called by the intake after each commit (its latencies)."""

    def __init__(self, receiver: Receiver, posts: Posts | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ack_latency = Histogram(
            f"{PREFIX}_ack_latency_seconds",
            "From a batch reaching the receiver to its ack being published",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            f"{PREFIX}_commit_latency_seconds",
            "Time the storage stage took to store and commit one group of messages",
            buckets=COMMIT_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_Counts(receiver))
        if posts is not None:
            self.registry.register(_PostStates(posts))

    def stored(self, works: Sequence[Work], replies: Sequence[Reply | None], took: float) -> None:
        """One group committed in `took` seconds and its acks published (the intake's hook)."""
        self.commit_latency.observe(took)
        now = time.monotonic()
        for work, reply in zip(works, replies, strict=True):
            if reply is not None and isinstance(work, Arrival) and work.arrived:
                self.ack_latency.observe(max(now - work.arrived, 0.0))


class _Counts(Collector):
    """The receiver's running totals (`ReceiverStats`), as counters."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    def collect(self) -> Iterator[Metric]:
        s = self.receiver.stats
        for name, value, text in (
            ("batches", s.batches, "Batches stored and committed"),
            ("events", s.events, "New events stored (duplicates not counted)"),
            ("duplicates", s.duplicates, "Events received again that were already stored"),
            ("alerts", s.alerts, "Emergency alerts stored"),
            ("statuses", s.statuses, "Post statuses recorded"),
            ("db_errors", s.db_errors, "Database errors (nothing acked; the posts resend)"),
        ):
            yield CounterMetricFamily(f"{PREFIX}_{name}", text, value=value)
        refused = CounterMetricFamily(
            f"{PREFIX}_quarantined",
            "Payloads refused and quarantined, by reason",
            labels=["reason"],
        )
        for reason, count in sorted(dict(s.quarantined_by).items()):
            refused.add_metric([reason], count)
        yield refused


class _PostStates(Collector):
    """What the posts' own statuses say (read from the database at scrape time, so that
    every receiver on one database reports the same: aggregate with max, not sum)."""

    def __init__(self, posts: Posts) -> None:
        self.posts = posts

    def collect(self) -> Iterator[Metric]:
        try:
            rows = self.posts()
        except StorageError as e:  # the scrape goes on without these
            log.warning("metrics: cannot read the posts: %s", e)
            return
        online = sum(1 for row in rows if row.get("state") == "online")
        yield GaugeMetricFamily(f"{PREFIX}_posts", "Posts known to the district", len(rows))
        yield GaugeMetricFamily(f"{PREFIX}_posts_online", "Posts whose status is online", online)
        backlog = GaugeMetricFamily(
            f"{PREFIX}_backlog_events",
            "Events a post said it still has to send (its last status)",
            labels=["post"],
        )
        for row in rows[:MAX_POSTS]:
            pending = (row.get("status") or {}).get("pending")
            if isinstance(pending, int):
                backlog.add_metric([row["post"]], pending)
        yield backlog


class MetricsServer:
    """`/metrics` of one registry on HOST:PORT (loopback by default: no login there);
    start() it, close() it (idempotent)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        self.metrics, self.host, self.port = metrics, host, port
        self._server: Any = None
        self._thread: Any = None

    def start(self) -> MetricsServer:
        self._server, self._thread = start_http_server(
            self.port, self.host, registry=self.metrics.registry
        )
        self.port = self._server.server_address[1]  # the real one when asked for port 0
        log.info("metrics at %s", self.url)
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()
            self._thread.join(10)

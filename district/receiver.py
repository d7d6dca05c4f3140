"""The district's handling of one MQTT message: check it, store it, and say what to answer.

No MQTT here (`district.server` does the talking), so every rule can be tested with plain
calls. A bad payload is quarantined with its reason and the post is told; input never
crashes the receiver, and a batch is stored whole or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from district.storage import Storage, StorageError
from sync import codec, topics
from sync.batch import PayloadError
from sync.messages import Ack, parse_status

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reply:
    """A message to publish once the commit is done (the cumulative ack)."""

    topic: str
    payload: bytes
    retain: bool = True


@dataclass
class ReceiverStats:
    batches: int = 0
    events: int = 0  # new events stored
    duplicates: int = 0  # events that were already stored
    alerts: int = 0
    statuses: int = 0
    quarantined: int = 0
    db_errors: int = 0


class Receiver:
    def __init__(self, storage: Storage, *, max_payload: int = codec.MAX_PAYLOAD) -> None:
        self.storage = storage
        self.max_payload = max_payload
        self.stats = ReceiverStats()

    def handle(self, topic: str, payload: bytes) -> Reply | None:
        """Store what the message carries; the reply to publish after the commit, if any."""
        try:
            return self._handle(topic, payload)
        except StorageError as e:  # not the payload's fault: no ack, the post sends again
            self.stats.db_errors += 1
            log.error("district database error on %s: %s", topic, e)
        except Exception as e:  # a bug must not stop the district; keep the payload
            log.exception("unexpected error on %s", topic)
            self._quarantine(topic, None, f"unexpected error: {e}", payload)
        return None

    def _handle(self, topic: str, payload: bytes) -> Reply | None:
        where = topics.parse(topic)
        if where is None:
            self._quarantine(
                topic, None, "not a posko/v1/<post>/events|alert|status topic", payload
            )
            return None
        if where.leaf == topics.STATUS:
            self._status(topic, where.post, payload)
            return None
        if where.leaf not in (topics.EVENTS, topics.ALERT):
            return None
        try:
            batch = codec.decode(payload, self.max_payload)
            if batch.post != where.post:
                raise PayloadError(
                    f"a batch of post {batch.post!r} on the topic of post {where.post!r}"
                )
        except PayloadError as e:
            self._quarantine(topic, where.post, e.reason, payload)
            if where.leaf == topics.ALERT:
                return None
            ack = Ack(self.storage.contiguous(where.post), error=e.reason)
            return Reply(topics.topic(where.post, topics.ACK), ack.encode(), retain=False)
        alert = where.leaf == topics.ALERT
        stored = self.storage.store_batch(batch, alert=alert)
        self._count(stored.inserted, len(batch.events), alert)
        if alert:
            log.warning("EMERGENCY (Darurat) at post %s: event %d", batch.post, batch.last)
            return None
        ack = Ack(stored.contiguous, batch.first, batch.last)
        return Reply(topics.topic(batch.post, topics.ACK), ack.encode())

    def _status(self, topic: str, post: str, payload: bytes) -> None:
        if not payload:  # a retained status being cleared
            return
        try:
            status = parse_status(payload)
        except PayloadError as e:
            self._quarantine(topic, post, e.reason, payload)
            return
        self.storage.record_status(post, status)
        self.stats.statuses += 1

    def _count(self, inserted: int, events: int, alert: bool) -> None:
        self.stats.batches += 1
        self.stats.events += inserted
        self.stats.duplicates += events - inserted
        self.stats.alerts += int(alert)

    def _quarantine(self, topic: str, post: str | None, reason: str, payload: bytes) -> None:
        self.stats.quarantined += 1
        log.warning("quarantined a payload on %s (%d bytes): %s", topic[:120], len(payload), reason)
        try:
            self.storage.quarantine(topic, post, reason, payload)
        except StorageError as e:
            self.stats.db_errors += 1
            log.error("cannot quarantine a payload: %s", e)

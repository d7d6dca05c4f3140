"""One connection of the sync worker: CONNACK, the status barrier, then publishing.

After CONNACK the session subscribes to its ack topic and publishes its retained status;
the broker answers in order, so once that status is acknowledged the retained ack (if
any) has been seen and the outbox can start from the freshest watermark. A session sees
its worker only through `Owner`: the parts it drives, and where it reports what happened.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.store import EventStore
from sync import topics
from sync.options import SyncOptions
from sync.outbox import Outbox

log = logging.getLogger(__name__)

IDLE_WAKE_S = 5.0
GOODBYE_S = 2.0
# CONNACK reasons that retrying will not fix without a change of settings.
FATAL_REFUSALS = {
    "Bad user name or password",
    "Not authorized",
    "Client identifier not valid",
    "Unsupported protocol version",
    "Banned",
}


class Owner(Protocol):
    """What a session needs from the worker that owns it (`SyncWorker` implements it)."""

    @property
    def options(self) -> SyncOptions: ...

    @property
    def store(self) -> EventStore: ...

    @property
    def outbox(self) -> Outbox: ...

    def status(self, state: str) -> bytes:
        """The retained status payload saying `state` ("online" or "offline")."""

    def alert(self) -> tuple[int, bytes] | None:
        """The oldest emergency not yet published: its seq and its payload."""

    def alert_published(self) -> None:
        """The broker took the emergency `alert()` gave; the next one may go."""

    def connected(self) -> None:
        """The broker accepted this connection."""

    def failed(self, error: str, *, fatal: bool = False) -> None:
        """The connection failed; `fatal` when no retry can fix it (TLS, auth)."""

    def flush(self, timeout: float) -> bool:
        """Wait until every acknowledgement received is saved; False at the timeout."""


class Session:
    def __init__(
        self, owner: Owner, client: mqtt.Client, conn: int, connack_deadline: float
    ) -> None:
        self.owner = owner
        self.client = client
        self.conn = conn
        self.deadline = connack_deadline
        self.accepted = False  # the broker accepted the connection
        self.ready = False  # the status barrier has passed: batches may go
        self.status_mid: int | None = None
        self.last_status = 0.0
        self.last_figures = (-1, -1, 0)  # last_seq, acked, pending in the last status
        self.last_refused: str | None = None
        self._hung_up = False

    @property
    def address(self) -> str:
        return self.owner.options.link.address

    def topic(self, leaf: str) -> str:
        return topics.topic(self.owner.options.post, leaf)

    def timeout(self) -> float:
        now = time.monotonic()
        waits = [IDLE_WAKE_S]
        if not self.accepted:
            waits.append(self.deadline - now)
        if self.ready:
            deadline = self.owner.outbox.next_deadline()
            if deadline is not None:
                waits.append(deadline - now)
            waits.append(self.last_status + self.owner.options.status_interval - now)
        return max(0.0, min(waits))

    def alive(self) -> bool:
        if not self.accepted and time.monotonic() > self.deadline:
            self.owner.failed(f"no answer from the broker at {self.address}")
            return False
        return True

    def handle(self, kind: str, payload: Any) -> bool:
        """One item from this connection's callbacks; False when the connection is over."""
        if kind == "connack":
            return self._connack(payload)
        if kind == "puback":
            self._puback(*payload)
        elif kind == "suback":
            refused = [c for c in payload if c.is_failure]
            if refused:
                self.owner.failed(f"the broker refused the ack subscription: {refused[0]}")
        elif kind == "gone":
            self.owner.failed(f"connection to {self.address} lost: {payload}")
            return False
        return True

    def _connack(self, reason: ReasonCode) -> bool:
        if reason.is_failure:
            self.owner.failed(
                f"the broker at {self.address} refused the connection: {reason}",
                fatal=str(reason) in FATAL_REFUSALS,
            )
            return False
        self.accepted = True
        self.owner.connected()
        self.client.subscribe(self.topic(topics.ACK), qos=1)
        self.status_mid = self._publish_status()
        log.info("sync: connected to %s; %d events waiting", self.address, self.owner.store.pending)
        return True

    def _puback(self, mid: int, reason: ReasonCode) -> None:
        if reason.is_failure:
            self.owner.failed(
                f"the broker refused a message: {reason} (a post may publish "
                f"only under posko/v1/<its post id>/)"
            )
        if mid == self.status_mid and not self.ready:
            self.ready = True
            self.owner.outbox.restart()

    def pump(self) -> None:
        """Publish what is due: alerts first, then batches, then the status if it is time."""
        if not self.ready:
            return
        owner = self.owner
        while (alert := owner.alert()) is not None:
            seq, payload = alert
            info = self.client.publish(self.topic(topics.ALERT), payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            owner.alert_published()
            log.warning("sync: emergency %d published at once", seq)
        events_topic = self.topic(topics.EVENTS)
        for flight in owner.outbox.due():
            self.client.publish(events_topic, flight.payload, qos=1)
        if self._status_due():
            self._publish_status()

    def _status_due(self) -> bool:
        """A status costs bytes: on a timer when something changed, when a real backlog has
        just been cleared, and when the district starts or stops refusing a batch."""
        owner = self.owner
        store, last = owner.store, self.last_figures
        if owner.outbox.refused != self.last_refused:
            return True
        timer = time.monotonic() - self.last_status >= owner.options.status_interval
        if (store.last_seq, store.acked) == last[:2]:
            if timer:  # nothing new to say: the retained status still holds
                self.last_status = time.monotonic()
            return False
        return timer or (store.pending == 0 and last[2] >= owner.options.batch_events)

    def _publish_status(self, state: str = "online") -> int:
        self.last_status = time.monotonic()
        store = self.owner.store
        self.last_figures = (store.last_seq, store.acked, store.pending)
        self.last_refused = self.owner.outbox.refused
        info = self.client.publish(
            self.topic(topics.STATUS), self.owner.status(state), qos=1, retain=True
        )
        return info.mid

    def goodbye(self) -> None:
        """Leave cleanly: a retained offline status, acknowledged if the link allows."""
        if not self.accepted or not self.client.is_connected():
            return
        self.status_mid = None
        self.owner.flush(GOODBYE_S)  # the last status tells the saved watermark
        info = self.client.publish(
            self.topic(topics.STATUS), self.owner.status("offline"), qos=1, retain=True
        )
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(GOODBYE_S)

    def hang_up(self) -> None:
        if self._hung_up:
            return
        self._hung_up = True
        with contextlib.suppress(OSError):
            self.client.disconnect()
        self.client.loop_stop()

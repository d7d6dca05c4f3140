"""One connection of the sync worker: CONNACK, the status barrier, then publishing.

After CONNACK the session subscribes to its ack topic and publishes its retained status;
the broker answers in order, so once that status is acknowledged the retained ack (if
any) has been seen and the outbox can start from the freshest watermark.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt

from sync import topics

if TYPE_CHECKING:
    from sync.worker import SyncWorker

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


class Session:
    def __init__(
        self, worker: SyncWorker, client: mqtt.Client, conn: int, connack_deadline: float
    ) -> None:
        self.worker = worker
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
        return self.worker.options.link.address

    def timeout(self) -> float:
        now = time.monotonic()
        waits = [IDLE_WAKE_S]
        if not self.accepted:
            waits.append(self.deadline - now)
        if self.ready:
            deadline = self.worker.outbox.next_deadline()
            if deadline is not None:
                waits.append(deadline - now)
            waits.append(self.last_status + self.worker.options.status_interval - now)
        return max(0.0, min(waits))

    def alive(self) -> bool:
        if not self.accepted and time.monotonic() > self.deadline:
            self.worker.failed(f"no answer from the broker at {self.address}")
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
                self.worker.failed(f"the broker refused the ack subscription: {refused[0]}")
        elif kind == "gone":
            self.worker.failed(f"connection to {self.address} lost: {payload}")
            return False
        return True

    def _connack(self, reason: Any) -> bool:
        if reason.is_failure:
            self.worker.failed(
                f"the broker at {self.address} refused the connection: {reason}",
                fatal=str(reason) in FATAL_REFUSALS,
            )
            return False
        self.accepted = True
        worker = self.worker
        worker.connections += 1
        worker.state = "online"
        worker.last_error = worker.fatal_error = None
        self.client.subscribe(worker.topic(topics.ACK), qos=1)
        self.status_mid = self._publish_status()
        log.info("sync: connected to %s; %d events waiting", self.address, worker.store.pending)
        return True

    def _puback(self, mid: int, reason: Any) -> None:
        if reason.is_failure:
            self.worker.failed(
                f"the broker refused a message: {reason} (a post may publish "
                f"only under posko/v1/<its post id>/)"
            )
        if mid == self.status_mid and not self.ready:
            self.ready = True
            self.worker.outbox.restart()

    def pump(self) -> None:
        """Publish what is due: alerts first, then batches, then the status if it is time."""
        if not self.ready:
            return
        worker = self.worker
        while worker.alerts:
            info = self.client.publish(
                worker.topic(topics.ALERT), worker.alert_payload(worker.alerts[0]), qos=1
            )
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            event = worker.alerts.popleft()
            log.warning("sync: emergency %d published at once", event["seq"])
        events_topic = worker.topic(topics.EVENTS)
        for flight in worker.outbox.due():
            self.client.publish(events_topic, flight.payload, qos=1)
        if self._status_due():
            self._publish_status()

    def _status_due(self) -> bool:
        """A status costs bytes: on a timer when something changed, when a real backlog has
        just been cleared, and when the district starts or stops refusing a batch."""
        worker = self.worker
        store, last = worker.store, self.last_figures
        if worker.outbox.refused != self.last_refused:
            return True
        timer = time.monotonic() - self.last_status >= worker.options.status_interval
        if (store.last_seq, store.acked) == last[:2]:
            if timer:  # nothing new to say: the retained status still holds
                self.last_status = time.monotonic()
            return False
        return timer or (store.pending == 0 and last[2] >= worker.options.batch_events)

    def _publish_status(self, state: str = "online") -> int:
        self.last_status = time.monotonic()
        store = self.worker.store
        self.last_figures = (store.last_seq, store.acked, store.pending)
        self.last_refused = self.worker.outbox.refused
        info = self.client.publish(
            self.worker.topic(topics.STATUS), self.worker.status(state), qos=1, retain=True
        )
        return info.mid

    def goodbye(self) -> None:
        """Leave cleanly: a retained offline status, acknowledged if the link allows."""
        if not self.accepted or not self.client.is_connected():
            return
        self.status_mid = None
        self.worker.watermark.flush(GOODBYE_S)  # the last status tells the saved watermark
        info = self.client.publish(
            self.worker.topic(topics.STATUS), self.worker.status("offline"), qos=1, retain=True
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

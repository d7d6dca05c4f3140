"""The district receiver service: subscribes to every post, stores, acknowledges after commit.

With `share`, the events and alerts come through `$share/<group>/...`, so several receivers
split the load (on one database); statuses are subscribed to directly, because a broker
does not hand retained messages to a shared subscription.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from district.intake import Intake, IntakeLimits
from district.receiver import Receiver, Reply
from district.storage import QuarantineLimits, Storage
from sync import topics
from sync.codec import MAX_PAYLOAD
from sync.mqtt import connect, new_client
from sync.options import Link
from sync.signing import Signer

log = logging.getLogger(__name__)

REPORT_EVERY_S = 30.0


def district_link(address: tuple[str, int], **settings: Any) -> Link:
    """How a receiver reaches the broker; its client id is unique per host and process."""
    client_id = f"posko-district-{socket.gethostname()[:40]}-{os.getpid()}"
    return Link(address[0], address[1], client_id, **settings)


class District:
    """start() it, close() it (idempotent); `subscribed` is set once it listens.

    It owns the storage it is handed and closes it last.
    """

    def __init__(
        self,
        storage: Storage,
        link: Link,
        *,
        share: str | None = None,
        max_payload: int = MAX_PAYLOAD,
        signer: Signer | None = None,
        quarantine: QuarantineLimits | None = None,
        intake: IntakeLimits | None = None,
    ) -> None:
        self.link = link
        self.share = share
        self.storage = storage
        self.receiver = Receiver(
            storage, max_payload=max_payload, signer=signer, quarantine=quarantine
        )
        # Decoding and storing happen in the intake's threads, never on paho's.
        self.intake = Intake(self.receiver, self._publish, intake)
        self.subscribed = threading.Event()
        try:
            self.client = new_client(link, reconnect=True)
        except BaseException:
            storage.close()
            raise
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._reported = time.monotonic()
        self._closed = False

    def subscriptions(self) -> list[tuple[str, int]]:
        return [
            (topics.every_post(topics.EVENTS, self.share), 1),
            (topics.every_post(topics.ALERT, self.share), 1),
            (topics.every_post(topics.STATUS), 1),
        ]

    def start(self) -> District:
        self.intake.start()
        connect(self.client, self.link, asynchronous=True)
        self.client.loop_start()  # retries until the broker is up
        log.info("district receiver connecting to %s", self.link.address)
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.intake.close()  # its last acks go out while still connected
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self.storage.close()
        self._report(force=True)

    def __enter__(self) -> District:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paho callbacks (its network thread) ---------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("the broker at %s refused the receiver: %s", self.link.address, reason)
            return
        client.subscribe(self.subscriptions())

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning("broker at %s not reachable yet; retrying", self.link.address)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, properties: Any
    ) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("the broker refused a subscription: %s", refused[0])
            return
        names = ", ".join(t for t, _ in self.subscriptions())
        log.info("district receiver subscribed to %s", names)
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.subscribed.clear()
        if not self._closed:
            log.warning("lost the broker at %s (%s); reconnecting", self.link.address, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.intake.put(message.topic, bytes(message.payload))
        self._report()

    def _publish(self, reply: Reply) -> None:
        """An ack, once its batch is committed (from the intake's storage stage)."""
        self.client.publish(reply.topic, reply.payload, qos=1, retain=reply.retain)

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._reported >= REPORT_EVERY_S:
            self._reported = now
            s, i = self.receiver.stats, self.intake.stats
            log.info(
                "district: %d events stored in %d batches (%d duplicates skipped), "
                "%d alerts, %d statuses, %d payloads quarantined, %d shed unread; "
                "slowest payload %.1f ms CPU (post %r)",
                s.events,
                s.batches,
                s.duplicates,
                s.alerts,
                s.statuses,
                s.quarantined,
                i.shed,
                i.slowest_ms,
                i.slowest_post,
            )

"""The district receiver service: subscribes to every post, stores, acknowledges after commit.

With `share`, the events and alerts come through `$share/<group>/...`, so several receivers
split the load (on one database); statuses are subscribed to directly, because a broker
does not hand retained messages to a shared subscription. A post that floods is muted at
the broker for a while (`district.muting`): the subscriptions then name every other post.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from district import uplink
from district.intake import Intake, IntakeLimits
from district.metrics import Metrics, Posts
from district.muting import Muting
from district.receiver import Receiver, Reply
from district.retention import Retention
from district.storage import QuarantineLimits, Storage, StorageError
from sync.codec import MAX_PAYLOAD
from sync.mqtt import connect, new_client
from sync.options import Link
from sync.signing import Signer

log = logging.getLogger(__name__)

REPORT_EVERY_S = 30.0


def district_link(address: tuple[str, int], name: str | None = None, **settings: Any) -> Link:
    """How a receiver reaches the broker; its client id is unique per host and `name` (the
    systemd instance, say), or per process without one."""
    client_id = f"posko-district-{socket.gethostname()[:40]}-{name or os.getpid()}"
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
        keep: Retention | None = None,
        post_states: Posts | None = None,
    ) -> None:
        self.link = link
        self.share = share
        self.storage = storage
        self.receiver = Receiver(
            storage, max_payload=max_payload, signer=signer, quarantine=quarantine, keep=keep
        )
        # Its registry: `post_states` reads the posts' online state and backlog when scraped.
        self.metrics = Metrics(self.receiver, post_states)
        self.muting = Muting(share=share, mute_s=(intake or IntakeLimits()).mute_s)
        try:
            self.muting.hear(row["post"] for row in storage.posts())
        except StorageError as error:  # heard again as they send
            log.warning("could not list the posts already known: %s", error)
        # Decoding and storing happen in the intake's threads, never on paho's.
        self.intake = Intake(
            self.receiver,
            self._publish,
            intake,
            muting=self.muting,
            on_mute=self._on_mute,
            on_heard=self._follow,
            observe=self.metrics.stored,
        )
        self.subscribed = threading.Event()
        self._topics_lock = threading.Lock()
        self._listening: frozenset[str] = frozenset()  # filters subscribed to now
        self._connected = False
        self._first_subscription: int | None = None
        self._unmute_timer: threading.Timer | None = None
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
        """What the receiver listens to now (every post's topics, unless one is muted)."""
        return [(name, 1) for name in sorted(self.muting.wanted().filters)]

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
        with self._topics_lock:
            if self._unmute_timer is not None:
                self._unmute_timer.cancel()
        try:
            self.intake.close()  # its last acks go out while still connected
            self.client.disconnect()
        finally:
            self.client.loop_stop()
            self._link(uplink.STOPPED)
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
        self._link(uplink.CONNECTED)
        with self._topics_lock:
            self._connected = True
            self._listening = self.muting.wanted().filters
            _, self._first_subscription = client.subscribe(
                [(name, 1) for name in sorted(self._listening)]
            )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        log.warning("broker at %s not reachable yet; retrying", self.link.address)
        self._link(uplink.CUT)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, properties: Any
    ) -> None:
        refused = [c for c in codes if c.is_failure]
        if refused:
            log.error("the broker refused a subscription: %s", refused[0])
            return
        if mid != self._first_subscription:
            return  # a change for a muted post (logged when it was made)
        listening = sorted(self._listening)
        names = ", ".join(listening) if len(listening) <= 6 else f"{len(listening)} topics"
        log.info("district receiver subscribed to %s", names)
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.subscribed.clear()
        with self._topics_lock:
            self._connected = False
        if not self._closed:
            log.warning("lost the broker at %s (%s); reconnecting", self.link.address, reason)
            self._link(uplink.CUT)

    def _link(self, state: str) -> None:
        """Tell the page how this receiver's link to the broker stands (`district.uplink`)."""
        uplink.record(self.storage, self.link.client_id, self.link.address, state)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.intake.put(message.topic, bytes(message.payload))
        self._report()

    # -- muting a flooding post ----------------------------------------------------------

    def _on_mute(self, post: str, statuses: bool) -> None:
        """The intake shed a post's messages: have the broker drop them for a while."""
        who = repr(post) if post else "the posts with malformed topics"
        if statuses:
            log.warning(
                "%s floods its status too: listening to every status by name for %.0f s "
                "(a post never heard before is heard after that)",
                who,
                self.muting.mute_s,
            )
        else:
            log.warning(
                "muting %s at the broker for %.0f s: it sends faster than it is served "
                "(its Pi sends the unacknowledged batches again later)",
                who,
                self.muting.mute_s,
            )
        self._follow()
        self._schedule_unmute()

    def _follow(self) -> None:
        """Subscribe to what the muting wants now, then drop what it no longer wants (in
        that order, so that no other post goes unheard in between)."""
        with self._topics_lock:
            if not self._connected or self._closed:
                return  # the next connection subscribes to what is wanted then
            wanted = self.muting.wanted().filters
            add, drop = wanted - self._listening, self._listening - wanted
            if add:
                # Statuses already heard are not replayed by the broker for the new filters.
                names = sorted(add)
                if self.link.protocol == "5":  # statuses already heard are not replayed
                    again = SubscribeOptions(
                        qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND
                    )
                    self.client.subscribe([(name, again) for name in names])
                else:
                    self.client.subscribe([(name, 1) for name in names])
            if drop:
                self.client.unsubscribe(sorted(drop))
            self._listening = wanted

    def _schedule_unmute(self) -> None:
        delay = self.muting.next_expiry()
        with self._topics_lock:
            if self._unmute_timer is not None:
                self._unmute_timer.cancel()
            if delay is None or self._closed:
                return
            self._unmute_timer = threading.Timer(delay + 0.05, self._unmute)
            self._unmute_timer.daemon = True
            self._unmute_timer.start()

    def _unmute(self) -> None:
        posts = self.muting.expire()
        if posts:
            self.intake.unmuted(posts)
            names = ["every status" if p == "*" else repr(p) for p in sorted(posts)]
            log.info("listening again to %s", ", ".join(names))
            self._follow()
        self._schedule_unmute()

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
                "%d alerts, %d statuses, %d payloads quarantined, %d shed unread, "
                "%d posts muted; slowest payload %.1f ms CPU (post %r)",
                s.events,
                s.batches,
                s.duplicates,
                s.alerts,
                s.statuses,
                s.quarantined,
                i.shed,
                i.mutes,
                i.slowest_ms,
                i.slowest_post,
            )

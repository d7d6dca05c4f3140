"""The Pi's sync worker: one thread that keeps a connection to the broker and drains the outbox.

Each connection is a fresh paho client, so nothing lives only in paho's memory: after a
reconnect (backoff 1 s doubling to 2 min, reset once connected) the outbox starts again
from the store's watermark. The press path only calls `notify`, which never blocks.
"""

from __future__ import annotations

import logging
import queue
import random
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge import __version__
from edge.events import Event, Kind, utc_text
from edge.store import EventStore
from sensors.errors import StoreError
from sync import messages, topics
from sync.acks import AckGate
from sync.batch import Batch
from sync.codec import CURRENT, encode
from sync.messages import Ack
from sync.mqtt import connect, is_tls_failure, new_client
from sync.options import SyncOptions
from sync.outbox import Outbox
from sync.session import Session
from sync.watermark import Watermark

log = logging.getLogger(__name__)

CONNACK_TIMEOUT_S = 15.0


class SyncWorker:
    """Sends the store's backlog to the district; start() it, close() it (idempotent)."""

    def __init__(
        self,
        store: EventStore,
        options: SyncOptions,
        *,
        clock_state: Callable[[], str] = lambda: "unknown",
        backoff: tuple[float, float] = (1.0, 120.0),
        version: int = CURRENT,
    ) -> None:
        options.trust.require()  # AcksUntrusted: no district key and not insecure
        self.store = store
        self.options = options
        self.clock_state = clock_state
        self.backoff = backoff
        self.online_since: str | None = None  # when the broker last accepted this post
        self.watermark = Watermark(store, on_saved=self._saved)
        self.outbox = Outbox(store, options, version=version, save=self.watermark.advance)
        self.acks = AckGate(
            options.post, options.trust, lambda: store.last_seq, _writable_dir(store)
        )
        self.inbox: queue.SimpleQueue[tuple[str, int, Any]] = queue.SimpleQueue()
        self.alerts: deque[Event] = deque()
        self.state = "starting"  # connecting, online, waiting (between tries), stopped
        self.last_error: str | None = None
        self.fatal_error: str | None = None  # the last error no retry can fix (TLS, auth)
        self.failures = 0  # connections that failed or were lost, for `posko sync` to report
        self.connections = 0
        self.drained = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sync", daemon=True)
        self._conn = 0
        self._check_drained()

    # -- public --------------------------------------------------------------------

    def start(self) -> SyncWorker:
        if self.options.trust.insecure:
            log.warning(
                "sync: mqtt.insecure_acks is on: acks are believed without a district "
                "signature, so anyone who can publish on the broker can make this post "
                "drop events it never delivered"
            )
        self.watermark.start()
        self._thread.start()
        return self

    def notify(self, event: Event) -> None:
        """A new durable event (station listener): wake the worker; never blocks."""
        self.inbox.put(("event", 0, event))

    def wait_drained(self, timeout: float | None = None) -> bool:
        """Wait until every stored event is acknowledged; False at the timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.drained.wait(left) and self.outbox.drained:
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # an event came in and the worker has not seen it yet

    def close(self, timeout: float = 5.0) -> None:
        """Say offline, disconnect and stop the thread. Idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        self.inbox.put(("stop", 0, None))
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.watermark.close()
        self.acks.close()
        self.state = "stopped"

    def __enter__(self) -> SyncWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def topic(self) -> Callable[[str], str]:
        return lambda leaf: topics.topic(self.options.post, leaf)

    # -- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        delay: float | None = None
        while not self._stop.is_set():
            try:
                connected = self._connection()
            except Exception as e:  # the worker must outlive any bug in one connection
                log.exception("sync connection failed")
                connected, self.last_error = False, f"internal error: {e}"
            if self._stop.is_set():
                break
            low, high = self.backoff
            delay = low if connected or delay is None else min(delay * 2, high)
            self.state = "waiting"
            wait = delay * random.uniform(0.8, 1.0)  # posts must not all retry at once
            log.info("sync: next connection attempt in %.1f s", wait)
            self._idle(time.monotonic() + wait)
        self.state = "stopped"

    def _idle(self, until: float) -> None:
        """Wait between connections, still taking note of new events (and late acks)."""
        while not self._stop.is_set() and (left := until - time.monotonic()) > 0:
            acks: list[bytes] = []
            for kind, _, payload in self._take(left):
                if kind == "event":
                    self._event(payload)
                elif kind == "ack":
                    acks.append(payload)
            self._apply(acks)

    def _connection(self) -> bool:
        """One connection from connect to hang-up; True if the broker accepted it."""
        self._conn += 1
        link = self.options.link
        self.state = "connecting"
        client = new_client(link, will=(self.topic(topics.STATUS), messages.status("offline")))
        client.max_inflight_messages_set(self.options.window + 16)
        self._wire(client, self._conn)
        try:
            connect(client, link)
        except (OSError, ValueError) as e:
            self.failed(f"cannot connect to {link.address}: {e}", fatal=is_tls_failure(e))
            return False
        client.loop_start()
        session = Session(self, client, self._conn, time.monotonic() + CONNACK_TIMEOUT_S)
        try:
            return self._serve(session)
        finally:
            session.hang_up()

    def _wire(self, client: mqtt.Client, conn: int) -> None:
        put = self.inbox.put
        ack_topic = self.topic(topics.ACK)
        client.on_connect = lambda c, u, flags, rc, props: put(("connack", conn, rc))
        client.on_disconnect = lambda c, u, flags, rc, props: put(("gone", conn, rc))
        client.on_publish = lambda c, u, mid, rc, props: put(("puback", conn, (mid, rc)))
        client.on_subscribe = lambda c, u, mid, codes, props: put(("suback", conn, codes))
        client.on_message = lambda c, u, msg: put(
            ("ack", conn, msg.payload) if msg.topic == ack_topic else ("other", conn, None)
        )

    def _serve(self, session: Session) -> bool:
        over = False
        while not over and not self._stop.is_set():
            acks: list[bytes] = []  # a run of acks is applied at once: one watermark write
            for kind, conn, payload in self._take(session.timeout()):
                if kind == "ack":
                    acks.append(payload)
                    continue
                self._apply(acks)
                if kind == "event":
                    self._event(payload)
                elif conn == session.conn and not over:
                    over = not session.handle(kind, payload)
            self._apply(acks)
            over = over or not session.alive()
            if not over:
                session.pump()
        if not over:
            session.goodbye()
        return session.accepted

    def _take(self, timeout: float) -> list[tuple[str, int, Any]]:
        try:
            items = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(items) < 10_000:
            try:
                items.append(self.inbox.get_nowait())
            except queue.Empty:
                break
        return items

    def _event(self, event: Event) -> None:
        self.drained.clear()
        if event.get("kind") == Kind.EMERGENCY:
            self.alerts.append(event)

    def _apply(self, payloads: list[bytes]) -> None:
        if not payloads:
            return
        acks = [ack for payload in payloads if (ack := self.acks.admit(payload)) is not None]
        self.outbox.acknowledge(*self._epochs(acks))
        payloads.clear()
        self._check_drained()

    def _epochs(self, acks: list[Ack]) -> list[Ack]:
        """The acks that may move the watermark, after following the district's epoch: a
        new one rewinds the watermark to what that database holds (docs/protocol.md)."""
        store, kept = self.store, []
        for ack in acks:
            epoch = ack.epoch
            if epoch is None or epoch == store.epoch:
                kept.append(ack)
            elif epoch in store.epochs_left:
                log.warning("sync: ignoring an ack of district epoch %s, left before", epoch)
            elif store.epoch is None or ack.ack >= self.outbox.acked:
                self.watermark.adopt(epoch)  # first seen, or it holds all we know: no resend
                log.info("sync: the district's epoch is %s", epoch)
                kept.append(ack)
            else:
                self._rewind(ack.ack, epoch)
                kept.append(ack)
        return kept

    def _rewind(self, seq: int, epoch: str) -> None:
        """The district's database was restored or replaced: offer it again what it lacks."""
        was = self.outbox.acked  # the district's last word, maybe not saved yet
        self.watermark.rewind(seq, epoch)
        self.outbox.rewind(seq)
        self.drained.clear()
        lost = self.store.lost_between(seq + 1, was)
        note = {"from": was, "to": seq, "epoch": epoch, "lost": sum(r.size for r in lost)}
        try:
            self.store.append(
                Kind.NOTE,
                moment=datetime.now(UTC),
                clock=self.clock_state(),
                data={"district_epoch": note},
            )
        except StoreError as e:
            log.error("sync: cannot record the district's new epoch as a note: %s", e)

    def _saved(self) -> None:
        """The watermark thread made an ack durable: a status may be due now."""
        self._check_drained()
        self.inbox.put(("saved", 0, None))

    def _check_drained(self) -> None:
        if self.outbox.drained:
            self.drained.set()

    # -- what a session needs from the worker (sync.session.Owner) -----------------

    def connected(self) -> None:
        self.connections += 1
        self.acks.new_connection()
        self.state = "online"
        self.online_since = utc_text(datetime.now(UTC))
        self.last_error = self.fatal_error = None

    def failed(self, error: str, *, fatal: bool = False) -> None:
        self.last_error = error
        self.failures += 1
        if fatal:
            self.fatal_error = error
        log.error("sync: %s", error)

    def flush(self, timeout: float) -> bool:
        return self.watermark.flush(timeout)

    def status(self, state: str = "online") -> bytes:
        store = self.store
        return messages.status(
            state,
            time=utc_text(datetime.now(UTC)),
            pending=store.pending,
            last_seq=store.last_seq,
            acked=store.acked,
            acked_at=store.acked_at,
            clock=self.clock_state(),
            version=__version__,
            error=self.outbox.refused,
            acks_ignored=self.acks.total or None,
            name=self.options.name or None,
            region=self.options.region or None,
            since=self.online_since if state == "online" else None,
            oldest=self._oldest_unsent(),
            disk_free=_disk_free(store.data_dir),
            epoch=store.epoch,
            ack_v=messages.PROTOCOL,  # so that the district sends it acks with epochs
        )

    def _oldest_unsent(self) -> str | None:
        """The time of the oldest event the district has not acknowledged (None: none)."""
        if not self.store.pending:
            return None
        first = self.store.since(self.store.acked, limit=1)
        return first[0]["time"] if first else None

    def alert(self) -> tuple[int, bytes] | None:
        if not self.alerts:
            return None
        event = self.alerts[0]
        return event["seq"], encode(Batch.of(self.options.post, [self.outbox.outgoing(event)]))

    def alert_published(self) -> None:
        self.alerts.popleft()


def _disk_free(path: Path) -> int | None:
    """Free bytes on the SD card that holds the events (None if it cannot be read)."""
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _writable_dir(store: EventStore) -> Path | None:
    """Where the ignored-ack counts are kept: beside the events, unless the store is a view."""
    return None if store.read_only else store.data_dir

"""Simulated posts for bench/district.py: one worker process carries many posts over a few
MQTT connections, publishing signed-protocol batches (sync.codec) as a Pi does and checking
the district's signed acks (sync.acks.AckTrust) as a Pi does.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.payloads import events as make_events
from edge.events import Event
from sync import codec
from sync.acks import AckTrust
from sync.batch import Batch, PayloadError
from sync.messages import Ack
from sync.signing import PublicKey

POOL = 1000  # template events each worker copies (with its post and seq) into batches
ACK_TIMEOUT_S = 30.0  # as a Pi's sync.ack_timeout: what is unacknowledged is sent again


@dataclass
class Post:
    name: str
    client: mqtt.Client
    next_seq: int = 1
    acked: int = 0
    ready: list[bytes] = field(default_factory=list)  # pre-encoded batches, in seq order
    sent_at: dict[int, float] = field(default_factory=dict)  # batch's last seq -> time
    due: float = 0.0


class Worker:
    """Posts `names` on `clients` connections to the broker at `port`."""

    def __init__(self, port: int, names: list[str], clients: int, pub: str, verify: int) -> None:
        self.trust = AckTrust(keys=(PublicKey.from_file(pub),))
        self.verify_every = verify
        self.pool = make_events("pool", 1, POOL, 7)
        self.lock = threading.Lock()
        self.posts: dict[str, Post] = {}
        self.connections = [self._connect(port, f"{os.getpid()}-{i}") for i in range(clients)]
        for i, name in enumerate(names):
            self.posts[name] = Post(name, self.connections[i % clients])
        for c in self.connections:
            mine = [(f"posko/v1/{p.name}/ack", 1) for p in self.posts.values() if p.client is c]
            for at in range(0, len(mine), 100):
                done = threading.Event()
                c.on_subscribe = lambda *a, done=done: done.set()
                c.subscribe(mine[at : at + 100])
                if not done.wait(30):
                    raise RuntimeError("the simulated posts could not subscribe")
        self.interval = 0.0  # 0: send as soon as acknowledged (saturation)
        self.sending = False
        self.latencies: list[float] = []
        self.bad_acks = self.checked = self.encoded_late = 0
        self.last_ack = 0.0
        self.heap: list[tuple[float, str]] = []
        self.wake = threading.Condition(self.lock)
        threading.Thread(target=self._scheduler, daemon=True).start()

    def _connect(self, port: int, tag: str) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"posko-bench-{tag}", protocol=mqtt.MQTTv5
        )
        client.max_inflight_messages_set(0)  # many posts share it: no cap of its own
        client.max_queued_messages_set(0)
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        return client

    def batch(self, post: str, first: int, count: int) -> bytes:
        found = [self.pool[(seq - 1) % POOL] for seq in range(first, first + count)]
        copied = [Event(**{**e, "post": post, "seq": first + i}) for i, e in enumerate(found)]
        return codec.encode(Batch.of(post, copied))

    def prepare(self, per_post: int, batch_events: int) -> None:
        """Encode `per_post` batches of each post ahead, so the run costs little CPU."""
        for post in self.posts.values():
            seq = post.next_seq + batch_events * len(post.ready)
            for _ in range(per_post):
                post.ready.append(self.batch(post.name, seq, batch_events))
                seq += batch_events

    def _send(self, post: Post, size: int) -> None:
        if post.ready:
            payload = post.ready.pop(0)
        else:
            payload = self.batch(post.name, post.next_seq, size)
            self.encoded_late += 1
        post.next_seq += size
        post.sent_at[post.next_seq - 1] = time.perf_counter()
        post.client.publish(f"posko/v1/{post.name}/events", payload, qos=1)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.perf_counter()
        name = message.topic.split("/")[2]
        post = self.posts.get(name)
        try:
            ack = Ack.decode(bytes(message.payload))
        except PayloadError:
            ack = None
        if post is None or ack is None or ack.error:
            self.bad_acks += 1
            return
        self.checked += 1
        if self.checked % self.verify_every == 0 and self.trust.problem(ack, name) is not None:
            self.bad_acks += 1
            return
        with self.lock:
            self._acked(post, ack, now)

    def _acked(self, post: Post, ack: Ack, now: float) -> None:
        if ack.ack <= post.acked:
            return  # a retained or repeated ack
        post.acked = ack.ack
        self.last_ack = time.time()
        for last in [s for s in post.sent_at if s <= ack.ack]:
            self.latencies.append((now - post.sent_at.pop(last)) * 1000)
        if not self.sending or post.sent_at:
            return
        if self.interval == 0:
            self._send(post, self.size)
        else:
            post.due = max(post.due + self.interval, now)
            heapq.heappush(self.heap, (post.due, post.name))
            self.wake.notify()

    def _scheduler(self) -> None:
        with self.lock:
            while True:
                wait = self.heap[0][0] - time.perf_counter() if self.heap else 1.0
                if wait > 0:
                    self.wake.wait(min(wait, 1.0))
                    continue
                _, name = heapq.heappop(self.heap)
                if self.sending:
                    self._send(self.posts[name], self.size)

    def live(self, seconds: float, interval: float, size: int) -> dict[str, Any]:
        """Each post sends a batch as soon as its last is acknowledged (`interval` 0) or
        every `interval` s at most; for `seconds`; then what was sent is waited for."""
        cpu = time.process_time()
        with self.lock:
            self.latencies, self.interval, self.size, self.sending = [], interval, size, True
            start = time.perf_counter()
            for i, post in enumerate(self.posts.values()):
                post.due = start + (interval * i / len(self.posts))
                heapq.heappush(self.heap, (post.due, post.name))
            self.wake.notify()
        time.sleep(seconds)
        with self.lock:
            self.sending = False
            self.heap.clear()
            latencies = self.latencies
            self.latencies = []
        self._wait_acked(ACK_TIMEOUT_S)
        return {
            "latencies": latencies,
            "cpu_s": time.process_time() - cpu,
            "unacked": sum(len(p.sent_at) for p in self.posts.values()),
            "acked": {p.name: p.acked for p in self.posts.values()},
        }

    def _wait_acked(self, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while any(p.sent_at for p in self.posts.values()) and time.perf_counter() < deadline:
            time.sleep(0.01)

    def storm(self, backlog: int, size: int, limit_s: float) -> dict[str, Any]:
        """Every post sends its whole backlog at once (batches of `size`, as a Pi's window
        allows), sends again what is not acknowledged after ACK_TIMEOUT_S, until all are."""
        cpu = time.process_time()
        self.sending = False
        started, deadline = time.perf_counter(), time.perf_counter() + limit_s
        with self.lock:
            for post in self.posts.values():
                while post.ready:
                    self._send(post, size)
        resent = 0
        while time.perf_counter() < deadline:
            waiting = [p for p in self.posts.values() if p.acked < backlog]
            if not waiting:
                break
            if time.perf_counter() - started > ACK_TIMEOUT_S * (resent + 1):
                resent += 1
                with self.lock:
                    for post in waiting:
                        post.sent_at.clear()
                        post.next_seq = post.acked + 1
                        while post.next_seq <= backlog:
                            self._send(post, min(size, backlog - post.next_seq + 1))
            time.sleep(0.005)
        return {
            "last_ack": self.last_ack,
            "cpu_s": time.process_time() - cpu,
            "acked": {p.name: p.acked for p in self.posts.values()},
            "resent_rounds": resent,
        }

    def close(self) -> None:
        for client in self.connections:
            client.disconnect()
            client.loop_stop()


def serve(
    conn: Connection, port: int, names: list[str], clients: int, pub: str, verify: int
) -> None:
    """A worker process: runs the commands the bench sends over `conn`, answers each."""
    worker = Worker(port, names, clients, pub, verify)
    conn.send("ready")
    while True:
        command, args = conn.recv()
        if command == "prepare":
            worker.prepare(*args)
            conn.send("prepared")
        elif command == "live":
            conn.send(worker.live(*args))
        elif command == "storm":
            conn.send(worker.storm(*args))
        elif command == "stats":
            conn.send({"bad_acks": worker.bad_acks, "checked": worker.checked,
                       "encoded_late": worker.encoded_late})  # fmt: skip
        else:
            worker.close()
            conn.send("closed")
            return

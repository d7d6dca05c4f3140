"""The receiver's work, off paho's network thread: one queue per post, served round-robin by
a decode stage that charges each post the CPU its payloads cost, then one storage stage
that commits and only then publishes the ack. A slow or hostile post waits for its own
turn; the others, and the broker connection, do not wait for it. A post that sends faster
than its turn comes is muted at the broker (`district.muting`), so that its flood does not
even reach this process.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import cast

from district.muting import Muting
from district.receiver import Arrival, Receiver, Refusal, Reply, StatusUpdate, Work
from sync import topics

log = logging.getLogger(__name__)

PURGE_EVERY_S = 3600.0  # how often the district's retention runs (and once at start)
MAX_ACCOUNTS = 10_000  # posts whose credit is remembered (those in debt are never dropped)
STORE_AT_ONCE = 64  # checked messages the storage stage takes together (refusals: one commit)
_STOP = object()
# Told of each group once committed and answered: its works, their replies, seconds it took.
Observer = Callable[[Sequence[Work], Sequence[Reply | None], float], None]


@dataclass(frozen=True)
class IntakeLimits:
    """What may wait, and how the decode stage shares its time (docs/protocol.md)."""

    post_messages: int = 64  # queued per post; more are shed (the post sends them again)
    post_bytes: int = 8 << 20  # queued payload bytes per post
    total_bytes: int = 32 << 20  # queued payload bytes in all: the longest queue sheds first
    quantum_ms: float = 10.0  # decode CPU a post's turn may use before the next post's
    credit_ms: float = 100.0  # decode CPU a post may use in a burst (one costly payload)
    rate: float = 1.0  # decode CPU a post may use per second of time (1.0: a whole core)
    # After a refused payload a post is slowed down: its junk then costs the others at most
    # this share of the decode stage (so little that their p99 does not see it).
    penalty_rate: float = 0.002
    penalty_s: float = 60.0
    store_queue: int = 4  # checked messages waiting for the storage stage (a batch of
    # 10,000 events is about 10 MiB once decoded)
    refusal_replies_s: float = 1.0  # a post is told of refused batches this often at most
    mute_s: float = 60.0  # how long a post whose queue overflowed is muted at the broker
    # While the decode stage still has messages in hand, the storage stage waits this long
    # at most for them, so that they share one commit (group commit); 0: never waits.
    group_commit_ms: float = 20.0
    # The most checked messages stored in one transaction; 1: a commit per batch (the
    # behaviour before group commit, the baseline of bench/district.py).
    group_commit_max: int = STORE_AT_ONCE


@dataclass
class IntakeStats:
    received: int = 0  # messages handed over by the broker
    examined: int = 0  # messages decoded and checked
    shed: int = 0  # messages dropped unread because their post's queue was full
    mutes: int = 0  # times a post was muted at the broker
    refusals_unanswered: int = 0  # refused batches not answered (rate limit)
    slowest_ms: float = 0.0  # CPU of the costliest message to decode and check
    slowest_post: str = ""


class Intake:
    """start() it, put() from any thread (never blocks), close() it (idempotent): what is
    still queued then is dropped unanswered, and its posts send it again."""

    def __init__(
        self,
        receiver: Receiver,
        publish: Callable[[Reply], None],
        limits: IntakeLimits | None = None,
        *,
        muting: Muting | None = None,
        on_mute: Callable[[str, bool], None] | None = None,
        on_heard: Callable[[], None] = lambda: None,
        observe: Observer | None = None,
    ) -> None:
        self.receiver = receiver
        self.publish = publish
        self.limits = limits or IntakeLimits()
        # Without `on_mute` (nothing to unsubscribe) an overflowing post is only shed.
        self.muting = muting or Muting(mute_s=self.limits.mute_s)
        self.on_mute = on_mute
        self.on_heard = on_heard
        self.observe = observe  # told of each group committed (`district.metrics`)
        self.stats = IntakeStats()
        self._cond = threading.Condition()
        self._queues: dict[str, deque[tuple[str, bytes, float]]] = {}  # and when it came
        self._bytes: dict[str, int] = {}
        self._total = 0
        self._ring: deque[str] = deque()  # posts with messages waiting, in turn order
        self._ringed: set[str] = set()
        self._accounts: dict[str, _Account] = {}
        self._stored: queue.Queue[object] = queue.Queue(self.limits.store_queue)
        self._answered: dict[str, float] = {}  # post: when a refusal was last answered
        self._silenced: set[str] = set()  # muted posts: what still arrives is shed
        self._closed = False
        self._examining: str | None = None  # the post whose message the decode stage holds
        self._threads = [
            threading.Thread(target=self._decode_stage, name="district-decode", daemon=True),
            threading.Thread(target=self._storage_stage, name="district-store", daemon=True),
        ]

    def start(self) -> Intake:
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        decode, store = self._threads
        if decode.is_alive():
            decode.join(30)
        if store.is_alive():
            self._stored.put(_STOP)
            store.join(60)

    def __enter__(self) -> Intake:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the network thread ------------------------------------------------------------

    def put(self, topic: str, payload: bytes) -> None:
        """Queue a message under its post (the topic's); shed it if that queue is full, and
        then mute the post at the broker."""
        where = topics.parse(topic)
        key = where.post if where else ""  # every malformed topic shares one queue
        with self._cond:
            if self._closed:
                return
            self.stats.received += 1
            if key in self._silenced:  # in flight when the post was muted, or its status
                self.stats.shed += 1
                overflowed, statuses = None, where is None or where.leaf == topics.STATUS
            else:
                overflowed, statuses = self._queue(key, where, topic, payload), False
        if overflowed is not None:
            self._mute(overflowed)
        elif statuses and self.on_mute is not None and self.muting.lock():
            self.on_mute(key, True)  # a muted post floods its status: statuses are named too

    def _queue(
        self, key: str, where: topics.Topic | None, topic: str, payload: bytes
    ) -> str | None:
        """Queue or shed (the lock held); the post whose queue overflowed, if one did."""
        limits = self.limits
        waiting = self._queues.setdefault(key, deque())
        size = self._bytes.get(key, 0)
        if len(waiting) >= limits.post_messages or size + len(payload) > limits.post_bytes:
            self.stats.shed += 1
            return key
        if where is not None and where.leaf == topics.ALERT:
            waiting.appendleft((topic, payload, time.monotonic()))  # a Darurat goes first
        else:
            waiting.append((topic, payload, time.monotonic()))
        self._bytes[key] = size + len(payload)
        self._total += len(payload)
        overflowed = None
        while self._total > limits.total_bytes:
            overflowed = self._shed_longest()
        if key not in self._ringed:
            self._ring.append(key)
            self._ringed.add(key)
        self._cond.notify()
        return overflowed

    def _mute(self, key: str) -> None:
        """Mute a post whose queue overflowed, once per mute (the network thread)."""
        if self.on_mute is None or self.muting.is_muted(key):
            return
        if self.muting.mute(key):
            with self._cond:
                self.stats.mutes += 1
                self._silenced.add(key)
                self._ringed.discard(key)
                if key in self._ring:
                    self._ring.remove(key)
                dropped = self._queues.pop(key, deque())
                self.stats.shed += len(dropped)
                self._total -= self._bytes.pop(key, 0)
            self.on_mute(key, False)

    def unmuted(self, posts: set[str]) -> None:
        """The broker delivers these posts' messages again: queue them again."""
        with self._cond:
            self._silenced -= posts

    def _shed_longest(self) -> str:
        key = max(self._bytes, key=self._bytes.__getitem__)
        _, payload, _ = self._queues[key].pop()
        self._bytes[key] -= len(payload)
        self._total -= len(payload)
        self.stats.shed += 1
        return key

    # -- the decode stage ----------------------------------------------------------------

    def _decode_stage(self) -> None:
        while (key := self._next_turn()) is not None:
            spent = 0.0
            while spent < self.limits.quantum_ms and (message := self._take(key)) is not None:
                try:
                    spent += self._examine(key, *message)
                except Exception:  # never lose the stage to one message
                    log.exception("the decode stage failed on a message of %r", key)
            self._end_turn(key)

    def _next_turn(self) -> str | None:
        """The next post in turn that has credit left; waits while none has."""
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for _ in range(len(self._ring)):
                    key = self._ring[0]
                    if self._account(key).credit_at(now, self.limits) > 0:
                        self._ring.popleft()
                        self._ringed.discard(key)
                        return key
                    self._ring.rotate(-1)
                waits = [self._account(k).ready_in(self.limits) for k in self._ring]
                self._cond.wait(min(waits, default=None))
            return None

    def _take(self, key: str) -> tuple[str, bytes, float] | None:
        """The post's next message, while its turn and its credit last."""
        with self._cond:
            waiting = self._queues.get(key)
            if self._closed or not waiting:
                return None
            if self._account(key).credit_at(time.monotonic(), self.limits) <= 0:
                return None
            topic, payload, arrived = waiting.popleft()
            self._examining = key
            self._bytes[key] -= len(payload)
            self._total -= len(payload)
            return topic, payload, arrived

    def _end_turn(self, key: str) -> None:
        with self._cond:
            if self._queues.get(key):
                if key not in self._ringed:
                    self._ring.append(key)
                    self._ringed.add(key)
            else:  # an idle post keeps no queue
                self._queues.pop(key, None)
                self._bytes.pop(key, None)

    def _account(self, key: str) -> _Account:
        account = self._accounts.get(key)
        if account is None:
            if len(self._accounts) >= MAX_ACCOUNTS:  # forget the posts in good standing
                now = time.monotonic()
                self._accounts = {k: a for k, a in self._accounts.items() if a.owes(now)}
            account = self._accounts[key] = _Account(self.limits.credit_ms, time.monotonic())
        return account

    def _examine(self, key: str, topic: str, payload: bytes, arrived: float) -> float:
        """Decode and check one message, charge its post the CPU it cost; that cost (ms)."""
        started = time.thread_time()
        work = self.receiver.examine(topic, payload)
        cost = (time.thread_time() - started) * 1000
        if isinstance(work, Arrival):
            work = replace(work, arrived=arrived)  # for the ack latency
        heard = isinstance(work, Arrival | StatusUpdate) and self.muting.hear([work_post(work)])
        if heard and self.on_mute is not None:
            self.on_heard()  # a new post, while the posts are named: name it too
        with self._cond:
            self._account(key).charge(cost, isinstance(work, Refusal), self.limits)
            self.stats.examined += 1
            if cost > self.stats.slowest_ms:
                self.stats.slowest_ms, self.stats.slowest_post = cost, key
        if work is not None:
            self._stored.put(work)  # waits while the storage stage is behind
        with self._cond:
            self._examining = None
        return cost

    # -- the storage stage ---------------------------------------------------------------

    def _storage_stage(self) -> None:
        purged = float("-inf")
        while True:
            if time.monotonic() - purged >= PURGE_EVERY_S:
                purged = time.monotonic()
                self.receiver.purge()
            try:
                items = [self._stored.get(timeout=PURGE_EVERY_S)]
            except queue.Empty:
                continue
            self._gather(items)
            try:
                self._store([cast(Work, item) for item in items if item is not _STOP])
            except Exception:  # never lose the stage to one batch
                log.exception("the storage stage failed")
            if any(item is _STOP for item in items):
                return

    def _gather(self, items: list[object]) -> None:
        """Add to `items` what is waiting, and what the decode stage still has in hand of
        other posts within `group_commit_ms` of the first, up to `group_commit_max`."""
        deadline = time.monotonic() + self.limits.group_commit_ms / 1000
        posts = {_post_of(item) for item in items}
        while len(items) < self.limits.group_commit_max and items[-1] is not _STOP:
            try:
                items.append(self._stored.get_nowait())
                posts.add(_post_of(items[-1]))
                continue
            except queue.Empty:
                pass
            left = deadline - time.monotonic()
            if left <= 0 or not self._more_coming(posts):
                return
            with contextlib.suppress(queue.Empty):  # short waits: the decode stage may run dry
                items.append(self._stored.get(timeout=min(left, 0.002)))

    def _more_coming(self, posts: set[str]) -> bool:
        """Whether the decode stage holds or has waiting a message of a post in good
        standing other than `posts`: a post whose payloads were refused never delays the
        others' acks, and a post's own next batch never delays its ack (its window of
        batches in flight would stall)."""
        now = time.monotonic()
        with self._cond:
            if self._closed:
                return False
            held = self._examining
            if held is not None and held not in posts:
                return not self._account(held).penalized_at(now)
            return any(
                key not in posts and not self._account(key).penalized_at(now) for key in self._ring
            )

    def _store(self, works: list[Work]) -> None:
        """Store together what is waiting (the refusals in one transaction), then answer."""
        if not works:
            return
        now = time.monotonic()
        replies = self.receiver.store(works)
        took = time.monotonic() - now
        for work, reply in zip(works, replies, strict=True):
            if reply is None:
                continue
            if isinstance(work, Refusal):
                post = work.rejected.post or ""
                if now - self._answered.get(post, float("-inf")) < self.limits.refusal_replies_s:
                    self.stats.refusals_unanswered += 1
                    continue
                if len(self._answered) >= MAX_ACCOUNTS:
                    self._answered.clear()
                self._answered[post] = now
            self.publish(reply)
        if self.observe is not None:
            self.observe(works, replies, took)


def _post_of(item: object) -> str:
    """The post a stored item came from ("" for none: refusals of a bad topic, _STOP)."""
    if isinstance(item, Arrival | StatusUpdate):
        return work_post(item)
    return (item.rejected.post or "") if isinstance(item, Refusal) else ""


def work_post(work: Arrival | StatusUpdate) -> str:
    return work.batch.post if isinstance(work, Arrival) else work.post


@dataclass
class _Account:
    """A post's decode credit in ms of CPU: spent by its payloads, earned back with time."""

    credit: float
    at: float  # when `credit` was last brought up to date
    penalized_until: float = float("-inf")

    def penalized_at(self, now: float) -> bool:
        return now < self.penalized_until

    def rate(self, now: float, limits: IntakeLimits) -> float:
        return limits.penalty_rate if now < self.penalized_until else limits.rate

    def credit_at(self, now: float, limits: IntakeLimits) -> float:
        earned = (now - self.at) * 1000 * self.rate(now, limits)
        self.credit, self.at = min(self.credit + earned, limits.credit_ms), now
        return self.credit

    def ready_in(self, limits: IntakeLimits) -> float:
        """Seconds until the credit is positive again (at the rate it earns now)."""
        rate = max(self.rate(self.at, limits) * 1000, 1e-3)
        return max(-self.credit / rate, 0.0) + 0.001

    def charge(self, cost: float, refused: bool, limits: IntakeLimits) -> None:
        now = time.monotonic()
        self.credit_at(now, limits)
        self.credit -= cost
        if refused:
            self.penalized_until = now + limits.penalty_s
            self.credit = min(self.credit, 0.0)

    def owes(self, now: float) -> bool:
        return self.credit < 0 or now < self.penalized_until

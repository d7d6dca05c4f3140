"""The district's handling of one MQTT message: check it, store it, and say what to answer.

No MQTT here (`district.server` does the talking), so every rule can be tested with plain
calls. A bad payload is quarantined with its reason and the post is told; input never
crashes the receiver, and a batch is stored whole or not at all.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from district import retention
from district.epoch import Epoch, as_handle
from district.retention import Now, Retention
from district.storage import QuarantineLimits, Rejected, Storage, StorageError, Stored
from edge.events import utc_text
from sync import codec, topics
from sync.batch import Batch, PayloadError, check_lost
from sync.messages import EPOCH_SINCE, PROTOCOL, Ack, parse_status
from sync.signing import Signer

log = logging.getLogger(__name__)

QUIET_S = 10.0  # a post's refused payloads are logged once in this many seconds at most
MAX_LOGGED_POSTS = 10_000


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
    quarantined_by: Counter[str] = field(default_factory=Counter)  # by `refusal_kind`


@dataclass(frozen=True)
class Arrival:
    """A batch or alert that passed every check, ready to store (`payload` is kept for the
    quarantine, should storing it hit a bug; `arrived`: monotonic time it reached us)."""

    topic: str
    batch: Batch
    alert: bool
    payload: bytes
    arrived: float = 0.0


@dataclass(frozen=True)
class StatusUpdate:
    post: str
    status: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """A payload to quarantine; `tell`: answer its post with the reason."""

    rejected: Rejected
    tell: bool


Work = Arrival | StatusUpdate | Refusal


def _epoch_readers(storage: Storage) -> set[str]:
    """The posts whose last status says they read acks with epochs."""
    try:
        rows = storage.posts()
    except StorageError:  # learnt again from their statuses
        return set()
    return {r["post"] for r in rows if reads_epochs(r.get("status") or {})}


def reads_epochs(status: dict[str, Any]) -> bool:
    """Whether a post's status shows software that reads acks with an epoch."""
    return "epoch" in status or status.get("ack_v", 2) >= EPOCH_SINCE


class Receiver:
    """Two stages, so that a caller can run them in different threads (`district.intake`):
    `examine` decodes and checks without touching the storage, `store` writes and says what
    to answer once committed; `handle` runs both. `signer` signs every ack
    (docs/protocol.md); without it acks go unsigned, and posts believe them only with
    `mqtt.insecure_acks`."""

    def __init__(
        self,
        storage: Storage,
        *,
        max_payload: int = codec.MAX_PAYLOAD,
        signer: Signer | None = None,
        quarantine: QuarantineLimits | None = None,
        keep: Retention | None = None,
    ) -> None:
        self.storage = storage
        self.retention = keep or Retention()
        self.max_payload = max_payload
        self.signer = signer
        self.limits = quarantine or QuarantineLimits()
        self.stats = ReceiverStats()
        handle = as_handle(storage)  # its epoch goes into every ack (district.epoch)
        self.epoch = None if handle is None else Epoch(handle)
        # Posts whose software reads version 3 acks (with an epoch); the others get version
        # 2 acks, which they can verify: a district upgraded first must not stall them.
        self._reads_epochs = _epoch_readers(storage)
        self._logged: dict[str, tuple[float, int]] = {}  # post: last log line, lines skipped
        self._kept: dict[str, float] = {}  # post: when a refused payload of it was last kept

    def handle(self, topic: str, payload: bytes) -> Reply | None:
        """Check and store one message; the reply to publish after the commit, if any."""
        work = self.examine(topic, payload)
        return None if work is None else self.store([work])[0]

    # -- stage 1: decode and check, no storage ----------------------------------------

    def examine(self, topic: str, payload: bytes) -> Work | None:
        """What a message asks for, checked in full; never raises."""
        where = topics.parse(topic)
        try:
            if where is None:
                raise PayloadError("not a posko/v1/<post>/events|alert|status topic")
            if where.leaf == topics.STATUS:
                return StatusUpdate(where.post, parse_status(payload)) if payload else None
            if where.leaf not in (topics.EVENTS, topics.ALERT):
                return None
            batch = self._batch(where.post, payload)
            return Arrival(topic, batch, where.leaf == topics.ALERT, payload)
        except PayloadError as e:  # its reason goes to the log, the page and the post
            reason, tell = (
                printable(e.reason, 500),
                where is not None and where.leaf == topics.EVENTS,
            )
            return Refusal(Rejected(topic, where.post if where else None, reason, payload), tell)
        except Exception as e:  # a bug must not stop the district; keep the payload
            log.exception("unexpected error on %s", printable(topic))
            reason = printable(f"unexpected error: {e}", 500)
            return Refusal(Rejected(topic, None, reason, payload), tell=False)

    def _batch(self, post: str, payload: bytes) -> Batch:
        batch = codec.decode(payload, self.max_payload)
        if batch.post != post:
            raise PayloadError(f"a batch of post {batch.post!r} on the topic of post {post!r}")
        check_lost(batch)  # every lost seq listed with its reason, and not too many
        return batch

    # -- stage 2: store, then say what to answer ---------------------------------------

    def store(self, works: Sequence[Work]) -> list[Reply | None]:
        """Store what `works` carry: the refusals in one transaction, the batches of every
        post in one more (group commit), then each status; for each, the reply to publish
        now that it is committed."""
        self._quarantine([w.rejected for w in works if isinstance(w, Refusal)])
        arrivals = [w for w in works if isinstance(w, Arrival)]
        grouped = iter(self._arrivals(arrivals))  # in the order of `works`
        return [next(grouped) if isinstance(w, Arrival) else self._store(w) for w in works]

    def _arrivals(self, arrivals: list[Arrival]) -> list[Reply | None]:
        """Store the batches in one transaction; their acks, or none if it failed."""
        if len(arrivals) < 2:
            return [self._store(work) for work in arrivals]
        try:
            stored = self.storage.store_batches([(w.batch, w.alert) for w in arrivals])
        except StorageError as e:  # not the payloads' fault: no ack, the posts send again
            self.stats.db_errors += 1
            log.error("district database error (%d batches): %s", len(arrivals), e)
            return [None] * len(arrivals)
        except Exception:  # a bug: each batch by itself, so that only its payload is kept
            log.exception("unexpected error while storing a group; storing one by one")
            return [self._store(work) for work in arrivals]
        return [self._answer(w.batch, w.alert, s) for w, s in zip(arrivals, stored, strict=True)]

    def purge(self, now: Now | None = None) -> dict[str, int]:
        """One retention round over the storage (`district.retention`)."""
        return retention.purge(self.storage, self.retention, now)

    def _store(self, work: Work) -> Reply | None:
        try:
            if isinstance(work, Refusal):
                return self._refused(work)
            if isinstance(work, StatusUpdate):
                self.storage.record_status(work.post, work.status)
                self.stats.statuses += 1
                if reads_epochs(work.status):
                    self._reads_epochs.add(work.post)
                else:
                    self._reads_epochs.discard(work.post)
                return self._epoch_news(work)
            return self._arrived(work.batch, work.alert)
        except StorageError as e:  # not the payload's fault: no ack, the post sends again
            self.stats.db_errors += 1
            log.error("district database error: %s", e)
        except Exception as e:  # a bug must not stop the district; keep the payload
            log.exception("unexpected error while storing")
            if isinstance(work, Arrival):
                reason = printable(f"unexpected error: {e}", 500)
                self._quarantine([Rejected(work.topic, None, reason, work.payload)])
        return None

    def _refused(self, work: Refusal) -> Reply | None:
        post = work.rejected.post
        if not work.tell or post is None:
            return None
        ack = Ack(self.storage.contiguous(post), error=work.rejected.reason)
        return self._reply(post, ack, retain=False)

    def _arrived(self, batch: Batch, alert: bool) -> Reply | None:
        return self._answer(batch, alert, self.storage.store_batch(batch, alert=alert))

    def _answer(self, batch: Batch, alert: bool, stored: Stored) -> Reply | None:
        """Log and count a committed batch; its ack (none for an alert)."""
        for lost in batch.declared:
            log.warning(
                "post %s declares seqs %d-%d lost on the Pi (%s)",
                batch.post,
                lost.first,
                lost.last,
                lost.reason,
            )
        self._count(stored.inserted, len(batch.events), alert)
        if alert:
            log.warning("EMERGENCY (Darurat) at post %s: event %d", batch.post, batch.last)
            return None
        return self._reply(batch.post, Ack(stored.contiguous, batch.first, batch.last))

    def _epoch_news(self, work: StatusUpdate) -> Reply | None:
        """A post that does not know this database's epoch gets its ack (what this database
        holds of it), so that it rewinds if the database was restored (docs/protocol.md)."""
        if self.epoch is None or "acked" not in work.status:
            return None
        held = self.storage.contiguous(work.post)
        restored = self.epoch.heard(work.post, work.status, held)
        if not restored and work.status.get("epoch") in (None, self.epoch.value):
            return None  # it knows this epoch, or is too old to follow one
        return self._reply(work.post, Ack(held))

    def _reply(self, post: str, ack: Ack, retain: bool = True) -> Reply:
        """The ack for `post`, signed when the receiver has a key."""
        new = post in self._reads_epochs
        if self.epoch is not None and new:
            ack = replace(ack, epoch=self.epoch.value)
        if self.signer is not None:
            version = PROTOCOL if new else EPOCH_SINCE - 1
            ack = ack.signed_by(self.signer, post, utc_text(datetime.now(UTC)), version)
        return Reply(topics.topic(post, topics.ACK), ack.encode(), retain=retain)

    def _count(self, inserted: int, events: int, alert: bool) -> None:
        self.stats.batches += 1
        self.stats.events += inserted
        self.stats.duplicates += events - inserted
        self.stats.alerts += int(alert)

    def _quarantine(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        self.stats.quarantined += len(rejected)
        now = time.monotonic()
        for i, r in enumerate(rejected):
            self._log_refusal(r)
            self.stats.quarantined_by[refusal_kind(r.reason)] += 1
            key = r.post or ""
            if now - self._kept.get(key, float("-inf")) < self.limits.every_s:
                rejected[i] = replace(r, keep=False)  # a flood: counted, not kept
            else:
                self._kept[key] = now
        if len(self._kept) >= MAX_LOGGED_POSTS:
            self._kept.clear()
        try:
            self.storage.quarantine(rejected, self.limits)
        except StorageError as e:
            self.stats.db_errors += 1
            log.error("cannot quarantine %d payload(s): %s", len(rejected), e)

    def _log_refusal(self, r: Rejected) -> None:
        """One line per post every QUIET_S at most, so that a flood cannot flood the log."""
        now, key = time.monotonic(), r.post or ""
        last, skipped = self._logged.get(key, (float("-inf"), 0))
        if now - last < QUIET_S:
            self._logged[key] = (last, skipped + 1)
            return
        if len(self._logged) >= MAX_LOGGED_POSTS:
            self._logged.clear()
        more = f" (and {skipped} more from this post since the last line)" if skipped else ""
        log.warning(
            "quarantined a payload on %s (%d bytes): %s%s",
            printable(r.topic, 120),
            len(r.payload),
            printable(r.reason, 500),
            more,
        )
        self._logged[key] = (now, 0)


# A refusal's kind, a bounded label for the metrics: (kind, reason starts with, or holds).
REFUSAL_KINDS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("topic", ("not a posko/v1/",), ()),
    ("unexpected", ("unexpected error",), ()),
    ("wrong_post", ("a batch of post ",), ()),
    ("too_large", (), ("larger than", "too large", "inflates beyond")),
    ("lost", ("lost ",), ("declared lost",)),
    ("status", ("status ",), ()),
    ("version", (), ("is unknown here",)),
)


def refusal_kind(reason: str) -> str:
    """The kind of a refused payload's reason (`malformed` when none fits): a few fixed
    words, never text that a post chose."""
    for kind, starts, holds in REFUSAL_KINDS:
        if reason.startswith(starts) or any(mark in reason for mark in holds):
            return kind
    return "malformed"


def printable(text: str, limit: int = 200) -> str:
    """`text` fit for one log line: every control, format, separator or surrogate character
    escaped (a newline cannot forge a line, NUL and lone surrogates never reach the log),
    then cut to at most `limit` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[: limit * 2])
    return text if len(text) <= limit else text[: limit - 3] + "..."

"""The post's check of every ack before it may move the watermark: signed by a district key
the post pins, for this post, and claiming nothing beyond what the post ever sent.

An ack that fails is ignored, counted by reason, logged once per connection and reason,
and the counts are kept in `DATA/acks_ignored.json` for `posko status` and the guard's screen.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.events import utc_text
from edge.journal import atomic_write
from sync.batch import PayloadError, SyncError
from sync.messages import SIGNED_VERSIONS, Ack
from sync.signing import PublicKey

log = logging.getLogger(__name__)

# Why an ack was ignored, in the order they are checked.
REASONS = {
    "malformed": "it is not an ack",
    "unsigned": "it is not signed",
    "unknown_key": "it is signed by a key this post does not pin (mqtt.district_keys)",
    "bad_signature": "its signature does not hold",
    "other_post": "it is for another post",
    "beyond_last_seq": "it claims more than this post ever sent",
}
FILE = "acks_ignored.json"
SAVE_EVERY_S = 30.0  # an ack flood must not become an SD-card write flood
NO_KEYS = (
    "sync is off: no district key to check acks with; install the district's district.pub "
    "and list it in mqtt.district_keys (or set mqtt.insecure_acks = true for a demo)"
)


class AcksUntrusted(SyncError):
    """Sync cannot start: the post has no district key and insecure acks are not allowed."""


@dataclass(frozen=True)
class AckTrust:
    """The district keys a post pins, and whether unsigned acks are tolerated (demos only)."""

    keys: tuple[PublicKey, ...] = ()
    insecure: bool = False

    def refusal(self) -> str | None:
        """Why sync must not start with this trust, or None."""
        return None if self.keys or self.insecure else NO_KEYS

    def require(self) -> None:
        """Raise AcksUntrusted (one line saying what to do) if sync must not start."""
        refusal = self.refusal()
        if refusal is not None:
            raise AcksUntrusted(refusal)

    def problem(self, ack: Ack, post: str) -> str | None:
        """The reason (a key of REASONS) this ack is not the district's word, or None."""
        key = next((k for k in self.keys if k.key_id == ack.key), None)
        if ack.sig is None or ack.key is None:
            if not self.insecure:
                return "unsigned"
        elif key is None:
            if not self.insecure:
                return "unknown_key"
        elif ack.v not in SIGNED_VERSIONS or not key.verify(ack.signed_bytes(), ack.sig):
            return "bad_signature"
        if ack.post is not None and ack.post != post:
            return "other_post"
        if (ack.sig is not None or not self.insecure) and ack.post is None:
            return "other_post"  # a signature that names no post could be any post's
        return None


class AckGate:
    """Admits the acks a post may act on; counts and reports the others."""

    def __init__(
        self,
        post: str,
        trust: AckTrust,
        last_seq: Callable[[], int],
        data_dir: Path | None = None,
    ) -> None:
        self.post = post
        self.trust = trust
        self.last_seq = last_seq
        self.path = None if data_dir is None else data_dir / FILE
        saved = read_ignored(data_dir) if data_dir is not None else {}
        self.counts: dict[str, int] = dict(saved.get("counts", {}))
        self.last: dict[str, Any] | None = saved.get("last")
        self._logged: set[str] = set()
        self._dirty = False
        self._saved_at = 0.0
        self._lock = threading.Lock()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def new_connection(self) -> None:
        """Each reason is logged again once on the next connection."""
        self._logged.clear()

    def admit(self, payload: bytes) -> Ack | None:
        """The ack in `payload` if the post may act on it; None (counted) otherwise."""
        try:
            ack = Ack.decode(payload)
        except PayloadError as e:
            self._ignore("malformed", e.reason)
            return None
        reason = self.trust.problem(ack, self.post)
        if reason is None and max(ack.ack, ack.last or 0) > self.last_seq():
            reason = "beyond_last_seq"
        if reason is not None:
            self._ignore(reason, _describe(ack))
            return None
        return ack

    def _ignore(self, reason: str, detail: str) -> None:
        with self._lock:
            self.counts[reason] = self.counts.get(reason, 0) + 1
            self.last = {"reason": reason, "time": utc_text(datetime.now(UTC)), "ack": detail}
            self._dirty = True
            first = reason not in self._logged
            self._logged.add(reason)
        if first:
            log.warning(
                "sync: ignoring an ack (%s) because %s; further ones are only counted "
                "until the next connection",
                detail,
                REASONS[reason],
            )
        self.save(force=first)

    def save(self, force: bool = False) -> None:
        """Keep the counts for `posko status` (at most every SAVE_EVERY_S unless `force`)."""
        with self._lock:
            now = time.monotonic()
            if self.path is None or not self._dirty:
                return
            if not force and now - self._saved_at < SAVE_EVERY_S:
                return
            self._dirty, self._saved_at = False, now
            doc = {"counts": dict(self.counts), "last": self.last}
        try:
            atomic_write(self.path, json.dumps(doc).encode())
        except OSError as e:
            log.error("cannot save %s: %s", self.path, e)

    def close(self) -> None:
        self.save(force=True)

    def summary(self) -> dict[str, Any]:
        """What `posko status` and the guard's screen show."""
        return summary({"counts": self.counts, "last": self.last})


def read_ignored(data_dir: Path) -> dict[str, Any]:
    """The saved counts of ignored acks of a data directory ({} when there are none)."""
    try:
        doc = json.loads((data_dir / FILE).read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        log.warning("%s is unreadable; ignored acks are counted again from 0", data_dir / FILE)
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("counts"), dict):
        return {}
    counts = {
        k: v
        for k, v in doc["counts"].items()
        if k in REASONS and isinstance(v, int) and not isinstance(v, bool) and v > 0
    }
    last = doc.get("last") if isinstance(doc.get("last"), dict) else None
    return {"counts": counts, "last": last}


def summary(saved: dict[str, Any]) -> dict[str, Any]:
    counts = dict(saved.get("counts", {}))
    return {"total": sum(counts.values()), "by_reason": counts, "last": saved.get("last")}


def _describe(ack: Ack) -> str:
    """A short, log-safe description of an ack (its numbers and post, never free text)."""
    span = f" for {ack.first}-{ack.last}" if ack.first is not None else ""
    post = f" of post {ack.post}" if ack.post is not None else ""
    return f"ack {ack.ack}{span}{post}"

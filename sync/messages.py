"""The small JSON messages of the protocol: the district's cumulative ack and a post's status.

They are rare (one ack per batch, a status now and then), so they stay readable with
`mosquitto_sub` rather than squeezed like batches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sync.batch import MAX_SEQ, PayloadError

STATUS_KEYS = {
    "v",
    "state",
    "time",
    "pending",
    "last_seq",
    "acked",
    "acked_at",
    "clock",
    "version",
    "error",
}
MAX_STATUS_BYTES = 2048


@dataclass(frozen=True)
class Ack:
    """`ack`: the highest seq up to which the district holds every event of the post.
    `first`/`last`: the range of the batch this ack answers (absent for a bare ack);
    `error`: why that batch was refused, if it was."""

    ack: int
    first: int | None = None
    last: int | None = None
    error: str | None = None

    def encode(self) -> bytes:
        doc = {
            k: v
            for k, v in (
                ("ack", self.ack),
                ("first", self.first),
                ("last", self.last),
                ("error", self.error),
            )
            if v is not None
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        try:
            doc = json.loads(payload)
        except ValueError:
            raise PayloadError("ack is not JSON") from None
        if not isinstance(doc, dict) or not _seq(doc.get("ack"), zero=True):
            raise PayloadError("ack has no seq")
        first, last, error = doc.get("first"), doc.get("last"), doc.get("error")
        if (first is None) != (last is None) or (
            first is not None and not (_seq(first) and _seq(last) and first <= last)
        ):
            raise PayloadError("ack names a bad range")
        if error is not None and not isinstance(error, str):
            raise PayloadError("ack error is not text")
        return cls(doc["ack"], first, last, error)


def status(state: str, **fields: Any) -> bytes:
    """A post's retained status: "online" with its figures, or "offline" (the last will)."""
    doc = {"v": 1, "state": state, **{k: v for k, v in fields.items() if v is not None}}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def parse_status(payload: bytes) -> dict[str, Any]:
    """A status as the district keeps it; PayloadError if it is not one."""
    if len(payload) > MAX_STATUS_BYTES:
        raise PayloadError(f"status of {len(payload)} bytes is too large")
    try:
        doc = json.loads(payload)
    except ValueError:
        raise PayloadError("status is not JSON") from None
    if not isinstance(doc, dict) or doc.get("state") not in ("online", "offline"):
        raise PayloadError("status has no online/offline state")
    for key in ("pending", "last_seq", "acked"):
        if key in doc and not _seq(doc[key], zero=True):
            raise PayloadError(f"status {key} is not a count")
    return {k: v for k, v in doc.items() if k in STATUS_KEYS}


def _seq(value: Any, zero: bool = False) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (0 if zero else 1) <= value <= MAX_SEQ
    )

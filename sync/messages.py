"""The small JSON messages of the protocol: the district's cumulative ack and a post's status.

They are rare (one ack per batch, a status now and then), so they stay readable with
`mosquitto_sub` rather than squeezed like batches.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from sync.batch import MAX_SEQ, PayloadError
from sync.signing import Signer
from sync.topics import POST_ID

PROTOCOL = 3  # docs/protocol.md; the topics keep their `posko/v1/` prefix
SIGNED_VERSIONS = (2, 3)  # acks a post still verifies: 2 has no epoch, 3 signs it
EPOCH_SINCE = 3  # the first ack version that names the district's epoch
ACK_TAG = "posko-ack"  # first item of the signed bytes: a signature means nothing elsewhere
MAX_ACK_BYTES = 4096
MAX_ERROR_CHARS = 500
KEY_ID = re.compile(r"^[0-9a-f]{16}$")
EPOCH = re.compile(r"^[0-9a-f]{32}$")  # 128 random bits (district.epoch)
TIME_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")

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
    "acks_ignored",
    "name",
    "region",
    "since",
    "oldest",
    "disk_free",
    "epoch",
    "ack_v",  # the newest ack version the post reads (absent: 2, software before epochs)
}
MAX_STATUS_BYTES = 2048
STATUS_TIMES = ("time", "acked_at", "since", "oldest")
STATUS_TEXTS = {"name": 80, "version": 32, "clock": 16}  # text fields and their longest
REGION = re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")  # Kemendagri PP.KK.CC.DDDD
MAX_DISK_BYTES = 2**53  # far above any SD card, and exact in JSON


@dataclass(frozen=True)
class Ack:
    """`ack`: the highest seq up to which the district holds every event of the post.
    `first`/`last`: the range of the batch this ack answers (absent for a bare ack);
    `error`: why that batch was refused, if it was. A signed ack also names its `post`,
    the `time` the district signed it, the `key` id and the Ed25519 signature `sig` over
    `signed_bytes()`; `v` is the protocol version (1 for an old district's unsigned ack).
    `epoch` (version 3 on): the district database's epoch, renewed when it is restored."""

    ack: int
    first: int | None = None
    last: int | None = None
    error: str | None = None
    post: str | None = None
    time: str | None = None
    key: str | None = None
    sig: bytes | None = None
    v: int = PROTOCOL
    epoch: str | None = None

    def signed_bytes(self) -> bytes:
        """The canonical bytes the district signs and the post checks: a compact JSON array
        (ASCII only) of the tag, the protocol version, post, ack, first, last, error, key id
        and time, absent values as null, then (version 3 on) the epoch. Defined here only;
        both ends import it."""
        fields = [
            ACK_TAG,
            self.v,
            self.post,
            self.ack,
            self.first,
            self.last,
            self.error,
            self.key,
            self.time,
        ]
        if self.v >= EPOCH_SINCE:  # a version 2 ack keeps its bytes, so it still verifies
            fields.append(self.epoch)
        return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode()

    def signed_by(self, signer: Signer, post: str, time: str, version: int = PROTOCOL) -> Ack:
        """This ack for `post`, stamped with `time` and signed by the district's key, as
        ack `version` (2: for a post whose software predates epochs, without one)."""
        epoch = self.epoch if version >= EPOCH_SINCE else None
        unsigned = replace(
            self, post=post, time=time, key=signer.key_id, sig=None, v=version, epoch=epoch
        )
        return replace(unsigned, sig=signer.sign(unsigned.signed_bytes()))

    def encode(self) -> bytes:
        doc = {
            k: v
            for k, v in (
                ("v", self.v),
                ("post", self.post),
                ("ack", self.ack),
                ("first", self.first),
                ("last", self.last),
                ("error", self.error),
                ("t", self.time),
                ("key", self.key),
                ("epoch", self.epoch),
                ("sig", None if self.sig is None else base64.b64encode(self.sig).decode()),
            )
            if v is not None
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Ack:
        """The ack in a payload, its shape checked (not its signature: `sync.acks` does)."""
        if len(payload) > MAX_ACK_BYTES:
            raise PayloadError(f"ack of {len(payload)} bytes is too large")
        try:
            doc = json.loads(payload)
        except (ValueError, RecursionError):
            raise PayloadError("ack is not JSON") from None
        if not isinstance(doc, dict) or not _seq(doc.get("ack"), zero=True):
            raise PayloadError("ack has no seq")
        first, last, error = doc.get("first"), doc.get("last"), doc.get("error")
        if (first is None) != (last is None) or (
            first is not None and not (_seq(first) and _seq(last) and first <= last)
        ):
            raise PayloadError("ack names a bad range")
        if error is not None and not (isinstance(error, str) and len(error) <= MAX_ERROR_CHARS):
            raise PayloadError("ack error is not a short text")
        return cls(doc["ack"], first, last, error, *_signature_fields(doc), _epoch(doc))


def _signature_fields(
    doc: dict[str, Any],
) -> tuple[str | None, str | None, str | None, bytes | None, int]:
    """post, time, key id, signature and version of an ack document, each checked."""
    post, time, key, sig, v = (doc.get(k) for k in ("post", "t", "key", "sig", "v"))
    if post is not None and not (isinstance(post, str) and POST_ID.fullmatch(post)):
        raise PayloadError("ack names a bad post id")
    if time is not None and not (isinstance(time, str) and TIME_TEXT.fullmatch(time)):
        raise PayloadError("ack time is not UTC text")
    if key is not None and not (isinstance(key, str) and KEY_ID.fullmatch(key)):
        raise PayloadError("ack key id is not 16 hex digits")
    if v is None:
        v = 1  # an old district's ack
    elif not _seq(v):
        raise PayloadError("ack version is not a number")
    signature = None
    if sig is not None:
        try:
            signature = base64.b64decode(sig, validate=True) if isinstance(sig, str) else b""
        except (binascii.Error, ValueError):
            signature = b""
        if len(signature) != 64:
            raise PayloadError("ack signature is not 64 bytes of base64")
    return post, time, key, signature, v


def _epoch(doc: dict[str, Any]) -> str | None:
    """The ack's epoch: only a version 3 ack signs one, so an older one may not carry it."""
    epoch = doc.get("epoch")
    if epoch is None:
        return None
    if not (isinstance(epoch, str) and EPOCH.fullmatch(epoch)):
        raise PayloadError("ack epoch is not 32 hex digits")
    v = doc.get("v")
    if not (isinstance(v, int) and _seq(v) and v >= EPOCH_SINCE):
        raise PayloadError("ack epoch needs version 3")  # else it would ride an unsigned field
    return epoch


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
    if "ack_v" in doc and doc["ack_v"] not in (2, 3):
        raise PayloadError("status ack_v is not an ack version")
    for key in ("pending", "last_seq", "acked", "acks_ignored"):
        if key in doc and not _seq(doc[key], zero=True):
            raise PayloadError(f"status {key} is not a count")
    _check_status_fields(doc)
    return {k: v for k, v in doc.items() if k in STATUS_KEYS}


def _check_status_fields(doc: dict[str, Any]) -> None:
    """The status's times, texts, region and free disk, each of its kind and bounded."""
    for key in STATUS_TIMES:
        if key in doc and not (isinstance(doc[key], str) and TIME_TEXT.fullmatch(doc[key])):
            raise PayloadError(f"status {key} is not UTC time text")
    for key, longest in STATUS_TEXTS.items():
        value = doc.get(key)
        if key in doc and not (
            isinstance(value, str) and len(value) <= longest and value.isprintable()
        ):
            raise PayloadError(f"status {key} is not a text of at most {longest} characters")
    epoch = doc.get("epoch")
    if "epoch" in doc and not (isinstance(epoch, str) and EPOCH.fullmatch(epoch)):
        raise PayloadError("status epoch is not 32 hex digits")
    region = doc.get("region")
    if "region" in doc and not (isinstance(region, str) and REGION.fullmatch(region)):
        raise PayloadError("status region is not a Kemendagri code PP.KK.CC.DDDD")
    disk = doc.get("disk_free")
    if "disk_free" in doc and not (
        isinstance(disk, int) and not isinstance(disk, bool) and 0 <= disk <= MAX_DISK_BYTES
    ):
        raise PayloadError("status disk_free is not a number of bytes")


def _seq(value: Any, zero: bool = False) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (0 if zero else 1) <= value <= MAX_SEQ
    )

"""Signed acks without a broker: the keys, the canonical bytes, what a post believes, what it
counts, and how the settings name the district's keys."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from edge.config import defaults, load
from sensors.errors import ConfigError
from sync import codec
from sync.acks import AckGate, AcksUntrusted, AckTrust, read_ignored
from sync.batch import Batch, PayloadError
from sync.messages import Ack
from sync.options import SyncOptions
from sync.signing import KeyFileError, PublicKey, Signer, key_id, keygen
from sync.worker import SyncWorker
from tests.support.keys import NEXT_SIGNER, SIGNER, STRANGER, TRUST, write_keys
from tests.support.sync_helpers import POST, realistic

NOW = "2026-11-27T03:04:05.123Z"
EPOCH = "0123456789abcdef0123456789abcdef"


def signed(ack: Ack, post: str = POST, signer: Signer = SIGNER) -> bytes:
    return ack.signed_by(signer, post, NOW).encode()


# -- keys --------------------------------------------------------------------------------


def test_sync_signing_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    private, public = keygen(tmp_path / "keys")
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    signer, pinned = Signer.from_file(private), PublicKey.from_file(public)
    assert signer.key_id == pinned.key_id and len(pinned.key_id) == 16
    assert pinned.verify(b"x", signer.sign(b"x"))
    assert not pinned.verify(b"y", signer.sign(b"x"))


def test_sync_signing_keygen_never_overwrites_a_key(tmp_path: Path) -> None:
    private, _ = keygen(tmp_path)
    before = private.read_bytes()
    with pytest.raises(KeyFileError, match="never overwritten"):
        keygen(tmp_path)
    assert private.read_bytes() == before


def test_sync_signing_key_id_is_the_sha256_of_the_raw_public_key() -> None:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    raw = SIGNER.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert key_id(SIGNER.private.public_key()) == hashlib.sha256(raw).hexdigest()[:16]


@pytest.mark.parametrize(
    "content", [b"", b"not a key", b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"]
)
def test_sync_signing_refuses_a_file_that_is_no_public_key(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "district.pub"
    path.write_bytes(content)
    with pytest.raises(KeyFileError):
        PublicKey.from_file(path)


def test_sync_signing_refuses_a_private_key_where_a_public_one_belongs(tmp_path: Path) -> None:
    private, _ = write_keys(tmp_path)
    with pytest.raises(KeyFileError):
        PublicKey.from_file(private)
    with pytest.raises(KeyFileError):
        Signer.from_file(tmp_path / "district.pub")


@pytest.mark.slow
def test_sync_signing_keygen_command_prints_the_key_id(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "posko.cli", "district", "keygen", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pinned = PublicKey.from_file(tmp_path / "k" / "district.pub")
    assert f"key id {pinned.key_id}" in result.stderr
    again = subprocess.run(
        [sys.executable, "-m", "posko.cli", "district", "keygen", str(tmp_path / "k")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 1 and "never overwritten" in again.stderr


# -- the ack and its canonical bytes -----------------------------------------------------


def test_sync_signing_canonical_bytes_are_fixed() -> None:
    ack = Ack(300, 201, 300, post=POST, time=NOW, key=SIGNER.key_id, epoch=EPOCH)
    assert ack.signed_bytes() == (
        b'["posko-ack",3,"bench",300,201,300,null,"' + SIGNER.key_id.encode() + b'",'
        b'"2026-11-27T03:04:05.123Z","' + EPOCH.encode() + b'"]'
    )


def test_sync_signing_a_version_2_ack_of_an_older_district_still_verifies() -> None:
    old = Ack(300, 201, 300, post=POST, time=NOW, key=SIGNER.key_id, v=2)
    assert old.signed_bytes() == (
        b'["posko-ack",2,"bench",300,201,300,null,"' + SIGNER.key_id.encode() + b'",'
        b'"2026-11-27T03:04:05.123Z"]'
    )
    doc = json.loads(replace(old, sig=SIGNER.sign(old.signed_bytes())).encode())
    assert TRUST.problem(Ack.decode(json.dumps(doc).encode()), POST) is None
    doc["epoch"] = EPOCH  # an epoch riding on a version 2 signature is refused outright
    with pytest.raises(PayloadError, match="version 3"):
        Ack.decode(json.dumps(doc).encode())


def test_sync_signing_a_signed_ack_survives_the_wire() -> None:
    payload = signed(Ack(300, 201, 300, epoch=EPOCH))
    doc = json.loads(payload)
    assert set(doc) == {"v", "post", "ack", "first", "last", "t", "key", "sig", "epoch"}
    assert doc["v"] == 3 and doc["key"] == SIGNER.key_id and doc["epoch"] == EPOCH
    ack = Ack.decode(payload)
    assert ack == Ack(
        300, 201, 300, post=POST, time=NOW, key=SIGNER.key_id, sig=ack.sig, epoch=EPOCH
    )
    assert TRUST.problem(ack, POST) is None


@pytest.mark.parametrize(
    "change",
    [
        {"ack": 301},
        {"first": 1},
        {"last": 301},
        {"post": "other-post"},
        {"t": "2026-11-27T03:04:05.124Z"},
        {"error": "refused"},
        {"v": 2},
        {"epoch": "f" * 32},
    ],
    ids=lambda c: next(iter(c)),
)
def test_sync_signing_every_signed_field_counts(change: dict[str, object]) -> None:
    doc = json.loads(signed(Ack(300, 201, 300, epoch=EPOCH)))
    doc.update(change)
    if doc["v"] == 2:
        del doc["epoch"]  # else refused as malformed before its signature is checked
    ack = Ack.decode(json.dumps(doc).encode())
    assert TRUST.problem(ack, POST) == "bad_signature"


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b"[1]",
        b'{"ack": -1}',
        b'{"ack": 5, "first": 6, "last": 5}',
        b'{"ack": 5, "sig": "AAAA"}',
        b'{"ack": 5, "key": "XYZ"}',
        b'{"ack": 5, "post": "Not A Post"}',
        b'{"ack": 5, "t": "yesterday"}',
        b'{"ack": 5, "v": true}',
        b'{"ack": 5, "error": "' + b"x" * 600 + b'"}',
        b'{"ack": 5, "pad": "' + b"x" * 5000 + b'"}',
        b"[" * 100_000,
    ],
    ids=[f"case{i}" for i in range(12)],
)
def test_sync_signing_malformed_acks_are_payload_errors(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        Ack.decode(payload)


# -- what a post believes ----------------------------------------------------------------


@pytest.fixture
def gate(tmp_path: Path) -> AckGate:
    return AckGate(POST, TRUST, lambda: 400, tmp_path)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "malformed"),
        (Ack(300, 201, 300).encode(), "unsigned"),  # what an old district (or anyone) sends
        (Ack(300, 201, 300, post=POST).encode(), "unsigned"),
        (signed(Ack(300, 201, 300), signer=STRANGER), "unknown_key"),
        (signed(Ack(300, 201, 300), post="other-post"), "other_post"),
        (signed(Ack(401, 301, 401)), "beyond_last_seq"),
        (signed(Ack(300, 301, 450)), "beyond_last_seq"),  # a range past the post's last event
    ],
    ids=["malformed", "unsigned", "unsigned-with-post", "wrong-key", "other-post", "ack", "range"],
)
def test_sync_signing_post_ignores_and_counts_an_ack_it_cannot_trust(
    gate: AckGate, payload: bytes, reason: str, tmp_path: Path
) -> None:
    assert gate.admit(payload) is None
    assert gate.counts == {reason: 1}
    assert read_ignored(tmp_path)["counts"] == {reason: 1}  # for `posko status`


def test_sync_signing_post_takes_a_signed_ack_of_its_own(gate: AckGate) -> None:
    ack = gate.admit(signed(Ack(300, 201, 300)))
    assert ack is not None and ack.ack == 300
    assert gate.total == 0


def test_sync_signing_a_forged_signature_is_bad(gate: AckGate) -> None:
    doc = json.loads(signed(Ack(300, 201, 300)))
    doc["sig"] = json.loads(signed(Ack(299, 201, 300)))["sig"]  # a real signature, other bytes
    assert gate.admit(json.dumps(doc).encode()) is None
    assert gate.counts == {"bad_signature": 1}


def test_sync_signing_rotation_believes_both_pinned_keys(tmp_path: Path) -> None:
    both = AckGate(POST, AckTrust((SIGNER.public, NEXT_SIGNER.public)), lambda: 400)
    assert both.admit(signed(Ack(100), signer=SIGNER)) is not None
    assert both.admit(signed(Ack(200), signer=NEXT_SIGNER)) is not None
    assert both.admit(signed(Ack(300), signer=STRANGER)) is None
    after = AckGate(POST, AckTrust((NEXT_SIGNER.public,)), lambda: 400)  # old key dropped
    assert after.admit(signed(Ack(100), signer=SIGNER)) is None
    assert after.counts == {"unknown_key": 1}


def test_sync_signing_insecure_acks_believe_unsigned_but_not_beyond_the_log() -> None:
    loose = AckGate(POST, AckTrust(insecure=True), lambda: 400)
    assert loose.admit(Ack(300, 201, 300).encode()) is not None
    assert loose.admit(signed(Ack(300), signer=STRANGER)) is not None
    assert loose.admit(Ack(500).encode()) is None
    assert loose.admit(signed(Ack(300), post="other-post")) is None
    assert loose.counts == {"beyond_last_seq": 1, "other_post": 1}


def test_sync_signing_each_reason_is_logged_once_per_connection(
    gate: AckGate, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "sync.acks"):
        for _ in range(50):
            gate.admit(Ack(300).encode())
        gate.admit(signed(Ack(300), post="other-post"))
        assert len(caplog.records) == 2
        gate.new_connection()
        gate.admit(Ack(300).encode())
        assert len(caplog.records) == 3
    assert gate.counts == {"unsigned": 51, "other_post": 1}
    assert "not signed" in caplog.records[0].getMessage()


def test_sync_signing_counts_survive_a_restart(tmp_path: Path) -> None:
    first = AckGate(POST, TRUST, lambda: 400, tmp_path)
    first.admit(Ack(300).encode())
    first.close()
    again = AckGate(POST, TRUST, lambda: 400, tmp_path)
    again.admit(Ack(300).encode())
    again.close()
    assert read_ignored(tmp_path)["counts"] == {"unsigned": 2}
    assert again.summary()["total"] == 2 and again.summary()["last"]["reason"] == "unsigned"


# -- the district signs ------------------------------------------------------------------


def test_sync_signing_receiver_signs_acks_and_refusals(tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "d.db") as db:
        receiver = Receiver(db, signer=SIGNER)
        batch = Batch.of(POST, realistic(10))
        reply = receiver.handle(f"posko/v1/{POST}/events", codec.encode(batch))
        refused = receiver.handle(f"posko/v1/{POST}/events", b"Po\x02junk")
    assert reply is not None and refused is not None
    gate = AckGate(POST, TRUST, lambda: 10)
    ack, no = gate.admit(reply.payload), gate.admit(refused.payload)
    assert ack is not None and (ack.ack, ack.first, ack.last, ack.post) == (10, 1, 10, POST)
    assert no is not None and no.error is not None and not refused.retain


def test_sync_signing_receiver_without_a_key_sends_acks_posts_ignore(tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "d.db") as db:
        reply = Receiver(db).handle(
            f"posko/v1/{POST}/events", codec.encode(Batch.of(POST, realistic(3)))
        )
    assert reply is not None
    assert "sig" not in json.loads(reply.payload)
    assert AckGate(POST, TRUST, lambda: 3).admit(reply.payload) is None


# -- settings ----------------------------------------------------------------------------


def test_sync_signing_settings_list_the_district_keys(tmp_path: Path) -> None:
    _, one = write_keys(tmp_path / "one", SIGNER)
    _, two = write_keys(tmp_path / "two", NEXT_SIGNER)
    toml = tmp_path / "config.toml"
    toml.write_text(f'[mqtt]\nbroker = "d.example:8883"\ndistrict_keys = ["{one}", "{two}"]\n')
    options = SyncOptions.from_config(load(toml, env={}))
    assert [k.key_id for k in options.trust.keys] == [SIGNER.key_id, NEXT_SIGNER.key_id]
    env = {"POSKO_MQTT_DISTRICT_KEYS": f"{one}, {two}", "POSKO_MQTT_BROKER": "d.example:1883"}
    assert load(None, env=env)["mqtt.district_keys"] == [str(one), str(two)]


def test_sync_signing_settings_list_every_key_file_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pub"
    bad.write_text("hello")
    config = defaults().replace(
        mqtt__broker="d.example:8883",
        mqtt__district_keys=[str(tmp_path / "missing.pub"), str(bad)],
        mqtt__ca_file=str(tmp_path / "missing-ca.crt"),
        mqtt__tls=True,
    )
    with pytest.raises(ConfigError) as caught:
        SyncOptions.from_config(config)
    assert len(caught.value.problems) == 3  # the CA and both key files, together
    assert any("missing.pub" in p and "readable" in p for p in caught.value.problems)
    assert any("bad.pub" in p and "PEM" in p for p in caught.value.problems)
    with pytest.raises(ConfigError):
        defaults().replace(mqtt__district_keys="not a list")


def test_sync_signing_worker_refuses_to_start_without_a_district_key(tmp_path: Path) -> None:
    from edge.store import EventStore

    options = SyncOptions.from_config(defaults().replace(post__id=POST, mqtt__broker="h:1883"))
    with EventStore(tmp_path / "pi", POST) as store:
        with pytest.raises(AcksUntrusted, match=r"mqtt\.district_keys"):
            SyncWorker(store, options)
        insecure = replace(options, trust=AckTrust(insecure=True))
        SyncWorker(store, insecure).close()  # starts (and warns at start())

"""The shipped district broker set-up (sync/mosquitto/), started for real: TLS with a test CA,
passwords and the ACL that keeps each post under its own post id."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from district.backends import open_storage
from district.server import District
from district.sqlite import SQLiteStorage
from edge.store import EventStore
from sync import codec
from sync.batch import Batch
from sync.mqtt import tls_context
from sync.options import Link, SyncOptions
from sync.worker import SyncWorker
from tests.support.keys import SIGNER, public_key_file
from tests.support.sync_broker import Mosquitto, free_port, wait_for
from tests.support.sync_helpers import FAST_BACKOFF, POST, assert_exactly_once, backlog, options

pytestmark = pytest.mark.broker

EXAMPLE = Path(__file__).resolve().parent.parent / "sync" / "mosquitto"
PASSWORDS = {"district": "district-secret", POST: "bench-secret", "posko-02": "other-secret"}


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(where: Path, name: str) -> None:
    openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.crt",
        cwd=where,
    )


def make_cert(where: Path, ca: str, name: str, cn: str, ext: str) -> None:
    (where / f"{name}.ext").write_text(ext + "\n")
    openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        f"/CN={cn}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=where,
    )
    openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.crt",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        f"{name}.ext",
        "-out",
        f"{name}.crt",
        cwd=where,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("pki")
    make_ca(where, "ca")
    make_ca(where, "wrong-ca")
    make_cert(where, "ca", "server", "localhost", "subjectAltName=IP:127.0.0.1,DNS:localhost")
    make_cert(where, "ca", "client", POST, "extendedKeyUsage=clientAuth")
    passwd = where / "passwd"
    for user, password in PASSWORDS.items():
        create = ["-c"] if not passwd.exists() else []
        subprocess.run(
            ["mosquitto_passwd", *create, "-b", str(passwd), user, password],
            check=True,
            capture_output=True,
        )
    return where


def example_conf(pki: Path, port: int, cert_port: int) -> str:
    """The shipped mosquitto.conf with the test's paths and ports, nothing else changed."""
    text = (EXAMPLE / "mosquitto.conf").read_text()
    text = text.replace("/etc/mosquitto/posko/acl", str(EXAMPLE / "acl"))
    text = text.replace("/etc/mosquitto/posko/", f"{pki}/")
    text = text.replace("listener 8883", f"listener {port} 127.0.0.1")
    text = text.replace("listener 8884", f"listener {cert_port} 127.0.0.1")
    text = re.sub(r"(?m)^persistence.*$", "", text) + "\npersistence false\nlog_dest stderr\n"
    return text.replace("{", "{{").replace("}", "}}")  # Mosquitto() formats it with {port}


@pytest.fixture
def secure(pki: Path, tmp_path: Path) -> Iterator[Mosquitto]:
    cert_port = free_port()
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", conf=example_conf(pki, port, cert_port), port=port)
    broker.cert_port = cert_port  # type: ignore[attr-defined]
    with broker:  # starts it, and stops it after the test
        yield broker


def link(pki: Path, port: int, user: str | None, ca: str = "ca") -> Link:
    return Link(
        "127.0.0.1",
        port,
        f"test-{user}",
        username=user,
        password=PASSWORDS.get(user or ""),
        tls=True,
        ca_file=str(pki / f"{ca}.crt"),
    )


def tls_options(pki: Path, port: int, link_: Link | None = None) -> SyncOptions:
    """The bench post over TLS with its password, unless another link is given."""
    return replace(options(f"127.0.0.1:{port}"), link=link_ or link(pki, port, POST))


def publish(pki: Path, port: int, user: str, topic: str, payload: bytes) -> object:
    """Publish once as `user` over TLS and return the broker's PUBACK reason."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"rogue-{user}", protocol=mqtt.MQTTv5
    )
    client.username_pw_set(user, PASSWORDS[user])
    client.tls_set_context(tls_context(link(pki, port, user)))
    acked, reasons = threading.Event(), []

    def on_publish(c: mqtt.Client, u: object, mid: int, rc: object, props: object) -> None:
        reasons.append(rc)
        acked.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1)
        assert acked.wait(10)
    finally:
        client.disconnect()
        client.loop_stop()
    return reasons[0]


def test_sync_example_acl_keeps_each_post_under_its_own_id(
    secure: Mosquitto, pki: Path, tmp_path: Path, stack: ExitStack
) -> None:
    db_path = tmp_path / "district.db"
    district = stack.enter_context(
        District(
            open_storage(db_path),
            link(pki, secure.port, "district"),
            share="receivers",
            signer=SIGNER,
        )
    )
    assert district.subscribed.wait(10)
    backlog(tmp_path / "pi", 500)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    sync = stack.enter_context(
        SyncWorker(store, tls_options(pki, secure.port), backoff=FAST_BACKOFF)
    )
    assert sync.wait_drained(30), sync.last_error
    assert_exactly_once(db_path, store)
    forged = store.since(0)[-1] | {"seq": 501, "kind": "emergency"}
    payload = codec.encode(Batch.of(POST, [forged]))
    reason = publish(pki, secure.port, "posko-02", f"posko/v1/{POST}/alert", payload)
    assert str(reason) == "Not authorized"
    own = codec.encode(Batch.of("posko-02", [forged | {"post": "posko-02", "seq": 1}]))
    assert not publish(pki, secure.port, "posko-02", "posko/v1/posko-02/events", own).is_failure  # type: ignore[attr-defined]
    wait_for(
        lambda: SQLiteStorage(db_path, read_only=True).count("posko-02") == 1,
        10,
        "the allowed message (sent after the forged one)",
    )
    with SQLiteStorage(db_path, read_only=True) as db:
        assert db.seqs(POST) == list(range(1, 501))  # the forged alert never arrived


def test_sync_example_broker_takes_a_client_certificate_as_the_post_id(
    secure: Mosquitto, pki: Path, tmp_path: Path, stack: ExitStack
) -> None:
    db_path = tmp_path / "district.db"
    district = District(open_storage(db_path), link(pki, secure.port, "district"), signer=SIGNER)
    stack.enter_context(district).subscribed.wait(10)
    backlog(tmp_path / "pi", 200)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    port = secure.cert_port  # type: ignore[attr-defined]
    cert = Link(
        "127.0.0.1",
        port,
        "posko-bench",
        tls=True,
        ca_file=str(pki / "ca.crt"),
        cert_file=str(pki / "client.crt"),
        key_file=str(pki / "client.key"),
    )
    sync = stack.enter_context(
        SyncWorker(store, tls_options(pki, port, cert), backoff=FAST_BACKOFF)
    )
    assert sync.wait_drained(30), sync.last_error
    assert_exactly_once(db_path, store)


def test_sync_tls_with_a_wrong_ca_fails_closed(
    secure: Mosquitto, pki: Path, tmp_path: Path, stack: ExitStack
) -> None:
    backlog(tmp_path / "pi", 100)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    wrong = tls_options(pki, secure.port, link(pki, secure.port, POST, ca="wrong-ca"))
    sync = stack.enter_context(SyncWorker(store, wrong, backoff=FAST_BACKOFF))
    wait_for(lambda: sync.fatal_error is not None, 10, "the TLS failure")
    assert "certificate verify failed" in str(sync.fatal_error)
    assert sync.connections == 0 and store.acked == 0


@pytest.mark.slow
def test_sync_command_stops_at_once_on_a_tls_failure(
    secure: Mosquitto, pki: Path, tmp_path: Path
) -> None:
    backlog(tmp_path / "pi", 50)
    env = {
        "POSKO_POST_ID": POST,
        "POSKO_MQTT_TLS": "true",
        "POSKO_MQTT_CA_FILE": str(pki / "wrong-ca.crt"),
        "POSKO_MQTT_DISTRICT_KEYS": str(public_key_file()),
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "posko.cli",
            "--data",
            str(tmp_path / "pi"),
            "sync",
            "--broker",
            secure.address,
            "--until-drained",
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 1
    assert "certificate verify failed" in result.stderr


def test_sync_example_acl_lets_the_receiver_name_each_post_while_one_is_muted(
    secure: Mosquitto, pki: Path, tmp_path: Path, stack: ExitStack
) -> None:
    db_path = tmp_path / "district.db"
    district = stack.enter_context(
        District(open_storage(db_path), link(pki, secure.port, "district"), signer=SIGNER)
    )
    assert district.subscribed.wait(10)
    flood = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flood-02", protocol=mqtt.MQTTv5)
    flood.username_pw_set("posko-02", PASSWORDS["posko-02"])
    flood.tls_set_context(tls_context(link(pki, secure.port, "posko-02")))
    flood.connect("127.0.0.1", secure.port)
    flood.loop_start()
    stack.callback(flood.loop_stop)
    for _ in range(400):  # junk faster than the district serves a post whose junk it refused
        flood.publish("posko/v1/posko-02/events", b"\x00junk" * 50, qos=1)
    wait_for(lambda: district.intake.stats.mutes == 1, 20, "posko-02 to be muted")
    backlog(tmp_path / "pi", 200)
    store = stack.enter_context(EventStore(tmp_path / "pi", POST))
    sync = stack.enter_context(
        SyncWorker(store, tls_options(pki, secure.port), backoff=FAST_BACKOFF)
    )
    assert sync.wait_drained(30), sync.last_error  # heard by name, which the ACL allows
    assert_exactly_once(db_path, store)
    assert f"posko/v1/{POST}/events" in {name for name, _ in district.subscriptions()}

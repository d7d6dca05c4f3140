"""paho-mqtt clients made the same way for the Pi and the district: protocol, auth, TLS.

TLS uses a verifying context (CA, host name); a handshake that fails raises, and nothing
here ever retries without TLS.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from sync.options import Link

PROTOCOLS = {"5": mqtt.MQTTv5, "3.1.1": mqtt.MQTTv311}


def new_client(
    link: Link, *, will: tuple[str, bytes] | None = None, reconnect: bool = False
) -> mqtt.Client:
    """A paho client for `link` (not yet connected); `will` is a retained last will."""
    protocol = PROTOCOLS[link.protocol]
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=link.client_id,
        protocol=protocol,
        clean_session=None if protocol == mqtt.MQTTv5 else True,
        reconnect_on_failure=reconnect,
    )
    if link.username is not None or link.password is not None:
        client.username_pw_set(link.username or "", link.password)
    if link.tls:
        client.tls_set_context(tls_context(link))
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    client.on_socket_open = _no_delay
    return client


def _no_delay(client: mqtt.Client, userdata: object, sock: object) -> None:
    # An ack must not wait for Nagle and a delayed TCP ACK (40 ms each round trip).
    if isinstance(sock, socket.socket):  # TLS sockets too; paho's websocket wrapper is not one
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def tls_context(link: Link) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=link.ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if link.cert_file:
        context.load_cert_chain(link.cert_file, link.key_file)
    return context


def connect(client: mqtt.Client, link: Link, *, asynchronous: bool = False) -> None:
    """Start connecting (raises OSError / ssl.SSLError for the synchronous kind)."""
    start = client.connect_async if asynchronous else client.connect
    if link.protocol == "5":
        start(link.host, link.port, keepalive=link.keepalive, clean_start=True)
    else:  # 3.1.1 has a clean session (set on the client) instead
        start(link.host, link.port, keepalive=link.keepalive)


def is_tls_failure(error: BaseException) -> bool:
    return isinstance(error, ssl.SSLError | ssl.CertificateError)

"""The sync settings of a post, read once from its configuration into typed values.

File settings (CA, client certificate, key, the district's public keys) are checked here,
at start-up, and every problem is reported together as a `ConfigError`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from edge.config import Config
from sensors.errors import ConfigError
from sync.acks import AckTrust
from sync.signing import KeyFileError, PublicKey


def broker_address(config: Config) -> str:
    """The district broker's HOST:PORT (`mqtt.broker`); empty when the post does not sync."""
    return str(config["mqtt.broker"])


def split_address(address: str) -> tuple[str, int]:
    """("host", port) of "HOST:PORT"; ValueError if it is not one."""
    host, sep, port = address.rpartition(":")
    if (
        not sep
        or not host
        or not (port.isascii() and port.isdigit())
        or not 1 <= int(port) <= 65535
    ):
        raise ValueError(f"{address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


@dataclass(frozen=True)
class Link:
    """How to reach a broker: address, protocol version, credentials and TLS."""

    host: str
    port: int
    client_id: str
    protocol: str = "5"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = 60

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def problems(self) -> list[str]:
        """Missing or unreadable TLS files, one line each."""
        found = []
        for key, path in (
            ("mqtt.ca_file", self.ca_file),
            ("mqtt.cert_file", self.cert_file),
            ("mqtt.key_file", self.key_file),
        ):
            if path and not os.access(path, os.R_OK):
                found.append(f"{key}: {path!r} is not a readable file")
        if (self.cert_file or self.key_file) and not (self.cert_file and self.key_file):
            found.append("mqtt.cert_file and mqtt.key_file go together")
        if (self.ca_file or self.cert_file) and not self.tls:
            found.append("mqtt.ca_file / mqtt.cert_file are set but mqtt.tls is false")
        return found


@dataclass(frozen=True)
class SyncOptions:
    post: str
    link: Link
    batch_events: int = 2000
    batch_bytes: int = 16_384
    window: int = 4
    ack_timeout: float = 30.0
    status_interval: float = 300.0
    send_nik: bool = False
    trust: AckTrust = field(
        default_factory=AckTrust
    )  # no key and not insecure: the worker refuses to start
    name: str = ""  # post.name and post.region, told to the district in the status
    region: str = ""

    @classmethod
    def from_config(cls, config: Config, **changes: Any) -> SyncOptions:
        """The options of `config` (mqtt.broker must be set); ConfigError on a problem."""
        post = config.post.id
        try:
            host, port = split_address(broker_address(config))
        except ValueError as e:
            raise ConfigError([f"mqtt.broker: {e}"]) from None
        password = config["mqtt.password"] or None
        username = config["mqtt.username"] or (post if password else None)
        link = Link(
            host,
            port,
            f"posko-{post}",
            config["mqtt.protocol"],
            username,
            password,
            config["mqtt.tls"],
            config["mqtt.ca_file"] or None,
            config["mqtt.cert_file"] or None,
            config["mqtt.key_file"] or None,
            config["mqtt.keepalive_s"],
        )
        problems = link.problems()
        keys = district_keys(config["mqtt.district_keys"], problems)
        if problems:
            raise ConfigError(problems)
        options = cls(
            post,
            link,
            config["sync.batch_events"],
            config["sync.batch_bytes"],
            config["sync.window"],
            config["sync.ack_timeout_s"],
            float(config["sync.status_interval_s"]),
            config["sync.send_nik"],
            AckTrust(keys, config["mqtt.insecure_acks"]),
            config["post.name"],
            config["post.region"],
        )
        return replace(options, **changes) if changes else options


def district_keys(paths: list[str], problems: list[str]) -> tuple[PublicKey, ...]:
    """The public keys in these files; one line in `problems` for each file that is not one."""
    keys: dict[str, PublicKey] = {}
    for path in paths:
        if not os.access(path, os.R_OK):
            problems.append(f"mqtt.district_keys: {path!r} is not a readable file")
            continue
        try:
            key = PublicKey.from_file(path)
        except KeyFileError as e:
            problems.append(f"mqtt.district_keys: {e}")
            continue
        keys.setdefault(key.key_id, key)
    return tuple(keys.values())

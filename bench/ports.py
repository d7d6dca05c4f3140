"""A free loopback port, for the bench and the test suite: every server they start binds one,
never a fixed port that a running station (8080) or broker (1883) may hold."""

from __future__ import annotations

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])

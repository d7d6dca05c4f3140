"""No test binds a fixed port: the suite runs beside `make run` (the page on 8080) and a
district broker (1883)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from edge.config import defaults
from tests.support.station_proc import running_station

pytestmark = pytest.mark.slow


def test_ports_a_station_starts_while_the_default_page_port_is_held(tmp_path: Path) -> None:
    host, port = str(defaults()["web.listen"]).rsplit(":", 1)
    holder = socket.socket()
    try:
        holder.bind((host, int(port)))
    except OSError:
        holder.close()
        pytest.skip(f"{host}:{port} is taken by another program, so no test can bind it anyway")
    with holder:
        holder.listen()
        with running_station(tmp_path / "data") as station:
            assert station.poll() is None

"""Stopping `posko run`: a burst of signals (Ctrl-C twice, systemd and `timeout` together)
must stop the station cleanly every time, never hang it."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from posko.stopping import StopSignal
from tests.support.station_proc import POSKO, clean_env
from tests.support.sync_broker import free_port

RUNS = 50
BURST = 20
AT_ONCE = 5  # stations started side by side (2 cores: the burst, not the CPU, is the test)
START_S = 60.0
STOP_S = 20.0


def test_stop_signal_wait_returns_once_a_signal_arrived() -> None:
    with StopSignal() as stop:
        assert stop.wait(0) is False
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5.0) is True
        assert stop.event.is_set() and stop.signum == signal.SIGTERM


def test_stop_signal_gives_the_handlers_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with StopSignal():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


def test_stop_signal_ignores_late_repeats_once_a_signal_stopped_it() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        with StopSignal() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.wait(5.0)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)  # a late one of the burst: ignored, not fatal
    finally:
        signal.signal(signal.SIGTERM, before)


def _start(data: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    station = subprocess.Popen(
        [*POSKO, "--data", str(data), "run", "--mock", "--web", f"127.0.0.1:{free_port()}"],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
    )
    lines: queue.Queue[str] = queue.Queue()
    stderr = station.stderr
    assert stderr is not None

    def read() -> None:
        for line in stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return station, lines


def _running(data: Path) -> tuple[subprocess.Popen[str] | None, str]:
    """A station that says it runs, or None and why not. A free port can be taken by
    someone else between picking and binding it: that one case is tried once more."""
    for _ in range(2):
        station, lines = _start(data)
        seen: list[str] = []
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                if station.poll() is not None and lines.empty():
                    break  # it exited without saying it runs
                continue
            if "is running" in line:
                return station, ""
            seen.append(line)
        station.kill()
        station.wait()
        if not any("cannot serve the guard's page" in line for line in seen):
            break
    return None, "did not start: " + "".join(seen[-3:]).strip()


def _burst(station: subprocess.Popen[str]) -> str | None:
    """Signal a running station BURST times at once; what went wrong, or None."""
    for i in range(BURST):
        station.send_signal(signal.SIGINT if i % 3 == 2 else signal.SIGTERM)
    try:
        code = station.wait(STOP_S)
    except subprocess.TimeoutExpired:
        station.kill()
        station.wait()
        return "hung"
    return None if code == 0 else f"exit status {code}"


@pytest.mark.slow
def test_run_stops_cleanly_after_every_burst_of_signals(tmp_path: Path) -> None:
    outcomes: list[str | None] = []
    for first in range(0, RUNS, AT_ONCE):
        started = [_running(tmp_path / f"data-{n}") for n in range(first, first + AT_ONCE)]
        outcomes += [_burst(station) if station else why for station, why in started]
    failed = [f"run {n}: {what}" for n, what in enumerate(outcomes) if what]
    print(f"{RUNS} runs x {BURST} signals: {len(failed)} failed")
    assert len(outcomes) == RUNS and not failed, failed

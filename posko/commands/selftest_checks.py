"""The rows of `posko selftest`'s table, and its checks that need no hands: the thermometer's
driver (a simulated one on a real Raspberry Pi screens nobody, so it is said loudly), the
voice's test phrase, the district broker, the clock and the free disk.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from edge.clock import kernel_clock_state
from edge.config import Config
from edge.voice import TEST
from sensors.errors import SensorError
from sensors.speaker import Speaker, open_speaker

PI_MODEL = Path("/proc/device-tree/model")  # "Raspberry Pi 4 Model B Rev 1.5\0" on a Pi
DRIVER_CHECK = "thermometer driver"
PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
DISK_WARN_BYTES = 500 * 1024**2
DISK_FAIL_BYTES = 50 * 1024**2
BROKER_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Check:
    """One row of the table."""

    check: str
    result: str
    detail: str


class Asks(Protocol):
    yes: bool

    def say(self, text: str) -> None: ...

    def ask(self, question: str) -> bool | None: ...


def raspberry_pi(model: Path = PI_MODEL) -> str | None:
    """The Pi's model name when this machine is a Raspberry Pi, else None."""
    try:
        text = model.read_bytes().decode(errors="replace").strip("\0\n ")
    except OSError:
        return None
    return text if "Raspberry Pi" in text else None


def check_driver(config: Config, model: Path = PI_MODEL) -> Check:
    """Name the thermometer driver; WARN when it is `simulated` on a real Pi."""
    options = config.thermometer
    driver = options.driver
    if driver == "none":
        return Check(DRIVER_CHECK, SKIP, "none: entries are not screened")
    if driver == "simulated":
        pi = raspberry_pi(model)
        if pi is not None:
            return Check(
                DRIVER_CHECK,
                WARN,
                f"simulated on a {pi}: temperatures are MADE UP and nobody is screened; "
                "set thermometer.driver to mlx90614 or ds18b20",
            )
        return Check(DRIVER_CHECK, PASS, "simulated (not a Raspberry Pi: a demo)")
    if driver == "mlx90614":
        where = f"I2C bus {options.i2c_bus}, address {options.i2c_address:#04x}"
    else:
        where = f"1-wire {options.w1_device or 'first 28-* device'}"
    return Check(DRIVER_CHECK, PASS, f"{driver} on {where}")


def loud_warnings(checks: list[Check]) -> list[str]:
    """The WARNING lines printed apart from the table, for what must not be overlooked."""
    return [
        f"WARNING: thermometer driver {c.detail}"
        for c in checks
        if c.check == DRIVER_CHECK and c.result == WARN
    ]


def check_voice(config: Config, technician: Asks, speaker: Speaker | None = None) -> Check:
    """Play the test phrase through the configured speaker and ask whether it was heard."""
    options = config.voice
    if not options.enabled:
        return Check("voice", SKIP, "voice.enabled is false: no test phrase played")
    own = speaker is None
    speaker = speaker or open_speaker(options.driver, options.volume)
    technician.say(f"playing a test phrase at volume {options.volume}%: {TEST!r}")
    try:
        speaker.say(TEST)
    except SensorError as e:
        return Check("voice", FAIL, str(e))
    finally:
        if own:
            speaker.close()
    answer = technician.ask("did you hear the voice?")
    if answer is None:
        return Check("voice", FAIL, "no answer")
    if not answer:
        return Check("voice", FAIL, "not heard: check the audio output and voice.volume")
    how = "assumed (--yes)" if technician.yes else "confirmed by the technician"
    return Check("voice", PASS, f"{options.driver}, volume {options.volume}%: {how}")


def check_broker(address: str, timeout: float = BROKER_TIMEOUT_S) -> Check:
    """A TCP connection to the district broker (no MQTT session, nothing published)."""
    if not address:
        return Check("broker", SKIP, "mqtt.broker is not set")
    host, _, port = address.rpartition(":")
    started = time.monotonic()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            took = (time.monotonic() - started) * 1000
    except OSError as e:
        return Check("broker", FAIL, f"cannot reach {address}: {e.strerror or e}")
    return Check("broker", PASS, f"reached {address} in {took:.0f} ms")


def check_clock(state: Callable[[], str] = kernel_clock_state) -> Check:
    """Synchronised clock: pass; otherwise events carry an untrusted time."""
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    found = state()
    if found == "synced":
        return Check("clock", PASS, f"synchronised, {now}")
    return Check("clock", WARN, f"{found}: {now} may be wrong (no network time, no RTC?)")


def check_disk(data_dir: Path, warn: int = DISK_WARN_BYTES, fail: int = DISK_FAIL_BYTES) -> Check:
    """Free space where the events are written."""
    where = data_dir
    while not where.exists() and where != where.parent:
        where = where.parent
    free = shutil.disk_usage(where).free
    detail = f"{free / 1024**2:,.0f} MB free in {where}"
    if free < fail:
        return Check("disk", FAIL, detail)
    if free < warn:
        return Check("disk", WARN, detail)
    return Check("disk", PASS, detail)

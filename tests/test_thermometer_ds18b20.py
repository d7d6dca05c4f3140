"""Tests for the DS18B20 driver against a temporary directory laid out like w1 sysfs.

Each `w1_slave` file is built from a real scratchpad layout with a real Maxim CRC byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sensors.ds18b20 import DS18B20

DEVICE = "28-000001234567"


def maxim_crc(data: bytes) -> int:
    """Dallas/Maxim 1-wire CRC-8 (x^8 + x^5 + x^4 + 1, reflected)."""
    crc = 0
    for byte in data:
        for bit in range(8):
            mix = (crc ^ (byte >> bit)) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
    return crc


def w1_slave(millidegrees: int, *, verdict: str | None = None, zeros: bool = False) -> str:
    """The text the kernel shows for a probe holding `millidegrees`."""
    if zeros:
        scratchpad = bytes(9)
    else:
        raw = round(millidegrees / 62.5).to_bytes(2, "little", signed=True)
        head = raw + bytes([0x4B, 0x46, 0x7F, 0xFF, 0x0E, 0x10])
        scratchpad = head + bytes([maxim_crc(head)])
    hexes = " ".join(f"{b:02x}" for b in scratchpad)
    if verdict is None:
        verdict = "YES" if maxim_crc(scratchpad) == 0 else "NO"
    return f"{hexes} : crc={scratchpad[-1]:02x} {verdict}\n{hexes} t={millidegrees}\n"


@pytest.fixture
def w1(tmp_path: Path) -> Path:
    """An empty w1 devices directory with the bus master the kernel always lists."""
    (tmp_path / "w1_bus_master1").mkdir()
    return tmp_path


@pytest.fixture
def probe(w1: Path):
    """Put a probe whose w1_slave reads `text` into the w1 directory."""

    def install(text: str, name: str = DEVICE) -> DS18B20:
        device = w1 / name
        device.mkdir(exist_ok=True)
        (device / "w1_slave").write_text(text)
        return DS18B20(base_dir=w1)

    return install


def test_w1_slave_helper_makes_a_valid_scratchpad() -> None:
    assert w1_slave(23125).splitlines()[0] == "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES"


def test_ds18b20_reads_a_good_probe(probe) -> None:
    reading = probe(w1_slave(36500)).read()
    assert reading.ok
    assert reading.celsius == reading.raw == 36.5


def test_ds18b20_parses_a_negative_temperature(probe) -> None:
    assert probe(w1_slave(-1250)).read().celsius == -1.25


def test_ds18b20_failed_crc_is_a_fault(probe) -> None:
    reading = probe(w1_slave(36500, verdict="NO")).read()
    assert reading.fault == "crc"
    assert reading.celsius is None


def test_ds18b20_retries_a_failed_crc(w1: Path, monkeypatch) -> None:
    path = w1 / DEVICE / "w1_slave"
    path.parent.mkdir()
    answers = [
        w1_slave(36500, verdict="NO"),
        w1_slave(36500, verdict="NO"),
        w1_slave(36500),
    ]
    reads: list[Path] = []

    def read_text(self: Path, *args: object, **kwargs: object) -> str:
        reads.append(self)
        return answers[len(reads) - 1]

    monkeypatch.setattr(Path, "read_text", read_text)
    reading = DS18B20(base_dir=w1, retries=2).read()
    assert reading.celsius == 36.5
    assert reads == [path] * 3


def test_ds18b20_power_on_value_is_a_fault(probe) -> None:
    reading = probe(w1_slave(85000)).read()
    assert reading.fault == "power_on_value"
    assert reading.celsius is None


def test_ds18b20_zero_scratchpad_is_a_fault_despite_crc_yes(probe) -> None:
    text = w1_slave(0, zeros=True)
    assert "crc=00 YES" in text  # the CRC of zeros is zero, so the kernel accepts it
    reading = probe(text).read()
    assert reading.fault == "zero_scratchpad"
    assert reading.celsius is None


def test_ds18b20_no_device_is_missing(w1: Path) -> None:
    assert DS18B20(base_dir=w1).read().fault == "missing"


def test_ds18b20_unplugged_named_device_is_missing(w1: Path) -> None:
    assert DS18B20(DEVICE, base_dir=w1).read().fault == "missing"


@pytest.mark.parametrize(
    "text",
    ["", "hello\n", "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n", w1_slave(36500)[:-8]],
    ids=["empty", "text", "one-line", "cut-short"],
)
def test_ds18b20_garbled_file_is_a_fault(probe, text: str) -> None:
    assert probe(text).read().fault == "garbled"


def test_ds18b20_unreadable_file_is_a_read_error(w1: Path) -> None:
    (w1 / DEVICE / "w1_slave").mkdir(parents=True)  # reading a directory fails with EISDIR
    assert DS18B20(base_dir=w1).read().fault == "read_error"


def test_ds18b20_discovers_the_first_28_device(probe) -> None:
    probe(w1_slave(20000), name="28-0000000000ff")
    sensor = probe(w1_slave(36500), name="28-000000000001")
    assert sensor.read().celsius == 36.5


def test_ds18b20_accepts_a_bare_device_name(probe, w1: Path) -> None:
    probe(w1_slave(36500))
    probe(w1_slave(20000), name="28-000000000001")
    assert DS18B20(DEVICE, base_dir=w1).read().celsius == 36.5


def test_ds18b20_accepts_a_device_path(probe, w1: Path) -> None:
    probe(w1_slave(37000))
    assert DS18B20(w1 / DEVICE).read().celsius == 37.0

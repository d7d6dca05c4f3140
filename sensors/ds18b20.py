"""Driver for a DS18B20 1-wire probe, read through the kernel's w1 sysfs files.

The kernel's `w1_slave` file holds the scratchpad, its CRC verdict and the temperature;
this module checks all three and turns what a probe gets wrong into faults.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Self

from sensors.thermometer import Reading

log = logging.getLogger(__name__)

DEFAULT_BASE_DIR = "/sys/bus/w1/devices"
POWER_ON_MILLIDEGREES = 85000  # the scratchpad's reset value: no conversion happened
_CRC_LINE = re.compile(r"^((?:[0-9a-f]{2} ){9}): crc=[0-9a-f]{2} (YES|NO)$", re.IGNORECASE)
_TEMP_LINE = re.compile(r"^((?:[0-9a-f]{2} ){9})t=(-?\d+)$", re.IGNORECASE)


class _Fault(Exception):
    def __init__(self, fault: str, detail: str) -> None:
        super().__init__(detail)
        self.fault = fault
        self.detail = detail


class DS18B20:
    """One DS18B20; with no device given, the first `28-*` one the kernel lists."""

    def __init__(
        self,
        device: str | Path | None = None,
        *,
        base_dir: str | Path = DEFAULT_BASE_DIR,
        retries: int = 2,
    ) -> None:
        self.base_dir = Path(base_dir)
        # A bare name such as "28-000001234567" lives under base_dir.
        self.device = None if device is None else self.base_dir / device
        self.retries = retries

    def read(self) -> Reading:
        """Read the probe once, retrying a failed CRC up to `retries` times."""
        attempt = 0
        while True:
            try:
                celsius = self._read_once()
            except _Fault as fault:
                if fault.fault == "crc" and attempt < self.retries:
                    attempt += 1
                    log.debug("DS18B20 CRC failed (try %d), reading again", attempt)
                    continue
                log.warning("DS18B20 fault %s: %s", fault.fault, fault.detail)
                return Reading.failed(fault.fault, fault.detail)
            return Reading(celsius=celsius, raw=celsius)

    def probe(self) -> Reading:
        """A probe is a read: the probe itself is what a screening reads, any value is fine."""
        return self.read()

    def close(self) -> None:
        """Nothing to release: every read opens and closes the sysfs file."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_once(self) -> float:
        path = self._find_device() / "w1_slave"
        try:
            text = path.read_text(encoding="ascii", errors="replace")
        except FileNotFoundError as exc:
            raise _Fault("missing", f"{path} does not exist: probe unplugged?") from exc
        except OSError as exc:
            raise _Fault("read_error", f"{path}: {exc}") from exc
        return _parse_w1_slave(text)

    def _find_device(self) -> Path:
        if self.device is not None:
            return self.device
        found = sorted(self.base_dir.glob("28-*"))
        if not found:
            raise _Fault("missing", f"no 28-* device under {self.base_dir}: is w1-gpio enabled?")
        return found[0]


def _parse_w1_slave(text: str) -> float:
    """Degrees Celsius from the text of a `w1_slave` file; raises `_Fault` when untrustworthy."""
    lines = text.strip().splitlines()
    crc = _CRC_LINE.match(lines[0].strip()) if len(lines) == 2 else None
    temp = _TEMP_LINE.match(lines[1].strip()) if crc else None
    if crc is None or temp is None:
        raise _Fault("garbled", f"unexpected w1_slave content: {text.strip()!r}")
    scratchpad = crc.group(1).split()
    if crc.group(2).upper() != "YES":
        raise _Fault("crc", f"scratchpad {' '.join(scratchpad)} failed its CRC")
    # Zeros have a CRC of zero, so the kernel says YES although nothing answered.
    if all(byte == "00" for byte in scratchpad):
        raise _Fault("zero_scratchpad", "all-zero scratchpad: the probe did not answer")
    millidegrees = int(temp.group(2))
    if millidegrees == POWER_ON_MILLIDEGREES:
        raise _Fault("power_on_value", "85 °C power-on value: the probe did not convert")
    return millidegrees / 1000

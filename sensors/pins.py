"""Choose gpiozero's pin factory: the real one on a Raspberry Pi, mock pins elsewhere.

A technician can run the whole station on a laptop; the log says which pins are in use.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL_FILE = Path("/proc/device-tree/model")


def on_raspberry_pi(model_file: Path = MODEL_FILE) -> bool:
    try:
        return "raspberry pi" in model_file.read_text(errors="replace").lower()
    except OSError:
        return False


def pin_factory(mock: bool) -> tuple[Any, bool]:
    """(factory, is_mock); None as the factory means gpiozero's default for this board."""
    if not mock and on_raspberry_pi():
        log.info("Raspberry Pi detected: using real GPIO pins")
        return None, False
    from gpiozero.pins.mock import MockFactory

    why = "--mock was given" if mock else "no Raspberry Pi detected"
    log.warning("%s: using mock GPIO pins (nothing physical is driven)", why)
    return MockFactory(), True

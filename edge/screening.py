"""The screening rule of Kemenkes KMK HK.01.07/MENKES/382/2020, as one pure function.

At or above the threshold the person waits and is measured again; a second reading at
or above it means entry refused and referral to the puskesmas. A fault is never a verdict.
"""

from __future__ import annotations

from edge.events import Screening
from sensors.thermometer import Reading


def decide(reading: Reading, *, second: bool, threshold_c: float) -> Screening:
    """The verdict for one reading; `second` is True for the re-check after the wait."""
    if reading.fault is not None or reading.celsius is None:
        return Screening.FAULT
    if reading.celsius < threshold_c:
        return Screening.NORMAL
    return Screening.REFUSED if second else Screening.RECHECK

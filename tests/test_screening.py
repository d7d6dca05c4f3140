"""The screening rule (KMK HK.01.07/MENKES/382/2020) as a table of cases."""

from __future__ import annotations

import pytest

from edge.events import Screening
from edge.screening import decide
from sensors.thermometer import Reading

T = 37.3

CASES = [
    # (reading, second reading?, threshold, verdict)
    (Reading(36.5, 36.5), False, T, Screening.NORMAL),
    (Reading(37.29, 37.29), False, T, Screening.NORMAL),
    (Reading(37.3, 37.3), False, T, Screening.RECHECK),  # "at or above" the threshold
    (Reading(39.0, 39.0), False, T, Screening.RECHECK),  # never refused on a first reading
    (Reading(37.29, 37.29), True, T, Screening.NORMAL),  # second reading below: admitted
    (Reading(37.3, 37.3), True, T, Screening.REFUSED),
    (Reading(38.4, 38.4), True, T, Screening.REFUSED),
    (Reading.failed("i2c_error"), False, T, Screening.FAULT),
    (Reading.failed("pec_mismatch"), True, T, Screening.FAULT),  # a fault is never a verdict
    (Reading(None, 36.0), False, T, Screening.FAULT),  # no value at all
    (Reading(37.6, 37.6), False, 37.8, Screening.NORMAL),  # the threshold is a setting
    (Reading(37.8, 37.8), True, 37.8, Screening.REFUSED),
]


@pytest.mark.parametrize(("reading", "second", "threshold", "verdict"), CASES)
def test_screening_rule(
    reading: Reading, second: bool, threshold: float, verdict: Screening
) -> None:
    assert decide(reading, second=second, threshold_c=threshold) == verdict

"""The press path on mock pins: button → screening → durable event → lights and buzzer."""

from __future__ import annotations

import errno
import resource
import signal
from collections.abc import Callable

import pytest

from edge.station import photo_path
from sensors.camera import FakeCamera
from tests.support.guard import Guard


def test_station_resident_entry_is_stored_then_acknowledged(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    outcome = g.press("masuk_warga")
    assert outcome.event is not None
    assert outcome.event["kind"] == "in"
    assert outcome.event["who"] == "resident"
    assert outcome.event["temp_c"] == 36.6
    assert outcome.event["screening"] == "normal"
    assert outcome.pattern == "stored"
    assert g.post.store.get(outcome.event["seq"]) == outcome.event  # durable before the ack
    green = g.pin("led_green")
    assert any(state.state for state in green.states)  # the green LED lit


def test_station_visitor_exit_is_not_screened(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    outcome = g.press("keluar_pendatang")
    assert outcome.event is not None
    assert (outcome.event["kind"], outcome.event["who"]) == ("out", "visitor")
    assert "temp_c" not in outcome.event and "screening" not in outcome.event
    assert g.post.thermometer.reads == 0


def test_station_fever_is_measured_again_after_the_wait(guard: Callable[..., Guard]) -> None:
    g = guard([38.1, 38.3])
    first = g.press("masuk_pendatang")
    assert first.event["screening"] == "recheck"
    assert first.pattern == "recheck"
    assert [p.seq for p in g.post.station.pending] == [first.event["seq"]]

    too_early = g.hold("masuk_pendatang")
    assert too_early.event is None
    assert too_early.pattern == "denied"
    assert "due in" in too_early.message

    g.clock.advance(300)
    second = g.hold("masuk_pendatang")
    assert second.event["kind"] == "recheck"
    assert second.event["ref"] == first.event["seq"]
    assert second.event["screening"] == "refused"
    assert second.pattern == "refused"
    assert g.post.station.pending == []
    assert g.post.store.get(first.event["seq"])["temp_c"] == 38.1  # both readings kept


def test_station_second_reading_below_threshold_admits(guard: Callable[..., Guard]) -> None:
    g = guard([37.5, 36.9])
    first = g.press("masuk_warga")
    g.clock.advance(301)
    second = g.hold("masuk_warga")
    assert (second.event["screening"], second.event["ref"]) == ("normal", first.event["seq"])
    assert second.pattern == "stored"


def test_station_sensor_fault_is_recorded_as_a_fault(guard: Callable[..., Guard]) -> None:
    g = guard(["pec_mismatch"])
    outcome = g.press("masuk_warga")
    assert outcome.event["screening"] == "fault"
    assert outcome.event["fault"] == "pec_mismatch"
    assert "temp_c" not in outcome.event
    assert outcome.pattern == "fault"
    assert g.post.feedback.played[-1] == "fault"


def test_station_implausible_reading_is_a_fault_never_a_fever(guard: Callable[..., Guard]) -> None:
    from sensors.simulated import ScriptedThermometer
    from sensors.thermometer import Calibrated

    g = guard(thermometer=Calibrated(ScriptedThermometer([85.0])))
    outcome = g.press("masuk_warga")
    assert (outcome.event["screening"], outcome.event["fault"]) == ("fault", "implausible")


def test_station_batal_voids_the_last_event_within_the_window(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    entry = g.press("masuk_warga")
    void = g.press("batal")
    assert void.event["kind"] == "void"
    assert void.event["ref"] == entry.event["seq"]
    assert void.pattern == "voided"


def test_station_batal_after_the_window_voids_nothing(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    g.press("keluar_warga")
    g.clock.advance(121)
    outcome = g.press("batal")
    assert outcome.event is None
    assert outcome.pattern == "denied"
    assert g.post.store.count == 1


def test_station_voiding_a_fever_entry_cancels_its_recheck(guard: Callable[..., Guard]) -> None:
    g = guard([38.0])
    g.press("masuk_warga")
    g.press("batal")
    assert g.post.station.pending == []


def test_station_darurat_needs_a_long_hold(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    brush = g.pin("darurat")
    brush.drive_low()
    brush.drive_high()  # released long before the hold time
    later = g.press("keluar_warga")
    assert later.event["kind"] == "out"
    assert g.nothing_more()  # the brush against Darurat made no event
    held = g.hold("darurat")
    assert held.event["kind"] == "emergency"
    assert held.pattern == "emergency"


def test_station_bounce_within_dead_time_is_one_press(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    pin = g.pin("keluar_warga")
    for _ in range(3):  # contact bounce: no time passes on the station's clock
        pin.drive_low()
        pin.drive_high()
    g.clock.advance(0.3)
    pin.drive_low()  # a double press 300 ms later
    pin.drive_high()
    g.next_outcome()
    g.press("keluar_pendatang")
    assert [e["kind"] + "/" + e["who"] for e in g.post.store.since(0)] == [
        "out/resident",
        "out/visitor",
    ]


def test_station_presses_after_the_dead_time_are_separate(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    g.press("keluar_warga")
    g.clock.advance(0.5)
    g.press("keluar_warga")
    assert g.post.store.count == 2


def test_station_pending_recheck_survives_a_restart(guard: Callable[..., Guard]) -> None:
    g = guard([38.0])
    first = g.press("masuk_warga")
    g.post.close()
    again = guard([36.8])
    assert [p.seq for p in again.post.station.pending] == [first.event["seq"]]
    again.clock.advance(300)
    second = again.hold("masuk_warga")
    assert second.event["ref"] == first.event["seq"]


def test_station_takes_a_photo_only_when_a_camera_is_on(guard: Callable[..., Guard]) -> None:
    camera = FakeCamera()
    g = guard([36.6], camera=camera)
    outcome = g.press("masuk_pendatang")
    assert outcome.event["photo"] is True
    assert photo_path(g.post.store.data_dir, outcome.event["seq"]).read_bytes()[:2] == b"\xff\xd8"


def test_station_without_camera_stores_no_photo(guard: Callable[..., Guard]) -> None:
    g = guard([36.6])
    outcome = g.press("masuk_pendatang")
    assert "photo" not in outcome.event
    assert not (g.post.store.data_dir / "photos").exists()


def test_station_full_disk_is_not_acknowledged_and_loses_nothing(
    guard: Callable[..., Guard],
) -> None:
    g = guard([36.6])
    stored = g.press("masuk_warga").event
    segment = max((g.post.store.data_dir / "events").glob("*.jsonl"))
    size = segment.stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 10, hard))  # the disk is "full"
    try:
        refused = g.press("keluar_warga")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert refused.event is None
    assert refused.pattern == "store_unavailable"
    assert g.post.feedback.played[-1] == "store_unavailable"
    assert "EFBIG" in refused.message or str(errno.EFBIG) in refused.message
    assert g.post.store.health()["ok"] is False
    assert segment.stat().st_size == size  # nothing half-written
    after = g.press("keluar_warga")  # the disk has room again
    assert after.event["seq"] == stored["seq"] + 1
    assert g.post.store.health()["ok"] is True


@pytest.mark.parametrize("button", ["masuk_warga", "masuk_pendatang"])
def test_station_entry_buttons_name_who_entered(guard: Callable[..., Guard], button: str) -> None:
    g = guard([36.6])
    outcome = g.press(button)
    assert outcome.event["who"] == ("resident" if button == "masuk_warga" else "visitor")


def test_station_records_a_correction_through_the_same_writer(guard: Callable[..., Guard]) -> None:
    from edge.events import Kind

    g = guard([36.6])
    entry = g.press("masuk_pendatang").event
    details = {"name": "Budi", "origin": "Bandung"}
    outcome = g.post.station.record(
        Kind.VISITOR, ref=entry["seq"], who="visitor", data=details
    ).result(5)
    assert outcome.event["seq"] == entry["seq"] + 1
    assert g.post.store.get(outcome.event["seq"])["data"] == details
    assert g.post.feedback.played == ["stored"]  # a record plays no lights


def test_station_settings_take_effect_without_a_restart(guard: Callable[..., Guard]) -> None:
    g = guard([37.5, 37.5])
    first = g.press("masuk_warga")
    assert first.event["screening"] == "recheck"
    restart = g.post.reconfigure(
        g.post.config.replace(screening__threshold_c=37.8, thermometer__offset_c=0.0)
    )
    assert restart == []
    second = g.press("masuk_warga")
    assert second.event["screening"] == "normal"

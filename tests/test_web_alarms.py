"""Alarms that stay on the guard's screen until someone deals with them: an emergency until
a guard holds "handled" (with the district's answer), and a press the store could not
keep until the store works again. Flask's test client on a real Post and a real store."""

from __future__ import annotations

import queue
import resource
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from edge.config import Config
from edge.events import Event, Kind
from edge.post import Post
from edge.station import Outcome
from sensors.thermometer import Reading
from sync.schema import check_event
from tests.support.guard import WAIT_S, Guard
from tests.support.web_support import Screen
from web import alarms


def alarm_of(html: str) -> str | None:
    """Which alarm covers the screen ("emergency", "store") or None."""
    for kind in ("emergency", "store"):
        if f'data-alarm="{kind}"' in html:
            return kind
    return None


def handle(screen: Screen, seq: int, **extra: str) -> int:
    form = {"seq": str(seq), "hold": "1", **extra}
    return screen.post_form("/darurat/handled", form, as_json=True).status_code


@contextmanager
def full_disk(post: Post) -> Iterator[None]:
    """The journal cannot grow (the way a full SD card fails): writes get EFBIG."""
    segment = max((post.store.data_dir / "events").glob("*.jsonl"))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (segment.stat().st_size + 10, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)


@pytest.fixture
def screen(open_post: Callable[..., Post]) -> Screen:
    return Screen(open_post([36.6, 36.5, 36.4]))


def test_web_alarms_emergency_stays_until_a_guard_marks_it_handled(screen: Screen) -> None:
    screen.press("masuk_warga")
    fired = screen.press("darurat", confirm="1")
    assert fired.json is not None and fired.json["seq"] == 2
    screen.press("masuk_warga")  # the post goes on: the alarm stays
    html = screen.text("/live/panel")
    assert alarm_of(html) == "emergency" and 'data-seq="2"' in html
    assert "DARURAT" in html and 'class="alarm-time">08:00<' in html  # START: 08:00 WIB
    assert "Tahan 2 detik bila sudah ditangani" in html
    assert alarm_of(screen.text("/")) == "emergency"  # a reload shows it too

    assert handle(screen, 2) == 200
    assert alarm_of(screen.text("/live/panel")) is None
    note = screen.post.store.recent(1)[0]
    assert note["kind"] == Kind.NOTE and note["ref"] == 2
    assert note["data"] == {"emergency": "handled"}
    assert "Darurat ditangani" in screen.text("/live/panel")


def test_web_alarms_handled_needs_the_hold_and_the_right_emergency(screen: Screen) -> None:
    screen.press("darurat", confirm="1")
    assert handle(screen, 1, hold="0") == 400  # a tap sends no hold
    assert handle(screen, 7) == 409  # a stale page names another emergency
    assert screen.post.store.count == 1
    assert alarm_of(screen.text("/live/panel")) == "emergency"
    assert "Ya, sudah ditangani" in screen.text("/darurat/handled")  # the no-script step


def test_web_alarms_newer_emergency_is_the_one_shown(screen: Screen) -> None:
    screen.press("darurat", confirm="1")
    screen.press("darurat", confirm="1")
    assert 'data-seq="2"' in screen.text("/live/panel")
    assert handle(screen, 2) == 200  # handles both
    assert alarm_of(screen.text("/live/panel")) is None


def test_web_alarms_voided_emergency_is_no_alarm(screen: Screen) -> None:
    screen.press("darurat", confirm="1")
    assert screen.press("batal").json["pattern"] == "voided"  # type: ignore[index]
    assert alarm_of(screen.text("/live/panel")) is None


def test_web_alarms_emergency_survives_a_restart(
    open_post: Callable[..., Post], guard: Callable[..., Guard]
) -> None:
    g = guard([36.6])
    assert g.hold("darurat").pattern == "emergency"  # the physical button
    g.post.close()
    screen = Screen(open_post([36.6]))
    html = screen.text("/")
    assert alarm_of(html) == "emergency" and 'data-seq="1"' in html
    assert handle(screen, 1) == 200
    screen.post.close()
    assert alarm_of(Screen(open_post([36.6])).text("/")) is None


def test_web_alarms_emergency_shows_whether_the_district_has_it(
    open_post: Callable[..., Post], config: Config
) -> None:
    post = open_post([36.6], cfg=config.replace(mqtt__broker="127.0.0.1:1883"))
    screen = Screen(post)
    screen.press("darurat", confirm="1")
    html = screen.text("/live/panel")
    assert 'data-district="waiting"' in html and "Belum diterima kabupaten" in html
    post.store.acknowledge(1)  # what the sync worker does on the district's ack
    html = screen.text("/live/panel")
    assert 'data-district="received"' in html and "Sudah diterima kabupaten" in html
    screen.client.set_cookie("lang", "en")
    assert "Received by the district" in screen.text("/live/panel")


def test_web_alarms_emergency_without_sync_says_to_phone(screen: Screen) -> None:
    screen.press("darurat", confirm="1")
    html = screen.text("/live/panel")
    assert 'data-district="off"' in html and "kabari lewat telepon" in html


def test_web_alarms_handled_note_is_accepted_by_the_district(screen: Screen) -> None:
    screen.press("darurat", confirm="1")
    handle(screen, 1)
    for event in screen.post.store.recent(2):
        check_event(event, screen.post.store.post)  # raises PayloadError if refused


def outage_note(outcomes: queue.Queue[Outcome]) -> Event:
    """The note that ends a storage failure, once the station has stored it."""
    while True:
        outcome = outcomes.get(timeout=WAIT_S)
        if outcome.event is not None and alarms.OUTAGE in outcome.event.get("data", {}):
            return outcome.event


def test_web_alarms_press_not_stored_takes_over_until_the_store_works(screen: Screen) -> None:
    outcomes: queue.Queue[Outcome] = queue.Queue()
    screen.post.station.watch(outcomes.put)
    screen.press("masuk_warga")
    with full_disk(screen.post):
        lost = screen.press("keluar_warga")
        assert lost.status_code == 503 and lost.json is not None
        assert lost.json["pattern"] == "store_unavailable"
        html = screen.text("/live/panel")
        assert alarm_of(html) == "store" and "TIDAK TERSIMPAN — catat di buku" in html
        assert "1 catatan gagal disimpan" in html
        assert screen.post.feedback.played[-1] == "store_unavailable"  # lights and buzzer
        screen.press("keluar_warga")
        assert "2 catatan gagal disimpan" in screen.text("/live/panel")
    assert screen.press("keluar_warga").status_code == 200  # the store works again
    assert alarm_of(screen.text("/live/panel")) is None
    assert outage_note(outcomes)["data"][alarms.OUTAGE]["presses_not_stored"] == 2


def test_web_alarms_store_check_clears_the_alarm_without_a_press(
    open_post: Callable[..., Post], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alarms, "CHECK_S", 0.05)
    post = open_post([36.6])
    screen = Screen(post)
    outcomes: queue.Queue[Outcome] = queue.Queue()
    post.station.watch(outcomes.put)
    screen.press("masuk_warga")
    with full_disk(post):
        screen.press("keluar_warga")
        assert alarm_of(screen.text("/live/panel")) == "store"
    note = outage_note(outcomes)  # a periodic check, now that the disk has room
    assert note["data"][alarms.OUTAGE]["presses_not_stored"] == 1
    assert alarm_of(screen.text("/live/panel")) is None


class NoBus:
    """An MLX90614 configured on a Pi whose I2C bus is missing: every probe fails."""

    def read(self) -> Reading:
        return Reading.failed("i2c_error", "no I2C bus")

    def probe(self) -> Reading:
        return self.read()

    def close(self) -> None:
        pass


def test_web_alarms_missing_thermometer_shows_before_anyone_is_measured(
    open_post: Callable[..., Post],
) -> None:
    screen = Screen(open_post(thermometer=NoBus()))
    html = screen.text("/live/panel")
    assert 'id="sensor-chip"' in html and "Termometer tidak merespons" in html
    assert screen.post.store.count <= 1  # at most the probe's own note: nobody was measured

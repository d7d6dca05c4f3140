"""The coordinator sets the post's clock from the page: behind the PIN, from the device's
own clock, after a confirm step, recorded as a `setting` event; the trust mark stays
honest afterwards. The clock seam is the real SystemClock over a scripted time source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.clock import HAND_SET_FILE, SystemClock
from edge.config import Config
from edge.events import Kind
from edge.post import Post
from tests.support.web_support import Screen
from web.pin import set_pin

PIN = "246810"
POST_TIME = datetime(2026, 11, 26, 20, 12, tzinfo=UTC)  # 03:12 at the post (WIB): wrong
DEVICE_TIME = datetime(2026, 11, 27, 3, 45, tzinfo=UTC)  # 10:45 at the post: right


class TimeSource:
    """The system clock (wall), the monotonic clock, the kernel's NTP verdict, the boot."""

    def __init__(self) -> None:
        self.wall = POST_TIME.timestamp()
        self.mono = 1000.0
        self.kernel = "unsynced"
        self.boot = "boot-1"

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds

    def clock(self, data_dir: Path | None) -> SystemClock:
        return SystemClock(
            data_dir,
            wall=lambda: self.wall,
            mono=lambda: self.mono,
            kernel=lambda: self.kernel,
            boot=lambda: self.boot,
        )


@pytest.fixture
def source() -> TimeSource:
    return TimeSource()


@pytest.fixture
def screen(config: Config, source: TimeSource) -> Screen:
    set_pin(config["data.dir"], PIN)
    clock = source.clock(Path(config["data.dir"]))
    post = Post(config, mock=True, clock=clock, use_config_sensors=False)
    screen = Screen(post)
    yield screen  # type: ignore[misc]
    post.close()


def device_ms(moment: datetime = DEVICE_TIME) -> str:
    return str(int(moment.timestamp() * 1000))


def set_clock(screen: Screen, moment: datetime = DEVICE_TIME) -> None:
    screen.sign_in(PIN)
    asked = screen.post_form("/clock", {"device_ms": device_ms(moment)})
    assert asked.status_code == 200
    done = screen.post_form("/clock", {"device_ms": device_ms(moment), "confirm": "1"})
    assert done.status_code == 302


def test_clock_seam_set_by_hand_holds_across_a_restart(tmp_path: Path, source: TimeSource) -> None:
    clock = source.clock(tmp_path)
    assert clock.state() == "unsynced"
    clock.set_to(DEVICE_TIME)
    source.advance(60)
    assert clock.now() == DEVICE_TIME.replace(minute=46)
    assert clock.state() == "manual" and clock.set_at() == DEVICE_TIME
    again = source.clock(tmp_path)  # the station restarted, the Pi did not
    assert again.state() == "manual" and again.now() == DEVICE_TIME.replace(minute=46)


def test_clock_seam_reboot_or_jump_ends_the_setting(tmp_path: Path, source: TimeSource) -> None:
    source.clock(tmp_path).set_to(DEVICE_TIME)
    source.boot = "boot-2"  # after a reboot the system clock is another guess
    rebooted = source.clock(tmp_path)
    assert rebooted.state() == "unsynced" and rebooted.now() == POST_TIME
    assert not (tmp_path / HAND_SET_FILE).exists()

    source.boot = "boot-1"
    clock = source.clock(tmp_path)
    clock.set_to(DEVICE_TIME)
    source.wall += 3600  # someone stepped the system clock
    assert clock.state() == "unsynced" and clock.set_at() is None


def test_clock_seam_network_time_wins(tmp_path: Path, source: TimeSource) -> None:
    clock = source.clock(tmp_path)
    clock.set_to(DEVICE_TIME)
    source.kernel = "synced"
    source.advance(61)  # the kernel's verdict is read again after a minute
    assert clock.state() == "synced"
    assert clock.now().timestamp() == pytest.approx(source.wall)  # no offset over NTP


def test_clock_page_needs_the_pin(screen: Screen) -> None:
    response = screen.get("/clock")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    screen.post_form("/clock", {"device_ms": device_ms(), "confirm": "1"})
    assert screen.post.clock.state() == "unsynced"


def test_clock_page_confirms_then_sets_and_records(screen: Screen) -> None:
    screen.sign_in(PIN)
    assert "Jam posko sekarang: 03:12" in screen.text("/clock")
    asked = screen.post_form("/clock", {"device_ms": device_ms()})
    html = asked.get_data(as_text=True)
    assert "Jam posko: 03:12; jam perangkat ini: 10:45 — setel?" in html
    assert screen.post.store.count == 0  # nothing happens before the confirm
    set_clock(screen)
    assert screen.post.clock.now() == DEVICE_TIME
    event = screen.post.store.recent(1)[0]
    assert event["kind"] == Kind.SETTING and event["clock"] == "manual"
    assert event["data"]["changes"]["clock"] == [
        "2026-11-26T20:12:00.000Z",
        "2026-11-27T03:45:00.000Z",
    ]
    assert "Jam posko disetel ke 10:45" in screen.text("/")


def test_clock_trust_mark_goes_for_events_after_the_setting(screen: Screen) -> None:
    screen.press("masuk_warga")  # stamped by the untrusted clock
    html = screen.text("/live/panel")
    assert "Jam belum tepercaya" in html and 'href="/clock"' in html  # the chip leads there
    set_clock(screen)
    screen.press("masuk_warga")
    html = screen.text("/live/panel")
    assert "Jam belum tepercaya" not in html.split('id="status"')[1]
    assert "Jam disetel manual pukul 10:45" in html  # weaker than network time, and says so
    rows = {r.split('"')[0]: r for r in html.split('data-seq="')[1:]}
    assert 'class="warn"' in rows["1"] and 'class="warn"' not in rows["3"]


def test_clock_trust_mark_comes_back_when_the_clock_jumps(
    screen: Screen, source: TimeSource
) -> None:
    set_clock(screen)
    source.wall -= 7 * 3600
    html = screen.text("/live/panel")
    assert "Jam belum tepercaya" in html and "Jam disetel manual" not in html


def test_clock_page_refuses_a_nonsense_device_time(screen: Screen) -> None:
    screen.sign_in(PIN)
    for bad in ("", "abc", device_ms(datetime(1970, 1, 2, tzinfo=UTC)), "9" * 30):
        answer = screen.post_form("/clock", {"device_ms": bad, "confirm": "1"})
        assert answer.status_code == 400, bad
    assert screen.post.clock.state() == "unsynced" and screen.post.store.count == 0


def test_clock_page_leaves_network_time_alone(screen: Screen, source: TimeSource) -> None:
    source.kernel = "synced"
    source.advance(61)
    screen.sign_in(PIN)
    answer = screen.post_form("/clock", {"device_ms": device_ms(), "confirm": "1"})
    assert answer.status_code == 409
    assert screen.post.clock.now().timestamp() == pytest.approx(source.wall)


def test_clock_synced_post_shows_no_clock_chip(open_post: Callable[..., Post]) -> None:
    html = Screen(open_post()).text("/live/panel")
    assert 'id="clock-chip"' not in html  # the virtual clock of the tests is synced

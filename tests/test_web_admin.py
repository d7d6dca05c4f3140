"""The admin PIN and its lockout, the settings page, photos, CSRF and loopback-only access."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.config import Config
from edge.events import Kind
from edge.post import Post
from sensors.camera import FakeCamera
from tests.support.web_support import Screen
from web.overrides import apply_overrides, load_overrides, toml_string
from web.pin import MAX_MISSES, AdminPin, PinError, set_pin

PIN = "246810"
FORM = {
    "post.name": "Posko RW 05",
    "screening.threshold_c": "37.5",
    "screening.recheck_wait_s": "240",
    "thermometer.offset_c": "0.3",
    "camera.driver": "none",
    "web.language": "id",
}


@pytest.fixture
def screen(open_post: Callable[..., Post], config: Config) -> Screen:
    set_pin(config["data.dir"], PIN)
    return Screen(open_post([36.6, 37.4]))


def test_web_settings_need_the_pin(screen: Screen) -> None:
    response = screen.get("/settings")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert screen.post_form("/settings", FORM).status_code == 302
    assert screen.post.config["post.name"] != "Posko RW 05"


def test_web_without_a_pin_settings_stay_locked(open_post: Callable[..., Post]) -> None:
    screen = Screen(open_post())
    html = screen.text("/login")
    assert 'id="no-pin"' in html and "posko set-pin" in html
    assert screen.sign_in("000000").status_code == 503  # there is no default PIN
    assert screen.get("/settings").status_code == 302


def test_web_wrong_pin_then_lockout(screen: Screen) -> None:
    for _ in range(MAX_MISSES - 1):
        wrong = screen.sign_in("111111")
        assert wrong.status_code == 401 and 'id="wrong"' in wrong.get_data(as_text=True)
    locked = screen.sign_in("111111")
    assert locked.status_code == 429
    assert screen.sign_in(PIN).status_code == 429  # even the right PIN waits now
    assert screen.get("/settings").status_code == 302


def test_web_lockout_ends_and_doubles(tmp_path: Path) -> None:
    now = [0.0]
    pin = AdminPin(tmp_path, clock=lambda: now[0])
    pin.path = Path(os.devnull)  # unreadable as JSON: every PIN is wrong
    for _ in range(MAX_MISSES):
        pin.check("1")
    first = pin.locked_for()
    now[0] += first + 1
    assert pin.locked_for() == 0
    for _ in range(MAX_MISSES):
        pin.check("1")
    assert pin.locked_for() == pytest.approx(first * 2)


def test_web_pin_must_be_6_to_12_digits(tmp_path: Path) -> None:
    for bad in ("", "12345", "abcdef", "1234567890123", "12 34 56"):
        with pytest.raises(PinError):
            set_pin(tmp_path, bad)
    set_pin(tmp_path, "123456")
    stored = tmp_path / "admin_pin.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "123456" not in stored.read_text()  # a salted hash only


def test_web_settings_apply_live_persist_and_are_recorded(screen: Screen, config: Config) -> None:
    assert screen.sign_in(PIN).status_code == 302
    response = screen.post_form("/settings", FORM)
    assert response.status_code == 302
    live = screen.post.config
    assert live["post.name"] == "Posko RW 05" and live["screening.threshold_c"] == 37.5
    assert screen.post.station.config["screening.recheck_wait_s"] == 240
    event = screen.post.store.recent(1)[0]
    assert event["kind"] == Kind.SETTING
    assert event["data"]["changes"]["screening.threshold_c"] == [37.3, 37.5]
    stored = load_overrides(config["data.dir"])
    assert stored["post.name"] == "Posko RW 05" and "web.language" not in stored
    assert apply_overrides(config)["thermometer.offset_c"] == 0.3  # a restart keeps them
    screen.press("masuk_warga")  # 36.6: normal
    assert screen.press("masuk_warga").json["pattern"] == "stored"  # type: ignore[index]
    assert "Posko RW 05" in screen.text("/")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("screening.threshold_c", "41"),
        ("screening.threshold_c", "panas"),
        ("screening.threshold_c", "nan"),
        ("screening.recheck_wait_s", "1.5"),
        ("thermometer.offset_c", "-9"),
        ("camera.driver", "webcam"),
        ("web.language", "fr"),
        ("post.name", "n" * 101),
    ],
)
def test_web_bad_settings_are_refused_like_the_config_file(
    screen: Screen, key: str, value: str
) -> None:
    screen.sign_in(PIN)
    before = screen.post.config
    response = screen.post_form("/settings", {**FORM, key: value})
    assert response.status_code == 400
    assert screen.post.config is before
    assert screen.post.store.count == 0


def test_web_settings_change_language_and_lan_access(screen: Screen) -> None:
    screen.sign_in(PIN)
    screen.post_form("/settings", {**FORM, "web.language": "en", "web.lan_access": "on"})
    assert screen.post.config["web.language"] == "en"
    assert screen.post.config["web.lan_access"] is True
    assert "Visitors inside" in screen.text("/")


def test_web_lan_is_refused_unless_allowed(screen: Screen) -> None:
    phone = {"REMOTE_ADDR": "192.168.1.20"}
    assert screen.client.get("/", environ_base=phone).status_code == 403
    screen.post.reconfigure(screen.post.config.replace(web__lan_access=True))
    assert screen.client.get("/", environ_base=phone).status_code == 200


def test_web_every_post_needs_the_csrf_token(screen: Screen) -> None:
    screen.sign_in(PIN)
    for path in ("/press", "/settings", "/login", "/logout", "/recheck/1", "/visitors/1/departed"):
        response = screen.post_form(path, {"button": "masuk_warga", **FORM}, token=False)
        assert response.status_code == 400, path
    forged = screen.client.post("/press", data={"button": "masuk_warga", "csrf_token": "x"})
    assert forged.status_code == 400
    assert screen.post.store.count == 0


def test_web_photo_only_behind_the_pin(open_post: Callable[..., Post], config: Config) -> None:
    set_pin(config["data.dir"], PIN)
    screen = Screen(open_post([36.6], camera=FakeCamera()))
    screen.press("masuk_pendatang")
    assert screen.post.store.get(1)["photo"] is True  # type: ignore[index]
    assert "photo.jpg" not in screen.text("/") and "photo.jpg" not in screen.text("/event/1")
    assert screen.get("/event/1/photo.jpg").status_code == 302  # to the PIN page
    screen.sign_in(PIN)
    assert "/event/1/photo.jpg" in screen.text("/event/1")
    photo = screen.get("/event/1/photo.jpg")
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    assert photo.data[:2] == b"\xff\xd8"
    assert "photo.jpg" not in screen.text("/")  # never on the live view


def test_web_logout_ends_the_admin_session(screen: Screen) -> None:
    screen.sign_in(PIN)
    assert screen.get("/settings").status_code == 200
    screen.post_form("/logout")
    assert screen.get("/settings").status_code == 302


def test_web_unknown_pages_and_methods_never_show_a_trace(screen: Screen) -> None:
    for response in (
        screen.get("/nothing-here"),
        screen.client.delete("/"),
        screen.get("/event/abc"),
    ):
        body = response.get_data(as_text=True)
        assert response.status_code in (404, 405) and "Traceback" not in body
    headers = screen.get("/").headers
    assert "default-src 'self'" in headers["Content-Security-Policy"]


def test_web_crash_in_a_view_is_a_plain_500(
    screen: Screen, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(day: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(screen.services.figures, "of_day", boom)
    response = screen.get("/report")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in body and "Traceback" not in body


def test_web_overrides_file_round_trips_any_text(config: Config) -> None:
    from web.overrides import save_overrides

    name = 'Posko "RW\\05"\n\t\x7f — ☕'
    save_overrides(config["data.dir"], {"post.name": name, "web.lan_access": True})
    assert load_overrides(config["data.dir"]) == {"post.name": name, "web.lan_access": True}
    assert toml_string("a\x00b") == '"a\\u0000b"'


@pytest.mark.slow
def test_web_set_pin_command(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    command = [sys.executable, "-m", "posko.cli", "--data", str(tmp_path), "set-pin", "--stdin"]
    bad = subprocess.run(command, input="12\n", capture_output=True, text=True, env=env, timeout=60)
    assert bad.returncode == 2 and "6 to 12 digits" in bad.stderr
    good = subprocess.run(
        command, input=f"{PIN}\n", capture_output=True, text=True, env=env, timeout=60
    )
    assert good.returncode == 0, good.stderr
    assert AdminPin(tmp_path).check(PIN).ok

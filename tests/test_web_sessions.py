"""The admin's session and PIN as an attacker meets them: a cookie copied before logout, a
restart to buy more guesses, a PIN file the station cannot read, `sudo posko set-pin`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.config import Config
from edge.post import Post
from tests.support.station_proc import POSKO, TIMEOUT, clean_env
from tests.support.web_support import Screen
from web.pin import LOCK_FILE, LOCK_S, MAX_MISSES, AdminPin, set_pin

PIN = "246810"
COOKIE = "posko_session"
NOBODY = 65534


@pytest.fixture
def screen(open_post: Callable[..., Post], config: Config) -> Screen:
    set_pin(config["data.dir"], PIN)
    return Screen(open_post([36.6]))


def test_sessions_a_cookie_saved_before_logout_opens_nothing_after(screen: Screen) -> None:
    assert screen.sign_in(PIN).status_code == 302
    saved = screen.client.get_cookie(COOKIE)
    assert saved is not None and screen.get("/settings").status_code == 200
    assert screen.post_form("/logout").status_code == 302
    screen.client.set_cookie(COOKIE, saved.value)  # the copy an onlooker kept
    replayed = screen.get("/settings")
    assert replayed.status_code == 302 and "/login" in replayed.headers["Location"]


def test_sessions_logout_ends_every_browser_s_admin_session(screen: Screen) -> None:
    phone = Screen(screen.post)  # another browser, signed in before the logout
    phone.sign_in(PIN)
    assert phone.get("/settings").status_code == 200
    screen.sign_in(PIN)
    screen.post_form("/logout")
    assert phone.get("/settings").status_code == 302


def test_sessions_stay_ended_after_a_restart(screen: Screen) -> None:
    screen.sign_in(PIN)
    saved = screen.client.get_cookie(COOKIE)
    assert saved is not None
    screen.post_form("/logout")
    restarted = Screen(screen.post)  # a new app on the same data directory
    restarted.client.set_cookie(COOKIE, saved.value)
    assert restarted.get("/settings").status_code == 302


def test_sessions_a_new_pin_ends_the_admin_sessions(screen: Screen, config: Config) -> None:
    screen.sign_in(PIN)
    assert screen.get("/settings").status_code == 200
    set_pin(config["data.dir"], "135790")
    assert screen.get("/settings").status_code == 302


def test_sessions_pin_lockout_survives_a_restart(tmp_path: Path) -> None:
    set_pin(tmp_path, PIN)
    for _ in range(MAX_MISSES - 1):
        assert AdminPin(tmp_path).check("111111").reason == "wrong"  # a restart between each
    assert AdminPin(tmp_path).check("111111").reason == "locked"
    after_restart = AdminPin(tmp_path)
    assert after_restart.locked_for() > LOCK_S - 5
    assert after_restart.check(PIN).reason == "locked"  # even the right PIN waits
    stored = tmp_path / LOCK_FILE
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_sessions_pin_lockout_on_the_page_survives_a_restart(screen: Screen) -> None:
    for _ in range(MAX_MISSES):
        screen.sign_in("111111")
    restarted = Screen(screen.post)
    assert restarted.sign_in(PIN).status_code == 429
    assert 'id="locked"' in restarted.text("/login")


def test_sessions_pin_lockout_is_not_lengthened_by_a_clock_set_back(tmp_path: Path) -> None:
    set_pin(tmp_path, PIN)
    now = [2_000_000_000.0]
    pin = AdminPin(tmp_path, clock=lambda: now[0])
    for _ in range(MAX_MISSES):
        pin.check("1")
    now[0] -= 10 * 365 * 24 * 3600  # the Pi booted without its time
    assert 0 < pin.locked_for() <= LOCK_S


def test_sessions_pin_lockout_is_counted_when_it_cannot_be_kept(tmp_path: Path) -> None:
    set_pin(tmp_path, PIN)
    pin = AdminPin(tmp_path)
    (tmp_path / LOCK_FILE).mkdir()  # cannot be replaced by a file: kept in memory
    for _ in range(MAX_MISSES):
        pin.check("1")
    assert pin.check(PIN).reason == "locked"


def test_sessions_a_new_pin_ends_the_lockout(tmp_path: Path) -> None:
    set_pin(tmp_path, PIN)
    for _ in range(MAX_MISSES):
        AdminPin(tmp_path).check("1")
    set_pin(tmp_path, "135790")  # the technician, at the Pi
    assert AdminPin(tmp_path).check("135790").ok


def test_sessions_an_unreadable_pin_file_says_why_login_is_unavailable(
    screen: Screen, config: Config
) -> None:
    path = Path(config["data.dir"], "admin_pin.json")
    path.unlink()
    path.mkdir()  # reads fail as a root-owned 0600 file fails for the user posko
    html = screen.text("/login")
    assert 'id="pin-unreadable"' in html and "posko set-pin" in html
    refused = screen.sign_in(PIN)
    assert refused.status_code == 503
    assert 'id="pin-unreadable"' in refused.get_data(as_text=True)
    screen.get("/lang/en")
    assert "cannot read its admin PIN file" in screen.text("/login")


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users may enter (pytest's own are root's alone)."""
    base = Path(tempfile.mkdtemp(prefix="posko-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


@pytest.mark.skipif(os.geteuid() != 0, reason="`sudo posko set-pin` needs root")
def test_sessions_sudo_set_pin_writes_files_the_station_user_can_read(shared_dir: Path) -> None:
    data = shared_dir / "data"
    data.mkdir()
    os.chown(data, NOBODY, NOBODY)  # the station's user owns its data directory
    result = subprocess.run(
        [*POSKO, "--data", str(data), "set-pin", "--stdin"],
        input=f"{PIN}\n",
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    written = sorted(data.iterdir())
    assert [p.name for p in written] == ["admin_epoch", "admin_pin.json"]
    assert {(p.stat().st_uid, stat.S_IMODE(p.stat().st_mode)) for p in written} == {(NOBODY, 0o600)}
    as_station = subprocess.run(
        ["cat", str(data / "admin_pin.json")], capture_output=True, user=NOBODY, timeout=TIMEOUT
    )
    assert as_station.returncode == 0 and json.loads(as_station.stdout)["algo"] == "scrypt"

"""The systemd units, the kiosk launcher, and the station's side of the notify protocol.

The units are checked by systemd itself (`systemd-analyze verify` and `security`), on copies
whose ExecStart points at this checkout's `posko`, since /opt/posko does not exist here.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from bench.ports import free_port

REPO = Path(__file__).resolve().parent.parent
UNITS = REPO / "systemd"
STATION = UNITS / "posko.service"
DISTRICT = UNITS / "posko-district.service"
DISTRICT_GROUP = UNITS / "posko-district@.service"  # N receivers in one $share group
KIOSK = UNITS / "posko-kiosk"
INSTALLED_POSKO = "/opt/posko/venv/bin/posko"
ANALYZE = shutil.which("systemd-analyze") or (
    "/usr/bin/systemd-analyze" if Path("/usr/bin/systemd-analyze").exists() else None
)
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
TIMEOUT = 30


def directives(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file (a key may repeat), ignoring sections and comments."""
    found: dict[str, list[str]] = defaultdict(list)
    for line in unit.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found[key.strip()].append(value.strip())
    return found


def runnable_copy(unit: Path, where: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's posko (it must exist for verify)."""
    posko = Path(sys.prefix) / "bin" / "posko"
    assert posko.exists(), f"{posko} missing: run `make setup`"
    copy = where / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_POSKO, str(posko)))
    return copy


def verify(unit: Path) -> list[str]:
    """systemd-analyze verify's complaints about this unit (it exits 0 on mere warnings)."""
    result = subprocess.run(
        [ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=TIMEOUT
    )
    lines = (result.stdout + result.stderr).splitlines()
    return [line for line in lines if unit.name in line] + (
        [f"exit status {result.returncode}"] if result.returncode else []
    )


@needs_analyze
@pytest.mark.parametrize("unit", [STATION, DISTRICT, DISTRICT_GROUP], ids=lambda u: u.name)
def test_systemd_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    assert verify(runnable_copy(unit, tmp_path)) == []


@needs_analyze
def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = tmp_path / "posko.service"
    broken.write_text(
        runnable_copy(STATION, tmp_path).read_text().replace("WatchdogSec=30", "WatchdogSec=soon")
    )
    assert any("WatchdogSec" in line or "sec value" in line for line in verify(broken))


@needs_analyze
@pytest.mark.parametrize(
    ("unit", "most"),
    [(STATION, 45), (DISTRICT, 25), (DISTRICT_GROUP, 25)],
    ids=["station", "district", "district-group"],
)
def test_systemd_unit_exposure_stays_low(unit: Path, most: int, tmp_path: Path) -> None:
    # The station keeps its devices (see the unit), so it cannot score as low as the receiver.
    result = subprocess.run(
        [ANALYZE, "security", "--offline=true", f"--threshold={most}",
         str(runnable_copy(unit, tmp_path))],
        capture_output=True, text=True, timeout=TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-400:] + result.stderr


def test_systemd_station_is_watched_and_restarted() -> None:
    unit = directives(STATION)
    assert unit["ExecStart"] == [f"{INSTALLED_POSKO} --config /etc/posko/config.toml run"]
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "WatchdogSec": "30",
        "Restart": "always",
        "RestartSec": "2",
        "TimeoutStopSec": "20",
        "KillSignal": "SIGTERM",
        "User": "posko",
        "Group": "posko",
        "StartLimitIntervalSec": "0",  # never give up restarting a post nobody attends
    }
    assert {key: unit[key] for key in expected} == {k: [v] for k, v in expected.items()}
    assert unit["SupplementaryGroups"][0].split() == ["gpio", "i2c", "video", "audio"]


HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "RestrictRealtime": "yes",
    "CapabilityBoundingSet": "",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
}


@pytest.mark.parametrize(
    ("unit", "state"),
    [(STATION, "posko"), (DISTRICT, "posko-district"), (DISTRICT_GROUP, "posko-district")],
    ids=["station", "district", "district-group"],
)
def test_systemd_units_are_hardened(unit: Path, state: str) -> None:
    found = directives(unit)
    assert {key: found[key] for key in HARDENING} == {k: [v] for k, v in HARDENING.items()}
    assert found["StateDirectory"] == [state]
    families = found["RestrictAddressFamilies"][0].split()
    # AF_NETLINK only for the station's camera (libcamera's udev monitor)
    assert {"AF_UNIX", "AF_INET", "AF_INET6"} <= set(families)
    assert set(families) <= {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}


def test_systemd_station_writes_only_its_data_directory() -> None:
    unit = directives(STATION)
    assert unit["ReadWritePaths"] == ["/var/lib/posko"]
    assert unit["ProtectSystem"] == ["strict"]


def test_systemd_station_keeps_its_hardware_devices_reachable() -> None:
    # gpiochip, i2c, video, media, vchiq and dma_heap must stay usable: no device sandbox,
    # and none of the options that add a DeviceAllow= allow list behind the scenes.
    unit = directives(STATION)
    assert unit.get("PrivateDevices", ["no"]) == ["no"]
    for hidden in ("DeviceAllow", "DevicePolicy", "ProtectClock"):
        assert hidden not in unit, f"{hidden}= would cut the station off its devices"


@pytest.mark.parametrize("unit", [STATION, DISTRICT, DISTRICT_GROUP], ids=lambda u: u.name)
def test_systemd_logs_go_to_the_journal(unit: Path) -> None:
    found = directives(unit)
    assert found["StandardError"] == ["journal"]
    outputs = found["StandardOutput"] + found["StandardError"]
    assert not [o for o in outputs if o.startswith(("file:", "append:", "truncate:"))]


def test_systemd_district_runs_the_receiver_on_loopback() -> None:
    unit = directives(DISTRICT)
    assert unit["Type"] == ["simple"]
    assert unit["ExecStart"] == [
        f"{INSTALLED_POSKO} district run --db /var/lib/posko-district/district.db "
        "--broker 127.0.0.1:1883 --web 127.0.0.1:8090 --metrics 127.0.0.1:9101 "
        "--signing-key ${CREDENTIALS_DIRECTORY}/district.key"
    ]
    assert unit["LoadCredential"] == ["district.key:/etc/posko-district/district.key"]
    assert unit["Restart"] == ["always"]


# What the template may change from the single receiver's unit; everything else (the
# hardening above all) must be the same, so that the two cannot drift apart.
GROUP_ONLY = {
    "Description",
    "Documentation",
    "Conflicts",
    "ExecStart",
    "Environment",
    "User",
    "SyslogIdentifier",
}


def test_systemd_district_group_is_hardened_like_the_single_receiver() -> None:
    single, group = directives(DISTRICT), directives(DISTRICT_GROUP)
    assert {k: v for k, v in group.items() if k not in GROUP_ONLY} == {
        k: v for k, v in single.items() if k not in GROUP_ONLY
    }
    assert group["Conflicts"] == ["posko-district.service"]  # never both at once
    assert "POSKO_CONFIG=/dev/null" in group["Environment"]  # never the station's config
    # One user name for every instance (and the single unit's): one owner of the database.
    assert group["DynamicUser"] == ["yes"] and group["User"] == ["posko-district"]


def instance_command(unit: Path, instance: str) -> list[str]:
    """ExecStart of one instance, expanded as systemd does: specifiers when the unit is
    loaded, then `$NAME` (split at whitespace, nothing when unset) when it starts."""
    found = directives(unit)
    env = dict(shlex.split(line)[0].split("=", 1) for line in found["Environment"] if "=" in line)
    words = shlex.split(found["ExecStart"][0].replace("%i", instance))
    expanded: list[str] = []
    for word in words:
        if word.startswith("$") and not word.startswith("${"):
            expanded += env.get(word[1:], "").split()
        else:
            expanded.append(word)
    return expanded


def flag(command: list[str], name: str) -> str | None:
    return command[command.index(name) + 1] if name in command else None


def test_systemd_district_instances_share_one_group_with_their_own_names_and_ports() -> None:
    commands = {i: instance_command(DISTRICT_GROUP, i) for i in "123"}
    for command in commands.values():
        assert command[:3] == [INSTALLED_POSKO, "district", "run"]
        assert flag(command, "--db") == "/var/lib/posko-district/district.db"
        assert flag(command, "--share") == "posko-district"  # one group: the batches split
        assert flag(command, "--broker") == "127.0.0.1:1883"
        assert flag(command, "--signing-key") == "${CREDENTIALS_DIRECTORY}/district.key"
    assert [flag(c, "--name") for c in commands.values()] == ["1", "2", "3"]  # client ids
    metrics = [flag(c, "--metrics") for c in commands.values()]
    assert metrics == ["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"]  # loopback
    # Only the first serves the page, on the single unit's address.
    assert flag(commands["1"], "--web") == "127.0.0.1:8090"
    assert "--web" not in commands["2"] and "--web" not in commands["3"]
    assert directives(DISTRICT_GROUP)["SyslogIdentifier"] == ["posko-district-%i"]


def test_systemd_district_instance_flags_are_accepted_by_posko() -> None:
    from posko.cli import build_parser

    command = instance_command(DISTRICT_GROUP, "2")
    args = build_parser().parse_args(command[1:])
    assert (args.share, args.name, args.metrics, args.web) == (
        "posko-district", "2", "127.0.0.1:9102", None
    )  # fmt: skip


def test_systemd_kiosk_autostart_runs_the_launcher() -> None:
    entry = directives(UNITS / "posko-kiosk.desktop")
    assert entry["Type"] == ["Application"]
    assert entry["Exec"] == ["/opt/posko/src/systemd/posko-kiosk"]  # where install.sh copies it
    assert os.access(KIOSK, os.X_OK)


# The kiosk launcher, with a fake curl and a fake browser on an otherwise empty PATH.


def fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def kiosk_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sleep").symlink_to(shutil.which("sleep") or "/bin/sleep")
    # curl fails twice (the station is still starting), then answers.
    log = tmp_path / "curl.log"
    fake(bin_dir, "curl", f'echo "$*" >> {log}; mapfile -t calls < {log}\n'
         '(( ${#calls[@]} > ${CURL_FAILS:-2} ))')  # fmt: skip
    return bin_dir


def run_kiosk(bin_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(KIOSK)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={"PATH": str(bin_dir), "POSKO_KIOSK_PAUSE": "0", "POSKO_KIOSK_ONCE": "1", **env},
    )


def test_systemd_kiosk_waits_for_healthz_then_opens_chromium(kiosk_bin: Path) -> None:
    log = kiosk_bin.parent / "browser.log"
    fake(kiosk_bin, "chromium", f'echo "chromium $*" >> {log}')  # Pi OS's newer name only
    result = run_kiosk(kiosk_bin)
    assert result.returncode == 0, result.stderr
    curls = (kiosk_bin.parent / "curl.log").read_text().splitlines()
    assert len(curls) == 3 and all("http://127.0.0.1:8080/healthz" in c for c in curls)
    args = log.read_text().split()
    assert args[0] == "chromium" and args[-1] == "http://127.0.0.1:8080/"
    flags = {"--kiosk", "--noerrdialogs", "--disable-session-crashed-bubble", "--incognito"}
    assert flags <= set(args)


def test_systemd_kiosk_prefers_chromium_browser(kiosk_bin: Path) -> None:
    log = kiosk_bin.parent / "browser.log"
    fake(kiosk_bin, "chromium", f"echo chromium >> {log}")
    fake(kiosk_bin, "chromium-browser", f"echo chromium-browser >> {log}")
    assert run_kiosk(kiosk_bin).returncode == 0
    assert log.read_text().split() == ["chromium-browser"]


def test_systemd_kiosk_gives_up_waiting_after_bounded_tries(kiosk_bin: Path) -> None:
    log = kiosk_bin.parent / "browser.log"
    fake(kiosk_bin, "chromium", f"echo opened >> {log}")
    result = run_kiosk(kiosk_bin, CURL_FAILS="1000", POSKO_KIOSK_TRIES="4")
    assert len((kiosk_bin.parent / "curl.log").read_text().splitlines()) == 4
    assert "opening anyway" in result.stderr
    assert log.read_text().split() == ["opened"]  # the guard sees an error page, not nothing


def test_systemd_kiosk_without_a_browser_says_so(kiosk_bin: Path) -> None:
    result = run_kiosk(kiosk_bin)
    assert result.returncode != 0
    assert "chromium" in result.stderr


# The station's side of the notify protocol, through a socket standing in for systemd.


@pytest.mark.slow
def test_systemd_station_notifies_ready_watchdog_and_stopping(tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(TIMEOUT)
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
        env.update(NOTIFY_SOCKET=address, WATCHDOG_USEC="400000")
        station = subprocess.Popen(
            [sys.executable, "-m", "posko.cli", "--data", str(tmp_path / "data"), "run",
             "--mock", "--web", f"127.0.0.1:{free_port()}"],
            cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            first = systemd.recv(4096).decode()
            assert first.splitlines()[0] == "READY=1"
            assert systemd.recv(4096).decode() == "WATCHDOG=1"  # healthy: pinged
            station.send_signal(signal.SIGTERM)
            messages = []
            while "STOPPING=1" not in messages:
                messages.append(systemd.recv(4096).decode())
            assert set(messages) <= {"WATCHDOG=1", "STOPPING=1"}
            assert station.wait(TIMEOUT) == 0
        finally:
            if station.poll() is None:
                station.kill()
                station.wait(TIMEOUT)
            assert station.stderr is not None
            stderr = station.stderr.read()
            station.stderr.close()
    assert "Traceback" not in stderr

"""systemd/install.sh in a scratch root, with small recorders standing in for apt-get,
systemctl, useradd and raspi-config.

The installer runs from a copy of systemd/ in a scratch checkout (so a test never depends on
what else lies in the working tree) and, except in the venv test, links this checkout's venv
instead of making one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import load
from sync.options import SyncOptions
from sync.signing import Signer
from tests.support.keys import NEXT_SIGNER, SIGNER, write_keys
from web.pin import AdminPin

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 60
PIN = "246810"
BOOT_CONFIG = "# Raspberry Pi OS\ndtparam=audio=on\n\n[cm4]\notg_mode=1\n"
RECORDED = ("apt-get", "systemctl", "useradd", "usermod", "groupadd", "chown", "raspi-config")


class Scratch:
    """A scratch root, a scratch checkout holding the installer, and the recorded commands."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.checkout = base / "checkout"
        self.bin = base / "bin"
        self.log = base / "calls.log"
        self.users = base / "users"
        for path in (self.root / "boot/firmware", self.checkout, self.bin):
            path.mkdir(parents=True)
        (self.root / "boot/firmware/config.txt").write_text(BOOT_CONFIG)
        shutil.copytree(REPO / "systemd", self.checkout / "systemd")
        (self.checkout / "README.md").write_text("posko\n")
        for junk in (".git", ".venv", "demo-data"):  # never copied to /opt/posko
            (self.checkout / junk).mkdir()
            (self.checkout / junk / "x").write_text("x")
        for name in RECORDED:
            self._script(name, f'echo "{name} $*" >> {self.log}')
        self._script(
            "useradd", f'echo "useradd $*" >> {self.log}; echo "${{@: -1}}" >> {self.users}'
        )
        # gpio and video exist; i2c is missing until I2C is enabled on a real Pi.
        self._script(
            "getent",
            f'case "$1" in passwd) grep -qx "$2" {self.users} 2>/dev/null ;;\n'
            'group) [[ "$2" == gpio || "$2" == video || "$2" == audio ]] ;; *) exit 2 ;; esac',
        )

    def _script(self, name: str, body: str) -> None:
        path = self.bin / name
        path.write_text(f"#!/bin/bash\n{body}\n")
        path.chmod(0o755)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
        env.update(
            POSKO_ROOT=str(self.root),
            SYSTEMCTL=str(self.bin / "systemctl"),
            APT_GET=str(self.bin / "apt-get"),
            USERADD=str(self.bin / "useradd"),
            USERMOD=str(self.bin / "usermod"),
            GROUPADD=str(self.bin / "groupadd"),
            GETENT=str(self.bin / "getent"),
            CHOWN=str(self.bin / "chown"),
            RASPI_CONFIG=str(self.bin / "raspi-config"),
            POSKO_RUNAS="",  # the test is not root everywhere; no posko user exists
            POSKO_VENV_LINK=sys.prefix,
        )
        env.update(extra)
        return env

    def install(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        return subprocess.run(
            ["bash", str(self.checkout / "systemd/install.sh"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=self.env(**env),
        )

    def calls(self, command: str = "") -> list[str]:
        lines = self.log.read_text().splitlines()
        return [line for line in lines if line.startswith(command)]

    @property
    def config(self) -> Path:
        return self.root / "etc/posko/config.toml"

    @property
    def data(self) -> Path:
        return self.root / "var/lib/posko"


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch(tmp_path)


def first_install(scratch: Scratch, *extra: str) -> subprocess.CompletedProcess[str]:
    result = scratch.install(
        "--post-id", "rw03-sukamaju", "--pin-stdin", "--i2c", "--1wire", *extra, stdin=PIN + "\n"
    )
    assert result.returncode == 0, result.stderr
    return result


def test_install_first_run_writes_a_valid_config_for_the_post(scratch: Scratch) -> None:
    first_install(scratch)
    config = load(scratch.config, env={})
    assert config["post.id"] == "rw03-sukamaju"
    assert config["data.dir"] == str(scratch.data)  # /var/lib/posko on the Pi itself
    assert config["thermometer.driver"] == "mlx90614"  # --i2c
    assert config["camera.driver"] == "none"
    assert scratch.config.stat().st_mode & 0o777 == 0o640
    assert f"chown root:posko {scratch.config}.new" in scratch.calls("chown")


def test_install_first_run_makes_the_directories(scratch: Scratch) -> None:
    first_install(scratch)
    assert (scratch.root / "etc/posko").stat().st_mode & 0o777 == 0o750
    assert scratch.data.stat().st_mode & 0o777 == 0o750
    assert f"chown posko:posko {scratch.data}" in scratch.calls("chown")
    src = scratch.root / "opt/posko/src"
    assert (src / "systemd/install.sh").exists() and (src / "README.md").exists()
    assert not {".git", ".venv", "demo-data"} & {p.name for p in src.iterdir()}
    assert os.readlink(scratch.root / "usr/local/bin/posko") == "/opt/posko/venv/bin/posko"


def test_install_first_run_sets_the_admin_pin(scratch: Scratch) -> None:
    first_install(scratch)
    assert (scratch.data / "admin_pin.json").stat().st_mode & 0o777 == 0o600
    assert AdminPin(scratch.data).check(PIN).ok
    assert not AdminPin(scratch.data).check("135791").ok


def test_install_first_run_makes_the_user_packages_buses_and_service(scratch: Scratch) -> None:
    first_install(scratch)
    assert scratch.calls("useradd") == [
        "useradd --system --user-group --home-dir /var/lib/posko --no-create-home "
        "--shell /usr/sbin/nologin --comment Posko station posko"
    ]
    assert scratch.calls("groupadd") == ["groupadd --system i2c"]  # the unit needs all three
    assert scratch.calls("usermod") == ["usermod --append --groups gpio,i2c,video,audio posko"]
    install = scratch.calls("apt-get install")
    assert len(install) == 1 and {"python3-venv", "python3-lgpio"} <= set(install[0].split())
    assert "python3-picamera2" not in install[0] and "mosquitto" not in install[0]
    assert scratch.calls("raspi-config") == ["raspi-config nonint do_i2c 0"]
    boot = (scratch.root / "boot/firmware/config.txt").read_text()
    assert boot.startswith(BOOT_CONFIG) and boot.endswith(
        "[all]\n# Posko: DS18B20 thermometer on BCM 4\ndtoverlay=w1-gpio\n"
    )
    unit = scratch.root / "etc/systemd/system/posko.service"
    assert unit.read_bytes() == (REPO / "systemd/posko.service").read_bytes()
    assert scratch.calls("systemctl") == [
        "systemctl daemon-reload",
        "systemctl enable --now posko.service",
    ]


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_install_second_run_changes_nothing(scratch: Scratch) -> None:
    first_install(scratch)
    before = snapshot(scratch.root)
    again = scratch.install("--i2c", "--1wire")  # no post id, no PIN: both are kept
    assert again.returncode == 0, again.stderr
    assert snapshot(scratch.root) == before  # config, PIN, units, code, config.txt
    assert scratch.calls("useradd") == []
    assert scratch.calls("systemctl") == [
        "systemctl daemon-reload",
        "systemctl enable --now posko.service",  # nothing changed: no restart
    ]
    assert "1-wire is already enabled" in again.stdout


def test_install_second_run_never_overwrites_the_config(scratch: Scratch) -> None:
    first_install(scratch)
    edited = scratch.config.read_text().replace('"Posko Kampung Tangguh"', '"Posko RW 03"')
    scratch.config.write_text(edited)
    again = scratch.install("--post-id", "other-post", stdin="")
    assert again.returncode == 0, again.stderr
    assert scratch.config.read_text() == edited
    assert "keeping the existing" in again.stdout


def test_install_restarts_a_running_station_when_the_code_changed(scratch: Scratch) -> None:
    first_install(scratch)
    (scratch.checkout / "README.md").write_text("posko, newer\n")
    assert scratch.install().returncode == 0
    assert scratch.calls("systemctl") == [
        "systemctl daemon-reload",
        "systemctl try-restart posko.service",
        "systemctl enable --now posko.service",
    ]
    assert (scratch.root / "opt/posko/src/README.md").read_text() == "posko, newer\n"


def test_install_options_add_camera_kiosk_and_district(scratch: Scratch) -> None:
    first_install(scratch, "--camera", "--kiosk", "--district")
    assert load(scratch.config, env={})["camera.driver"] == "picamera2"
    packages = scratch.calls("apt-get install")[0].split()
    assert {"python3-picamera2", "mosquitto", "curl"} <= set(packages)
    system = scratch.root / "etc/systemd/system"
    assert sorted(p.name for p in system.iterdir()) == ["posko-district.service", "posko.service"]
    desktop = scratch.root / "etc/xdg/autostart/posko-kiosk.desktop"
    assert desktop.read_bytes() == (REPO / "systemd/posko-kiosk.desktop").read_bytes()
    assert "raspi-config nonint do_boot_behaviour B4" in scratch.calls("raspi-config")
    assert scratch.calls("systemctl")[-1] == (
        "systemctl enable --now posko.service posko-district.service"
    )


def test_install_unattended_without_post_id_fails_clearly(scratch: Scratch) -> None:
    result = scratch.install("--pin-stdin", stdin=PIN + "\n")
    assert result.returncode == 2
    assert "no post id: give --post-id ID" in result.stderr
    assert not (scratch.root / "etc").exists()  # it stopped before changing anything
    assert scratch.calls() == []


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("--post-id", "RW 03"), PIN, "post id 'RW 03' is not valid"),
        (("--post-id", "rw03"), "1234", "6 to 12 digits"),
        (("--post-id", "rw03", "--wifi"), PIN, "unknown option: --wifi"),
    ],
    ids=["bad-post-id", "short-pin", "unknown-option"],
)
def test_install_refuses_bad_input_before_changing_anything(
    scratch: Scratch, args: tuple[str, ...], stdin: str, message: str
) -> None:
    result = scratch.install(*args, "--pin-stdin", stdin=stdin + "\n")
    assert result.returncode == 2
    assert message in result.stderr
    assert scratch.calls() == []


def test_install_takes_the_pin_from_the_environment(scratch: Scratch) -> None:
    result = scratch.install("--post-id", "rw03", POSKO_INSTALL_PIN=PIN)
    assert result.returncode == 0, result.stderr
    assert AdminPin(scratch.data).check(PIN).ok


def test_install_without_a_pin_warns_that_settings_stay_locked(scratch: Scratch) -> None:
    result = scratch.install("--post-id", "rw03")
    assert result.returncode == 0, result.stderr
    assert "settings stay locked" in result.stdout
    assert not (scratch.data / "admin_pin.json").exists()


def test_install_makes_a_venv_that_sees_apt_packages(scratch: Scratch) -> None:
    # The real path, with python3 played by a recorder: the venv must see apt's lgpio and
    # picamera2 (--system-site-packages), and posko is pip-installed from /opt/posko/src.
    venv = scratch.root / "opt/posko/venv"
    scratch._script(
        "python3",
        f'echo "python3 $*" >> {scratch.log}\n'
        f'if [[ $1 == -m && $2 == venv ]]; then mkdir -p "${{@: -1}}/bin"\n'
        f'  ln -s {scratch.bin}/python3 "${{@: -1}}/bin/python"\n'
        f'  ln -s {sys.prefix}/bin/posko "${{@: -1}}/bin/posko"\n'
        f'elif [[ $1 != -m ]]; then exec {sys.executable} "$@"; fi',
    )
    env = {"POSKO_VENV_LINK": "", "POSKO_PYTHON": str(scratch.bin / "python3")}
    result = scratch.install("--post-id", "rw03", **env)
    assert result.returncode == 0, result.stderr
    python = [call for call in scratch.calls("python3") if call.startswith("python3 -m")]
    assert python == [
        f"python3 -m venv --system-site-packages {venv}",
        f"python3 -m pip install --quiet --upgrade {scratch.root}/opt/posko/src",
    ]
    again = scratch.install(**env)  # the venv is kept, posko is brought up to date
    assert again.returncode == 0, again.stderr
    assert [call for call in scratch.calls("python3") if call.startswith("python3 -m")] == [
        f"python3 -m pip install --quiet --upgrade {scratch.root}/opt/posko/src"
    ]
    district = scratch.install("--district", **env)  # its receiver may run on PostgreSQL
    assert district.returncode == 0, district.stderr
    assert [call for call in scratch.calls("python3") if call.startswith("python3 -m")] == [
        f"python3 -m pip install --quiet --upgrade {scratch.root}/opt/posko/src[postgres]"
    ]


def test_install_wiring_picture_matches_the_readme_and_default_pins() -> None:
    from edge.settings import SETTINGS

    readme = (REPO / "README.md").read_text()
    svg = (REPO / "docs/wiring.svg").read_text()
    assert "![Wiring](docs/wiring.svg)" in readme
    defaults = {s.key: s.default for s in SETTINGS if s.key.startswith("pins.")}
    rows = re.findall(r"^\| .+? \| `(pins\.\w+)` \| (\d+) \| (\d+) \|$", readme, re.MULTILINE)
    assert {key for key, _, _ in rows} == set(defaults)
    for key, bcm, header_pin in rows:
        assert int(bcm) == defaults[key], key
        assert f"pin {header_pin} · BCM {bcm}<" in svg, key
    for header_pin, bcm in (("3", "2"), ("5", "3"), ("7", "4")):  # SDA, SCL, 1-wire
        assert f"pin {header_pin} · BCM {bcm}<" in svg


def test_install_script_runs_as_the_readme_says() -> None:
    script = REPO / "systemd/install.sh"
    assert os.access(script, os.X_OK)  # `sudo systemd/install.sh --i2c --kiosk`
    assert script.read_text().startswith("#!/usr/bin/env bash\n")
    assert "sudo systemd/install.sh --i2c --kiosk" in (REPO / "README.md").read_text()


# -- the district's public keys (signed acks) --------------------------------------------


def district_pub(base: Path, signer: Signer) -> Path:
    return write_keys(base / f"key-{signer.key_id}", signer)[1]


def test_install_pins_the_district_key_given(scratch: Scratch, tmp_path: Path) -> None:
    pub = district_pub(tmp_path, SIGNER)
    first_install(scratch, "--district-key", str(pub))
    (installed,) = (scratch.root / "etc/posko").glob("district-*.pub")
    assert installed.read_bytes() == pub.read_bytes()
    assert installed.stat().st_mode & 0o777 == 0o644
    config = load(scratch.config, env={})
    assert config["mqtt.district_keys"] == [str(installed)]
    options = SyncOptions.from_config(config.replace(mqtt__broker="district.example:8883"))
    assert [k.key_id for k in options.trust.keys] == [SIGNER.key_id]
    before = snapshot(scratch.root)
    again = scratch.install("--district-key", str(pub))
    assert again.returncode == 0, again.stderr
    assert snapshot(scratch.root) == before  # the same key again changes nothing


def test_install_adds_the_next_key_for_a_rotation(scratch: Scratch, tmp_path: Path) -> None:
    first_install(scratch, "--district-key", str(district_pub(tmp_path, SIGNER)))
    both = f"{district_pub(tmp_path, SIGNER)} {district_pub(tmp_path, NEXT_SIGNER)}"
    result = scratch.install(POSKO_INSTALL_DISTRICT_KEYS=both)
    assert result.returncode == 0, result.stderr
    config = load(scratch.config, env={})
    assert len(config["mqtt.district_keys"]) == 2
    options = SyncOptions.from_config(config.replace(mqtt__broker="district.example:8883"))
    assert {k.key_id for k in options.trust.keys} == {SIGNER.key_id, NEXT_SIGNER.key_id}


def test_install_without_a_district_key_warns_that_sync_stays_off(scratch: Scratch) -> None:
    result = first_install(scratch)
    assert "sync stays off" in result.stdout
    assert load(scratch.config, env={})["mqtt.district_keys"] == []


def test_install_refuses_a_private_key_as_the_district_key(
    scratch: Scratch, tmp_path: Path
) -> None:
    private, _ = write_keys(tmp_path / "k")
    result = scratch.install("--post-id", "rw03", "--district-key", str(private))
    assert result.returncode == 2
    assert "not a public key" in result.stderr
    assert scratch.calls() == []  # refused before changing anything


def test_install_district_makes_its_signing_key_and_the_station_pins_it(scratch: Scratch) -> None:
    first_install(scratch, "--district")
    keys = scratch.root / "etc/posko-district"
    assert (keys / "district.key").stat().st_mode & 0o777 == 0o600
    assert keys.stat().st_mode & 0o777 == 0o700
    signer = Signer.from_file(keys / "district.key")
    config = load(scratch.config, env={})
    options = SyncOptions.from_config(config.replace(mqtt__broker="127.0.0.1:1883"))
    assert [k.key_id for k in options.trust.keys] == [signer.key_id]
    again = scratch.install("--district")
    assert again.returncode == 0, again.stderr
    assert Signer.from_file(keys / "district.key").key_id == signer.key_id  # kept


def test_install_district_receivers_run_as_instances_of_the_template(scratch: Scratch) -> None:
    first_install(scratch, "--district", "--receivers", "3")
    system = scratch.root / "etc/systemd/system"
    assert sorted(p.name for p in system.iterdir()) == ["posko-district@.service", "posko.service"]
    calls = scratch.calls("systemctl")
    assert "systemctl disable --now posko-district.service" in calls  # the group replaces it
    assert calls[-1] == (
        "systemctl enable --now posko.service posko-district@1.service "
        "posko-district@2.service posko-district@3.service"
    )
    refused = scratch.install("--post-id", "rw03", "--district", "--receivers", "10")
    assert refused.returncode == 2 and "from 1 to 9" in refused.stderr

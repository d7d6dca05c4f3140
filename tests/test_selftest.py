"""`posko selftest`: the unattended mock run as a real process, and each check's verdicts."""

from __future__ import annotations

import io
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import Config
from edge.voice import TEST
from posko.commands.selftest import (
    FAIL,
    PASS,
    SKIP,
    WARN,
    Technician,
    check_broker,
    check_disk,
    open_bench,
    run_checks,
    selftest,
)
from posko.commands.selftest_checks import check_driver, check_voice
from sensors.simulated import ScriptedThermometer
from sensors.speaker import FakeSpeaker, SpeakerError
from tests.support.station_proc import POSKO, TIMEOUT, clean_env

CHECKS = [
    "button Masuk Warga",
    "button Masuk Pendatang",
    "button Keluar Warga",
    "button Keluar Pendatang",
    "button Batal",
    "button Darurat",
    "LED green",
    "LED red",
    "buzzer",
    "voice",
    "thermometer driver",
    "thermometer",
    "camera",
    "broker",
    "clock",
    "disk",
]


def posko(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POSKO, *args], capture_output=True, text=True, timeout=TIMEOUT, env=clean_env()
    )


def quiet() -> Technician:
    return Technician(yes=True, out=io.StringIO())


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield server.getsockname()[1]
    server.close()


def closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return int(port)


@pytest.mark.slow
def test_selftest_mock_yes_passes_and_prints_every_check(tmp_path: Path) -> None:
    result = posko("--data", str(tmp_path / "data"), "selftest", "--mock", "--yes")
    assert result.returncode == 0, result.stderr
    for check in CHECKS:
        assert check in result.stdout
    assert "press Masuk Warga now" in result.stderr  # prompts go to the technician
    assert "FAIL" not in result.stdout
    assert not (tmp_path / "data").exists()  # nothing written into the post's data


@pytest.mark.slow
def test_selftest_json_lists_every_check(tmp_path: Path) -> None:
    result = posko("--data", str(tmp_path), "selftest", "--mock", "--yes", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert [c["check"] for c in report["checks"]] == CHECKS
    assert {c["result"] for c in report["checks"]} <= {"PASS", "WARN", "SKIP"}
    assert list((tmp_path).iterdir()) == [tmp_path / "posko.pid"]  # locked, nothing stored


def test_selftest_faulty_thermometer_fails_with_status_1(config: Config) -> None:
    out = io.StringIO()
    status = selftest(
        config,
        quiet(),
        mock=True,
        thermometer=ScriptedThermometer(["i2c_error", "pec_mismatch", None]),
        use_config=False,
        as_json=True,
        out=out,
    )
    assert status == 1
    checks = {c["check"]: c for c in json.loads(out.getvalue())["checks"]}
    assert checks["thermometer"]["result"] == FAIL
    assert "i2c_error" in checks["thermometer"]["detail"]
    assert checks["button Batal"]["result"] == PASS  # only the thermometer failed


def test_selftest_thermometer_reports_mean_and_spread(config: Config) -> None:
    out = io.StringIO()
    thermometer = ScriptedThermometer([36.5, 36.7, 36.6, 36.6, 36.6])
    status = selftest(
        config, quiet(), mock=True, thermometer=thermometer, use_config=False, out=out
    )
    assert status == 0
    lines = out.getvalue().splitlines()
    line = next(x for x in lines if x.split()[:2] == ["thermometer", "PASS"])
    assert "mean 36.60 °C" in line and "spread 0.20 °C" in line
    assert thermometer.reads == 5


@pytest.mark.slow
def test_selftest_unpressed_button_fails_after_its_timeout(config: Config) -> None:
    bench = open_bench(config, mock=True, use_config=False)
    pins = config.pins

    def press_all_but_batal(name: str) -> None:
        if name != "batal":
            bench.press_later(pins[name])

    try:
        checks = run_checks(config, bench, quiet(), timeout=0.3, on_prompt=press_all_but_batal)
    finally:
        bench.close()
    verdicts = {c.check: c for c in checks}
    assert verdicts["button Batal"].result == FAIL
    assert "no press within 0.3 s" in verdicts["button Batal"].detail
    assert verdicts["button Darurat"].result == PASS
    assert verdicts["thermometer"].result == SKIP


def test_selftest_unreachable_broker_fails() -> None:
    port = closed_port()
    check = check_broker(f"127.0.0.1:{port}", timeout=2.0)
    assert check.result == FAIL
    assert f"127.0.0.1:{port}" in check.detail


def test_selftest_listening_broker_passes(listening: int) -> None:
    assert check_broker(f"127.0.0.1:{listening}").result == PASS
    assert check_broker("").result == SKIP


def test_selftest_broker_from_config_in_the_table(config: Config, listening: int) -> None:
    out = io.StringIO()
    cfg = config.replace(mqtt__broker=f"127.0.0.1:{listening}")
    assert selftest(cfg, quiet(), mock=True, use_config=False, out=out) == 0
    line = next(x for x in out.getvalue().splitlines() if x.startswith("broker"))
    assert "PASS" in line


def test_selftest_disk_thresholds(tmp_path: Path) -> None:
    assert check_disk(tmp_path, warn=0, fail=0).result == PASS
    assert check_disk(tmp_path, warn=2**62, fail=0).result == "WARN"
    assert check_disk(tmp_path / "not" / "yet", warn=2**62, fail=2**61).result == FAIL


@pytest.mark.slow
def test_selftest_refused_while_the_station_runs(
    tmp_path: Path, station: subprocess.Popen[str]
) -> None:
    result = posko("--data", str(tmp_path / "data"), "selftest", "--mock", "--yes")
    assert result.returncode == 1
    assert f"process {station.pid}" in result.stderr
    assert "stop it first" in result.stderr
    assert result.stdout == ""


def pi_model(tmp_path: Path) -> Path:
    """A /proc/device-tree/model as a Raspberry Pi 4 writes it (NUL-terminated)."""
    model = tmp_path / "model"
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.5\0")
    return model


def test_selftest_simulated_thermometer_on_a_pi_is_a_loud_warning(
    config: Config, tmp_path: Path
) -> None:
    out, stderr = io.StringIO(), io.StringIO()
    technician = Technician(yes=True, out=stderr)
    status = selftest(
        config, technician, mock=True, use_config=False, out=out, pi_model=pi_model(tmp_path)
    )
    assert status == 0  # a warning, not a failure: the technician decides
    row = next(x for x in out.getvalue().splitlines() if x.startswith("thermometer driver"))
    assert "WARN" in row and "simulated on a Raspberry Pi 4 Model B Rev 1.5" in row
    warning = "WARNING: thermometer driver simulated on a Raspberry Pi 4"
    assert out.getvalue().splitlines()[-1].startswith(warning)  # below the table
    assert stderr.getvalue().count(warning) == 1  # and on the technician's stderr


def test_selftest_names_the_thermometer_driver(config: Config, tmp_path: Path) -> None:
    laptop = tmp_path / "no-such-model"
    simulated = check_driver(config, laptop)
    assert simulated.result == PASS and "not a Raspberry Pi" in simulated.detail
    mlx = check_driver(config.replace(thermometer__driver="mlx90614"), pi_model(tmp_path))
    assert (mlx.result, mlx.detail) == (PASS, "mlx90614 on I2C bus 1, address 0x5a")
    ds = check_driver(config.replace(thermometer__driver="ds18b20"), pi_model(tmp_path))
    assert ds.detail == "ds18b20 on 1-wire first 28-* device"
    other = pi_model(tmp_path).with_name("other")
    other.write_bytes(b"Generic x86 board\0")
    assert check_driver(config, other).result == PASS  # only a real Pi is warned about
    assert check_driver(config, pi_model(tmp_path)).result == WARN


def test_selftest_plays_the_test_phrase_when_voice_is_on(config: Config) -> None:
    speaker = FakeSpeaker()
    check = check_voice(config.replace(voice__enabled=True), quiet(), speaker)
    assert check.result == PASS and speaker.said == [TEST]
    off = check_voice(config, quiet(), speaker)
    assert off.result == SKIP and "voice.enabled is false" in off.detail
    assert speaker.said == [TEST]  # nothing played when off


def test_selftest_voice_that_cannot_speak_fails(config: Config) -> None:
    class Mute(FakeSpeaker):
        def say(self, phrase: str) -> None:
            raise SpeakerError("espeak-ng is not installed (apt install espeak-ng)")

    check = check_voice(config.replace(voice__enabled=True), quiet(), Mute())
    assert check.result == FAIL and "apt install espeak-ng" in check.detail


def test_selftest_voice_not_heard_fails(config: Config) -> None:
    technician = Technician(out=io.StringIO(), inp=io.StringIO("n\n"))
    check = check_voice(config.replace(voice__enabled=True), technician, FakeSpeaker())
    assert check.result == FAIL and "not heard" in check.detail

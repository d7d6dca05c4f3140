"""`posko calibrate`: offset from the median of raw readings, saved into the config file
(every other line kept), refused when out of range, recorded as a NOTE event."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edge.config import Config, example_toml, load
from edge.store import EventStore
from posko.commands.calibrate import CalibrationRefused, calibrate, set_offset
from posko.commands.selftest import Technician
from posko.datadir import StationRunning
from sensors.simulated import ScriptedThermometer

POSKO = [sys.executable, "-m", "posko.cli"]
CONFIG = """\
# Posko at the north gate: keep this comment
[post]
id = "utara-01"  # the post's id

[thermometer]
# an MLX90614 would go here later
driver = "simulated"
gain = 1.0

[screening]
threshold_c = 37.3
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def cfg(config_file: Path, tmp_path: Path) -> Config:
    return load(config_file, env={}, overrides={"data.dir": str(tmp_path / "data")})


def run(
    cfg: Config, path: Path, reference: float, script: list, yes: bool = True, force: bool = False
) -> tuple:
    out, said = io.StringIO(), io.StringIO()
    answers = io.StringIO("" if yes else "n\n")
    result = calibrate(
        cfg,
        path,
        reference,
        thermometer=ScriptedThermometer(script),
        readings=len(script),
        technician=Technician(yes=yes, out=said, inp=answers),
        out=out,
        force=force,
    )
    return result, out.getvalue(), said.getvalue()


def stored_events(cfg: Config) -> list[dict]:
    with EventStore(cfg["data.dir"], cfg["post.id"], cfg["time.zone"]) as store:
        return store.since(0)


def test_calibrate_offset_from_the_median_with_faults_rejected(
    cfg: Config, config_file: Path
) -> None:
    script = [36.0, "i2c_error", 36.2, 36.1, None, 39.0, 36.1]
    result, out, _ = run(cfg, config_file, 36.9, script, force=True)
    assert result.readings == [36.0, 36.2, 36.1, 39.0, 36.1]
    assert result.faults == ["i2c_error", "no_value"]
    assert result.median_raw == 36.1
    assert result.offset_c == pytest.approx(0.8)
    assert "before      36.10 °C with offset +0.00" in out
    assert "after       36.90 °C with offset +0.80" in out
    assert "spread 3.00 °C" in out and "2 fault(s) rejected" in out


def test_calibrate_config_keeps_comments_and_keys_and_stays_valid(
    cfg: Config, config_file: Path
) -> None:
    run(cfg, config_file, 37.0, [36.5, 36.5, 36.5])
    text = config_file.read_text()
    assert text == CONFIG.replace("gain = 1.0\n", "gain = 1.0\noffset_c = 0.50\n")
    assert load(config_file, env={})["thermometer.offset_c"] == 0.5
    second = load(config_file, env={}, overrides={"data.dir": cfg["data.dir"]})
    result, out, _ = run(second, config_file, 36.0, [36.5, 36.5, 36.5])
    assert result.previous_offset_c == 0.5 and result.offset_c == -0.5
    assert "before      37.00 °C with offset +0.50" in out
    assert config_file.read_text().count("offset_c") == 1
    assert load(config_file, env={})["thermometer.offset_c"] == -0.5
    assert "# an MLX90614 would go here later" in config_file.read_text()


def test_calibrate_set_offset_edits_in_place_or_adds() -> None:
    edited = set_offset("[thermometer]\noffset_c = 0.1  # by hand\n[camera]\n", 0.35)
    assert edited == "[thermometer]\noffset_c = 0.35  # by hand\n[camera]\n"
    assert (
        set_offset('[post]\nid = "a"', -1.2)
        == '[post]\nid = "a"\n\n[thermometer]\noffset_c = -1.20\n'
    )
    assert set_offset("[thermometer]", 0.5) == "[thermometer]\noffset_c = 0.50\n"
    full = set_offset(example_toml(), 1.25)
    assert full.count("offset_c = ") == 1 and "offset_c = 1.25" in full


def test_calibrate_out_of_range_offset_is_refused(cfg: Config, config_file: Path) -> None:
    with pytest.raises(CalibrationRefused, match="outside the allowed"):
        run(cfg, config_file, 36.8, [30.5, 30.6, 30.4])
    assert config_file.read_text() == CONFIG
    assert stored_events(cfg) == []


def test_calibrate_refuses_readings_spread_too_wide(cfg: Config, config_file: Path) -> None:
    with pytest.raises(CalibrationRefused, match=r"spread over 1\.56 °C.*--force"):
        run(cfg, config_file, 36.8, [35.9, 36.5, 37.46])
    assert config_file.read_text() == CONFIG
    assert stored_events(cfg) == []


def test_calibrate_spread_limit_is_a_setting_and_force_overrides_it(
    cfg: Config, config_file: Path
) -> None:
    result, _, _ = run(cfg, config_file, 36.8, [35.9, 36.5, 37.46], force=True)
    assert result is not None and load(config_file, env={})["thermometer.offset_c"] == 0.3
    wide = cfg.replace(thermometer__calibration_spread_c=2.0)
    result, out, _ = run(wide, config_file, 36.8, [35.9, 36.5, 37.46])
    assert result is not None and "spread 1.56 °C" in out
    assert len(stored_events(cfg)) == 2


def test_calibrate_needs_a_majority_of_valid_readings(cfg: Config, config_file: Path) -> None:
    with pytest.raises(CalibrationRefused, match="only 2 of 4"):
        run(cfg, config_file, 36.8, [36.5, "pec_mismatch", "error_flag", 36.4])
    assert config_file.read_text() == CONFIG


def test_calibrate_declined_changes_nothing(cfg: Config, config_file: Path) -> None:
    result, _, said = run(cfg, config_file, 36.8, [36.5], yes=False)
    assert result is None
    assert "nothing was changed" in said
    assert config_file.read_text() == CONFIG
    assert stored_events(cfg) == []


def test_calibrate_records_a_note_event_with_the_readings(cfg: Config, config_file: Path) -> None:
    run(cfg, config_file, 36.8, [36.4, "i2c_error", 36.5, 36.6])
    [event] = stored_events(cfg)
    assert event["kind"] == "note" and event["post"] == "utara-01"
    assert event["data"]["calibration"] == {
        "offset_c": 0.3,
        "previous_offset_c": 0.0,
        "reference_c": 36.8,
        "gain": 1.0,
        "readings": [36.4, 36.5, 36.6],
        "faults": ["i2c_error"],
    }


def test_calibrate_end_to_end_with_the_simulated_thermometer(
    config_file: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    args = ["--config", str(config_file), "--data", str(data), "calibrate", "--reference", "36.8"]
    result = subprocess.run(
        [*POSKO, *args, "--yes", "--mock", "--force"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "after       36.80 °C" in result.stdout
    offset = load(config_file, env={})["thermometer.offset_c"]
    assert -5 <= offset <= 5
    assert "# Posko at the north gate: keep this comment" in config_file.read_text()
    with EventStore(data, "utara-01") as store:
        [event] = store.since(0)
    assert event["data"]["calibration"]["offset_c"] == offset


def test_calibrate_without_a_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSKO_")}
    result = subprocess.run(
        [*POSKO, "--data", str(tmp_path), "calibrate", "--reference", "36.8", "--yes"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    if Path("/etc/posko/config.toml").exists():
        pytest.skip("this machine has a real /etc/posko/config.toml")
    assert result.returncode == 2
    assert "posko settings --toml >" in result.stderr


def test_calibrate_refused_while_the_data_dir_is_held(cfg: Config, config_file: Path) -> None:
    held = EventStore(cfg["data.dir"], cfg["post.id"])  # as a running station holds it
    with held, pytest.raises(StationRunning, match=f"process {os.getpid()}"):
        run(cfg, config_file, 36.8, [36.5])
    assert config_file.read_text() == CONFIG


def test_calibrate_updates_an_offset_set_on_the_guards_page(cfg: Config, config_file: Path) -> None:
    from web.overrides import apply_overrides, load_overrides, save_overrides

    save_overrides(cfg["data.dir"], {"thermometer.offset_c": 1.0, "post.name": "Utara"})
    live = apply_overrides(cfg)
    result, out, _ = run(live, config_file, 36.8, [36.5])
    assert result.previous_offset_c == 1.0
    assert "before      37.50 °C with offset +1.00" in out
    assert load_overrides(cfg["data.dir"]) == {"thermometer.offset_c": 0.3, "post.name": "Utara"}

"""Configuration: defaults, file < environment < flags, and every problem reported at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import Config, defaults, load, validate
from edge.settings import SETTINGS
from sensors.errors import ConfigError
from sync.options import SyncOptions
from web.options import PageOptions


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_config_defaults_are_valid() -> None:
    assert validate(dict(defaults())) == []
    assert defaults()["screening.threshold_c"] == 37.3
    assert defaults()["screening.recheck_wait_s"] == 300
    assert defaults()["time.zone"] == "Asia/Jakarta"
    assert defaults()["camera.driver"] == "none"  # privacy: the camera is off by default


def test_config_file_values_are_used(tmp_path: Path) -> None:
    path = write(tmp_path, '[post]\nid = "rw03-sukamaju"\n[screening]\nthreshold_c = 37.5\n')
    config = load(path, env={})
    assert config["post.id"] == "rw03-sukamaju"
    assert config["screening.threshold_c"] == 37.5


def test_config_every_problem_is_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[post]
id = "Not Valid!"
[screening]
treshold_c = 37.5
recheck_wait_s = "five minutes"
[thermometer]
driver = "mlx"
offset_c = 9.0
[pins]
led_red = 17
[time]
zone = "Mars/Olympus"
""",
    )
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    text = "\n".join(caught.value.problems)
    assert "post.id" in text
    assert "screening.treshold_c: unknown setting; did you mean screening.threshold_c?" in text
    assert "screening.recheck_wait_s" in text
    assert "thermometer.driver" in text and "mlx90614" in text  # says what is allowed
    assert "thermometer.offset_c: 9.0 is above the maximum" in text
    assert "already used by pins.masuk_warga" in text
    assert "time.zone" in text
    assert len(caught.value.problems) == 7


def test_config_unparsable_file_is_one_clear_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "[post\nid = 1")
    with pytest.raises(ConfigError) as caught:
        load(path, env={})
    assert "cannot read it as TOML" in caught.value.problems[0]


def test_config_missing_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "nope.toml", env={})


def test_config_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[screening]\nthreshold_c = 37.5\n")
    config = load(path, env={"POSKO_SCREENING_THRESHOLD_C": "37.6"})
    assert config["screening.threshold_c"] == 37.6


def test_config_flags_override_environment(tmp_path: Path) -> None:
    config = load(None, env={"POSKO_DATA_DIR": "/srv/a"}, overrides={"data.dir": "/srv/b"})
    assert config["data.dir"] == "/srv/b"


def test_config_unknown_environment_variable_is_a_problem() -> None:
    with pytest.raises(ConfigError, match="POSKO_SCREENING_TRESHOLD_C: unknown"):
        load(None, env={"POSKO_SCREENING_TRESHOLD_C": "37.5"})


def test_config_bad_environment_value_is_a_problem() -> None:
    with pytest.raises(ConfigError, match=r"camera\.driver: 'webcam' is not allowed"):
        load(None, env={"POSKO_CAMERA_DRIVER": "webcam"})


@pytest.mark.parametrize("text", ["nan", "inf", "-inf"])
def test_config_non_finite_numbers_are_problems(text: str) -> None:
    with pytest.raises(ConfigError, match="not a finite number"):
        load(None, env={"POSKO_SCREENING_THRESHOLD_C": text})


def test_config_bool_is_not_a_number(tmp_path: Path) -> None:
    path = write(tmp_path, "[screening]\nrecheck_wait_s = true\n")
    with pytest.raises(ConfigError, match="recheck_wait_s"):
        load(path, env={})


class ReadConfig(Config):
    """A configuration that notes every key read from it."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)


def test_config_every_setting_has_a_typed_view() -> None:
    config = ReadConfig(defaults().replace(mqtt__broker="district.example:8883"))
    plain = defaults()
    assert (config.post, config.screening, config.thermometer) == (
        plain.post,
        plain.screening,
        plain.thermometer,
    )
    assert (config.buttons, config.camera, config.privacy, config.pins) == (
        plain.buttons,
        plain.camera,
        plain.privacy,
        plain.pins,
    )
    assert config.voice == plain.voice
    assert PageOptions.from_config(config).sync_configured
    assert SyncOptions.from_config(config).link.port == 8883
    assert config.read == {s.key for s in SETTINGS}  # a new setting needs a field in a view


def test_config_views_follow_a_changed_setting() -> None:
    config = defaults()
    changed = config.replace(screening__threshold_c=38, buttons__dead_time_ms=250)
    assert (config.screening.threshold_c, changed.screening.threshold_c) == (37.3, 38.0)
    assert (config.buttons.dead_time_s, changed.buttons.dead_time_s) == (0.4, 0.25)
    assert changed.screening is changed.screening  # built once per configuration


def test_config_cli_prints_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[screening]\nthreshold_c = 45\n[nope]\nx = 1\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "posko.cli",
            "--config",
            str(path),
            "--data",
            str(tmp_path),
            "status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "2 problem(s)" in result.stderr
    assert "screening.threshold_c: 45 is above the maximum" in result.stderr
    assert "nope.x: unknown setting" in result.stderr
    assert "Traceback" not in result.stderr


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([s.key for s in SETTINGS] + ["post.x", "pins.masuk"]),
        st.one_of(
            st.integers(-100, 100),
            st.floats(allow_nan=False),
            st.booleans(),
            st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12),
        ),
        max_size=6,
    )
)
def test_config_any_file_is_valid_or_a_list_of_problems(values: dict[str, object]) -> None:
    import tomllib

    sections: dict[str, dict[str, object]] = {}
    for key, value in values.items():
        section, name = key.split(".", 1)
        sections.setdefault(section, {})[name] = value
    text = "".join(
        f"[{s}]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in kv.items())
        for s, kv in sections.items()
    )
    tomllib.loads(text)  # the generator writes valid TOML
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        config = load(f.name, env={})
    except ConfigError as e:
        assert e.problems and all(isinstance(p, str) and ": " in p for p in e.problems)
    else:
        assert validate(dict(config)) == []
    finally:
        Path(f.name).unlink()


def _toml(value: object) -> str:
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    return json.dumps(value, ensure_ascii=False)

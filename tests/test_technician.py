"""The technician's command line, run in-process: `posko status` agrees with the day report,
`posko settings` is TOML that loads, and configuration mistakes are explained in words."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.clock import VirtualClock, kernel_clock_state
from edge.config import defaults, load
from edge.events import parse_time
from edge.settings import SETTINGS
from edge.simulate import simulate
from posko.cli import main
from posko.runtime import Runtime
from sensors.errors import ConfigError
from tests.support.guard import Guard
from web.overrides import apply_overrides, save_overrides

JAKARTA = ZoneInfo("Asia/Jakarta")


@pytest.fixture(autouse=True)
def no_posko_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """The technician's shell may set POSKO_* variables; these tests set their own."""
    for name in [n for n in os.environ if n.startswith("POSKO_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def clock() -> VirtualClock:
    """Today, so that `posko status` (on the wall clock) counts these events as today's."""
    now = datetime.now(UTC)
    midnight = now.astimezone(JAKARTA).replace(hour=0, minute=0, second=0, microsecond=0)
    return VirtualClock(max(now - timedelta(minutes=10), midnight.astimezone(UTC)))


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def busy_day(guard: Callable[..., Guard], config: Any) -> Iterator[Path]:
    """Today: a resident with a fever whose second reading is a sensor fault, one visitor,
    one Darurat. The station is closed before the test reads the data directory."""
    g = guard([38.0, "bus_error", 36.6])
    g.press("masuk_warga")  # 38.0: waits for the re-check
    g.clock.advance(301)
    assert g.hold("masuk_warga").event is not None  # the second reading: a sensor fault
    g.press("masuk_pendatang")  # 36.6
    g.hold("darurat")
    g.post.close()
    yield Path(config["data.dir"])


def test_status_counts_agree_with_the_day_report(
    busy_day: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--data", str(busy_day), "status", "--json")
    assert code == 0
    today = json.loads(out)["today"]
    # The day report counts a faulty second reading as a sensor fault too.
    assert today["sensor_faults"] == 1
    assert today["fevers"] == 1
    assert today["emergencies"] == 1
    assert today["in_visitor"] == 1


def test_status_counts_a_visitor_who_stayed_overnight_as_the_report_does(
    config: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from edge.events import Kind, Who
    from edge.store import EventStore
    from web.figures import Figures  # the day report's and /api/summary's figures

    now = datetime.now(UTC)
    with EventStore(config["data.dir"], config["post.id"], config["time.zone"]) as store:
        store.append(Kind.IN, moment=now - timedelta(days=1), who=Who.VISITOR)  # still inside
        report = Figures(store).of_day(store.today(now)).as_json()
    assert report["visitors_inside"] == 1 and report["in_visitor"] == 0
    code, out, _ = run(capsys, "--data", str(config["data.dir"]), "status", "--json")
    assert code == 0
    today = json.loads(out)["today"]
    assert (today["visitors_inside"], today["in_visitor"]) == (1, 0)


def test_status_text_speaks_proper_english(
    busy_day: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--data", str(busy_day), "status")
    assert code == 0
    assert "(1 resident, 1 visitor)" in out
    assert "1 fever" in out and "1 fevers" not in out
    assert "1 sensor fault" in out and "1 sensor faults" not in out
    assert "1 emergency" in out
    assert "last acknowledged: never" in out
    assert "at never" not in out


# -- posko settings -----------------------------------------------------------------------


def test_settings_listing_is_toml_that_loads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "settings")
    assert code == 0
    parsed = tomllib.loads(out)  # `lan_access = False` was not TOML
    assert parsed["web"]["lan_access"] is False
    assert parsed["mqtt"]["district_keys"] == []
    pasted = tmp_path / "config.toml"
    pasted.write_text(out)
    config = load(pasted, env={})
    assert dict(config) == dict(defaults())


# -- configuration errors -----------------------------------------------------------------


def test_config_pattern_errors_say_the_form_in_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--data", str(tmp_path), "sync", "--broker", "nohost")
    assert code == 2
    assert "mqtt.broker: expected HOST:PORT, e.g. 192.168.1.10:1883" in err
    assert "got 'nohost'" in err
    assert "^" not in err and "\\d" not in err


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.pattern], ids=lambda s: s.key)
def test_config_no_setting_quotes_a_regex(setting: Any) -> None:
    with pytest.raises(ConfigError) as raised:
        defaults().replace(**{setting.key.replace(".", "__"): "?? no ??"})
    (problem,) = raised.value.problems
    assert setting.pattern not in problem
    assert "expected" in problem and "e.g." in problem, problem
    assert not any(mark in setting.allowed() for mark in ("^", "$", "\\d", "[a-z"))


def test_config_decimal_comma_in_the_file_suggests_the_dot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[screening]\nthreshold_c = 37,5\nrecheck_wait_s = -1\n[thermometer]\noffset_c = "0,4"\n'
    )
    code, _, err = run(capsys, "--config", str(path), "--data", str(tmp_path), "status")
    assert code == 2
    assert "screening.threshold_c: write 37.5 with a dot" in err
    assert "thermometer.offset_c: write 0.4 with a dot" in err
    assert "screening.recheck_wait_s" in err  # every other problem is still listed
    assert "3 problem(s)" in err


def test_config_decimal_comma_in_a_variable_suggests_the_dot() -> None:
    with pytest.raises(ConfigError) as raised:
        load(env={"POSKO_SCREENING_THRESHOLD_C": "37,5", "POSKO_THERMOMETER_GAIN": "x"})
    problems = raised.value.problems
    assert "POSKO_SCREENING_THRESHOLD_C: write 37.5 with a dot, not '37,5'" in problems[0]
    assert problems[1].startswith("POSKO_THERMOMETER_GAIN: expected a number")


# -- the station's start ------------------------------------------------------------------


def test_start_logs_page_overrides_and_warns_off_the_decree(
    config: Any, open_post: Callable[..., Any], stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    save_overrides(config["data.dir"], {"screening.threshold_c": 40.0})
    live = apply_overrides(config.replace(screening__recheck_wait_s=0))
    caplog.set_level("INFO")
    stack.enter_context(Runtime(live, post=open_post(cfg=live), page=False)).start()
    said = [r.getMessage() for r in caplog.records]
    assert "page setting screening.threshold_c = 40.0 overrides the configuration file" in said
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("threshold_c is 40.0 °C" in w and "37.3" in w for w in warnings), warnings
    assert any("recheck_wait_s is 0 s" in w and "5 minutes" in w for w in warnings), warnings


def test_start_is_quiet_on_the_decree_s_own_values(
    config: Any, open_post: Callable[..., Any], stack: Any, caplog: pytest.LogCaptureFixture
) -> None:
    stack.enter_context(Runtime(config, post=open_post(), page=False)).start()
    assert not [r for r in caplog.records if "MENKES" in r.getMessage()]


# -- posko simulate -----------------------------------------------------------------------


def test_simulate_never_stamps_the_future_nor_trusts_an_untrusted_clock(config: Any) -> None:
    events: list[dict[str, Any]] = []
    simulate(config, 60, seed=5, on_event=events.append)  # this seed ran 10 min ahead
    done = datetime.now(UTC)
    assert events
    assert max(parse_time(e["time"]) for e in events) <= done
    assert {e["clock"] for e in events} == {kernel_clock_state()}

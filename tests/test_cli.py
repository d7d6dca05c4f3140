"""The `posko` command line, run as a technician would run it: a real process each time."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest

from tests.support.station_proc import POSKO, TIMEOUT, clean_env, running_station


def posko(*args: str, data: Path | None = None) -> subprocess.CompletedProcess[str]:
    head = ["--data", str(data)] if data else []
    return subprocess.run(
        [*POSKO, *head, *args], capture_output=True, text=True, timeout=TIMEOUT, env=clean_env()
    )


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    data = tmp_path_factory.mktemp("sim") / "data"
    result = posko("simulate", "--presses", "120", "--jsonl", "--seed", "7", data=data)
    assert result.returncode == 0, result.stderr
    return data, [json.loads(line) for line in result.stdout.splitlines()]


@pytest.mark.parametrize("command", ["", "run", "simulate", "status", "export", "settings"])
def test_cli_every_command_explains_itself(command: str) -> None:
    result = subprocess.run(
        [*POSKO, *([command] if command else []), "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0
    assert "usage: posko" in result.stdout
    assert len(result.stdout.split()) > 25  # plain words, not just a synopsis


@pytest.mark.slow
def test_cli_simulate_prints_each_durable_event(simulated: tuple[Path, list[dict]]) -> None:
    _, events = simulated
    assert 100 <= len(events) <= 120  # a Batal with nothing to void makes no event
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    for event in events:
        assert {"post", "seq", "kind", "who"} <= event.keys() or event["kind"] == "emergency"
        if event["kind"] == "in":
            assert event["screening"] in {"normal", "recheck", "fault"}
    kinds = {e["kind"] for e in events}
    assert {"in", "out"} <= kinds
    assert {e.get("who") for e in events} >= {"resident", "visitor"}


@pytest.mark.slow
def test_cli_simulate_makes_fevers_rechecks_and_faults(tmp_path: Path) -> None:
    result = posko("simulate", "--presses", "400", "--jsonl", "--seed", "11", data=tmp_path / "d")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    screenings = {e.get("screening") for e in events}
    assert {"normal", "recheck", "fault"} <= screenings
    assert any(e["kind"] == "recheck" for e in events)
    assert any(e["kind"] == "void" for e in events)


def test_cli_status_json_reports_counts(simulated: tuple[Path, list[dict]]) -> None:
    data, events = simulated
    result = posko("status", "--json", data=data)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["post"] == "posko-01"
    assert status["events"] == len(events)
    assert status["pending"] == len(events)  # nothing is synced yet
    assert status["store"]["ok"] is True


def test_cli_status_text_is_readable(simulated: tuple[Path, list[dict]]) -> None:
    data, events = simulated
    result = posko("status", data=data)
    assert result.returncode == 0
    assert f"{len(events)} stored" in result.stdout
    assert "waiting for the district" in result.stdout


def test_cli_export_jsonl_gives_every_event(simulated: tuple[Path, list[dict]]) -> None:
    data, events = simulated
    result = posko("export", "--format", "jsonl", data=data)
    assert [json.loads(line) for line in result.stdout.splitlines()] == events


def test_cli_export_csv_has_a_header_and_a_row_per_event(
    simulated: tuple[Path, list[dict]],
) -> None:
    data, events = simulated
    result = posko("export", "--format", "csv", data=data)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == len(events)
    assert rows[0]["post"] == "posko-01" and rows[0]["seq"] == "1"
    assert {"time", "local_time", "kind", "who", "temp_c", "screening"} <= rows[0].keys()


@pytest.mark.slow
def test_cli_export_by_date_filters_by_local_day(simulated: tuple[Path, list[dict]]) -> None:
    data, _ = simulated
    rows = posko("export", "--format", "csv", data=data).stdout
    days = {row["local_time"][:10] for row in csv.DictReader(io.StringIO(rows))}
    day = sorted(days)[-1]
    result = posko("export", "--date", day, "--format", "jsonl", data=data)
    exported = [json.loads(line) for line in result.stdout.splitlines()]
    assert exported
    expected = sum(
        1 for row in csv.DictReader(io.StringIO(rows)) if row["local_time"].startswith(day)
    )
    assert len(exported) == expected
    empty = posko(
        "export", "--from", "2001-01-01", "--to", "2001-01-02", "--format", "jsonl", data=data
    )
    assert empty.returncode == 0 and empty.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["export", "--date", "2026-13-01", "--format", "csv"],
        ["export", "--date", "2026-01-01", "--from", "2026-01-01", "--format", "csv"],
        ["export", "--from", "2026-02-01", "--to", "2026-01-01", "--format", "csv"],
        ["export", "--format", "xml"],
        ["simulate", "--presses", "0"],
        ["frobnicate"],
    ],
)
def test_cli_bad_usage_exits_2_with_a_reason(tmp_path: Path, args: list[str]) -> None:
    result = posko(*args, data=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip()
    assert "Traceback" not in result.stderr


def test_cli_status_without_data_exits_1(tmp_path: Path) -> None:
    result = posko("status", data=tmp_path / "missing")
    assert result.returncode == 1
    assert "no data directory" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_simulate_refuses_the_real_data_directory() -> None:
    result = posko("simulate", "--presses", "1", data=Path("/var/lib/posko"))
    assert result.returncode == 2
    assert "--data" in result.stderr


@pytest.mark.slow
def test_cli_second_writer_is_refused_naming_the_running_pid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_station(data) as station:
        second = posko("simulate", "--presses", "1", data=data)
        assert second.returncode == 1
        assert f"posko process {station.pid}" in second.stderr
        status = posko("status", "--json", data=data)  # reading is allowed alongside
        assert status.returncode == 0 and json.loads(status.stdout)["station_running"]
    after = posko("simulate", "--presses", "1", data=data)
    assert after.returncode == 0

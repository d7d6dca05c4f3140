"""Exports against odd and hostile events already stored: the district's CSV (page and
command) and JSON lines never stop half-way, never hand a spreadsheet a formula, and the
post's `posko export` masks NIKs unless told otherwise."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from district.sqlite import SQLiteStorage
from edge import events as ev
from edge.config import Config
from edge.events import Event, Kind, Who
from edge.export import FORMULA_START, csv_row, defuse
from edge.post import Post
from sync.batch import Batch
from tests.support.district_client import district_client
from tests.support.station_proc import POSKO, TIMEOUT, clean_env
from tests.support.web_support import Screen

NIK = "3201234567890123"
FORMULAS = ("-A1", "-SUM(A1:A9)", "=1+1", "+1", "@SUM(1)", "\tx", "\rx")
WORDS = (*FORMULAS, "a\r=1+1", "a\n@SUM(1)")  # the last two would start a row of their own


def posko(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*POSKO, *args], capture_output=True, text=True, timeout=TIMEOUT, env=clean_env()
    )


def strict_json(line: str) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(line, parse_constant=refuse)


def event(seq: int, moment: datetime, **fields: Any) -> Event:
    return ev.make("posko-a", seq, moment, Kind.IN, who=Who.RESIDENT, **fields)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A district database holding what the receiver let through before it checked more:
    formula-like words, a time in year 9999, a NaN inside `data`."""
    path = tmp_path / "district.db"
    now = datetime.now(UTC).replace(microsecond=0)
    stored = [event(1, now - timedelta(days=1))]
    stored += [event(2 + i, now, clock=text, fault=text) for i, text in enumerate(WORDS)]
    stored.append(event(20, datetime(9999, 12, 31, 20, 0, tzinfo=UTC)))  # local: year 10000
    stored.append(event(21, now, data={"reading": math.nan, "note": "=cmd|' /C calc'!A0"}))
    stored.append(event(22, now + timedelta(seconds=1)))
    with SQLiteStorage(path) as storage:
        storage.store_batch(Batch.of("posko-a", stored))
    return path


@pytest.fixture
def client(db: Path) -> FlaskClient:
    return district_client(db)


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START), (cell, row)


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01"])
def test_exports_district_page_at_the_calendar_s_ends(client: FlaskClient, day: str) -> None:
    response = client.get(f"/export.csv?from={day}")
    assert response.status_code == 200
    rows = read_csv(response.get_data(as_text=True))
    assert rows[0][0] == "post"
    if day == "9999-12-31":
        assert [r[1] for r in rows[1:]] == ["20"]  # the event dated 9999-12-31 (UTC)


def test_exports_district_page_csv_survives_odd_events_and_defuses_formulas(
    client: FlaskClient,
) -> None:
    response = client.get("/export.csv?from=0001-01-01&to=9999-12-31")
    assert response.status_code == 200
    rows = read_csv(response.get_data(as_text=True))
    seqs = [r[1] for r in rows[1:]]
    assert seqs == [str(s) for s in range(1, 2 + len(WORDS))] + ["20", "21", "22"]
    assert_no_formula(rows)
    by_seq = {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    assert by_seq["2"]["clock"] == "'-A1"
    assert by_seq["20"]["local_time"] == "" and by_seq["20"]["time"].startswith("9999-12-31")
    assert strict_json(by_seq["21"]["data"])["reading"] is None


def test_exports_district_page_sends_strict_headers(client: FlaskClient) -> None:
    for path in ("/", "/api/posts", "/export.csv", "/export.csv?from=nope", "/nothing"):
        headers = client.get(path).headers
        assert "default-src 'self'" in headers["Content-Security-Policy"], path
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
    page = client.get("/").get_data(as_text=True)
    assert "<style" not in page and "style=" not in page  # the CSP allows no inline style
    assert client.get("/static/district.css").status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "value"), [("--from", "0001-01-01"), ("--to", "9999-12-31")])
def test_exports_district_command_at_the_calendar_s_ends(db: Path, flag: str, value: str) -> None:
    result = posko("district", "export", "--db", str(db), "--format", "csv", flag, value)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = read_csv(result.stdout)
    assert len(rows) == 1 + 1 + len(WORDS) + 3
    assert_no_formula(rows)


def test_exports_district_command_jsonl_is_strict_json_to_the_end(db: Path) -> None:
    result = posko("district", "export", "--db", str(db), "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = [strict_json(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in lines][-3:] == [20, 21, 22]
    assert lines[-2]["data"]["reading"] is None


def test_exports_one_defuse_for_every_csv() -> None:
    assert [defuse(text) for text in FORMULAS] == ["'" + text for text in FORMULAS]
    assert defuse("posko-a") == "posko-a" and defuse(-1.5) == -1.5  # numbers stay numbers
    from zoneinfo import ZoneInfo

    row = csv_row(event(1, datetime(2026, 11, 27, tzinfo=UTC), fault="-SUM"), ZoneInfo("UTC"))
    assert "'-SUM" in row


@pytest.fixture
def visitor_data(open_post: Callable[..., Post], config: Config) -> Path:
    """A post's data directory holding a visitor's details with their NIK."""
    screen = Screen(open_post([36.6]))
    screen.press("masuk_pendatang")
    saved = screen.post_form("/visitors/1", {"name": "Siti", "nik": NIK})
    assert saved.status_code == 302
    return Path(config["data.dir"])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exports_posko_export_masks_the_nik(visitor_data: Path, fmt: str) -> None:
    result = posko("--data", str(visitor_data), "export", "--format", fmt)
    assert result.returncode == 0, result.stderr
    assert NIK not in result.stdout
    assert "************0123" in result.stdout


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_exports_posko_export_shows_the_nik_when_asked_and_says_so(
    visitor_data: Path, fmt: str
) -> None:
    result = posko("--data", str(visitor_data), "export", "--format", fmt, "--show-nik")
    assert result.returncode == 0, result.stderr
    assert NIK in result.stdout
    assert "WARNING" in result.stderr and "full NIKs" in result.stderr

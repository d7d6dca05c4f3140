"""bench/district.py runs end to end on a tiny district (20 posts, 2 s segments, a storm of
50 events each) and ends with its JSON line: live rates, ack latencies, the storm's drain,
and every post's events stored exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import postgres

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("batches_per_s", "events_per_s", "ack_p50_ms", "ack_p99_ms", "half_batches_per_s",
        "half_ack_p50_ms", "half_ack_p99_ms", "storm_drain_s")  # fmt: skip


def bench(tmp_path: Path, configs: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "district.py"), "--posts", "20", "--seconds", "2",
         "--storm-events", "50", "--configs", configs, "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def check(config: dict[str, Any]) -> None:
    for key in KEYS:
        assert config[key] > 0, key
    assert config["storm_events"] == 20 * 50
    assert config["exactly_once"] is True
    assert config["bad_acks"] == 0 and config["acks_checked"] > 0


@pytest.mark.slow
@pytest.mark.broker
def test_bench_district_on_sqlite_prints_its_figures_as_the_last_line(tmp_path: Path) -> None:
    figures = bench(tmp_path, "baseline,sqlite")
    assert figures["posts"] == 20
    assert figures["baseline_batches_per_s"] > 0 and figures["baseline_storm_drain_s"] > 0
    check(figures["baseline"])
    check(figures["sqlite"])
    assert figures["postgres_2"] is None
    # Without the PostgreSQL configurations the targets cannot all be met.
    assert figures["targets_passed"] is False
    assert any("postgres" in name and not ok for name, ok in figures["targets"].items())


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.postgres
def test_bench_district_on_postgresql(tmp_path: Path) -> None:
    if not postgres.available():
        pytest.skip("PostgreSQL is not installed")
    figures = bench(tmp_path, "postgres,postgres_2")
    if "postgres" not in figures["configs"]:
        pytest.skip("the PostgreSQL backend is not there yet")
    check(figures)
    check(figures["postgres_2"])
    assert figures["backend"] == "postgresql" and figures["postgres_2"]["receivers"] == 2

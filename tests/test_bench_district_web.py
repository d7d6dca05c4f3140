"""bench/district_web.py runs end to end on a tiny district (5 posts, 2 days) and ends with
its JSON line: the page's overview and rekap times against the raw-events baseline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_district_web_prints_its_figures_as_the_last_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "district_web.py"), "--posts", "5", "--days", "2",
         "--per-day", "200", "--samples", "3", "--baseline-samples", "1", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["posts"] == 5 and figures["events"] == 5 * 2 * 200
    for name in ("overview_p95_ms", "rekap_p95_ms", "baseline_overview_p95_ms"):
        assert 0 < figures[name] < 60_000, name
    assert figures["baseline_rekap_p95_ms"] > 0
    assert set(figures["pages_p95_ms"]) >= {"/", "/api/posts"}

"""The targets of issue 13 and the readable summary of bench/district.py: PASS/FAIL lines,
a table of every configuration, and the last line's figures (PostgreSQL's at the top)."""

from __future__ import annotations

import os
from typing import Any

TARGET_RATE = 5000.0
TARGET_RATIO = 3.0
TARGET_P99_MS = 250.0
TARGET_STORM_S = 10.0


def targets(found: dict[str, dict[str, Any]]) -> list[tuple[str, bool]]:
    base, lite, pg = (found.get(n) for n in ("baseline", "sqlite", "postgres"))
    checks = []
    for name, r in (("sqlite", lite), ("postgres", pg)):
        if r is None:
            checks.append((f"{name} measured (it was skipped)", False))
            continue
        rate = r["batches_per_s"]
        checks.append((f"{name} group commit {rate:,.0f} batches/s >= {TARGET_RATE:,.0f}",
                       rate >= TARGET_RATE))  # fmt: skip
        ratio = rate / base["batches_per_s"] if base and base["batches_per_s"] else 0.0
        checks.append((f"{name} {ratio:.1f} x baseline >= {TARGET_RATIO:g}", ratio >= TARGET_RATIO))
        p99 = r["half_ack_p99_ms"]
        checks.append((f"{name} half-load ack p99 {p99:,.0f} ms <= {TARGET_P99_MS:g}",
                       p99 <= TARGET_P99_MS))  # fmt: skip
        drain = r["storm_drain_s"]
        checks.append((f"{name} storm {drain:.2f} s <= {TARGET_STORM_S:g}",
                       drain <= TARGET_STORM_S))  # fmt: skip
    complete = all(r["exactly_once"] for r in found.values())
    checks.append(("every configuration exactly once, every post drained", complete))
    return checks


def table(found: dict[str, dict[str, Any]]) -> None:
    keys = ("batches_per_s", "ack_p50_ms", "ack_p99_ms", "half_batches_per_s",
            "half_ack_p99_ms", "storm_drain_s", "receiver_cores", "bench_cores")  # fmt: skip
    print(f"{'config':<12}" + "".join(f"{k:>20}" for k in keys))
    for name, r in found.items():
        print(f"{name:<12}" + "".join(f"{r[k]:>20,.2f}" for k in keys))


def report(args: Any, found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    table(found)
    checks = targets(found)
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    top = found.get("postgres", {})
    base = found.get("baseline", {})
    return {
        **{k: v for k, v in top.items()},
        "baseline_batches_per_s": base.get("batches_per_s"),
        "baseline_storm_drain_s": base.get("storm_drain_s"),
        "baseline": base or None,
        "sqlite": found.get("sqlite"),
        "postgres_2": found.get("postgres_2"),
        "backend": "postgresql",
        "receivers": 1,
        "posts": args.posts,
        "configs": list(found),
        "cpus": os.cpu_count(),
        "targets": {text: ok for text, ok in checks},
        "targets_passed": all(ok for _, ok in checks),
    }

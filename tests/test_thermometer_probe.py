"""The thermometer probe: a missing or broken sensor is known at start, recorded once, shown
in `/healthz`, and its recovery too; a probe is never a screening."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from edge.clock import VirtualClock
from edge.config import Config
from edge.events import Event, Kind
from edge.post import Post
from edge.probe import ThermometerState, ThermometerWatch
from posko.runtime import Runtime
from sensors.mlx90614 import MLX90614
from sensors.simulated import ScriptedThermometer
from tests.support.fake_smbus import FakeSMBus, celsius_word
from web.app import create_app

WAIT_S = 5.0
MISSING_BUS = 19  # no /dev/i2c-19 on a laptop or a CI runner


def notes(post: Post) -> list[dict[str, object]]:
    """The thermometer notes stored so far (after the station handled what was queued)."""
    post.station.record(Kind.NOTE, data={"flush": True}).result(WAIT_S)
    events: list[Event] = list(post.store.since(0))
    return [e["data"]["thermometer"] for e in events if "thermometer" in e.get("data", {})]


def healthz(post: Post) -> dict[str, object]:
    runtime = Runtime(post.config, post=post, page=False)
    app = create_app(post.config, post, health=runtime.health, testing=True)
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200  # the kiosk opens the page, the watchdog keeps feeding
    assert isinstance(answer.json, dict)
    return answer.json


def test_thermometer_probe_mlx90614_without_a_bus_warns_at_start(
    config: Config, clock: VirtualClock
) -> None:
    cfg = config.replace(thermometer__driver="mlx90614", thermometer__i2c_bus=MISSING_BUS)
    with Post(cfg, mock=True, clock=clock) as post:  # the driver the config names
        state = post.thermometer_state
        assert state is not None and state.ok is False and state.fault == "i2c_error"
        health = healthz(post)
        assert health["ok"] is True and health["reasons"] == []
        assert health["thermometer"] == state.as_json()
        warnings = health["warnings"]
        assert isinstance(warnings, list) and len(warnings) == 1
        assert "thermometer mlx90614 not answering: i2c_error" in warnings[0]
        [recorded] = notes(post)  # the first failure is an event, for the district too
        assert recorded["state"] == "fault" and recorded["driver"] == "mlx90614"


def test_thermometer_probe_records_a_fault_once_then_the_recovery(
    open_post: Callable[..., Post],
) -> None:
    sensor = ScriptedThermometer([36.6])
    sensor.probe_fault = "pec_mismatch"
    post = open_post(thermometer=sensor)
    watch = post.watch
    assert watch is not None and watch.state.ok is False
    sensor.probe_fault = "i2c_error"
    assert watch.probe_now().fault == "i2c_error"  # still broken: the state says how
    assert [n["state"] for n in notes(post)] == ["fault"]  # ...but one event, not one a minute
    sensor.probe_fault = None
    assert watch.probe_now().ok is True
    assert [n["state"] for n in notes(post)] == ["fault", "ok"]
    assert healthz(post)["warnings"] == []


def test_thermometer_probe_is_never_a_screening(open_post: Callable[..., Post]) -> None:
    sensor = ScriptedThermometer([36.6])
    post = open_post(thermometer=sensor)
    assert post.watch is not None and post.watch.state.ok is True
    for _ in range(3):
        post.watch.probe_now()
    assert sensor.probes == 4 and sensor.reads == 0  # the person's reading is untouched
    assert notes(post) == []  # an answering sensor at start is nothing to record
    assert post.store.count == 1  # only the test's own flush note


def test_thermometer_probe_mlx90614_reads_only_the_ambient_register() -> None:
    bus = FakeSMBus([celsius_word(27.51)])
    sensor = MLX90614(bus=bus)
    reading = sensor.probe()
    assert reading.ok and reading.celsius == 27.51
    assert [register for _, register, _ in bus.calls] == [0x06]  # one read, no samples


def test_thermometer_probe_runs_again_every_interval() -> None:
    sensor = ScriptedThermometer([36.6])
    changes: list[ThermometerState] = []
    changed = threading.Event()

    def on_change(before: ThermometerState, after: ThermometerState) -> None:
        changes.append(after)
        changed.set()

    now = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
    with ThermometerWatch(
        sensor, "simulated", interval=lambda: 0.01, now=lambda: now, on_change=on_change
    ):
        assert changed.wait(WAIT_S)  # the first periodic probe: ok
        changed.clear()
        sensor.probe_fault = "i2c_error"  # unplugged while running
        assert changed.wait(WAIT_S)
    assert changes[-1].ok is False and changes[-1].since == "2026-11-27T01:00:00.000Z"


def test_thermometer_probe_none_driver_has_no_state(open_post: Callable[..., Post]) -> None:
    post = open_post(thermometer=None)
    assert post.thermometer_state is None
    health = healthz(post)
    assert health["thermometer"] is None and health["warnings"] == []


def test_thermometer_probe_a_crashing_driver_is_a_fault(open_post: Callable[..., Post]) -> None:
    class Crashing(ScriptedThermometer):
        def probe(self) -> object:  # type: ignore[override]
            raise RuntimeError("driver bug")

    post = open_post(thermometer=Crashing([36.6]))
    state = post.thermometer_state
    assert state is not None and state.fault == "driver_error" and "driver bug" in state.detail

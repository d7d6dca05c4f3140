"""`posko selftest`: walk a technician through the post's hardware and print a pass/fail table.

The hardware is built by the same code as the station (gpiozero buttons, `Feedback`,
`open_thermometer`, `open_camera`, `open_speaker`) but no station runs and no event is written.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

from edge.config import Config
from edge.post import open_thermometer
from posko.commands.selftest_checks import (
    FAIL,
    PASS,
    PI_MODEL,
    SKIP,
    WARN,
    Check,
    check_broker,
    check_clock,
    check_disk,
    check_driver,
    check_voice,
    loud_warnings,
)
from posko.datadir import hold_data_dir
from sensors.buttons import BUTTONS
from sensors.camera import Camera, open_camera
from sensors.feedback import Feedback
from sensors.pins import pin_factory
from sensors.speaker import Speaker
from sensors.thermometer import Thermometer
from sync.options import broker_address

LABELS = {name: name.replace("_", " ").title() for name in BUTTONS}  # "Masuk Warga"
SPREAD_WARN_C = 0.5  # one still forehead should not vary more than this


class Technician:
    """The person at the post: prompts go to stderr (stdout carries the table or JSON)."""

    def __init__(self, yes: bool = False, out: TextIO | None = None, inp: TextIO | None = None):
        self.yes = yes
        self.out = out or sys.stderr
        self.inp = inp or sys.stdin

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def ask(self, question: str) -> bool | None:
        """True for yes, False for no, None when nobody answers (end of input)."""
        if self.yes:
            self.say(f"{question} [y/n] y (--yes)")
            return True
        while True:
            print(f"{question} [y/n] ", end="", file=self.out, flush=True)
            line = self.inp.readline()
            if not line:
                return None
            answer = line.strip().lower()
            if answer in {"y", "yes", "ya"}:
                return True
            if answer in {"n", "no", "tidak"}:
                return False


@dataclass
class Bench:
    """The post's hardware, opened for testing: buttons, lights and buzzer, sensors."""

    buttons: dict[str, Any]
    feedback: Feedback
    factory: Any
    mock: bool
    thermometer: Thermometer | None = None
    thermometer_error: str = ""
    camera: Camera | None = None
    stack: ExitStack = field(default_factory=ExitStack)

    def press_later(self, pin_number: int) -> None:
        """Mock pins press themselves: drive low then high from another thread."""
        pin = self.factory.pin(pin_number)

        def press() -> None:
            pin.drive_low()
            pin.drive_high()

        threading.Thread(target=press, name="selftest-press", daemon=True).start()

    def close(self) -> None:
        self.stack.close()


def open_bench(
    config: Config, *, mock: bool, thermometer: Thermometer | None = None, use_config: bool = True
) -> Bench:
    """Open the configured hardware; a thermometer that cannot open becomes a FAIL later."""
    from gpiozero import Button

    stack = ExitStack()
    try:
        factory, is_mock = pin_factory(mock)
        if factory is not None:
            stack.callback(factory.close)
        pins = config.pins
        feedback = stack.enter_context(
            Feedback(pins["led_green"], pins["led_red"], pins["buzzer"], pin_factory=factory)
        )
        buttons = {}
        for name in BUTTONS:
            buttons[name] = Button(pins[name], pull_up=True, pin_factory=factory)
            stack.callback(buttons[name].close)
        bench = Bench(buttons, feedback, factory, is_mock, stack=stack)
        bench.thermometer, bench.thermometer_error = _open_thermometer(
            config, thermometer, use_config
        )
        if bench.thermometer is not None:
            stack.callback(bench.thermometer.close)
        bench.camera = open_camera(config.camera.driver) if use_config else None
        if bench.camera is not None:
            stack.callback(bench.camera.close)
        return bench
    except BaseException:
        stack.close()
        raise


def _open_thermometer(
    config: Config, given: Thermometer | None, use_config: bool
) -> tuple[Thermometer | None, str]:
    if given is not None or not use_config:
        return given, ""
    try:
        return open_thermometer(config), ""
    except Exception as e:  # a missing I2C bus or 1-wire device is a finding, not a crash
        return None, f"cannot open the {config.thermometer.driver} thermometer: {e}"


def check_buttons(
    bench: Bench,
    pins: dict[str, int],
    technician: Technician,
    timeout: float,
    on_prompt: Callable[[str], None] | None = None,
) -> list[Check]:
    """Ask for each button in turn and wait for its press (or the time limit)."""
    pressed: dict[str, threading.Event] = {name: threading.Event() for name in bench.buttons}
    for name, button in bench.buttons.items():
        button.when_pressed = pressed[name].set
    results = []
    for name in bench.buttons:
        for event in pressed.values():
            event.clear()
        technician.say(f"press {LABELS[name]} now… (within {timeout:g} s)")
        if on_prompt is not None:
            on_prompt(name)
        started = time.monotonic()
        if pressed[name].wait(timeout):
            took = time.monotonic() - started
            results.append(Check(f"button {LABELS[name]}", PASS, f"pressed after {took:.1f} s"))
            continue
        others = [LABELS[n] for n, e in pressed.items() if e.is_set()]
        wrong = f"; {', '.join(others)} was pressed instead (wiring?)" if others else ""
        detail = f"no press within {timeout:g} s (BCM {pins[name]}){wrong}"
        results.append(Check(f"button {LABELS[name]}", FAIL, detail))
    for button in bench.buttons.values():
        button.when_pressed = None
    return results


def check_outputs(bench: Bench, technician: Technician) -> list[Check]:
    """Light each LED and sound the buzzer; the technician says whether it worked."""
    fb = bench.feedback
    steps = (
        ("LED green", fb.green, "did you see the green LED blink?"),
        ("LED red", fb.red, "did you see the red LED blink?"),
        ("buzzer", fb.buzzer, "did you hear the buzzer beep?"),
    )
    results = []
    for name, device, question in steps:
        device.blink(on_time=0.5, off_time=0.5, background=True)
        try:
            answer = technician.ask(question)
        finally:
            device.off()
        if answer is None:
            results.append(Check(name, FAIL, "no answer"))
        elif answer:
            how = "assumed (--yes)" if technician.yes else "confirmed by the technician"
            results.append(Check(name, PASS, how))
        else:
            results.append(Check(name, FAIL, "not seen or heard: check the wiring and pin"))
    return results


def check_thermometer(thermometer: Thermometer | None, readings: int, error: str = "") -> Check:
    """Read N times; report mean, spread and faults."""
    if error:
        return Check("thermometer", FAIL, error)
    if thermometer is None:
        return Check("thermometer", SKIP, "thermometer.driver is none")
    values: list[float] = []
    faults: Counter[str] = Counter()
    for _ in range(readings):
        reading = thermometer.read()
        if reading.ok and reading.celsius is not None:
            values.append(reading.celsius)
        else:
            faults[reading.fault or "no_value"] += 1
    fault_text = ", ".join(f"{code} ×{n}" for code, n in sorted(faults.items()))
    if not values:
        return Check("thermometer", FAIL, f"no valid reading of {readings}: {fault_text}")
    spread = max(values) - min(values)
    detail = (
        f"{len(values)}/{readings} valid, mean {statistics.fmean(values):.2f} °C, "
        f"spread {spread:.2f} °C" + (f"; faults: {fault_text}" if faults else "")
    )
    if sum(faults.values()) * 2 > readings:
        return Check("thermometer", FAIL, detail)
    if faults or spread > SPREAD_WARN_C:
        return Check("thermometer", WARN, detail)
    return Check("thermometer", PASS, detail)


def check_camera(camera: Camera | None) -> Check:
    """Take one photo into a temporary file, then delete it (photos are biometric data)."""
    if camera is None:
        return Check("camera", SKIP, "camera.driver is none")
    with tempfile.TemporaryDirectory(prefix="posko-selftest-") as scratch:
        path = Path(scratch) / "selftest.jpg"
        try:
            camera.capture(path)
            size = path.stat().st_size
        except Exception as e:
            return Check("camera", FAIL, str(e))
    if size == 0:
        return Check("camera", FAIL, "the photo is empty")
    return Check("camera", PASS, f"took a {size}-byte photo (deleted)")


def run_checks(
    config: Config,
    bench: Bench,
    technician: Technician,
    *,
    timeout: float = 10.0,
    readings: int = 5,
    on_prompt: Callable[[str], None] | None = None,
    speaker: Speaker | None = None,
    pi_model: Path = PI_MODEL,
) -> list[Check]:
    """Every check in the order a technician walks the post."""
    pins = config.pins
    if on_prompt is None and bench.mock:
        on_prompt = lambda name: bench.press_later(pins[name])  # noqa: E731
    checks = check_buttons(bench, pins, technician, timeout, on_prompt)
    checks += check_outputs(bench, technician)
    checks.append(check_voice(config, technician, speaker))
    checks.append(check_driver(config, pi_model))
    technician.say(f"reading the thermometer {readings} times…")
    checks.append(check_thermometer(bench.thermometer, readings, bench.thermometer_error))
    checks.append(check_camera(bench.camera))
    checks.append(check_broker(broker_address(config)))
    checks.append(check_clock())
    checks.append(check_disk(config.post.data_dir))
    return checks


def table(checks: list[Check]) -> str:
    """A plain-text table that reads well over SSH."""
    width = max(len(c.check) for c in checks)
    lines = [f"{'check':<{width}}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.check:<{width}}  {c.result:<6}  {c.detail}" for c in checks]
    failed = sum(c.result == FAIL for c in checks)
    warned = sum(c.result == WARN for c in checks)
    if failed:
        lines.append(f"\nFAILED: {failed} check(s)")
    else:
        lines.append(
            f"\nno check failed ({warned} warning(s) to look at)"
            if warned
            else "\nall checks passed"
        )
    return "\n".join(lines)


def selftest(
    config: Config,
    technician: Technician,
    *,
    mock: bool = False,
    timeout: float = 10.0,
    readings: int = 5,
    as_json: bool = False,
    thermometer: Thermometer | None = None,
    use_config: bool = True,
    out: TextIO | None = None,
    speaker: Speaker | None = None,
    pi_model: Path = PI_MODEL,
) -> int:
    """Hold the data dir, open the hardware, run every check, print; 0 when nothing failed."""
    with hold_data_dir(config.post.data_dir, "the self-test"):
        bench = open_bench(config, mock=mock, thermometer=thermometer, use_config=use_config)
        try:
            checks = run_checks(
                config,
                bench,
                technician,
                timeout=timeout,
                readings=readings,
                speaker=speaker,
                pi_model=pi_model,
            )
        finally:
            bench.close()
    ok = not any(c.result == FAIL for c in checks)
    warnings = loud_warnings(checks)
    for line in warnings:  # stderr: seen even when stdout is JSON for a script
        technician.say(line)
    if as_json:
        text = json.dumps({"ok": ok, "checks": [asdict(c) for c in checks]}, ensure_ascii=False)
    else:
        text = "\n".join([table(checks), *warnings])
    print(text, file=out or sys.stdout, flush=True)
    return 0 if ok else 1


def cmd_selftest(config: Config, args: argparse.Namespace) -> int:
    """The `posko selftest` command: 0 when no check failed, 1 otherwise."""
    if args.timeout <= 0 or args.readings < 1:
        print("posko: --timeout must be positive and --readings at least 1", file=sys.stderr)
        return 2
    return selftest(
        config,
        Technician(yes=args.yes),
        mock=args.mock,
        timeout=args.timeout,
        readings=args.readings,
        as_json=args.json,
    )


def register(commands: Any) -> None:
    """The `selftest` subcommand."""
    parser = commands.add_parser(
        "selftest",
        help="walk through the buttons, lights, buzzer, voice, thermometer, camera, broker, "
        "clock, disk",
        description="Check the post's hardware with a technician at hand, over SSH if need "
        "be: press each button when asked, say whether each light and the buzzer "
        "worked, a test phrase is spoken when voice.enabled, the thermometer's driver is "
        "named (a WARNING when it is simulated on a Raspberry Pi) and the thermometer "
        "is read several times, a test photo is taken "
        "and deleted, the district broker is reached, and the clock and the free "
        "disk are checked. Prints a table (or JSON) and exits 0 when nothing failed, "
        "1 otherwise. The station must be stopped first: it owns the pins.",
    )
    parser.add_argument("--mock", action="store_true", help="use mock pins, which press themselves")
    parser.add_argument(
        "--yes", action="store_true", help="answer yes to every question (unattended runs)"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds to press each button"
    )
    parser.add_argument(
        "--readings", type=int, default=5, metavar="N", help="thermometer readings to take"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=cmd_selftest)

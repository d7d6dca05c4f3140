"""Assemble a post from its configuration: store, pins, buttons, feedback, sensors, station.

This is the one place where the configuration chooses hardware drivers; `close()` takes
everything down in the reverse order, so a SIGTERM leaves pins, camera and files clean.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

from edge.clock import SystemClock
from edge.config import Config
from edge.events import Kind
from edge.probe import ThermometerState, ThermometerWatch, note, worth_recording
from edge.station import Clock, Outcome, Station
from edge.store import EventStore
from edge.voice import Voice, phrase_for
from sensors.buttons import ButtonPanel
from sensors.camera import Camera, open_camera
from sensors.feedback import Feedback
from sensors.pins import pin_factory
from sensors.speaker import Speaker, open_speaker
from sensors.thermometer import Calibrated, Thermometer

log = logging.getLogger(__name__)


def open_thermometer(config: Config) -> Thermometer | None:
    """The configured driver, wrapped in the configured calibration."""
    options = config.thermometer
    raw: Thermometer
    if options.driver == "none":
        return None
    if options.driver == "mlx90614":
        from sensors.mlx90614 import MLX90614

        raw = MLX90614(options.i2c_bus, options.i2c_address, samples=options.samples)
    elif options.driver == "ds18b20":
        from sensors.ds18b20 import DS18B20

        raw = DS18B20(options.w1_device or None)
    else:
        from sensors.simulated import SimulatedThermometer

        raw = SimulatedThermometer()
    return Calibrated(
        raw,
        offset=options.offset_c,
        gain=options.gain,
        plausible_min=options.plausible_min_c,
        plausible_max=options.plausible_max_c,
    )


class Post:
    """Everything `posko run` owns for one data directory."""

    def __init__(
        self,
        config: Config,
        *,
        mock: bool = False,
        clock: Clock | None = None,
        thermometer: Thermometer | None = None,
        camera: Camera | None = None,
        use_config_sensors: bool = True,
        monotonic: Any = None,
        speaker: Speaker | None = None,
    ) -> None:
        self.config = config
        self._stack = ExitStack()
        self._speaker = speaker  # used only when voice.enabled
        self.voice: Voice | None = None
        self.watch: ThermometerWatch | None = None
        try:
            self._open(mock, clock, thermometer, camera, use_config_sensors, monotonic)
        except BaseException:
            self._stack.close()
            raise

    def _open(
        self,
        mock: bool,
        clock: Clock | None,
        thermometer: Thermometer | None,
        camera: Camera | None,
        use_config_sensors: bool,
        monotonic: Any,
    ) -> None:
        config, stack = self.config, self._stack
        self.data_dir = config.post.data_dir
        self.store = stack.enter_context(
            EventStore(self.data_dir, config.post.id, config.post.zone)
        )
        for damage in self.store.damage:
            log.error("store damage found at start-up: %s", damage.describe())
        self.factory, self.mock = pin_factory(mock)
        if self.factory is not None:
            stack.callback(self.factory.close)  # pins go last, after every device using them
        if use_config_sensors:
            thermometer = thermometer or open_thermometer(config)
            camera = camera or open_camera(config.camera.driver)
        self.thermometer = thermometer
        self.camera = camera
        for device in (thermometer, camera):
            if device is not None:
                stack.callback(device.close)
        pins = config.pins
        self.feedback = stack.enter_context(
            Feedback(pins["led_green"], pins["led_red"], pins["buzzer"], pin_factory=self.factory)
        )
        self.clock = clock or SystemClock(self.data_dir)  # keeps a time set on the page
        self.station = Station(
            config,
            self.store,
            thermometer=thermometer,
            clock=self.clock,
            camera=camera,
            feedback=self.feedback,
        )
        stack.callback(self.station.close)  # closed before the devices above it
        self.station.start()
        self._start_voice()
        self._start_probe()
        extra = {"monotonic": monotonic} if monotonic is not None else {}
        self.panel = stack.enter_context(
            ButtonPanel(
                pins,
                self.station.submit,
                pin_factory=self.factory,
                dead_time=config.buttons.dead_time_s,
                emergency_hold=config.buttons.emergency_hold_s,
                recheck_hold=config.buttons.recheck_hold_s,
                **extra,
            )
        )
        log.info(
            "post %s ready: %d events, %d waiting for sync",
            config.post.id,
            self.store.count,
            self.store.pending,
        )

    def _start_voice(self) -> None:
        """The voice for the person being screened, when enabled: fed after each press."""
        options = self.config.voice
        if not options.enabled:
            return
        speaker = self._speaker or open_speaker(options.driver, options.volume)
        self.voice = Voice(speaker).start()
        self._stack.callback(self.voice.close)  # before the station: no phrase after it
        self.station.watch(self._announce)
        log.info("voice on: %s, volume %d%%", options.driver, options.volume)

    def _announce(self, outcome: Outcome) -> None:
        """In the station thread, after the lights: only puts a phrase in the mailbox."""
        options = self.config.voice
        phrase = phrase_for(outcome, options, self.config.screening.recheck_wait_s)
        if phrase and self.voice is not None:
            self.voice.announce(phrase)

    def _start_probe(self) -> None:
        """Probe the thermometer now, then every `thermometer.probe_interval_s`."""
        if self.thermometer is None:
            return
        self.watch = ThermometerWatch(
            self.thermometer,
            self.config.thermometer.driver,
            interval=lambda: self.config.thermometer.probe_interval_s,
            now=self.clock.now,
            on_change=self._thermometer_changed,
        )
        self._stack.callback(self.watch.close)
        self.watch.probe_now()
        self.watch.start()

    def _thermometer_changed(self, before: ThermometerState, after: ThermometerState) -> None:
        if worth_recording(before, after):
            self.station.record(Kind.NOTE, data=note(after))

    @property
    def thermometer_state(self) -> ThermometerState | None:
        """The last probe's verdict, for `/healthz` and the guard's screen (None: no sensor)."""
        return None if self.watch is None else self.watch.state

    # Settings that need a restart because they re-wire hardware or move the data.
    RESTART = (
        "data.dir",
        "post.id",
        "time.zone",
        "thermometer.driver",
        "thermometer.i2c_bus",
        "thermometer.i2c_address",
        "thermometer.samples",
        "thermometer.w1_device",
        "web.listen",
        "mqtt.broker",
    )

    def reconfigure(self, config: Config) -> list[str]:
        """Apply changed settings at once where possible; returns the keys needing a restart."""
        changed = [k for k in config if config[k] != self.config[k]]
        self.config = config
        self.station.config = config
        if isinstance(self.thermometer, Calibrated):
            calibration = config.thermometer
            self.thermometer.offset = calibration.offset_c
            self.thermometer.gain = calibration.gain
            self.thermometer.plausible_min = calibration.plausible_min_c
            self.thermometer.plausible_max = calibration.plausible_max_c
        if "camera.driver" in changed:
            if self.camera is not None:
                self.camera.close()
            self.camera = open_camera(config.camera.driver)
            self.station.camera = self.camera
            if self.camera is not None:
                self._stack.callback(self.camera.close)
        panel, buttons = self.panel, config.buttons
        panel.dead_time = buttons.dead_time_s
        for name, button in panel.buttons.items():
            hold = buttons.emergency_hold_s if name == "darurat" else buttons.recheck_hold_s
            button.hold_time = hold
        return [k for k in changed if k in self.RESTART or k.startswith("pins.")]

    def mock_pin(self, name: str) -> Any:
        """The mock pin behind a button or output, for demos, simulations and tests."""
        if not self.mock:
            raise RuntimeError("real pins cannot be driven from software")
        return self.factory.pin(self.config.pins[name])

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Post:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

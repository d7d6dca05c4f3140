"""Typed views of the post's own settings, one small frozen dataclass per area.

`Config` keeps one of each (`config.screening`, `config.thermometer` ...), so code reads
`post.config.screening.threshold_c` rather than a "section.name" key; keys stay in `settings`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Values = Mapping[str, Any]  # a `Config`, or any mapping keyed by "section.name"


@dataclass(frozen=True)
class PostOptions:
    """Who the post is, where it keeps its data and which time zone its days are in."""

    id: str
    name: str
    data_dir: Path
    zone: str
    region: str = ""  # Kemendagri code PP.KK.CC.DDDD of its desa, for the district

    @classmethod
    def from_config(cls, config: Values) -> PostOptions:
        return cls(
            config["post.id"],
            config["post.name"],
            Path(config["data.dir"]),
            config["time.zone"],
            config["post.region"],
        )


@dataclass(frozen=True)
class ScreeningOptions:
    threshold_c: float
    recheck_wait_s: int

    @classmethod
    def from_config(cls, config: Values) -> ScreeningOptions:
        return cls(config["screening.threshold_c"], config["screening.recheck_wait_s"])


@dataclass(frozen=True)
class ThermometerOptions:
    """The driver and where it is attached, then the calibration applied to its readings."""

    driver: str
    i2c_bus: int
    i2c_address: int
    samples: int
    w1_device: str
    offset_c: float
    gain: float
    plausible_min_c: float
    plausible_max_c: float
    calibration_spread_c: float
    probe_interval_s: int

    @classmethod
    def from_config(cls, config: Values) -> ThermometerOptions:
        return cls(
            config["thermometer.driver"],
            config["thermometer.i2c_bus"],
            config["thermometer.i2c_address"],
            config["thermometer.samples"],
            config["thermometer.w1_device"],
            config["thermometer.offset_c"],
            config["thermometer.gain"],
            config["thermometer.plausible_min_c"],
            config["thermometer.plausible_max_c"],
            config["thermometer.calibration_spread_c"],
            config["thermometer.probe_interval_s"],
        )


@dataclass(frozen=True)
class ButtonOptions:
    dead_time_ms: int
    void_window_s: int
    emergency_hold_s: float
    recheck_hold_s: float

    @property
    def dead_time_s(self) -> float:
        return self.dead_time_ms / 1000

    @classmethod
    def from_config(cls, config: Values) -> ButtonOptions:
        return cls(
            config["buttons.dead_time_ms"],
            config["buttons.void_window_s"],
            config["buttons.emergency_hold_s"],
            config["buttons.recheck_hold_s"],
        )


@dataclass(frozen=True)
class CameraOptions:
    driver: str

    @classmethod
    def from_config(cls, config: Values) -> CameraOptions:
        return cls(config["camera.driver"])


@dataclass(frozen=True)
class VoiceOptions:
    """Whether and how loud the station speaks its verdicts, and whether it says the number."""

    enabled: bool
    driver: str
    volume: int
    say_temperature: bool

    @classmethod
    def from_config(cls, config: Values) -> VoiceOptions:
        return cls(
            config["voice.enabled"],
            config["voice.driver"],
            config["voice.volume"],
            config["voice.say_temperature"],
        )


@dataclass(frozen=True)
class PrivacyOptions:
    """Retention periods under UU PDP, and how often the purge runs."""

    photo_days: int
    visitor_days: int
    synced_event_days: int
    purge_interval_s: int

    @classmethod
    def from_config(cls, config: Values) -> PrivacyOptions:
        return cls(
            config["privacy.photo_days"],
            config["privacy.visitor_days"],
            config["privacy.synced_event_days"],
            config["privacy.purge_interval_s"],
        )

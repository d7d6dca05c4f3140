"""Every setting of a post, declared once: key, type, default, allowed values, meaning.

`edge.config` validates a TOML file, `POSKO_*` variables and flags against this table;
the README's configuration section and `posko config --help` are generated from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PINS = (
    "masuk_warga",
    "masuk_pendatang",
    "keluar_warga",
    "keluar_pendatang",
    "batal",
    "darurat",
    "led_green",
    "led_red",
    "buzzer",
)


TYPE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


@dataclass(frozen=True)
class Setting:
    key: str  # "section.name"
    type: type
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    pattern: str | None = None  # regular expression a string must match
    form: str | None = None  # the pattern in words, for error messages (never the regex)

    @property
    def env(self) -> str:
        return "POSKO_" + self.key.replace(".", "_").upper()

    def allowed(self) -> str:
        """What a valid value looks like, in words (a technician reads it, not a regex)."""
        if self.type is list:
            return 'a list of text, e.g. ["a", "b"]'
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.min is not None and self.max is not None:
            return f"{TYPE_WORDS[self.type]} from {self.min:g} to {self.max:g}"
        if self.pattern:
            return self.form or "text in the documented form"
        return TYPE_WORDS[self.type]


def _pin(name: str, default: int, meaning: str) -> Setting:
    return Setting(f"pins.{name}", int, default, f"BCM pin of {meaning}", min=2, max=27)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "post.id",
        str,
        "posko-01",
        "Post id, unique in the district; used in topics",
        pattern=r"^[a-z0-9][a-z0-9-]{0,31}$",
        form="up to 32 lower-case letters, digits and '-', not starting with '-', "
        "e.g. rw03-sukamaju",
    ),
    Setting("post.name", str, "Posko Kampung Tangguh", "Post name shown on the screen"),
    Setting(
        "post.region",
        str,
        "",
        "Kemendagri code of the post's desa, for the district page (empty: not set)",
        pattern=r"^(\d{2}\.\d{2}\.\d{2}\.\d{4})?$",
        form="empty, or the desa's Kemendagri code: province, kabupaten, kecamatan and desa "
        "numbers as PP.KK.CC.DDDD, e.g. 18.09.01.2001",
    ),
    Setting("data.dir", str, "/var/lib/posko", "Data directory (events, photos, sync state)"),
    Setting("time.zone", str, "Asia/Jakarta", "Time zone of the post, for days and reports"),
    _pin("masuk_warga", 17, "the Masuk Warga (resident in) button"),
    _pin("masuk_pendatang", 27, "the Masuk Pendatang (visitor in) button"),
    _pin("keluar_warga", 22, "the Keluar Warga (resident out) button"),
    _pin("keluar_pendatang", 23, "the Keluar Pendatang (visitor out) button"),
    _pin("batal", 24, "the Batal (void last event) button"),
    _pin("darurat", 25, "the Darurat (emergency, hold) button"),
    _pin("led_green", 5, "the green LED"),
    _pin("led_red", 6, "the red LED"),
    _pin("buzzer", 13, "the buzzer"),
    Setting(
        "buttons.dead_time_ms",
        int,
        400,
        "A second press of the same button within this time is the same press",
        min=50,
        max=5000,
    ),
    Setting(
        "buttons.void_window_s",
        int,
        120,
        "Batal voids the last event only if it is younger than this",
        min=10,
        max=3600,
    ),
    Setting(
        "buttons.emergency_hold_s",
        float,
        3.0,
        "Darurat must be held this long before it fires",
        min=0.05,
        max=10.0,
    ),
    Setting(
        "buttons.recheck_hold_s",
        float,
        2.0,
        "Holding an entry button this long takes the re-check reading",
        min=0.05,
        max=10.0,
    ),
    Setting(
        "thermometer.driver",
        str,
        "simulated",
        "Which thermometer is attached",
        choices=("mlx90614", "ds18b20", "simulated", "none"),
    ),
    Setting("thermometer.i2c_bus", int, 1, "I2C bus number of the MLX90614", min=0, max=20),
    Setting(
        "thermometer.i2c_address", int, 0x5A, "I2C address of the MLX90614", min=0x03, max=0x77
    ),
    Setting(
        "thermometer.samples",
        int,
        5,
        "Samples per MLX90614 reading (median is used)",
        min=1,
        max=25,
    ),
    Setting(
        "thermometer.w1_device",
        str,
        "",
        "1-wire device directory of the DS18B20; empty finds the first 28-*",
    ),
    Setting(
        "thermometer.offset_c",
        float,
        0.0,
        "Calibration offset added to raw readings",
        min=-5.0,
        max=5.0,
    ),
    Setting(
        "thermometer.gain",
        float,
        1.0,
        "Calibration gain applied before the offset",
        min=0.8,
        max=1.2,
    ),
    Setting(
        "thermometer.plausible_min_c",
        float,
        30.0,
        "A calibrated reading below this is a sensor fault",
        min=20.0,
        max=36.0,
    ),
    Setting(
        "thermometer.plausible_max_c",
        float,
        43.0,
        "A calibrated reading above this is a sensor fault",
        min=38.0,
        max=50.0,
    ),
    Setting(
        "thermometer.calibration_spread_c",
        float,
        0.5,
        "posko calibrate refuses readings spread over more than this (unless --force)",
        min=0.05,
        max=5.0,
    ),
    Setting(
        "thermometer.probe_interval_s",
        int,
        60,
        "Seconds between checks that the thermometer answers (also at start); not a screening",
        min=5,
        max=3600,
    ),
    Setting(
        "screening.threshold_c",
        float,
        37.3,
        "At or above this temperature the person is measured again",
        min=36.0,
        max=40.0,
    ),
    Setting(
        "screening.recheck_wait_s",
        int,
        300,
        "How long a person waits before the second reading",
        min=0,
        max=3600,
    ),
    Setting(
        "camera.driver",
        str,
        "none",
        "Camera for a photo per entry (off by default)",
        choices=("none", "picamera2", "fake"),
    ),
    # -- the voice for the person being screened (espeak-ng) --
    Setting(
        "voice.enabled",
        bool,
        False,
        "Speak each screening's verdict aloud in Indonesian for the person at the thermometer",
    ),
    Setting(
        "voice.driver",
        str,
        "espeak-ng",
        "espeak-ng on the Pi's audio output, or fake (only logs the phrase; demos)",
        choices=("espeak-ng", "fake"),
    ),
    Setting(
        "voice.volume",
        int,
        80,
        "Loudness in percent of espeak-ng's maximum (100 is its amplitude 200)",
        min=0,
        max=100,
    ),
    Setting(
        "voice.say_temperature",
        bool,
        False,
        "Also say the temperature (health data: everyone near the post hears it)",
    ),
    # -- the guard's screen (web/) --
    Setting(
        "web.listen",
        str,
        "127.0.0.1:8080",
        "Address of the guard's page",
        pattern=r"^.+:\d{1,5}$",
        form="HOST:PORT, e.g. 127.0.0.1:8080",
    ),
    Setting("web.language", str, "id", "Language of the guard's screen", choices=("id", "en")),
    Setting(
        "web.lan_access",
        bool,
        False,
        "Serve the page to phones on the post's Wi-Fi; otherwise loopback only",
    ),
    Setting(
        "web.sse_max_streams",
        int,
        8,
        "Live-view streams open at once; further screens poll instead",
        min=1,
        max=64,
    ),
    # -- sync to the district (sync/) --
    Setting(
        "mqtt.broker",
        str,
        "",
        "District MQTT broker HOST:PORT; empty disables sync",
        pattern=r"^$|^.+:\d{1,5}$",
        form="HOST:PORT, e.g. 192.168.1.10:1883, or empty to turn sync off",
    ),
    Setting("mqtt.protocol", str, "5", "MQTT version spoken to the broker", choices=("5", "3.1.1")),
    Setting(
        "mqtt.username",
        str,
        "",
        "User name at the broker; empty means the post id when a password is set",
    ),
    Setting("mqtt.password", str, "", "Password at the broker (keep the config file private)"),
    Setting(
        "mqtt.tls",
        bool,
        False,
        "Connect with TLS; a TLS failure is an error, never a fall back to plain text",
    ),
    Setting("mqtt.ca_file", str, "", "CA certificate file for TLS; empty uses the system's CAs"),
    Setting("mqtt.cert_file", str, "", "Client certificate file for TLS; empty sends none"),
    Setting("mqtt.key_file", str, "", "Private key of the client certificate"),
    Setting(
        "mqtt.district_keys",
        list,
        [],
        "The district's Ed25519 public key files (district.pub); an ack signed by none of "
        "them is ignored. List two while the district rotates its key",
    ),
    Setting(
        "mqtt.insecure_acks",
        bool,
        False,
        "Believe unsigned acks (demos, old districts): anyone who can publish on the broker "
        "can then make the post drop unsent events",
    ),
    Setting(
        "mqtt.keepalive_s",
        int,
        60,
        "Seconds between keep-alive pings on an idle link",
        min=10,
        max=1200,
    ),
    Setting("sync.batch_events", int, 2000, "Most events in one batch", min=1, max=10_000),
    Setting(
        "sync.batch_bytes",
        int,
        16_384,
        "Largest batch payload in bytes (compressed)",
        min=512,
        max=262_144,
    ),
    Setting(
        "sync.window", int, 4, "Batches sent before waiting for the district's ack", min=1, max=32
    ),
    Setting(
        "sync.ack_timeout_s",
        float,
        30.0,
        "A batch not acknowledged within this is sent again (then 2x, 4x ... 16x)",
        min=0.5,
        max=3600.0,
    ),
    Setting(
        "sync.status_interval_s",
        int,
        300,
        "How often the retained status is refreshed while connected",
        min=10,
        max=86_400,
    ),
    Setting(
        "sync.send_nik",
        bool,
        False,
        "Send visitors' NIK to the district (UU PDP: off unless the district needs it)",
    ),
    # -- privacy (UU PDP) --
    Setting(
        "privacy.photo_days",
        int,
        14,
        "Days a photo is kept on the Pi before it is deleted",
        min=1,
        max=3650,
    ),
    Setting(
        "privacy.visitor_days",
        int,
        30,
        "Days visitors' personal details (name, NIK, phone ...) are kept on the Pi",
        min=1,
        max=3650,
    ),
    Setting(
        "privacy.synced_event_days",
        int,
        90,
        "Days events the district acknowledged stay on the Pi (unsynced ones are never purged)",
        min=1,
        max=3650,
    ),
    Setting(
        "privacy.purge_interval_s",
        int,
        3600,
        "Seconds between two runs of the retention purge (it also runs at start-up)",
        min=60,
        max=86_400,
    ),
)

BY_KEY: dict[str, Setting] = {s.key: s for s in SETTINGS}

"""The voice for the person being screened: a short Indonesian phrase per outcome, spoken by
one background thread with a one-slot mailbox, so speaking never delays a press or a light;
a phrase that is stale when its turn comes (a newer one arrived, or it waited too long) is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from edge.events import Kind, Screening
from edge.options import VoiceOptions
from sensors.errors import SensorError
from sensors.speaker import Speaker

if TYPE_CHECKING:
    from edge.station import Outcome

log = logging.getLogger(__name__)

# Longer than the longest phrase (about 5 s): the next person in a queue still hears theirs
# after the last one's; later than this, they have walked on and a verdict would mislead.
STALE_AFTER_S = 8.0
CLOSE_WAIT_S = 2.0

ONES = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")
NORMAL = "Suhu normal, silakan masuk."
RECHECK = "Suhu tinggi, mohon tunggu {wait} untuk diukur ulang."
RECHECK_NOW = "Suhu tinggi, mohon diukur ulang sekarang."
REFUSED = "Mohon maaf, suhu masih tinggi. Silakan ke puskesmas."
FAULT = "Sensor bermasalah, mohon diulang."
EMERGENCY = "Keadaan darurat sudah dicatat. Mohon tetap tenang."
TEST = "Tes suara Posko. Suhu normal, silakan masuk."  # what `posko selftest` plays


def number_words(n: int) -> str:
    """A whole number as Indonesian words: 37 → "tiga puluh tujuh", 1000 → "seribu"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 10:
        return ONES[n]
    if n < 20:
        return {10: "sepuluh", 11: "sebelas"}.get(n) or f"{ONES[n - 10]} belas"
    for size, one, name in ((10**9, "", "miliar"), (10**6, "", "juta"), (1000, "seribu", "ribu")):
        if n >= size:
            return _group(n, size, one, name)
    if n >= 100:
        return _group(n, 100, "seratus", "ratus")
    return _join(f"{ONES[n // 10]} puluh", n % 10)


def _group(n: int, size: int, one: str, name: str) -> str:
    """The part of `n` counted in `size` ("dua ratus", "seribu"), then the rest."""
    count, rest = divmod(n, size)
    head = one if count == 1 and one else f"{number_words(count)} {name}"
    return _join(head, rest)


def _join(head: str, rest: int) -> str:
    return f"{head} {number_words(rest)}" if rest else head


def temperature_words(celsius: float) -> str:
    """A temperature to one decimal, the Indonesian way: 37.5 → "tiga puluh tujuh koma lima"."""
    tenths = round(celsius * 10)
    whole, tenth = divmod(abs(tenths), 10)
    sign = "minus " if tenths < 0 else ""
    return f"{sign}{number_words(whole)} koma {ONES[tenth]}"


def wait_words(seconds: int) -> str:
    """How long to wait, as said: 300 → "lima menit", 90 → "satu menit tiga puluh detik"."""
    minutes, rest = divmod(seconds, 60)
    parts = [f"{number_words(minutes)} menit"] if minutes else []
    if rest:
        parts.append(f"{number_words(rest)} detik")
    return " ".join(parts)


def phrase_for(outcome: Outcome, options: VoiceOptions, recheck_wait_s: int) -> str | None:
    """What to say for one handled press; None when the person in front has nothing to hear."""
    event = outcome.event
    if event is None:
        return None
    if event["kind"] == Kind.EMERGENCY:
        return EMERGENCY
    if event["kind"] not in (Kind.IN, Kind.RECHECK) or "screening" not in event:
        return None  # exits, voids, records; an entry with no thermometer
    screening = Screening(event["screening"])
    if screening == Screening.FAULT:
        return FAULT
    if screening == Screening.RECHECK:
        verdict = RECHECK.format(wait=wait_words(recheck_wait_s)) if recheck_wait_s else RECHECK_NOW
    else:
        verdict = REFUSED if screening == Screening.REFUSED else NORMAL
    temp = event.get("temp_c")
    if options.say_temperature and temp is not None:
        return f"{temperature_words(temp)} derajat. {verdict}"
    return verdict


class Voice:
    """Speaks the newest phrase in a thread of its own; `announce` never blocks."""

    def __init__(
        self,
        speaker: Speaker,
        *,
        stale_after_s: float = STALE_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.speaker = speaker
        self.stale_after_s = stale_after_s
        self.dropped = 0  # phrases never spoken because they went stale
        self._monotonic = monotonic
        self._slot: tuple[str, float] | None = None  # the one phrase waiting, and since when
        self._wake = threading.Condition()
        self._idle = threading.Event()  # nothing waiting and nothing being said
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)

    def start(self) -> Voice:
        self._thread.start()
        return self

    def announce(self, phrase: str) -> None:
        """Put `phrase` in the mailbox, replacing (dropping) one not yet spoken."""
        with self._wake:
            if self._closed:
                return
            if self._slot is not None:
                self.dropped += 1
                log.debug("voice: dropped %r, a newer phrase came", self._slot[0])
            self._slot = (phrase, self._monotonic())
            self._idle.clear()
            self._wake.notify()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every phrase was said or dropped; False if the time ran out first."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while (phrase := self._next()) is not None:
            try:
                self.speaker.say(phrase)
            except SensorError as e:
                log.warning("voice: %s", e)
            except Exception:  # the voice must never take anything else down
                log.exception("voice: the speaker failed")

    def _next(self) -> str | None:
        """The next phrase young enough to say; None once closed."""
        with self._wake:
            while True:
                if self._slot is None:
                    self._idle.set()
                self._wake.wait_for(lambda: self._slot is not None or self._closed)
                if self._closed:
                    return None
                assert self._slot is not None
                (phrase, since), self._slot = self._slot, None
                if self._monotonic() - since <= self.stale_after_s:
                    return phrase
                self.dropped += 1
                log.debug("voice: dropped %r, stale", phrase)

    def close(self) -> None:
        """Drop what is waiting, stop the thread and the speaker. Idempotent."""
        with self._wake:
            self._closed = True
            self._slot = None
            self._wake.notify()
        self.speaker.close()
        if self._thread.is_alive():
            self._thread.join(CLOSE_WAIT_S)

    def __enter__(self) -> Voice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

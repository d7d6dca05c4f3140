"""The voice for the person being screened: Indonesian number words, a phrase per outcome,
a mailbox that drops stale phrases, a press path that never waits for it, real espeak-ng."""

from __future__ import annotations

import array
import os
import shutil
import threading
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.config import Config
from edge.voice import (
    EMERGENCY,
    FAULT,
    NORMAL,
    REFUSED,
    STALE_AFTER_S,
    Voice,
    number_words,
    temperature_words,
    wait_words,
)
from sensors.speaker import EspeakSpeaker, FakeSpeaker, SpeakerError
from tests.support.guard import Guard

WAIT_S = 5.0
ESPEAK = shutil.which("espeak-ng")
needs_espeak = pytest.mark.skipif(
    ESPEAK is None, reason="espeak-ng is not installed (`make test` installs it from apt)"
)
DIGITS = ("nol", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "delapan", "sembilan")
WHOLE = {"sepuluh": 10, "sebelas": 11, "seratus": 100}
GROUPS = {"ribu": 1000, "juta": 10**6}


def read_back(words: str) -> int:
    """Indonesian number words back to the number, written apart from `number_words`."""
    total = small = last = 0
    for word in words.split():
        if word in DIGITS:
            last = DIGITS.index(word)
            small += last
        elif word in WHOLE:
            small += WHOLE[word]
        elif word == "belas":
            small += 10  # "dua belas": the digit, then ten more
        elif word in ("puluh", "ratus"):
            small += last * (9 if word == "puluh" else 99)  # the digit becomes tens, hundreds
        elif word == "seribu":
            total += 1000
        else:
            total += small * GROUPS[word]
            small = 0
    return total + small


def voiced(config: Config, **settings: Any) -> Config:
    return config.replace(voice__enabled=True, **settings)


def spoken(guard: Guard) -> list[str]:
    voice = guard.post.voice
    assert voice is not None and voice.wait_idle(WAIT_S)
    speaker = voice.speaker
    assert isinstance(speaker, FakeSpeaker)
    return speaker.said


# -- words -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "nol"),
        (1, "satu"),
        (10, "sepuluh"),
        (11, "sebelas"),
        (12, "dua belas"),
        (19, "sembilan belas"),
        (20, "dua puluh"),
        (37, "tiga puluh tujuh"),
        (100, "seratus"),
        (111, "seratus sebelas"),
        (245, "dua ratus empat puluh lima"),
        (1000, "seribu"),
        (1500, "seribu lima ratus"),
        (2026, "dua ribu dua puluh enam"),
        (100_000, "seratus ribu"),
        (1_000_000, "satu juta"),
    ],
)
def test_voice_number_words_as_a_secretary_says_them(number: int, words: str) -> None:
    assert number_words(number) == words


@given(st.integers(min_value=0, max_value=999_999_999))
def test_voice_number_words_read_back_to_the_number(number: int) -> None:
    assert read_back(number_words(number)) == number


@pytest.mark.parametrize(
    ("celsius", "words"),
    [
        (37.5, "tiga puluh tujuh koma lima"),
        (36.64, "tiga puluh enam koma enam"),
        (36.96, "tiga puluh tujuh koma nol"),
        (40.0, "empat puluh koma nol"),
    ],
)
def test_voice_temperature_is_read_with_koma(celsius: float, words: str) -> None:
    assert temperature_words(celsius) == words


def test_voice_wait_is_said_in_minutes_and_seconds() -> None:
    assert wait_words(300) == "lima menit"
    assert wait_words(90) == "satu menit tiga puluh detik"
    assert wait_words(45) == "empat puluh lima detik"


# -- the station speaks ---------------------------------------------------------------


def test_voice_is_off_by_default(guard: Callable[..., Guard]) -> None:
    speaker = FakeSpeaker()
    g = guard([36.6], speaker=speaker)
    assert g.press("masuk_warga").pattern == "stored"
    assert g.post.voice is None and speaker.started == []


def test_voice_says_the_verdict_of_each_screening(
    guard: Callable[..., Guard], config: Config
) -> None:
    g = guard([36.6, 38.2, "i2c_error"], cfg=voiced(config), speaker=FakeSpeaker())
    g.press("masuk_warga")
    assert spoken(g) == [NORMAL]
    g.press("masuk_pendatang")
    assert spoken(g)[-1] == "Suhu tinggi, mohon tunggu lima menit untuk diukur ulang."
    g.press("masuk_warga")
    assert spoken(g)[-1] == FAULT
    assert g.press("keluar_warga").pattern == "stored"  # exits are not screened
    assert len(spoken(g)) == 3


def test_voice_says_refused_after_the_second_high_reading(
    guard: Callable[..., Guard], config: Config
) -> None:
    g = guard([38.4], cfg=voiced(config), speaker=FakeSpeaker())
    assert g.press("masuk_pendatang").pattern == "recheck"
    g.clock.advance(300)
    assert g.hold("masuk_pendatang").pattern == "refused"
    assert spoken(g)[-1] == REFUSED


def test_voice_says_emergency_when_darurat_is_held(
    guard: Callable[..., Guard], config: Config
) -> None:
    g = guard(cfg=voiced(config), speaker=FakeSpeaker())
    assert g.hold("darurat").pattern == "emergency"
    assert spoken(g) == [EMERGENCY]


def test_voice_says_the_number_only_when_asked(guard: Callable[..., Guard], config: Config) -> None:
    g = guard([37.5], cfg=voiced(config, voice__say_temperature=True), speaker=FakeSpeaker())
    g.press("masuk_warga")
    assert spoken(g) == [
        "tiga puluh tujuh koma lima derajat. Suhu tinggi, mohon tunggu lima menit untuk "
        "diukur ulang."
    ]


def test_voice_never_delays_the_press_or_the_light(
    guard: Callable[..., Guard], config: Config
) -> None:
    speaker = FakeSpeaker(blocked=True)  # a phrase that never ends until the test says so
    g = guard([36.6], cfg=voiced(config), speaker=speaker)
    first = g.press("masuk_warga")
    assert speaker.speaking.wait(WAIT_S)  # the voice thread is stuck in say()
    second = g.press("masuk_warga")  # the press path answers all the same
    third = g.press("masuk_pendatang")
    assert [o.pattern for o in (first, second, third)] == ["stored"] * 3
    assert [o.event["seq"] for o in (first, second, third) if o.event] == [1, 2, 3]
    assert g.post.feedback.played == ["stored"] * 3  # every light played while it spoke
    speaker.gate.set()
    assert speaker.wait_said(2, WAIT_S)
    assert g.post.voice is not None and g.post.voice.wait_idle(WAIT_S)
    assert speaker.said == [NORMAL, NORMAL]  # the second phrase was replaced by the third
    assert g.post.voice.dropped == 1


# -- the mailbox ----------------------------------------------------------------------


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_voice_mailbox_keeps_only_the_newest_phrase() -> None:
    speaker = FakeSpeaker(blocked=True)
    with Voice(speaker, monotonic=Ticks()) as voice:
        voice.announce("satu")
        assert speaker.speaking.wait(WAIT_S)
        voice.announce("dua")
        voice.announce("tiga")  # "dua" is stale now: someone newer is in front
        speaker.gate.set()
        assert voice.wait_idle(WAIT_S)
        assert speaker.said == ["satu", "tiga"] and voice.dropped == 1


def test_voice_mailbox_says_a_phrase_that_waited_behind_a_long_one() -> None:
    speaker, ticks = FakeSpeaker(blocked=True), Ticks()
    with Voice(speaker, monotonic=ticks) as voice:
        voice.announce("Mohon maaf, suhu masih tinggi. Silakan ke puskesmas.")
        assert speaker.speaking.wait(WAIT_S)
        voice.announce("satu")  # the next person in the queue, right behind
        ticks.now = 5.0  # the longest phrase takes about 5 s
        speaker.gate.set()
        assert voice.wait_idle(WAIT_S)
        assert speaker.said[-1] == "satu" and voice.dropped == 0


def test_voice_mailbox_drops_a_phrase_that_waited_too_long() -> None:
    speaker, ticks = FakeSpeaker(blocked=True), Ticks()
    with Voice(speaker, monotonic=ticks) as voice:
        voice.announce("satu")
        assert speaker.speaking.wait(WAIT_S)
        voice.announce("dua")
        ticks.now = STALE_AFTER_S + 1  # the sound card hung: "dua" is for someone long gone
        speaker.gate.set()
        assert voice.wait_idle(WAIT_S)
        assert speaker.said == ["satu"] and voice.dropped == 1
        voice.announce("tiga")  # a fresh phrase is still said
        assert speaker.wait_said(2, WAIT_S) and speaker.said[-1] == "tiga"


def test_voice_survives_a_failing_speaker() -> None:
    class Broken(FakeSpeaker):
        def say(self, phrase: str) -> None:
            super().say(phrase)
            raise SpeakerError("no sound card")

    speaker = Broken()
    with Voice(speaker) as voice:
        voice.announce("satu")
        assert speaker.wait_said(1, WAIT_S)
        voice.announce("dua")  # the thread lives on after the failure
        assert speaker.wait_said(2, WAIT_S)


def test_voice_close_does_not_wait_for_a_stuck_phrase() -> None:
    speaker = FakeSpeaker(blocked=True)
    voice = Voice(speaker).start()
    voice.announce("satu")
    assert speaker.speaking.wait(WAIT_S)
    closer = threading.Thread(target=voice.close, daemon=True)
    closer.start()
    closer.join(WAIT_S)
    assert not closer.is_alive() and speaker.closed
    voice.close()  # idempotent


# -- real espeak-ng -------------------------------------------------------------------


def wav_facts(path: Path) -> tuple[float, int]:
    """(seconds, loudest sample) of a 16-bit mono WAV file; the frames are counted, as a
    streamed WAV (espeak-ng --stdout) declares an unknown length in its header."""
    with wave.open(str(path), "rb") as wav:
        assert wav.getsampwidth() == 2 and wav.getnchannels() == 1
        samples = array.array("h", wav.readframes(wav.getnframes()))
        rate = wav.getframerate()
    return len(samples) / rate, max((abs(s) for s in samples), default=0)


@needs_espeak
def test_voice_espeak_renders_an_indonesian_phrase_of_plausible_length(tmp_path: Path) -> None:
    wav = tmp_path / "normal.wav"
    EspeakSpeaker(volume=80).render(NORMAL, wav)
    seconds, loudest = wav_facts(wav)
    assert 0.5 <= seconds <= 10.0, seconds
    assert loudest > 1000  # speech, not silence
    quiet = tmp_path / "quiet.wav"
    EspeakSpeaker(volume=0).render(NORMAL, quiet)
    assert wav_facts(quiet)[1] < loudest / 10  # voice.volume reaches espeak-ng


@needs_espeak
def test_voice_espeak_speaks_through_aplay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir, heard = tmp_path / "bin", tmp_path / "heard.wav"
    bin_dir.mkdir()
    aplay = bin_dir / "aplay"  # the sound card: keeps what it was sent
    aplay.write_text(f'#!/bin/sh\ncat > "{heard}"\n')
    aplay.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    EspeakSpeaker(volume=80).say(REFUSED)
    seconds, loudest = wav_facts(heard)
    assert 1.0 <= seconds <= 10.0 and loudest > 1000


def test_voice_espeak_missing_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SpeakerError, match="apt install espeak-ng"):
        EspeakSpeaker().say(NORMAL)

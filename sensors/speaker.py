"""The speaker seam: `Speaker.say(phrase)` speaks one phrase and returns when it is done.

`EspeakSpeaker` runs Debian's espeak-ng (Indonesian voice) into `aplay`, or espeak-ng's own
audio output where aplay is missing; `FakeSpeaker` records phrases for tests and demos.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any, Protocol, Self

from sensors.errors import SensorError

log = logging.getLogger(__name__)

ESPEAK = "espeak-ng"
VOICE = "id"  # espeak-ng's Indonesian voice
WORDS_PER_MINUTE = 150  # a little slower than espeak's 175: strangers, a noisy road
SAY_TIMEOUT_S = 20.0  # a wedged sound card must not hold the speaker thread for ever


class SpeakerError(SensorError):
    """The phrase could not be spoken (espeak-ng missing, no sound card, timed out)."""


class Speaker(Protocol):
    """Anything that can say one phrase aloud; `say` blocks until the phrase is spoken."""

    def say(self, phrase: str) -> None: ...

    def close(self) -> None: ...


def amplitude(volume: int) -> int:
    """`voice.volume` (percent) as espeak-ng's amplitude, 0–200 (its own default is 100)."""
    return max(0, min(200, round(volume * 2)))


def espeak_command(
    phrase: str, volume: int, *, to_stdout: bool = False, wav: Path | None = None
) -> list[str]:
    """The espeak-ng command line that speaks `phrase`, or writes it as WAV to stdout or `wav`."""
    command = [ESPEAK, "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-a", str(amplitude(volume))]
    if to_stdout:
        command.append("--stdout")
    if wav is not None:
        command += ["-w", str(wav)]
    return [*command, "--", phrase]


class EspeakSpeaker:
    """espeak-ng through the Pi's audio output; the programs are looked up when first used."""

    def __init__(self, volume: int = 80, *, timeout: float = SAY_TIMEOUT_S) -> None:
        self.volume = volume
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def say(self, phrase: str) -> None:
        if shutil.which(ESPEAK) is None:
            raise SpeakerError("espeak-ng is not installed (apt install espeak-ng)")
        aplay = shutil.which("aplay")
        try:
            if aplay is None:  # espeak-ng's own output (PulseAudio or ALSA through PortAudio)
                self._run([espeak_command(phrase, self.volume)])
            else:  # aplay reaches the ALSA card directly, also for a system user without a session
                self._run([espeak_command(phrase, self.volume, to_stdout=True), [aplay, "-q"]])
        except subprocess.TimeoutExpired as e:
            raise SpeakerError(f"speaking took over {self.timeout:g} s: {phrase!r}") from e

    def render(self, phrase: str, wav: Path) -> None:
        """Write `phrase` as spoken to a WAV file instead of the speaker (tests, checks)."""
        if shutil.which(ESPEAK) is None:
            raise SpeakerError("espeak-ng is not installed (apt install espeak-ng)")
        self._run([espeak_command(phrase, self.volume, wav=wav)])

    def _run(self, commands: list[list[str]]) -> None:
        """Run a pipeline of one or two commands; raise SpeakerError if either fails."""
        piped = len(commands) > 1
        first = self._spawn(commands[0], stdout=subprocess.PIPE if piped else subprocess.DEVNULL)
        processes = [first]
        try:
            if piped:
                processes.append(self._spawn(commands[1], stdin=first.stdout))
                assert first.stdout is not None
                first.stdout.close()  # so espeak-ng stops with SIGPIPE if aplay dies
            for process in reversed(processes):
                _, error = process.communicate(timeout=self.timeout)
                if process.returncode:
                    lines = error.decode(errors="replace").strip().splitlines()
                    why = lines[-1] if lines else f"exit status {process.returncode}"
                    raise SpeakerError(f"{_program(process)}: {why}")
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
                with self._lock:
                    self._running.discard(process)

    def _spawn(self, command: list[str], **streams: Any) -> subprocess.Popen[bytes]:
        streams.setdefault("stdout", subprocess.DEVNULL)
        try:
            process = subprocess.Popen(command, stderr=subprocess.PIPE, **streams)
        except OSError as e:
            raise SpeakerError(f"cannot start {command[0]}: {e}") from e
        with self._lock:
            self._running.add(process)
        return process

    def close(self) -> None:
        """Stop a phrase being spoken (the station is stopping). Idempotent."""
        with self._lock:
            running, self._running = self._running, set()
        for process in running:
            if process.poll() is None:
                process.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FakeSpeaker:
    """Records what it was asked to say. With `gate` cleared it blocks in `say` (like a long
    phrase) until the test sets it; `wait_said(n)` waits for the n-th phrase."""

    def __init__(self, *, blocked: bool = False) -> None:
        self.said: list[str] = []
        self.started: list[str] = []
        self.gate = threading.Event()
        if not blocked:
            self.gate.set()
        self.speaking = threading.Event()  # set while inside `say`
        self._said = threading.Condition()
        self.closed = False

    def say(self, phrase: str) -> None:
        self.started.append(phrase)
        self.speaking.set()
        try:
            self.gate.wait()
        finally:
            self.speaking.clear()
        log.info("(voice) %s", phrase)
        with self._said:
            self.said.append(phrase)
            self._said.notify_all()

    def wait_said(self, count: int, timeout: float) -> bool:
        """Wait until `count` phrases have been spoken; False if the time ran out first."""
        with self._said:
            return self._said.wait_for(lambda: len(self.said) >= count, timeout)

    def close(self) -> None:
        self.closed = True
        self.gate.set()  # never leave a thread blocked in say

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _program(process: subprocess.Popen[bytes]) -> str:
    args = process.args
    first = args[0] if isinstance(args, list | tuple) else args
    return Path(str(first)).name


def open_speaker(driver: str, volume: int) -> Speaker:
    """The configured speaker: "espeak-ng" on the Pi, "fake" for demos (logs each phrase)."""
    if driver == "fake":
        return FakeSpeaker()
    if driver == "espeak-ng":
        return EspeakSpeaker(volume)
    raise ValueError(f"unknown voice.driver {driver!r}")

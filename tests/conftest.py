"""Shared fixtures: a post on mock pins with a virtual clock, and a way to press its buttons.

Only the hardware edge is fake (gpiozero's MockFactory, a scripted thermometer, a fake
camera); the store, the station and the files are real.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.clock import VirtualClock
from edge.config import Config, defaults
from edge.post import Post
from edge.station import Outcome
from sensors.simulated import ScriptedThermometer

START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # 08:00 in Jakarta
WAIT_S = 5.0  # how long a test waits for the station before it fails


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return defaults().replace(
        data__dir=str(tmp_path / "data"),
        post__id="test-post",
        buttons__emergency_hold_s=0.2,
        buttons__recheck_hold_s=0.2,
    )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


class Guard:
    """Presses the mock buttons of a post and waits for what the station made of them."""

    def __init__(self, post: Post, clock: VirtualClock) -> None:
        self.post = post
        self.clock = clock
        self.outcomes: queue.Queue[Outcome] = queue.Queue()
        post.station.watch(self.outcomes.put)

    def pin(self, name: str) -> Any:
        return self.post.mock_pin(name)

    def press(self, button: str) -> Outcome:
        """A short press and release, a second later than the last one."""
        self.clock.advance(1.0)
        pin = self.pin(button)
        pin.drive_low()
        pin.drive_high()
        return self.next_outcome()

    def hold(self, button: str) -> Outcome:
        """Hold until the station answers (the hold fired), then release."""
        self.clock.advance(1.0)
        pin = self.pin(button)
        pin.drive_low()
        try:
            return self.next_outcome()
        finally:
            pin.drive_high()

    def next_outcome(self) -> Outcome:
        return self.outcomes.get(timeout=WAIT_S)

    def nothing_more(self) -> bool:
        """True if no outcome is waiting: the station handles presses in order, so check
        this after a later press's outcome has arrived."""
        return self.outcomes.empty()


@pytest.fixture
def open_post(config: Config, clock: VirtualClock) -> Iterator[Callable[..., Post]]:
    posts: list[Post] = []

    def opener(script: list[Any] | None = None, cfg: Config | None = None, **kwargs: Any) -> Post:
        thermometer = kwargs.pop("thermometer", ScriptedThermometer(script or [36.6]))
        post = Post(
            cfg or config,
            mock=True,
            clock=clock,
            thermometer=thermometer,
            use_config_sensors=False,
            monotonic=clock.monotonic,
            **kwargs,
        )
        posts.append(post)
        return post

    yield opener
    for post in posts:
        post.close()


@pytest.fixture
def guard(open_post: Callable[..., Post], clock: VirtualClock) -> Callable[..., Guard]:
    def make(script: list[Any] | None = None, **kwargs: Any) -> Guard:
        return Guard(open_post(script, **kwargs), clock)

    return make

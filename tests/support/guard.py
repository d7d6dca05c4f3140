"""The guard at the post, for tests: presses the mock buttons of a `Post` and waits for what
the station made of each press (the `guard` fixture in conftest.py makes one)."""

from __future__ import annotations

import queue
from typing import Any

from edge.clock import VirtualClock
from edge.post import Post
from edge.station import Outcome

WAIT_S = 5.0  # how long a test waits for the station before it fails


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

"""What the receiver subscribes to, and how it mutes a flooding post at the broker.

MQTT cannot subscribe to "every post but one". While no post is muted the receiver listens
through wildcards; while some are, it subscribes to the events and alerts of each post it
knows by name, leaving the muted ones out, so that the broker drops their messages before
they reach this process. Statuses stay on the wildcard, so that a new post is still heard
(and then listened to by name), unless a muted post floods its status too: then they are
named as well ("locked"), and a post never heard before waits for the mute to end.
A muted post's Pi loses nothing: its batches stay unacknowledged and it sends them again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sync import topics

# Leaves a receiver listens to; the status is never shared (a broker does not hand
# retained messages to a shared subscription).
SHARED = (topics.EVENTS, topics.ALERT)
DIRECT = (topics.STATUS,)


@dataclass(frozen=True)
class Topics:
    """One wanted set of subscriptions (topic filters), and whether it names posts."""

    filters: frozenset[str]
    by_name: bool


@dataclass
class Muting:
    """The posts muted until when, the posts heard from, and the subscriptions that follow.

    Thread-safe: the intake mutes from paho's network thread and hears from its decode
    stage; the receiver reads `wanted()` when it (re)subscribes.
    """

    share: str | None = None
    mute_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    known: set[str] = field(default_factory=set)
    muted: dict[str, float] = field(default_factory=dict)  # post ("" = bad topics): until
    locked_until: float = float("-inf")  # statuses by name too, until then
    times_muted: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def hear(self, posts: Iterable[str]) -> bool:
        """Posts that sent something valid: listened to by name while others are muted.
        True if one is new while the posts are named (then the subscriptions change)."""
        with self._lock:
            new = set(posts) - self.known
            self.known |= new
            return bool(new) and (bool(self.muted) or self._locked())

    def mute(self, post: str) -> bool:
        """Mute `post` for `mute_s` from now; True if that changes what to subscribe to."""
        with self._lock:
            fresh = post not in self.muted
            self.muted[post] = self.clock() + self.mute_s
            self.times_muted += fresh
            return fresh

    def lock(self) -> bool:
        """Name the posts for statuses too, for `mute_s`; True if it was not so already."""
        with self._lock:
            fresh = not self._locked()
            self.locked_until = self.clock() + self.mute_s
            return fresh

    def expire(self) -> set[str]:
        """Unmute the posts whose time is up; those posts ("*" when statuses are unlocked)."""
        with self._lock:
            now = self.clock()
            done = {post for post, until in self.muted.items() if until <= now}
            for post in done:
                del self.muted[post]
            if self.locked_until != float("-inf") and self.locked_until <= now:
                self.locked_until = float("-inf")
                done.add("*")
            return done

    def next_expiry(self) -> float | None:
        """Seconds until the next post is unmuted, or None if none is muted."""
        with self._lock:
            times = [*self.muted.values()]
            if self.locked_until != float("-inf"):
                times.append(self.locked_until)
            return max(min(times) - self.clock(), 0.0) if times else None

    def _locked(self) -> bool:
        return self.locked_until > self.clock()

    def is_muted(self, post: str) -> bool:
        with self._lock:
            return post in self.muted

    def wanted(self) -> Topics:
        with self._lock:
            locked = self._locked()
            if not self.muted and not locked:
                return Topics(
                    frozenset(
                        [topics.every_post(leaf, self.share) for leaf in SHARED]
                        + [topics.every_post(leaf) for leaf in DIRECT]
                    ),
                    by_name=False,
                )
            posts = sorted(self.known - self.muted.keys())
        shared = [self._shared(topics.topic(post, leaf)) for post in posts for leaf in SHARED]
        direct = (
            [topics.topic(post, leaf) for post in posts for leaf in DIRECT]
            if locked
            else [topics.every_post(leaf) for leaf in DIRECT]
        )
        return Topics(frozenset(shared + direct), by_name=True)

    def _shared(self, name: str) -> str:
        return f"$share/{self.share}/{name}" if self.share else name

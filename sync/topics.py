"""MQTT topic names of protocol v1: everything a post says lives under `posko/v1/<post>/`.

Keeping the post id in the topic lets a broker ACL confine each post to its own topics;
the receiver also checks that the post inside a payload equals the one in its topic.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROOT = "posko/v1"
EVENTS, ACK, STATUS, ALERT = "events", "ack", "status", "alert"
LEAVES = (EVENTS, ACK, STATUS, ALERT)
# Same rule as the `post.id` setting.
POST_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


def topic(post: str, leaf: str) -> str:
    return f"{ROOT}/{post}/{leaf}"


def every_post(leaf: str, share: str | None = None) -> str:
    """The subscription for one leaf of every post, through `$share/<group>/` when given."""
    pattern = f"{ROOT}/+/{leaf}"
    return f"$share/{share}/{pattern}" if share else pattern


@dataclass(frozen=True)
class Topic:
    post: str
    leaf: str


def parse(name: str) -> Topic | None:
    """The post and leaf of a v1 topic, or None if it is not one (wrong shape or post id)."""
    parts = name.split("/")
    if len(parts) != 4 or "/".join(parts[:2]) != ROOT or parts[3] not in LEAVES:
        return None
    if not POST_ID.fullmatch(parts[2]):
        return None
    return Topic(parts[2], parts[3])

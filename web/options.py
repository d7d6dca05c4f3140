"""The settings the guard's page reads, as one typed view of the post's configuration.

Take it from the current `post.config` where it is used: the settings page changes the
configuration while the page runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.config import Config


@dataclass(frozen=True)
class PageOptions:
    listen: str  # HOST:PORT asked for; `web.server.bind_address` decides what is served
    language: str
    lan_access: bool
    sse_max_streams: int
    sync_configured: bool  # a district broker is set, so the screen shows the sync state

    @classmethod
    def from_config(cls, config: Config) -> PageOptions:
        return cls(
            config["web.listen"],
            config["web.language"],
            config["web.lan_access"],
            config["web.sse_max_streams"],
            bool(config["mqtt.broker"]),
        )

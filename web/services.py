"""The services of the guard's screen for one post, kept in `app.extensions["posko"]`.

`PoskoWeb.init_app(app)` subscribes the live hub and the visitor book to the station, so
that they follow every durable event; `close()` lets go of them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from edge.config import Config
from edge.health import Health, check
from edge.post import Post
from web.alarms import Alarms
from web.figures import Figures
from web.live import Hub
from web.options import PageOptions
from web.pin import AdminPin
from web.visitor_book import VisitorBook

log = logging.getLogger(__name__)


SyncState = Callable[[], dict[str, Any]]  # the sync worker's view: connected, state, error
HealthCheck = Callable[[], Health]


class PoskoWeb:
    """The post, its figures, the live hub, the visitor book, the alarms and the admin PIN."""

    def __init__(
        self, post: Post, *, health: HealthCheck | None = None, sync: SyncState | None = None
    ) -> None:
        self.post = post
        # `posko run` hands in its runtime's health and its sync worker's state.
        self.health = health or (
            lambda: check(post.config.post.id, post.store, station=post.station)
        )
        self.sync = sync
        self.figures = Figures(post.store)
        self.visitors = VisitorBook(post.store)
        self.hub = Hub(lambda: self.page_options.sse_max_streams)
        self.alarms = Alarms(post.store, post.station, on_change=self.hub.nudge)
        self.pin = AdminPin(post.data_dir)
        self.on_reconfigure: list[Callable[[Config], None]] = []

    def init_app(self, app: Flask) -> None:
        app.extensions["posko"] = self
        self.post.station.subscribe(self.hub.publish)
        self.post.station.subscribe(self.visitors.apply)
        self.post.station.subscribe(self.alarms.apply)
        self.post.station.watch(self.alarms.watch)

    def close(self) -> None:
        self.post.station.unsubscribe(self.hub.publish)
        self.post.station.unsubscribe(self.visitors.apply)
        self.post.station.unsubscribe(self.alarms.apply)
        self.alarms.close()
        self.hub.close()

    @property
    def config(self) -> Config:
        return self.post.config

    @property
    def page_options(self) -> PageOptions:
        """The page's settings as they are now (the settings page changes them)."""
        return PageOptions.from_config(self.post.config)

    def sync_state(self) -> dict[str, Any]:
        """What the screen shows of sync: the store's numbers, then the sync worker's view."""
        store = self.post.store
        state: dict[str, Any] = {
            "configured": self.page_options.sync_configured,
            "connected": None,  # unknown until a sync worker says
            "pending": store.pending,
            "acked": store.acked,
            "last_sync": store.acked_at,
        }
        if self.sync is not None:
            try:
                state.update(self.sync())
            except Exception:
                log.exception("the sync state provider failed")
        return state

    def reconfigure(self, new: Config) -> list[str]:
        """Apply settings live (station, thermometer, camera, then the web's own hooks)."""
        restart = self.post.reconfigure(new)
        for hook in list(self.on_reconfigure):
            try:
                hook(new)
            except Exception:
                log.exception("applying the new settings failed")
        return restart


def posko() -> PoskoWeb:
    """The services of the app handling the current request."""
    services = current_app.extensions["posko"]
    assert isinstance(services, PoskoWeb)
    return services

"""The services of the guard's screen for one post, kept in `app.extensions["posko"]`.

`PoskoWeb.init_app(app)` subscribes the live hub and the visitor book to the station, so
that they follow every durable event; `close()` lets go of them again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from flask import Flask, current_app

from edge.config import Config
from edge.post import Post
from web.figures import Figures
from web.live import Hub
from web.pin import AdminPin
from web.visitor_book import VisitorBook

log = logging.getLogger(__name__)


class Server(Protocol):
    @property
    def alive(self) -> bool: ...


class PoskoWeb:
    """The post, its figures, the live hub, the visitor book and the admin PIN."""

    def __init__(self, post: Post) -> None:
        self.post = post
        self.figures = Figures(post.store)
        self.visitors = VisitorBook(post.store)
        self.hub = Hub(lambda: int(self.config["web.sse_max_streams"]))
        self.pin = AdminPin(post.data_dir)
        # Hooks for other parts of `posko run`: the sync worker's state, the web server.
        self.sync_provider: Callable[[], dict[str, Any]] | None = None
        self.server: Server | None = None
        self.on_reconfigure: list[Callable[[Config], None]] = []

    def init_app(self, app: Flask) -> None:
        app.extensions["posko"] = self
        self.post.station.subscribe(self.hub.publish)
        self.post.station.subscribe(self.visitors.apply)

    def close(self) -> None:
        self.post.station.unsubscribe(self.hub.publish)
        self.post.station.unsubscribe(self.visitors.apply)
        self.hub.close()

    @property
    def config(self) -> Config:
        return self.post.config

    def sync_state(self) -> dict[str, Any]:
        """What the screen shows of sync: the store's numbers, then the sync worker's view."""
        store = self.post.store
        state: dict[str, Any] = {
            "configured": bool(self.config["mqtt.broker"]),
            "connected": None,  # unknown until a sync worker says
            "pending": store.pending,
            "acked": store.acked,
            "last_sync": self._last_ack_time(),
        }
        provider = self.sync_provider or getattr(self.post, "sync_state", None)
        if callable(provider):
            try:
                state.update(provider())
            except Exception:
                log.exception("the sync state provider failed")
        return state

    def _last_ack_time(self) -> str | None:
        try:
            data = json.loads((self.post.data_dir / "sync.json").read_bytes())
        except (OSError, ValueError):
            return None
        return data.get("time") if isinstance(data, dict) else None

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(all alive, details) for /healthz."""
        store = self.post.store.health()
        web_alive = self.server.alive if self.server is not None else True
        reasons = [
            reason
            for ok, reason in (
                (self.post.station.alive, "station thread is not running"),
                (store["ok"], f"store unavailable: {store['last_error']}"),
                (web_alive, "web server is not running"),
            )
            if not ok
        ]
        return not reasons, {
            "ok": not reasons,
            "post": self.config["post.id"],
            "station": self.post.station.alive,
            "store": store["ok"],
            "web": web_alive,
            "last_seq": self.post.store.last_seq,
            "pending": self.post.store.pending,
            "reasons": reasons,
        }

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

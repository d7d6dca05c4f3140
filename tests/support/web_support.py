"""Helpers for the guard's-screen tests: the app on a real Post, a client that sends CSRF
tokens, and the real server on a free loopback port."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench.ports import free_port
from edge.config import Config
from edge.post import Post
from web.app import create_app

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Screen:
    """A browser session on the guard's page, through Flask's test client."""

    def __init__(self, post: Post, config: Config | None = None) -> None:
        self.post = post
        self.app: Flask = create_app(config or post.config, post, testing=True)
        self.client: FlaskClient = self.app.test_client()
        self._token: str | None = None

    @property
    def services(self) -> Any:
        return self.app.extensions["posko"]

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def token(self) -> str:
        if self._token is None:
            found = TOKEN.search(self.get("/").get_data(as_text=True))
            assert found, "the live view carries a CSRF token"
            self._token = found.group(1)
        return self._token

    def post_form(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        as_json: bool = False,
        token: bool = True,
        **kwargs: Any,
    ) -> TestResponse:
        form = dict(data or {})
        if token:
            form["csrf_token"] = self.token()
        headers = {"Accept": "application/json"} if as_json else {}
        return self.client.post(path, data=form, headers=headers, **kwargs)

    def press(self, button: str, **extra: Any) -> TestResponse:
        return self.post_form("/press", {"button": button, **extra}, as_json=True)

    def sign_in(self, pin: str) -> TestResponse:
        response = self.post_form("/login", {"pin": pin})
        self._token = None  # signing in gives a new token
        return response

    def text(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code)
        return response.get_data(as_text=True)


def serve(post: Post, config: Config, tries: int = 5) -> Any:
    """A started WebServer for `post` on a free loopback port (another port if taken
    between the look-up and the bind, as other tests start servers too)."""
    from web.server import WebServer

    for attempt in range(tries):
        cfg = config.replace(web__listen=f"127.0.0.1:{free_port()}")
        try:
            return WebServer(create_app(cfg, post), cfg).start()
        except OSError:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")

"""Every route of the guard's page and of the district page against a table of hostile values:
in query arguments, path parts and form fields, GET and POST, signed in and not. Each answer
is below 500 with a message a person can read, and any redirect stays on the page.

The routes come from each app's url_map, so a new route is swept without touching this file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from district.auth import COOKIE, FORM_COOKIE
from district.receiver import Receiver
from district.sqlite import SQLiteStorage
from district.web import create_app as create_district_app
from edge import events as ev
from edge.config import Config
from edge.events import Kind, Who
from edge.post import Post
from sync import codec
from sync.batch import Batch
from tests.support.district_client import csrf, district_client, log_in
from tests.support.web_support import Screen
from web.overrides import PAGE_KEYS
from web.pin import set_pin

PIN = "246810"

# What a hostile or careless client sends where a number, a day, a word or a path belongs.
HOSTILE = (
    "",
    "0",
    "-1",
    "-0",
    "99999999999999999999999999",
    "1e309",
    "NaN",
    "-Infinity",
    "0x10",
    "²",  # a digit to str.isdigit(), not to int()
    "١٢",  # Arabic-Indic digits
    "２０２６-１１-２７",  # full-width digits
    "\x00",
    "%00",
    "a\x00b",
    "\r\nSet-Cookie: x=1",
    "/\r\nx",
    "\t",
    "/\t/evil.example",
    "//evil.example",
    "/\\evil.example",
    "https://evil.example/",
    "//[",  # urlsplit raises on it
    "http://[::1",
    "javascript:alert(1)",
    "..",
    "../../../../etc/passwd",
    "%2e%2e%2f",
    "x" * 20_000,
    "9" * 4_000,
    "9999-12-31",
    "0001-01-01",
    "0000-01-01",
    "10000-01-01",
    "2026-02-30",
    "2026-13-01",
    "2026-11-27T25:00",
    "2026W485",
    '{"a": 1}',
    "[[[[[[[[[[]]]]]]]]]]",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "\u202e\ufeff",
    "\ud800",  # a lone surrogate: sent as the bytes %ED%A0%80
)

# One value of each kind (a few seconds), then the whole table; both in the slow suite.
CORE = ("²", "/\r\nx", "//[", "x" * 2_000, "9999-12-31", "\ud800")
TABLES = [
    pytest.param(CORE, id="core", marks=pytest.mark.slow),
    pytest.param(HOSTILE, id="full", marks=pytest.mark.slow),
]

# Every query argument and form field either page reads, so that each meets each value.
ARGS = ("date", "from", "to", "page", "kind", "who", "screening", "next", "format", "post")
FIELDS = (
    "button",
    "confirm",
    "pin",
    "next",
    "name",
    "origin",
    "host",
    "purpose",
    "stay_days",
    "phone",
    "nik",
    *PAGE_KEYS,
)
# The page's own wording of each refusal, in the post's default language (id).
MESSAGE = re.compile(
    r'<h1>[^<]+</h1>|"error":|class="flash flash-error"|<em class="error">|<p>[^<]+</p>'
)


def encoded(value: str) -> str:
    """A value as it appears in a URL (a lone surrogate as its UTF-8-like bytes)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def path_cases(rule: Rule, sample: dict[str, str], values: tuple[str, ...] = ()) -> Iterator[str]:
    """The rule's path with sample values, then with each of `values` in each part."""
    parts = list(rule.arguments)

    def build(values: dict[str, str]) -> str:
        path = rule.rule
        for name in parts:
            path = re.sub(rf"<(?:[^:<>]+:)?{name}>", values[name], path)
        return path

    yield build({name: sample.get(name, "1") for name in parts})
    for name in parts:
        for value in (*values, "%00", "..%2f..%2fapp.py", "-5", "1.5"):
            yield build({**{n: sample.get(n, "1") for n in parts}, name: encoded(value)})


def assert_answered(response: TestResponse, case: str) -> None:
    status = response.status_code
    if response.mimetype == "text/event-stream":
        response.close()  # a live stream never ends by itself
        assert status == 200, case
        return
    body = response.get_data(as_text=True)
    assert status < 500, f"{status} for {case}"
    assert "Traceback" not in body, case
    if status >= 400:
        assert MESSAGE.search(body), f"{status} without a message for {case}"
    location = response.headers.get("Location")
    if location is not None:
        parts = urlsplit(location)
        # Werkzeug's own redirects (a merged slash) name the host the request named.
        assert parts.netloc in ("", "localhost"), f"{location!r} leaves the page: {case}"
        assert parts.path.startswith("/") and not parts.path.startswith(("//", "/\\")), case
        assert not any(c in location for c in "\t\r\n\x00"), case


class Sweep:
    """Sends the cases of one app and counts them."""

    def __init__(
        self,
        app: Flask,
        client: FlaskClient,
        token: Callable[[], str] | None,
        values: tuple[str, ...],
    ) -> None:
        self.values = values
        self.app = app
        self.client = client
        self.token = token
        self.count = 0

    def rules(self) -> list[Rule]:
        return sorted(self.app.url_map.iter_rules(), key=lambda r: r.rule)

    def send(
        self, method: str, url: str, form: dict[str, str] | None = None, body: str | None = None
    ) -> None:
        headers = {}
        if method == "POST" and self.token is not None:
            if body is None:
                form = {**(form or {}), "csrf_token": self.token()}
            else:
                headers["X-CSRF-Token"] = self.token()
        data: Any = form if body is None else body
        kind = None if body is None else "application/json"
        response = self.client.open(
            url, method=method, data=data, headers=headers, content_type=kind
        )
        self.count += 1
        assert_answered(response, f"{method} {url[:120]} form={str(form)[:120]}")

    def run(
        self,
        sample: dict[str, str],
        *,
        one_arg_at_a_time: bool,
        after: Callable[[str, str], None] = lambda method, path: None,
    ) -> None:
        """Each route, GET and POST: hostile path parts; then each hostile value in every
        query argument at once, and (`one_arg_at_a_time`, GET) in each alone, so that a
        refused argument does not hide the next; POST: in every form field, and as JSON."""
        for rule in self.rules():
            for method in ("GET", "POST"):
                for path in path_cases(rule, sample, self.values):
                    self.send(method, path)
                    after(method, path)
                base = next(path_cases(rule, sample))
                for value in self.values:
                    text = encoded(value)
                    self.send(method, f"{base}?" + "&".join(f"{a}={text}" for a in ARGS))
                    if one_arg_at_a_time and method == "GET":
                        for arg in ARGS:
                            self.send(method, f"{base}?{arg}={text}")
                    if method == "POST":
                        form = {f: value.replace("\ud800", "\ufffd") for f in FIELDS}
                        self.send(method, base, form)
                        body = json.dumps({f: value for f in FIELDS[:3]})  # \ud800 escaped
                        self.send(method, base, body=body)
                    after(method, base)


@pytest.fixture
def screen(open_post: Callable[..., Post], config: Config) -> Screen:
    set_pin(config["data.dir"], PIN)
    screen = Screen(open_post([36.6, 38.2, 38.4] * 3))
    screen.press("masuk_pendatang")  # seq 1, a visitor with details to edit
    screen.press("masuk_warga")  # seq 2, a fever waiting for its re-check
    return screen


@pytest.mark.parametrize("target", ["/%09/evil.example", "/%0d%0ax", "/%00x", "/x%20y"])
def test_hostile_language_link_refuses_a_next_that_is_not_a_plain_path(
    screen: Screen, target: str
) -> None:
    response = screen.get(f"/lang/en?next={target}")
    assert response.status_code == 400 and "Location" not in response.headers
    assert "Tautan ini mengarah ke luar halaman" in response.get_data(as_text=True)


@pytest.mark.parametrize("target", ["/\t/evil.example", "/\r\nx"])
def test_hostile_login_with_the_right_pin_refuses_a_next_that_is_not_a_plain_path(
    screen: Screen, target: str
) -> None:
    response = screen.post_form("/login", {"pin": PIN, "next": target})
    assert response.status_code == 400 and "Location" not in response.headers
    assert screen.get("/settings").status_code == 302  # and nobody was signed in


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "evil.example"]
)
def test_hostile_next_off_the_page_falls_back_home(screen: Screen, target: str) -> None:
    response = screen.get(f"/lang/en?next={encoded(target)}")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_hostile_next_on_the_page_is_followed(screen: Screen) -> None:
    response = screen.post_form("/login", {"pin": PIN, "next": "/history?date=2026-11-27&page=2"})
    assert response.headers["Location"] == "/history?date=2026-11-27&page=2"


def test_hostile_history_page_in_superscript_digits_is_400(screen: Screen) -> None:
    assert screen.get("/history?page=%C2%B9").status_code == 400


def session_token(client: FlaskClient) -> Callable[[], str]:
    """The CSRF token the session holds now (logging out gives a new one)."""

    def token() -> str:
        with client.session_transaction() as session:
            found = session.get("csrf")
        if found is None:
            client.get("/")  # the live view's forms make one
            with client.session_transaction() as session:
                found = session["csrf"]
        return str(found)

    return token


@pytest.mark.parametrize("values", TABLES)
def test_hostile_values_on_every_route_of_the_guards_page(
    screen: Screen, values: tuple[str, ...]
) -> None:
    sample = {"seq": "1", "code": "en", "filename": "posko.css"}
    signed_out = Sweep(screen.app, screen.client, session_token(screen.client), values)
    signed_out.run(sample, one_arg_at_a_time=True)

    def sign_in() -> None:
        screen.services.pin.lock_path.unlink(missing_ok=True)  # the sweep's wrong PINs
        form = {"pin": PIN, "csrf_token": session_token(screen.client)()}
        assert screen.client.post("/login", data=form).status_code == 302

    def stay_signed_in(method: str, path: str) -> None:
        if method == "POST" and path.startswith("/logout"):
            sign_in()

    sign_in()
    signed_in = Sweep(screen.app, screen.client, session_token(screen.client), values)
    signed_in.run(sample, one_arg_at_a_time=False, after=stay_signed_in)
    assert screen.get("/settings").status_code == 200  # the second round was signed in
    total = signed_out.count + signed_in.count
    print(f"guard's page: {total} hostile requests ({len(values)} values), none answered 5xx")
    assert total > 300 * len(values)


@pytest.fixture
def district(tmp_path: Path) -> Flask:
    db_path = tmp_path / "district.db"
    zone = ZoneInfo("Asia/Jakarta")
    day = datetime.now(zone).replace(hour=9, minute=0, second=0, microsecond=0)
    with SQLiteStorage(db_path) as db:
        events = [
            ev.make("posko-a", seq, day + timedelta(minutes=seq), Kind.IN, who=Who.RESIDENT)
            for seq in (1, 2, 3)
        ]
        Receiver(db).handle("posko/v1/posko-a/events", codec.encode(Batch.of("posko-a", events)))
    app = create_district_app(db_path)
    app.config["TESTING"] = True
    return app


@pytest.mark.parametrize("values", TABLES)
def test_hostile_values_on_every_route_of_the_district_page(
    district: Flask, values: tuple[str, ...]
) -> None:
    sample = {"filename": "district.css", "post": "posko-a", "code": "en"}
    stranger = district.test_client()
    signed_out = Sweep(district, stranger, form_token(stranger), values)
    signed_out.run(sample, one_arg_at_a_time=True)
    # From another address: the sweep's wrong logins may have locked this one out.
    elsewhere = "10.9.9.9"
    client = district_client(
        district.extensions["posko_district"].db, app=district, address=elsewhere
    )

    def stay_signed_in(method: str, path: str) -> None:
        if method == "POST" and path.startswith("/logout"):
            assert log_in(client, "admin", address=elsewhere).status_code == 302

    def token() -> str:  # a logout within a round leaves no session until `after`
        return csrf(client) if client.get_cookie(COOKIE) else "none"

    signed_in = Sweep(district, client, token, values)
    signed_in.run(sample, one_arg_at_a_time=False, after=stay_signed_in)
    assert client.get("/").status_code == 200  # the second round was signed in
    total = signed_out.count + signed_in.count
    print(f"district page: {total} hostile requests ({len(values)} values), none answered 5xx")
    assert total > 100 * len(values)


def form_token(client: FlaskClient) -> Callable[[], str]:
    """The district login form's token (a cookie), so that hostile logins reach the check."""

    def token() -> str:
        cookie = (
            client.get_cookie(FORM_COOKIE)
            or (client.get("/login"), client.get_cookie(FORM_COOKIE))[1]
        )
        return cookie.value if cookie else ""

    return token

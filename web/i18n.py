"""The page's words in Bahasa Indonesia (default) and English, from `web/i18n/<lang>.json`.

Templates call `t("key", name=value)` and write numbers with `|dec` (36,6 in Indonesian,
36.6 in English); the language is the browser's choice (a cookie set by the language link)
or else the post's `web.language`. Both catalogs hold the same keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from flask import Flask, abort, current_app, redirect, request

from web.security import safe_next

LANGUAGES = ("id", "en")
YEAR_S = 365 * 24 * 3600  # how long the language cookie lasts
_CHOSEN: ContextVar[str | None] = ContextVar("posko_language", default=None)
COOKIE = "lang"
CATALOG_DIR = Path(__file__).resolve().parent / "i18n"


def load_catalogs(directory: Path = CATALOG_DIR) -> dict[str, dict[str, str]]:
    return {
        lang: json.loads((directory / f"{lang}.json").read_text(encoding="utf-8"))
        for lang in LANGUAGES
    }


def init_app(app: Flask, default_language: Callable[[], str], catalogs: Path = CATALOG_DIR) -> None:
    """Load the catalogs (the guard's, or another app's such as the district page's) and
    give templates `t`, `lang` and `languages`."""
    app.extensions["i18n"] = {"catalogs": load_catalogs(catalogs), "default": default_language}
    app.jinja_env.globals["t"] = translate  # a global, so that imported macros have it too
    app.jinja_env.filters["dec"] = decimal
    app.before_request(_remember)
    app.teardown_request(_forget)

    @app.context_processor
    def words() -> dict[str, Any]:
        return {"lang": language(), "languages": LANGUAGES}


def language() -> str:
    """The request's language: chosen once per request (a page with 500 rows asks tens of
    thousands of times, and Flask's request proxies are slow to go through each time)."""
    chosen = _CHOSEN.get()
    return chosen if chosen is not None else _choose()


def _choose() -> str:
    chosen = request.cookies.get(COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    default = current_app.extensions["i18n"]["default"]()
    return default if default in LANGUAGES else LANGUAGES[0]


def _remember() -> None:
    _CHOSEN.set(_choose())


def _forget(error: BaseException | None = None) -> None:
    _CHOSEN.set(None)


def translate(key: str, **values: Any) -> str:
    """The text of `key` in the page's language, with {name} fields filled in."""
    catalogs = current_app.extensions["i18n"]["catalogs"]
    text = catalogs[language()].get(key) or catalogs[LANGUAGES[0]].get(key) or key
    return text.format(**values) if values else text


def decimal(value: Any, digits: int = 1) -> str:
    """A number as the page's language writes it: "36,6" in Indonesian, "36.6" in English
    ("" for none; text such as "36.6" from `web.present` is taken as the number it shows)."""
    if value is None or value == "":
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = f"{value:.{digits}f}"
    text = str(value)
    return text.replace(".", ",") if language() == "id" else text


def switch_to(code: str) -> Any:
    """The answer to `/lang/<code>`: a year's cookie, then back to the local page it came
    from (`?next=`); 404 for a language the page does not speak. The guard's page and the
    district page both route to it."""
    if code not in LANGUAGES:
        abort(404)
    response = redirect(safe_next(request.args.get("next")))
    response.set_cookie(COOKIE, code, max_age=YEAR_S, samesite="Strict", httponly=True)
    return response

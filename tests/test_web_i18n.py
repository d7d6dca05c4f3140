"""Every visible word comes from the catalogs, and both languages have all of them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.clock import VirtualClock
from edge.post import Post
from tests.support.web_support import Screen
from web.i18n import CATALOG_DIR, LANGUAGES, load_catalogs

TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
VISIBLE_ATTRIBUTES = re.compile(r'\b(title|placeholder|aria-label|alt)="([^"]*)"')
KEY_CALL = re.compile(r"""\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]""")
CLASS_BLOCK = re.compile(r"{%\s*block body_class\s*%}.*?{%\s*endblock\s*%}", re.S)


def visible_text(template: str) -> str:
    """What a template shows apart from its expressions: text between tags."""
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", template, flags=re.S)
    text = CLASS_BLOCK.sub(" ", text)  # a CSS class name, not a word
    text = JINJA.sub(" ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return re.sub(r"&[a-z]+;|&#\d+;", " ", text)


def test_web_catalogs_have_the_same_keys_and_no_empty_words() -> None:
    catalogs = load_catalogs()
    assert set(catalogs) == set(LANGUAGES)
    keys = {lang: set(words) for lang, words in catalogs.items()}
    assert keys["id"] == keys["en"], keys["id"] ^ keys["en"]
    for lang, words in catalogs.items():
        assert all(value.strip() for value in words.values()), lang
        for key, value in words.items():  # the same {fields} in both languages
            assert set(re.findall(r"{(\w+)}", value)) == set(
                re.findall(r"{(\w+)}", catalogs["id"][key])
            ), (lang, key)


def test_web_catalog_files_are_plain_json_objects() -> None:
    for lang in LANGUAGES:
        data = json.loads((CATALOG_DIR / f"{lang}.json").read_text(encoding="utf-8"))
        assert isinstance(data, dict) and all(isinstance(v, str) for v in data.values())


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_web_templates_have_no_untranslated_text(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    leftover = visible_text(source)
    assert not re.search(r"[A-Za-z]", leftover), re.findall(r"[A-Za-z][\w ]*", leftover)
    for name, value in VISIBLE_ATTRIBUTES.findall(JINJA.sub("", source)):
        assert not re.search(r"[A-Za-z]", value), (name, value)


def test_web_every_key_used_in_a_template_exists() -> None:
    words = load_catalogs()["id"]
    used = {
        key
        for path in TEMPLATES.glob("*.html")
        for key in KEY_CALL.findall(path.read_text(encoding="utf-8"))
    }
    assert used and not used - set(words), used - set(words)


def test_web_script_shows_no_words_of_its_own() -> None:
    script = (STATIC / "posko.js").read_text(encoding="utf-8")
    code = re.sub(r"//.*", "", script)
    for literal in re.findall(r'"([^"\\]*)"', code):
        assert not re.search(r"[A-Z][a-z]+ [a-z]+", literal), literal  # no sentences


@pytest.mark.parametrize("lang", LANGUAGES)
def test_web_every_page_resolves_its_words(
    open_post: Callable[..., Post], clock: VirtualClock, lang: str
) -> None:
    screen = Screen(open_post([36.6, 38.0, "i2c_error", 38.5, 38.5]))
    for button in (
        "masuk_warga",
        "masuk_pendatang",
        "masuk_warga",
        "keluar_pendatang",
        "masuk_warga",
        "batal",
        "masuk_pendatang",
    ):
        screen.press(button)
    screen.press("darurat", confirm="1")
    screen.post_form("/visitors/2", {"name": "Ani", "nik": "1234567890123456"})
    clock.advance(301)
    screen.post_form("/recheck/2", as_json=True)
    screen.get(f"/lang/{lang}")
    prefixes = {key.split(".")[0] for key in load_catalogs()[lang]}
    key_like = re.compile(rf"\b({'|'.join(prefixes)})\.[a-z_]+\b(?!\.(css|js|svg))")
    for path in (
        "/",
        "/live/panel",
        "/visitors",
        "/visitors/2",
        "/report",
        "/history",
        "/event/2",
        "/event/9",
        "/darurat",
        "/login",
        "/nowhere",
    ):
        html = screen.get(path).get_data(as_text=True)
        body = re.sub(r'(href|src|action|data-[a-z-]+)="[^"]*"', "", html)
        assert not key_like.search(body), (path, key_like.search(body))

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


def test_web_indonesian_pages_say_catatan_and_write_decimal_commas(
    open_post: Callable[..., Post], clock: VirtualClock
) -> None:
    screen = Screen(open_post([36.6, 38.2, 37.9, 36.4]))
    screen.press("masuk_warga")  # 36.6
    screen.press("masuk_pendatang")  # 38.2: waits
    clock.advance(301)
    screen.post_form("/recheck/2", as_json=True)  # 37.9: refused
    screen.press("masuk_warga")
    pages = ["/", "/live/panel", "/visitors", "/report", "/history", "/event/2", "/event/3"]
    pages += ["/referrals/2", "/nowhere"]
    for path in pages:
        html = screen.get(path).get_data(as_text=True)
        assert "kejadian" not in html.lower(), path
        assert not re.search(r"\d\.\d\s*°", html), (path, re.search(r".{20}\d\.\d\s*°", html))
    assert "36,6" in screen.text("/") and "38,2" in screen.text("/report")
    assert "≥ 37,3 °C" in screen.text("/report")
    screen.get("/lang/en")
    assert "38.2" in screen.text("/report") and "38,2" not in screen.text("/report")
    csv_text = screen.text("/export.csv")
    assert "38.2" in csv_text and "38,2" not in csv_text  # spreadsheets read the dot


def test_web_catalog_gives_each_meaning_its_own_word() -> None:
    words = load_catalogs()["id"]
    assert words["button.batal"] != words["form.cancel"]  # void the last press / leave a form
    assert words["button.masuk_warga"].split()[0] != words["admin.enter"]  # entry / sign in
    text = " ".join(words.values()).lower()
    for wrong in ("kejadian", "tekanan", "antre kirim", "stasiun"):
        assert wrong not in text, wrong

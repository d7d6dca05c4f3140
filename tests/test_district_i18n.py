"""The district page speaks Indonesian by default and English when chosen: both catalogs
hold the same keys, templates hold no words of their own, the rendered pages mix no
languages, and numbers and times are written the way each language writes them."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from district.receiver import Receiver
from district.registry import load
from district.sqlite import SQLiteStorage
from district.words import CATALOG_DIR
from edge.events import utc_text
from sync.messages import status
from tests.support.district_client import district_client
from web.i18n import LANGUAGES, load_catalogs

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "district" / "templates"
EXAMPLE = ROOT / "district" / "regions" / "pesawaran.toml"
JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
KEY_CALL = re.compile(r"""\bt\(\s*["']([a-z0-9_]+(?:\.[a-z0-9_]+)+)["']\s*[,)]""")
PAGES = ("/", "/api/posts")


def visible_text(template: str) -> str:
    """What a template shows apart from its expressions: text between tags."""
    text = re.sub(r"<(script|style|code)\b.*?</\1>", " ", template, flags=re.S)  # code: a command
    text = re.sub(r"{%\s*block body_class\s*%}.*?{%\s*endblock\s*%}", " ", text, flags=re.S)
    text = JINJA.sub(" ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    return re.sub(r"&[a-z]+;|&#\d+;", " ", text)


def test_district_catalogs_have_the_same_keys_and_fields() -> None:
    catalogs = load_catalogs(CATALOG_DIR)
    assert set(catalogs["id"]) == set(catalogs["en"]), set(catalogs["id"]) ^ set(catalogs["en"])
    for lang, words in catalogs.items():
        assert all(isinstance(v, str) and v.strip() for v in words.values()), lang
        for key, value in words.items():
            assert set(re.findall(r"{(\w+)}", value)) == set(
                re.findall(r"{(\w+)}", catalogs["id"][key])
            ), (lang, key)
    for lang in LANGUAGES:  # plain JSON objects of text
        doc = json.loads((CATALOG_DIR / f"{lang}.json").read_text(encoding="utf-8"))
        assert isinstance(doc, dict)


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.html")), ids=lambda p: p.name)
def test_district_templates_have_no_words_of_their_own(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    leftover = visible_text(source)
    assert not re.search(r"[A-Za-z]{2,}", leftover), re.findall(r"[A-Za-z][\w ]*", leftover)
    catalog = load_catalogs(CATALOG_DIR)["id"]
    missing = [k for k in KEY_CALL.findall(source) if k not in catalog]
    assert not missing, missing


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    db = tmp_path / "district.db"
    now = datetime.now(UTC)
    with SQLiteStorage(db) as storage:
        Receiver(storage).handle(
            "posko/v1/bagelen-rw01/status",
            status("online", time=utc_text(now), since=utc_text(now - timedelta(minutes=12)),
                   pending=1234, last_seq=1234, disk_free=3_500_000_000, clock="synced",
                   oldest=utc_text(now - timedelta(hours=3))),
        )  # fmt: skip
    # A user name that is no word of either language ("viewer" is one in English).
    return district_client(db, "viewer", name="budi", registry=load(EXAMPLE))


def page_words(client: FlaskClient, lang: str, path: str = "/") -> str:
    client.get(f"/lang/{lang}")
    answer = client.get(path)
    assert answer.status_code == 200
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", answer.get_data(as_text=True), flags=re.S)
    return html.unescape(re.sub(r"<[^>]*>", " ", text))


def other_language_words(lang: str) -> list[str]:
    """Labels of the other catalog that this language says differently (whole phrases
    without fields, long enough not to be a shared word such as "NIK" or "Status")."""
    catalogs = load_catalogs(CATALOG_DIR)
    other = "en" if lang == "id" else "id"
    return [
        value
        for key, value in catalogs[other].items()
        if value != catalogs[lang][key] and "{" not in value and len(value) >= 6
        and value not in catalogs[lang].values()
    ]  # fmt: skip


@pytest.mark.parametrize("lang", LANGUAGES)
def test_district_page_mixes_no_languages(client: FlaskClient, lang: str) -> None:
    words = page_words(client, lang)
    mixed = [w for w in other_language_words(lang) if re.search(rf"\b{re.escape(w)}\b", words)]
    assert not mixed, mixed
    assert "(today)" not in words and "Hari ini (" not in words


def test_district_page_writes_numbers_and_times_per_language(client: FlaskClient) -> None:
    indonesian = page_words(client, "id")
    assert "1.234 catatan" in indonesian and "sisa disk 3,3 GB" in indonesian
    assert "12 menit lalu" in indonesian and "tertua 3 jam" in indonesian
    assert re.search(r"sejak \d{2}\.\d{2} WIB", indonesian)
    english = page_words(client, "en")
    assert "1,234 unsent" in english and "3.3 GB free" in english
    assert "12 minutes ago" in english and re.search(r"since \d{2}:\d{2} WIB", english)

"""The district's registry: the names of its kecamatan and desa, the posts it expects, and
the posts retired or renamed, from a small TOML file the district edits (`--registry`).

A post the registry does not expect, or that reports a region it does not know, is still
shown, flagged as such: the registry names things, it never hides data.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensors.errors import ConfigError
from sync.topics import POST_ID

# Kemendagri code: province, kabupaten, kecamatan, desa (PP.KK.CC.DDDD).
REGION = re.compile(r"^\d{2}\.\d{2}\.\d{2}\.\d{4}$")
KECAMATAN = re.compile(r"^\d{2}\.\d{2}\.\d{2}$")
KABUPATEN = re.compile(r"^\d{2}\.\d{2}$")
MAX_NAME = 80


@dataclass(frozen=True)
class ExpectedPost:
    """A post the district knows: its id, name and desa; retired or replaced by another id."""

    id: str
    name: str = ""
    region: str = ""
    retired: bool = False
    renamed_to: str = ""


@dataclass(frozen=True)
class Place:
    """Where a post stands on the page: its name, desa and kecamatan (codes and names), and
    what does not match the registry."""

    name: str
    region: str
    kecamatan: str
    desa_name: str | None
    kecamatan_name: str | None
    expected: bool
    known_region: bool
    hidden: bool
    formerly: tuple[str, ...] = ()


@dataclass(frozen=True)
class Registry:
    name: str = ""
    code: str = ""
    kecamatan: dict[str, str] = field(default_factory=dict)
    desa: dict[str, str] = field(default_factory=dict)
    posts: dict[str, ExpectedPost] = field(default_factory=dict)

    def place(self, post: str, name: Any = None, region: Any = None) -> Place:
        """Where `post` goes, from the registry first and else from what its status said."""
        known = self.posts.get(post)
        reported = region if isinstance(region, str) and REGION.fullmatch(region) else ""
        code = (known.region if known and known.region else "") or reported
        own = (known.name if known and known.name else "") or _text(name) or post
        kecamatan = code[:8] if code else ""
        formerly = tuple(p.id for p in self.posts.values() if p.renamed_to == post)
        return Place(
            name=own,
            region=code,
            kecamatan=kecamatan,
            desa_name=self.desa.get(code),
            kecamatan_name=self.kecamatan.get(kecamatan),
            expected=known is not None or not self.posts,  # without a list, all are expected
            known_region=bool(code) and code in self.desa,
            hidden=known is not None and (known.retired or bool(known.renamed_to)),
            formerly=formerly,
        )

    def missing(self, seen: set[str]) -> list[ExpectedPost]:
        """Expected posts (neither retired nor renamed) that never reported."""
        return [
            p
            for p in self.posts.values()
            if p.id not in seen and not p.retired and not p.renamed_to
        ]


def _text(value: Any) -> str:
    return value.strip()[:MAX_NAME] if isinstance(value, str) else ""


def load(path: str | Path | None) -> Registry:
    """The registry in `path` (an empty one for None); ConfigError listing every problem."""
    if path is None:
        return Registry()
    try:
        doc = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError([f"registry {path}: {e}"]) from None
    problems: list[str] = []
    registry = _parse(doc, problems)
    if problems:
        raise ConfigError([f"registry {path}: {p}" for p in problems])
    return registry


def _parse(doc: dict[str, Any], problems: list[str]) -> Registry:
    head = doc.get("district", {})
    if not isinstance(head, dict):
        problems.append("[district] must be a table")
        head = {}
    code = str(head.get("code", ""))
    if code and not KABUPATEN.fullmatch(code):
        problems.append(f"district code {code!r} is not PP.KK")
    kecamatan = _names(doc.get("kecamatan", {}), KECAMATAN, "kecamatan", problems)
    desa = _names(doc.get("desa", {}), REGION, "desa", problems)
    posts = _posts(doc.get("post", []), problems)
    return Registry(_text(head.get("name")), code, kecamatan, desa, posts)


def _names(table: Any, pattern: re.Pattern[str], what: str, problems: list[str]) -> dict[str, str]:
    if not isinstance(table, dict):
        problems.append(f"[{what}] must be a table of code = name")
        return {}
    names = {}
    for code, name in table.items():
        if not pattern.fullmatch(code) or not _text(name):
            problems.append(f"{what} {code!r} = {name!r} is not a code and a name")
        else:
            names[code] = _text(name)
    return names


def _posts(items: Any, problems: list[str]) -> dict[str, ExpectedPost]:
    if not isinstance(items, list):
        problems.append("[[post]] must be a list of tables")
        return {}
    posts: dict[str, ExpectedPost] = {}
    for item in items:
        if not isinstance(item, dict) or not POST_ID.fullmatch(str(item.get("id", ""))):
            problems.append(f"post {item!r} has no valid id")
            continue
        post = ExpectedPost(
            id=item["id"],
            name=_text(item.get("name")),
            region=str(item.get("region", "")),
            retired=item.get("retired", False) is True,
            renamed_to=str(item.get("renamed_to", "")),
        )
        if post.region and not REGION.fullmatch(post.region):
            problems.append(f"post {post.id}: region {post.region!r} is not PP.KK.CC.DDDD")
        if post.renamed_to and not POST_ID.fullmatch(post.renamed_to):
            problems.append(f"post {post.id}: renamed_to {post.renamed_to!r} is not a post id")
        if post.id in posts:
            problems.append(f"post {post.id} is listed twice")
        posts[post.id] = post
    return posts

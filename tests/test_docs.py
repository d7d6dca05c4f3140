"""The README and the example configuration tell the truth about the settings."""

from __future__ import annotations

from pathlib import Path

from edge.config import example_toml, load
from edge.settings import SETTINGS
from sensors.feedback import PATTERNS

ROOT = Path(__file__).resolve().parent.parent


def test_docs_example_config_is_valid_and_complete() -> None:
    path = ROOT / "docs" / "config.example.toml"
    assert path.read_text() == example_toml() + "\n"  # regenerate: posko settings --toml
    config = load(path, env={})
    for setting in SETTINGS:
        assert config[setting.key] == setting.default


def test_docs_readme_names_every_setting_and_pattern() -> None:
    readme = (ROOT / "README.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.key}`" in readme, setting.key
    for pattern in PATTERNS.values():
        meaning = pattern.meaning.split(":")[0]
        assert meaning.lower() in readme.replace("*", "").lower(), meaning

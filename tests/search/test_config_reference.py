"""docs/config.md is written from the tables that validate a config, and kept in step."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from caviar.nn import HYPERPARAMETERS
from caviar.search.config import SECTIONS, config_from_mapping
from caviar.search.config_reference import reference

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def test_the_page_is_the_generated_reference() -> None:
    assert DOCS.read_text(encoding="utf-8") == reference(), (
        "docs/config.md is stale: python -m caviar.search.config_reference > docs/config.md"
    )


def test_every_key_a_config_takes_is_on_the_page() -> None:
    page = reference()
    for name, section in SECTIONS.items():
        assert f"## [{name}]" in page
        for f in fields(section):
            assert f"| `{f.name}` |" in page
    for name in HYPERPARAMETERS:
        assert f"| `{name}` |" in page


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_documented_default_is_valid(section: str) -> None:
    """The defaults the page shows pass the validator (given explicitly, they change nothing)."""
    defaults = {f.name: f.default for f in fields(SECTIONS[section]) if f.default is not None}
    if section != "study":
        defaults.pop("name", None)
    raw = {section: defaults, "search": {"trials": 3, **(defaults if section == "search" else {})}}
    config = config_from_mapping(raw)
    assert getattr(config, section) == getattr(
        config_from_mapping({"search": {"trials": 3}}), section
    )

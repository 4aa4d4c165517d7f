"""Debian's Chromium, driven by playwright, as the browser tests launch it (a test tool's own
browser download cannot work here; the flags keep it from reaching any network)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sync_api_or_skip() -> ModuleType:
    """playwright's sync API; the calling test module is skipped without it or the browser."""
    api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        pytest.skip(
            f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)",
            allow_module_level=True,
        )
    return api

"""Suite-wide set-up: the benchmarks' smallest runs (tests/test_benchmarks.py) start in the
background as soon as the tests are collected. They are processes of their own that the suite
only reads the output of, and most of the suite trains on one thread, so they use the core it
leaves idle instead of adding their minutes at the end."""

from __future__ import annotations

import sys

import pytest


def pytest_collection_finish(session: pytest.Session) -> None:
    benchmarks = sys.modules.get("test_benchmarks")
    if benchmarks is None or session.config.option.collectonly:
        return
    # pytest's own factory (the tmp_path plugin's); without it the module's fixture starts them
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None and any(item.get_closest_marker("benchmark") for item in session.items):
        benchmarks.start_selected(session, factory)

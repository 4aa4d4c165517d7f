"""The house's rules (docs/architecture.md), checked on every run of the suite.

import-linter reads the contracts in pyproject.toml: rooms import only rooms below them, and no
two modules anywhere import each other in a loop (imports inside functions count). An import
inside a function is allowed only to defer a heavy library, and says so in a comment.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "caviar"


def test_the_import_contracts_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert lint_imports(config_filename="pyproject.toml", no_cache=True) == 0


def deferred_imports_without_a_reason(source: str) -> list[int]:
    """Lines of imports inside functions with no ``# deferred: ...`` comment on them or on the
    line before the function's first import."""
    lines = source.splitlines()
    bad = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        imports = [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
        if not imports:
            continue
        first = min(n.lineno for n in imports)
        last = max(n.end_lineno or n.lineno for n in imports)
        if not any("# deferred" in line for line in lines[first - 2 : last]):
            bad.append(first)
    return bad


def test_the_check_finds_an_import_without_a_reason() -> None:
    source = "def f():\n    x = 1\n    import json\n    return json\n"
    assert deferred_imports_without_a_reason(source) == [3]
    reasoned = "def f():\n    # deferred: numpy\n    import numpy\n    return numpy\n"
    assert deferred_imports_without_a_reason(reasoned) == []


def test_an_import_inside_a_function_only_defers_a_heavy_library() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(SOURCE.rglob("*.py"))
        if (lines := deferred_imports_without_a_reason(path.read_text()))
    }
    assert found == {}, "an import inside a function needs `# deferred: <the heavy library>`"

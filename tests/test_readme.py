"""The README's promises: the two set-up commands, CI running the same test command, and the
search-core tour running as printed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def shell_lines() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    return [line for block in blocks for line in block.splitlines()]


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(line for line in shell_lines() if "'.[test]'" in line)
    assert test_command.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci
    assert "set -euo pipefail" in ci and "rm -rf .venv" in ci  # a fresh environment


def test_the_first_command_installs_and_runs_the_demo() -> None:
    first = next(line for line in shell_lines() if line.startswith("python3 -m venv"))
    assert first.endswith("pip install . && caviar tune")


def test_the_search_core_tour_runs_as_printed() -> None:
    tour = re.findall(r"```python\n(.*?)```", README, flags=re.S)[0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tour, "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    assert [int(line.split()[0]) for line in lines[:10]] == list(range(10))
    rounds = [re.match(r"round (\d): lr in \[(\S+), (\S+)\]", line) for line in lines[10:]]
    assert [m.group(1) for m in rounds if m] == ["0", "1"]
    (_, lo0, hi0), (_, lo1, hi1) = (m.groups() for m in rounds if m)
    assert (float(lo0), float(hi0)) == (1e-4, 1.0)
    assert 1e-4 < float(lo1) < 1e-2 < float(hi1) < 1.0  # zoomed in around lr = 1e-2


def test_the_engine_and_job_tour_runs_as_printed(tmp_path: Path, monkeypatch) -> None:
    """`import caviar; caviar.tune(...)` and `caviar.load_model` work as the README shows."""
    tour = re.findall(r"```python\n(.*?)```", README, flags=re.S)[1]
    monkeypatch.chdir(tmp_path)  # the tour writes py.db and its kept models here
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(tour, "README.md", "exec"), {})
    accuracies, job = out.getvalue().splitlines()
    assert all(0.0 < a <= 1.0 for a in eval(accuracies))  # three members' last-epoch scores
    best, predicted = job.split(" ", 1)
    assert 0.0 < float(best) <= 1.0 and len(eval(predicted)) == 5
    assert (tmp_path / "py.db").is_file() and (tmp_path / "caviar-models" / "py").is_dir()

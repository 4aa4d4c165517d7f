"""Flags a hostile user types: each refused in one line naming the flag or key, the value and
what is allowed, and nothing is written (issue 27's cases of the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caviar.cli.flags import port
from caviar.cli.main import main


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err.strip()


def test_an_empty_name_is_refused_not_replaced_by_the_demos(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--name", "", "--dry-run", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("caviar: error: study.name: ") and err.endswith("got ''")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["tune", "--dry-run"], ["show", "demo"], ["studies"]])
def test_an_empty_storage_is_refused_not_replaced_by_caviar_db(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CAVIAR_STORAGE", raising=False)
    assert main([*command, "--storage", ""]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "caviar: error: --storage: must name a study file, got ''"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["70000", "-1", "65536"])
def test_a_port_out_of_range_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`--port 70000` used to serve on 4464 (70000 modulo 65536)."""
    err = refused(["panda", "--port", value], capsys)
    assert f"argument --port: must be a port in [0, 65535] (0: a free one), got {value}" in err


def test_the_port_bounds_are_allowed() -> None:
    assert (port("0"), port("65535")) == (0, 65535)

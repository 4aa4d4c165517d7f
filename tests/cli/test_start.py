"""The console script's entry (``caviar = caviar.cli.start:main``) in this process; its Ctrl-C
while torch loads is tested as a user meets it, in tests/cli/test_cli_inputs.py."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from caviar.cli import start
from caviar.core import interrupts


def test_the_console_script_runs_the_command_and_hands_ctrl_c_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.db"
    monkeypatch.setattr(sys, "argv", ["caviar", "studies", "--storage", str(missing)])
    previous, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    try:
        assert start.main() == 0
        # while starting, Ctrl-C exits at once; once the command runs, it is remembered
        assert signal.getsignal(signal.SIGINT) is interrupts.handler
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = hook
    assert capsys.readouterr().out == f"no study file at {missing}\n"

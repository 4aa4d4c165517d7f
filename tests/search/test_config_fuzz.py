"""Config fuzz (issue 12): generated configs and ``caviar tune`` flag sets each end in a valid
study or in one line, ``caviar: error: <key or flag>: ...``, never a traceback or a hang.

The cases come from tests/_fuzz_configs.py (seeded: the same cases on every run). Each runs
``caviar.cli.main.main`` in-process with ``--dry-run``: the config is validated and the data loaded
and split as a run would, nothing is trained or written. A few valid cases then run for real.
"""

from __future__ import annotations

import re
import signal
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from _fuzz_configs import FIXTURES, TMP, Case, all_cases, to_toml, to_yaml

from caviar.cli.main import main

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs signal.alarm")

CASES = all_cases()
#: seconds a case may take before it counts as a hang (a dry run on digits takes ~0.1 s)
LIMIT_S = 20
#: stderr lines allowed besides the error: warnings, the notes on a rescaled per_round and on
#: settings --sampler leaves out
NOTES = ("caviar: warning: ", "caviar: search.per_round ", "caviar: --sampler ")
ERROR = "caviar: error: "
#: how an error names what is wrong: a key path (with a note in parentheses), the config file,
#: a flag, or an unknown section by its name
NAMED = re.compile(
    r"(?:(?:study|data|space|search)(?:[.\[][^\s:]*)?(?: \([^)]*\))?"
    r"|config|--[a-z-]+|argument --[a-z-]+|[^\s:]+(?=: unknown section)): \S"
)


class Hang(Exception):
    """A case ran past LIMIT_S."""


def _substitute(value: Any, tmp: str) -> Any:
    """``value`` with ``@TMP@`` replaced by the tmp folder, in strings and keys alike."""
    if isinstance(value, str):
        return value.replace(TMP, tmp)
    if isinstance(value, list):
        return [_substitute(v, tmp) for v in value]
    if isinstance(value, dict):
        return {_substitute(k, tmp): _substitute(v, tmp) for k, v in value.items()}
    return value


def argv_for(case: Case, tmp: Path) -> list[str]:
    """The command line of ``case``, its config written under ``tmp``; the case's own flags
    come after the default --storage, so a --storage of its own wins."""
    argv = ["tune", "--storage", str(tmp / "study.db")]
    if case.fmt == "raw":
        path = tmp / f"fuzz{case.suffix}"
        path.write_bytes(case.raw)
        argv.append(str(path))
    elif case.fmt in ("toml", "yaml"):
        config = _substitute(case.config, str(tmp))
        path = tmp / f"fuzz.{case.fmt}"
        path.write_text(to_toml(config) if case.fmt == "toml" else to_yaml(config), "utf-8")
        argv.append(str(path))
    return argv + [_substitute(flag, str(tmp)) for flag in case.flags]


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """tmp_path as the working folder and the download cache, with the files cases point at."""
    for name, text in FIXTURES.items():
        if text is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CAVIAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CAVIAR_STORAGE", raising=False)
    threads = torch.get_num_threads()  # a real run sets torch's thread count
    yield tmp_path
    torch.set_num_threads(threads)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``caviar <argv>`` in-process: its exit code, stdout and stderr; a hang or a traceback
    fails the test with the command that caused it."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise Hang(f"no answer within {LIMIT_S} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(LIMIT_S)
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code if isinstance(e.code, int) else 0 if e.code is None else 1
    except Exception as e:
        last = traceback.format_exception_only(e)[-1].strip()
        how = "hung" if isinstance(e, Hang) else "ended in a traceback"
        pytest.fail(f"caviar {' '.join(map(repr, argv))}\n{how}: {last}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    out, err = capsys.readouterr()
    return code, out, err


def outcome(case: Case, code: int, out: str, err: str) -> str:
    """``"valid"``, or the one error line; an AssertionError says what broke the rules."""
    shown = f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"
    assert "Traceback" not in out + err, shown
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith(ERROR)]
    others = [line for line in lines if not line.startswith((ERROR, *NOTES))]
    assert not others, f"stderr lines that are neither a warning nor the error: {others}\n{shown}"
    if code == 0:
        assert not errors, shown
        assert any(line.startswith("dry run: ") for line in out.splitlines()), shown
        return "valid"
    assert code == 2, f"exit code must be 0 or 2\n{shown}"
    assert len(errors) == 1 and lines[-1] == errors[0], f"one error line, the last\n{shown}"
    message = errors[0].removeprefix(ERROR)
    assert NAMED.match(message), f"the error must start with the key or flag it is about\n{shown}"
    if case.names:
        assert any(name in message for name in case.names), (
            f"the error must name one of {list(case.names)}\n{shown}"
        )
    return errors[0]


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case_ends_in_a_valid_study_or_one_named_error(
    case: Case, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*argv_for(case, sandbox), "--dry-run"]
    result = outcome(case, *run(argv, capsys))
    if case.valid:
        assert result == "valid", f"built valid, got: {result}"
    assert not (sandbox / "study.db").exists(), "a dry run writes nothing"


REAL = [case for case in CASES if case.valid][-5:]
#: a short real run: the budget and two epochs (one would leave halving nothing to judge) last,
#: so they win over the case's own flags
SHORT = ["--timeout", "2", "--quiet", "--no-report", "--epochs", "2"]


@pytest.mark.slow
@pytest.mark.parametrize("case", REAL, ids=[case.id for case in REAL])
def test_a_valid_case_really_runs(
    case: Case, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*argv_for(case, sandbox), *SHORT], capsys)
    assert code in (0, 1), f"exit {code}\nstdout:\n{out}\nstderr:\n{err}"  # 1: none completed
    notes = (*NOTES, "caviar: trial ", "caviar: trials ")  # and the budget's end game's
    assert not [line for line in err.splitlines() if not line.startswith(notes)], err
    assert (sandbox / "study.db").exists()


def test_the_cases_are_many_and_reproducible() -> None:
    assert len(CASES) >= 200
    assert len({case.id for case in CASES}) == len(CASES), "ids must be unique"
    assert [case.id for case in all_cases()] == [case.id for case in CASES]
    kinds = {case.fmt for case in CASES}
    assert {"toml", "yaml", "raw", "none"} <= kinds
    assert sum(bool(case.flags) and case.fmt != "raw" for case in CASES) >= 50
    assert sum("-never-acts-" in case.id for case in CASES) >= 15
    assert sum("-raw-dup-" in case.id for case in CASES) >= 5

"""What a new user's mistakes and odd inputs get from `caviar`: one line naming the key or flag,
never a traceback, and flags that do what the README says."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from caviar.cli.main import main
from caviar.cli.tune import config_mapping, scale_rounds
from caviar.core.records import TrialState
from caviar.search.config import config_from_mapping, load_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--train-size", "300", "--epochs", "1", "--population", "4", "--quiet", "--no-report"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("caviar: error: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("caviar: error: ")


def test_a_bad_value_is_said_once(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tune", "--epochs", "-1")
    assert code == 2
    assert one_line_error(err) == "space.epochs: must be an integer in [1, inf), got -1"


def test_a_bad_flag_is_one_line_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tune", "--trials", "abc")
    assert code == 2
    assert one_line_error(err) == (
        "argument --trials: invalid int value: 'abc' (see `caviar tune --help`)"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "[search]\ntrials = 3\n".encode("utf-16"),
            "is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8",
        ),
        (b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe", "is not UTF-8 text (byte 9 is b'\\xff')"),
        (b"[search]\x00\n", "holds NUL bytes: it is a binary file, not a config"),
    ],
    ids=["utf-16", "binary", "nul"],
)
def test_a_config_that_is_not_utf8_text_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "study.toml"
    path.write_bytes(content)
    code, _, err = run(capsys, "tune", str(path))
    assert code == 2 and message in one_line_error(err)


def test_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes("\ufeff[search]\ntrials = 3\n".encode())
    assert load_config(path).search.trials == 3


@pytest.mark.parametrize(
    ("per_round", "trials", "expected"),
    [
        ([64, 32, 32], 32, [16, 8, 8]),
        ([40, 30, 30], 10, [4, 3, 3]),
        ([5, 1], 3, [2, 1]),  # every round keeps at least one trial
        ([10, 10, 10], 31, [11, 10, 10]),  # the spare trial goes to the first largest remainder
        ([1, 1], 2, [1, 1]),
    ],
)
def test_trials_scale_an_explicit_per_round_list(
    per_round: list[int], trials: int, expected: list[int]
) -> None:
    assert scale_rounds(per_round, trials) == expected


def test_fewer_trials_than_rounds_names_the_flag() -> None:
    with pytest.raises(
        ValueError, match=r"^--trials: must be >= the 3 rounds of search\.per_round"
    ):
        scale_rounds([4, 4, 4], 2)


@pytest.mark.parametrize(
    ("flags", "stored"),
    [
        (["--halving"], {"min_epochs": 1, "eta": 3}),
        (["--halving-eta", "2"], {"min_epochs": 1, "eta": 2}),
        (["--halving", "--halving-min-epochs", "2"], {"min_epochs": 2, "eta": 3}),
        ([], None),  # the demo has no halving
    ],
)
def test_halving_flags_take_the_schedules_defaults(flags: list[str], stored: Any) -> None:
    from caviar.cli import main as cli

    raw, name, source = config_mapping(cli.parser().parse_args(["tune", *flags]))
    assert config_from_mapping(raw, default_name=name, source=source).search.halving == stored


def test_the_help_states_the_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "tune", "--help")
    assert code == 0
    assert "successive halving: min_epochs 1, eta 3" in " ".join(out.split())
    code, out, _ = run(capsys, "panda", "--help")
    assert code == 0
    assert "rollback mode: exact or fresh (default exact)" in " ".join(out.split())


def test_the_fashion_example_with_fewer_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    """`caviar tune examples/fashion_coarse_to_fine.yaml --trials 32` (README tour) gives a valid
    config with the rounds scaled, not 'must equal the sum of per_round'."""
    from caviar.cli import main as cli

    args = cli.parser().parse_args(
        ["tune", str(ROOT / "examples" / "fashion_coarse_to_fine.yaml"), "--trials", "32"]
    )
    raw, default, source = config_mapping(args)
    config = config_from_mapping(raw, default_name=default, source=source)
    per_round = config.per_round()
    original = load_config(ROOT / "examples" / "fashion_coarse_to_fine.yaml").per_round()
    assert sum(per_round) == 32 == config.n_trials() and len(per_round) == len(original)
    assert config.name != "fashion_coarse_to_fine"  # another definition, another study


@pytest.mark.slow
def test_flags_that_change_the_definition_name_their_own_study(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README tour: the demo, then `caviar tune --dataset ... --trials ... --epochs ...`
    in the same folder. It used to fail with 'exists with another definition'."""
    db = str(tmp_path / "c.db")
    code, _, err = run(capsys, "tune", "--storage", db, "--timeout", "2", *SMALL[4:])
    assert code in (0, 1), err  # the demo (under a budget)
    code, out, err = run(
        capsys, "tune", "--storage", db, "--dataset", "digits", "--trials", "6", *SMALL
    )
    assert code == 0, err
    name = "demo-digits-trainsize300-epochs1-trials6"
    assert f"study {name!r}" in out and f"caviar show {name}" in out
    code, out, err = run(  # the same command continues the same study
        capsys, "tune", "--storage", db, "--dataset", "digits", "--trials", "6", *SMALL
    )
    assert code == 0 and f"study {name!r}" in out, err
    code, out, _ = run(capsys, "tune", "--storage", db, "--name", "mine", "--trials", "6", *SMALL)
    assert code == 0 and "study 'mine'" in out and "change the study's definition" not in out


def test_a_random_study_keeps_its_name_when_only_the_budget_grows() -> None:
    from caviar.cli import main as cli

    args = cli.parser().parse_args(["tune", str(ROOT / "examples" / "book.toml"), "--trials", "9"])
    raw, default, source = config_mapping(args)
    assert config_from_mapping(raw, default_name=default, source=source).name == "book"


@pytest.mark.parametrize(
    ("key", "first", "second"),
    [("objective", "final", "best"), ("dtype", "float32", "float64")],
)
def test_the_ranking_cannot_change_between_runs(
    tmp_path: Path, key: str, first: str, second: str
) -> None:
    from caviar.search.job import tune

    section = "search" if key == "objective" else "study"

    def config(value: str) -> dict:
        raw = {
            "study": {"name": "rank", "storage": str(tmp_path / "r.db")},
            "data": {"dataset": "digits", "train_size": 300},
            "space": {"epochs": 1, "lr": {"scale": "log", "low": 1e-3, "high": 1e-1}},
            "search": {"trials": 2, "population": 2},
        }
        raw[section][key] = value
        return raw

    tune(config(first), progress=False, report=False).close()
    with pytest.raises(ValueError, match=rf"^{section}\.{key}: study 'rank' was run with {key}"):
        tune(config(second), progress=False, report=False)


def test_report_out_a_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "s.db")
    code, _, err = run(capsys, "tune", "--storage", db, "--name", "s", "--trials", "3", *SMALL)
    assert code == 0, err
    (tmp_path / "page.html").write_text("mine")
    code, _, err = run(capsys, "report", "s", "--storage", db, "--out", str(tmp_path / "page.html"))
    assert code == 2 and one_line_error(err).startswith("--out: must be a folder for the report")
    assert (tmp_path / "page.html").read_text() == "mine"


def test_an_unwritable_report_folder_keeps_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "caviar-reports").write_text("a file where the reports folder would go")
    db = str(tmp_path / "s.db")
    code, out, err = run(
        capsys, "tune", "--storage", db, "--name", "s", "--trials", "3", *SMALL[:-1]
    )
    assert code == 0 and "Traceback" not in err
    assert "best configuration (trial" in out and "caviar show s" in out
    assert "caviar: warning: the report could not be written" in err


def test_a_study_named_like_an_option_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "tune", "--name", "-rf")
    assert code == 2  # argparse reads "-rf" as an option: its own one-line error
    code, _, err = run(capsys, "tune", "--name=-rf")
    assert code == 2 and one_line_error(err).startswith("study.name: must be 1-100 letters")


def test_a_huge_grid_is_refused_before_anything_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    from caviar.samplers import GridSampler

    def built(*args: object) -> None:
        raise AssertionError("the grid's axes were built: its size should have refused it")

    monkeypatch.setattr(GridSampler, "axes", built)  # refused from the sizes alone
    with pytest.raises(ValueError, match=r"a grid of 91,000,000,000,000 points \(91 x 1000000"):
        config_from_mapping(
            {
                "space": {
                    "hidden_units": {"scale": "int", "low": 10, "high": 100},
                    "lr": {"scale": "log", "low": 1e-4, "high": 1e-1},
                    "dropout": {"scale": "linear", "low": 0.0, "high": 0.5},
                },
                "search": {"sampler": "grid", "points_per_dim": 1_000_000},
            }
        )


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.2, 0.5, 1.0, 1.5])
def test_ctrl_c_while_starting_is_one_line(tmp_path: Path, delay: float) -> None:
    """Ctrl-C while torch loads used to print a KeyboardInterrupt traceback, a misleading numpy
    ImportError or a C++ terminate. The console script itself is run, as a user runs it."""
    script = Path(sys.executable).parent / "caviar"
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "caviar.cli.start"]
    process = subprocess.Popen(
        [*argv, "tune"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, (out, err)
    assert "Traceback" not in err and "terminate" not in err and "ImportError" not in err, err
    assert "caviar: interrupted" in err


def test_a_python_api_study_says_what_it_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from caviar import LogUniform, Study

    db = tmp_path / "own.db"
    study = Study.create("own", {"lr": LogUniform(1e-4, 1.0)}, storage=db)
    for trial in study.ask(3):
        study.tell(trial, 0.5 + trial.number / 10)
    study.close()
    code, out, _ = run(capsys, "studies", "--storage", str(db))
    assert code == 0 and "on ?" not in out
    assert "own: 3 trials (made with the Python API: no dataset recorded)" in out
    code, _, err = run(capsys, "test", "own", "--storage", str(db))
    assert code == 2
    assert "'own' was made with the Python API (Study.create), not caviar tune" in err
    assert "caviar test own" not in err


@pytest.mark.slow
def test_show_studies_and_report_do_not_write_to_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    db = tmp_path / "s.db"
    code, _, err = run(capsys, "tune", "--storage", str(db), "--name", "s", "--trials", "3", *SMALL)
    assert code == 0, err
    for suffix in ("-wal", "-shm"):  # a finished run leaves the file whole
        assert not Path(f"{db}{suffix}").exists() or Path(f"{db}{suffix}").stat().st_size == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    assert run(capsys, "show", "s", "--storage", str(db))[0] == 0
    assert run(capsys, "studies", "--storage", str(db))[0] == 0
    assert run(capsys, "report", "s", "--storage", str(db), "--out", str(tmp_path / "r"))[0] == 0
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_show_on_a_foreign_sqlite_file_leaves_it_unchanged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    db = tmp_path / "other.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    before = db.read_bytes()
    code, _, err = run(capsys, "show", "x", "--storage", str(db))
    assert code == 2 and "is not a caviar study file" in one_line_error(err)
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    code, _, err = run(capsys, "show", "x", "--storage", str(empty))
    assert code == 2 and "is not a caviar study file" in one_line_error(err)
    assert db.read_bytes() == before and empty.read_bytes() == b""


@pytest.mark.slow
def test_a_million_trials_stream_and_record_their_threads(tmp_path: Path) -> None:
    """`trials = 1000000` used to run 50 s without a line: trials are asked as slots free, so a
    budget ends it at once, with a handful of rows, each recording its thread counts."""
    from caviar.search.job import tune

    study = tune(
        {
            "study": {"name": "many", "storage": str(tmp_path / "m.db"), "threads": 1},
            "data": {"dataset": "digits", "train_size": 300},
            "space": {"epochs": 1, "hidden_units": 8},
            "search": {"trials": 1_000_000, "timeout": 2, "population": 2},
        },
        progress=False,
        report=False,
    )
    trials = study.trials(curves=False)
    assert 0 < len(trials) < 10_000  # asked as slots free, not a million rows first
    assert all(t.attrs["threads"] == [1] for t in trials if t.state.is_finished)


def test_a_budget_too_short_for_any_trial_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to say 'no trial completed (all diverged or failed)' of trials that were only
    put back in the queue."""
    argv = ["tune", "--storage", str(tmp_path / "s.db"), "--name", "short", "--epochs", "400"]
    code, out, _ = run(capsys, *argv, "--timeout", "2", "--population", "2", "--quiet")
    assert code == 1
    assert "no trial finished within the 2 s budget; 2 unfinished trials wait in the queue" in out
    assert "diverged" not in out


@pytest.mark.slow
def test_a_budget_holds_with_a_pool_of_ten_thousand(tmp_path: Path) -> None:
    """With `population = 10000` and a 5-s budget the study used to sit for more than a minute
    before its first mini-batch (building and copying the pool's members); now asking,
    building and training all stop at the deadline, and every unfinished trial waits in the
    queue, none lost."""
    from caviar.search.job import tune

    cfg = {
        "study": {"name": "wide", "storage": str(tmp_path / "w.db"), "threads": 1},
        "data": {"dataset": "digits"},
        "search": {"sampler": "random", "trials": 20_000, "timeout": 5, "population": 10_000},
    }
    started = time.perf_counter()
    study = tune(cfg, progress=False, report=False)
    took = time.perf_counter() - started
    assert took < 10, f"a 5-s budget took {took:.1f} s"
    trials = study.trials(curves=False)
    assert trials and all(t.state in (TrialState.QUEUED, TrialState.COMPLETE) for t in trials)

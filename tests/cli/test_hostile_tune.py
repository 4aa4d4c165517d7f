"""`caviar tune` on a config part of which could never act, or whose trials fail: issue 27's
cases of the search. A config that could never act is refused in one line before anything is
written; failed trials are counted at the end with the first one's reason, and the exit status
says whether any trial completed. The expected counts come from the study file, read apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from caviar.cli.main import main

BASE = """\
[study]
threads = 1
seed = 0
[data]
dataset = "digits"
train_size = 300
[space]
lr = {scale = "log", low = 1e-3, high = 1e-1}
epochs = 2
"""


def write_config(
    folder: Path, space: str = "", search: str = "trials = 4\npopulation = 4\n"
) -> Path:
    path = folder / "hostile.toml"
    path.write_text(f"{BASE}{space}[search]\n{search}")
    return path


#: name: (lines added to [space], lines of [search], the one line of stderr)
NEVER_ACTS = {
    "batch norm on a batch of one, among choices": (
        "batch_norm = {choice = [false, true]}\nbatch_size = {choice = [1, 64]}\n",
        "trials = 12\npopulation = 4\n",
        "caviar: error: space.batch_size (with batch_norm): must be an integer in [2, inf), got "
        "1: the space holds batch_norm = true with batch_size = 1, so the trials drawn there "
        "would fail; narrow space.batch_size",
    ),
    "per_round with random search": (
        "",
        'sampler = "random"\ntrials = 4\nper_round = [2, 2]\n',
        "caviar: error: search.per_round: only read when sampler is 'coarse_to_fine', but "
        "search.sampler is 'random', so it would change nothing; remove it or change "
        "search.sampler",
    ),
    "halving whose first rung is past the last epoch": (
        "",
        "trials = 4\nhalving = {min_epochs = 100}\n",
        "caviar: error: search.halving: its first rung, at epoch 100, is never reached: trials "
        "train at most 2 epochs (space.epochs), and halving judges a member only before its "
        "last epoch; give min_epochs < 2, or more epochs",
    ),
}


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry run"])
@pytest.mark.parametrize(("space", "search", "line"), NEVER_ACTS.values(), ids=NEVER_ACTS)
def test_a_config_that_could_never_act_is_refused_before_anything_is_written(
    space: str,
    search: str,
    line: str,
    dry_run: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, space, search)
    argv = ["tune", str(config), "--storage", str(tmp_path / "s.db"), "--quiet"]
    assert main(argv + (["--dry-run"] if dry_run else [])) == 2
    assert capsys.readouterr().err.strip() == line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.toml"]


def test_the_sampler_flag_leaves_the_configs_other_sampler_settings_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo is coarse to fine with rounds = 2 (keep = 0.25 is the default, which changes
    nothing wherever it is): `--sampler random` says it drops rounds."""
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--sampler", "random", "--dry-run", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "caviar: --sampler random does not read search.rounds; left out\n" in err
    assert list(tmp_path.iterdir()) == []


def failed_rows(db: Path) -> list[tuple[int, str]]:
    """The study's failed trials (number, reason) and its trial count, from the file itself."""
    with sqlite3.connect(db) as connection:
        return connection.execute("SELECT number, state FROM trials ORDER BY number").fetchall()


def test_failed_trials_are_counted_with_the_first_reason_and_the_run_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A too-big trial fails alone (rightly); the run used to print `pruned 0 diverged 0` and
    say nothing of it."""
    config = write_config(tmp_path, "hidden_units = {choice = [16, 10000000]}\n")
    db = tmp_path / "s.db"
    assert main(["tune", str(config), "--storage", str(db), "--quiet", "--no-report"]) == 0
    out = capsys.readouterr().out
    rows = failed_rows(db)
    failed = [number for number, state in rows if state == "failed"]
    assert 0 < len(failed) < len(rows) == 4
    line = next(x for x in out.splitlines() if " trials failed; " in x)
    assert line.startswith(
        f"caviar: {len(failed)} of the study's 4 trials failed; the first, trial {failed[0]}: "
        "the member needs "
    )
    assert line.endswith("; `caviar show hostile` lists them")
    assert "best configuration" in out


def test_a_run_where_every_trial_fails_says_why_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "hidden_units = {choice = [20000000, 10000000]}\n")
    db = tmp_path / "s.db"
    assert main(["tune", str(config), "--storage", str(db), "--quiet", "--no-report"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert [state for _, state in failed_rows(db)] == ["failed"] * 4
    assert out[-1].startswith(
        "caviar: no trial completed (4 failed); the first, trial 0: the member needs "
    )
    assert out[-1].endswith("; `caviar show hostile` lists them")

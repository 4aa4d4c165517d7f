"""A typo on the command line or in a config names the nearest allowed word, in one line, and
every flag says what it does."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from caviar.cli.main import main, parser
from caviar.search.config import config_from_mapping


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["tune", "--trails", "2"],
            "caviar: error: unrecognized arguments: --trails; did you mean '--trials'? "
            "(see `caviar --help`)",
        ),
        (
            ["tunee"],
            "caviar: error: argument command: invalid choice: 'tunee' (choose from 'tune', "
            "'show', 'report', 'dashboard', 'test', 'export', 'panda', 'experiment', 'studies'); "
            "did you mean 'tune'? (see `caviar --help`)",
        ),
        (
            ["tune", "--sampler", "tpee"],
            "caviar: error: argument --sampler: invalid choice: 'tpee' (choose from 'random', "
            "'grid', 'coarse_to_fine', 'tpe'); did you mean 'tpe'? (see `caviar tune --help`)",
        ),
        (
            ["tune", "--banana"],  # nothing alike: no guess
            "caviar: error: unrecognized arguments: --banana (see `caviar --help`)",
        ),
    ],
    ids=["flag", "command", "choice", "nothing alike"],
)
def test_a_mistyped_flag_or_command_names_the_nearest(
    argv: list[str], line: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--storage", str(tmp_path / "s.db")] if argv[0] == "tune" else argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == line
    assert not (tmp_path / "s.db").exists()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"space": {"lrr": 0.1}}, "; did you mean 'lr'?"),
        ({"serach": {"trials": 2}}, "; did you mean 'search'?"),
        ({"search": {"trails": 2}}, "; did you mean 'trials'?"),
        ({"search": {"trials": 2, "sampler": "tpee"}}, "; did you mean 'tpe'?"),
        ({"space": {"lr": {"scale": "logg", "low": 1e-3, "high": 1e-1}}}, "did you mean 'log'?"),
        ({"space": {"lr": {"scale": "log", "low": 1e-3, "hihg": 1e-1}}}, "did you mean 'high'?"),
        ({"space": {"activation": "rellu"}, "search": {"trials": 2}}, "did you mean 'relu'?"),
    ],
    ids=["hyperparameter", "section", "key", "choice", "scale", "dimension key", "value"],
)
def test_a_mistyped_config_word_names_the_nearest(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as refused:
        config_from_mapping(raw)
    assert str(refused.value).endswith(message) or message in str(refused.value)


def test_every_flag_of_every_command_says_what_it_does() -> None:
    missing = []
    top = parser()
    commands = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in commands.choices.items():
        for action in command._actions:
            if action.option_strings and not action.help and "-h" not in action.option_strings:
                missing.append(f"caviar {name} {action.option_strings[-1]}")
    assert missing == []


@pytest.mark.slow  # the command's first import of torch
def test_a_mistyped_dataset_is_named_and_leaves_no_study_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`caviar tune --dataset mnsit` once left an empty caviar.db behind."""
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--dataset", "mnsit", "--trials", "2", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "caviar: error: data.dataset: must be one of digits, fashion-mnist, mnist or a file "
        "ending in .csv or .npz, got 'mnsit'; did you mean 'mnist'?"
    )
    assert list(tmp_path.iterdir()) == []

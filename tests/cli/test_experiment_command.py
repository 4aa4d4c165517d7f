"""``caviar experiment``: the parser that caviar.cli.main mounts, the listing, errors, and a run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from caviar.cli.experiment import add_parser, listing, run
from caviar.core.errors import InvalidValue
from caviar.experiments import EXPERIMENTS, Options


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="caviar")
    add_parser(p.add_subparsers(dest="command", required=True))
    return p.parse_args(argv)


def test_the_parser_takes_several_seeds_and_the_flags() -> None:
    args = _parse(
        [
            "experiment",
            "overfit",
            "--seed",
            "0",
            "1",
            "2",
            "--quick",
            "--way",
            "book",
            "--data-dir",
            "d",
            "--device",
            "cpu",
            "--out",
            "o",
        ]
    )
    assert (args.name, args.seed, args.quick, args.way) == ("overfit", [0, 1, 2], True, "book")
    assert (args.data_dir, args.device, args.out, args.run) == ("d", "cpu", "o", run)


def test_list_names_every_experiment_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(_parse(["experiment", "list"])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        [line.split()[0] for line in lines]
        == list(EXPERIMENTS)
        == [
            "batchnorm-init",
            "overfit",
            "weight-decay",
            "dropout",
            "hparam-search",
            "random-vs-grid",
            "log-vs-linear",
            "beta-scale",
            "bn-test-time",
            "softmax",
            "ensemble",
        ]
    )
    assert lines == listing()


def test_an_unknown_name_is_an_error_naming_the_choices() -> None:
    with pytest.raises(InvalidValue, match=r"must be `list` or one of .*overfit"):
        run(_parse(["experiment", "nope"]))


def test_the_book_way_only_where_offered(tmp_path: Path) -> None:
    args = _parse(["experiment", "softmax", "--way", "book", "--out", str(tmp_path)])
    with pytest.raises(InvalidValue, match="softmax runs \\['caviar'\\], got 'book'"):
        run(args)


def test_options_need_a_seed() -> None:
    with pytest.raises(InvalidValue, match=r"experiment\.seed"):
        Options(seeds=())


def test_a_run_prints_its_table_and_writes_its_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parse(["experiment", "softmax", "--quick", "--seed", "0", "1", "--out", str(tmp_path)])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "max |dz - autograd|" in out and "way: plain" in out
    numbers = json.loads((tmp_path / "softmax.json").read_text())
    assert numbers["meta"]["seeds"] == [0, 1] and len(numbers["runs"]) == 2
    assert (tmp_path / "softmax.png").exists()

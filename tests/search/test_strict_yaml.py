"""A YAML config means what it says: a key or section given twice, or a base-60 number, is
refused in one line naming the file and the key, and nothing runs or is stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.search.config import read_config_file

BASE = """study:
  name: y
  seed: {seed}
space:
  lr: {{scale: log, low: 0.001, high: 0.1}}
  epochs: 2
search:
  trials: 4
{extra}"""


def write(tmp_path: Path, seed: str = "0", extra: str = "") -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(BASE.format(seed=seed, extra=extra))
    return path


def test_a_plain_yaml_config_reads_as_written(tmp_path: Path) -> None:
    raw = read_config_file(write(tmp_path, extra="  population: 4\n"))
    assert raw["search"] == {"trials": 4, "population": 4}
    assert raw["study"] == {"name": "y", "seed": 0}
    assert raw["space"]["lr"] == {"scale": "log", "low": 0.001, "high": 0.1}


@pytest.mark.parametrize(
    ("extra", "key", "lines"),
    [
        ("  trials: 400\n", "trials", "8 and 9"),  # `trials: 400` would have run 400 trials
        ("search:\n  trials: 5\n", "search", "7 and 9"),  # a second section replaced the first
    ],
    ids=["a key twice", "a section twice"],
)
def test_a_key_given_twice_is_refused(tmp_path: Path, extra: str, key: str, lines: str) -> None:
    path = write(tmp_path, extra=extra)
    with pytest.raises(InvalidValue, match=rf"^config: .* the key '{key}' is given twice "):
        read_config_file(path)
    with pytest.raises(InvalidValue, match=rf"\(lines {lines}\); give it once"):
        read_config_file(path)


def test_a_key_given_twice_inline_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("search: {trials: 4, trials: 400}\n")
    with pytest.raises(InvalidValue, match=r"the key 'trials' is given twice \(lines 1 and 1\)"):
        read_config_file(path)


def test_a_base_60_number_is_text_and_the_seed_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """YAML 1.1 reads `1:20` as 80 (base 60); here it is the text '1:20'."""
    path = write(tmp_path, seed="1:20")
    assert read_config_file(path)["study"]["seed"] == "1:20"
    db = tmp_path / "s.db"
    assert main(["tune", str(path), "--storage", str(db), "--dry-run", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "caviar: error: study.seed: must be an integer in [0, 2**63), got '1:20'"
    assert not db.exists()

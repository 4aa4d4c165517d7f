"""The `caviar` command: tune, show, report, test (once), studies, and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from caviar.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """A small finished study made through the command line."""
    db = tmp_path / "studies.db"
    code, out, _ = run(
        capsys,
        "tune",
        "--name",
        "cli",
        "--storage",
        str(db),
        "--trials",
        "4",
        "--epochs",
        "2",
        "--train-size",
        "300",
        "--sampler",
        "random",
        "--quiet",
    )
    assert code == 0, out
    return db


@pytest.mark.slow
def test_tune_prints_the_best_configuration_and_the_report(study: Path) -> None:
    assert study.exists()
    assert (study.parent / "caviar-reports" / "cli" / "index.html").exists()


def test_tune_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "tune",
        "--storage",
        str(tmp_path / "x.db"),
        "--trials",
        "3",
        "--epochs",
        "1",
        "--train-size",
        "200",
        "--sampler",
        "random",
        "--quiet",
        "--no-report",
    )
    assert code == 0
    # the flags change the demo's definition: they name a study of their own
    name = "demo-trainsize200-random-epochs1"
    assert f"study {name!r} from the embedded demo: 3 trials, random search" in out
    assert "the flags change the study's definition" in out
    assert "best configuration (trial" in out and "validation accuracy" in out
    assert "  lr = " in out and "caviar test demo" in out


@pytest.mark.slow
def test_show_lists_the_leaderboard(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "cli", "--storage", str(study), "--top", "3")
    assert code == 0
    assert "4 trials (4 complete)" in out
    lines = [line for line in out.splitlines() if line.strip().startswith(("1 ", "2 ", "3 "))]
    assert len(lines) == 3
    scores = [float(line.split()[2]) for line in lines]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.slow
def test_studies_and_report(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "studies", "--storage", str(study))
    assert code == 0 and out.startswith("cli: 4 trials on digits")
    code, out, _ = run(
        capsys, "report", "cli", "--storage", str(study), "--out", str(tmp_path / "r")
    )
    assert code == 0 and sorted(p.name for p in (tmp_path / "r").iterdir()) == ["index.html"]
    code, out, _ = run(
        capsys, "report", "cli", "--storage", str(study), "--out", str(tmp_path / "p"), "--png"
    )
    assert code == 0 and out == f"report: {tmp_path / 'p' / 'index.html'}\n"
    assert {"best.png", "scatter.png", "curves.png"} <= {p.name for p in (tmp_path / "p").iterdir()}
    page = (tmp_path / "p" / "index.html").read_text(encoding="utf-8")
    assert '"alt":"Learning curves' in page  # the page shows them, each with its alt text


@pytest.mark.slow
def test_the_test_set_is_used_once(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "test", "cli", "--storage", str(study))
    assert code == 0 and "test accuracy" in out and "retrained on training + validation" in out
    code, _, err = run(capsys, "test", "cli", "--storage", str(study))
    assert code == 2 and "was used on" in err and "--force" in err
    code, out, _ = run(
        capsys, "test", "cli", "--storage", str(study), "--force", "--mode", "as-trained"
    )
    assert code == 0 and "validation accuracy reproduced" in out
    code, out, _ = run(capsys, "show", "cli", "--storage", str(study))
    assert "test set used (as-trained" in out


def test_errors_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[space]\nlr = { scale = "log", low = 0, high = 1 }\n[search]\ntrials = 2\n')
    code, _, err = run(capsys, "tune", str(bad), "--storage", str(tmp_path / "s.db"))
    assert code == 2
    assert err.strip() == "caviar: error: space.lr: low must be > 0 on a log scale, got 0"
    code, _, err = run(capsys, "show", "nope", "--storage", str(tmp_path / "none.db"))
    assert code == 2 and "no study file at" in err
    code, _, err = run(
        capsys, "tune", "--dataset", "cifar", "--storage", str(tmp_path / "s.db"), "--quiet"
    )
    assert code == 2 and "cifar" in err and "mnist" in err
    code, _, err = run(capsys, "tune", "--device", "tpu", "--storage", str(tmp_path / "d.db"))
    assert code == 2 and "study.device: must be 'auto', 'cpu', 'cuda' or 'cuda:N'" in err
    assert not (tmp_path / "d.db").exists()  # refused before anything was written

"""The Python examples run as their docstrings say, with a small budget (a subprocess from the
checkout, in a temporary folder): a study written, the best trial and the study's file printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"


def run_example(name: str, *args: str, folder: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_own_mlp_csv_tunes_the_demo_csv_and_a_csv_with_named_labels(tmp_path: Path) -> None:
    out = run_example("own_mlp_csv.py", "--timeout", "4", folder=tmp_path)
    assert "breast_cancer.csv: 569 rows, 30 features, 2 classes" in out
    assert "best: trial " in out and "'n_classes': 2" in out
    assert (tmp_path / "own-mlp.db").is_file()
    rows = ["a,b,kind", *(f"{i % 7},{(i * 3) % 5},{'cat' if i % 2 else 'dog'}" for i in range(60))]
    (tmp_path / "pets.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = run_example(
        "own_mlp_csv.py", "pets.csv", "--label", "kind", "--trials", "2", "--storage", "pets.db",
        folder=tmp_path,
    )  # fmt: skip
    assert "pets.csv: 60 rows, 2 features, 2 classes" in out and "best: trial " in out


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"the checked MNIST files are not at {MNIST}")
def test_own_cnn_tunes_on_mnist_in_its_budget(tmp_path: Path) -> None:
    out = run_example(
        "own_cnn.py", "--data-dir", str(MNIST), "--train-size", "1000", "--test-size", "200",
        "--trials", "2", "--timeout", "60", folder=tmp_path,
    )  # fmt: skip
    assert "best: trial " in out and "'channels'" in out
    assert "study: 'own-cnn' in own-cnn.db" in out
    assert (tmp_path / "own-cnn.db").is_file()

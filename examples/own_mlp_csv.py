"""Tune your own tabular MLP on a CSV file with caviar.

The CSV has a header row, numeric feature columns and a class-label column (``--label``; its
values may be integers or names: they are numbered in sorted order). The features are
standardised with the training rows' mean and standard deviation (the test rows use the same
numbers), and a fifth of the rows, chosen at random, is kept apart as the test set. Without a
path it first writes a demo CSV (scikit-learn's breast cancer data: 569 rows, 30 features, 2
classes) to a temporary folder.

    python examples/own_mlp_csv.py                          # the breast cancer demo, about 30 s
    python examples/own_mlp_csv.py data.csv --label species --timeout 120

It writes the study to ``own-mlp.db`` (``--storage``) and its best models beside it, in
``caviar-models/own-mlp/``. The CSV is read with the standard library and NumPy: no pandas.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

import caviar


def build(params: Mapping[str, Any]) -> nn.Module:
    """An MLP: ``depth`` hidden layers of ``width`` units, ReLU and dropout after each."""
    layers: list[nn.Module] = []
    width_in = params["n_features"]
    for _ in range(params["depth"]):
        layers += [nn.Linear(width_in, params["width"]), nn.ReLU(), nn.Dropout(params["dropout"])]
        width_in = params["width"]
    return nn.Sequential(*layers, nn.Linear(width_in, params["n_classes"]))


def demo_csv(folder: Path) -> Path:
    """scikit-learn's breast cancer data written as a CSV with a ``label`` column."""
    from sklearn.datasets import load_breast_cancer  # deferred: only for the demo

    demo = load_breast_cancer()
    path = folder / "breast_cancer.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([*demo.feature_names, "label"])
        for row, label in zip(demo.data, demo.target, strict=True):
            writer.writerow([*row.tolist(), int(label)])
    return path


def read_csv(path: Path, label: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The features (float32 [N, D]), the labels (int64 [N], 0..C-1) and the class names."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or label not in rows[0]:
        raise SystemExit(f"{path}: no column {label!r} (columns: {list(rows[0]) if rows else []})")
    features = [name for name in rows[0] if name != label]
    x = np.array([[float(row[name]) for name in features] for row in rows], dtype=np.float32)
    values = {row[label] for row in rows}
    numeric = all(v.strip().lstrip("-").isdigit() for v in values)
    classes = sorted(values, key=int) if numeric else sorted(values)
    number = {name: k for k, name in enumerate(classes)}
    y = np.array([number[row[label]] for row in rows], dtype=np.int64)
    return x, y, classes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("csv", nargs="?", help="the CSV file (default: a demo in a temp folder)")
    ap.add_argument("--label", default="label", help="the class-label column (default: label)")
    ap.add_argument("--timeout", type=float, default=30, help="the budget, in seconds")
    ap.add_argument("--trials", type=int, default=None, help="at most this many trials")
    ap.add_argument("--storage", default="own-mlp.db", help="the study's SQLite file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(args.csv) if args.csv else demo_csv(Path(folder))
        x, y, classes = read_csv(path, args.label)
    print(f"{path.name}: {len(y)} rows, {x.shape[1]} features, {len(classes)} classes")

    # a fifth of the rows kept apart as the test set, then standardisation with the training
    # rows' mean and standard deviation only (the test rows must not leak into them)
    order = np.random.default_rng(0).permutation(len(y))
    test, train = order[: len(y) // 5], order[len(y) // 5 :]
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    std[std == 0] = 1.0  # a constant column stays 0
    x = (x - mean) / std

    space = {
        "lr": {"scale": "log", "low": 1e-4, "high": 3e-2},
        "weight_decay": {"scale": "log", "low": 1e-6, "high": 1e-2},
        "dropout": {"scale": "linear", "low": 0.0, "high": 0.5},
        "width": {"choice": [32, 64, 128]},
        "depth": {"scale": "int", "low": 1, "high": 3},
        "n_features": x.shape[1],  # fixed values the builder reads
        "n_classes": len(classes),
        "optimizer": "adamw",
        "batch_size": 16,
        "epochs": 30,
    }
    study = caviar.optimize(
        build,
        space,
        data=(x[train], y[train]),  # 20% of it becomes the validation split
        test_data=(x[test], y[test]),  # kept apart: never trained or ranked on
        name="own-mlp",
        storage=args.storage,
        trials=args.trials,
        timeout=args.timeout,
        report=False,
    )
    best = study.best_trial
    if best is None:
        print("no trial finished within the budget: give it a larger --timeout")
    else:
        print(
            f"best: trial {best.number}, validation accuracy {best.value:.4f} after "
            f"{len(best.curve)} epochs\n      {dict(best.params)}"
        )
    print(f"study: {study.name!r} in {args.storage}; its best models in caviar-models/own-mlp/")
    study.close()


if __name__ == "__main__":
    main()

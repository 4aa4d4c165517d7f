"""Tune your own small CNN on MNIST with caviar: successive halving, a time budget, and the test
set kept apart.

The model is an ordinary ``nn.Module`` that ``build(params)`` makes from a trial's
hyperparameters; caviar trains the candidates of the same architecture together, as one
vectorized population. The space puts each hyperparameter on its scale: the learning rate on a
log scale, dropout linear, the channel count and the kernel size as choices, the hidden width an
integer.

    python examples/own_cnn.py --data-dir ../shared/datasets/mnist --train-size 6000 --timeout 60
    python examples/own_cnn.py                  # downloads MNIST to caviar's cache; 5 minutes

It writes the study to ``own-cnn.db`` (``--storage``) and its best models beside it, in
``caviar-models/own-cnn/``; running it again continues the same study, with the trials already
done counted.
``caviar show own-cnn --storage own-cnn.db`` lists its trials afterwards.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from torch import nn

import caviar
from caviar.data import load_dataset


def build(params: Mapping[str, Any]) -> nn.Module:
    """A two-block CNN for 28x28 images given as flat rows of 784 pixels."""
    c, k = params["channels"], params["kernel"]
    return nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, c, k, padding=k // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, c, 14, 14)
        nn.Conv2d(c, 2 * c, k, padding=k // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 2c, 7, 7)
        nn.Flatten(),
        nn.Dropout(params["dropout"]),
        nn.Linear(2 * c * 7 * 7, params["hidden"]),
        nn.ReLU(),
        nn.Linear(params["hidden"], 10),
    )


SPACE = {
    "lr": {"scale": "log", "low": 3e-4, "high": 1e-2},
    "dropout": {"scale": "linear", "low": 0.0, "high": 0.5},
    "channels": {"choice": [4, 8]},
    "kernel": {"choice": [3, 5]},
    "hidden": {"scale": "int", "low": 16, "high": 64},
    "optimizer": "adam",
    "batch_size": 64,
    "epochs": 3,  # halving's rung at epoch 1 stops the weaker two thirds there
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", help="MNIST's IDX .gz files (default: caviar's download cache)")
    ap.add_argument("--train-size", type=int, default=12000, help="training examples used")
    ap.add_argument("--test-size", type=int, default=2000, help="test examples kept apart")
    ap.add_argument("--timeout", type=float, default=300, help="the budget, in seconds")
    ap.add_argument("--trials", type=int, default=None, help="at most this many trials")
    ap.add_argument("--storage", default="own-cnn.db", help="the study's SQLite file")
    args = ap.parse_args()

    mnist = load_dataset(
        "mnist", data_dir=args.data_dir, train_size=args.train_size, test_size=args.test_size
    )  # x: float32 [N, 784] in [0, 1]; y: int64 labels 0..9
    study = caviar.optimize(
        build,
        SPACE,
        data=(mnist.x_train, mnist.y_train),  # 20% of it becomes the validation split
        test_data=(mnist.x_test, mnist.y_test),  # kept apart: never trained or ranked on
        name="own-cnn",
        storage=args.storage,
        trials=args.trials,
        timeout=args.timeout,
        halving={"min_epochs": 1, "eta": 3},
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
    print(f"study: {study.name!r} in {args.storage}; its best models in caviar-models/own-cnn/")
    study.close()


if __name__ == "__main__":
    main()

"""The book's hyperparameter search (Deep Learning from Scratch, ch. 6) as `caviar tune`, against
the book's way of doing it — one numpy model at a time — measured in the same run.

Config (examples/book.toml): the first 500 MNIST training images, 20 % for validation,
784-[100x6]-10 ReLU, SGD, batch 100, 50 epochs, 100 trials, lr = 10**U(-6,-2),
wd = 10**U(-8,-4), ranked by the last epoch's validation accuracy.

The baseline re-implements the book's training loop in numpy (float64, He init, mini-batches drawn
with replacement, weight decay 0.5*lam*||W||^2 on every Affine, train and validation accuracy on
the whole sets every epoch) and trains the same configurations on the same split, one after the
other; it runs ``--baseline-trials`` of them and scales to 100. The book's own code took 88 s on a
2-core machine (shared/reference/book-ch6-results.md).

    python benchmarks/book_search.py --data-dir ../shared/datasets/mnist
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

from caviar.config import load_config
from caviar.tune import prepare_data, tune

ROOT = Path(__file__).resolve().parents[1]


def book_trial(
    x: np.ndarray,
    t: np.ndarray,
    xv: np.ndarray,
    tv: np.ndarray,
    lr: float,
    wd: float,
    rng: np.random.Generator,
    epochs: int = 50,
    batch: int = 100,
) -> float:
    """One trial the book's way; returns the last epoch's validation accuracy."""
    sizes = [x.shape[1], *[100] * 6, 10]
    weights = [rng.standard_normal((a, b)) * np.sqrt(2.0 / a) for a, b in pairwise(sizes)]
    biases = [np.zeros(b) for b in sizes[1:]]
    per_epoch = max(len(x) // batch, 1)

    def forward(inputs: np.ndarray) -> list[np.ndarray]:
        hs = [inputs]
        for w, b in zip(weights[:-1], biases[:-1], strict=True):
            hs.append(np.maximum(hs[-1] @ w + b, 0.0))
        hs.append(hs[-1] @ weights[-1] + biases[-1])
        return hs

    def accuracy(inputs: np.ndarray, labels: np.ndarray) -> float:
        return float((forward(inputs)[-1].argmax(axis=1) == labels).mean())

    val = 0.0
    for i in range(epochs * per_epoch):
        pick = rng.choice(len(x), batch)  # with replacement, as the book's Trainer draws
        hs = forward(x[pick])
        logits = hs[-1] - hs[-1].max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        probs[np.arange(batch), t[pick]] -= 1.0
        grad = probs / batch
        for layer in reversed(range(len(weights))):
            dw = hs[layer].T @ grad + wd * weights[layer]
            db = grad.sum(axis=0)
            if layer > 0:
                grad = (grad @ weights[layer].T) * (hs[layer] > 0)
            weights[layer] -= lr * dw
            biases[layer] -= lr * db
        if (i + 1) % per_epoch == 0:
            accuracy(x, t)  # the book's Trainer scores the training set every epoch too
            val = accuracy(xv, tv)
    return val


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    ap.add_argument("--baseline-trials", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    config = load_config(ROOT / "examples" / "book.toml")
    with tempfile.TemporaryDirectory() as folder:
        config.study["storage"] = str(Path(folder) / "book.db")
        config.study["seed"] = args.seed
        config.data["data_dir"] = args.data_dir
        started = time.perf_counter()
        study = tune(config, progress=False, report=False)
        caviar_seconds = time.perf_counter() - started
        best = study.best_trial
        trials = study.trials(curves=False)
        study.close()

    split = prepare_data(config).split
    x, t = split.x_train.astype(np.float64), split.y_train
    xv, tv = split.x_val.astype(np.float64), split.y_val
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    vals = [
        book_trial(x, t, xv, tv, tr.params["lr"], tr.params["weight_decay"], rng)
        for tr in trials[: args.baseline_trials]
    ]
    per_trial = (time.perf_counter() - started) / args.baseline_trials
    baseline_seconds = per_trial * len(trials)

    print("book search, 100 trials, 2-core CPU" if len(trials) == 100 else "book search")
    print(
        f"caviar tune (data, 100-member population, study store): {caviar_seconds:.1f} s, "
        f"best validation accuracy {best.value:.2f} (trial {best.number}, "
        f"lr {best.params['lr']:.2g}, wd {best.params['weight_decay']:.2g})"
    )
    print(
        f"book's loop in numpy, one model at a time: {per_trial:.2f} s/trial over "
        f"{args.baseline_trials} trials -> {baseline_seconds:.1f} s for {len(trials)} "
        f"(best of those {args.baseline_trials}: {max(vals):.2f})"
    )
    print(
        f"speed-up: {baseline_seconds / caviar_seconds:.1f}x "
        f"(the book's own code: 88 s on 2 cores -> {88 / caviar_seconds:.1f}x)"
    )


if __name__ == "__main__":
    main()

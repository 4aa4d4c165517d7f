"""bn-test-time: a batch-norm net must predict with running averages, not batch statistics.

A 784-[100x3]-10 net with batch norm trains on MNIST's first 2000 images (5 epochs, Adam), then
predicts the test set in batches of 1, 2, 8, 32 and 256 using each batch's own statistics, and
with the running averages. One example alone has variance 0: every unit outputs its beta and
every example gets the same class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caviar.experiments.base import Options, Result, save_figure, table
from caviar.experiments.data import experiment_data
from caviar.experiments.train import fit, member_logits
from caviar.nn import MemberSpec, MemberState

BATCHES = (1, 2, 8, 32, 256)


def batched_accuracy(state: MemberState, x: np.ndarray, y: np.ndarray, batch: int | None) -> float:
    """Test accuracy predicting ``batch`` examples at a time with their own statistics, or
    with the running averages (``batch=None``)."""
    if batch is None:
        return float(np.mean(member_logits(state, x).argmax(1) == y))
    n = len(y) - len(y) % batch
    correct = sum(
        int(
            np.sum(
                member_logits(state, x[i : i + batch], batch_stats=True).argmax(1)
                == y[i : i + batch]
            )
        )
        for i in range(0, n, batch)
    )
    return correct / n


def run(options: Options) -> Result:
    data = experiment_data(
        options, train=2000, test=2000 if not options.quick else None, quick_train=500
    )
    n_test = min(len(data.y_test), 512)
    x, y = data.x_test[:n_test], data.y_test[:n_test]
    runs: list[dict[str, Any]] = []
    for seed in options.seeds:
        spec = MemberSpec(
            seed=seed,
            hidden_units=100,
            n_layers=3,
            batch_norm=True,
            optimizer="adam",
            lr=1e-3,
            batch_size=100,
            epochs=5,
        )
        (curve,) = fit(
            [spec],
            data.x_train,
            data.y_train,
            data_seed=seed,
            device=options.device,
            pace=options.pacer,
            keep_states=True,
        )
        assert curve.state is not None
        single = member_logits(curve.state, x[:50], batch_stats=False).argmax(1)
        runs.append(
            {
                "seed": seed,
                "running": batched_accuracy(curve.state, x, y, None),
                "batch_stats": {str(b): batched_accuracy(curve.state, x, y, b) for b in BATCHES},
                "distinct_single": len(
                    {
                        int(member_logits(curve.state, x[i : i + 1], batch_stats=True).argmax())
                        for i in range(50)
                    }
                ),
                "distinct_running": len(set(single.tolist())),
            }
        )
    rows: list[tuple[Any, ...]] = [
        (r["seed"], "running averages", "any", r["running"]) for r in runs
    ] + [
        (r["seed"], "batch statistics", b, r["batch_stats"][str(b)]) for r in runs for b in BATCHES
    ]
    notes = [
        f"way: caviar (engine training; prediction in plain torch from the member's state); "
        f"{n_test} test images; data: {data.source}",
        "one example at a time with batch statistics: "
        f"{runs[0]['distinct_single']} distinct class(es) over 50 examples "
        f"(running averages: {runs[0]['distinct_running']})",
    ]
    return Result(
        {"batches": list(BATCHES), "runs": runs, "data": data.source},
        table(["seed", "statistics", "batch", "test acc"], rows),
        notes,
    )


def mean_curve(runs: Sequence[Mapping[str, Any]], batches: Sequence[int]) -> list[float]:
    """Batch-statistics accuracy per batch size, averaged over seeds."""
    return [float(np.mean([r["batch_stats"][str(b)] for r in runs])) for b in batches]


def draw(numbers: Mapping[str, Any], path: Path) -> None:
    import matplotlib  # deferred: matplotlib, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = numbers["batches"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(batches, mean_curve(numbers["runs"], batches), "o-", label="batch statistics")
    running = float(np.mean([r["running"] for r in numbers["runs"]]))
    ax.axhline(running, color="C1", ls="--", label="running averages")
    ax.set(
        xscale="log", xlabel="examples predicted together", ylabel="test accuracy", ylim=(0, 1.02)
    )
    ax.legend()
    save_figure(fig, path, numbers)

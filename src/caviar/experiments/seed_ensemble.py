"""ensemble: members of one architecture trained with different seeds, their softmax outputs
averaged at test time, against each member alone and against dropout (which the book calls a
cheap ensemble: one net, a different thinned net each step).

784-[100x2]-10, SGD lr 0.1, batch 100, 30 epochs on MNIST's first 1000 training images; five
seed members and five dropout-0.3 members train together; all 10,000 test images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caviar.experiments.base import Options, Result, save_figure, table
from caviar.experiments.data import experiment_data
from caviar.experiments.softmax import softmax
from caviar.experiments.train import fit, member_logits
from caviar.nn import MemberSpec

MEMBERS = 5


def ensemble_accuracy(probs: Sequence[np.ndarray], y: np.ndarray) -> dict[str, Any]:
    """Each member's accuracy, their mean, and the accuracy of the averaged probabilities."""
    members = [float(np.mean(p.argmax(1) == y)) for p in probs]
    average = np.mean(np.stack(probs), axis=0)
    return {
        "members": members,
        "mean_member": float(np.mean(members)),
        "ensemble": float(np.mean(average.argmax(1) == y)),
    }


def run(options: Options) -> Result:
    quick = options.quick
    data = experiment_data(options, train=1000, quick_train=300)
    epochs = 20 if quick else 30
    runs: list[dict[str, Any]] = []
    for seed in options.seeds:
        specs = [
            MemberSpec(
                seed=seed * 100 + k,
                hidden_units=100,
                n_layers=2,
                optimizer="sgd",
                lr=0.1,
                batch_size=100,
                epochs=epochs,
                dropout=rate,
            )
            for rate in (0.0, 0.3)
            for k in range(MEMBERS)
        ]
        curves = fit(
            specs,
            data.x_train,
            data.y_train,
            data_seed=seed,
            device=options.device,
            pace=options.pacer,
            keep_states=True,
        )
        probs = [softmax(member_logits(c.state, data.x_test)) for c in curves if c.state]
        runs.append(
            {
                "seed": seed,
                "plain": ensemble_accuracy(probs[:MEMBERS], data.y_test),
                "dropout": ensemble_accuracy(probs[MEMBERS:], data.y_test),
            }
        )
    rows: list[tuple[Any, ...]] = [
        (
            r["seed"],
            kind,
            r[kind]["mean_member"],
            min(r[kind]["members"]),
            max(r[kind]["members"]),
            r[kind]["ensemble"],
        )
        for r in runs
        for kind in ("plain", "dropout")
    ]
    notes = [
        f"way: caviar; {MEMBERS} members per kind, softmax outputs averaged; "
        f"{epochs} epochs; {len(data.y_test)} test images; data: {data.source}"
    ]
    return Result(
        {"runs": runs, "data": data.source},
        table(["seed", "members", "mean", "worst", "best", "ensemble"], rows),
        notes,
    )


def draw(numbers: Mapping[str, Any], path: Path) -> None:
    import matplotlib  # deferred: matplotlib, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for i, kind in enumerate(("plain", "dropout")):
        for j, r in enumerate(numbers["runs"]):
            xs = np.full(len(r[kind]["members"]), i * 2.0) + 0.08 * j
            ax.scatter(
                xs, r[kind]["members"], color="C0", s=12, label="members" if i == j == 0 else None
            )
            ax.scatter(
                [i * 2 + 1 + 0.08 * j],
                [r[kind]["ensemble"]],
                color="C3",
                marker="*",
                s=80,
                label="ensemble (averaged softmax)" if i == j == 0 else None,
            )
    ax.set_xticks([0, 1, 2, 3], ["members", "ensemble", "dropout members", "dropout ens."])
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=8)
    save_figure(fig, path, numbers)

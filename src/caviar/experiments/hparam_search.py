"""hparam-search: the book's random search (``hyperparameter_optimization.py``), then a
coarse-to-fine second round that narrows the range around the best trials.

MNIST's first 500 training images, shuffled by the seed: 100 validation, 400 training.
784-[100x6]-10, SGD batch 100, 50 epochs per trial; lr = 10**U(-6, -2), weight decay =
10**U(-8, -4); 100 trials ranked by their FINAL-epoch validation accuracy. Round 2 samples
50 trials in the box that :class:`~caviar.samplers.CoarseToFineSampler` shrinks around the best
20 % of round 1. All trials of a round train together as one population.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.experiments.base import Options, Result, floats, save_figure, table
from caviar.experiments.data import experiment_data
from caviar.experiments.train import fit
from caviar.nn import MemberSpec
from caviar.samplers import CoarseToFineSampler
from caviar.space import LogUniform, SearchSpace


def ranking(values: Sequence[float]) -> list[int]:
    """Trial indices best first (NaN last; ties go to the lower index)."""
    return sorted(range(len(values)), key=lambda i: (np.isnan(values[i]), -values[i], i))


def value_box(box: Sequence[Sequence[float]], space: SearchSpace) -> dict[str, list[float]]:
    """A box in unit coordinates as value ranges per searched dimension."""
    return {
        name: [space[name].from_unit(lo), space[name].from_unit(hi)]
        for name, (lo, hi) in zip(space.free_names, box, strict=True)
    }


def _train_round(
    configs: list[dict[str, Any]],
    seed: int,
    data: Any,
    options: Options,
    epochs: int,
    hidden: int,
) -> list[dict[str, Any]]:
    specs = [
        MemberSpec(
            seed=seed + 1000 * i,
            hidden_units=hidden,
            n_layers=6,
            optimizer="sgd",
            batch_size=100,
            epochs=epochs,
            lr=c["lr"],
            weight_decay=c["weight_decay"],
        )
        for i, c in enumerate(configs)
    ]
    x, y, xv, yv = data
    curves = fit(
        specs,
        x,
        y,
        xv,
        yv,
        way=options.way,
        data_seed=seed,
        device=options.device,
        pace=options.pacer,
    )
    return [
        {
            **c,
            "train": k.train_accuracy,
            "val": k.test_accuracy,
            "final_val": k.final_test,
            "diverged": k.divergence,
        }
        for c, k in zip(configs, curves, strict=True)
    ]


def run(options: Options) -> Result:
    quick = options.quick
    n1, n2, epochs, hidden = (16, 8, 20, 50) if quick else (100, 50, 50, 100)
    lr_low = 1e-3 if quick else 1e-6  # --quick: 40 steps learn nothing below 1e-3
    space = SearchSpace(
        {
            "lr": LogUniform(lr_low, 1e-2 if not quick else 1.0),
            "weight_decay": LogUniform(1e-8, 1e-4),
        }
    )
    dataset = experiment_data(options, train=500, quick_train=300)
    seeds_out: list[dict[str, Any]] = []
    for seed in options.seeds:
        order = np.random.default_rng(seed).permutation(len(dataset.y_train))
        x, y = dataset.x_train[order], dataset.y_train[order]
        n_val = len(y) // 5
        data = (x[n_val:], y[n_val:], x[:n_val], y[:n_val])
        sampler = CoarseToFineSampler(rounds=2, per_round=[n1, n2], keep=0.2, seed=seed)
        proposals = [sampler.propose(space, i, [], Direction.MAXIMIZE) for i in range(n1)]
        first = _train_round(
            [space.from_unit(p.unit) for p in proposals if p is not None],
            seed,
            data,
            options,
            epochs,
            hidden,
        )
        history = [
            FrozenTrial(i, TrialState.COMPLETE, {}, p.unit, seed, t["final_val"])
            for i, (p, t) in enumerate(zip(proposals, first, strict=True))
            if p is not None
        ]
        second_props = [
            sampler.propose(space, n1 + i, history, Direction.MAXIMIZE) for i in range(n2)
        ]
        box = second_props[0].attrs["box"] if second_props[0] is not None else []
        second = _train_round(
            [space.from_unit(p.unit) for p in second_props if p is not None],
            seed,
            data,
            options,
            epochs,
            hidden,
        )
        seeds_out.append(
            {"seed": seed, "round1": first, "round2": second, "box": value_box(box, space)}
        )
    rows: list[tuple[Any, ...]] = []
    for s in seeds_out:
        for label, trials in (("round 1", s["round1"]), ("round 2", s["round2"])):
            vals = [t["final_val"] for t in trials]
            best = trials[ranking(vals)[0]]
            rows.append(
                (
                    s["seed"],
                    label,
                    len(trials),
                    best["final_val"],
                    best["lr"],
                    best["weight_decay"],
                    float(np.nanmedian(vals)),
                )
            )
    top = [
        s["round1"][i]["lr"]
        for s in seeds_out
        for i in ranking([t["final_val"] for t in s["round1"]])[: max(1, n1 // 5)]
    ]
    notes = [
        f"way: {options.way}; {epochs} epochs per trial, ranked by final-epoch validation "
        f"accuracy; lr 10**U({np.log10(lr_low):.0f}, {np.log10(space['lr'].high):.0f}); "  # type: ignore[attr-defined]
        f"data: {dataset.source}",
        f"round 1 top {max(1, n1 // 5)} lrs in [{min(top):.2g}, {max(top):.2g}]; round 2 box: "
        + ", ".join(f"{k} [{a:.2g}, {b:.2g}]" for k, (a, b) in seeds_out[-1]["box"].items()),
        "book, seed 0: best val 0.87 (lr 8.8e-3, wd 7.4e-6), top-20 lrs in [2.6e-3, 9.7e-3], "
        "median trial 0.12; seed 1: best 0.80",
    ]
    diverged = [t for s in seeds_out for r in ("round1", "round2") for t in s[r] if t["diverged"]]
    if diverged:
        notes.append(
            f"{len(diverged)} trial(s) diverged (a non-finite loss; the engine froze them), at lr "
            + ", ".join(f"{t['lr']:.2g}" for t in diverged)
            + ": ranked last; their accuracies are null in the JSON, each says its epoch"
        )
    return Result(
        numbers={"seeds": seeds_out, "epochs": epochs, "data": dataset.source},
        table=table(["seed", "round", "trials", "best val", "lr", "wd", "median val"], rows),
        notes=notes,
    )


def draw(numbers: Mapping[str, Any], path: Path) -> None:
    """The first seed's top 20 of round 1 in rows of 4 (validation solid, training dashed; as
    many rows as there are trials), and both rounds' final validation accuracy against lr."""
    import matplotlib  # deferred: matplotlib, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = numbers["seeds"][0]
    trials = first["round1"]
    best = ranking(floats([t["final_val"] for t in trials]).tolist())[:20]
    rows = -(-len(best) // 4)  # as many rows of curves as the top trials fill, then the scatter
    fig = plt.figure(figsize=(11, 1.5 * rows + 2.4))
    grid = fig.add_gridspec(rows + 1, 4, height_ratios=[1] * rows + [1.4])
    for rank, i in enumerate(best):
        ax = fig.add_subplot(grid[rank // 4, rank % 4])
        t = trials[i]
        ax.plot(floats(t["val"]), color="C0", label="validation")
        ax.plot(floats(t["train"]), "--", color="C1", label="training")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"#{rank + 1} lr {t['lr']:.1e} wd {t['weight_decay']:.0e}", fontsize=7)
        ax.tick_params(labelsize=6)
        if rank == 0:
            ax.legend(fontsize=6, loc="lower right")
    ax = fig.add_subplot(grid[rows, :])
    for label, colour in (("round1", "C0"), ("round2", "C3")):
        ts = first[label]
        ax.scatter(
            [t["lr"] for t in ts],
            floats([t["final_val"] for t in ts]),
            s=10,
            color=colour,
            label=label.replace("round", "round "),
        )
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final val acc")
    ax.legend(fontsize=7)
    save_figure(fig, path, numbers)

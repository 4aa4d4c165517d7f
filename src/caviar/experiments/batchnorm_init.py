"""batchnorm-init: batch norm rescues bad weight scales (the book's ``batch_norm_test.py``).

784-[100x5]-10 nets on MNIST's first 1000 training images, SGD lr 0.01, batch 100, 20 epochs,
every weight matrix drawn with std in logspace(0, -4, 16), with and without batch norm: all 32
variants train together. The figure shows training accuracy per epoch (the whole training
set, test mode: the book's measure) in a 4x4 grid of panels, one per scale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caviar.experiments.base import Options, Result, floats, save_figure, table
from caviar.experiments.data import experiment_data
from caviar.experiments.train import fit
from caviar.nn import MemberSpec


def scales(n: int) -> list[float]:
    """The init stds: ``logspace(0, -4, n)``."""
    return [float(s) for s in np.logspace(0, -4, n)]


def summarise(bn: Sequence[Sequence[float]], plain: Sequence[Sequence[float]]) -> dict[str, Any]:
    """Final accuracies [seed][scale] with and without batch norm -> per-scale means, and at
    how many scales each side wins on the seed mean (NaN, a diverged net, loses)."""
    bn_mean = np.mean(np.asarray(bn, dtype=float), axis=0)
    plain_mean = np.mean(np.asarray(plain, dtype=float), axis=0)
    a, b = np.nan_to_num(bn_mean, nan=-1.0), np.nan_to_num(plain_mean, nan=-1.0)  # NaN: diverged
    return {
        "bn_mean": bn_mean.tolist(),
        "plain_mean": plain_mean.tolist(),
        "bn_wins": int(np.sum(a > b)),
        "plain_wins": int(np.sum(b > a)),
    }


def _winner(bn: float, plain: float) -> str:
    a, b = np.nan_to_num([bn, plain], nan=-1.0)
    return "bn" if a > b else "no-bn" if b > a else "tie"


def run(options: Options) -> Result:
    quick = options.quick
    data = experiment_data(options, train=1000, quick_train=500)
    stds = scales(8 if quick else 16)
    hidden, epochs = (50, 20) if quick else (100, 20)
    curves_bn: list[list[list[float]]] = []
    curves_plain: list[list[list[float]]] = []
    diverged: list[str] = []
    for seed in options.seeds:
        specs = [
            MemberSpec(
                seed=seed,
                hidden_units=hidden,
                n_layers=5,
                optimizer="sgd",
                lr=0.01,
                batch_size=100,
                epochs=epochs,
                init="std",
                init_std=std,
                batch_norm=bn,
                bn_eps=1e-6,
            )
            for bn in (True, False)
            for std in stds
        ]
        n = len(stds)
        if options.way == "book":  # the book's loop stacks one architecture at a time
            curves = [
                c
                for part in (specs[:n], specs[n:])
                for c in fit(
                    part,
                    data.x_train,
                    data.y_train,
                    way="book",
                    data_seed=seed,
                    pace=options.pacer,
                )
            ]
        else:
            curves = fit(
                specs,
                data.x_train,
                data.y_train,
                data_seed=seed,
                device=options.device,
                pace=options.pacer,
            )
        curves_bn.append([c.train_accuracy for c in curves[:n]])
        curves_plain.append([c.train_accuracy for c in curves[n:]])
        diverged += [
            f"{'batch norm' if spec.batch_norm else 'no batch norm'}, W std {spec.init_std:.2g}, "
            f"seed {seed}: {c.divergence}"
            for spec, c in zip(specs, curves, strict=True)
            if c.divergence is not None
        ]
    bn_final = [[c[-1] for c in per_seed] for per_seed in curves_bn]
    plain_final = [[c[-1] for c in per_seed] for per_seed in curves_plain]
    summary = summarise(bn_final, plain_final)
    rows = [
        (
            f"{std:.2g}",
            summary["bn_mean"][i],
            summary["plain_mean"][i],
            _winner(summary["bn_mean"][i], summary["plain_mean"][i]),
        )
        for i, std in enumerate(stds)
    ]
    notes = [
        f"way: {options.way}; training accuracy over all {len(data.y_train)} training images "
        f"after each epoch (test mode); data: {data.source}",
        f"batch norm wins at {summary['bn_wins']}/{len(stds)} scales "
        "(book, 3 seeds: 14/16, no-BN only at std 0.29 and 0.16)",
    ]
    if diverged:  # the book's loop never freezes a net: it goes on predicting one class
        notes.append(
            "-: diverged (a non-finite loss; the engine freezes the member), where the book's "
            "numpy net goes on predicting one class (accuracy about 0.10): " + "; ".join(diverged)
        )
    return Result(
        numbers={
            "stds": stds,
            "curves_bn": curves_bn,
            "curves_plain": curves_plain,
            "final_bn": bn_final,
            "final_plain": plain_final,
            **summary,
            "diverged": diverged,
            "data": data.source,
        },
        table=table(["init std", "BN acc", "no-BN acc", "wins"], rows),
        notes=notes,
    )


def last_finite(curve: Sequence[float]) -> tuple[int, float] | None:
    """The epoch (from 1) and value of a curve's last finite point, if a NaN (a diverged
    member) follows it; None for a curve that ends finite or has no finite point."""
    values = np.asarray(curve, dtype=float)
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) == 0 or finite[-1] == len(values) - 1:
        return None
    return int(finite[-1]) + 1, float(values[finite[-1]])


def draw(numbers: Mapping[str, Any], path: Path) -> None:
    """Training accuracy per epoch, one panel per init scale (seed mean); a net that diverged
    (in any seed) ends in an x at its last finite point."""
    import matplotlib  # deferred: matplotlib, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stds = numbers["stds"]
    cols = 4
    rows = (len(stds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(10, 2.2 * rows), sharex=True, sharey=True)
    bn = np.mean(floats(numbers["curves_bn"]), axis=0)
    plain = np.mean(floats(numbers["curves_plain"]), axis=0)
    marked = False
    for i, ax in enumerate(np.asarray(axes).ravel()):
        if i >= len(stds):
            ax.axis("off")
            continue
        epochs = np.arange(1, len(bn[i]) + 1)
        for curve, style, colour, label in (
            (bn[i], "-", "C0", "batch norm"),
            (plain[i], "--", "C1", "no batch norm"),
        ):
            ax.plot(epochs, curve, style, color=colour, label=label)
            end = last_finite(curve)
            if end is not None:
                ax.plot(*end, "x", color=colour, ms=8, mew=2, label=None if marked else "diverged")
                marked = True
        ax.set_title(f"W std {stds[i]:.2g}", fontsize=9)
        ax.set_ylim(0, 1.02)
    shown: dict[str, Any] = {}  # one legend for every panel: each kind of line once
    for ax in np.asarray(axes).ravel():
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            shown.setdefault(label, handle)
    np.asarray(axes).ravel()[0].legend(list(shown.values()), list(shown), fontsize=7)
    fig.supxlabel("epoch")
    fig.supylabel("training accuracy")
    save_figure(fig, path, numbers)

"""random-vs-grid, log-vs-linear, beta-scale: where to put the trials (the course's tuning
lessons). Each samples configurations with caviar's own samplers and dimensions, trains them
all as one population on a small MNIST problem (first 2000 training images, the next 500 for
validation, 784-100-10, 5 epochs) and reports the best each way found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from caviar.core.records import Direction
from caviar.data import Dataset
from caviar.experiments.base import Options, Result, floats, save_figure, table
from caviar.experiments.data import experiment_data
from caviar.experiments.train import fit
from caviar.nn import MemberSpec
from caviar.samplers import GridSampler, RandomSampler, Sampler
from caviar.space import LogUniform, OneMinusLog, SearchSpace, Uniform


# -- plot data (pure) ------------------------------------------------------------------------
def best_so_far(values: Sequence[float]) -> list[float]:
    """The best value among the first k trials, for k = 1..n (NaN counts as no result)."""
    out, best = [], -math.inf
    for v in values:
        best = v if not math.isnan(v) and v > best else best
        out.append(best if best > -math.inf else math.nan)
    return out


def decade_shares(values: Sequence[float], low: float, high: float) -> list[float]:
    """The fraction of ``values`` in each decade [10**k, 10**(k+1)) from ``low`` to ``high``."""
    edges = 10.0 ** np.arange(round(math.log10(low)), round(math.log10(high)) + 1)
    counts, _ = np.histogram(values, bins=edges)
    return [float(c) / len(values) for c in counts]


def windows(betas: Sequence[float]) -> list[float]:
    """The averaging window 1 / (1 - beta) each momentum beta implies."""
    return [1.0 / (1.0 - b) for b in betas]


def sample(sampler: Sampler, space: SearchSpace, n: int) -> list[dict[str, Any]]:
    """The first ``n`` configurations ``sampler`` proposes (fewer if it runs out)."""
    configs = []
    for i in range(n):
        p = sampler.propose(space, i, [], Direction.MAXIMIZE)
        if p is None:
            break
        configs.append(space.from_unit(p.unit))
    return configs


# -- training --------------------------------------------------------------------------------
def _data(options: Options) -> Dataset:
    """The first 2500 MNIST images (2000 train, 500 validation), or 500 with ``--quick``."""
    return experiment_data(options, train=2500, quick_train=500)


def _scores(
    configs: list[dict[str, Any]], base: dict[str, Any], options: Options, seed: int
) -> tuple[list[float], list[str | None]]:
    """Final validation accuracy of every configuration, trained together (NaN for a net that
    diverged), and where each diverged (None for the others)."""
    data = _data(options)
    n_val = len(data.y_train) // 5
    x, y = data.x_train, data.y_train
    epochs = 10 if options.quick else 5
    specs = [
        MemberSpec(
            seed=seed, hidden_units=100, n_layers=1, batch_size=100, epochs=epochs, **base, **c
        )
        for c in configs
    ]
    curves = fit(
        specs,
        x[:-n_val],
        y[:-n_val],
        x[-n_val:],
        y[-n_val:],
        data_seed=seed,
        device=options.device,
        pace=options.pacer,
        test_every=epochs,
    )
    return [c.final_test for c in curves], [c.divergence for c in curves]


def _two_ways(
    spaces: tuple[SearchSpace, SearchSpace],
    samplers: Sequence[Sampler],
    n: int,
    base: dict[str, Any],
    options: Options,
    seed: int,
) -> tuple[list[list[dict[str, Any]]], list[list[float]], list[dict[str, str]]]:
    """Each way's configurations and final validation accuracies, and the trials (by index,
    from 0) that diverged, in words."""
    configs = [sample(s, sp, n) for s, sp in zip(samplers, spaces, strict=True)]
    scores, words = _scores(configs[0] + configs[1], base, options, seed)
    k = len(configs[0])
    diverged = [
        {str(i): w for i, w in enumerate(part) if w is not None} for part in (words[:k], words[k:])
    ]
    return configs, [scores[:k], scores[k:]], diverged


# -- the three experiments -------------------------------------------------------------------
def run_random_vs_grid(options: Options) -> Result:
    """25 trials on (lr, Adam's eps): a 5x5 grid tries 5 learning rates, random search 25."""
    space = SearchSpace({"lr": LogUniform(1e-5, 1e-1), "eps": LogUniform(1e-8, 1e-4)})
    runs: list[dict[str, Any]] = []
    for seed in options.seeds:
        (grid, rand), (g, r), (dg, dr) = _two_ways(
            (space, space),
            [GridSampler(5), RandomSampler(seed)],
            25,
            {"optimizer": "adam"},
            options,
            seed,
        )
        runs.append(
            {
                "seed": seed,
                "grid": {"configs": grid, "val": g, "best": best_so_far(g), "diverged": dg},
                "random": {"configs": rand, "val": r, "best": best_so_far(r), "diverged": dr},
            }
        )
    rows: list[tuple[Any, ...]] = [
        (way, len({c["lr"] for c in run[way]["configs"]}), run["seed"], run[way]["best"][-1])
        for run in runs
        for way in ("grid", "random")
    ]
    notes = [
        "way: caviar; best validation accuracy after 25 trials on lr in [1e-5, 1e-1] "
        "and Adam eps in [1e-8, 1e-4] (eps barely matters)"
    ]
    return Result(
        {"runs": runs, "data": _data(options).source},
        table(["search", "distinct lrs", "seed", "best val"], rows),
        notes,
    )


def run_log_vs_linear(options: Options) -> Result:
    """The learning rate on [1e-4, 1], sampled linearly and on a log scale."""
    linear = SearchSpace({"lr": Uniform(1e-4, 1.0)})
    log = SearchSpace({"lr": LogUniform(1e-4, 1.0)})
    n = 12 if options.quick else 25
    runs: list[dict[str, Any]] = []
    for seed in options.seeds:
        many = [[c["lr"] for c in sample(RandomSampler(seed), sp, 1000)] for sp in (linear, log)]
        (lin_c, log_c), (a, b), (da, db) = _two_ways(
            (linear, log),
            [RandomSampler(seed), RandomSampler(seed)],
            n,
            {"optimizer": "adam"},
            options,
            seed,
        )
        runs.append(
            {
                "seed": seed,
                "linear": {
                    "samples": many[0],
                    "shares": decade_shares(many[0], 1e-4, 1.0),
                    "configs": lin_c,
                    "val": a,
                    "diverged": da,
                },
                "log": {
                    "samples": many[1],
                    "shares": decade_shares(many[1], 1e-4, 1.0),
                    "configs": log_c,
                    "val": b,
                    "diverged": db,
                },
            }
        )
    rows: list[tuple[Any, ...]] = [
        (scale, run["seed"], *run[scale]["shares"], float(np.nanmax(run[scale]["val"])))
        for run in runs
        for scale in ("linear", "log")
    ]
    header = ["scale", "seed", "[1e-4,1e-3)", "[1e-3,1e-2)", "[1e-2,0.1)", "[0.1,1]", "best val"]
    notes = [f"way: caviar; shares of 1000 samples per decade; best of {n} Adam trials"]
    return Result({"runs": runs, "data": _data(options).source}, table(header, rows), notes)


def run_beta_scale(options: Options) -> Result:
    """Momentum beta on [0.9, 0.999], linearly and as 1 - 10**r."""
    linear = SearchSpace({"beta1": Uniform(0.9, 0.999)})
    scaled = SearchSpace({"beta1": OneMinusLog(0.9, 0.999)})
    n = 12 if options.quick else 25
    runs: list[dict[str, Any]] = []
    for seed in options.seeds:
        many = [
            [c["beta1"] for c in sample(RandomSampler(seed), sp, 1000)] for sp in (linear, scaled)
        ]
        (lin_c, one_c), (a, b), (da, db) = _two_ways(
            (linear, scaled),
            [RandomSampler(seed), RandomSampler(seed)],
            n,
            {"optimizer": "momentum", "lr": 0.1},
            options,
            seed,
        )
        runs.append(
            {
                "seed": seed,
                "linear": {
                    "samples": many[0],
                    "windows": windows(many[0]),
                    "configs": lin_c,
                    "val": a,
                    "diverged": da,
                },
                "one_minus": {
                    "samples": many[1],
                    "windows": windows(many[1]),
                    "configs": one_c,
                    "val": b,
                    "diverged": db,
                },
            }
        )
    rows: list[tuple[Any, ...]] = [
        (
            scale,
            run["seed"],
            float(np.mean(np.asarray(run[scale]["samples"]) > 0.99)),
            float(np.median(run[scale]["windows"])),
            float(np.nanmax(run[scale]["val"])),
        )
        for run in runs
        for scale in ("linear", "one_minus")
    ]
    notes = [f"way: caviar; momentum (v = beta v + (1 - beta) g), lr 0.1; best of {n} trials"]
    return Result(
        {"runs": runs, "data": _data(options).source},
        table(["scale", "seed", "share > 0.99", "median window", "best val"], rows),
        notes,
    )


# -- figures ---------------------------------------------------------------------------------
def _pyplot() -> Any:
    import matplotlib  # deferred: matplotlib, only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_random_vs_grid(numbers: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    run = numbers["runs"][0]
    for way, marker in (("grid", "s"), ("random", "o")):
        cs = run[way]["configs"]
        a.scatter([c["lr"] for c in cs], [c["eps"] for c in cs], marker=marker, label=way)
        best = np.mean(floats([r[way]["best"] for r in numbers["runs"]]), axis=0)
        b.plot(np.arange(1, len(best) + 1), best, label=way)
    a.set(xscale="log", yscale="log", xlabel="learning rate", ylabel="Adam eps")
    b.set(xlabel="trials", ylabel="best val acc (seed mean)")
    # above the panel: the 50 points fill the plane, so no corner inside it is free
    a.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, fontsize=8, frameon=False)
    b.legend(loc="best")
    save_figure(fig, path, numbers)


def draw_log_vs_linear(numbers: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    run = numbers["runs"][0]
    bins = np.logspace(-4, 0, 17)
    for scale in ("linear", "log"):
        a.hist(run[scale]["samples"], bins=bins, alpha=0.6, label=scale)
        cs = run[scale]["configs"]
        b.scatter([c["lr"] for c in cs], floats(run[scale]["val"]), label=scale)
    a.set(xscale="log", xlabel="learning rate", ylabel="samples (of 1000)")
    b.set(xscale="log", xlabel="learning rate", ylabel="final val acc (Adam)")
    a.legend()
    b.legend()
    save_figure(fig, path, numbers)


def draw_beta_scale(numbers: Mapping[str, Any], path: Path) -> None:
    plt = _pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    run = numbers["runs"][0]
    bins = np.logspace(1, 3, 17)
    for scale in ("linear", "one_minus"):
        label = "linear" if scale == "linear" else "1 - 10**r"
        a.hist(run[scale]["windows"], bins=bins, alpha=0.6, label=label)
        cs = run[scale]["configs"]
        b.scatter([1 / (1 - c["beta1"]) for c in cs], floats(run[scale]["val"]), label=label)
    a.set(xscale="log", xlabel="window 1 / (1 - beta)", ylabel="samples (of 1000)")
    b.set(xscale="log", xlabel="window 1 / (1 - beta)", ylabel="final val acc (momentum)")
    a.legend()
    b.legend()
    save_figure(fig, path, numbers)

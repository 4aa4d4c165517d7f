"""A search within a wall-clock budget: caviar against a plain per-model PyTorch random search and
Optuna's TPE with median pruning, each side given the same seconds, measured in the same run.

The space is the realistic one: 784-[hidden_units x n_layers]-10, Linear -> batch norm -> ReLU ->
dropout per hidden layer, Adam, batch 128, 5 epochs; hidden_units int 32..256, n_layers int 1..4,
dropout linear 0..0.5, lr log 1e-4..0.3, beta1 one_minus_log 0.8..0.99, weight_decay log
1e-7..1e-3. Data: the first --train-size MNIST training images (default all 60000), 20 % held out
for validation by caviar.data.split_validation (the split caviar makes itself, so every side
trains and validates on the same examples), and the 10000 test images.

Sides:
  caviar            caviar.tune, random search, a pool of --population members (default:
                    caviar's own choice, sized from the measured pace so that a trial can
                    finish within 15 % of the budget; at most 16 on a CPU, 1024 on a GPU),
                    search.timeout = the budget, study.threads = the baselines' thread count
  caviar halving    the same with successive halving (search.halving: min_epochs 1, eta 3)
  caviar ... worker processes   (--workers) both caviar sides again, on one worker process
                    per core, one thread each (search.devices = cpu,cpu on 2 cores)
  loop              one nn.Sequential and one torch.optim.Adam(weight_decay=...) per trial,
                    configurations drawn with numpy on the same scales, data as tensors in
                    memory, validation accuracy after every epoch
  optuna            the same loop per trial under TPE + MedianPruner (validation accuracy reported
                    every epoch), study.optimize(timeout=budget); only if optuna is installed
                    (pip install 'caviar-tune[bench]')

Counted per side: configurations tried (trials that trained at least one epoch), model-epochs
(epochs trained, summed over trials; a trial running at the deadline is cut and counts the epochs
it finished; caviar requeues such trials and drops their stored curves, so their epochs are
collected as the search reports them), model-epochs per second of measured wall time, the best
validation accuracy among trials that ran all their epochs (a trial's value is its last epoch's,
the ranking of caviar's objective "final") and the test accuracy of that best model, measured once
after the budget. Caviar's wall time includes its own data loading and study store; the baselines
get the data ready-made. One run per side, one after the other, after an untimed warm-up trial.

    python benchmarks/budget.py --data-dir ../shared/datasets/mnist             # 150 s a side
    python benchmarks/budget.py --seconds 20 --train-size 6000 --skip-optuna    # smoke run
    python benchmarks/budget.py --seeds 6 --skip-flat --skip-optuna  # halving vs loop, 6 seeds
    python benchmarks/budget.py --workers --busy 1 --threads 1 --skip-optuna  # a shared machine

One seed's run says little about best accuracies: the two sides draw different configurations,
and 0.001 is 12 validation examples. --seeds N runs every side for N seeds (the split, caviar's
study and the loop's draws change with it) and ends with caviar with halving against the loop
seed by seed, with the medians.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

import caviar
from caviar.core.threads import machine_cores
from caviar.data import load_dataset, split_validation
from caviar.nn import resolve_device
from caviar.study import EpochRecord, Study, Trial

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, BATCH, BETA2 = 5, 128, 0.999
FIXED: dict[str, Any] = {
    "optimizer": "adam",
    "batch_norm": True,
    "activation": "relu",
    "batch_size": BATCH,
    "epochs": EPOCHS,
}
SPACE: dict[str, dict[str, Any]] = {
    "hidden_units": {"scale": "int", "low": 32, "high": 256},
    "n_layers": {"scale": "int", "low": 1, "high": 4},
    "dropout": {"scale": "linear", "low": 0.0, "high": 0.5},
    "lr": {"scale": "log", "low": 1e-4, "high": 3e-1},
    "beta1": {"scale": "one_minus_log", "low": 0.8, "high": 0.99},
    "weight_decay": {"scale": "log", "low": 1e-7, "high": 1e-3},
}
HALVING = {"min_epochs": 1, "eta": 3}


@dataclass(frozen=True)
class Data:
    """Tensors on the device: the training part, the validation part, the test set."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor


@dataclass(frozen=True)
class Row:
    """One side's result."""

    side: str
    configurations: int
    model_epochs: int
    seconds: float
    best_val: float
    test: float
    first_complete: float = math.nan  # seconds from the side's start to its first full trial

    @property
    def rate(self) -> float:
        return self.model_epochs / self.seconds


def load(args: argparse.Namespace, device: torch.device) -> Data:
    ds = load_dataset(
        "mnist", data_dir=args.data_dir, train_size=args.train_size, test_size=args.test_size
    )
    split = split_validation(ds.x_train, ds.y_train, 0.2, seed=args.seed)

    def put(x: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
        return (
            torch.as_tensor(x, dtype=torch.float32, device=device),
            torch.as_tensor(y, dtype=torch.int64, device=device),
        )

    return Data(
        *put(split.x_train, split.y_train),
        *put(split.x_val, split.y_val),
        *put(ds.x_test, ds.y_test),
    )


# -- the plain loop: one model at a time -----------------------------------------------------------


def draw(rng: np.random.Generator) -> dict[str, Any]:
    """A configuration drawn with numpy on the space's scales."""
    params: dict[str, Any] = {}
    for name, dim in SPACE.items():
        low, high = dim["low"], dim["high"]
        if dim["scale"] == "int":
            params[name] = int(rng.integers(low, high + 1))
        elif dim["scale"] == "linear":
            params[name] = float(rng.uniform(low, high))
        elif dim["scale"] == "log":
            params[name] = float(10 ** rng.uniform(math.log10(low), math.log10(high)))
        else:  # one_minus_log: 1 - beta log-uniform
            params[name] = float(1 - 10 ** rng.uniform(math.log10(1 - high), math.log10(1 - low)))
    return params


def make_net(params: Mapping[str, Any], n_inputs: int, n_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = n_inputs
    for _ in range(params["n_layers"]):
        layers += [
            nn.Linear(width, params["hidden_units"], bias=False),
            nn.BatchNorm1d(params["hidden_units"]),
            nn.ReLU(),
            nn.Dropout(params["dropout"]),
        ]
        width = params["hidden_units"]
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    hits = sum(
        int((model(x[i : i + 4096]).argmax(1) == y[i : i + 4096]).sum())
        for i in range(0, len(y), 4096)
    )
    model.train()
    return hits / len(y)


@dataclass
class Outcome:
    epochs: int
    val: float
    model: nn.Module


def train_trial(
    params: Mapping[str, Any],
    data: Data,
    deadline: float,
    seed: int,
    on_epoch: Callable[[int, float], bool] | None = None,
) -> Outcome:
    """Train one configuration until its last epoch, the deadline (the epoch under way is
    lost), or ``on_epoch(epoch, val_accuracy)`` returning True (pruned)."""
    torch.manual_seed(seed)
    device = data.x_train.device
    model = make_net(params, data.x_train.shape[1], 10).to(device)
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=params["lr"],
        betas=(params["beta1"], BETA2),
        weight_decay=params["weight_decay"],
    )
    n = len(data.y_train)
    outcome = Outcome(0, math.nan, model)
    for epoch in range(EPOCHS):
        order = torch.randperm(n, device=device)
        for lo in range(0, n - 1, BATCH):  # no batch of one example: batch norm needs two
            if time.perf_counter() > deadline:
                return outcome
            index = order[lo : lo + BATCH]
            loss = F.cross_entropy(model(data.x_train[index]), data.y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        outcome.epochs, outcome.val = epoch + 1, accuracy(model, data.x_val, data.y_val)
        if on_epoch is not None and on_epoch(epoch, outcome.val):
            break
    return outcome


class Tally:
    """Configurations, model-epochs and the best model (by last-epoch validation accuracy)."""

    def __init__(self) -> None:
        self.configurations = self.model_epochs = 0
        self.best_val = -math.inf
        self.best_model: nn.Module | None = None
        self.started = time.perf_counter()
        self.first_complete = math.nan

    def add(self, outcome: Outcome, pruned: bool = False) -> None:
        """Count a trial; only one that ran all its epochs (not pruned, not cut) may be best,
        as only complete trials rank in caviar's study."""
        if outcome.epochs == 0:
            return
        self.configurations += 1
        self.model_epochs += outcome.epochs
        if not pruned and outcome.epochs == EPOCHS and math.isnan(self.first_complete):
            self.first_complete = time.perf_counter() - self.started
        if not pruned and outcome.epochs == EPOCHS and outcome.val > self.best_val:
            self.best_val, self.best_model = outcome.val, outcome.model

    def row(self, side: str, seconds: float, data: Data) -> Row:
        test = math.nan
        if self.best_model is not None:
            test = accuracy(self.best_model, data.x_test, data.y_test)
        best = self.best_val if self.best_model is not None else math.nan
        return Row(
            side, self.configurations, self.model_epochs, seconds, best, test, self.first_complete
        )


def warm_up(data: Data) -> None:
    """A small untimed trial first: the first steps in a process pay for thread pools, kernel
    choice and the allocator (over a second on a CPU), which no side should pay in its budget."""
    n = 512
    small = Data(
        data.x_train[:n],
        data.y_train[:n],
        data.x_val[:n],
        data.y_val[:n],
        data.x_test[:n],
        data.y_test[:n],
    )
    params = {"hidden_units": 256, "n_layers": 4, "dropout": 0.1, "lr": 1e-3, "beta1": 0.9}
    train_trial({**params, "weight_decay": 1e-5}, small, math.inf, seed=0)


def run_loop(data: Data, seconds: float, seed: int) -> Row:
    rng = np.random.default_rng(seed)
    tally = Tally()
    started = time.perf_counter()
    deadline = started + seconds
    trial = 0
    while time.perf_counter() < deadline:
        tally.add(train_trial(draw(rng), data, deadline, seed=seed * 1_000_003 + trial))
        trial += 1
    return tally.row("plain PyTorch loop, random", time.perf_counter() - started, data)


def run_optuna(
    data: Data,
    seconds: float,
    seed: int,
    *,
    random: bool = False,
    side: str = "Optuna TPE + median pruner",
) -> Row:
    """The loop per trial under Optuna: TPE with the median pruner, or (``random``) Optuna's
    random sampler with no pruner."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if random:
        sampler: optuna.samplers.BaseSampler = optuna.samplers.RandomSampler(seed=seed)
        pruner: optuna.pruners.BasePruner = optuna.pruners.NopPruner()
    else:
        sampler, pruner = optuna.samplers.TPESampler(seed=seed), optuna.pruners.MedianPruner()
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    tally = Tally()

    def suggest(trial: optuna.Trial, name: str, dim: Mapping[str, Any]) -> Any:
        low, high = dim["low"], dim["high"]
        if dim["scale"] == "int":
            return trial.suggest_int(name, low, high)
        if dim["scale"] == "one_minus_log":
            return 1 - trial.suggest_float(f"1-{name}", 1 - high, 1 - low, log=True)
        return trial.suggest_float(name, low, high, log=dim["scale"] == "log")

    def objective(trial: optuna.Trial) -> float:
        params = {name: suggest(trial, name, dim) for name, dim in SPACE.items()}
        pruned = False

        def report(epoch: int, val: float) -> bool:
            nonlocal pruned
            trial.report(val, epoch)
            pruned = trial.should_prune()
            return pruned

        outcome = train_trial(params, data, deadline, seed * 1_000_003 + trial.number, report)
        tally.add(outcome, pruned)
        if pruned or outcome.epochs < EPOCHS:  # pruned, or cut at the deadline
            raise optuna.TrialPruned()
        return outcome.val

    started = time.perf_counter()
    deadline = started + seconds
    study.optimize(objective, timeout=seconds)
    return tally.row(side, time.perf_counter() - started, data)


# -- caviar ----------------------------------------------------------------------------------------


def run_caviar(
    args: argparse.Namespace, folder: Path, halving: bool, notes: list[str], workers: bool = False
) -> Row:
    name = ("budget-halving" if halving else "budget") + ("-workers" if workers else "")
    search: dict[str, Any] = {
        "sampler": "random",
        "trials": 100_000,
        "population": args.population,
        "timeout": args.seconds,
    }
    if halving:
        search["halving"] = dict(HALVING)
    table: dict[str, Any] = {
        "name": name,
        "storage": str(folder / f"{name}.db"),
        "seed": args.seed,
        "device": args.device,
        # the baselines' count, not "auto" (free cores), unless the run shares the machine
        # on purpose (--busy): then caviar's default, as a user gets it
        "threads": "auto" if args.busy else torch.get_num_threads(),
    }
    if workers:  # one worker process per core, one thread each
        table["threads"] = 1
        search["devices"] = ["cpu"] * machine_cores()
    mapping = {
        "study": table,
        "data": {
            "dataset": "mnist",
            "data_dir": args.data_dir,
            "train_size": args.train_size,
            "test_size": args.test_size,
            "validation": 0.2,
        },
        "space": {**FIXED, **SPACE},
        "search": search,
    }
    threads = torch.get_num_threads()
    trained: set[tuple[int, int]] = set()  # (trial, epoch) as the search reports them
    started, wall_started = time.perf_counter(), time.time()
    with reported_epochs(trained):
        study = caviar.tune(mapping, progress=False, report=False)
    seconds = time.perf_counter() - started
    try:
        trials = study.trials()
        best = study.best_trial
        test = math.nan
        if best is not None:
            test = float(caviar.evaluate_on_test(study, mode="as-trained")["accuracy"])
    finally:
        study.close()
        torch.set_num_threads(threads)  # caviar sets torch's thread count for its run
    complete = [t.finished for t in trials if t.state.value == "complete" and t.finished]
    first = min(complete) - wall_started if complete else math.nan
    pool = args.population or "auto"
    side = f"caviar, P={pool}" + (
        f", halving (min_epochs {HALVING['min_epochs']}, eta {HALVING['eta']})" if halving else ""
    )
    if workers:
        side += f", {machine_cores()} worker processes"
    kept = {(t.number, r.epoch) for t in trials for r in t.curve}
    trained |= kept
    if trained != kept:
        notes.append(
            f"- {side}: {len(trained - kept)} epochs of "
            f"{len({n for n, _ in trained - kept})} trials cut at the deadline were trained but "
            f"not kept (caviar requeues them, curves dropped); counted above, as the loop counts "
            f"its cut trial's epochs. Kept in the study: {len({n for n, _ in kept})} "
            f"configurations, {len(kept)} model-epochs"
        )
    return Row(
        side,
        len({n for n, _ in trained}),
        len(trained),
        seconds,
        math.nan if best is None or best.value is None else float(best.value),
        test,
        first,
    )


@contextlib.contextmanager
def reported_epochs(seen: set[tuple[int, int]]) -> Iterator[None]:
    """Collect every (trial, epoch) the search reports to its study, including those of trials
    that the timeout sends back to the queue, whose stored curves caviar then deletes."""
    original = Study.report_epochs

    def report_epochs(self: Study, rows: Iterable[tuple[Trial | int, EpochRecord]]) -> None:
        rows = list(rows)
        seen.update((t if isinstance(t, int) else t.number, r.epoch) for t, r in rows)
        original(self, rows)

    Study.report_epochs = report_epochs  # type: ignore[method-assign]
    try:
        yield
    finally:
        Study.report_epochs = original  # type: ignore[method-assign]


# -- report ----------------------------------------------------------------------------------------


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"


@contextlib.contextmanager
def spinners(n: int) -> Iterator[None]:
    """``n`` processes that each keep one core busy until the block ends: other work sharing
    the machine (--busy)."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def others_busy(seconds: float = 1.0) -> float | None:
    """Cores that other processes keep busy, measured over ``seconds`` from /proc/stat."""

    def busy() -> float:
        ticks = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle, iowait

    try:
        before, own = busy(), time.process_time()
        time.sleep(seconds)
        return max(0.0, (busy() - before - (time.process_time() - own)) / seconds)
    except (OSError, ValueError, IndexError):
        return None


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| side | configurations | model-epochs | wall s | model-epochs/s | first full trial "
        "at s | best val acc | test acc of best |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.side} | {r.configurations} | {r.model_epochs} | {r.seconds:.1f} | "
            f"{r.rate:.2f} | {r.first_complete:.1f} | {r.best_val:.4f} | {r.test:.4f} |"
        )
    return lines


def ratios(plain: Row | None, flat: Row | None, halved: Row | None) -> list[str]:
    if plain is None or plain.model_epochs == 0:
        return []
    lines = []
    if flat is not None:
        lines.append(
            f"- caviar without halving, model-epochs/s / the loop's: "
            f"**{flat.rate / plain.rate:.2f}x** (target >= 1.5x)"
        )
    if halved is not None:
        if math.isnan(halved.best_val):
            verdict = "caviar finished no trial in the budget"
        elif math.isnan(plain.best_val) or halved.best_val >= plain.best_val:
            verdict = "at least as high"
        else:
            verdict = "lower"
        lines.append(
            f"- caviar with halving, configurations / the loop's: "
            f"**{halved.configurations / plain.configurations:.2f}x** (target >= 4x); best "
            f"validation accuracy {halved.best_val:.4f} vs {plain.best_val:.4f} ({verdict})"
        )
    return lines


@dataclass(frozen=True)
class SeedRun:
    """One seed's sides (None: skipped) and its report as markdown lines."""

    seed: int
    flat: Row | None
    halved: Row | None
    plain: Row
    text: list[str]


def run_seed(args: argparse.Namespace, device: torch.device, seed: int) -> SeedRun:
    """Every side with this seed (the split, caviar's study, the loop's draws); prints as it
    goes."""
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    data = load(args, device)
    warm_up(data)
    with spinners(args.busy):
        return run_sides(args, device, seed, data)


def run_sides(args: argparse.Namespace, device: torch.device, seed: int, data: Data) -> SeedRun:
    busy = others_busy() if device.type == "cpu" else None
    header = [
        f"# Search in a budget of {args.seconds:g} s per side",
        "",
        f"- machine: {machine(device)}; torch {torch.__version__}; float32"
        + ("" if busy is None else f"; other processes kept {busy:.1f} cores busy at the start"),
        f"- data: MNIST, {len(data.y_train)} training / {len(data.y_val)} validation "
        f"(caviar.data.split_validation, seed {args.seed}) / {len(data.y_test)} test",
        "- space: 784-[32..256 x 1..4]-10 batch norm, ReLU, dropout 0..0.5, Adam, batch 128, "
        f"{EPOCHS} epochs, lr 1e-4..0.3 (log), beta1 0.8..0.99 (1 - beta log), weight decay "
        "1e-7..1e-3 (log)",
        "- one run per side, one side after the other in this process, after an untimed "
        "warm-up trial",
        "",
    ]
    if args.busy:
        header[-1:-1] = [
            f"- a shared machine on purpose (--busy {args.busy}): {args.busy} other processes "
            "keep a core busy each throughout; caviar in one process uses its default threads "
            f"(auto), the loop {torch.get_num_threads()} thread(s)"
        ]
    elif busy is not None and busy + torch.get_num_threads() > len(os.sched_getaffinity(0)) + 0.3:
        header[-1:-1] = [
            "- WARNING: other work takes cores this run's threads need; every side then waits on "
            "descheduled threads and the figures say little (use an idle machine, or --threads "
            "with the free cores)"
        ]
    print("\n".join([*header, *table([])]), flush=True)

    rows: list[Row] = []
    flat = halved = flat_w = halved_w = None
    notes: list[str] = []

    def done(row: Row) -> Row:
        rows.append(row)
        print(table([row])[-1], flush=True)
        return row

    if args.skip_caviar:
        notes.append("- caviar sides skipped (--skip-caviar)")
    else:
        with tempfile.TemporaryDirectory() as folder:
            if args.skip_flat:
                notes.append("- caviar without halving skipped (--skip-flat)")
            else:
                flat = done(run_caviar(args, Path(folder), False, notes))
            halved = done(run_caviar(args, Path(folder), True, notes))
            if args.workers:
                if not args.skip_flat:
                    flat_w = done(run_caviar(args, Path(folder), False, notes, workers=True))
                halved_w = done(run_caviar(args, Path(folder), True, notes, workers=True))
    plain = done(run_loop(data, args.seconds, args.seed))
    if args.skip_optuna:
        notes.append("- optuna side skipped (--skip-optuna)")
    else:
        try:
            import optuna  # noqa: F401
        except ImportError:
            notes.append("- optuna side skipped: optuna is not installed (pip install optuna)")
        else:
            done(run_optuna(data, args.seconds, args.seed))

    summary = [*ratios(plain, flat, halved)]
    if args.workers:
        summary += [f"{line} (on worker processes)" for line in ratios(plain, flat_w, halved_w)]
    summary += notes
    busy = others_busy() if device.type == "cpu" else None
    if busy is not None:
        summary.append(f"- other processes kept {busy:.1f} cores busy at the end")
    print("\n" + "\n".join(summary), flush=True)
    return SeedRun(seed, flat, halved, plain, [*header, *table(rows), "", *summary, ""])


def over_seeds(runs: list[SeedRun]) -> list[str]:
    """Caviar with halving against the loop, seed by seed, and the medians."""
    lines = [
        f"# Over {len(runs)} seeds: caviar with halving against the loop",
        "",
        "| seed | configurations (halving / loop) | ratio | best val acc (halving / loop) "
        "| test acc of best (halving / loop) |",
        "|---:|---:|---:|---:|---:|",
    ]
    pairs = [(r.seed, r.halved, r.plain) for r in runs if r.halved is not None]
    for seed, h, p in pairs:
        lines.append(
            f"| {seed} | {h.configurations} / {p.configurations} | "
            f"{h.configurations / max(p.configurations, 1):.2f}x | {h.best_val:.4f} / "
            f"{p.best_val:.4f} | {h.test:.4f} / {p.test:.4f} |"
        )
    if not pairs:
        return [*lines, "", "- caviar with halving did not run"]
    median = statistics.median
    at_least = sum(h.best_val >= p.best_val for _, h, p in pairs)
    return [
        *lines,
        f"| median | {median(h.configurations for _, h, _ in pairs):g} / "
        f"{median(p.configurations for _, _, p in pairs):g} | "
        f"{median(h.configurations / max(p.configurations, 1) for _, h, p in pairs):.2f}x | "
        f"{median(h.best_val for _, h, _ in pairs):.4f} / "
        f"{median(p.best_val for _, _, p in pairs):.4f} | "
        f"{median(h.test for _, h, _ in pairs):.4f} / {median(p.test for _, _, p in pairs):.4f} |",
        "",
        f"- halving's best validation accuracy at least the loop's in {at_least} of "
        f"{len(pairs)} seeds; mean difference "
        f"{statistics.fmean(h.best_val - p.best_val for _, h, p in pairs):+.4f}",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "datasets" / "mnist"))
    ap.add_argument("--seconds", type=float, default=150.0, help="budget per side")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="run every side for seeds seed .. seed+N-1, then "
        "caviar with halving against the loop over them (medians)",
    )
    ap.add_argument("--train-size", type=int, default=None, help="first N training images")
    ap.add_argument("--test-size", type=int, default=None, help="first N test images")
    ap.add_argument(
        "--population",
        type=int,
        help="caviar's members at once (default: caviar's own, sized to the budget)",
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, help="CPU threads, every side (default: torch's)")
    ap.add_argument("--skip-optuna", action="store_true")
    ap.add_argument("--skip-caviar", action="store_true", help="only the baselines")
    ap.add_argument(
        "--skip-flat", action="store_true", help="caviar with halving only (not without it)"
    )
    ap.add_argument(
        "--workers",
        action="store_true",
        help="also run the caviar sides on one worker process per core, one thread each "
        "(--devices cpu,cpu on 2 cores)",
    )
    ap.add_argument(
        "--busy",
        type=int,
        default=0,
        help="N other processes keep a core busy each during the timed sides (a shared "
        "machine); caviar in one process then uses study.threads = auto",
    )
    ap.add_argument("--out", type=Path, help="folder for budget.md (the table as markdown)")
    args = ap.parse_args()

    if args.busy < 0:
        ap.error(f"--busy must be a count of processes >= 0, got {args.busy}")
    device = resolve_device(args.device)
    args.population = args.population or 0  # 0: caviar's own choice (sized to the budget)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        # as caviar does for float32 on a GPU, through the same API (PyTorch refuses a mix of
        # the legacy allow_tf32 flags and fp32_precision in one process)
        torch.backends.cuda.matmul.fp32_precision = "tf32"
    runs = [run_seed(args, device, seed) for seed in range(args.seed, args.seed + args.seeds)]
    text = [line for run in runs for line in run.text]
    if len(runs) > 1:
        over = over_seeds(runs)
        print("\n" + "\n".join(over))
        text += ["", *over]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "budget.md").write_text("\n".join(text) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Every benchmark runs, in its smallest mode, as a user runs it (a subprocess from the checkout).

This times nothing: speed is what the benchmarks themselves print. It catches a benchmark that
no longer runs against the code it measures (budget.py once read the config sections as key
lists after they became typed classes, and every run, the GPU script's included, failed).
Benchmarks that read MNIST skip, saying why, without ../shared/datasets/mnist beside the checkout.

The runs are independent processes: they start in the background, one at a time, as soon as
the suite is collected (tests/conftest.py), and each test reads its run's output.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"
HAS_MNIST = MNIST.is_dir()
HAS_PROC = Path("/proc/self/cmdline").is_file()

needs_mnist = pytest.mark.skipif(
    not HAS_MNIST, reason=f"the checked MNIST files are not at {MNIST}"
)


def has_ray() -> bool:
    try:
        import ray  # noqa: F401  # deferred: ray, an optional extra
    except ImportError:
        return False
    return True


def has_cuda() -> bool:
    import torch  # deferred: torch, for this one question

    return bool(torch.cuda.is_available())


def spinners_running() -> int:
    """Processes running budget.py's spinner (``python -c "while True: pass"``)."""
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            count += cmdline.read_bytes().endswith(b"-c\0while True: pass\0")
        except OSError:  # gone meanwhile
            continue
    return count


@dataclass
class Run:
    """One benchmark's smallest run: its command and when it can run here."""

    argv: list[str]
    runnable: Callable[[], bool] = lambda: True
    env: dict[str, str] = field(default_factory=dict)
    timeout: float = 300


def script(name: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args]


SMALL = ("--train-size", "1200", "--test-size", "300")
#: same_config.py's smallest run: one small configuration of budget.py's space
SMALL_NET = (
    '{"hidden_units": 16, "n_layers": 1, "dropout": 0.1, "lr": 0.01, "beta1": 0.9, '
    '"weight_decay": 1e-05}'
)
RUNS: dict[str, Run] = {
    "budget": Run(
        script(
            "budget",
            *("--data-dir", str(MNIST), "--seconds", "1", *SMALL, "--skip-optuna"),
            *("--seeds", "2", "--out", "{tmp}"),
        ),
        lambda: HAS_MNIST,
    ),
    "budget busy": Run(
        script(
            "budget",
            *("--data-dir", str(MNIST), "--seconds", "1", *SMALL, "--skip-optuna"),
            *("--skip-flat", "--workers", "--busy", "1", "--threads", "1"),
        ),
        lambda: HAS_MNIST and HAS_PROC,
    ),
    "population": Run(
        script(
            "population",
            *("--workload", "realistic", "--examples", "512", "--sizes", "1,2"),
            *("--baseline-models", "1", "--repeats", "1", "--device", "cpu"),
        )
    ),
    "book_search": Run(
        script(
            "book_search",
            *("--data-dir", str(MNIST), "--trials", "3", "--baseline-trials", "1"),
            *("--epochs", "2"),
        ),
        lambda: HAS_MNIST,
    ),
    "storage": Run(script("storage", "--trials", "20", "--epochs", "3")),
    "quality": Run(
        script(
            "quality",
            *("--dataset", "mnist", "--data-dir", str(MNIST), "--seconds", "1", *SMALL),
            *("--seeds", "2", "--out", "{tmp}"),
        ),
        lambda: HAS_MNIST,
    ),
    "same_config": Run(
        script(
            "same_config",
            *("--dataset", "mnist", "--data-dir", str(MNIST), "--seeds", "2"),
            *("--train-size", "600", "--config", SMALL_NET),
        ),
        lambda: HAS_MNIST,
    ),
    "book_halving": Run(
        script("book_halving", "--data-dir", str(MNIST), "--seeds", "1", "--epochs", "4"),
        lambda: HAS_MNIST,
    ),
    "ray_overhead": Run(
        script(
            "ray_overhead",
            *("--dataset", "digits", "--train-size", "600", "--trials", "4", "--epochs", "1"),
            *("--population", "2", "--workers", "1", "--repeat", "1"),
        ),
        has_ray,
    ),
    "scale": Run(script("scale", "--check")),
    "own_model": Run(script("own_model", "--check", "--device", "cpu")),
    "gpu check": Run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--check"],
        env={"OUT": "{tmp}", "PYTHON": sys.executable},
    ),
    "gpu refuses": Run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh")],
        lambda: not has_cuda(),
        env={"OUT": "{tmp}", "PYTHON": sys.executable},
        timeout=120,
    ),
}


@dataclass
class Done:
    """A finished run: its exit status, its output, and its folder for files it wrote."""

    returncode: int
    stdout: str
    stderr: str
    folder: Path


def start(run: Run, folder: Path) -> Done:
    argv = [a.replace("{tmp}", str(folder)) for a in run.argv]
    extra = {k: v.replace("{tmp}", str(folder)) for k, v in run.env.items()}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    done = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=run.timeout
    )
    return Done(done.returncode, done.stdout, done.stderr, folder)


@dataclass
class Started:
    runs: dict[str, Future[Done]]
    spinners_before: int


#: the runs under way, once :func:`start_selected` has started them
STARTED: list[Started] = []


def start_selected(session: pytest.Session, tmp_path_factory: pytest.TempPathFactory) -> Started:
    """Start the runs of this module's selected tests that can run here, one at a time, in a
    thread: tests/conftest.py calls this as soon as the suite is collected, so they use the core
    the rest of the suite leaves idle (it trains on one thread) and are done when their tests
    come."""
    if not STARTED:
        here = Path(__file__).resolve()
        selected = {
            mark.args[0]
            for item in session.items
            if Path(str(item.fspath)).resolve() == here
            for mark in item.iter_markers("benchmark")
        }
        before = spinners_running() if HAS_PROC else 0
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="benchmarks")
        runs = {
            name: pool.submit(start, RUNS[name], tmp_path_factory.mktemp(name.replace(" ", "-")))
            for name in RUNS
            if name in selected and RUNS[name].runnable()
        }
        pool.shutdown(wait=False)  # the runs go on; each test waits for its own
        STARTED.append(Started(runs, before))
    return STARTED[0]


@pytest.fixture(scope="module")
def started(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Started:
    """The runs under way (started here if the suite's conftest did not)."""
    return start_selected(request.session, tmp_path_factory)


def output(started: Started, name: str) -> Done:
    """Run ``name``'s result; a failed run fails the test with both of its outputs."""
    done = started.runs[name].result()
    failed = f"{name} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, failed
    return done


@pytest.mark.slow
@pytest.mark.benchmark("budget")
@needs_mnist
def test_budget_prints_every_side_the_ratios_and_the_medians_over_seeds(started: Started) -> None:
    done = output(started, "budget")
    out, tmp_path = done.stdout, done.folder
    for side in ("| caviar, P=auto |", "| caviar, P=auto, halving", "| plain PyTorch loop"):
        assert side in out
    assert "model-epochs/s / the loop's" in out
    assert "configurations / the loop's" in out
    assert "# Over 2 seeds: caviar with halving against the loop" in out
    assert "| median |" in out
    written = (tmp_path / "budget.md").read_text(encoding="utf-8")
    assert written.startswith("# Search in a budget") and "| median |" in written


@pytest.mark.slow
@pytest.mark.benchmark("budget busy")
@needs_mnist
@pytest.mark.skipif(not HAS_PROC, reason="reads /proc")
def test_budget_on_a_busy_machine_runs_the_worker_sides_and_ends_its_spinners(
    started: Started,
) -> None:
    out = output(started, "budget busy").stdout
    cores = len(os.sched_getaffinity(0))
    assert f"| caviar, P=auto, halving (min_epochs 1, eta 3), {cores} worker processes |" in out
    assert "a shared machine on purpose (--busy 1): 1 other processes keep a core busy" in out
    assert "(on worker processes)" in out
    started.runs["budget busy"].result()
    assert spinners_running() == started.spinners_before  # ended with the run


@pytest.mark.slow
@pytest.mark.benchmark("population")
def test_population_prints_the_flop_ratio_on_synthetic_data(started: Started) -> None:
    out = output(started, "population").stdout
    assert "exec/useful FLOPs" in out


@pytest.mark.slow
@needs_mnist
@pytest.mark.benchmark("book_search")
def test_book_search_prints_the_vmap_ratio_and_the_floor(started: Started) -> None:
    out = output(started, "book_search").stdout
    assert "caviar / vmap ensemble" in out
    assert "floor: the search's matrix products alone" in out


@pytest.mark.slow
@pytest.mark.benchmark("storage")
def test_storage_prints_its_rates(started: Started) -> None:
    out = output(started, "storage").stdout
    assert "tells/s" in out


@pytest.mark.slow
@needs_mnist
@pytest.mark.benchmark("quality")
def test_quality_prints_every_side_the_medians_and_the_verdicts(started: Started) -> None:
    done = output(started, "quality")
    out = done.stdout
    for side in (
        "caviar default",
        "caviar random",
        "caviar tpe",
        "caviar tpe+halving",
        "caviar tpe+brackets",
        "caviar pool 4",
    ):
        assert f"| {side} (" in out  # a row per seed, naming the sampler it ran
        assert f"| {side} |" in out  # its medians
    assert "| caviar tpe (tpe) |" in out  # without halving: tpe alone is not 'auto'
    assert "| caviar tpe+halving (tpe, halving) |" in out
    assert "| optuna tpe |" in out and "| optuna random |" in out
    assert "# Over 2 seeds (0, 1): medians" in out
    assert "- caviar's default against Optuna TPE + median pruner: median test accuracy" in out
    assert "- caviar's default against caviar random: median test accuracy" in out
    written = (done.folder / "quality.md").read_text(encoding="utf-8")
    assert written.startswith("# Quality at equal time") and "## seed 1" in written


@pytest.mark.slow
@needs_mnist
@pytest.mark.benchmark("same_config")
def test_same_config_prints_both_sides_per_seed(started: Started) -> None:
    out = output(started, "same_config").stdout
    assert "| configuration | side | val acc per seed | mean |" in out
    for side in ("caviar", "loop"):
        rows = [line for line in out.splitlines() if f"| {side} |" in line]
        assert len(rows) == 1 and rows[0].startswith("| hidden_units=16, n_layers=1, ")
        per_seed = rows[0].split("|")[3].split(",")
        assert len(per_seed) == 2 and all(0.0 <= float(v) <= 1.0 for v in per_seed)


@pytest.mark.slow
@needs_mnist
@pytest.mark.benchmark("book_halving")
def test_book_halving_prints_the_medians(started: Started) -> None:
    out = output(started, "book_halving").stdout
    assert "| side | median best val acc |" in out
    assert "halving example: median best" in out


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.benchmark("ray_overhead")
@pytest.mark.skipif(not has_ray(), reason="needs the ray extra")
def test_ray_overhead_prints_both_sides(started: Started) -> None:
    out = output(started, "ray_overhead").stdout
    assert "model-epochs/s" in out


@pytest.mark.slow
@pytest.mark.benchmark("scale")
def test_scale_check_prints_every_figure_for_this_checkout_and_the_baseline(
    started: Started,
) -> None:
    out = output(started, "scale").stdout
    for heading in ("One member's state", "ATen calls per training step", "Replacing a third"):
        assert heading in out
    assert "| this checkout |" in out
    assert "The same tiny trials in pools of different sizes" in out
    assert "this checkout," not in out  # no measurement of this side failed


@pytest.mark.slow
@pytest.mark.benchmark("own_model")
def test_own_model_prints_each_modules_ratios_and_the_two_sides_difference(
    started: Started,
) -> None:
    out = output(started, "own_model").stdout
    assert out.count("loop: members 0..1 alone") == 3
    assert out.count("max |val acc diff|") == 3
    for name in ("cnn:", "mlp:", "tabular:"):
        assert f"\n{name} " in out
    rows = [line.split() for line in out.splitlines() if line.strip().startswith(("2 ", "3 "))]
    assert len(rows) == 6 and all(row[3].endswith("x") for row in rows)
    assert max(len(line) for line in out.splitlines()) <= 80  # the tables fit 80 columns


@pytest.mark.slow
@pytest.mark.benchmark("gpu check")
def test_gpu_script_check_runs_every_step_on_the_cpu(started: Started) -> None:
    """`benchmarks/gpu.sh --check`: every step of the device run with tiny sizes on the CPU,
    ending in its one table, so the script works the first time on a lent GPU machine."""
    out = output(started, "gpu check").stdout
    for name in ("tests-nn", "book", "realistic", "own-cnn"):
        assert f"{name:<10} ok" in out
    assert "| workload | P | ms / model-epoch |" in out
    assert "| book | 4 |" in out and "| realistic | 4 |" in out and "| own-cnn | 3 |" in out
    if MNIST.is_dir():
        assert "budget     ok" in out
        assert "caviar with halving, configurations / the loop's" in out
    assert "0 failed step(s)" in out


@pytest.mark.slow
@pytest.mark.benchmark("gpu refuses")
@pytest.mark.skipif(has_cuda(), reason="this machine has CUDA")
def test_gpu_script_refuses_to_run_without_cuda(started: Started) -> None:
    done = started.runs["gpu refuses"].result()
    assert done.returncode == 3, f"{done.stdout}\n{done.stderr}"
    assert "sees no CUDA device" in done.stdout

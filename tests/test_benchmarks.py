"""Every benchmark runs, in its smallest mode, as a user runs it (a subprocess from the checkout).

This times nothing: speed is what the benchmarks themselves print. It catches a benchmark that
no longer runs against the code it measures (budget.py once read the config sections as key
lists after they became typed classes, and every run, the GPU script's included, failed).
Benchmarks that read MNIST skip, saying why, without ../shared/datasets/mnist beside the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist"

needs_mnist = pytest.mark.skipif(
    not MNIST.is_dir(), reason=f"the checked MNIST files are not at {MNIST}"
)


def run_benchmark(name: str, *args: str, timeout: float = 300) -> str:
    """Run ``benchmarks/<name>.py`` with ``args``; its standard output (a failure shows both)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    failed = f"{name}.py exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert done.returncode == 0, failed
    return done.stdout


@pytest.mark.slow
@needs_mnist
def test_budget_prints_every_side_the_ratios_and_the_medians_over_seeds(tmp_path: Path) -> None:
    out = run_benchmark(
        "budget",
        *("--data-dir", str(MNIST), "--seconds", "1", "--train-size", "1200"),
        *("--test-size", "300", "--skip-optuna", "--seeds", "2", "--out", str(tmp_path)),
    )
    for side in ("| caviar, P=auto |", "| caviar, P=auto, halving", "| plain PyTorch loop"):
        assert side in out
    assert "model-epochs/s / the loop's" in out
    assert "configurations / the loop's" in out
    assert "# Over 2 seeds: caviar with halving against the loop" in out
    assert "| median |" in out
    written = (tmp_path / "budget.md").read_text(encoding="utf-8")
    assert written.startswith("# Search in a budget") and "| median |" in written


def spinners_running() -> int:
    """Processes running budget.py's spinner (``python -c "while True: pass"``)."""
    count = 0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            count += cmdline.read_bytes().endswith(b"-c\0while True: pass\0")
        except OSError:  # gone meanwhile
            continue
    return count


@pytest.mark.slow
@needs_mnist
@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="reads /proc")
def test_budget_on_a_busy_machine_runs_the_worker_sides_and_ends_its_spinners() -> None:
    before = spinners_running()
    out = run_benchmark(
        "budget",
        *("--data-dir", str(MNIST), "--seconds", "1", "--train-size", "1200"),
        *("--test-size", "300", "--skip-optuna", "--skip-flat", "--workers", "--busy", "1"),
        *("--threads", "1"),
    )
    cores = len(os.sched_getaffinity(0))
    assert f"| caviar, P=auto, halving (min_epochs 1, eta 3), {cores} worker processes |" in out
    assert "a shared machine on purpose (--busy 1): 1 other processes keep a core busy" in out
    assert "(on worker processes)" in out
    assert spinners_running() == before  # ended with the run


@pytest.mark.slow
def test_population_prints_the_flop_ratio_on_synthetic_data() -> None:
    out = run_benchmark(
        "population",
        *("--workload", "realistic", "--examples", "512", "--sizes", "1,2"),
        *("--baseline-models", "1", "--repeats", "1", "--device", "cpu"),
    )
    assert "exec/useful FLOPs" in out


@pytest.mark.slow
@needs_mnist
def test_book_search_prints_the_vmap_ratio_and_the_floor() -> None:
    out = run_benchmark(
        "book_search", "--data-dir", str(MNIST), "--trials", "3", "--baseline-trials", "1"
    )
    assert "caviar / vmap ensemble" in out
    assert "floor: the search's matrix products alone" in out


@pytest.mark.slow
def test_storage_prints_its_rates() -> None:
    out = run_benchmark("storage", "--trials", "20", "--epochs", "3")
    assert "tells/s" in out


@pytest.mark.slow
@needs_mnist
def test_book_halving_prints_the_medians() -> None:
    out = run_benchmark("book_halving", "--data-dir", str(MNIST), "--seeds", "1", "--epochs", "9")
    assert "| side | median best val acc |" in out
    assert "halving example: median best" in out


@pytest.mark.slow
@pytest.mark.ray
def test_ray_overhead_prints_both_sides() -> None:
    pytest.importorskip("ray")
    out = run_benchmark(
        "ray_overhead",
        *("--dataset", "digits", "--train-size", "600", "--trials", "4", "--epochs", "1"),
        *("--population", "2", "--workers", "1", "--repeat", "1"),
    )
    assert "model-epochs/s" in out


@pytest.mark.slow
def test_scale_check_prints_every_figure_for_this_checkout_and_the_baseline() -> None:
    out = run_benchmark("scale", "--check")
    for heading in ("One member's state", "ATen calls per training step", "Replacing a third"):
        assert heading in out
    assert "| this checkout |" in out
    assert "The same tiny trials in pools of different sizes" in out
    assert "this checkout," not in out  # no measurement of this side failed


@pytest.mark.slow
def test_gpu_script_check_runs_every_step_on_the_cpu(tmp_path: Path) -> None:
    """`benchmarks/gpu.sh --check`: every step of the device run with tiny sizes on the CPU,
    ending in its one table, so the script works the first time on a lent GPU machine."""
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    for name in ("tests-nn", "book", "realistic"):
        assert f"{name:<10} ok" in done.stdout
    assert "| workload | P | ms / model-epoch |" in done.stdout
    assert "| book | 4 |" in done.stdout and "| realistic | 4 |" in done.stdout
    if MNIST.is_dir():
        assert "budget     ok" in done.stdout
        assert "caviar with halving, configurations / the loop's" in done.stdout
    assert "0 failed step(s)" in done.stdout


@pytest.mark.slow
def test_gpu_script_refuses_to_run_without_cuda(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3
    assert "sees no CUDA device" in done.stdout

"""The plain-torch pieces the experiments add: prediction from a member's state, and the
book's own loop (non-inverted dropout, its batch norm), on real MNIST where present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MNIST

from caviar.data import load_dataset
from caviar.experiments import EXPERIMENTS, Options, run_experiment
from caviar.experiments.bookway import BookNets
from caviar.experiments.train import fit, member_logits
from caviar.nn import MemberSpec, evaluate_states


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    d = load_dataset("digits").head(300)
    return d.x_train, d.y_train


@pytest.mark.parametrize("batch_norm", [False, True])
def test_member_logits_agree_with_the_engine(
    digits: tuple[np.ndarray, np.ndarray], batch_norm: bool
) -> None:
    x, y = digits
    spec = MemberSpec(hidden_units=20, n_layers=2, batch_norm=batch_norm, epochs=2)
    (curve,) = fit([spec], x, y, keep_states=True)
    assert curve.state is not None
    ((_, engine_acc),) = evaluate_states([curve.state], x, y, dtype=torch.float64)
    assert np.mean(member_logits(curve.state, x).argmax(1) == y) == pytest.approx(engine_acc)


def test_the_books_dropout_scales_by_the_keep_rate_at_test_time() -> None:
    spec = MemberSpec(hidden_units=4, n_layers=1, dropout=0.2)
    nets = BookNets([spec, MemberSpec(hidden_units=4, n_layers=1)], 3, 2)
    x = torch.rand(5, 3, dtype=torch.float64)
    with torch.no_grad():
        h = torch.relu(x @ nets.W[0][0])
        expected = (0.8 * h) @ nets.W[1][0]
        assert torch.allclose(nets.forward(x, False)[0], expected)


def test_the_books_running_statistics_start_at_zero() -> None:
    nets = BookNets([MemberSpec(hidden_units=4, n_layers=1, batch_norm=True)], 3, 2)
    x = torch.rand(6, 3, dtype=torch.float64)
    with torch.no_grad():
        z = x @ nets.W[0][0]
        nets.forward(x, True, torch.Generator().manual_seed(0))
    mean, var = nets.running[0]
    assert torch.allclose(mean[0, 0], 0.1 * z.mean(0))
    assert torch.allclose(var[0, 0], 0.1 * z.var(0, unbiased=False))


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"real MNIST not at {MNIST}")
def test_quick_on_a_small_mnist_head(tmp_path: Path) -> None:
    options = Options(quick=True, data_dir=str(MNIST), out=tmp_path)
    result = run_experiment(EXPERIMENTS["overfit"], options, echo=lambda s: None)
    assert "mnist" in result.numbers["data"]
    assert result.numbers["summary"]["plain"]["train"] > 0.9

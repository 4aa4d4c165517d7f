"""Batch norm needs two examples per mini-batch in training, as torch's ``BatchNorm1d`` does: a
last mini-batch of one is dropped, and a training set of one example is an error naming the
sizes (never a ZeroDivisionError from the running variance's ``B / (B - 1)``)."""

from __future__ import annotations

import re

import pytest
import torch

from caviar.core.errors import InvalidValue
from caviar.nn import MemberSpec, Pool, Population, TrainingData
from caviar.nn.group import Group


def blobs(n: int) -> TrainingData:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=gen, dtype=torch.float64)
    y = torch.arange(n) % 2
    return TrainingData.from_arrays(x, y, x, y, n_classes=2)


def test_torch_refuses_a_batch_of_one_in_training():
    """The rule the engine follows, from torch itself."""
    norm = torch.nn.BatchNorm1d(3).train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        norm(torch.randn(1, 3))


@pytest.mark.parametrize("batch_norm", [True, False], ids=["batch_norm", "no_batch_norm"])
def test_201_examples_in_batches_of_100_drop_the_last_batch_of_one_under_batch_norm(batch_norm):
    """201 = 100 + 100 + 1: two optimizer steps per epoch with batch norm, three without."""
    spec = MemberSpec(seed=1, hidden_units=5, batch_size=100, batch_norm=batch_norm, epochs=2)
    (result,) = Population([spec], dtype=torch.float64, device="cpu").fit(
        blobs(201), keep_states=True
    )
    assert not result.diverged and len(result.curve) == 2
    assert result.state.optimizer_steps == (2 if batch_norm else 3) * 2
    # the dropped example is another one each epoch (the order is shuffled), so it still trains


MESSAGE = (
    "batch_norm: needs at least 2 training examples (batch statistics need two per mini-batch), "
    "got a training set of 1 with batch_size 100"
)


def test_batch_norm_on_a_training_set_of_one_is_an_error_naming_the_sizes():
    spec = MemberSpec(hidden_units=5, batch_size=100, batch_norm=True, epochs=1)
    with pytest.raises(InvalidValue, match=f"^{re.escape(MESSAGE)}$"):
        Population([spec], device="cpu").fit(blobs(1))
    # a pool refuses the member when it is added, before any round runs
    pool = Pool(blobs(1), device=torch.device("cpu"))
    with pytest.raises(InvalidValue, match=f"^{re.escape(MESSAGE)}$"):
        pool.add(0, spec)
    assert len(pool) == 0


def test_without_batch_norm_a_training_set_of_one_trains():
    spec = MemberSpec(hidden_units=5, batch_size=100, epochs=2)
    (result,) = Population([spec], dtype=torch.float64, device="cpu").fit(
        blobs(1), keep_states=True
    )
    assert len(result.curve) == 2 and result.state.optimizer_steps == 2


def test_a_group_refuses_a_training_batch_of_one_under_batch_norm():
    spec = MemberSpec(hidden_units=5, batch_norm=True)
    group = Group([spec], 4, 2, device=torch.device("cpu"), dtype=torch.float64)
    data = blobs(1)
    with pytest.raises(
        InvalidValue, match=r"^batch_norm: needs mini-batches of at least 2 examples .*got 1$"
    ):
        group.train_step([data.x_train], data.y_train, [spec.lr])

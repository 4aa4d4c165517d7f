"""The GPU path of a group (vectorized: no host sync per step, one optimizer update per bucket of
equal-width members, masks on the device) trains exactly what the CPU path trains. It runs here
on the CPU, forced with ``vectorized=True``; on a machine with CUDA the last test runs it there."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, cpu_group

from caviar.nn import MemberSpec, Population
from caviar.nn.group import Group
from caviar.nn.randomness import batch_bounds, epoch_order

BASE = MemberSpec(seed=0, hidden_units=8, batch_size=16, epochs=3)

# name: the group's shared settings; members vary width (two share one: a batched bucket),
# lr, dropout and weight decay, and one has an absurd learning rate (it diverges under relu;
# tanh and sigmoid saturate instead)
CASES = {
    "adam_batch_norm_dropout": {"optimizer": "adam", "batch_norm": True, "lr": 0.01},
    "sgd_sigmoid_coupled_decay": {"optimizer": "sgd", "activation": "sigmoid", "lr": 0.3},
    "momentum_tanh": {"optimizer": "momentum", "activation": "tanh", "lr": 0.1},
    "rmsprop_decoupled": {"optimizer": "rmsprop", "lr": 0.01, "decoupled_weight_decay": True},
}


def members(shared: dict) -> list[MemberSpec]:
    base = replace(BASE, **shared)
    return [
        replace(base, seed=1, hidden_units=5, dropout=0.2, weight_decay=0.01),
        replace(base, seed=2, hidden_units=9, lr=base.lr * 2),
        replace(base, seed=3, hidden_units=9, dropout=0.4, weight_decay=0.001),
        replace(base, seed=4, hidden_units=7, lr=1e300),  # diverges, unless it saturates
        replace(base, seed=5, hidden_units=9, n_layers=4),  # deeper: the same group
        replace(base, seed=6, hidden_units=5, n_layers=1),  # shallower
    ]


def train(specs: list[MemberSpec], data, *, vectorized: bool, epochs: int = 2) -> Group:
    group = cpu_group(specs, data, vectorized=vectorized)
    x, y = data.x_train, data.y_train
    for epoch in range(epochs):
        order = epoch_order(0, epoch, len(x))
        lrs = [s.lr_at(epoch) for s in specs]
        for lo, hi in batch_bounds(len(x), 16, batch_norm=specs[0].batch_norm):
            index = order[lo:hi]
            group.train_step([x[index]] * len(specs), y[index], lrs)
    return group


@pytest.mark.parametrize("name", list(CASES))
def test_the_vectorized_path_trains_what_the_cpu_path_trains(name, data):
    specs = members(CASES[name])
    cpu = train(specs, data, vectorized=False)
    vec = train(specs, data, vectorized=True)
    # one batched bucket of 5-, 9-, 9- and 7-unit 2-layer members: the 32-wide width class,
    # each member padded to it with zeros that stay zero
    assert [b.size for b in vec.layout.buckets] == [4, 1, 1]
    assert cpu.alive == vec.alive
    assert cpu.alive[3] == (specs[0].activation != "relu")
    for k in range(len(specs)):
        a, b = vec.member_state(k, epoch=2, batch=0), cpu.member_state(k, epoch=2, batch=0)
        if cpu.alive[k]:
            assert_states_equal(a, b, exact=False)
        else:  # frozen where it diverged; its optimizer state means nothing any more
            for name in a.params:
                torch.testing.assert_close(a.params[name], b.params[name], rtol=1e-9, atol=0)


def test_a_vectorized_step_never_waits_for_the_host(data, monkeypatch):
    """No ``.item()``, ``.tolist()`` or truth test of a tensor inside a step: on a GPU each
    would stall the queue."""
    specs = members(CASES["adam_batch_norm_dropout"])
    group = train(specs, data, vectorized=True, epochs=1)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("host sync inside a vectorized step")

    x, y = data.x_train[:16], data.y_train[:16]
    monkeypatch.setattr(torch.Tensor, "item", refuse)
    monkeypatch.setattr(torch.Tensor, "tolist", refuse)
    monkeypatch.setattr(torch.Tensor, "__bool__", refuse)
    group.train_step([x] * len(specs), y, [s.lr for s in specs])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_a_population_trains_what_it_trains_on_the_cpu(data):
    specs = members(CASES["adam_batch_norm_dropout"])
    cpu = Population(specs, dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    gpu = Population(specs, dtype=torch.float64, device="cuda").fit(data, keep_states=True)
    for a, b in zip(gpu, cpu, strict=True):
        assert a.diverged == b.diverged
        if not a.diverged:
            assert_states_equal(a.state, b.state, exact=False)

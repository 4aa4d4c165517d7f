"""Packing invariance: a member's training does not depend on who else is in its population,
how wide the group is padded, or where in the population it sits; and the padding itself
stays exactly zero."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import assert_curves_close, assert_states_equal

from caviar.nn import MemberSpec, Population
from caviar.nn.group import Group
from caviar.nn.randomness import batch_bounds, epoch_order

TARGETS = {
    "adam_batch_norm_dropout": MemberSpec(
        seed=42, hidden_units=7, batch_norm=True, dropout=0.3, batch_size=16, lr=0.01, epochs=3
    ),
    "sgd_sigmoid_dropout_weight_decay": MemberSpec(
        seed=43,
        hidden_units=7,
        activation="sigmoid",
        optimizer="sgd",
        lr=0.5,
        dropout=0.2,
        weight_decay=0.01,
        batch_size=16,
        epochs=3,
    ),
}


def crowd(target: MemberSpec) -> list[MemberSpec]:
    """Eleven other members: eight in the target's group (widths 2..40, other learning rates,
    dropout, weight decay and epochs) and three in other groups; the target is at index 7."""
    widths = [2, 40, 5, 11, 7, 23, 3, 16]
    same_group = [
        replace(
            target,
            seed=100 + i,
            hidden_units=w,
            lr=target.lr * (0.5 + 0.25 * i),
            dropout=(0.0, 0.1, 0.5)[i % 3],
            weight_decay=0.001 * i,
            decoupled_weight_decay=i % 2 == 0,
            epochs=1 + i % 4,
        )
        for i, w in enumerate(widths)
    ]
    other_groups = [
        replace(target, seed=200, batch_size=32),
        replace(target, seed=201, n_layers=1, hidden_units=30),
        replace(target, seed=202, batch_norm=not target.batch_norm),
    ]
    members = [*same_group[:4], *other_groups, *same_group[4:]]
    members.insert(7, target)
    return members


@pytest.mark.parametrize("name", list(TARGETS))
def test_member_trains_the_same_alone_and_in_a_crowd(name, data):
    target = TARGETS[name]
    specs = crowd(target)
    assert len(specs) == 12 and specs[7] == target

    alone = Population([target], dtype=torch.float64, device="cpu").fit(data, keep_states=True)[0]
    packed = Population(specs, dtype=torch.float64, device="cpu").fit(data, keep_states=True)

    assert_curves_close(packed[7], alone)
    assert_states_equal(packed[7].state, alone.state, exact=False)
    # the same member twice in one population, at two places, trains identically too
    twice = Population([*specs, replace(target)], dtype=torch.float64, device="cpu").fit(
        data, keep_states=True
    )
    assert_curves_close(twice[12], alone)
    assert_states_equal(twice[12].state, twice[7].state, exact=False)


def test_member_position_in_the_population_does_not_matter(data):
    target = TARGETS["adam_batch_norm_dropout"]
    specs = crowd(target)
    shuffled = [specs[i] for i in (7, 3, 11, 0, 9, 1, 10, 2, 8, 4, 6, 5)]
    a = Population(specs, dtype=torch.float64, device="cpu").fit(data)
    b = Population(shuffled, dtype=torch.float64, device="cpu").fit(data)
    assert_curves_close(b[0], a[7])


# -- padding stays zero ----------------------------------------------------------------------
PADDING_CASES = {
    "sgd_relu": {"optimizer": "sgd", "lr": 0.3},
    "momentum_tanh_decoupled_decay": {
        "optimizer": "momentum",
        "activation": "tanh",
        "lr": 0.3,
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
    },
    "rmsprop_batch_norm_coupled_decay": {
        "optimizer": "rmsprop",
        "batch_norm": True,
        "weight_decay": 0.1,
        "lr": 0.01,
    },
    # sigmoid(0) = 0.5, so padded units are only silent because they are masked
    "adam_sigmoid_batch_norm_dropout": {
        "activation": "sigmoid",
        "batch_norm": True,
        "dropout": 0.3,
        "lr": 0.05,
        "weight_decay": 0.1,
    },
    "adam_sigmoid_three_layers": {"activation": "sigmoid", "n_layers": 3, "lr": 0.05},
}


def owned(group: Group, name: str) -> torch.Tensor:
    """Bool mask over the padded view of ``name``: True where some member owns the entry."""
    view = group.params[name]
    mask = torch.zeros(view.shape, dtype=torch.bool)
    for k, units in enumerate(group.units):
        mask[group.layout.member_index(name, k, units)] = True
    return mask


@pytest.mark.parametrize("name", list(PADDING_CASES))
def test_padded_weights_of_the_narrower_member_stay_exactly_zero(name, data):
    changes = PADDING_CASES[name]
    specs = [
        MemberSpec(seed=1, hidden_units=5, batch_size=16, **changes),
        MemberSpec(seed=2, hidden_units=9, batch_size=16, **changes),
    ]
    group = Group(
        specs, data.n_inputs, data.n_classes, device=torch.device("cpu"), dtype=torch.float64
    )
    x, y = data.x_train, data.y_train
    bounds = batch_bounds(len(x), 16)
    lr = torch.tensor([s.lr for s in specs], dtype=torch.float64)
    active = torch.ones(2, dtype=torch.bool)
    start = {n: v.clone() for n, v in group.params.items()}
    for epoch in range(3):
        order = epoch_order(0, epoch, len(x))
        for b, (lo, hi) in enumerate(bounds):
            index = order[lo:hi]
            group.train_step(x[index], y[index], epoch * len(bounds) + b, lr, active)

    # one more backward pass with the update switched off: the optimizer uses the gradient
    # buffers as scratch, so the gradients are read before it runs
    group._update = lambda lr, training: None
    index = epoch_order(0, 3, len(x))[:16]
    group.train_step(x[index], y[index], 3 * len(bounds), lr, active)

    for param in group.params:
        mask = owned(group, param)
        # every parameter has padding but the output bias [P, C]
        assert mask.all() == (param == f"b{group.n_layers}"), param
        padding = group.params[param][~mask]
        assert torch.equal(padding, torch.zeros_like(padding)), f"padding of {param} moved"
        # the padding's gradient and optimizer state are zero too
        assert not group.grads[param][~mask].any(), f"padding of {param} has a gradient"
        for i, _slot in enumerate(group.optimizer.slots):
            state = group.layout.views([s[i] for s in group.opt_state])[param]
            assert not state[~mask].any()
        # and the members' own parameters did train
        assert not torch.equal(group.params[param][mask], start[param][mask]), param

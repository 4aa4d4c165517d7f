"""Packing invariance: a member's training does not depend on who else is in its population,
how wide the group is padded, or where in the population it sits; and the padding itself
stays exactly zero.

Bit for bit on the CPU only, so these tests do not take the ``device`` fixture: on a GPU,
members of equal shape share one batched product (``Ragged(batched=True)``), whose kernel and
rounding depend on how many share it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, cpu_group, curve_array

from caviar.nn import MemberSpec, Pool, Population
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
    dropout, weight decay and epochs), one shallower (the same group: depths share one) and two
    in other groups; the target is at index 7. Its deeper twin comes in the tests."""
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
        replace(target, seed=201, n_layers=1, hidden_units=30),  # shallower, the same group
        replace(target, seed=202, batch_norm=not target.batch_norm),
    ]
    members = [*same_group[:4], *other_groups, *same_group[4:]]
    members.insert(7, target)
    return members


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(TARGETS))
def test_member_trains_bitwise_the_same_alone_and_in_a_crowd(name, dtype, data):
    """A member's arithmetic has shapes that depend on its own spec only, so its curve and
    final state are bit for bit the same alone, in a crowd, twice in one population, and
    wherever its group's tail falls; in every dtype the engine offers."""
    target = TARGETS[name]
    specs = crowd(target)
    assert len(specs) == 12 and specs[7] == target

    alone = Population([target], dtype=dtype, device="cpu").fit(data, keep_states=True)[0]
    packed = Population(specs, dtype=dtype, device="cpu").fit(data, keep_states=True)

    assert torch.equal(curve_array(packed[7]), curve_array(alone))
    assert_states_equal(packed[7].state, alone.state, exact=True)
    twice = Population([*specs, replace(target)], dtype=dtype, device="cpu").fit(
        data, keep_states=True
    )
    assert torch.equal(curve_array(twice[12]), curve_array(alone))
    assert_states_equal(twice[12].state, twice[7].state, exact=True)
    # in groups cut small (max_chunk) and with a same-width neighbour (a batched product)
    neighbour = replace(target, seed=77, lr=target.lr * 2)
    deeper = replace(target, seed=78, n_layers=4)
    small = Population([*specs, neighbour, deeper], dtype=dtype, device="cpu", max_chunk=3).fit(
        data, keep_states=True
    )
    assert torch.equal(curve_array(small[7]), curve_array(alone))
    assert_states_equal(small[7].state, alone.state, exact=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_a_member_that_joins_a_running_pool_trains_bitwise_as_alone(dtype, data):
    """As in a search: the member joins a pool whose members are an epoch ahead (they share its
    group, each at its own epoch), one of them leaves after its next round and another joins;
    its curve and final state are still bit for bit those of training alone."""
    target = TARGETS["adam_batch_norm_dropout"]
    others = [s for k, s in enumerate(crowd(target)) if k != 7]
    alone = Population([target], dtype=dtype, device="cpu").fit(data, keep_states=True)[0]

    pool = Pool(data, device=torch.device("cpu"), dtype=dtype, keep_states=True)
    pool.add(0, replace(others[0], epochs=5))
    pool.add(1, replace(others[1], epochs=5))
    pool.step()  # they are at epoch 1 when the target joins
    pool.add(7, target)
    curve, state, rounds = [], None, 0
    while 7 in pool.keys:
        if rounds == 1:
            pool.remove(1)
            pool.add(2, others[2])
        for e in pool.step().epochs:
            if e.key == 7:
                curve.append(e.record)
                state = e.state if e.finished else state
        rounds += 1
    assert curve == alone.curve  # every float, exactly
    assert_states_equal(state, alone.state, exact=True)


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


@pytest.mark.parametrize("name", list(PADDING_CASES))
@pytest.mark.parametrize("vectorized", [False, True], ids=["per-member", "batched"])
def test_padded_columns_stay_silent(name, vectorized, data):
    """Members' columns are rounded up to a multiple of 32: the padded entries of the shared
    buffers (batch-norm gamma and beta, biases) never move and keep a zero optimizer state
    (so they never had a gradient), and the members' own entries do train. In the batched
    layout (the GPU path) a member's matrices are stored as wide as its bucket's widest member:
    their padded rows and columns stay exactly 0, with a zero optimizer state, whatever the
    activation."""
    changes = PADDING_CASES[name]
    specs = [
        MemberSpec(seed=1, hidden_units=5, batch_size=16, **changes),
        MemberSpec(seed=2, hidden_units=9, batch_size=16, **changes),
    ]
    group = cpu_group(specs, data, vectorized=vectorized)
    lay = group.layout
    real = torch.zeros(lay.S, dtype=torch.bool)
    for k in range(len(specs)):
        real[lay.columns(k, real=True)] = True
    assert (~real).sum() == lay.S - 14  # widths 5 and 9 in 2 x 32 columns (and the tail)
    x, y = data.x_train, data.y_train
    start = {n: v.clone() for n, v in group.A.items()}
    bounds = batch_bounds(len(x), 16)
    for epoch in range(3):
        order = epoch_order(0, epoch, len(x))
        for lo, hi in bounds:
            index = order[lo:hi]
            group.train_step([x[index]] * 2, y[index], [s.lr for s in specs])
    for name_, view in group.A.items():
        if name_ == "b_out":
            continue
        assert torch.equal(view[~real], start[name_][~real]), f"padding of {name_} moved"
        for slot in group.state_aux:
            assert not lay.aux_views(slot)[name_][~real].any()
        assert not torch.equal(view[real], start[name_][real]), name_
    for k in range(len(specs)):
        for layer, w in enumerate(lay.member_weight_views(group.weights, k)):
            pad = torch.ones_like(w, dtype=torch.bool)
            pad[lay.weight_index(k, layer)] = False
            # batched: the 5-unit member is stored 9 wide, as its bucket's widest member
            assert pad.any() == (vectorized and k == 0)
            assert not w[pad].any(), f"padding of member {k}'s W{layer} moved"
            for slot in group.state_weights:
                assert not lay.member_weight_views(slot, k)[layer][pad].any()

"""Save and restore exactly: a run stopped after some epochs and continued from its member
states (in memory or through files) gives what the straight run gives, bit for bit on the CPU."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, curve_array

from caviar.nn import MemberSpec, MemberState, Population
from caviar.nn.group import Group
from caviar.nn.randomness import batch_bounds, epoch_order

SPECS = [
    MemberSpec(seed=1, hidden_units=7, batch_norm=True, dropout=0.3, batch_size=16, lr=0.01),
    MemberSpec(seed=2, hidden_units=12, batch_norm=True, batch_size=16, lr=0.02, weight_decay=0.1),
    MemberSpec(seed=3, hidden_units=5, optimizer="momentum", lr=0.2, dropout=0.2, batch_size=16),
    MemberSpec(
        seed=4,
        hidden_units=9,
        optimizer="rmsprop",
        lr=0.01,
        batch_size=16,
        lr_decay="step",
        decay_rate=0.5,
        decay_every=3,
        weight_decay=0.5,
        decoupled_weight_decay=True,
    ),
    MemberSpec(seed=5, hidden_units=6, n_layers=3, optimizer="sgd", lr=0.2, activation="tanh"),
]


def with_epochs(epochs: int) -> list[MemberSpec]:
    return [replace(s, epochs=epochs) for s in SPECS]


def assert_same_run(continued, straight, *, from_epoch: int) -> None:
    for k, (c, s) in enumerate(zip(continued, straight, strict=True)):
        assert [r.epoch for r in c.curve] == [r.epoch for r in s.curve[from_epoch:]]
        assert torch.equal(curve_array(c), curve_array(s)[from_epoch:]), f"member {k} curve"
        assert_states_equal(c.state, s.state, exact=True)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_continuing_from_epoch_2_equals_training_4_epochs_straight(dtype, data, tmp_path):
    straight = Population(with_epochs(4), dtype=dtype, device="cpu").fit(data, keep_states=True)
    first = Population(with_epochs(2), dtype=dtype, device="cpu").fit(data, keep_states=True)
    states = [r.state for r in first]
    assert all(s.epoch == 2 and s.batch == 0 for s in states)
    for k in range(len(SPECS)):  # the first two epochs are the straight run's
        assert torch.equal(curve_array(first[k]), curve_array(straight[k])[:2])

    continued = Population(with_epochs(4), dtype=dtype, device="cpu").fit(
        data, states=states, keep_states=True
    )
    assert_same_run(continued, straight, from_epoch=2)

    # the same through files
    paths = [tmp_path / f"member{k}.pt" for k in range(len(states))]
    for state, path in zip(states, paths, strict=True):
        state.save(path)
    loaded = [MemberState.load(path) for path in paths]
    from_files = Population(with_epochs(4), dtype=dtype, device="cpu").fit(
        data, states=loaded, keep_states=True
    )
    assert_same_run(from_files, straight, from_epoch=2)


def test_continuing_from_the_middle_of_an_epoch(data):
    """A state taken after 3 mini-batches of epoch 0 continues at mini-batch 3. (Training
    metrics are compared from an eval pass: a resumed epoch's own mean over its mini-batches
    covers only the batches it ran.)"""
    specs = with_epochs(2)[:2]  # one group: adam with batch norm
    assert specs[0].group_key() == specs[1].group_key()
    straight = Population(specs, dtype=torch.float64, device="cpu", train_metrics="full").fit(
        data, keep_states=True
    )

    group = Group(
        specs, data.n_inputs, data.n_classes, device=torch.device("cpu"), dtype=torch.float64
    )
    order = epoch_order(0, 0, len(data.x_train))
    for lo, hi in batch_bounds(len(data.x_train), group.batch_size)[:3]:
        index = order[lo:hi]
        group.train_step(
            [data.x_train[index]] * len(specs), data.y_train[index], [s.lr_at(0) for s in specs]
        )
    states = [group.member_state(k, epoch=0, batch=3) for k in range(len(specs))]
    continued = Population(specs, dtype=torch.float64, device="cpu", train_metrics="full").fit(
        data, states=states, keep_states=True
    )
    assert_same_run(continued, straight, from_epoch=0)


def test_member_state_round_trips_through_a_file(data, tmp_path):
    result = Population([SPECS[0]], dtype=torch.float64, device="cpu").fit(data, keep_states=True)[
        0
    ]
    state = result.state
    path = tmp_path / "state.pt"
    state.save(path)
    loaded = MemberState.load(path)

    assert loaded.spec == state.spec
    assert (loaded.n_inputs, loaded.n_classes) == (state.n_inputs, state.n_classes)
    assert_states_equal(loaded, state, exact=True)
    for name, value in state.params.items():
        assert loaded.params[name].dtype == value.dtype == torch.float64
        assert loaded.params[name].shape == value.shape
    assert set(loaded.optimizer) == {"exp_avg", "exp_avg_sq"}
    assert len(loaded.running_mean) == SPECS[0].n_layers


def test_state_holds_the_members_own_shapes(data):
    specs = [replace(SPECS[0], hidden_units=4), replace(SPECS[0], seed=9, hidden_units=11)]
    results = Population(specs, dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    state = results[0].state
    D, H, C = data.n_inputs, 4, data.n_classes
    assert {n: tuple(v.shape) for n, v in state.params.items()} == {
        "W0": (D, H),
        "W1": (H, H),
        "W2": (H, C),
        "gamma0": (H,),
        "beta0": (H,),
        "gamma1": (H,),
        "beta1": (H,),
        "b2": (C,),
    }
    assert [tuple(t.shape) for t in state.running_var] == [(H,), (H,)]


def test_loading_a_state_into_a_member_of_another_width_is_a_clear_error(data):
    state = (
        Population([SPECS[0]], dtype=torch.float64, device="cpu")
        .fit(data, keep_states=True)[0]
        .state
    )
    wider = replace(SPECS[0], hidden_units=9, epochs=SPECS[0].epochs + 1)
    with pytest.raises(ValueError, match=r"hidden_units=7.*9"):
        Population([wider], dtype=torch.float64, device="cpu").fit(data, states=[state])


def test_loading_a_state_for_other_data_is_a_clear_error(data):
    state = (
        Population([SPECS[0]], dtype=torch.float64, device="cpu")
        .fit(data, keep_states=True)[0]
        .state
    )
    state.n_inputs = data.n_inputs + 1
    longer = replace(SPECS[0], epochs=SPECS[0].epochs + 1)  # so that it has an epoch to run
    with pytest.raises(ValueError, match=rf"{data.n_inputs + 1} inputs.*{data.n_inputs}"):
        Population([longer], dtype=torch.float64, device="cpu").fit(data, states=[state])


def test_states_must_be_one_per_member(data):
    with pytest.raises(ValueError, match=r"one per member \(2\), got 1"):
        Population(SPECS[:2], dtype=torch.float64, device="cpu").fit(data, states=[None])

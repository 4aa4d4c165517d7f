"""Save and restore exactly: a run stopped after some epochs and continued from its member
states (in memory or through files) gives what the straight run gives, bit for bit on the CPU
(not on the ``device`` fixture: on a GPU equal-shape members share batched products, whose
rounding depends on the group); and continuing a state checks what it was trained with."""

from __future__ import annotations

import errno
import os
import re
from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, curve_array

from caviar.core.atomic import WriteError
from caviar.core.errors import InvalidValue
from caviar.nn import MemberSpec, MemberState, Population, TrainingData, evaluate_states
from caviar.nn.group import Group
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.nn.state import DamagedState

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


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_continuing_from_the_middle_of_an_epoch(data, dtype):
    """A state taken after 3 mini-batches of epoch 0 continues at mini-batch 3. (Training
    metrics are compared from an eval pass: a resumed epoch's own mean over its mini-batches
    covers only the batches it ran.)"""
    specs = with_epochs(2)[:2]  # one group: adam with batch norm
    assert specs[0].group_key() == specs[1].group_key()
    straight = Population(specs, dtype=dtype, device="cpu", train_metrics="full").fit(
        data, keep_states=True
    )

    group = Group(specs, data.n_inputs, data.n_classes, device=torch.device("cpu"), dtype=dtype)
    x = data.x_train.to(dtype)  # as the pool holds it
    order = epoch_order(0, 0, len(x))
    for lo, hi in batch_bounds(len(data.x_train), group.batch_size)[:3]:
        index = order[lo:hi]
        group.train_step([x[index]] * len(specs), data.y_train[index], [s.lr_at(0) for s in specs])
    states = [
        group.member_state(k, epoch=0, batch=3, data_seed=0, n_train=len(data.x_train))
        for k in range(len(specs))
    ]
    continued = Population(specs, dtype=dtype, device="cpu", train_metrics="full").fit(
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
    with pytest.raises(InvalidValue, match=r"trained with hidden_units=7, not 9$"):
        Population([wider], dtype=torch.float64, device="cpu").fit(data, states=[state])


def test_loading_a_state_for_other_data_is_a_clear_error(data):
    state = (
        Population([SPECS[0]], dtype=torch.float64, device="cpu")
        .fit(data, keep_states=True)[0]
        .state
    )
    state.n_inputs = data.n_inputs + 1
    longer = replace(SPECS[0], epochs=SPECS[0].epochs + 1)  # so that it has an epoch to run
    with pytest.raises(
        InvalidValue, match=rf"trained with n_inputs={data.n_inputs + 1}, not {data.n_inputs}$"
    ):
        Population([longer], dtype=torch.float64, device="cpu").fit(data, states=[state])


def test_states_must_be_one_per_member(data):
    with pytest.raises(ValueError, match=r"one per member \(2\), got 1"):
        Population(SPECS[:2], dtype=torch.float64, device="cpu").fit(data, states=[None])


# -- what a state records, and what continuing it checks -------------------------------------
@pytest.fixture(scope="module")
def saved(data) -> MemberState:
    """SPECS[0] after 2 epochs in float64 with data seed 0 (90 training examples)."""
    spec = with_epochs(2)[0]
    return (
        Population([spec], dtype=torch.float64, device="cpu").fit(data, keep_states=True)[0].state
    )


def test_a_state_records_the_data_it_was_trained_on(saved, data, tmp_path):
    assert (saved.data_seed, saved.n_train) == (0, len(data.x_train))
    saved.save(tmp_path / "s.pt")
    loaded = MemberState.load(tmp_path / "s.pt")
    assert (loaded.data_seed, loaded.n_train) == (0, len(data.x_train))


def continue_with(state, data, *, data_seed=0, dtype=torch.float64, **changes):
    spec = replace(state.spec, epochs=3, **changes)  # more epochs: always allowed
    population = Population([spec], data_seed=data_seed, dtype=dtype, device="cpu")
    return population.fit(data, states=[state])


# name: (what differs when continuing, the stored and the given value in the message)
MISMATCHES = {
    "seed": ({"seed": 2}, "seed=1, not 2"),
    "activation": ({"activation": "tanh"}, "activation='relu', not 'tanh'"),
    "batch_size": ({"batch_size": 32}, "batch_size=16, not 32"),
    "lr": ({"lr": 0.02}, "lr=0.01, not 0.02"),
    "dropout": ({"dropout": 0.5}, "dropout=0.3, not 0.5"),
    "bn_momentum": ({"bn_momentum": 0.5}, "bn_momentum=0.9, not 0.5"),
    "lr_decay": ({"lr_decay": "inverse_time"}, "lr_decay='none', not 'inverse_time'"),
    "data_seed": ({"data_seed": 1}, "data_seed=0, not 1"),
    "dtype": ({"dtype": torch.float32}, "dtype=torch.float64, not torch.float32"),
}


@pytest.mark.parametrize("name", list(MISMATCHES))
def test_continuing_a_state_under_other_settings_names_the_key_and_both_values(name, saved, data):
    changes, message = MISMATCHES[name]
    with pytest.raises(
        InvalidValue, match=rf"^MemberState: the state was trained with {re.escape(message)}"
    ):
        continue_with(saved, data, **changes)


def test_continuing_a_state_on_a_training_set_of_another_size_is_refused(saved, data):
    fewer = TrainingData.from_arrays(
        data.x_train[:60], data.y_train[:60], data.x_val, data.y_val, n_classes=data.n_classes
    )
    with pytest.raises(
        InvalidValue, match=r"^MemberState: the state was trained with n_train=90, not 60"
    ):
        continue_with(saved, fewer)


def test_a_state_whose_tensors_do_not_fit_its_spec_is_refused(saved, data):
    broken = replace(saved, params={**saved.params, "W1": torch.zeros(3, 3, dtype=torch.float64)})
    with pytest.raises(InvalidValue, match=r"^MemberState: W1 must be \[7, 7\], got \[3, 3\]"):
        continue_with(broken, data)
    slot = {**saved.optimizer["exp_avg"], "b2": torch.zeros(5, dtype=torch.float64)}
    broken = replace(saved, optimizer={**saved.optimizer, "exp_avg": slot})
    with pytest.raises(InvalidValue, match=r"^MemberState: exp_avg\[b2\] must be \[3\], got \[5\]"):
        continue_with(broken, data)


def test_a_state_saved_before_the_data_was_recorded_evaluates_but_does_not_continue(
    saved, data, tmp_path
):
    path = tmp_path / "old.pt"
    saved.save(path)
    payload = torch.load(path, weights_only=True)
    del payload["data_seed"], payload["n_train"]
    torch.save(payload, path)
    old = MemberState.load(path)
    assert old.data_seed is None and old.n_train is None
    (scores,) = evaluate_states([old], data.x_val, data.y_val, device="cpu", dtype=torch.float64)
    assert (
        scores
        == evaluate_states([saved], data.x_val, data.y_val, device="cpu", dtype=torch.float64)[0]
    )
    with pytest.raises(
        InvalidValue, match=r"^MemberState: the state does not record its data_seed"
    ):
        continue_with(old, data)


# -- a file that holds no state: one clear error naming it -------------------------------------
def damaged(saved: MemberState, kind: str, path) -> str:
    """Write a damaged state file of ``kind`` at ``path``; the reason the error gives."""
    saved.save(path)
    whole = path.read_bytes()
    if kind == "garbage":
        path.write_text("garbage\n")
        return "not a PyTorch file"
    if kind == "truncated":
        path.write_bytes(whole[: len(whole) // 2])
        return "a PyTorch file cut short or overwritten"
    if kind == "empty":
        path.write_bytes(b"")
        return "it is empty"
    payload = torch.load(path, weights_only=True)
    if kind == "another file":
        torch.save({"weights": torch.zeros(2)}, path)
        return "a PyTorch file of something else, holding ['weights']"
    if kind == "an unknown hyperparameter":
        payload["spec"]["width"] = 3
        torch.save(payload, path)
        return (
            "its contents are not a model's: MemberSpec.__init__() got an unexpected keyword "
            "argument 'width'"
        )
    payload["params"]["W0"] = torch.zeros(2, 2)  # a tensor in the wrong shape
    torch.save(payload, path)
    return "its contents are not a model's: MemberState: W0 must be [16, 7], got [2, 2]"


@pytest.mark.parametrize(
    "kind",
    ["garbage", "truncated", "empty", "another file", "an unknown hyperparameter", "a bad shape"],
)
def test_a_damaged_state_file_is_named_with_what_is_wrong_and_what_to_do(saved, kind, tmp_path):
    path = tmp_path / "trial-3.pt"
    why = damaged(saved, kind, path)
    with pytest.raises(DamagedState) as caught:
        MemberState.load(path)
    assert str(caught.value) == (
        f"model file: {str(path)!r} is not a caviar model file, or it is damaged ({why}); "
        f"remove it (a study then goes on without that kept model), or put back the file "
        f"caviar saved"
    )
    assert isinstance(caught.value, InvalidValue)  # the command line's one line, status 2


def test_saving_over_a_full_disk_keeps_the_file_there_and_leaves_no_other(
    saved, tmp_path, monkeypatch
):
    path = tmp_path / "trial-3.pt"
    saved.save(path)
    before = path.read_bytes()

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(WriteError, match=rf"^cannot write {re.escape(str(path))}: No space left"):
        saved.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]

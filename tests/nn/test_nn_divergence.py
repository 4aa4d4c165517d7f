"""Divergence isolation: a member whose loss blows up is frozen and reported, and the other
members of its group train bit for bit as if it had been a sane member."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, curve_array

from caviar.nn import EpochEvent, MemberSpec, Population

# name: (dtype, the group's shared settings, a learning rate that makes member BAD diverge:
# in epoch 2 for sgd and momentum, in epoch 1 for adam, whose steps are bounded by lr)
CASES = {
    "float32_sgd": (torch.float32, {"optimizer": "sgd"}, 1e3),
    "float64_sgd": (torch.float64, {"optimizer": "sgd"}, 1e16),
    "float32_momentum": (torch.float32, {"optimizer": "momentum"}, 1e4),
    "float64_momentum": (torch.float64, {"optimizer": "momentum"}, 1e16),
    "float32_sgd_batch_norm": (torch.float32, {"optimizer": "sgd", "batch_norm": True}, 1e3),
    "float64_sgd_batch_norm": (torch.float64, {"optimizer": "sgd", "batch_norm": True}, 1e20),
    "float32_adam_batch_norm": (torch.float32, {"optimizer": "adam", "batch_norm": True}, 1e20),
    "float64_adam_batch_norm": (torch.float64, {"optimizer": "adam", "batch_norm": True}, 1e200),
}
EPOCHS = 5
BAD = 2  # index of the diverging member


def population(shared: dict, bad_lr: float) -> list[MemberSpec]:
    base = MemberSpec(seed=0, n_layers=1, batch_size=16, epochs=EPOCHS, **shared)
    members = [
        replace(base, seed=10, hidden_units=4, lr=0.1),
        replace(base, seed=11, hidden_units=9, lr=0.3, dropout=0.3),
        replace(base, seed=3, hidden_units=8, lr=bad_lr),
        replace(base, seed=12, hidden_units=6, lr=0.05, weight_decay=0.01),
        replace(base, seed=13, hidden_units=8, lr=0.2, epochs=3),
    ]
    assert len({m.group_key() for m in members}) == 1  # one vectorized group
    return members


def fit(specs: list[MemberSpec], dtype: torch.dtype, data):
    events: list[EpochEvent] = []
    results = Population(specs, dtype=dtype, device="cpu").fit(
        data, on_epoch=events.append, keep_states=True
    )
    return results, events


@pytest.mark.parametrize("name", list(CASES))
def test_a_diverging_member_does_not_touch_the_others(name, data):
    dtype, shared, bad_lr = CASES[name]
    diverging = population(shared, bad_lr)
    sane = [*diverging]
    sane[BAD] = replace(diverging[BAD], lr=0.1)

    results, events = fit(diverging, dtype, data)
    control, _ = fit(sane, dtype, data)

    bad = results[BAD]
    assert bad.diverged is True and not control[BAD].diverged
    expected_epoch = 1 if shared["optimizer"] == "adam" else 2
    assert bad.diverged_epoch == expected_epoch
    assert len(bad.curve) == bad.diverged_epoch
    assert bad.state is not None and bad.state.diverged and bad.state.epoch == bad.diverged_epoch

    for k in range(len(diverging)):
        if k == BAD:
            continue
        assert not results[k].diverged
        assert torch.equal(curve_array(results[k]), curve_array(control[k])), f"member {k} curve"
        assert_states_equal(results[k].state, control[k].state, exact=True)

    # events: the member is reported, flagged once in its last epoch, then no more
    flags = [(e.epoch, e.diverged[e.members.index(BAD)]) for e in events if BAD in e.members]
    epoch = bad.diverged_epoch
    assert flags == [(e, e == epoch) for e in range(1, epoch + 1)]
    for e in events:
        assert all(d is False for i, d in zip(e.members, e.diverged, strict=True) if i != BAD)
        assert len(e.records) == len(e.members) == len(e.diverged)
    assert [e.epoch for e in events] == list(range(1, EPOCHS + 1))

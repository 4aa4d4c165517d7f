"""Every random number a member sees is a function of its seed and a counter
(caviar.nn.randomness): dropout masks, initial weights, data order and mini-batch bounds."""

from __future__ import annotations

import math

import pytest
import torch

from caviar.core.errors import InvalidValue
from caviar.nn import MemberSpec, Population
from caviar.nn.group import Group
from caviar.nn.randomness import (
    batch_bounds,
    column_keys_from,
    column_layout,
    dropout_keep,
    dropout_keys,
    epoch_order,
    initial_weights,
)


def keep_mask(seeds: list[int], rates: list[float], *, step=3, layer=1, batch=20, units=7):
    return dropout_keep(
        dropout_keys(seeds), torch.tensor(rates, dtype=torch.float64), step, layer, batch, units
    )


# -- dropout masks ---------------------------------------------------------------------------
def test_dropout_mask_ignores_padding_width():
    """Member 11's mask at its own width is the first 7 columns of its mask at width 32."""
    own = keep_mask([11], [0.5], units=7)
    padded = keep_mask([11], [0.5], units=32)
    assert torch.equal(padded[:, :, :7], own)


def test_dropout_mask_ignores_the_other_members_and_their_order():
    alone = keep_mask([11], [0.5])[0]
    crowd = keep_mask([5, 99, 11, 0, 1234], [0.1, 0.7, 0.5, 0.0, 0.3], units=12)
    reordered = keep_mask([11, 5], [0.5, 0.1], units=9)
    assert torch.equal(crowd[2, :, :7], alone)
    assert torch.equal(reordered[0, :, :7], alone)


def test_dropout_masks_are_the_same_on_every_device(device):
    """The hash is integer arithmetic: a GPU draws the CPU's masks, bit for bit, from keys
    mixed on the host or (the vectorized path) from step counts kept on the device."""
    seeds, rates = [5, 99, 11], [0.1, 0.7, 0.5]
    on_cpu = keep_mask(seeds, rates, units=12)
    keys = dropout_keys(seeds, device)
    rate = torch.tensor(rates, dtype=torch.float64, device=device)
    on_device = dropout_keep(keys, rate, 3, 1, 20, 12)
    assert on_device.device.type == device.type
    assert torch.equal(on_device.cpu(), on_cpu)
    member, unit = column_layout([12] * 3, device)
    steps = torch.full((3,), 3.0, dtype=torch.float64, device=device)
    from_device = column_keys_from(keys, steps, 1, member, unit)
    from_host = column_keys_from(keys.tolist(), [3] * 3, 1, member, unit)
    assert torch.equal(from_device.cpu(), from_host.cpu())


def test_dropout_mask_changes_with_seed_step_layer_and_example():
    base = keep_mask([11], [0.5], batch=40, units=50)[0]
    others = {
        "seed": keep_mask([12], [0.5], batch=40, units=50)[0],
        "step": keep_mask([11], [0.5], step=4, batch=40, units=50)[0],
        "layer": keep_mask([11], [0.5], layer=0, batch=40, units=50)[0],
    }
    for what, mask in others.items():
        agreement = (mask == base).double().mean().item()
        assert 0.4 < agreement < 0.6, f"changing the {what} should give an unrelated mask"
    # examples of one batch do not share a mask
    assert not torch.equal(base[0], base[1])


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.9])
def test_dropout_keeps_a_unit_with_probability_one_minus_rate(rate):
    batch, units = 200, 500
    keep = keep_mask([4, 8], [rate, rate], batch=batch, units=units)
    n = batch * units
    sd = math.sqrt(rate * (1 - rate) / n)  # binomial standard error of the kept fraction
    for member in range(2):
        kept = keep[member].double().mean().item()
        assert abs(kept - (1 - rate)) < 5 * sd, f"kept {kept:.4f}, expected {1 - rate}"
    # unit by unit the frequency is right too (no stuck columns): over 200 examples each
    per_unit = keep[0].double().mean(dim=0)
    assert abs(per_unit - (1 - rate)).max().item() < 6 * math.sqrt(rate * (1 - rate) / batch)


def test_dropout_rate_zero_keeps_everything():
    assert keep_mask([1, 2, 3], [0.0, 0.0, 0.0], batch=50, units=40).all()


# -- initial weights -------------------------------------------------------------------------
INIT_CASES = {
    # name: (spec changes, std of each matrix by hand for 400 inputs, 300 hidden, 10 classes)
    "he": ({"init": "he"}, [math.sqrt(2 / 400), math.sqrt(2 / 300), math.sqrt(2 / 300)]),
    "xavier": ({"init": "xavier"}, [math.sqrt(1 / 400), math.sqrt(1 / 300), math.sqrt(1 / 300)]),
    "explicit_std": ({"init": "std", "init_std": 1e-3}, [1e-3, 1e-3, 1e-3]),
}


@pytest.mark.parametrize("name", list(INIT_CASES))
def test_initial_weights_have_the_stated_std(name):
    changes, stds = INIT_CASES[name]
    spec = MemberSpec(seed=5, hidden_units=300, n_layers=2, **changes)
    weights = initial_weights(spec, 400, 10)
    assert [tuple(w.shape) for w in weights] == [(400, 300), (300, 300), (300, 10)]
    assert spec.init_stds(400, 10) == pytest.approx(stds, rel=1e-15)
    for w, std in zip(weights, stds, strict=True):
        assert w.dtype == torch.float64
        n = w.numel()
        # the sample std of n normal draws has relative standard error 1 / sqrt(2 n)
        assert w.std().item() == pytest.approx(std, rel=5 / math.sqrt(2 * n))
        assert abs(w.mean().item()) < 5 * std / math.sqrt(n)


def test_initial_weights_depend_on_the_seed_only():
    a = initial_weights(MemberSpec(seed=1, hidden_units=8, lr=0.5), 6, 3)
    b = initial_weights(MemberSpec(seed=1, hidden_units=8, lr=0.001, dropout=0.5), 6, 3)
    c = initial_weights(MemberSpec(seed=2, hidden_units=8), 6, 3)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


def test_group_starts_from_the_members_initial_weights():
    specs = [MemberSpec(seed=s, hidden_units=h, batch_size=8) for s, h in ((1, 4), (2, 9), (3, 6))]
    group = Group(specs, 5, 3, device=torch.device("cpu"), dtype=torch.float64)
    for k, spec in enumerate(specs):
        state = group.member_state(k, epoch=0, batch=0)
        for i, w in enumerate(initial_weights(spec, 5, 3)):
            assert torch.equal(state.params[f"W{i}"], w)
        assert all(not state.params[f"b{i}"].any() for i in range(spec.n_layers + 1))


# -- data order and mini-batches -------------------------------------------------------------
def test_epoch_order_is_a_permutation_that_changes_with_the_epoch():
    orders = [epoch_order(0, epoch, 50) for epoch in range(4)]
    for order in orders:
        assert torch.equal(order.sort().values, torch.arange(50))
    assert all(not torch.equal(orders[i], orders[j]) for i in range(4) for j in range(i))
    assert torch.equal(epoch_order(0, 2, 50), orders[2])  # a pure function of (seed, epoch)
    assert not torch.equal(epoch_order(1, 2, 50), orders[2])


def test_all_members_see_the_same_data_order(data, monkeypatch):
    """Members at the same epoch see the same mini-batches, whichever group they train in
    (here each alone, by max_chunk=1); the order changes from epoch to epoch."""
    seen: dict[int, list[torch.Tensor]] = {}  # member seed -> its batches in order
    original = Group.train_step

    def spy(self, xs, ys, lrs, active=None):
        for spec, x in zip(self.specs, xs, strict=True):
            seen.setdefault(spec.seed, []).append(x.clone())
        return original(self, xs, ys, lrs, active)

    monkeypatch.setattr(Group, "train_step", spy)
    specs = [
        MemberSpec(seed=1, hidden_units=4, batch_size=30, epochs=2),
        MemberSpec(seed=2, hidden_units=6, batch_size=30, epochs=2, optimizer="sgd"),
        MemberSpec(seed=3, hidden_units=5, batch_size=30, epochs=2),
    ]
    Population(specs, dtype=torch.float64, device="cpu", max_chunk=1).fit(data)

    batches = list(seen.values())
    assert len(batches) == 3 and all(len(b) == 6 for b in batches)
    for step in range(6):
        assert all(torch.equal(b[step], batches[0][step]) for b in batches)
    assert not torch.equal(batches[0][0], batches[0][3])  # epoch 2 starts with another batch
    # each epoch visits every example once
    epoch_one = torch.cat(batches[0][:3])
    assert torch.equal(epoch_one.sort(dim=0).values, data.x_train.sort(dim=0).values)


BOUNDS_CASES = {
    # name: (n, batch_size, batch_norm, expected bounds)
    "exact_fit": (10, 5, True, [(0, 5), (5, 10)]),
    "partial_last_batch_kept": (11, 4, True, [(0, 4), (4, 8), (8, 11)]),
    "trailing_batch_of_one_dropped_under_batch_norm": (10, 3, True, [(0, 3), (3, 6), (6, 9)]),
    "trailing_batch_of_one_kept_without_batch_norm": (
        10,
        3,
        False,
        [(0, 3), (3, 6), (6, 9), (9, 10)],
    ),
    "trailing_batch_of_two_kept": (11, 3, True, [(0, 3), (3, 6), (6, 9), (9, 11)]),
    "batch_larger_than_data": (7, 100, True, [(0, 7)]),
    "single_batch_of_one_without_batch_norm": (1, 5, False, [(0, 1)]),
    "batch_size_one_visits_every_example": (3, 1, False, [(0, 1), (1, 2), (2, 3)]),
    "ninety_in_batches_of_89_under_batch_norm": (90, 89, True, [(0, 89)]),
}


@pytest.mark.parametrize("name", list(BOUNDS_CASES))
def test_batch_bounds(name):
    n, batch_size, batch_norm, expected = BOUNDS_CASES[name]
    assert batch_bounds(n, batch_size, batch_norm=batch_norm) == expected


def test_batch_bounds_of_a_single_example_under_batch_norm_name_the_sizes():
    with pytest.raises(
        InvalidValue,
        match=r"^batch_norm: needs at least 2 training examples .*got a training set of 1 "
        r"with batch_size 5$",
    ):
        batch_bounds(1, 5, batch_norm=True)


def test_dropout_masks_show_no_correlation_between_neighbours_or_steps():
    """At rate 0.5, over 400 x 512 bits: the masks of adjacent units, adjacent examples, the
    next step and the next layer agree half of the time, within 5 standard errors (a weak
    hash shows up here as stripes or repeats)."""
    batch, units = 400, 512
    base = keep_mask([7], [0.5], step=10, layer=1, batch=batch, units=units)[0].double()
    n = batch * units
    se = 0.5 / math.sqrt(n)
    pairs = {
        "next unit": (base[:, :-1], base[:, 1:]),
        "next example": (base[:-1], base[1:]),
        "next step": (
            base,
            keep_mask([7], [0.5], step=11, layer=1, batch=batch, units=units)[0].double(),
        ),
        "next layer": (
            base,
            keep_mask([7], [0.5], step=10, layer=2, batch=batch, units=units)[0].double(),
        ),
        "next seed": (
            base,
            keep_mask([8], [0.5], step=10, layer=1, batch=batch, units=units)[0].double(),
        ),
    }
    for what, (a, b) in pairs.items():
        agreement = (a == b).double().mean().item()
        assert abs(agreement - 0.5) < 5 * se * math.sqrt(n / a.numel()), what

"""Slots refilled in place: a member that leaves frees its slot, not its group, and the next
member of the same shape takes that slot without a rebuild. What a member computes stays bit for
bit what it computes alone, in the refilled slot and beside it (CPU, float32 and float64)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal, cpu_group

from caviar.nn import MemberSpec, Pool, Population
from caviar.nn.group import Group

DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])

TARGETS = {
    # dropout 0.15: 1 / (1 - 0.15) rounds to another float32 when divided in float32
    "adam_batch_norm_dropout": MemberSpec(
        seed=42, hidden_units=7, batch_norm=True, dropout=0.15, batch_size=16, lr=0.01, epochs=3
    ),
    "rmsprop_decoupled_decay": MemberSpec(
        seed=43,
        hidden_units=7,
        optimizer="rmsprop",
        lr=0.003,
        weight_decay=0.05,
        decoupled_weight_decay=True,
        batch_size=16,
        epochs=3,
    ),
}


def neighbours(target: MemberSpec) -> list[MemberSpec]:
    """Members of the target's class: 0 and 2 of its shape (other hyperparameters), 1 wider."""
    return [
        replace(target, seed=100, lr=target.lr * 3, dropout=0.1, epochs=5),
        replace(target, seed=101, hidden_units=12, epochs=5),
        replace(target, seed=102, lr=target.lr / 2, dropout=0.0, weight_decay=0.01, epochs=1),
    ]


class Builds:
    """How many groups are built (Group.__init__ calls) while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = Group.__init__

        def counting(group, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.count += 1
            original(group, *args, **kwargs)

        monkeypatch.setattr(Group, "__init__", counting)


def run(pool: Pool) -> tuple[dict[int, list], dict[int, object]]:
    """Rounds until the pool is empty: every member's records and final state."""
    curves: dict[int, list] = {}
    states: dict[int, object] = {}
    while len(pool):
        for e in pool.step().epochs:
            curves.setdefault(e.key, []).append(e.record)
            if e.finished:
                states[e.key] = e.state
    return curves, states


@DTYPES
@pytest.mark.parametrize("name", list(TARGETS))
def test_a_member_in_a_refilled_slot_trains_bitwise_as_alone(name, dtype, data, monkeypatch):
    """The target takes the slot of a member that finished (its old weights, optimizer
    buffers, statistics and dropout key all replaced); no group is rebuilt, and the target and
    the member beside it train exactly as they do alone."""
    target = TARGETS[name]
    others = neighbours(target)
    alone = Population([target, others[0]], dtype=dtype, device="cpu").fit(data, keep_states=True)

    pool = Pool(data, device=torch.device("cpu"), dtype=dtype, keep_states=True)
    for k, spec in enumerate(others):
        pool.add(k, spec)
    first = {e.key: e for e in pool.step().epochs}
    assert first[2].finished and 2 not in pool.keys  # its slot is free now
    builds = Builds(monkeypatch)
    pool.add(7, target)
    curves, states = run(pool)
    assert builds.count == 0  # the slot was refilled in place
    assert curves[7] == alone[0].curve  # every float, exactly
    assert_states_equal(states[7], alone[0].state, exact=True)
    # the neighbour, an epoch ahead, went on untouched (its slot beside the refilled one)
    assert [first[0].record, *curves[0]] == alone[1].curve
    assert_states_equal(states[0], alone[1].state, exact=True)


@DTYPES
def test_replace_leaves_nothing_of_the_slots_last_member(dtype, data):
    """A slot refilled after its member trained holds exactly what a group built for the new
    member holds, and trains the same steps to the same bits."""
    target = TARGETS["adam_batch_norm_dropout"]
    old = replace(target, seed=5, lr=0.05, dropout=0.5, bn_momentum=0.5)
    device = torch.device("cpu")
    used = Group([old, replace(old, seed=6)], 16, 3, device=device, dtype=dtype)
    fresh = Group([target], 16, 3, device=device, dtype=dtype)
    x = data.x_train[:16].to(dtype)
    y = data.y_train[:16]
    for _ in range(3):
        used.train_step([x, x], y, [0.05, 0.05])
    used.replace(0, target)

    def state(group: Group) -> object:
        return group.member_state(0, epoch=0, batch=0)

    assert_states_equal(state(used), state(fresh), exact=True)
    for _ in range(4):
        used.train_step([x, x], y, [target.lr, 0.05])
        fresh.train_step([x], y, [target.lr])
    assert_states_equal(state(used), state(fresh), exact=True)


def test_replace_refuses_a_member_of_another_shape(data):
    group = Group(
        [TARGETS["adam_batch_norm_dropout"]], 16, 3, device=torch.device("cpu"), dtype=torch.float64
    )
    with pytest.raises(ValueError, match=r"slot 0 holds 7 units in 2 layers.*got 8 units"):
        group.replace(0, replace(TARGETS["adam_batch_norm_dropout"], hidden_units=8))


def test_a_halving_rung_refills_a_third_of_the_pool_without_rebuilding(data, monkeypatch):
    """Thirty members of two shapes; a third leave after their first epoch (pruned) and as
    many new ones of the same shapes come: every newcomer takes a freed slot in place."""
    base = MemberSpec(seed=0, hidden_units=6, batch_size=30, lr=0.01, epochs=3)
    specs = [replace(base, seed=k, hidden_units=6 + 3 * (k % 2)) for k in range(40)]
    pool = Pool(data, device=torch.device("cpu"), dtype=torch.float32)
    for k in range(30):
        pool.add(k, specs[k])
    pool.step()
    builds = Builds(monkeypatch)
    for k in range(0, 30, 3):
        pool.remove(k)
    for k in range(30, 40):
        pool.add(k, specs[k])
    done = pool.step()
    assert builds.count == 0
    assert sorted(e.key for e in done.epochs) == sorted(set(range(40)) - set(range(0, 30, 3)))


def test_members_of_a_new_shape_get_a_group_and_sparse_groups_are_compacted(data):
    """A newcomer that fits no free slot gets a group of its own (none is rebuilt for it);
    a group left at most half full is rebuilt with its survivors, who train on exactly."""
    base = MemberSpec(seed=0, hidden_units=6, batch_size=30, lr=0.01, epochs=4)
    pool = Pool(data, device=torch.device("cpu"), dtype=torch.float64, keep_states=True)
    specs = [replace(base, seed=k) for k in range(6)]
    for k, spec in enumerate(specs):
        pool.add(k, spec)
    pool.step()
    pool.add(10, replace(base, seed=10, hidden_units=9))
    pool.step()
    for k in (0, 1, 2, 3):
        pool.remove(k)  # 2 of 6 left in the first group: it is rebuilt at the next round
    curves, states = run(pool)
    alone = Population([specs[5]], dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    assert curves[5] == alone[0].curve[2:]
    assert_states_equal(states[5], alone[0].state, exact=True)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_the_batched_path_refills_a_slot_with_any_width_of_its_class(activation, data, monkeypatch):
    """On the GPU path (run here on the CPU) a slot is stored at its width class: a 5-unit
    member takes the slot a 9-unit one left, in place, and trains what it trains alone (float64,
    to the engine's tolerance: batched products add in another order)."""
    base = MemberSpec(seed=0, batch_size=30, lr=0.05, epochs=2, activation=activation)
    target = replace(base, seed=9, hidden_units=5, dropout=0.2)
    alone = Population([target], dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    pool = Pool(
        data, device=torch.device("cpu"), dtype=torch.float64, keep_states=True, vectorized=True
    )
    pool.add(0, replace(base, seed=1, hidden_units=9, epochs=1))
    pool.add(1, replace(base, seed=2, hidden_units=12, epochs=3))
    pool.step()
    builds = Builds(monkeypatch)
    pool.add(7, target)
    curves, states = run(pool)
    assert builds.count == 0
    for got, want in zip(curves[7], alone[0].curve, strict=True):
        assert got.epoch == want.epoch
        assert got.train_loss == pytest.approx(want.train_loss, rel=1e-9)
        assert got.val_accuracy == want.val_accuracy
    assert_states_equal(states[7], alone[0].state, exact=False)


@pytest.mark.parametrize("vectorized", [False, True], ids=["per-member", "batched"])
def test_a_groups_states_in_one_copy_per_buffer_equal_its_members_one_by_one(vectorized, data):
    """What a GPU does when a group is rebuilt (every buffer to the host at once, then each
    member's state cut from the copies) gives exactly each member's own state."""
    base = MemberSpec(seed=0, batch_size=16, lr=0.01, batch_norm=True, dropout=0.2)
    specs = [replace(base, seed=k, hidden_units=4 + 3 * k, n_layers=1 + k % 2) for k in range(5)]
    group = cpu_group(specs, data, vectorized=vectorized)
    x, y = data.x_train[:16], data.y_train[:16]
    for _ in range(3):
        group.train_step([x] * 5, y, [s.lr for s in specs])
    positions = [(4, 2, 0), (1, 2, 0), (3, 1, 5)]
    bulk = group.member_states(positions, data_seed=0, n_train=90, bulk=True)
    for (k, epoch, batch), state in zip(positions, bulk, strict=True):
        one = group.member_state(k, epoch=epoch, batch=batch, data_seed=0, n_train=90)
        assert_states_equal(state, one, exact=True)
        assert (state.epoch, state.batch, state.optimizer_steps) == (epoch, batch, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_a_refilled_slot_scales_dropout_as_a_group_built_for_it(dtype, data):
    """Inverted dropout's 1 / (1 - rate) for every rate of a percent grid, in the slot's
    columns: the same bits as in a group built for the member."""
    base = MemberSpec(seed=0, hidden_units=7, batch_size=16, dropout=0.5)
    group = Group([base, replace(base, seed=1)], 16, 3, device=torch.device("cpu"), dtype=dtype)
    cols = group.layout.columns(0, real=True)
    for percent in range(1, 100):
        spec = replace(base, seed=2, dropout=percent / 100)
        group.replace(0, spec)
        fresh = Group([spec], 16, 3, device=torch.device("cpu"), dtype=dtype)
        assert torch.equal(group._scale[0, cols], fresh._scale[0, cols]), percent


def test_on_the_batched_path_a_slot_too_narrow_is_left_free(data, monkeypatch):
    """A freed slot stored 9 wide (its bucket's widest member) cannot hold a 20-unit member of
    the same width class: that member gets a group of its own; a 6-unit one takes the slot."""
    base = MemberSpec(seed=0, batch_size=30, lr=0.05, epochs=2)
    pool = Pool(data, device=torch.device("cpu"), dtype=torch.float64, vectorized=True)
    pool.add(0, replace(base, seed=1, hidden_units=9, epochs=1))
    pool.add(1, replace(base, seed=2, hidden_units=5, epochs=3))
    pool.add(2, replace(base, seed=3, hidden_units=8, epochs=3))
    pool.step()  # member 0 is done: its slot, stored 9 wide, is free (the group 2/3 full)
    builds = Builds(monkeypatch)
    pool.add(7, replace(base, seed=7, hidden_units=20))
    pool.step()
    assert builds.count == 1  # a group of its own
    pool.add(8, replace(base, seed=8, hidden_units=6))
    pool.step()
    assert builds.count == 1  # the free slot

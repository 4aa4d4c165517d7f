"""Memory and grouping: a population larger than the memory budget trains as many members at
once as fit, every member in exactly one group, with results that do not depend on it; a group
that runs out of memory is halved and its epoch retried, unseen by callbacks."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch
from _nn_support import N_CLASSES, N_INPUTS, N_TRAIN, assert_states_equal, curve_array

from caviar.nn import EpochEvent, InsufficientMemory, MemberSpec, Pool, Population
from caviar.nn.group import Group
from caviar.nn.memory import bytes_per_member

BASE = MemberSpec(seed=0, hidden_units=8, batch_size=16, lr=0.01, epochs=2)
ITEMSIZE = 8  # float64


def one_member_bytes(spec: MemberSpec) -> int:
    return bytes_per_member(spec, N_INPUTS, N_CLASSES, eval_batch=N_TRAIN, itemsize=ITEMSIZE)


def at_once(specs: list[MemberSpec], budget: int) -> int:
    population = Population(specs, dtype=torch.float64, device="cpu", memory_limit=budget)
    return population.check_memory(N_INPUTS, N_CLASSES, N_TRAIN)


def partition(specs: list[MemberSpec], data, states=None, **kwargs) -> list[list[int]]:
    pool = Pool(data, device=torch.device("cpu"), dtype=torch.float64, **kwargs)
    for i, spec in enumerate(specs):
        pool.add(i, spec, None if states is None else states[i])
    return sorted(pool.partition())


def twelve_members() -> list[MemberSpec]:
    """One architecture class (adam, no batch norm), widths 3..20, all with dropout."""
    return [
        replace(BASE, seed=i, hidden_units=3 + (7 * i) % 18, lr=0.005 * (1 + i % 3), dropout=0.2)
        for i in range(12)
    ]


def test_a_small_budget_trains_fewer_members_at_once():
    specs = twelve_members()
    widest = max(one_member_bytes(s) for s in specs)
    assert at_once(specs, 3 * widest + 1) == 3
    assert at_once(specs, 100 * widest) == 100


def test_max_chunk_caps_the_group_size(data):
    groups = partition(twelve_members(), data, max_group=5)
    assert [len(g) for g in groups] == [5, 5, 2]
    assert sorted(i for g in groups for i in g) == list(range(12))


def test_fitting_a_few_at_a_time_gives_the_all_at_once_results(data):
    specs = twelve_members()
    one = Population(specs, dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    budget = 2 * max(one_member_bytes(s) for s in specs) + 1
    many = Population(specs, dtype=torch.float64, device="cpu", memory_limit=budget).fit(
        data, keep_states=True
    )
    for k in range(len(specs)):
        assert many[k].index == k and many[k].spec == specs[k]
        assert torch.equal(curve_array(many[k]), curve_array(one[k]))
        assert_states_equal(many[k].state, one[k].state, exact=True)


def test_a_group_that_runs_out_of_memory_is_halved_and_retried(data, monkeypatch):
    specs = twelve_members()[:6]
    expected = Population(specs, dtype=torch.float64, device="cpu").fit(data)
    original = Group.train_step
    sizes: list[int] = []

    def train_step(self, *args):
        sizes.append(self.n_members)
        if self.n_members > 2:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to ...")
        return original(self, *args)

    monkeypatch.setattr(Group, "train_step", train_step)
    events: list[EpochEvent] = []
    results = Population(specs, dtype=torch.float64, device="cpu").fit(data, on_epoch=events.append)
    # 6 fails, then 3 and 3, each failing, then groups of 1 and 2 train
    assert sizes[:2] == [6, 3] and {s for s in sizes if s <= 2} == {1, 2}
    for k in range(len(specs)):
        assert torch.equal(curve_array(results[k]), curve_array(expected[k]))
    # no epoch reached the callback twice
    reported = [(i, r.epoch) for e in events for i, r in zip(e.members, e.records, strict=True)]
    assert len(reported) == len(set(reported)) == 6 * 2


def printed_sizes(message: str) -> list[float]:
    """The memory sizes a message prints ("46 MiB", "0.04 MiB", "512 KiB"), in bytes."""
    scale = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30}
    found = re.findall(r"(\d+(?:\.\d+)?) ?(B|KiB|MiB|GiB)\b", message)
    return [float(value) * scale[unit] for value, unit in found]


def test_a_budget_smaller_than_one_member_names_the_mib_needed():
    big = replace(BASE, hidden_units=2000)  # tens of MiB: the MiB figures mean something
    need = one_member_bytes(big)
    assert need > 20 * 2**20
    with pytest.raises(InsufficientMemory, match=r"hidden_units=2000.* needs .* MiB") as error:
        at_once([BASE, big], 10 * 2**20)
    # "needs <need>, more than the <budget> available", to the precision printed
    assert printed_sizes(str(error.value)) == pytest.approx([need, 10 * 2**20], rel=0.02)


# members that differ in one of these go to different groups
GROUP_KEY_CASES = {
    "batch_size": {"batch_size": 32},
    "optimizer": {"optimizer": "sgd"},
    "batch_norm": {"batch_norm": True},
    "activation": {"activation": "tanh"},
    "bn_eps": {"bn_eps": 1e-3},  # torch's batch-norm kernel takes one eps
}


@pytest.mark.parametrize("key", list(GROUP_KEY_CASES))
def test_members_of_different_architecture_classes_go_to_different_groups(key, data):
    other = replace(BASE, seed=1, **GROUP_KEY_CASES[key])
    assert partition([BASE, other, replace(BASE, seed=2)], data) == [[0, 2], [1]]


def test_per_member_hyperparameters_widths_and_depths_share_a_group(data):
    specs = [
        BASE,
        replace(BASE, seed=1, hidden_units=300, lr=0.5, beta1=0.5, dropout=0.4, init="xavier"),
        replace(BASE, seed=2, weight_decay=0.1, lr_decay="step", decay_rate=0.1, epochs=7),
        replace(BASE, seed=3, n_layers=4),
    ]
    # deepest first (layer activations end at the last member that deep), then by width
    assert partition(specs, data) == [[3, 0, 2, 1]]


def test_members_restored_mid_epoch_go_to_their_own_group(data):
    first = Population([BASE], dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    state = replace(first[0].state, batch=2)  # mid-epoch
    specs = [replace(BASE, epochs=4), replace(BASE, seed=1, epochs=4), replace(BASE, epochs=4)]
    assert partition(specs, data, states=[state, None, state]) == [[0, 2], [1]]


def test_running_out_of_memory_mid_epoch_in_a_trained_group_loses_its_members_cleanly(
    data, monkeypatch
):
    """A group whose members have trained keeps no copy of their epoch-start state, so when the
    device runs out of memory in a later epoch, at any mini-batch, they leave the pool as
    ``lost`` with a note, groups are halved from then on, and the members beside them go on;
    trained again from their seeds, the lost ones give exactly the results they give alone."""
    specs = twelve_members()[:5]
    expected = Population(specs, dtype=torch.float64, device="cpu").fit(data)
    original = Group.train_step
    calls = {"n": 0}

    def train_step(self, *args):
        calls["n"] += 1
        if self.n_members == 4 and calls["n"] == 9:  # the group's second epoch, mid-way
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, *args)

    monkeypatch.setattr(Group, "train_step", train_step)
    pool = Pool(data, device=torch.device("cpu"), dtype=torch.float64)
    for k in range(4):
        pool.add(k, specs[k])
    first = pool.step()
    pool.add(4, replace(specs[4], n_layers=2))  # a group of its own, beside them
    second = pool.step()
    monkeypatch.undo()
    assert [e.key for e in first.epochs] == [0, 1, 2, 3]
    assert second.lost == [0, 1, 2, 3] and [e.key for e in second.epochs] == [4]
    assert second.notes == [
        "caviar: the device ran out of memory in a group of 4 members mid-epoch; they train "
        "again from their seeds, in groups of at most 2"
    ]
    assert pool.keys == [4] and pool.max_group == 2
    for k in range(4):  # from their seeds again, in the smaller groups
        pool.add(k, specs[k])
    curves: dict[int, list] = {}
    while len(pool):
        for e in pool.step().epochs:
            curves.setdefault(e.key, []).append(e.record)
    for k in range(4):
        assert curves[k] == expected[k].curve  # every float, exactly


def test_running_out_of_memory_never_raises_the_group_size_cap(data, monkeypatch):
    """Groups already smaller than half the failing one keep the smaller cap."""
    specs = twelve_members()[:4]
    original = Group.train_step

    def train_step(self, *args):
        if self.n_members == 4 and self.steps_t.max() >= 6:  # the group's second epoch
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, *args)

    monkeypatch.setattr(Group, "train_step", train_step)
    pool = Pool(data, device=torch.device("cpu"), dtype=torch.float64)
    for k, spec in enumerate(specs):
        pool.add(k, spec)
    pool.step()
    pool.max_group = 1  # as if another group had failed at 2 members meanwhile
    assert pool.step().lost == [0, 1, 2, 3]
    assert pool.max_group == 1

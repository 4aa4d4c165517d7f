"""Memory planning: a population too large for the budget is split into chunks that each fit,
every member in exactly one, and the results do not depend on the split."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import torch
from _nn_support import N_CLASSES, N_INPUTS, N_TRAIN, assert_curves_close, assert_states_equal

from caviar.nn import Chunk, InsufficientMemory, MemberSpec, Population
from caviar.nn.group import Group
from caviar.nn.memory import bytes_per_member

BASE = MemberSpec(seed=0, hidden_units=8, batch_size=16, lr=0.01, epochs=2)
ITEMSIZE = 8  # float64


def one_member_bytes(spec: MemberSpec, width: int | None = None) -> int:
    return bytes_per_member(
        spec,
        N_INPUTS,
        N_CLASSES,
        width=width or spec.hidden_units,
        eval_batch=N_TRAIN,
        itemsize=ITEMSIZE,
    )


def plan(specs: list[MemberSpec], budget: int | None = None, **kwargs) -> list[Chunk]:
    population = Population(specs, dtype=torch.float64, device="cpu", memory_limit=budget, **kwargs)
    return population.plan(N_INPUTS, N_CLASSES, N_TRAIN)


def assert_partition(chunks: list[Chunk], n: int) -> None:
    members = sorted(i for c in chunks for i in c.members)
    assert members == list(range(n)), "every member in exactly one chunk"


def twelve_members() -> list[MemberSpec]:
    """One architecture class (adam, no batch norm), widths 3..20, all with dropout."""
    return [
        replace(BASE, seed=i, hidden_units=3 + (7 * i) % 18, lr=0.005 * (1 + i % 3), dropout=0.2)
        for i in range(12)
    ]


def test_a_small_budget_splits_the_population_into_chunks_that_fit():
    specs = twelve_members()
    widest = one_member_bytes(specs[0], width=20)
    budget = 3 * widest + 1
    chunks = plan(specs, budget)

    assert len(chunks) >= 4
    assert_partition(chunks, len(specs))
    for chunk in chunks:
        assert chunk.bytes <= budget
        assert chunk.width == max(specs[i].hidden_units for i in chunk.members)
    # with room for everyone, one chunk
    assert len(plan(specs, 100 * budget)) == 1


def test_max_chunk_caps_the_chunk_size():
    chunks = plan(twelve_members(), 10**12, max_chunk=5)
    assert [len(c.members) for c in chunks] == [5, 5, 2]
    assert_partition(chunks, 12)


def test_fitting_in_many_chunks_gives_the_one_chunk_results(data):
    specs = twelve_members()
    one = Population(specs, dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    budget = 2 * one_member_bytes(specs[0], width=20) + 1
    assert len(plan(specs, budget)) >= 4
    many = Population(specs, dtype=torch.float64, device="cpu", memory_limit=budget).fit(
        data, keep_states=True
    )
    for k in range(len(specs)):
        assert many[k].index == k and many[k].spec == specs[k]
        assert_curves_close(many[k], one[k])
        assert_states_equal(many[k].state, one[k].state, exact=False)


def test_a_chunk_that_runs_out_of_memory_is_halved_and_retried(data, monkeypatch):
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
    results = Population(specs, dtype=torch.float64, device="cpu").fit(data)
    # 6 fails, then 3 and 3, each failing, then 1 + 2 and 1 + 2 train
    assert sizes[:2] == [6, 3] and {s for s in sizes if s <= 2} == {1, 2}
    for k in range(len(specs)):
        assert_curves_close(results[k], expected[k])


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
        plan([BASE, big], 10 * 2**20)
    # "needs <need>, more than the <budget> available", to the precision printed
    assert printed_sizes(str(error.value)) == pytest.approx([need, 10 * 2**20], rel=0.02)


def test_insufficient_memory_message_shows_a_need_larger_than_the_budget():
    need = one_member_bytes(BASE)
    with pytest.raises(InsufficientMemory) as error:
        plan([BASE], need // 2)
    shown = printed_sizes(str(error.value))
    assert len(shown) == 2 and shown[0] > shown[1] > 0, str(error.value)


# members that differ in one of these go to different chunks
GROUP_KEY_CASES = {
    "n_layers": {"n_layers": 3},
    "batch_size": {"batch_size": 32},
    "optimizer": {"optimizer": "sgd"},
    "batch_norm": {"batch_norm": True},
    "activation": {"activation": "tanh"},
    "bn_eps": {"bn_eps": 1e-3},  # torch's batch-norm kernel takes one eps
}


@pytest.mark.parametrize("key", list(GROUP_KEY_CASES))
def test_members_of_different_architecture_classes_go_to_different_chunks(key):
    other = replace(BASE, seed=1, **GROUP_KEY_CASES[key])
    chunks = plan([BASE, other, replace(BASE, seed=2)])
    assert sorted(c.members for c in chunks) == [(0, 2), (1,)]


def test_per_member_hyperparameters_share_a_chunk():
    specs = [
        BASE,
        replace(BASE, seed=1, hidden_units=30, lr=0.5, beta1=0.5, dropout=0.4, init="xavier"),
        replace(BASE, seed=2, weight_decay=0.1, lr_decay="step", decay_rate=0.1, epochs=7),
    ]
    assert [c.members for c in plan(specs)] == [(0, 1, 2)]


def test_members_restored_at_different_positions_go_to_different_chunks(data):
    first = Population([BASE], dtype=torch.float64, device="cpu").fit(data, keep_states=True)
    state = first[0].state  # position: epoch 2, batch 0
    specs = [replace(BASE, epochs=4), replace(BASE, seed=1, epochs=4), replace(BASE, epochs=4)]
    population = Population(specs, dtype=torch.float64, device="cpu")
    chunks = population.plan(N_INPUTS, N_CLASSES, N_TRAIN, states=[state, None, state])
    assert sorted(c.members for c in chunks) == [(0, 2), (1,)]


def test_every_chunk_fits_the_budget_when_dropout_is_mixed():
    with_dropout = replace(BASE, dropout=0.5)
    without = replace(BASE, seed=1)
    assert one_member_bytes(with_dropout) > one_member_bytes(without)
    budget = 2 * one_member_bytes(without) + 1  # room for two members without dropout only
    chunks = plan([with_dropout, without], budget)
    assert_partition(chunks, 2)
    assert all(c.bytes <= budget for c in chunks), [(c.members, c.bytes, budget) for c in chunks]


def test_a_member_that_fits_alone_never_raises_insufficient_memory():
    wide = replace(BASE, hidden_units=100, epochs=2)
    narrow = replace(BASE, seed=1, hidden_units=4, epochs=5, dropout=0.5)
    budget = one_member_bytes(wide)
    assert one_member_bytes(narrow) < budget  # each fits alone
    chunks = plan([wide, narrow], budget)
    assert sorted(c.members for c in chunks) == [(0,), (1,)]

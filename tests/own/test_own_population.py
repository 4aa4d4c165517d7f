"""A population of the user's module (caviar.own.pool.ModulePool) against each member trained
alone with torch.nn and torch.optim.

The oracle, :func:`alone`, builds the member's module with its seed
(:func:`caviar.own.builder.build_module`), and trains it in a plain loop: torch.optim
(``foreach=False``) and ``LambdaLR``, the data order caviar uses
(:func:`caviar.nn.randomness.epoch_order`, :func:`~caviar.nn.randomness.batch_bounds`), and its
dropouts swapped for :class:`caviar.own.dropout.KeyedDropout` with the member's key and its
optimizer step set before each batch: that is what a member's randomness is (its own masks,
alone or in a crowd). The population must give each member the oracle's epoch records and its
final ``state_dict`` (batch norm's running statistics included): in float64 to rtol 1e-9.

Bitwise or not, on this CPU (2 cores, x86, torch 2.x), measured when these tests were written:
- Against the oracle, not bitwise. vmap runs a batched kernel over the stack ([P, B, ...]: a
  convolution, a matmul, batch norm's reductions) where the oracle runs the unbatched one, and
  they sum in another order. float64: at most 1.5e-14 relative on the records and the final
  tensors after 3 epochs; float32: at most 1.4e-6 on the records and 3.3e-6 (of the tensor's
  largest entry) on the final tensors. Asserted: float64 to rtol 1e-9; float32 to rtol 1e-5.
- A member's results in a pool of 1 and in a pool of 6 (others with other hyperparameters in
  its group, other widths in groups of their own), or in a pool with a member that diverges
  and one without: bitwise in float64. In float32 bitwise when only the other groups change,
  not when its own group grows: vmap computes a convolution's weight gradient as one grouped
  convolution over the stack, and in float32 that kernel sums in another order for P groups
  than for one (measured on conv2d's backward alone: 6e-5 apart on entries of ~10). At most
  5.2e-7 relative on the records, 1.4e-6 on the tensors: asserted to rtol 1e-5.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from _own_oracle import factor, torch_optimizer
from torch import Tensor, nn

from caviar.core.records import EpochRecord
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.own.builder import Build, build_module
from caviar.own.data import ModuleData
from caviar.own.dropout import KeyedDropout, member_key, swap_dropout
from caviar.own.member import KeptModule
from caviar.own.pool import ModulePool, ModuleSpec
from caviar.own.settings import split_params

CPU = torch.device("cpu")
DATA_SEED = 7
N_TRAIN, N_VAL, CLASSES = 72, 16, 3  # batches of 16: four, and a last one of 8
Loss = Callable[[Tensor, Tensor], Tensor]


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    return nn.functional.cross_entropy(output, target)


def tiny_data(dtype: torch.dtype) -> ModuleData:
    """8x8 one-channel images, flattened, in 3 classes."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_VAL, 64, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randint(0, CLASSES, (N_TRAIN + N_VAL,), generator=g)
    return ModuleData(x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:], CLASSES)


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """Tiny tensors: one intra-op thread is faster than two on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the user's modules ----------------------------------------------------------------------
class Net(nn.Module):
    """Every layer the population must handle: convolution, batch norm 2d and 1d, a residual
    connection, max and average pooling, layer norm, dropout, linear.

    No bias reaches a batch norm through linear layers only (the first convolution has none):
    batch norm subtracts it again, so its true gradient is 0 and what is left is rounding
    noise, which Adam scales up to full steps; two correct summation orders then move it
    apart (measured: 1e-7 relative in float64, 100% in float32), so nothing could compare."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.max = nn.MaxPool2d(2)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(width * 2 * 2, 16, bias=False)
        self.ln = nn.LayerNorm(16)
        self.bn1 = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(16, CLASSES)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.bn(self.conv(x.view(-1, 1, 8, 8))))  # [B, w, 8, 8]
        h = h + self.conv2(h)  # the residual connection
        h = self.avg(self.max(h)).flatten(1)  # [B, w * 2 * 2]
        h = self.drop(self.ln(torch.relu(self.bn1(self.fc(h)))))  # [B, 16]
        return self.out(h)


def build_net(params: Mapping[str, Any]) -> nn.Module:
    return Net(params["width"], params["dropout"])


class Mlp(nn.Module):
    """A small MLP whose forward reads ``self.act`` (a plain attribute, not in its repr)."""

    def __init__(self, width: int, act: str = "relu") -> None:
        super().__init__()
        self.fc1, self.fc2, self.act = nn.Linear(64, width), nn.Linear(width, CLASSES), act

    def hidden(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        return torch.relu(h) if self.act == "relu" else torch.tanh(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.hidden(x))


def build_mlp(params: Mapping[str, Any]) -> nn.Module:
    return Mlp(params["width"], params.get("act", "relu"))


class Branchy(Mlp):
    """Data-dependent control flow: vmap cannot batch it."""

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden(x)
        if h.sum() > 0:
            h = h * 0.5
        return self.fc2(h)


class Scalar(Mlp):
    """``.item()`` in forward: vmap cannot batch it."""

    def forward(self, x: Tensor) -> Tensor:
        h = self.hidden(x)
        return self.fc2(h / (1.0 + h.abs().max().item()))


class TorchDropout(Mlp):
    """torch's own dropout, called in forward (not a module caviar swaps): vmap refuses its
    randomness."""

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(nn.functional.dropout(self.hidden(x), 0.3, self.training))


# -- the members -----------------------------------------------------------------------------
BASE: dict[str, Any] = {
    "lr": 1e-2,
    "momentum": 0.0,
    "weight_decay": 0.0,
    "nesterov": False,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "alpha": 0.99,
    "lr_decay": "none",
    "decay_rate": 1.0,
    "decay_every": 1,
}


def settings(optimizer: str, **over: Any) -> dict[str, Any]:
    return {"optimizer": optimizer, **BASE, **over}


@dataclass(frozen=True)
class Member:
    key: int
    hp: dict[str, Any]  # what the builder reads
    settings: dict[str, Any] = field(default_factory=lambda: settings("adam"))
    build: Build = build_net
    epochs: int = 3
    batch_size: int = 16

    @property
    def seed(self) -> int:
        return 100 + self.key


def net(key: int, lr: float, dropout: float, width: int = 4, **over: Any) -> Member:
    opt = over.pop("optimizer", "adam")
    return Member(key, {"width": width, "dropout": dropout}, settings(opt, lr=lr, **over))


# -- the oracle: one member, torch.nn and torch.optim ----------------------------------------
@dataclass
class Trained:
    records: list[EpochRecord]
    state: dict[str, Tensor]


def alone(m: Member, data: ModuleData, dtype: torch.dtype, loss: Loss = cross_entropy) -> Trained:
    """Member ``m`` trained by itself with torch.optim (see the module docstring)."""
    module = build_module(m.build, m.hp, m.seed, dtype=dtype, device=CPU).module
    sites = swap_dropout(module, dtype)
    drops = [mod for mod in module.modules() if isinstance(mod, KeyedDropout)]
    for d in drops:
        d.key.fill_(member_key(m.seed))
    opt = torch_optimizer(m.settings, list(module.parameters()))
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor(m.settings))
    batch_norm = any(isinstance(mod, nn.modules.batchnorm._BatchNorm) for mod in module.modules())
    x, y = data.x_train, data.y_train
    step, records = 0, []
    for epoch in range(m.epochs):
        order = epoch_order(DATA_SEED, epoch, len(y))
        module.train()
        total, right, seen = 0.0, 0, 0
        for start, stop in batch_bounds(len(y), m.batch_size, batch_norm=batch_norm):
            for d in drops:
                d.step.fill_(step)
            index = order[start:stop]
            out = module(x[index])
            value = loss(out, y[index])
            opt.zero_grad()
            value.backward()
            opt.step()
            step += 1
            total += float(value.detach()) * (stop - start)
            right += int((out.argmax(-1) == y[index]).sum())
            seen += stop - start
        schedule.step()
        module.eval()
        with torch.no_grad():
            out = module(data.x_val)
            val_loss = float(loss(out, data.y_val))
            val_accuracy = float((out.argmax(-1) == data.y_val).double().mean())
        records.append(EpochRecord(epoch + 1, total / seen, right / seen, val_loss, val_accuracy))
    ours = {f"{site}.{part}" for site in sites for part in ("key", "step", "p")}
    state = {k: v.detach() for k, v in module.state_dict().items() if k not in ours}
    return Trained(records, state)


# -- the population --------------------------------------------------------------------------
@dataclass
class PoolRun:
    records: dict[int, list[EpochRecord]]
    kept: dict[int, KeptModule]
    diverged: set[int]
    notes: list[str]
    groups: list[list[int]]  # the first round's groups, by member key

    def trained(self, key: int) -> Trained:
        return Trained(self.records[key], self.kept[key].state_dict)


def spec(m: Member, dtype: torch.dtype) -> ModuleSpec:
    module = build_module(m.build, m.hp, m.seed, dtype=dtype, device=CPU).module
    return ModuleSpec(
        seed=m.seed,
        epochs=m.epochs,
        batch_size=m.batch_size,
        optimizer=m.settings["optimizer"],
        settings=m.settings,
        module=module,
        params=m.hp,
    )


def run_pool(
    members: Sequence[Member],
    data: ModuleData,
    dtype: torch.dtype,
    *,
    late: Sequence[Member] = (),
    loss: Loss = cross_entropy,
) -> PoolRun:
    """``members`` added at once, ``late`` after the first round; rounds until none is left."""
    notes: list[str] = []
    pool = ModulePool(data, loss=loss, data_seed=DATA_SEED, note=notes.append)
    for m in members:
        pool.add(m.key, spec(m, dtype))
    groups = [[member.key for member in group] for _, group in pool._groups()]
    run = PoolRun({}, {}, set(), notes, groups)
    rounds = 0
    while len(pool):
        result = pool.step()
        rounds += 1
        for e in result.epochs:
            run.records.setdefault(e.key, []).append(e.record)
            if e.diverged:
                assert e.finished
                run.diverged.add(e.key)
        run.kept.update(result.kept)
        if rounds == 1:
            for m in late:
                pool.add(m.key, spec(m, dtype))
    return run


def assert_same(mine: Trained, theirs: Trained, *, rtol: float, atol: float) -> None:
    assert [r.epoch for r in mine.records] == [r.epoch for r in theirs.records]
    for a, b in zip(mine.records, theirs.records, strict=True):
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert getattr(a, name) == pytest.approx(getattr(b, name), rel=rtol, abs=atol), (
                name,
                a,
                b,
            )
    assert mine.state.keys() == theirs.state.keys()
    for name, tensor in theirs.state.items():
        torch.testing.assert_close(mine.state[name], tensor, rtol=rtol, atol=atol, msg=name)


def assert_as_bitwise_as_can_be(mine: Trained, theirs: Trained, dtype: torch.dtype) -> None:
    """Bitwise in float64; float32 to :data:`F32` (see the module docstring)."""
    if dtype == torch.float64:
        assert_bitwise(mine, theirs)
    else:
        assert_same(mine, theirs, **F32)


def assert_bitwise(mine: Trained, theirs: Trained) -> None:
    assert mine.records == theirs.records
    assert mine.state.keys() == theirs.state.keys()
    for name, tensor in theirs.state.items():
        assert torch.equal(mine.state[name], tensor), name


# -- 1, 2: each member as it trains alone ---------------------------------------------------
#: optimizer cases: three members each, with their own rates and dropout (0 included); the
#: third joins after the first round, so it trains at epoch 1 while the others are at epoch 2
CASES = {
    "adam": [net(0, 1e-2, 0.2), net(1, 3e-3, 0.5), net(2, 1e-3, 0.0)],
    "sgd-nesterov": [
        net(0, 0.05, 0.1, optimizer="sgd", momentum=0.9, nesterov=True),
        net(1, 0.02, 0.3, optimizer="sgd", momentum=0.5, nesterov=True, weight_decay=1e-3),
        net(2, 0.1, 0.0, optimizer="sgd", momentum=0.8, nesterov=True),
    ],
    "rmsprop": [
        net(0, 1e-3, 0.2, optimizer="rmsprop"),
        net(1, 3e-3, 0.4, optimizer="rmsprop", momentum=0.9, alpha=0.9),
        net(2, 1e-3, 0.0, optimizer="rmsprop", weight_decay=1e-2),
    ],
    "adamw-step-decay": [
        net(0, 1e-2, 0.2, optimizer="adamw", weight_decay=0.1, lr_decay="step", decay_rate=0.5),
        net(1, 3e-3, 0.3, optimizer="adamw", weight_decay=0.01, lr_decay="step", decay_rate=0.3),
        net(2, 5e-3, 0.0, optimizer="adamw", weight_decay=0.05, lr_decay="step", decay_rate=0.9),
    ],
}
#: float64: the batched and unbatched kernels sum in another order; 1.5e-14 at most measured
F64 = {"rtol": 1e-9, "atol": 1e-12}
#: float32: the same at float32's scale; 3.3e-6 at most measured (see the module docstring)
F32 = {"rtol": 1e-5, "atol": 1e-5}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_each_member_equals_its_alone_training(case: str, dtype: torch.dtype) -> None:
    members = CASES[case]
    data = tiny_data(dtype)
    run = run_pool(members[:2], data, dtype, late=members[2:])
    assert run.groups == [[0, 1]]  # one vectorized group
    assert run.notes == [] and run.diverged == set()
    tolerance = F64 if dtype == torch.float64 else F32
    for m in members:
        assert_same(run.trained(m.key), alone(m, data, dtype), **tolerance)
    # batch norm's running statistics moved, and were compared above
    state = run.kept[0].state_dict
    assert int(state["bn.num_batches_tracked"]) == 3 * 5
    assert not torch.equal(state["bn1.running_var"], torch.ones(16, dtype=dtype))


# -- 3: a member that diverges -------------------------------------------------------------
def overflowing(output: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy, infinite once a score passes 1e4 (as a loss that overflows)."""
    big = output.abs().amax() > 1e4
    return torch.where(big, torch.full_like(output[0, 0], math.inf), cross_entropy(output, target))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_a_diverging_member_leaves_the_others_unchanged(dtype: torch.dtype) -> None:
    data = tiny_data(dtype)
    calm = [net(0, 1e-2, 0.2, optimizer="sgd"), net(2, 3e-2, 0.0, optimizer="sgd")]
    wild = net(1, 1e6, 0.1, optimizer="sgd")
    with_it = run_pool([*calm, wild], data, dtype, loss=overflowing)
    without = run_pool(calm, data, dtype, loss=overflowing)
    assert with_it.groups == [[0, 1, 2]]
    assert with_it.diverged == {1} and 1 not in with_it.kept
    assert len(with_it.records[1]) < 3  # it left at the epoch it diverged
    for m in calm:
        assert_as_bitwise_as_can_be(with_it.trained(m.key), without.trained(m.key), dtype)


# -- 4: alone or in a crowd ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_alone_or_in_a_crowd(dtype: torch.dtype) -> None:
    """A member in a pool of one, and among five others (other rates and dropout in its group,
    other widths in groups of their own): the same records and tensors, bit for bit in
    float64; with only other groups beside it, bit for bit in float32 too."""
    data = tiny_data(dtype)
    me = net(0, 1e-2, 0.3)
    crowd = [
        net(1, 3e-3, 0.1),
        net(2, 1e-3, 0.0),
        net(3, 1e-2, 0.2, width=2),
        net(4, 2e-2, 0.5, width=2),
        net(5, 5e-3, 0.3, width=6),
    ]
    solo = run_pool([me], data, dtype)
    many = run_pool([*crowd[:2], me, *crowd[2:]], data, dtype)
    assert sorted(map(sorted, many.groups)) == [[0, 1, 2], [3, 4], [5]]
    assert_as_bitwise_as_can_be(many.trained(0), solo.trained(0), dtype)
    other_groups = run_pool([me, *crowd[2:]], data, dtype)
    assert_bitwise(other_groups.trained(0), solo.trained(0))


# -- 5: modules vmap refuses ---------------------------------------------------------------
def mlp(key: int, lr: float, build: Build, **hp: Any) -> Member:
    return Member(key, {"width": 6, **hp}, settings("adam", lr=lr), build=build, epochs=2)


def build_branchy(params: Mapping[str, Any]) -> nn.Module:
    return Branchy(params["width"])


def build_scalar(params: Mapping[str, Any]) -> nn.Module:
    return Scalar(params["width"])


def build_torch_dropout(params: Mapping[str, Any]) -> nn.Module:
    return TorchDropout(params["width"])


@pytest.mark.slow
@pytest.mark.parametrize("build", [build_branchy, build_scalar], ids=["control-flow", "item"])
def test_a_module_vmap_refuses_trains_one_at_a_time(build: Build) -> None:
    data = tiny_data(torch.float64)
    members = [mlp(0, 1e-2, build), mlp(1, 3e-2, build), mlp(2, 5e-3, build)]
    run = run_pool(members[:2], data, torch.float64, late=members[2:])
    assert len(run.notes) == 1  # said once, for every epoch of every member
    assert "one at a time" in run.notes[0] and type(build({"width": 1})).__name__ in run.notes[0]
    for m in members:
        assert_same(run.trained(m.key), alone(m, data, torch.float64), **F64)


@pytest.mark.slow
def test_torch_dropout_in_forward_falls_back_and_repeats() -> None:
    data = tiny_data(torch.float64)
    members = [mlp(0, 1e-2, build_torch_dropout), mlp(1, 3e-2, build_torch_dropout)]
    first = run_pool(members, data, torch.float64)
    again = run_pool(members, data, torch.float64)
    assert len(first.notes) == 1 and "one at a time" in first.notes[0]
    for m in members:
        assert_bitwise(first.trained(m.key), again.trained(m.key))
    # the dropout is live: training without it gives other numbers
    plain = alone(mlp(0, 1e-2, build_mlp), data, torch.float64)
    assert first.records[0][0].train_loss != pytest.approx(plain.records[0].train_loss)


# -- 6: grouping ---------------------------------------------------------------------------
def test_members_group_by_architecture() -> None:
    data = tiny_data(torch.float64)
    pool = ModulePool(data, loss=cross_entropy, data_seed=DATA_SEED)
    for key, width in enumerate((4, 4, 8, 4, 8, 2)):
        pool.add(key, spec(mlp(key, 1e-2, build_mlp, width=width), torch.float64))
    groups = sorted(sorted(m.key for m in group) for _, group in pool._groups())
    assert groups == [[0, 1, 3], [2, 4], [5]]


@pytest.mark.slow
def test_a_forward_reading_a_plain_attribute_gets_its_own_template() -> None:
    """``Mlp(act="relu")`` and ``Mlp(act="tanh")`` print the same, but compute differently: the
    pool must not run the tanh member through the relu member's template."""
    data = tiny_data(torch.float64)
    members = [
        mlp(0, 1e-2, build_mlp, act="relu"),
        mlp(1, 1e-2, build_mlp, act="tanh"),
        mlp(2, 3e-2, build_mlp, act="relu"),
    ]
    assert repr(build_mlp(members[0].hp)) == repr(build_mlp(members[1].hp))
    run = run_pool(members, data, torch.float64)
    assert sorted(map(sorted, run.groups)) == [[0, 2], [1]]
    for m in members:
        assert_same(run.trained(m.key), alone(m, data, torch.float64), **F64)


class _Doubling(nn.Module):
    """Doubles its input, in place or not, then a linear layer."""

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.in_place = in_place
        self.linear = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = x.mul_(2.0) if self.in_place else x * 2.0
        return self.linear(x)

    def extra_repr(self) -> str:
        return f"in_place={self.in_place}"


def _doubling_records(in_place: bool) -> tuple[list[tuple[int, int, float, float]], ModuleData]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (60,), generator=g)
    data = ModuleData(x[:40].clone(), y[:40], x[40:].clone(), y[40:], 3)
    pool = ModulePool(data, loss=nn.functional.cross_entropy, data_seed=0)
    for k in range(3):
        built = build_module(
            lambda _: _Doubling(in_place), {}, k, dtype=torch.float64, device=torch.device("cpu")
        )
        settings, _ = split_params({"lr": 0.01 * (k + 1)})
        pool.add(k, ModuleSpec(k, 2, 8, "adam", settings, built.module, {}))
    records = []
    while len(pool):
        records += [
            (e.key, e.record.epoch, e.record.train_loss, e.record.val_loss)
            for e in pool.step().epochs
        ]
    return records, data


def test_a_module_writing_into_its_input_changes_no_data_and_trains_as_if_it_did_not() -> None:
    in_place, data = _doubling_records(in_place=True)
    out_of_place, _ = _doubling_records(in_place=False)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(60, 8, generator=g, dtype=torch.float64)
    assert torch.equal(data.x_train, x[:40]) and torch.equal(data.x_val, x[40:])
    assert in_place == out_of_place


def test_a_group_the_device_cannot_hold_is_halved_and_trains_as_smaller_groups_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Out of memory in a group of more than 2 (a stand-in for the GPU's): the pool halves the
    module's groups, says so once, and every member's curve is that of groups of 2."""
    from caviar.own import group as group_module

    def records(max_group: int | None) -> tuple[list[tuple[int, int, float]], list[str]]:
        g = torch.Generator().manual_seed(9)
        x = torch.randn(60, 8, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (60,), generator=g)
        data = ModuleData(x[:40], y[:40], x[40:], y[40:], 3)
        pool = ModulePool(data, loss=nn.functional.cross_entropy, data_seed=0, max_group=max_group)
        for k in range(5):
            built = build_module(
                lambda _: nn.Linear(8, 3), {}, k, dtype=torch.float64, device=torch.device("cpu")
            )
            settings, _ = split_params({"lr": 0.01 * (k + 1)})
            pool.add(k, ModuleSpec(k, 2, 8, "adam", settings, built.module, {}))
        out, notes = [], []
        while len(pool):
            result = pool.step()
            notes += result.notes
            out += [(e.key, e.record.epoch, e.record.val_loss) for e in result.epochs]
        return sorted(out), notes

    expected, _ = records(max_group=2)
    run_epoch = group_module.ModuleGroup.run_epoch

    def tight(self: Any, should_stop: Any = None) -> Any:
        if len(self.members) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (a stand-in)")
        return run_epoch(self, should_stop)

    monkeypatch.setattr(group_module.ModuleGroup, "run_epoch", tight)
    got, notes = records(max_group=None)
    assert got == expected
    assert len(notes) == 2  # 5 -> 2 + 3, then 3 -> 1 + 2; said as it happens
    assert all("ran out of memory" in n for n in notes)


def build_frozen_first_layer(params: Mapping[str, Any]) -> nn.Module:
    """An MLP whose first layer is frozen (a pretrained feature extractor, say)."""
    module = Mlp(params["width"])
    module.fc1.requires_grad_(False)
    return module


def test_a_frozen_parameter_is_carried_not_trained() -> None:
    data = tiny_data(torch.float64)
    members = [mlp(k, lr, build_frozen_first_layer) for k, lr in enumerate((1e-2, 3e-2))]
    run = run_pool(members, data, torch.float64)
    for m in members:
        start = build_module(m.build, m.hp, m.seed, dtype=torch.float64, device=CPU).module
        kept = run.kept[m.key].state_dict
        assert torch.equal(kept["fc1.weight"], start.fc1.weight)  # torch.optim leaves it too
        assert not torch.equal(kept["fc2.weight"], start.fc2.weight)
        assert_same(run.trained(m.key), alone(m, data, torch.float64), **F64)

"""The edges of a user's module that a second review found: a trial whose module fails, a
parameter the loss never reaches, a module that writes into its input when it trains one at a
time, a dropout rate of 1, tied weights and non-persistent buffers, integer inputs, a key read
for one choice only, builders that are not plain functions."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import caviar
from caviar.core.errors import InvalidValue
from caviar.core.records import TrialState
from caviar.own.builder import build_module, identity, reference
from caviar.own.dropout import KeyedDropout, member_key

pytestmark = pytest.mark.slow

N = 120


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def data() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(N, 8, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 0).long()


def optimize(build: Any, space: Mapping[str, Any], tmp: Path, **settings: Any) -> caviar.Study:
    options: dict[str, Any] = {
        "data": data(),
        "storage": tmp / "s.db",
        "progress": False,
        "report": False,
        "sampler": "random",
        "threads": 1,
        **settings,
    }
    return caviar.optimize(build, {"epochs": 2, "batch_size": 16, **space}, **options)


class Picky(nn.Module):
    """Fails in its forward for width 7 only (a shape bug that one value of a range has)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.hidden, self.out = nn.Linear(8, width), nn.Linear(width, 3)

    def forward(self, x: Tensor) -> Tensor:
        if self.width == 7:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (a stand-in)")
        return self.out(torch.relu(self.hidden(x)))

    def extra_repr(self) -> str:
        return f"width={self.width}"


def build_picky(params: Mapping[str, Any]) -> nn.Module:
    return Picky(params["width"])


def test_a_trial_whose_module_fails_fails_alone_and_the_study_goes_on(tmp_path: Path) -> None:
    study = optimize(
        build_picky,
        {"width": {"scale": "int", "low": 2, "high": 9}},
        tmp_path,
        trials=16,
        seed=1,
        population=4,
    )
    trials = study.trials()
    assert len(trials) == 16
    sevens = [t for t in trials if t.params["width"] == 7]
    assert sevens, "the seed must draw width 7 at least once for this test to mean anything"
    for t in trials:
        if t.params["width"] == 7:
            assert t.state is TrialState.FAILED
            assert "training the module failed: RuntimeError: mat1 and mat2" in t.attrs["error"]
        else:
            assert t.state is TrialState.COMPLETE
    study.close()


class WithUnused(nn.Module):
    """A linear model beside a layer its forward never uses."""

    def __init__(self) -> None:
        super().__init__()
        self.used, self.unused = nn.Linear(8, 3), nn.Linear(3, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.used(x)


@pytest.mark.parametrize("optimizer", ["adamw", "sgd"])
def test_a_parameter_the_loss_never_reaches_is_left_as_torch_optim_leaves_it(
    tmp_path: Path, optimizer: str
) -> None:
    space = {"optimizer": optimizer, "weight_decay": 0.1, "lr": 0.05}
    if optimizer == "sgd":
        space["momentum"] = 0.9
    study = optimize(lambda _: WithUnused(), space, tmp_path, trials=2, keep_models=2)
    for t in study.trials():
        model = caviar.load_model(
            study.name, storage=tmp_path / "s.db", trial=t.number, build=lambda _: WithUnused()
        )
        start = build_module(
            lambda _: WithUnused(), {}, t.seed, dtype=torch.float32, device=torch.device("cpu")
        ).module
        assert torch.equal(model.unused.weight, start.unused.weight)
        assert not torch.equal(model.used.weight, start.used.weight)
    study.close()


class DoublesAndLooks(nn.Module):
    """Writes into its input, and reads a value with ``.item()`` (vmap refuses it)."""

    def __init__(self, in_place: bool) -> None:
        super().__init__()
        self.in_place, self.linear = in_place, nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tensor:
        x = x.mul_(2.0) if self.in_place else x * 2.0
        scale = 1.0 if x.abs().max().item() < 1e9 else 0.5
        return self.linear(x) * scale

    def extra_repr(self) -> str:
        return f"in_place={self.in_place}"


def test_one_at_a_time_each_member_reads_its_own_copy_of_a_shared_batch(tmp_path: Path) -> None:
    def curves(in_place: bool) -> list[Any]:
        study = optimize(
            lambda _: DoublesAndLooks(in_place),
            {"lr": {"choice": [0.01, 0.03]}},
            tmp_path / str(in_place),
            trials=3,
            population=3,
            seed=2,
        )
        out = [(t.number, [(r.train_loss, r.val_loss) for r in t.curve]) for t in study.trials()]
        study.close()
        return out

    assert curves(in_place=True) == curves(in_place=False)


def test_a_dropout_rate_of_one_gives_zeros_not_nan() -> None:
    drop = KeyedDropout(1.0, site=0, channels=0, dtype=torch.float32)
    drop.key.fill_(member_key(5))
    out = drop(torch.randn(4, 6))
    assert torch.equal(out, torch.zeros(4, 6))


class Tied(nn.Module):
    """An embedding whose output layer shares its weight, and a non-persistent buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 4)
        self.out = nn.Linear(4, 20, bias=False)
        self.out.weight = self.emb.weight
        self.head = nn.Linear(20, 3)
        self.register_buffer("mask", torch.ones(5), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.out((self.emb(x) * self.mask[None, :, None]).mean(1)))


def build_tied(params: Mapping[str, Any]) -> nn.Module:
    return Tied()


def test_integer_inputs_tied_weights_and_non_persistent_buffers(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 20, (N, 5), generator=g)
    labels = tokens[:, 0] % 3
    study = optimize(
        build_tied, {"lr": {"choice": [0.01, 0.05]}}, tmp_path, trials=2, data=(tokens, labels)
    )
    assert all(t.state is TrialState.COMPLETE for t in study.trials())
    model = caviar.load_model(study.name, storage=tmp_path / "s.db", build=build_tied)
    assert model.out.weight is model.emb.weight
    assert set(model.state_dict()) == set(Tied().state_dict())
    study.close()


def build_branching(params: Mapping[str, Any]) -> nn.Module:
    """Reads ``width`` only for the 'wide' architecture, the second of four."""
    if params["arch"] == "wide":
        return nn.Sequential(
            nn.Linear(8, params["width"]), nn.ReLU(), nn.Linear(params["width"], 3)
        )
    return nn.Linear(8, 3)


def test_a_key_read_for_one_value_of_a_choice_is_read(tmp_path: Path) -> None:
    space = {"arch": {"choice": ["linear", "wide", "linear2", "linear3"]}, "width": 16}
    study = optimize(build_branching, space, tmp_path, trials=2)
    assert len(study.trials()) == 2
    study.close()


def build_fails_for_one_choice(params: Mapping[str, Any]) -> nn.Module:
    if params["arch"] == "broken":
        return nn.Linear(5, 3)  # the wrong input width
    return nn.Linear(8, 3)


def test_a_choice_value_every_trial_of_which_would_fail_is_said_before_the_study(
    tmp_path: Path,
) -> None:
    space = {"arch": {"choice": ["a", "broken", "b", "c"]}}  # not at a corner
    with pytest.raises(
        InvalidValue,
        match=r"with arch = 'broken', so the trials drawn there "
        r"would fail: narrow space.arch",
    ) as caught:
        optimize(build_fails_for_one_choice, space, tmp_path, trials=2)
    assert caught.value.owner == "model"


class BuilderObject:
    def __call__(self, params: Mapping[str, Any]) -> nn.Module:
        return nn.Linear(8, 3)


def linear(params: Mapping[str, Any], width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(8, width), nn.ReLU(), nn.Linear(width, 3))


def test_builders_that_are_not_plain_functions_are_recorded_as_not_importable(
    tmp_path: Path,
) -> None:
    partial = functools.partial(linear, width=4)
    assert reference(partial) is None and reference(BuilderObject()) is None
    assert identity(partial) == f"partial of {__name__}:linear"
    assert identity(BuilderObject()) == f"{__name__}:BuilderObject instance"
    study = optimize(BuilderObject(), {"lr": 0.01}, tmp_path, trials=1)
    with pytest.raises(InvalidValue, match="pass build="):
        caviar.load_model(study.name, storage=tmp_path / "s.db")
    assert isinstance(
        caviar.load_model(study.name, storage=tmp_path / "s.db", build=BuilderObject()),
        nn.Linear,
    )
    study.close()

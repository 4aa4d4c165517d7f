"""An ensemble of kept models: the log of the mean of its members' softmax outputs.

The oracle is each member on its own: a net rebuilt from ``torch.nn`` layers (float64) or the
member's own CaviarModel (float32), its softmax taken with ``torch.softmax``, the K of them
averaged. The exported program computes what the module computes, with plain PyTorch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from _export_support import blobs, torch_nn_oracle
from torch import Tensor
from torch.nn import functional as F

import caviar
from caviar import LogUniform, Study
from caviar.core.errors import InvalidValue
from caviar.models.ensemble import OUTPUT, CaviarEnsemble, kept_members, load_ensemble, score
from caviar.models.export import METADATA
from caviar.models.export import save_program as export_program
from caviar.models.load import load_model
from caviar.models.model import CaviarModel
from caviar.nn import MemberSpec, MemberState, Population, TrainingData
from caviar.search.kept import kept_dir, kept_state_path

# three members that differ in everything the forward pass depends on
MEMBERS = [
    dict(batch_norm=True, n_layers=1, hidden_units=6),
    dict(activation="tanh", n_layers=2, hidden_units=7),
    dict(activation="sigmoid", batch_norm=True, n_layers=3, hidden_units=5),
]
SRC = Path(caviar.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return blobs(1)


def train(data: TrainingData, dtype: torch.dtype) -> list[MemberState]:
    specs = [
        MemberSpec(seed=k, batch_size=16, epochs=3, lr=0.05, **kwargs)
        for k, kwargs in enumerate(MEMBERS)
    ]
    results = Population(specs, device="cpu", dtype=dtype).fit(data, keep_states=True)
    states = [r.state for r in results]
    assert all(s is not None and not s.diverged for s in states)
    return states  # type: ignore[return-value]


@pytest.fixture(scope="module")
def states32(data: TrainingData) -> list[MemberState]:
    return train(data, torch.float32)


@pytest.fixture(scope="module")
def states64(data: TrainingData) -> list[MemberState]:
    return train(data, torch.float64)


def mean_softmax(logits: list[Tensor]) -> Tensor:
    """The oracle: each member's softmax on its own, then their plain mean [B, C]."""
    return torch.stack([torch.softmax(z, dim=1) for z in logits]).mean(dim=0)


# -- the average is the members' own outputs, averaged -----------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_float64_output_is_the_log_of_the_members_mean_softmax(k, data, states64) -> None:
    x = data.x_val  # float64 [60, 5]
    with torch.no_grad():
        expected = mean_softmax([torch_nn_oracle(s)(x) for s in states64[:k]])
        out = CaviarEnsemble(states64[:k], dtype=torch.float64)(x)
    assert out.dtype == torch.float64 and out.shape == (60, 3)
    torch.testing.assert_close(out.exp(), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(out, expected.log(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(60, dtype=torch.float64))


def test_float32_output_matches_the_members_caviar_models(data, states32) -> None:
    x = data.x_val.float()
    ensemble = CaviarEnsemble(states32)
    with torch.no_grad():
        expected = mean_softmax([CaviarModel(s)(x) for s in states32])
        out = ensemble(x)
    torch.testing.assert_close(out.exp(), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(ensemble.predict_proba(x.numpy()), expected, rtol=0, atol=1e-6)
    assert torch.equal(ensemble.predict(x), expected.argmax(dim=1))
    assert torch.equal(ensemble.predict(x.double().numpy()), ensemble.predict(x))
    with pytest.raises(
        InvalidValue, match=r"^CaviarEnsemble: inputs must be \[batch, 5\], got \[5\]$"
    ):
        ensemble.predict(x[0])


def test_one_member_predicts_as_the_member_alone(data, states32) -> None:
    x = data.x_val.float()
    member = CaviarModel(states32[1])
    with torch.no_grad():
        out = CaviarEnsemble(states32[1:2])(x)
        torch.testing.assert_close(out, torch.log_softmax(member(x), dim=1), rtol=0, atol=1e-6)
    assert torch.equal(out.argmax(dim=1), member.predict(x))


def test_score_is_the_cross_entropy_and_accuracy_of_the_mean(data, states64) -> None:
    x, y = data.x_val, data.y_val
    with torch.no_grad():
        p = mean_softmax([torch_nn_oracle(s)(x) for s in states64])
    expected_loss = -p[torch.arange(60), y].log().mean().item()
    expected_accuracy = (p.argmax(dim=1) == y).double().mean().item()
    ensemble = CaviarEnsemble(states64, dtype=torch.float64)
    for batch in (7, 1000):  # batches add up to the whole
        loss, accuracy = score(ensemble, x.numpy(), y.numpy(), batch=batch)
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        assert accuracy == expected_accuracy
    with torch.no_grad():  # the output is normalised: cross_entropy reads it as nll_loss does
        out = ensemble(x)
    assert F.cross_entropy(out, y).item() == pytest.approx(expected_loss, rel=1e-12)


def test_members_must_fit_together(states32, data) -> None:
    with pytest.raises(InvalidValue, match=r"^CaviarEnsemble: needs at least one member state"):
        CaviarEnsemble([])
    with pytest.raises(InvalidValue, match=r"one trial number per state \(3\), got \[1\]$"):
        CaviarEnsemble(states32, trials=[1])
    other = Population(
        [MemberSpec(seed=0, hidden_units=4, batch_size=16, epochs=1, lr=0.05)], device="cpu"
    ).fit(
        TrainingData.from_arrays(data.x_train[:, :4].numpy(), data.y_train.numpy()),
        keep_states=True,
    )
    with pytest.raises(
        InvalidValue, match=r"^CaviarEnsemble: members must share .* got \(4, 3\) and \(5, 3\)$"
    ):
        CaviarEnsemble([states32[0], other[0].state])


# -- one program, for plain PyTorch ---------------------------------------------------------


@pytest.fixture(scope="module")
def program(states32, tmp_path_factory) -> Path:
    ensemble = CaviarEnsemble(states32, trials=[4, 0, 2])
    return export_program(ensemble, tmp_path_factory.mktemp("p") / "ensemble.pt2")


def test_the_program_computes_what_the_module_computes(data, states32, program) -> None:
    module, loaded = CaviarEnsemble(states32), torch.export.load(program).module()
    with torch.no_grad():
        for batch in (1, 7, 60):  # any batch size
            x = data.x_val[:batch].float()
            torch.testing.assert_close(loaded(x), module(x), rtol=0, atol=1e-6)
    extra = {METADATA: ""}
    torch.export.load(program, extra_files=extra)
    described = json.loads(extra[METADATA])
    assert described["ensemble"] == 3 and described["trials"] == [4, 0, 2]
    assert described["output"] == OUTPUT and described["dtype"] == "float32"
    assert [m["spec"] for m in described["members"]] == [s.spec.to_dict() for s in states32]
    assert (described["n_inputs"], described["n_classes"]) == (5, 3)


NO_CAVIAR = """
import sys
sys.modules["caviar"] = None
sys.path = [p for p in sys.path if p != {src!r}]
import torch
program = torch.export.load({program!r}).module()
torch.save(program(torch.load({x!r})), {out!r})
"""


@pytest.mark.slow
def test_the_program_runs_where_caviar_is_not_installed(data, states32, program, tmp_path):
    x = data.x_val[:9].float()
    torch.save(x, tmp_path / "x.pt")
    script = NO_CAVIAR.format(
        src=str(SRC) if SRC.name == "src" else "",
        program=str(program),
        x=str(tmp_path / "x.pt"),
        out=str(tmp_path / "y.pt"),
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    with torch.no_grad():
        expected = mean_softmax([CaviarModel(s)(x) for s in states32]).log()
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=0, atol=1e-6)


# -- a study's top K kept models ------------------------------------------------------------


@pytest.fixture
def study_db(states32, tmp_path) -> Path:
    """Leaderboard 1 (0.9), 3 (0.8), 2 (0.7), 0 (0.5); trials 1, 2 and 0 kept, 3 not."""
    db = tmp_path / "s.db"
    study = Study.create("s", {"lr": LogUniform(1e-4, 1.0)}, storage=db)
    for trial, value in zip(study.ask(4), (0.5, 0.9, 0.7, 0.8), strict=True):
        study.tell(trial, value)
    kept_dir(db, "s").mkdir(parents=True)
    for trial, state in zip((1, 2, 0), states32, strict=True):
        state.save(kept_state_path(db, "s", trial))
    study.set_attrs({"kept_models": [0, 1, 2]})
    study.close()
    return db


def test_members_are_the_top_kept_trials_of_the_leaderboard(study_db, states32, data) -> None:
    ensemble = load_model("s", storage=study_db, ensemble=2)
    assert isinstance(ensemble, CaviarEnsemble)
    assert ensemble.trials == [1, 2]  # trial 3 ranks second but was not kept
    x = data.x_val.float()
    with torch.no_grad():
        expected = mean_softmax([CaviarModel(s)(x) for s in states32[:2]])
        torch.testing.assert_close(ensemble(x).exp(), expected, rtol=0, atol=1e-6)
    assert load_ensemble("s", 3, storage=str(study_db)).trials == [1, 2, 0]
    study = Study.load("s", caviar.SQLiteStorage(study_db, read_only=True))
    assert [t.number for t, _ in kept_members(study, 1)] == [1]
    study.close()


@pytest.mark.parametrize(
    "k, kwargs, message",
    [
        (
            4,
            {},
            r"^ensemble: must be <= the 3 models study 's' kept \(trials \[1, 2, 0\]; "
            r"search.keep_models = not recorded\), got 4; tune with a larger "
            r"search.keep_models to keep more$",
        ),
        (0, {}, r"^ensemble: must be an integer >= 1, got 0$"),
        (True, {}, r"^ensemble: must be an integer >= 1, got True$"),
        (2, {"trial": 1}, r"^load_model: ensemble= takes a study's name as source, with storage"),
        (2, {"storage": None}, r"^load_model: ensemble= takes a study's name"),
        (2, {"storage": "none.db"}, r"^storage: no study file at 'none.db'$"),
    ],
    ids=["more than kept", "zero", "a bool", "with a trial", "no storage", "no study file"],
)
def test_ensemble_errors_say_what_is_missing(study_db, k, kwargs, message) -> None:
    with pytest.raises(InvalidValue, match=message):
        load_model("s", **{"storage": study_db, **kwargs}, ensemble=k)


def test_a_study_that_kept_nothing_says_so(tmp_path) -> None:
    db = tmp_path / "n.db"
    study = Study.create("n", {"lr": LogUniform(1e-4, 1.0)}, storage=db)
    (trial,) = study.ask(1)
    study.tell(trial, 0.5)
    study.set_attrs({"config": {"search": {"keep_models": 0}}})
    with pytest.raises(
        InvalidValue,
        match=r"^ensemble: must be <= the 0 models study 'n' kept \(none; "
        r"search.keep_models = 0\), got 1",
    ):
        kept_members(study, 1)
    study.close()

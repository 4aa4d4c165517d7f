"""The best model kept: a trained member as a CaviarModel and as a torch.export program.

Both score exactly as the engine's own evaluation does, match an independent torch.nn net in
float64, take any batch size, and the program runs where caviar is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from _export_support import blobs, torch_nn_oracle
from torch import Tensor
from torch.nn import functional as F

import caviar
from caviar import LogUniform, Study
from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.models.ensemble import kept_members
from caviar.models.export import METADATA, export_model
from caviar.models.load import load_model
from caviar.models.model import CaviarModel
from caviar.nn import MemberSpec, MemberState, Population, TrainingData, evaluate_states
from caviar.search.job import tune
from caviar.search.kept import kept_dir, kept_state, kept_state_path

# Each case reads as the member it trains: activation, batch norm, depth, dropout in training.
CASES: dict[str, dict[str, Any]] = {
    "relu, batch norm, 1 layer, dropout": dict(batch_norm=True, n_layers=1, dropout=0.3),
    "relu, 3 layers": dict(n_layers=3),
    "tanh, batch norm, 3 layers": dict(activation="tanh", batch_norm=True, n_layers=3),
    "tanh, 1 layer, dropout": dict(activation="tanh", n_layers=1, dropout=0.2),
    "sigmoid, batch norm, 3 layers, dropout": dict(
        activation="sigmoid", batch_norm=True, n_layers=3, dropout=0.1
    ),
    "sigmoid, 1 layer": dict(activation="sigmoid", n_layers=1),
}
NAMES = list(CASES)
# where caviar is imported from: a checkout's src/ (editable install) or site-packages (a plain
# install, as in CI, where torch lives too: only caviar itself is blocked then)
SRC = Path(caviar.__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return blobs(0)


def train(data: TrainingData, dtype: torch.dtype) -> dict[str, MemberState]:
    specs = [
        MemberSpec(seed=k, hidden_units=6 + k, batch_size=16, epochs=3, lr=0.02, **kwargs)
        for k, kwargs in enumerate(CASES.values())
    ]
    results = Population(specs, device="cpu", dtype=dtype).fit(data, keep_states=True)
    states = {name: r.state for name, r in zip(NAMES, results, strict=True)}
    assert all(s is not None and not s.diverged for s in states.values())
    return states  # type: ignore[return-value]


@pytest.fixture(scope="module")
def states32(data: TrainingData) -> dict[str, MemberState]:
    return train(data, torch.float32)


@pytest.fixture(scope="module")
def states64(data: TrainingData) -> dict[str, MemberState]:
    return train(data, torch.float64)


@pytest.fixture(scope="module")
def programs(
    states32: dict[str, MemberState], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("programs")
    return {
        name: export_model(s, folder / f"{k}.pt2") for k, (name, s) in enumerate(states32.items())
    }


def run_program(path: Path, x: Tensor) -> Tensor:
    logits: Tensor = torch.export.load(path).module()(x)
    return logits


# -- the model and the program compute what the engine computes ------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_model_and_program_score_as_evaluate_states(name, data, states32, programs) -> None:
    state = states32[name]
    x, y = data.x_val.float(), data.y_val
    ((loss, accuracy),) = evaluate_states([state], x, y, device="cpu", dtype=torch.float32)
    with torch.no_grad():
        for logits in (CaviarModel(state)(x), run_program(programs[name], x)):
            assert logits.dtype == torch.float32 and logits.shape == (60, 3)
            assert (logits.argmax(dim=1) == y).double().mean().item() == accuracy
            assert F.cross_entropy(logits, y).item() == pytest.approx(loss, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_float64_logits_match_a_torch_nn_oracle(name, data, states64, tmp_path) -> None:
    state = states64[name]
    x = data.x_val
    with torch.no_grad():
        expected = torch_nn_oracle(state)(x)
        model = CaviarModel(state, dtype=torch.float64)(x)
    program = run_program(export_model(state, tmp_path / "m.pt2", dtype=torch.float64), x)
    for logits in (model, program):
        assert logits.dtype == torch.float64
        torch.testing.assert_close(logits, expected, rtol=0, atol=1e-12)


def test_the_program_takes_any_batch_size(data, states32, programs) -> None:
    name = "sigmoid, batch norm, 3 layers, dropout"
    model, program = CaviarModel(states32[name]), torch.export.load(programs[name]).module()
    with torch.no_grad():
        for batch in (1, 7):
            x = data.x_val[:batch].float()
            torch.testing.assert_close(program(x), model(x), rtol=0, atol=1e-6)
            assert program(x).shape == (batch, 3)


def test_predict_takes_numpy_and_tensors(data, states32) -> None:
    model = CaviarModel(states32["relu, batch norm, 1 layer, dropout"])
    x = data.x_val.numpy()  # float64: cast to the model's float32
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    assert torch.equal(model.predict(x), logits.argmax(dim=1))
    assert torch.equal(model.predict(torch.as_tensor(x)), model.predict(x))
    proba = model.predict_proba(x)
    torch.testing.assert_close(proba, torch.softmax(logits, dim=1))
    torch.testing.assert_close(proba.sum(dim=1), torch.ones(60))
    with pytest.raises(
        InvalidValue, match=r"^CaviarModel: inputs must be \[batch, 5\], got \[5\]$"
    ):
        model.predict(x[0])


def test_the_model_keeps_what_it_is(states32, programs) -> None:
    name = "tanh, batch norm, 3 layers"
    state = states32[name]
    model = CaviarModel(state)
    assert model.spec == state.spec.to_dict() and isinstance(model.spec, dict)
    assert (model.n_inputs, model.n_classes) == (5, 3)
    assert not model.training
    assert set(model.state_dict()) == {
        *state.params,
        *(f"running_{s}{k}" for s in ("mean", "var") for k in range(3)),
    }
    extra = {METADATA: ""}
    torch.export.load(programs[name], extra_files=extra)
    assert json.loads(extra[METADATA]) == {
        "spec": state.spec.to_dict(),
        "n_inputs": 5,
        "n_classes": 3,
        "dtype": "float32",
        # a state trained here, outside a study: no preprocessing was recorded, and it says so
        "inputs": "[B, 5] as in training; the preprocessing was not recorded",
        "preprocessing": None,
    }


def test_a_state_that_is_not_a_model_is_refused(states32) -> None:
    state = states32["relu, 3 layers"]
    with pytest.raises(InvalidValue, match=r"^CaviarModel: the member diverged"):
        CaviarModel(replace(state, diverged=True))
    wrong = replace(state, params={**state.params, "W1": torch.zeros(4, 4), "b9": torch.zeros(1)})
    message = (
        r"^CaviarModel: the state does not fit its spec: W1 must be \[7, 7\], got \[4, 4\]; b9 is"
    )
    with pytest.raises(InvalidValue, match=message):
        CaviarModel(wrong)
    bn = states32["tanh, batch norm, 3 layers"]  # hidden_units 8
    short = replace(bn, running_var=bn.running_var[:2])
    message = r"^CaviarModel: the state does not fit its spec: running_var must hold 3 layers' st"
    with pytest.raises(InvalidValue, match=message):
        CaviarModel(short)
    odd = replace(bn, running_mean=[bn.running_mean[0], torch.zeros(5), bn.running_mean[2]])
    message = r"spec: running_mean\[1\] must be \[8\], got \[5\]$"
    with pytest.raises(InvalidValue, match=message):
        CaviarModel(odd)
    both = replace(short, params={**bn.params, "W0": torch.zeros(2, 2)})  # every fault named
    message = r"spec: W0 must be \[\d+, 8\], got \[2, 2\]; running_var must hold 3 layers'"
    with pytest.raises(InvalidValue, match=message):
        CaviarModel(both)


# -- loading: a state file, or a study's kept trial ------------------------------------------


def test_load_model_from_a_saved_state(states32, tmp_path) -> None:
    state = states32["tanh, 1 layer, dropout"]
    state.save(tmp_path / "m.pt")
    model = load_model(tmp_path / "m.pt")
    x = torch.randn(4, 5)
    with torch.no_grad():
        torch.testing.assert_close(model(x), CaviarModel(state)(x), rtol=0, atol=0)
    assert model.spec == state.spec.to_dict()


@pytest.fixture
def study_db(states32, tmp_path) -> Path:
    """A study whose trial 1 is best and kept, and trial 0 is not kept."""
    db = tmp_path / "s.db"
    study = Study.create("s", {"lr": LogUniform(1e-4, 1.0)}, storage=db)
    for trial, value in zip(study.ask(2), (0.5, 0.9), strict=True):
        study.tell(trial, value)
    kept_dir(db, "s").mkdir(parents=True)
    states32["sigmoid, 1 layer"].save(kept_state_path(db, "s", 1))
    study.set_attrs({"kept_models": [1]})
    study.close()
    return db


def test_load_model_from_a_study_defaults_to_its_best_trial(study_db, states32) -> None:
    assert kept_state_path(study_db, "s", 1) == study_db.parent / "caviar-models/s/trial-1.pt"
    assert kept_dir(str(study_db), "s") == study_db.parent / "caviar-models" / "s"
    expected = states32["sigmoid, 1 layer"].spec.to_dict()
    assert load_model("s", storage=study_db).spec == expected
    assert load_model("s", 1, storage=str(study_db)).spec == expected


@pytest.mark.parametrize(
    "source, kwargs, message",
    [
        ("{dir}/nope.pt", {}, r"^load_model: no saved member state at '.*nope.pt'"),
        ("{dir}/x.pt", {"trial": 1}, r"^load_model: trial= needs storage="),
        ("s", {"storage": "none.db"}, r"^storage: no study file at 'none.db'$"),
        ("s", {"trial": -1, "storage": "{db}"}, r"^trial: must be an integer >= 0, got -1$"),
        (
            "s",
            {"trial": 0, "storage": "{db}"},
            r"^study 's': trial 0 has no kept model \(in '.*caviar-models/s'\); "
            r"kept models: trials \[1\]$",
        ),
    ],
    ids=["no file", "trial without a study", "no study file", "bad trial", "trial not kept"],
)
def test_load_model_errors_say_what_is_missing(study_db, source, kwargs, message) -> None:
    def fill(v: Any) -> Any:
        return v.format(dir=study_db.parent, db=study_db) if isinstance(v, str) else v

    with pytest.raises(InvalidValue, match=message):
        load_model(fill(source), **{k: fill(v) for k, v in kwargs.items()})


def test_a_file_the_study_did_not_keep_is_not_its_model(study_db, states32) -> None:
    """A state left in the models folder by an earlier study of the same name (its database
    deleted, the folder not) is not this study's: export, the ensemble and panda skip it."""
    stale = kept_state_path(study_db, "s", 0)
    states32["tanh, 1 layer, dropout"].save(stale)
    message = r"trial 0 has no kept model .*trials \[1\]; trial-0.pt there is not this study's"
    with pytest.raises(InvalidValue, match=message):
        load_model("s", 0, storage=study_db)
    study = Study.load("s", storage=study_db)
    try:
        assert kept_state(study, 0) is None
        assert kept_state(study, 1) == kept_state_path(study_db, "s", 1)
        assert [t.number for t, _ in kept_members(study, 1)] == [1]
        with pytest.raises(InvalidValue, match=r"must be <= the 1 models study 's' kept"):
            kept_members(study, 2)
    finally:
        study.close()
    assert stale.is_file()  # left alone: not ours to delete


def test_a_file_that_is_not_a_state_is_refused(tmp_path) -> None:
    (tmp_path / "m.pt").write_text("not a state")
    message = r"^model file: '.*m.pt' is not a caviar model file, or it is damaged \(not a "
    with pytest.raises(InvalidValue, match=message + r"PyTorch file\); remove it"):
        load_model(tmp_path / "m.pt")


# -- the program runs with plain PyTorch ------------------------------------------------------


NO_CAVIAR = """
import sys
sys.modules["caviar"] = None  # an import of caviar fails ...
sys.path = [p for p in sys.path if p != {src!r}]  # ... and a source checkout is not on the path
import torch
program = torch.export.load({program!r}).module()
torch.save(program(torch.load({x!r})), {out!r})
assert not [m for m in sys.modules if m.startswith("caviar") and sys.modules[m] is not None]
"""


@pytest.mark.slow
def test_the_program_runs_where_caviar_is_not_installed(data, states32, programs, tmp_path):
    name = "tanh, batch norm, 3 layers"
    x = data.x_val[:9].float()
    torch.save(x, tmp_path / "x.pt")
    script = NO_CAVIAR.format(
        src=str(SRC) if SRC.name == "src" else "",
        program=str(programs[name]),
        x=str(tmp_path / "x.pt"),
        out=str(tmp_path / "y.pt"),
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    with torch.no_grad():
        expected = CaviarModel(states32[name])(x)
    torch.testing.assert_close(torch.load(tmp_path / "y.pt"), expected, rtol=0, atol=1e-6)


# -- the command line --------------------------------------------------------------------------


def test_caviar_export_writes_the_best_kept_model(tmp_path, capsys) -> None:
    from caviar.search.config import config_from_mapping
    from caviar.search.job import prepare_data

    db = tmp_path / "t.db"
    config = {
        "study": {"name": "t", "storage": str(db), "seed": 0},
        "data": {"dataset": "digits", "train_size": 200, "test_size": 50},
        "space": {"lr": {"scale": "log", "low": 1e-3, "high": 1e-1}, "hidden_units": 8},
        "search": {"trials": 2, "keep_models": 1},
    }
    config["space"].update(epochs=2, batch_size=32)
    study = tune(config, progress=False, report=False)
    best = study.best_trial
    assert best is not None
    # the tune loop kept the best trial's final state, and only that one
    assert study.attrs["kept_models"] == [best.number]
    assert kept_state_path(db, "t", best.number).is_file()
    prepared = prepare_data(config_from_mapping(study.attrs["config"]))
    study.close()

    out = tmp_path / "model.pt2"
    assert main(["export", "t", "--storage", str(db), "-o", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"exported trial-{best.number} of study 't' to {out}"
    assert printed[1].startswith(f"load with torch.export.load({str(out)!r}).module()")
    x, y = prepared.training.x_val.float(), prepared.training.y_val
    accuracy = (run_program(out, x).argmax(dim=1) == y).double().mean().item()
    assert accuracy == best.value  # the very model the search scored

    assert main(["export", "t", "--storage", str(db), "--trial", str(best.number)]) == 0
    assert kept_state_path(db, "t", best.number).with_suffix(".pt2").is_file()
    capsys.readouterr()
    other = 1 - best.number
    assert main(["export", "t", "--storage", str(db), "--trial", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"caviar: error: study 't': trial {other} has no kept model")
    assert err.rstrip().endswith(f"kept models: trials [{best.number}]")

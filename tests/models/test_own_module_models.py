"""A study of the user's own model after the search: its kept modules loaded (one, an
ensemble), the test set used once, export to a torch.export program, and ``caviar test`` /
``caviar export`` on a study made from a config naming ``mymod:build``.

Oracles: the module rebuilt by hand (the builder called with the trial's hyperparameters, the
kept ``state_dict`` loaded with torch), accuracies and the ensemble's mean softmax computed by
hand with numpy, and the exported program run by torch alone.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import caviar
from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.data import load_dataset
from caviar.models.evaluate import TestSetUsed, evaluate_ensemble_on_test
from caviar.own.data import PreparedModuleData
from caviar.search.config import config_from_mapping
from caviar.search.job import prepare_data
from caviar.search.kept import kept_state_path
from caviar.search.own_model import tune_module
from caviar.study import Study

MODULE = """
from torch import nn


def build(params):
    w = params["width"]
    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)), nn.Conv2d(1, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(params["dropout"]), nn.Linear(w * 16, 10),
    )
"""

SPACE = {
    "width": {"choice": [4, 8]},
    "dropout": {"scale": "linear", "low": 0.0, "high": 0.3},
    "lr": {"scale": "log", "low": 3e-3, "high": 3e-2},
    "epochs": 2,
    "batch_size": 32,
}


def script_build(params: Any) -> nn.Module:
    """A builder of this test file's own: tuned with caviar.optimize from arrays."""
    return nn.Sequential(nn.Linear(64, params["width"]), nn.ReLU(), nn.Linear(params["width"], 10))


script_build.__module__ = "__main__"  # as a function of a script: no other program imports it


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Any]]:
    """One study of ``mymod:build`` on 300 digits (100 test), 4 trials of 2 epochs, 3 kept,
    made as ``caviar tune`` would from a config; the working directory holds ``mymod.py``."""
    folder = tmp_path_factory.mktemp("own")
    (folder / "mymod.py").write_text(textwrap.dedent(MODULE))
    sys.path.insert(0, str(folder))
    torch.set_num_threads(1)
    import mymod  # type: ignore[import-not-found]

    raw = {
        "study": {"name": "cnn", "storage": str(folder / "s.db"), "model": "mymod:build"},
        "data": {"dataset": "digits", "train_size": 300, "test_size": 100},
        "space": SPACE,
        "search": {"trials": 4, "keep_models": 3, "halving": False},
    }
    config = config_from_mapping(raw)
    with pytest.warns(UserWarning):  # 60 validation examples for 10 classes: a DataWarning
        data = prepare_data(config)
    test = (data.dataset.x_test, data.dataset.y_test)
    prepared = PreparedModuleData(data.split, data.dataset.n_classes, test)
    tune_module(config, mymod.build, prepared, progress=False, report=False).close()
    yield folder, mymod
    sys.path.remove(str(folder))
    sys.modules.pop("mymod", None)


@pytest.fixture
def in_folder(tuned: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tuned[0])
    return tuned[0]


def by_hand(folder: Path, mymod: Any, trial: int) -> nn.Module:
    """The oracle: the builder called with the trial's hyperparameters, the kept state_dict
    loaded by torch, eval mode."""
    payload = torch.load(kept_state_path(folder / "s.db", "cnn", trial), weights_only=True)
    module: nn.Module = mymod.build(payload["params"])
    module.load_state_dict(payload["state_dict"])
    return module.eval()


def ranked(folder: Path) -> list[int]:
    study = Study.open_file("cnn", folder / "s.db", read_only=True)
    try:
        return [t.number for t in study.leaderboard() if t.number in study.attrs["kept_models"]]
    finally:
        study.close()


def digits_test() -> tuple[np.ndarray, np.ndarray]:
    d = load_dataset("digits", train_size=300, test_size=100)
    return d.x_test, d.y_test


@pytest.mark.slow
def test_the_best_kept_module_comes_back_as_the_users_module(tuned: tuple[Path, Any]) -> None:
    folder, mymod = tuned
    best = ranked(folder)[0]
    model = caviar.load_model("cnn", storage=folder / "s.db")
    assert isinstance(model, nn.Sequential) and not model.training
    x = torch.as_tensor(digits_test()[0], dtype=torch.float32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), by_hand(folder, mymod, best)(x), rtol=0, atol=0)
        second = caviar.load_model("cnn", ranked(folder)[1], storage=folder / "s.db")
        torch.testing.assert_close(second(x), by_hand(folder, mymod, ranked(folder)[1])(x))
    # the module's kept file loads alone too, with the same weights
    alone = caviar.load_model(kept_state_path(folder / "s.db", "cnn", best))
    assert torch.equal(alone.state_dict()["1.weight"], model.state_dict()["1.weight"])


@pytest.mark.slow
def test_the_ensemble_is_the_log_of_the_mean_softmax_by_hand(tuned: tuple[Path, Any]) -> None:
    folder, mymod = tuned
    ensemble = caviar.load_model("cnn", storage=folder / "s.db", ensemble=2)
    x = torch.as_tensor(digits_test()[0], dtype=torch.float32)
    with torch.no_grad():
        outs = [by_hand(folder, mymod, n)(x).double().numpy() for n in ranked(folder)[:2]]
        got = ensemble(x).double().numpy()
    soft = [np.exp(o - o.max(1, keepdims=True)) for o in outs]
    mean = sum(s / s.sum(1, keepdims=True) for s in soft) / 2
    np.testing.assert_allclose(got, np.log(mean), rtol=1e-5, atol=1e-6)
    assert ensemble.trials == ranked(folder)[:2]


@pytest.mark.slow
def test_the_test_set_is_used_once_and_scored_as_by_hand(in_folder: Path) -> None:
    import mymod

    x, y = digits_test()
    best = ranked(in_folder)[0]
    with torch.no_grad():
        out = by_hand(in_folder, mymod, best)(torch.as_tensor(x, dtype=torch.float32)).numpy()
    accuracy = float(np.mean(out.argmax(1) == y))
    shifted = out - out.max(1, keepdims=True)
    loss = float(np.mean(np.log(np.exp(shifted).sum(1)) - shifted[np.arange(len(y)), y]))
    study = Study.open_file("cnn", in_folder / "s.db")
    try:
        record = caviar.evaluate_on_test(study, force=True)  # default: as-trained
        assert record["mode"] == "as-trained" and record["trial"] == best
        assert record["accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert record["loss"] == pytest.approx(loss, rel=1e-5)
        assert record["n_test"] == 100
        assert record["validation_accuracy_reproduced"] == pytest.approx(
            record["validation_accuracy_in_search"], abs=1e-12
        )
        assert study.attrs["test"] == record
        with pytest.raises(TestSetUsed, match="meant to be used once"):
            caviar.evaluate_on_test(study)
        with pytest.raises(InvalidValue, match="mode: 'retrain' trains caviar's own nets"):
            caviar.evaluate_on_test(study, mode="retrain", force=True)
        with pytest.raises(InvalidValue, match="test_data= is for a study of arrays"):
            caviar.evaluate_on_test(study, test_data=(x, y), force=True)
        ensemble = evaluate_ensemble_on_test(study, 2, force=True)
        assert [m["trial"] for m in ensemble["members"]] == ranked(in_folder)[:2]
        assert ensemble["members"][0]["test_accuracy"] == pytest.approx(accuracy, abs=1e-12)
        assert len(study.attrs["test_uses"]) == 2
    finally:
        study.close()


@pytest.mark.slow
def test_caviar_test_and_export_on_the_command_line(
    in_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import mymod

    assert main(["test", "cnn", "--storage", "s.db", "--force"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["export", "cnn", "--storage", "s.db", "-o", "best.pt2"]) == 0
    assert main(["export", "cnn", "--storage", "s.db", "--ensemble", "3", "-o", "e3.pt2"]) == 0
    x = torch.rand(7, 64)  # a batch size the trace did not see
    program = torch.export.load(str(in_folder / "best.pt2")).module()
    with torch.no_grad():
        expected = by_hand(in_folder, mymod, ranked(in_folder)[0])(x)
        torch.testing.assert_close(program(x), expected)
        ensemble = caviar.load_model("cnn", storage="s.db", ensemble=3)
        together = torch.export.load(str(in_folder / "e3.pt2")).module()
        torch.testing.assert_close(together(x), ensemble(x))


@pytest.mark.slow
def test_a_study_of_arrays_needs_its_test_data_and_a_scripts_builder(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    d = load_dataset("digits", train_size=200, test_size=60)
    study = caviar.optimize(
        script_build,
        {"width": {"choice": [8, 16]}, "lr": 0.05, "epochs": 2, "batch_size": 32},
        data=(d.x_train, d.y_train),
        trials=2,
        storage=tmp_path / "a.db",
        keep_models=1,
        progress=False,
        report=False,
    )
    try:
        with pytest.raises(InvalidValue, match=r"load_model.build: .* pass build="):
            caviar.load_model("own-model", storage=tmp_path / "a.db")
        model = caviar.load_model("own-model", storage=tmp_path / "a.db", build=script_build)
        with pytest.raises(InvalidValue, match=r"test_data: .* pass the held-out examples"):
            caviar.evaluate_on_test(study, build=script_build)
        record = caviar.evaluate_on_test(study, test_data=(d.x_test, d.y_test), build=script_build)
        with torch.no_grad():
            out = model(torch.as_tensor(d.x_test, dtype=torch.float32)).numpy()
        assert record["accuracy"] == pytest.approx(float(np.mean(out.argmax(1) == d.y_test)))
        assert "validation_accuracy_reproduced" not in record
    finally:
        study.close()

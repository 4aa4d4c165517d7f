"""The test set of a study of the user's own model, used once: its kept best module (or the
ensemble of its top kept modules) scored on held-out data, as trained, none trained again.

Where the test set comes from: the config's dataset when it names one (``[data] dataset =
"digits"``: its test part, as :func:`caviar.data.load_dataset` loads it, with the study's
split checked to be the one the search used); for arrays given to :func:`caviar.optimize`,
which caviar keeps no copy of, the ``test_data=(x, y)`` given here.

:mod:`caviar.models.evaluate` refuses a second use and records the result; this module says
what the result is. The loss is the cross-entropy of the softmax of the module's output
(whatever loss the search trained with), so uses of the test set compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from caviar.core.errors import InvalidValue
from caviar.models.ensemble import kept_members
from caviar.models.own_module import OwnStudy, kept_ensemble, kept_module, rebuild
from caviar.nn import resolve_device
from caviar.nn.device import matmul_precision
from caviar.own.builder import Build
from caviar.own.data import PreparedModuleData, as_arrays
from caviar.search.config import config_from_mapping
from caviar.search.job import DTYPES, prepare_data
from caviar.search.kept import kept_state
from caviar.search.optimize import ARRAYS
from caviar.search.own_model import data_record
from caviar.study import Study

#: examples per evaluation pass
BATCH = 200

Arrays = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class HeldOut:
    """The test examples, the validation examples when caviar can load them again (None for
    arrays given to caviar.optimize), and where the test set came from, in words."""

    test: Arrays
    validation: Arrays | None
    source: str


def held_out(study: Study, facts: OwnStudy, test_data: Any) -> HeldOut:
    """The study's test set (see the module docstring), or an InvalidValue saying what to
    pass or why the data are not the study's."""
    config = config_from_mapping(study.attrs["config"], stored=True)
    dataset = config.data.dataset
    if dataset == ARRAYS:
        if test_data is None:
            raise InvalidValue(
                "test_data",
                f"study {study.name!r} was tuned on {ARRAYS}, and caviar keeps no copy of "
                "them: pass the held-out examples, evaluate_on_test(study, test_data=(x, y))",
            )
        x, y = as_arrays(test_data, "test_data")
        _check_fits(facts, x, y)
        return HeldOut((x, y), None, "the test_data given")
    if test_data is not None:
        raise InvalidValue(
            "test_data",
            f"study {study.name!r} has a test set, its dataset's ({dataset}); test_data= is "
            f"for a study of {ARRAYS}",
        )
    data = prepare_data(config)
    mine = data_record(PreparedModuleData(data.split, data.dataset.n_classes, None), dataset)
    recorded = study.attrs.get("data") or {}
    for key, what in (("data_hash", "examples"), ("split_hash", "validation split")):
        if recorded.get(key) != mine[key]:
            raise InvalidValue(
                "data",
                f"study {study.name!r} was run on other {what} (hash "
                f"{str(recorded.get(key))[:12]}); its config now gives {mine[key][:12]}: the "
                f"dataset ({dataset}) changed",
            )
    test = (data.dataset.x_test, data.dataset.y_test)
    _check_fits(facts, *test)
    return HeldOut(test, (data.split.x_val, data.split.y_val), f"the test part of {dataset}")


def _check_fits(facts: OwnStudy, x: np.ndarray, y: np.ndarray) -> None:
    if facts.example_shape and tuple(x.shape[1:]) != facts.example_shape:
        raise InvalidValue(
            "test_data",
            f"examples must have the shape the study trained on, {list(facts.example_shape)}, "
            f"got {list(x.shape[1:])}",
        )
    if facts.n_classes is not None and len(y) and int(y.max()) >= facts.n_classes:
        raise InvalidValue(
            "test_data",
            f"labels must be classes 0 to {facts.n_classes - 1}, as in the study, got "
            f"{int(y.max())}",
        )
    if not len(y):
        raise InvalidValue("test_data", "holds no examples")


@torch.no_grad()
def score_module(
    module: nn.Module, data: Arrays, *, device: torch.device, dtype: torch.dtype
) -> tuple[float, float]:
    """Mean cross-entropy (of the softmax of the module's output) and accuracy on ``data``,
    in batches of :data:`BATCH`, the module in eval mode on ``device``."""
    module.eval()
    x = torch.as_tensor(np.ascontiguousarray(data[0])).to(device, dtype)
    y = torch.as_tensor(np.ascontiguousarray(data[1])).to(device, torch.int64)
    total, correct = 0.0, 0
    with matmul_precision(device, dtype):
        for start in range(0, len(y), BATCH):
            out: Tensor = module(x[start : start + BATCH])  # [b, C]
            target = y[start : start + BATCH]
            log_p = torch.log_softmax(out, dim=1)
            total += float(nn.functional.nll_loss(log_p, target, reduction="sum"))
            correct += int((out.argmax(dim=1) == target).sum())
    return total / len(y), correct / len(y)


def module_on_test(
    study: Study,
    facts: OwnStudy,
    *,
    test_data: Any = None,
    device: str | None = None,
    build: Build | None = None,
) -> dict[str, Any]:
    """The kept best module of ``study`` scored on its test set (mode ``as-trained``)."""
    best = study.best_trial
    if best is None:
        raise InvalidValue("study", f"{study.name!r} has no complete trial to test")
    path = kept_state(study, best.number)
    if path is None:
        search = (study.attrs.get("config") or {}).get("search") or {}
        raise InvalidValue(
            "study",
            f"{study.name!r} kept no model of its best trial {best.number} (search.keep_models "
            f"= {search.get('keep_models', 'not recorded')}), and caviar cannot train your "
            "module again outside a study: tune with keep_models >= 1",
        )
    config = config_from_mapping(study.attrs["config"], stored=True)
    data = held_out(study, facts, test_data)
    target = resolve_device(device or config.study.device)
    dtype = DTYPES[config.study.dtype]
    module = rebuild(kept_module(path), build, trial=best.number, dtype=dtype).to(target)
    loss, accuracy = score_module(module, data.test, device=target, dtype=dtype)
    record: dict[str, Any] = {
        "trial": best.number,
        "mode": "as-trained",
        "how": (
            f"trial {best.number}'s kept module ({facts.model}): the model the search scored, "
            f"not trained again; test set: {data.source}"
        ),
        "accuracy": accuracy,
        "loss": loss,
        "n_test": len(data.test[1]),
        "validation_accuracy_in_search": best.value,
        "device": str(target),
    }
    if data.validation is not None:
        _, reproduced = score_module(module, data.validation, device=target, dtype=dtype)
        record["validation_accuracy_reproduced"] = reproduced
    return record


def ensemble_on_test(
    study: Study,
    facts: OwnStudy,
    k: int,
    *,
    test_data: Any = None,
    device: str | None = None,
    build: Build | None = None,
) -> dict[str, Any]:
    """The ensemble of ``study``'s top ``k`` kept modules scored on its test set (mode
    ``ensemble``), each member scored too; their validation accuracy is measured again where
    caviar can load the validation examples, else (arrays) the search's."""
    members = kept_members(study, k)
    config = config_from_mapping(study.attrs["config"], stored=True)
    data = held_out(study, facts, test_data)
    target = resolve_device(device or config.study.device)
    dtype = DTYPES[config.study.dtype]
    ensemble = kept_ensemble(members, build, dtype=dtype).to(target)
    trials = [t.number for t, _ in members]

    def scored(module: nn.Module, part: Arrays | None) -> tuple[float, float] | None:
        return None if part is None else score_module(module, part, device=target, dtype=dtype)

    loss, accuracy = score_module(ensemble, data.test, device=target, dtype=dtype)
    together = scored(ensemble, data.validation)
    each: Sequence[nn.Module] = list(ensemble.members)
    rows = []
    for (trial, _), module in zip(members, each, strict=True):
        test_loss, test_accuracy = score_module(module, data.test, device=target, dtype=dtype)
        own = scored(module, data.validation)
        rows.append(
            {
                "trial": trial.number,
                "validation_accuracy": trial.value if own is None else own[1],
                "validation_accuracy_in_search": trial.value,
                "test_accuracy": test_accuracy,
                "test_loss": test_loss,
            }
        )
    return {
        "trial": trials,
        "mode": "ensemble",
        "ensemble": len(trials),
        "how": (
            f"the mean of the softmax outputs of the top {len(trials)} kept modules "
            f"({facts.model}; trials {', '.join(map(str, trials))}), each as the search trained "
            f"it, none trained again; test set: {data.source}"
        ),
        "accuracy": accuracy,
        "loss": loss,
        "n_test": len(data.test[1]),
        "validation_accuracy": None if together is None else together[1],
        "validation_loss": None if together is None else together[0],
        "members": rows,
        "validation_accuracy_in_search": members[0][0].value,
        "device": str(target),
    }

"""The test set, used once: the best configuration of a finished search, scored on held-out data.

Two ways, recorded with the result:

- ``retrain`` (default): train the best configuration again, with its seed and epoch count, on
  training + validation data, the usual last step once the hyperparameters are chosen;
- ``as-trained``: train it again exactly as in the search (same split, seed and data order), which
  rebuilds the very model the search scored, since every result is reproducible from its seed;
  the reproduced validation accuracy is recorded beside the one the search found.

The study records that the test set was used; a second use is refused unless forced, and counted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from caviar.config import config_from_mapping
from caviar.errors import InvalidValue, got
from caviar.nn import MemberSpec, Population, TrainingData, evaluate_states, resolve_device
from caviar.study import Study
from caviar.tune import DTYPES, prepare_data

MODES = ("retrain", "as-trained")


class TestSetUsed(RuntimeError):
    """The study's test set was used already."""

    __test__ = False  # not a pytest test class


def evaluate_on_test(
    study: Study, *, mode: str = "retrain", force: bool = False, device: str | None = None
) -> dict[str, Any]:
    """Score the study's best trial on the test set once; returns (and records) the result."""
    if mode not in MODES:
        raise InvalidValue("mode", f"must be one of {list(MODES)}, {got(mode)}")
    attrs = study.attrs
    previous = attrs.get("test")
    if previous and not force:
        raise TestSetUsed(
            f"the test set of study {study.name!r} was used on {previous['when']} (trial "
            f"{previous['trial']}, {previous['mode']}: accuracy {previous['accuracy']:.4f}); "
            f"it is meant to be used once. Pass --force to use it again (that is recorded too)."
        )
    best = study.best_trial
    if best is None:
        raise InvalidValue("study", f"{study.name!r} has no complete trial to test")
    if "config" not in attrs:
        raise InvalidValue(
            "study", f"{study.name!r} was not made by caviar tune (it stores no config to retrain)"
        )
    config = config_from_mapping(attrs["config"])
    data = prepare_data(config)
    data.check(study)
    spec = MemberSpec.from_params(best.params, seed=best.seed)
    target = resolve_device(device or config.study["device"])
    dtype = DTYPES[config.study["dtype"]]
    if mode == "retrain":
        split = data.split
        training = TrainingData.from_arrays(
            np.concatenate([split.x_train, split.x_val]),
            np.concatenate([split.y_train, split.y_val]),
            n_classes=data.dataset.n_classes,
        )
        how = (
            f"retrained on training + validation ({len(training.y_train)} examples) with trial "
            f"{best.number}'s seed and {spec.epochs} epochs"
        )
    else:
        training = data.training
        how = f"trial {best.number} trained again exactly as in the search"
    population = Population([spec], data_seed=config.seed, device=target, dtype=dtype)
    (result,) = population.fit(training, keep_states=True)
    if result.state is None or result.diverged:
        raise RuntimeError(f"retraining trial {best.number} diverged; nothing to test")
    ((loss, accuracy),) = evaluate_states(
        [result.state], data.dataset.x_test, data.dataset.y_test, device=target, dtype=dtype
    )
    record: dict[str, Any] = {
        "trial": best.number,
        "mode": mode,
        "how": how,
        "accuracy": accuracy,
        "loss": loss,
        "n_test": len(data.dataset.y_test),
        "validation_accuracy_in_search": best.value,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "uses": (previous or {}).get("uses", 0) + 1,
        "device": str(target),
    }
    if mode == "as-trained":
        record["validation_accuracy_reproduced"] = result.curve[-1].val_accuracy
    study.set_attrs({"test": record})
    return record

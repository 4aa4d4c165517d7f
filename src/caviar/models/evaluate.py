"""The test set, used once: the best configuration of a finished search, scored on held-out data.

Three ways, recorded with the result:

- ``retrain`` (default): train the best configuration again, with its seed and epoch count, on
  training + validation data, the usual last step once the hyperparameters are chosen;
- ``as-trained``: the very model the search scored: the trial's final state, which the search
  kept beside the study (:mod:`caviar.search.kept`), evaluated with no retraining; its validation
  accuracy is recorded beside the one the search found, and equals it. A study without a kept
  state for the trial (``keep_models = 0``, or made before models were kept) trains it again
  exactly as in the search instead (same split, seed and data order), and says so;
- ``ensemble`` (:func:`evaluate_ensemble_on_test`): the mean of the softmax outputs of the top
  K kept models (:mod:`caviar.models.ensemble`), none trained again; the validation accuracy of the
  ensemble and of each member is recorded beside it, and each member's own test accuracy, scored
  in the same use of the test set, so that it shows whether the ensemble beat its best member.

A study of the user's own model (:mod:`caviar.models.own_evaluate`) is scored ``as-trained``
(its default) or as an ensemble; ``retrain`` is refused, since caviar trains a user's module
only inside a study.

The study records that the test set was used; a second use is refused unless forced, and counted.
Every use is kept, oldest first, in ``attrs["test_uses"]`` (each with its time, mode, trial,
accuracy and loss); ``attrs["test"]`` is the latest, as before the history was kept. A study from
before then starts its history with the one use it stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from caviar.core.errors import InvalidValue, got
from caviar.models.ensemble import CaviarEnsemble, kept_members, score
from caviar.models.own_evaluate import ensemble_on_test, module_on_test
from caviar.models.own_module import OwnStudy
from caviar.nn import (
    MemberSpec,
    Population,
    TrainingData,
    evaluate_states,
    resolve_device,
)
from caviar.own.builder import Build
from caviar.search.config import StudyConfig, config_from_mapping
from caviar.search.job import DTYPES, PreparedData, prepare_data
from caviar.search.kept import kept_state, read_state
from caviar.study import Study

MODES = ("retrain", "as-trained")
#: examples per evaluation pass, as the pool evaluates on a CPU: the same products, so the same
#: logits, bit for bit
EVAL_BATCH = 200


class TestSetUsed(RuntimeError):
    """The study's test set was used already."""

    __test__ = False  # not a pytest test class


def evaluate_on_test(
    study: Study,
    *,
    mode: str | None = None,
    force: bool = False,
    device: str | None = None,
    test_data: Any = None,
    build: Build | None = None,
) -> dict[str, Any]:
    """Score the study's best trial on the test set once; returns (and records) the result.

    ``mode`` defaults to ``retrain``, and to ``as-trained`` for a study of your own model,
    whose ``test_data=(x, y)`` is needed when it was tuned on arrays (caviar keeps no copy of
    them) and ``build=`` when its builder was a script's function."""
    facts = OwnStudy.of(study)
    mode = mode or ("retrain" if facts is None else "as-trained")
    if mode not in MODES:
        raise InvalidValue("mode", f"must be one of {list(MODES)}, {got(mode)}")
    if facts is None and (test_data is not None or build is not None):
        raise InvalidValue(
            "evaluate_on_test",
            f"test_data= and build= are for a study of your own model; {study.name!r} is of "
            "caviar's nets, tested on its dataset's test part",
        )
    if facts is not None and mode == "retrain":
        raise InvalidValue(
            "mode",
            f"'retrain' trains caviar's own nets again; study {study.name!r} is of your module "
            f"({facts.model}), which caviar trains only inside a study: use 'as-trained' (the "
            "kept best module) or an ensemble of the kept modules",
        )
    previous = _unused_or_forced(study, force)
    if facts is not None:
        own = module_on_test(study, facts, test_data=test_data, device=device, build=build)
        return _recorded(study, _stamped(own, previous), previous)
    best = study.best_trial
    if best is None:
        raise InvalidValue("study", f"{study.name!r} has no complete trial to test")
    config, data = _prepared(study)
    spec = MemberSpec.from_params(best.params, seed=best.seed)
    target = resolve_device(device or config.study.device)
    dtype = DTYPES[config.study.dtype]
    kept = kept_state(study, best.number) if mode == "as-trained" else None
    state = None if kept is None else read_state(kept)
    if state is not None:
        how = (
            f"trial {best.number}'s kept final state: the model the search scored, "
            f"not trained again"
        )
        split = data.split
        ((_, reproduced),) = evaluate_states(
            [state], split.x_val, split.y_val, device=target, dtype=dtype, batch=EVAL_BATCH
        )
    else:
        if mode == "retrain":
            split = data.split
            training = TrainingData.from_arrays(
                np.concatenate([split.x_train, split.x_val]),
                np.concatenate([split.y_train, split.y_val]),
                n_classes=data.dataset.n_classes,
            )
            how = (
                f"retrained on training + validation ({len(training.y_train)} examples) with "
                f"trial {best.number}'s seed and {spec.epochs} epochs"
            )
        else:
            training = data.training
            how = (
                f"trial {best.number} trained again exactly as in the search (no kept state: "
                f"keep_models was 0, or the study predates kept models)"
            )
        population = Population([spec], data_seed=config.seed, device=target, dtype=dtype)
        (result,) = population.fit(training, keep_states=True)
        if result.state is None or result.diverged:
            raise RuntimeError(f"retraining trial {best.number} diverged; nothing to test")
        state = result.state
        reproduced = result.curve[-1].val_accuracy
    ((loss, accuracy),) = evaluate_states(
        [state],
        data.dataset.x_test,
        data.dataset.y_test,
        device=target,
        dtype=dtype,
        batch=EVAL_BATCH,
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
        record["validation_accuracy_reproduced"] = reproduced
    return _recorded(study, record, previous)


def evaluate_ensemble_on_test(
    study: Study,
    k: int,
    *,
    force: bool = False,
    device: str | None = None,
    test_data: Any = None,
    build: Build | None = None,
) -> dict[str, Any]:
    """Score the ensemble of the study's top ``k`` kept models (:mod:`caviar.models.ensemble`: the
    mean of their softmax outputs, none trained again) on the test set; returns (and records,
    mode ``ensemble``) the result, with the validation accuracy of the ensemble and of each
    member, and each member's own test accuracy and loss, scored in this same recorded use of
    the test set, so that it shows whether the ensemble beat its best member. ``test_data``
    and ``build`` as in :func:`evaluate_on_test`, for a study of your own model."""
    facts = OwnStudy.of(study)
    if facts is None and (test_data is not None or build is not None):
        raise InvalidValue(
            "evaluate_ensemble_on_test",
            f"test_data= and build= are for a study of your own model; {study.name!r} is of "
            "caviar's nets, tested on its dataset's test part",
        )
    previous = _unused_or_forced(study, force)
    if facts is not None:
        mine = ensemble_on_test(study, facts, k, test_data=test_data, device=device, build=build)
        return _recorded(study, _stamped(mine, previous), previous)
    members = kept_members(study, k)
    config, data = _prepared(study)
    target = resolve_device(device or config.study.device)
    dtype = DTYPES[config.study.dtype]
    trials = [t.number for t, _ in members]
    states = [read_state(path) for _, path in members]
    ensemble = CaviarEnsemble(states, trials=trials, dtype=dtype).to(target)
    split, test = data.split, data.dataset
    own = evaluate_states(
        states, split.x_val, split.y_val, device=target, dtype=dtype, batch=EVAL_BATCH
    )
    val_loss, val_accuracy = score(ensemble, split.x_val, split.y_val, batch=EVAL_BATCH)
    loss, accuracy = score(ensemble, test.x_test, test.y_test, batch=EVAL_BATCH)
    alone = evaluate_states(
        states, test.x_test, test.y_test, device=target, dtype=dtype, batch=EVAL_BATCH
    )
    record: dict[str, Any] = {
        "trial": trials,
        "mode": "ensemble",
        "ensemble": len(trials),
        "how": (
            f"the mean of the softmax outputs of the top {len(trials)} kept models (trials "
            f"{', '.join(map(str, trials))}), each as the search trained it, none trained again"
        ),
        "accuracy": accuracy,
        "loss": loss,
        "n_test": len(test.y_test),
        "validation_accuracy": val_accuracy,
        "validation_loss": val_loss,
        "members": [
            {
                "trial": t.number,
                "validation_accuracy": member_accuracy,
                "validation_accuracy_in_search": t.value,
                "test_accuracy": test_accuracy,
                "test_loss": test_loss,
            }
            for (t, _), (_, member_accuracy), (test_loss, test_accuracy) in zip(
                members, own, alone, strict=True
            )
        ],
        "validation_accuracy_in_search": members[0][0].value,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "uses": (previous or {}).get("uses", 0) + 1,
        "device": str(target),
    }
    return _recorded(study, record, previous)


def ensemble_table(record: dict[str, Any]) -> list[str]:
    """The lines of a short table of an ensemble's use of the test set: each member's trial,
    validation and test accuracy, then the ensemble's ("-" for a member's test accuracy in a
    use recorded before members were scored on it)."""
    rows = [["trial", "val acc", "test acc"]]
    rows += [
        [
            str(m["trial"]),
            _accuracy(m["validation_accuracy"]),
            f"{m['test_accuracy']:.4f}" if "test_accuracy" in m else "-",
        ]
        for m in record["members"]
    ]
    rows.append(
        [
            f"ensemble of {record['ensemble']}",
            _accuracy(record["validation_accuracy"]),
            f"{record['accuracy']:.4f}",
        ]
    )
    widths = [max(len(row[c]) for row in rows) for c in range(3)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    scored = [m for m in record["members"] if "test_accuracy" in m]
    if scored:
        best = max(scored, key=lambda m: m["test_accuracy"])
        margin = record["accuracy"] - best["test_accuracy"]
        verdict = "beat" if margin > 0 else "tied" if margin == 0 else "did not beat"
        lines.append(
            f"the ensemble {verdict} its best member on the test set (trial {best['trial']}, "
            f"{best['test_accuracy']:.4f}): {margin:+.4f}"
        )
    return lines


def _accuracy(value: float | None) -> str:
    """An accuracy in a table, "-" where none was measured."""
    return "-" if value is None else f"{value:.4f}"


def _unused_or_forced(study: Study, force: bool) -> dict[str, Any] | None:
    """The study's latest use of the test set (None if unused); an error if there was one and
    ``force`` is not given."""
    previous: dict[str, Any] | None = study.attrs.get("test")
    if previous and not force:
        raise TestSetUsed(
            f"the test set of study {study.name!r} was used on {previous['when']} (trial "
            f"{previous['trial']}, {previous['mode']}: accuracy {previous['accuracy']:.4f}); "
            f"it is meant to be used once. Pass --force to use it again (that is recorded too)."
        )
    return previous


def _prepared(study: Study) -> tuple[StudyConfig, PreparedData]:
    """The study's config and its data, checked to be the data the search used."""
    if "config" not in study.attrs:
        raise InvalidValue(
            "study",
            f"{study.name!r} was made with the Python API (Study.create), not caviar tune: it "
            f"records no data or config to rebuild its models from, so caviar cannot score it "
            f"on a test set; evaluate its best params (caviar show {study.name}) with your own "
            f"code",
        )
    config = config_from_mapping(study.attrs["config"], stored=True)
    data = prepare_data(config)
    data.check(study)
    return config, data


def _stamped(record: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """``record`` with the time of this use of the test set and the count of uses."""
    return {
        **record,
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "uses": (previous or {}).get("uses", 0) + 1,
    }


def _recorded(
    study: Study, record: dict[str, Any], previous: dict[str, Any] | None
) -> dict[str, Any]:
    """``record`` appended to the study's test-set history and stored as its latest use."""
    history = list(study.attrs.get("test_uses") or ([previous] if previous else []))
    study.set_attrs({"test": record, "test_uses": [*history, record]})
    return record

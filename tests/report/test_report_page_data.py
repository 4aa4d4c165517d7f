"""What the page's figures draw: axes on each dimension's scale, strict JSON, hand-made trials."""

from __future__ import annotations

import json
import math

import pytest

from caviar.core.records import Direction, EpochRecord, FrozenTrial, TrialState
from caviar.report.page_data import (
    best_first,
    jitter,
    parallel_data,
    scatter_axis,
    scatter_data,
    strict,
    trial_record,
)
from caviar.report.scatter import scatter_panels
from caviar.space import Choice, IntUniform, LogUniform, OneMinusLog, SearchSpace

SPACE = SearchSpace(
    {
        "lr": LogUniform(1e-4, 1.0),
        "beta1": OneMinusLog(0.8, 0.99),
        "act": Choice(["relu", "tanh"]),
        "units": IntUniform(8, 24),
        "epochs": 3,
    }
)


def trial(
    number: int,
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    lr: float = 1e-2,
    **attrs: object,
) -> FrozenTrial:
    params = {"lr": lr, "beta1": 0.9, "act": "tanh", "units": 12, "epochs": 3}
    curve = (EpochRecord(1, val_accuracy=0.5, train_loss=math.nan),)
    return FrozenTrial(number, state, params, SPACE.to_unit(params), 7, value, attrs, curve)


def test_strict_makes_every_non_finite_number_null() -> None:
    found = strict({"a": (1.0, math.nan), "b": {"c": math.inf, "d": -math.inf}, "e": "x"})
    assert found == {"a": [1.0, None], "b": {"c": None, "d": None}, "e": "x"}
    json.dumps(found, allow_nan=False)


def test_a_trial_record_keeps_its_values_its_text_and_its_curve() -> None:
    t = trial(3, 0.91234, lr=0.0123456)
    record = trial_record(t, ["lr", "act"], "validation accuracy")
    assert record["text"] == {"lr": "0.01235", "act": "tanh"}  # as `caviar show` prints them
    assert record["hover"] == (
        "<b>trial 3</b> (complete)<br>validation accuracy 0.9123<br>lr = 0.01235<br>act = tanh"
    )
    assert record["curve"]["epoch"] == [1] and math.isnan(record["curve"]["train_loss"][0])
    assert strict(record)["curve"]["train_loss"] == [None]
    pruned = trial_record(trial(4, None, TrialState.PRUNED, rung=2, rung_value=0.5), [], "v")
    assert pruned["hover"] == "<b>trial 4</b> (pruned at epoch 2: 0.5)"


def test_the_scatter_axes_follow_each_scale() -> None:
    axes = {p.name: scatter_axis(p) for p in scatter_panels(SPACE, [trial(0, 0.9)])}
    # a log axis takes the values themselves, its range in log10 (widened by 5% a side)
    assert axes["lr"]["type"] == "log" and axes["lr"]["range"] == pytest.approx((-4.2, 0.2))
    # a beta sits at -log10(1 - beta), its ticks labelled in betas
    beta = axes["beta1"]
    assert beta["type"] == "linear" and beta["ticktext"] == ["0.8", "0.9", "0.95", "0.98", "0.99"]
    assert beta["tickvals"][1] == pytest.approx(1.0) and beta["tickvals"][-1] == pytest.approx(2.0)
    assert beta["title"] == "beta1 (log scale of 1 - beta)"
    assert axes["act"]["tickvals"] == [0, 1] and axes["act"]["ticktext"] == ["relu", "tanh"]
    assert axes["units"]["ticktext"] == ["10", "15", "20"]  # whole numbers only


def test_scatter_points_sit_on_their_axes() -> None:
    panels = scatter_panels(SPACE, [trial(0, 0.9), trial(5, 0.8)])
    found = scatter_data(panels)
    assert found is not None
    by_name = {p["name"]: p for p in found["panels"]}
    best = by_name["beta1"]["groups"][-1]
    assert best["kind"] == "best" and best["x"] == [pytest.approx(1.0)]  # beta 0.9
    act = by_name["act"]["groups"][-1]
    assert act["x"] == [pytest.approx(1 + jitter(0))]  # tanh, moved a little
    assert all(-0.15 <= jitter(n) < 0.15 for n in range(100))
    assert found["y"]["ticktext"][0].startswith("< ")  # the edge row
    assert scatter_data(scatter_panels(SPACE, [])) is None


def test_parallel_coordinates_put_each_dimension_on_its_scale() -> None:
    found = parallel_data(SPACE, [trial(0, 0.9), trial(1, None, TrialState.DIVERGED)], "acc")
    assert found is not None and found["numbers"] == [0]  # complete trials only
    lr, beta, act, units, score = found["dims"]
    assert lr["values"] == [pytest.approx(-2.0)] and lr["range"] == (-4.0, 0.0)
    assert lr["ticktext"] == ["0.0001", "0.001", "0.01", "0.1", "1"]
    assert beta["values"] == [pytest.approx(1.0)] and beta["ticktext"][0] == "0.8"
    assert act["values"] == [1] and act["ticktext"] == ["relu", "tanh"]
    assert units["values"] == [12] and units["range"] == (8, 24)
    assert score == {"label": "acc", "values": [0.9], "range": (0.9, 0.9)}
    assert parallel_data(SPACE, [], "acc") is None


def test_the_trials_best_first_then_pruned_then_the_rest() -> None:
    trials = [
        trial(0, None, TrialState.DIVERGED),
        trial(1, 0.8),
        trial(2, None, TrialState.PRUNED, rung=1, rung_value=0.3),
        trial(3, 0.9),
        trial(4, None, TrialState.PRUNED, rung=1, rung_value=0.6),
    ]
    assert [t.number for t in best_first(trials, Direction.MAXIMIZE)] == [3, 1, 4, 2, 0]

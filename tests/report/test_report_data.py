"""Report data: computed from trials by pure functions, checked against hand-made studies."""

from __future__ import annotations

import numpy as np
import pytest

from caviar.core.records import Direction, EpochRecord, FrozenTrial, TrialState
from caviar.report.data import round_boxes, rung_table, summary
from caviar.report.importance import importance
from caviar.report.scatter import scatter_panels
from caviar.space import Choice, IntUniform, LogUniform, OneMinusLog, SearchSpace

SPACE = SearchSpace(
    {
        "lr": LogUniform(1e-4, 1.0),
        "beta1": OneMinusLog(0.9, 0.999),
        "act": Choice(["relu", "tanh"]),
        "epochs": 3,
    }
)


def trial(
    number: int,
    lr: float,
    beta1: float,
    act: str,
    value: float | None,
    state: TrialState = TrialState.COMPLETE,
    **attrs: object,
) -> FrozenTrial:
    params = {"lr": lr, "beta1": beta1, "act": act, "epochs": 3}
    curve = tuple(EpochRecord(e, train_accuracy=0.1 * e, val_accuracy=0.1 * e) for e in (1, 2, 3))
    return FrozenTrial(number, state, params, SPACE.to_unit(params), number, value, attrs, curve)


def test_scatter_panels_use_each_dimensions_scale() -> None:
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8),
        trial(1, 0.5, 0.9, "tanh", None, TrialState.DIVERGED),
    ]
    panels = {p.name: p for p in scatter_panels(SPACE, trials)}
    assert list(panels) == ["lr", "beta1", "act"]  # searched ones only
    assert (panels["lr"].axis, panels["beta1"].axis, panels["act"].axis) == (
        "log",
        "one_minus_log",
        "categorical",
    )
    assert panels["lr"].x == (1e-3,) and panels["lr"].y == (0.8,)
    assert panels["lr"].diverged_x == (0.5,)
    assert panels["act"].categories == ("relu", "tanh")


def test_scatter_panels_zoom_on_the_upper_band_and_group_by_round() -> None:
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.5, round=0),
        trial(1, 1e-2, 0.95, "tanh", 0.9, round=0),
        trial(2, 2e-2, 0.99, "relu", 0.95, round=1),
        trial(3, 3e-2, 0.98, "relu", 1.0, round=1),
        trial(4, 0.5, 0.9, "tanh", None, TrialState.DIVERGED, round=1),
    ]
    panels = {p.name: p for p in scatter_panels(SPACE, trials, Direction.MAXIMIZE)}
    lr = panels["lr"]
    # values 0.5, 0.9, 0.95, 1.0: median 0.925, best 1.0, pad 0.0075 (see test_report_scales)
    assert lr.zoom.cut == pytest.approx(0.9175) and lr.zoom.edge == pytest.approx(0.91)
    assert lr.zoom.limits == pytest.approx((0.9025, 1.0075))
    groups = [(g.kind, g.round, g.x, g.y, g.numbers) for g in lr.groups]
    edge = lr.zoom.edge
    assert groups == [
        ("off_range", 0, (1e-3, 1e-2), (edge, edge), (0, 1)),  # 0.5 and 0.9 are below the cut
        ("round", 1, (2e-2, 3e-2), (0.95, 1.0), (2, 3)),
        ("diverged", None, (0.5,), (edge,), (4,)),  # at the edge, not at 0
        ("best", None, (3e-2,), (1.0,), (3,)),
    ]
    assert [g.label for g in lr.groups] == ["round 0", "round 1", "diverged", "best (trial 3)"]
    # a choice is drawn at its option's index
    act = panels["act"]
    assert [g.x for g in act.groups] == [(0, 1), (0, 0), (1,), (0,)]
    assert act.x_limits == (-0.5, 1.5) and act.x_ticks == (0, 1)
    assert act.x_tick_labels == ("relu", "tanh")


def test_scatter_panels_label_a_beta_axis_in_betas_over_its_whole_range() -> None:
    space = SearchSpace({"beta1": OneMinusLog(0.8, 0.99), "lr": LogUniform(1e-4, 1.0)})
    params = {"beta1": 0.9, "lr": 1e-3}
    t = FrozenTrial(0, TrialState.COMPLETE, params, space.to_unit(params), 0, 0.9)
    beta1, lr = scatter_panels(space, [t])
    # the ends 0.8 and 0.99 are labelled even though the only trial sits at 0.9
    assert beta1.x_ticks == (0.8, 0.9, 0.95, 0.98, 0.99)
    assert beta1.x_tick_labels == ("0.8", "0.9", "0.95", "0.98", "0.99")
    # the axis spans the searched range, widened by 5% of -log10(1 - beta) on each side
    t_lo, t_hi = -np.log10(0.2), 2.0
    pad = 0.05 * (t_hi - t_lo)
    assert beta1.x_limits == pytest.approx((1 - 10 ** -(t_lo - pad), 1 - 10 ** -(t_hi + pad)))
    assert lr.x_ticks == () and lr.x_limits == pytest.approx((10**-4.2, 10**0.2))
    # no rounds recorded: one group of complete trials, and the best
    assert [(g.kind, g.label) for g in lr.groups] == [
        ("round", "complete"),
        ("best", "best (trial 0)"),
    ]


def test_round_boxes_map_unit_boxes_through_the_scales() -> None:
    box0 = [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    box1 = [[0.5, 0.75], [0.5, 1.0], [0.0, 0.5]]
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8, round=0, box=box0),
        trial(1, 1e-2, 0.95, "tanh", 0.9, round=0, box=box0),
        trial(2, 2e-2, 0.99, "relu", 0.95, round=1, box=box1),
    ]
    boxes = round_boxes(SPACE, trials, Direction.MAXIMIZE)
    lr1 = next(b for b in boxes if b.round == 1 and b.name == "lr")
    # unit 0.5 and 0.75 of [1e-4, 1] in log10: 10**-2 and 10**-1
    assert np.isclose(lr1.low, 1e-2) and np.isclose(lr1.high, 1e-1)
    beta1 = next(b for b in boxes if b.round == 1 and b.name == "beta1")
    # unit 0.5 of [0.9, 0.999] in log10(1 - beta): 1 - 10**-2
    assert np.isclose(beta1.low, 0.99) and beta1.high == 0.999
    lr0 = next(b for b in boxes if b.round == 0 and b.name == "lr")
    assert lr0.best == 1e-2 and lr0.samples == (1e-3, 1e-2)


def test_round_boxes_show_the_choices_a_box_keeps() -> None:
    box0 = [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    # act has two options, the bins [0, 0.5) and [0.5, 1]: [0.0, 0.5] keeps relu only
    box1 = [[0.5, 0.75], [0.5, 1.0], [0.0, 0.5]]
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8, round=0, box=box0),
        trial(1, 2e-2, 0.99, "relu", 0.95, round=1, box=box1),
    ]
    boxes = {(b.round, b.name): b for b in round_boxes(SPACE, trials, Direction.MAXIMIZE)}
    assert boxes[0, "act"].kept == ("relu", "tanh") and boxes[0, "act"].text == "all (relu, tanh)"
    assert boxes[1, "act"].kept == ("relu",) and boxes[1, "act"].text == "relu"
    # scaled dimensions read as a range of values: unit [0.5, 0.75] of lr is 10**-2 .. 10**-1
    assert boxes[1, "lr"].text == "0.01 .. 0.1"
    assert boxes[1, "beta1"].text == "0.99 .. 0.999"


def test_summary_counts_states() -> None:
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8),
        trial(1, 0.5, 0.9, "tanh", None, TrialState.DIVERGED),
    ]
    facts = summary(trials)
    assert facts["trials"] == 2 and facts["states"]["complete"] == 1
    assert facts["states"]["diverged"] == 1


def test_importance_finds_the_hyperparameter_that_matters() -> None:
    space = SearchSpace(
        {
            "lr": LogUniform(1e-4, 1.0),
            "units": IntUniform(10, 100),
            "beta1": OneMinusLog(0.9, 0.999),
        }
    )
    rng = np.random.default_rng(0)
    trials = []
    for n in range(60):
        unit = tuple(rng.random(3))
        params = space.from_unit(unit)
        value = 1.0 - (unit[0] - 0.6) ** 2  # only the learning rate matters
        trials.append(FrozenTrial(n, TrialState.COMPLETE, params, unit, n, value))
    ranking = importance(space, trials, Direction.MAXIMIZE)
    assert ranking is not None and ranking[0].name == "lr" and ranking[0].importance > 0.8
    assert np.isclose(sum(r.importance for r in ranking), 1.0)
    assert importance(space, trials[:5], Direction.MAXIMIZE) is None  # too few to say


def halving_trial(number: int, vals: list[float], **attrs: object) -> FrozenTrial:
    """A trial of a study with halving {min_epochs 1, eta 3} whose curve has these values."""
    curve = tuple(EpochRecord(e + 1, val_accuracy=v) for e, v in enumerate(vals))
    state = TrialState.PRUNED if "rung" in attrs else TrialState.COMPLETE
    params = {"lr": 1e-3, "beta1": 0.9, "act": "relu", "epochs": 5}
    halving = {"min_epochs": 1, "eta": 3}
    return FrozenTrial(
        number,
        state,
        params,
        (0.5, 0.5, 0.5),
        number,
        None,
        {"halving": halving, **attrs},
        curve,
    )


def test_rung_table_counts_by_hand() -> None:
    trials = [
        halving_trial(0, [0.5, 0.6, 0.7, 0.8, 0.85]),  # complete: reached rungs 1 and 3
        halving_trial(1, [0.3], rung=1),  # pruned at 1
        halving_trial(2, [0.55, 0.6, 0.65], rung=3),  # pruned at 3
        halving_trial(3, [0.2], rung=1),
    ]
    rows = rung_table(trials)
    # rung 1: all four reached it, two pruned there, best 0.55; rung 3: trials 0 and 2
    assert [(r.epoch, r.reached, r.pruned, r.best) for r in rows] == [
        (1, 4, 2, 0.55),
        (3, 2, 1, 0.7),
    ]
    assert rung_table([trial(0, 1e-3, 0.99, "relu", 0.8)]) == []  # no halving: no table


def test_scatter_panels_mark_pruned_trials_at_their_rung() -> None:
    trials = [
        trial(0, 1e-3, 0.99, "relu", 0.8),
        trial(1, 1e-2, 0.95, "tanh", 0.9),
        trial(2, 2e-2, 0.99, "relu", None, TrialState.PRUNED, rung=1, rung_value=0.88),
        trial(3, 3e-2, 0.98, "relu", None, TrialState.PRUNED, rung=1, rung_value=0.1),
    ]
    lr = scatter_panels(SPACE, trials, Direction.MAXIMIZE)[0]
    (pruned,) = (g for g in lr.groups if g.kind == "pruned")
    # the band is the complete trials' (0.8 and 0.9: cut 0.845): 0.88 inside, 0.1 on the edge
    assert pruned.numbers == (2, 3) and pruned.y == (0.88, lr.zoom.edge)
    assert lr.groups[0] is pruned  # drawn first, under the complete trials
    assert lr.zoom == scatter_panels(SPACE, trials[:2], Direction.MAXIMIZE)[0].zoom

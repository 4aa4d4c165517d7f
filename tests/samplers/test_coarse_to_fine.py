"""CoarseToFineSampler: rounds of random search, each in a box around the last round's best.

In the 1-D tests the space is x in [0, 1] on a linear scale, so a trial's x is its unit
coordinate and the expected boxes are computed here by hand from the values told.
"""

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caviar import (
    CoarseToFineSampler,
    InMemoryStorage,
    LogUniform,
    OneMinusLog,
    SearchSpace,
    Study,
    Uniform,
)
from caviar.samplers import Sampler
from caviar.study import RoundSummary


def exactly(message: str) -> str:
    return "^" + re.escape(message) + "$"


def line_study(sampler, direction="maximize", storage=None):
    return Study.create(
        "c2f",
        SearchSpace({"x": Uniform(0.0, 1.0)}),
        sampler=sampler,
        storage=storage or InMemoryStorage(),
        direction=direction,
    )


def tell_all(study, trials, values):
    for t in trials:
        study.tell(t, values[t.number])


def test_each_round_zooms_on_the_best_of_the_last_computed_by_hand():
    study = line_study(CoarseToFineSampler(rounds=3, per_round=4, keep=2, margin=0.1, seed=0))

    # round 0: the whole unit interval
    r0 = study.ask(4)
    assert [t.number for t in r0] == [0, 1, 2, 3]
    assert all(t.attrs["round"] == 0 and t.attrs["box"] == [[0.0, 1.0]] for t in r0)
    x = {t.number: t.params["x"] for t in r0}
    tell_all(study, r0, {0: 0.2, 1: 0.9, 2: 0.5, 3: 0.7})

    # round 1: the best two are trials 1 (0.9) and 3 (0.7); margin 0.1 of round 0's width 1
    lo1 = max(0.0, min(x[1], x[3]) - 0.1)
    hi1 = min(1.0, max(x[1], x[3]) + 0.1)
    r1 = study.ask(4)
    assert [t.number for t in r1] == [4, 5, 6, 7]
    for t in r1:
        assert t.attrs["round"] == 1
        assert t.attrs["box"][0] == pytest.approx([lo1, hi1], abs=1e-15)
        assert lo1 <= t.params["x"] <= hi1
    x.update({t.number: t.params["x"] for t in r1})
    tell_all(study, r1, {4: 0.1, 5: 0.3, 6: 0.2, 7: 0.3})

    # round 2: the best two are trials 5 and 7; the margin is now 0.1 of round 1's width
    pad = 0.1 * (hi1 - lo1)
    lo2 = max(0.0, min(x[5], x[7]) - pad)
    hi2 = min(1.0, max(x[5], x[7]) + pad)
    r2 = study.ask(4)
    assert [t.attrs["round"] for t in r2] == [2, 2, 2, 2]
    for t in r2:
        assert t.attrs["box"][0] == pytest.approx([lo2, hi2], abs=1e-15)
        assert lo2 <= t.params["x"] <= hi2
    tell_all(study, r2, {8: 0.0, 9: 0.4, 10: 0.1, 11: 0.2})

    # three rounds of four: nothing more to ask
    assert study.ask(1) == []
    assert study.rounds() == [
        RoundSummary(0, ((0.0, 1.0),), (0, 1, 2, 3), 4, 0.9),
        RoundSummary(1, ((pytest.approx(lo1), pytest.approx(hi1)),), (4, 5, 6, 7), 4, 0.3),
        RoundSummary(2, ((pytest.approx(lo2), pytest.approx(hi2)),), (8, 9, 10, 11), 4, 0.4),
    ]


def test_minimize_keeps_the_lowest_values():
    study = line_study(
        CoarseToFineSampler(rounds=2, per_round=4, keep=2, margin=0.1, seed=0),
        direction="minimize",
    )
    r0 = study.ask(4)
    x = {t.number: t.params["x"] for t in r0}
    tell_all(study, r0, {0: 0.2, 1: 0.9, 2: 0.5, 3: 0.7})
    # the best two are now trials 0 (0.2) and 2 (0.5)
    expected = [max(0.0, min(x[0], x[2]) - 0.1), min(1.0, max(x[0], x[2]) + 0.1)]
    (t,) = study.ask(1)
    assert t.attrs["box"][0] == pytest.approx(expected, abs=1e-15)
    assert study.rounds()[1].box == (pytest.approx(tuple(expected)),)


def test_ties_go_to_the_lower_trial_number():
    study = line_study(CoarseToFineSampler(rounds=2, per_round=4, keep=1, margin=0.05, seed=3))
    r0 = study.ask(4)
    x = {t.number: t.params["x"] for t in r0}
    tell_all(study, r0, {0: 0.5, 1: 0.8, 2: 0.8, 3: 0.1})
    (t,) = study.ask(1)
    assert t.attrs["box"][0] == pytest.approx(
        [max(0.0, x[1] - 0.05), min(1.0, x[1] + 0.05)], abs=1e-15
    )


def test_only_complete_trials_shape_the_next_box():
    study = line_study(CoarseToFineSampler(rounds=2, per_round=4, keep=2, margin=0.1, seed=0))
    r0 = study.ask(4)
    x = {t.number: t.params["x"] for t in r0}
    study.tell(r0[0], state="failed")
    study.tell(r0[1], 0.4)
    study.tell(r0[2], state="diverged")
    study.tell(r0[3], 0.1)
    (t,) = study.ask(1)
    expected = [max(0.0, min(x[1], x[3]) - 0.1), min(1.0, max(x[1], x[3]) + 0.1)]
    assert t.attrs["box"][0] == pytest.approx(expected, abs=1e-15)


def test_a_round_without_complete_trials_keeps_its_box():
    study = line_study(CoarseToFineSampler(rounds=2, per_round=2, keep=1, seed=0))
    for t in study.ask(2):
        study.tell(t, state="failed")
    (t,) = study.ask(1)
    assert t.attrs == {"round": 1, "box": [[0.0, 1.0]]}


def test_the_box_is_clipped_to_the_unit_interval():
    # keep one point and pad by half the width: one side of [x - 0.5, x + 0.5] leaves [0, 1]
    study = line_study(CoarseToFineSampler(rounds=2, per_round=3, keep=1, margin=0.5, seed=1))
    r0 = study.ask(3)
    best = r0[0].params["x"]
    tell_all(study, r0, {0: 1.0, 1: 0.0, 2: 0.0})
    (t,) = study.ask(1)
    assert t.attrs["box"] == [[max(0.0, best - 0.5), min(1.0, best + 0.5)]]
    lo, hi = t.attrs["box"][0]
    assert lo == 0.0 or hi == 1.0


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-10, 10), min_size=9, max_size=9),
    keep=st.integers(1, 3),
    margin=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_boxes_stay_in_the_unit_square_and_hold_their_trials(values, keep, margin, seed):
    space = SearchSpace({"x": Uniform(0.0, 1.0), "y": LogUniform(1e-3, 1.0)})
    sampler = CoarseToFineSampler(rounds=3, per_round=3, keep=keep, margin=margin, seed=seed)
    study = Study.create("prop", space, sampler=sampler, storage=InMemoryStorage())
    for _ in range(3):
        trials = study.ask(3)
        tell_all(study, trials, dict(enumerate(values)))
    trials = study.trials()
    assert len(trials) == 9
    for t in trials:
        for (lo, hi), u in zip(t.attrs["box"], t.unit, strict=True):
            assert 0.0 <= lo <= u <= hi <= 1.0
    # each box holds the units of the previous round's kept trials
    for r in (1, 2):
        previous = sorted(trials[3 * (r - 1) : 3 * r], key=lambda t: (-t.value, t.number))
        box = trials[3 * r].attrs["box"]
        for t in previous[:keep]:
            for (lo, hi), u in zip(box, t.unit, strict=True):
                assert lo <= u <= hi


def test_on_log_and_one_minus_log_scales_the_box_is_in_decades():
    # best at lr = 1e-3 and beta = 0.99 (1 - beta = 1e-2); the box lives in unit coordinates:
    # u_lr = (log10 lr + 6) / 6 and u_beta = (-log10(1 - beta) - 1) / 3
    space = SearchSpace({"lr": LogUniform(1e-6, 1.0), "beta": OneMinusLog(0.9, 0.9999)})
    sampler = CoarseToFineSampler(rounds=2, per_round=[40, 20], keep=4, margin=0.05, seed=2)
    study = Study.create("zoom", space, sampler=sampler, storage=InMemoryStorage())

    def value(params):
        return -((math.log10(params["lr"]) + 3) ** 2) - (math.log10(1 - params["beta"]) + 2) ** 2

    r0 = study.ask(40)
    for t in r0:
        study.tell(t, value(t.params))
    kept = sorted(r0, key=lambda t: -value(t.params))[:4]
    decades = [math.log10(t.params["lr"]) for t in kept]  # in [-6, 0]
    lo_lr = max(0.0, (min(decades) + 6) / 6 - 0.05)
    hi_lr = min(1.0, (max(decades) + 6) / 6 + 0.05)
    tens = [-math.log10(1 - t.params["beta"]) for t in kept]  # in [1, 4]
    lo_b = max(0.0, (min(tens) - 1) / 3 - 0.05)
    hi_b = min(1.0, (max(tens) - 1) / 3 + 0.05)

    r1 = study.ask(20)
    assert len(r1) == 20
    for t in r1:
        assert t.attrs["round"] == 1
        assert t.attrs["box"][0] == pytest.approx([lo_lr, hi_lr])
        assert t.attrs["box"][1] == pytest.approx([lo_b, hi_b])
        assert -6 + 6 * lo_lr - 1e-9 <= math.log10(t.params["lr"]) <= -6 + 6 * hi_lr + 1e-9
        assert 1 + 3 * lo_b - 1e-9 <= -math.log10(1 - t.params["beta"]) <= 1 + 3 * hi_b + 1e-9
    # it zoomed: round 1 spans fewer decades of lr, around the best lr of round 0
    best_lr = kept[0].params["lr"]
    assert 6 * (hi_lr - lo_lr) < 3
    assert 10 ** (-6 + 6 * lo_lr) <= best_lr <= 10 ** (-6 + 6 * hi_lr)
    spread0 = sorted(abs(math.log10(t.params["lr"]) + 3) for t in r0)[20]
    spread1 = sorted(abs(math.log10(t.params["lr"]) + 3) for t in r1)[10]
    assert spread1 < spread0


def test_no_trial_of_the_next_round_while_this_round_runs():
    storage = InMemoryStorage()
    study = line_study(CoarseToFineSampler(rounds=2, per_round=4, keep=2, seed=0), storage=storage)
    other = Study.load("c2f", storage)  # a second worker on the same study
    r0 = study.ask(10)  # only round 0's four: round 1 waits for their results
    assert [t.number for t in r0] == [0, 1, 2, 3]
    tell_all(study, r0[:3], {0: 0.1, 1: 0.2, 2: 0.3})
    assert study.ask(1) == []
    assert other.ask(3) == []
    # a released trial of round 0 comes back before anything of round 1
    study.release([r0[3]])
    again = other.ask(3)
    assert [t.number for t in again] == [3]
    assert again[0].attrs["round"] == 0
    other.tell(again[0], 0.4)
    r1 = other.ask(3)
    assert [(t.number, t.attrs["round"]) for t in r1] == [(4, 1), (5, 1), (6, 1)]


@pytest.mark.parametrize(
    ("keep", "per_round", "n_keep"),
    [
        (2, 4, 2),
        (0.5, 4, 2),
        (0.25, 20, 5),
        (0.1, 4, 1),  # ceil(0.4)
        (0.01, 10, 1),  # at least one
        (0.3, 10, 3),
        (0.14, 50, 7),  # 0.14 * 50 is 7.000000000000001 in floating point
        (0.28, 25, 7),
        (0.56, 25, 14),
        (0.07, 100, 7),
    ],
)
def test_keep_is_a_count_or_a_fraction_of_the_round(keep, per_round, n_keep):
    sampler = CoarseToFineSampler(rounds=2, per_round=per_round, keep=keep)
    assert sampler.n_keep(0) == n_keep


def test_keep_as_fraction_shapes_the_same_box_as_the_same_count():
    def box_after_round_0(keep):
        study = line_study(CoarseToFineSampler(rounds=2, per_round=4, keep=keep, seed=7))
        r0 = study.ask(4)
        tell_all(study, r0, {0: 0.3, 1: 0.1, 2: 0.4, 3: 0.2})
        return study.ask(1)[0].attrs["box"], {t.number: t.params["x"] for t in r0}

    by_count, x = box_after_round_0(2)
    by_fraction, _ = box_after_round_0(0.5)
    assert by_fraction == by_count
    assert by_count[0] == pytest.approx(
        [max(0.0, min(x[0], x[2]) - 0.1), min(1.0, max(x[0], x[2]) + 0.1)], abs=1e-15
    )


def test_the_study_ends_after_the_last_round():
    sampler = CoarseToFineSampler(rounds=2, per_round=[3, 2], keep=1, seed=0)
    study = line_study(sampler)
    assert sampler.capacity(study.space) == 5
    for _ in range(5):
        trials = study.ask(5)
        tell_all(study, trials, {t.number: float(t.number) for t in trials})
    assert len(study.trials()) == 5
    assert study.ask(1) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": 0}, "rounds: must be an integer in [1, inf), got 0"),
        ({"rounds": 2.0}, "rounds: must be an integer in [1, inf), got 2.0"),
        (
            {"rounds": 2, "per_round": [10, 10, 10]},
            "per_round: must have one count per round (2), got [10, 10, 10]",
        ),
        (
            {"per_round": 0},
            "per_round: must be an integer in [1, inf) or a non-empty list of integers in "
            "[1, inf), one per round, got 0",
        ),
        (
            {"per_round": []},
            "per_round: must be a non-empty list of integers in [1, inf), one per round, got []",
        ),
        (
            {"rounds": 2, "per_round": [10, 0]},
            "per_round[1]: must be an integer in [1, inf), got 0",
        ),
        ({"keep": 1.5}, "keep: must be a count in [1, inf) or a fraction in (0, 1), got 1.5"),
        ({"keep": 0.0}, "keep: must be a count in [1, inf) or a fraction in (0, 1), got 0.0"),
        ({"keep": 0}, "keep: must be a count in [1, inf) or a fraction in (0, 1), got 0"),
        (
            {"keep": 21},
            "keep (a count, at most the smallest round): must be an integer in [1, 20], got 21",
        ),
        (
            {"rounds": 2, "per_round": [30, 6], "keep": 8},
            "keep (a count, at most the smallest round): must be an integer in [1, 6], got 8",
        ),
        ({"keep": "all"}, "keep: must be a count in [1, inf) or a fraction in (0, 1), got 'all'"),
        ({"keep": True}, "keep: must be a count in [1, inf) or a fraction in (0, 1), got True"),
        ({"margin": -0.1}, "margin: must be a number in [0, 1], got -0.1"),
        ({"margin": 1.5}, "margin: must be a number in [0, 1], got 1.5"),
        ({"seed": -1}, "seed: must be an integer in [0, 2**63), got -1"),
    ],
)
def test_bad_settings_raise_value_error_naming_setting_and_value(kwargs, message):
    with pytest.raises(ValueError, match=exactly(f"CoarseToFineSampler.{message}")):
        CoarseToFineSampler(**kwargs)


def test_config_round_trip():
    sampler = CoarseToFineSampler(rounds=2, per_round=[30, 10], keep=0.2, margin=0.05, seed=4)
    again = Sampler.from_config(sampler.to_config())
    assert isinstance(again, CoarseToFineSampler)
    assert again.to_config() == {
        "name": "coarse_to_fine",
        "rounds": 2,
        "per_round": [30, 10],
        "keep": 0.2,
        "margin": 0.05,
        "seed": 4,
    }

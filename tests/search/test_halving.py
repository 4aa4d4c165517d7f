"""Successive halving (ASHA) as pure rules: the rung schedule, the config it is read from, and the
keep/prune decision at a rung. Every expectation is written out by hand."""

from __future__ import annotations

import re
from typing import Any

import pytest

import caviar
from caviar.cli.main import main
from caviar.search.config import config_from_mapping
from caviar.search.halving import Halving, Rungs

# -- the schedule: rungs at min_epochs * eta**k, below the last epoch ----------------------------

SCHEDULES = {
    # (min_epochs, eta): {max_epochs: rungs}
    "1 then x3": (
        1,
        3,
        {1: [], 2: [1], 3: [1], 4: [1, 3], 9: [1, 3], 10: [1, 3, 9], 28: [1, 3, 9, 27]},
    ),
    "2 then x2": (
        2,
        2,
        {1: [], 2: [], 3: [2], 5: [2, 4], 8: [2, 4], 9: [2, 4, 8], 17: [2, 4, 8, 16]},
    ),
    "1 then x4": (1, 4, {1: [], 2: [1], 4: [1], 5: [1, 4], 16: [1, 4], 17: [1, 4, 16]}),
}


@pytest.mark.parametrize(("min_epochs", "eta", "expected"), SCHEDULES.values(), ids=SCHEDULES)
def test_rungs_sit_below_the_last_epoch(min_epochs: int, eta: int, expected: dict) -> None:
    halving = Halving(min_epochs=min_epochs, eta=eta)
    assert {m: halving.rungs(m) for m in expected} == expected


RUNG_EPOCHS = {
    # (min_epochs, eta): (epochs that are rungs, epochs that are not)
    "1 then x3": (1, 3, [1, 3, 9, 27, 81], [0, 2, 4, 6, 8, 10, 26, 28]),
    "2 then x2": (2, 2, [2, 4, 8, 16, 32], [0, 1, 3, 5, 6, 7, 12, 24]),
    "1 then x4": (1, 4, [1, 4, 16, 64], [0, 2, 3, 5, 8, 12, 32]),
}


@pytest.mark.parametrize(
    ("min_epochs", "eta", "rungs", "others"), RUNG_EPOCHS.values(), ids=RUNG_EPOCHS
)
def test_is_rung(min_epochs: int, eta: int, rungs: list[int], others: list[int]) -> None:
    halving = Halving(min_epochs=min_epochs, eta=eta)
    assert [e for e in rungs if halving.is_rung(e)] == rungs
    assert [e for e in others if halving.is_rung(e)] == []


# -- reading it from a config ------------------------------------------------------------------

ACCEPTED = {
    "None is off": (None, None),
    "false is off": (False, None),
    "true takes the defaults": (True, Halving(min_epochs=1, eta=3)),
    "an empty table takes the defaults": ({}, Halving(min_epochs=1, eta=3)),
    "a table sets eta": ({"eta": 2}, Halving(min_epochs=1, eta=2)),
    "a table sets both": ({"min_epochs": 4, "eta": 5}, Halving(min_epochs=4, eta=5)),
}


@pytest.mark.parametrize(("value", "expected"), ACCEPTED.values(), ids=ACCEPTED)
def test_from_config_accepts(value: Any, expected: Halving | None) -> None:
    assert Halving.from_config(value) == expected


REFUSED = {
    "eta 1 never halves": (
        {"eta": 1},
        "search.halving.eta: must be an integer in [2, inf), got 1",
    ),
    "eta as a float": (
        {"eta": 2.5},
        "search.halving.eta: must be an integer in [2, inf), got 2.5",
    ),
    "eta as a bool": (
        {"eta": True},
        "search.halving.eta: must be an integer in [2, inf), got True",
    ),
    "min_epochs 0": (
        {"min_epochs": 0},
        "search.halving.min_epochs: must be an integer in [1, inf), got 0",
    ),
    "an unknown key": (
        {"eta": 3, "rungs": 2},
        "search.halving.rungs: unknown key; halving takes ['brackets', 'eta', 'min_epochs']",
    ),
    "a string": (
        "yes",
        "search.halving: must be 'auto', true, false or a table {min_epochs = 1, eta = 3}, got "
        "'yes'",
    ),
    "a number": (
        3,
        "search.halving: must be 'auto', true, false or a table {min_epochs = 1, eta = 3}, got 3",
    ),
}


@pytest.mark.parametrize(("value", "message"), REFUSED.values(), ids=REFUSED)
def test_from_config_refuses(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Halving.from_config(value)


@pytest.mark.parametrize(("value", "message"), REFUSED.values(), ids=REFUSED)
def test_a_study_config_refuses_with_the_same_key_path(value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        config_from_mapping({"search": {"trials": 1, "halving": value}})


def test_a_study_config_stores_the_schedule_as_a_table() -> None:
    on = config_from_mapping({"search": {"trials": 1, "halving": True}})
    assert on.search.halving == {"min_epochs": 1, "eta": 3}
    assert on.halving() == Halving(min_epochs=1, eta=3)
    off = config_from_mapping({"search": {"trials": 1, "halving": False}})
    assert off.search.halving is None and off.halving() is None


# -- the decision at a rung --------------------------------------------------------------------

#: values arriving one after another at one rung with eta = 3, and the decision each gets:
#: keep when the value is among the top max(1, n // 3) of the n values recorded there so far
#: (itself included; a tie with the last kept value is kept)
ARRIVALS_ETA_3 = [
    (0.50, True),  # n=1, top 1: {0.5}
    (0.40, False),  # n=2, 2//3=0 -> top 1: {0.5}
    (0.60, True),  # n=3, top 1: {0.6}
    (0.55, False),  # n=4, top 1: {0.6}
    (0.58, False),  # n=5, top 1: {0.6}
    (0.59, True),  # n=6, top 2: {0.6, 0.59}
    (0.30, False),  # n=7, top 2: {0.6, 0.59}
    (0.60, True),  # n=8, top 2: {0.6, 0.6} (a tie with the best)
    (0.595, True),  # n=9, top 3: {0.6, 0.6, 0.595}
    (0.59, False),  # n=10, top 3: {0.6, 0.6, 0.595}
    (0.10, False),  # n=11, top 3
    (0.595, True),  # n=12, top 4: {0.6, 0.6, 0.595, 0.595}
]


def test_keep_follows_the_top_third_as_values_arrive() -> None:
    rungs = Rungs(Halving(min_epochs=1, eta=3))
    decisions = [(value, rungs.keep(1, value)) for value, _ in ARRIVALS_ETA_3]
    assert decisions == ARRIVALS_ETA_3
    assert rungs.values == {(0, 1): sorted(v for v, _ in ARRIVALS_ETA_3)}


def test_each_rung_judges_only_its_own_values() -> None:
    rungs = Rungs(Halving(min_epochs=1, eta=3))
    assert rungs.keep(1, 0.9) is True
    assert rungs.keep(3, 0.2) is True  # the first value at rung 3: 0.9 at rung 1 does not count
    assert rungs.keep(3, 0.1) is False  # n=2 at rung 3, top 1: {0.2}
    assert rungs.keep(1, 0.5) is False  # n=2 at rung 1, top 1: {0.9}
    assert rungs.values == {(0, 1): [0.5, 0.9], (0, 3): [0.1, 0.2]}


def test_eta_2_keeps_the_top_half() -> None:
    rungs = Rungs(Halving(min_epochs=2, eta=2))
    # n=1 top 1 {0.3}; n=2 top 1 {0.3}; n=3 top 1 {0.4}; n=4 top 2 {0.4, 0.35}; n=5 top 2
    values = [0.3, 0.2, 0.4, 0.35, 0.34]
    assert [rungs.keep(2, v) for v in values] == [True, False, True, True, False]


def test_replay_records_earlier_trials_before_judging() -> None:
    rungs = Rungs(Halving(min_epochs=1, eta=3))
    rungs.replay(
        [
            ([0.2, 0.3, 0.9, 0.95, 0.97], 5, 0),  # complete: rungs(5) = [1, 3] -> 0.2 @1, 0.9 @3
            ([0.1, 0.25, 0.4], 9, 0),  # pruned at 3 of 9: rungs(9) = [1, 3] -> 0.1 @1, 0.4 @3
            ([0.7], 5, 0),  # pruned at 1: only rung 1 is reached -> 0.7 @1
            ([0.65, 0.8], 2, 0),  # complete in 2 epochs: rungs(2) = [1] -> 0.65 @1
        ]
    )
    assert rungs.values == {(0, 1): [0.1, 0.2, 0.65, 0.7], (0, 3): [0.4, 0.9]}
    # rung 1 now holds 5 values: top max(1, 5 // 3) = 1 is 0.7
    assert rungs.keep(1, 0.69) is False
    # 6 values: top 2 is {0.7, 0.69}
    assert rungs.keep(1, 0.69) is True
    # rung 3 holds 3 values: top 1 is 0.9
    assert rungs.keep(3, 0.5) is False
    assert rungs.keep(3, 0.95) is True


# -- brackets: Hyperband's hedge against a first rung that measures noise -----------------------


def test_each_bracket_starts_its_rungs_eta_times_later() -> None:
    halving = Halving(min_epochs=1, eta=3, brackets=3)
    assert [halving.rungs(5, b) for b in range(3)] == [[1, 3], [3], []]
    assert [halving.is_rung(1, b) for b in range(3)] == [True, False, False]
    assert [halving.is_rung(3, b) for b in range(3)] == [True, True, False]


def test_brackets_share_the_trials_as_hyperband_shares_its_budget() -> None:
    """eta**s / (s + 1) for s rungs: 9/3, 3/2 and 1/1 of 5.5 with 5 epochs; 27/4, 9/3, 3/2
    and 1 with 10 epochs (rungs 1, 3, 9)."""
    assert Halving(1, 3, 3).shares(5) == pytest.approx([3 / 5.5, 1.5 / 5.5, 1 / 5.5])
    total = 27 / 4 + 3 + 1.5 + 1
    assert Halving(1, 3, 4).shares(10) == pytest.approx(
        [6.75 / total, 3 / total, 1.5 / total, 1 / total]
    )


def test_consecutive_trial_numbers_spread_over_the_brackets_in_their_shares() -> None:
    halving = Halving(1, 3, 3)
    for start, n in ((0, 110), (500, 55), (7, 1100)):
        counts = [0, 0, 0]
        for number in range(start, start + n):
            counts[halving.bracket_of(number, 5)] += 1
        for count, share in zip(counts, halving.shares(5), strict=True):
            assert abs(count - n * share) <= 3, (start, n, counts)
    assert Halving(1, 3).bracket_of(12345, 5) == 0  # one bracket: always bracket 0


def test_each_bracket_judges_among_its_own() -> None:
    rungs = Rungs(Halving(min_epochs=1, eta=3, brackets=2))
    assert rungs.keep(3, 0.9, bracket=0) is True
    assert rungs.keep(3, 0.5, bracket=1) is True  # the first in bracket 1, not below 0.9
    assert rungs.keep(3, 0.4, bracket=1) is False


def test_a_one_bracket_schedule_reads_and_stores_as_before() -> None:
    assert Halving.from_config({"min_epochs": 1, "eta": 3, "brackets": 1}).to_config() == {
        "min_epochs": 1,
        "eta": 3,
    }
    on = config_from_mapping({"search": {"trials": 1, "halving": {"brackets": 2}}})
    assert on.search.halving == {"min_epochs": 1, "eta": 3, "brackets": 2}
    assert on.halving() == Halving(1, 3, 2)


def test_more_brackets_than_rungs_and_one_are_refused() -> None:
    """With 5 epochs and rungs at 1 and 3, bracket 2 already runs plain to the end."""
    message = (
        "search.halving.brackets: at most 3 with trials of at most 5 epochs: bracket 2 already "
        "judges never (its first rung, epoch 9, is past the last epoch), and more would run "
        "the same way, got 4"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        config_from_mapping(
            {"space": {"epochs": 5}, "search": {"trials": 1, "halving": {"brackets": 4}}}
        )
    config_from_mapping(
        {"space": {"epochs": 5}, "search": {"trials": 1, "halving": {"brackets": 3}}}
    )


@pytest.mark.slow
def test_a_study_with_brackets_judges_each_trial_in_its_own(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Brackets 2 of 4 epochs with eta 2: bracket 0 judges at epochs 1 and 2, bracket 1 only at
    epoch 2; each trial records its bracket, and show lists the rungs per bracket."""
    storage = tmp_path / "s.db"
    halving = {"min_epochs": 1, "eta": 2, "brackets": 2}
    study = caviar.tune(
        {
            "study": {"name": "hb", "storage": str(storage), "threads": 1},
            "data": {"dataset": "digits", "train_size": 400},
            "space": {"lr": {"scale": "log", "low": 1e-3, "high": 1.0}, "epochs": 4},
            "search": {"trials": 16, "population": 4, "halving": halving},
        },
        progress=False,
        report=False,
    )
    trials = study.trials(curves=False)
    schedule = Halving(1, 2, 2)
    assert [t.attrs["bracket"] for t in trials] == [
        schedule.bracket_of(t.number, 4) for t in trials
    ]
    pruned = [(t.attrs["bracket"], t.attrs["rung"]) for t in trials if t.state.value == "pruned"]
    assert (0, 1) in pruned
    assert (1, 1) not in pruned
    study.close()
    assert main(["show", "hb", "--storage", str(storage)]) == 0
    out = capsys.readouterr().out
    assert "  bracket 0, rung at epoch 1: " in out
    assert "  bracket 1, rung at epoch 2: " in out
    assert "  bracket 1, rung at epoch 1: " not in out


@pytest.mark.slow
def test_a_trial_kept_at_a_rung_says_so_for_a_learning_sampler(tmp_path: Any) -> None:
    """With TPE, every trial a rung kept records the last rung it passed and its value there,
    read back from its own curve; trials stopped at their first rung record none. With random
    search (a sampler that does not learn) nothing is written."""

    def run(sampler: str) -> list[Any]:
        study = caviar.tune(
            {
                "study": {
                    "name": sampler,
                    "storage": str(tmp_path / f"{sampler}.db"),
                    "threads": 1,
                },
                "data": {"dataset": "digits", "train_size": 400},
                "space": {"lr": {"scale": "log", "low": 1e-3, "high": 1.0}, "epochs": 4},
                "search": {
                    "trials": 16,
                    "population": 4,
                    "sampler": sampler,
                    "halving": {"min_epochs": 1, "eta": 2},
                },
            },
            progress=False,
            report=False,
        )
        trials = study.trials(curves=True)
        study.close()
        return trials

    trials = run("tpe")
    complete = [t for t in trials if t.state.value == "complete"]
    assert complete
    for t in complete:  # rungs at 1 and 2 below 4 epochs: a complete trial passed both
        assert t.attrs["passed_rung"] == 2
        assert t.attrs["passed_value"] == t.curve[1].val_accuracy
    for t in trials:
        if t.state.value == "pruned" and t.attrs["rung"] == 1:
            assert "passed_rung" not in t.attrs
        if t.state.value == "pruned" and t.attrs["rung"] == 2:
            assert t.attrs["passed_rung"] == 1
            assert t.attrs["passed_value"] == t.curve[0].val_accuracy
    assert not any("passed_rung" in t.attrs for t in run("random"))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tpe_learning_from_kept_trials_is_reproducible(tmp_path: Any, dtype: str) -> None:
    """The same seed and pool size give the same proposals and decisions when the model reads
    the rungs running trials passed (past TPE's 10 random proposals), in both dtypes."""

    def run(name: str) -> list[tuple[Any, ...]]:
        study = caviar.tune(
            {
                "study": {
                    "name": name,
                    "storage": str(tmp_path / f"{name}.db"),
                    "threads": 1,
                    "seed": 5,
                    "dtype": dtype,
                },
                "data": {"dataset": "digits", "train_size": 400},
                "space": {
                    "lr": {"scale": "log", "low": 1e-3, "high": 1.0},
                    "hidden_units": {"scale": "int", "low": 8, "high": 48},
                    "epochs": 4,
                },
                "search": {
                    "trials": 28,
                    "population": 6,
                    "sampler": "tpe",
                    "halving": {"min_epochs": 1, "eta": 2},
                },
            },
            progress=False,
            report=False,
        )
        out = [
            (
                t.number,
                t.params,
                t.state,
                t.value,
                t.attrs.get("passed_rung"),
                t.attrs.get("passed_value"),
                t.attrs.get("proposed_by"),
            )
            for t in study.trials(curves=False)
        ]
        study.close()
        return out

    first = run("a")
    assert sum(p == "tpe" for *_, p in first) >= 10  # the model proposed, past the random start
    assert any(rung is not None for *_, rung, _, _ in first)
    assert first == run("b")

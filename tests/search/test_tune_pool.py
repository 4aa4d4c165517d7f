"""`caviar.search.job.tune` over a pool, end to end on the embedded digits: successive halving's
decisions, slots handed on, the time budget, the kept models and the new command-line flags.

The halving decisions are checked against :func:`asha_by_hand`, a replay of the pool written from
the module docstrings alone (it does not call ``caviar.search.halving``); the rest against facts
that follow from the config (epochs per trial, the rounds of a pool of two, a fake clock)."""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

import caviar.search.job
import caviar.search.loop
from caviar.cli.main import main
from caviar.core.records import FrozenTrial, TrialState
from caviar.nn.pool import Pool
from caviar.search.job import tune
from caviar.search.kept import kept_dir, kept_state_path, read_state
from caviar.study import Study

FINISHED = {TrialState.COMPLETE, TrialState.PRUNED, TrialState.DIVERGED, TrialState.FAILED}
HALVING = {"min_epochs": 1, "eta": 3}  # rungs at 1 and 3 epochs of 5


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """Every `tune` sets torch's global thread count (study.threads); put it back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def config(
    tmp_path: Path, *, seed: int = 0, space: dict[str, Any] | None = None, **search: Any
) -> dict[str, Any]:
    """Tiny trials: 160 training and 40 validation digits, 4 to 12 units, 4 batches an epoch."""
    return {
        "study": {"name": "p", "storage": str(tmp_path / "s.db"), "seed": seed, "threads": 1},
        "data": {"dataset": "digits", "train_size": 200, "test_size": 50},
        "space": {
            "lr": {"scale": "log", "low": 1e-3, "high": 3e-1},
            "hidden_units": {"scale": "int", "low": 4, "high": 12},
            "epochs": 5,
            "batch_size": 50,
            **(space or {}),
        },
        # random search unless a test says otherwise: the trials' ends are worked out by hand
        # (caviar's default, tpe with halving: tests/search/test_default_search.py)
        "search": {"sampler": "random", **search},
    }


def outcomes(trials: Sequence[FrozenTrial]) -> dict[int, tuple[str, int]]:
    """Each trial's end as (state, epoch it ended at); a pruned trial ends at its rung."""
    out = {}
    for t in trials:
        epoch = t.attrs["rung"] if t.state is TrialState.PRUNED else len(t.curve)
        out[t.number] = (t.state.value, epoch)
    return out


# -- successive halving: the decisions, replayed by hand -------------------------------------


def objective_at(trial: FrozenTrial, epoch: int) -> float:
    """The book's objective after ``epoch`` epochs: the last finite validation accuracy."""
    return [r.val_accuracy for r in trial.curve[:epoch] if math.isfinite(r.val_accuracy)][-1]


def asha_by_hand(
    trials: Sequence[FrozenTrial],
    *,
    slots: int,
    rungs: Sequence[int],
    eta: int,
    before: Sequence[FrozenTrial] = (),
) -> dict[int, tuple[str, int]]:
    """Replay a study's recorded curves through the pool as its docstrings describe it, and
    apply the ASHA rule by hand.

    Rounds: at the start of a round the free slots take the next trial numbers (a failed trial
    takes a number but no slot); then every member in the pool runs one epoch, the members in
    trial-number order. After its epoch a member leaves complete at its last epoch, diverged where
    its curve ends in divergence, or, at a rung, is judged: its objective (the last finite
    validation accuracy so far) joins the values recorded at that rung, and it goes on only if it
    is not below the max(1, n // eta)-th best of the n values there (itself included).

    ``before``: the trials an earlier run of the study finished; the values its complete and
    pruned trials reached at each rung below their last epoch are recorded first, and only the
    other trials are replayed."""
    by_number = {t.number: t for t in trials}
    at_rung: dict[int, list[float]] = {r: [] for r in rungs}
    for t in before:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED):
            for rung in rungs:
                if rung < t.params["epochs"] and rung <= len(t.curve):
                    at_rung[rung].append(objective_at(t, rung))
    queue = sorted(set(by_number) - {t.number for t in before})
    pool: dict[int, int] = {}  # trial number -> epochs done
    out: dict[int, tuple[str, int]] = {}
    while queue or pool:
        free = slots - len(pool)
        for n in queue[:free]:
            if by_number[n].state is TrialState.FAILED:
                out[n] = ("failed", 0)
            else:
                pool[n] = 0
        del queue[:free]
        for n in sorted(pool):
            t = by_number[n]
            pool[n] += 1
            epoch = pool[n]
            if epoch == t.params["epochs"]:
                out[n] = ("complete", epoch)
            elif t.state is TrialState.DIVERGED and epoch == len(t.curve):
                out[n] = ("diverged", epoch)
            elif epoch in at_rung:
                value = objective_at(t, epoch)
                at_rung[epoch].append(value)
                k = max(1, len(at_rung[epoch]) // eta)
                if value < sorted(at_rung[epoch], reverse=True)[k - 1]:
                    out[n] = ("pruned", epoch)
            if n in out:
                del pool[n]
    return out


SCENARIOS = {
    # seed, population, space overrides, rungs some trial must be pruned at (a check that the
    # scenario exercises the rule, known from running it)
    "adam, a pool of 4": (0, 4, {}, {1, 3}),
    "adam, a pool of 3": (0, 3, {}, {1, 3}),
    "sgd with rates up to 1e5: many ties, members may diverge": (
        6,
        4,
        {"optimizer": "sgd", "lr": {"scale": "log", "low": 1e-2, "high": 1e5}},
        set(),
    ),
}


@pytest.mark.parametrize(
    ("seed", "population", "space", "pruned_at"), SCENARIOS.values(), ids=SCENARIOS
)
def test_halving_decisions_equal_a_replay_by_hand(
    tmp_path: Path, seed: int, population: int, space: dict[str, Any], pruned_at: set[int]
) -> None:
    study = tune(
        config(tmp_path, seed=seed, space=space, trials=12, population=population, halving=HALVING),
        progress=False,
        report=False,
    )
    trials = study.trials()
    assert [t.number for t in trials] == list(range(12))
    assert {t.state for t in trials} <= FINISHED
    for t in trials:
        assert t.attrs["halving"] == HALVING and t.attrs["pool_size"] == population
        if t.state is TrialState.PRUNED:
            rung = t.attrs["rung"]
            assert rung in (1, 3)
            assert len(t.curve) == rung  # stopped at the rung: no compute after it
            assert t.value is None and t.attrs["rung_value"] == t.curve[rung - 1].val_accuracy
        elif t.state is TrialState.COMPLETE:
            assert [r.epoch for r in t.curve] == [1, 2, 3, 4, 5]
            assert t.value == t.curve[-1].val_accuracy
    assert pruned_at <= {t.attrs["rung"] for t in trials if t.state is TrialState.PRUNED}
    assert outcomes(trials) == asha_by_hand(trials, slots=population, rungs=[1, 3], eta=3)


def test_a_continued_study_judges_new_trials_against_the_earlier_rung_values(
    tmp_path: Path,
) -> None:
    first = tune(
        config(tmp_path, trials=6, population=4, halving=HALVING), progress=False, report=False
    ).trials()
    study = tune(
        config(tmp_path, trials=12, population=4, halving=HALVING), progress=False, report=False
    )
    trials = study.trials()
    assert [t.number for t in trials] == list(range(12))
    assert [(t.state, t.value) for t in trials[:6]] == [(t.state, t.value) for t in first]
    new = {n: end for n, end in outcomes(trials).items() if n >= 6}
    assert new == asha_by_hand(trials, slots=4, rungs=[1, 3], eta=3, before=first)
    # and the earlier values mattered: judged among themselves, the new trials would end otherwise
    alone = asha_by_hand(trials[6:], slots=4, rungs=[1, 3], eta=3)
    assert new != alone


@pytest.mark.parametrize("max_group", [1, 3])
def test_groups_of_any_size_give_the_same_decisions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_group: int
) -> None:
    """The same seed and pool size give the same trials whatever the engine's grouping: here
    groups of at most ``max_group`` members against one group per architecture."""
    cfg = config(tmp_path / "whole", trials=12, population=4, halving=HALVING)
    whole = tune(cfg, progress=False, report=False).trials()
    pools: list[Pool] = []

    def chunked(*args: Any, **kwargs: Any) -> Pool:
        pools.append(Pool(*args, max_group=max_group, **kwargs))
        return pools[-1]

    monkeypatch.setattr(caviar.search.loop, "Pool", chunked)
    cut = tune(
        config(tmp_path / "cut", trials=12, population=4, halving=HALVING),
        progress=False,
        report=False,
    ).trials()
    assert len(pools) == 1 and pools[0].max_group == max_group
    assert [(t.number, t.state, t.value, t.attrs.get("rung"), t.curve) for t in cut] == [
        (t.number, t.state, t.value, t.attrs.get("rung"), t.curve) for t in whole
    ]


def test_another_pool_size_keeps_each_trials_configuration_and_curve(tmp_path: Path) -> None:
    """What the docs guarantee across pool sizes: trial n has the same configuration and seed,
    and trains to the same curve as far as both runs took it. The decisions may differ (other
    members meet at a rung); each run follows the rule for its own pool."""
    runs = {
        slots: tune(
            config(tmp_path / str(slots), trials=12, population=slots, halving=HALVING),
            progress=False,
            report=False,
        ).trials()
        for slots in (2, 4)
    }
    for a, b in zip(runs[2], runs[4], strict=True):
        assert (a.number, a.params, a.seed) == (b.number, b.params, b.seed)
        common = min(len(a.curve), len(b.curve))
        assert common >= 1 and a.curve[:common] == b.curve[:common]
    for slots, trials in runs.items():
        assert outcomes(trials) == asha_by_hand(trials, slots=slots, rungs=[1, 3], eta=3)


# -- slots are handed on ------------------------------------------------------------------------


def rounds_by_hand(epochs: dict[int, int], slots: int) -> dict[int, tuple[int, int]]:
    """(round it starts in, round it finishes in) of each trial: a free slot takes the next trial
    at the start of a round; a trial of e epochs started in round r finishes in round r + e - 1."""
    queue, running, out, r = sorted(epochs), {}, {}, 0
    while queue or running:
        while len(running) < slots and queue:
            n = queue.pop(0)
            running[n] = r
        for n in sorted(running):
            if r - running[n] + 1 == epochs[n]:
                out[n] = (running.pop(n), r)
        r += 1
    return out


def test_a_short_trials_slot_goes_to_the_next_trial_before_the_long_ones_end(
    tmp_path: Path,
) -> None:
    cfg = config(
        tmp_path,
        space={"lr": 0.01, "hidden_units": 8, "epochs": {"choice": [1, 3]}},
        trials=6,
        population=2,
    )
    trials = tune(cfg, progress=False, report=False).trials()
    assert {t.state for t in trials} == {TrialState.COMPLETE}
    epochs = {t.number: t.params["epochs"] for t in trials}
    assert [len(t.curve) for t in trials] == list(epochs.values())
    schedule = rounds_by_hand(epochs, slots=2)
    # the scenario: a later trial takes a short trial's slot while a long one still trains
    handed_on = [
        (short, long_, later)
        for short in epochs
        for long_ in epochs
        for later in epochs
        if epochs[short] == 1
        and epochs[long_] == 3
        and schedule[short][1] < schedule[later][0] <= schedule[long_][1]
    ]
    assert handed_on, f"epochs {epochs} hand no slot on while a long trial trains"
    t = {trial.number: trial for trial in trials}
    for short, long_, later in handed_on:
        assert t[short].finished < t[later].started < t[long_].finished
    # and every start and finish happens in the order of the rounds (asks before tells)
    for a in epochs:
        for b in epochs:
            if schedule[a][1] < schedule[b][0]:
                assert t[a].finished < t[b].started, (a, b)
            else:
                assert t[b].started < t[a].finished, (a, b)
    # never more than two trials at once
    for s in trials:
        assert sum(o.started <= s.started < o.finished for o in trials) <= 2


# -- the time budget ----------------------------------------------------------------------------


class SteppingClock:
    """Fake seconds: every call moves the clock ``step`` on."""

    def __init__(self, step: float) -> None:
        self.step, self.now, self.first = step, 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class SlowingClock(SteppingClock):
    """A stepping clock whose steps grow to ``then`` from ``after`` fake seconds on: a round
    that starts before then takes longer than the pace measured so far (the budget's end game
    plans with), so the deadline cuts it."""

    def __init__(self, step: float, *, after: float, then: float) -> None:
        super().__init__(step)
        self.after, self.then = after, then

    def __call__(self) -> float:
        if self.now >= self.after:
            self.step = self.then
        return super().__call__()


def test_a_time_budget_starts_nothing_late_and_requeues_what_it_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = SlowingClock(1.0, after=70.0, then=10.0)
    asked_at: list[float] = []
    ask = Study.ask

    def spy(self: Study, n: int = 1, **kwargs: Any) -> Any:
        asked_at.append(clock.now)
        return ask(self, n, **kwargs)

    monkeypatch.setattr(Study, "ask", spy)
    cfg = config(tmp_path, space={"epochs": 3}, trials=8, population=2, timeout=120)
    line = io.StringIO()
    study = tune(cfg, progress=True, report=False, clock=clock, stream=line)
    deadline = clock.first + 120  # the budget counts from the call (its first clock reading)

    assert asked_at and max(asked_at) < deadline  # no trial started after the deadline
    trials = study.trials()
    states = {t.number: t.state for t in trials}
    assert set(states.values()) <= FINISHED | {TrialState.QUEUED}
    queued = [n for n, s in states.items() if s is TrialState.QUEUED]
    assert queued and TrialState.COMPLETE in states.values()  # the budget cut the run
    assert all(t.curve == () for t in trials if t.state is TrialState.QUEUED)
    out = line.getvalue()
    assert "budget left" in out and "ETA" not in out
    assert out.splitlines()[-1].endswith("budget left 0:00")

    monkeypatch.setattr(Study, "ask", ask)
    del cfg["search"]["timeout"]
    done = tune(cfg, progress=False, report=False).trials()
    assert [t.state for t in done] == [TrialState.COMPLETE] * 8
    assert [t.number for t in done if t.attempt == 1] == queued  # trained again from the seed
    straight_cfg = config(tmp_path / "straight", space={"epochs": 3}, trials=8, population=2)
    straight = tune(straight_cfg, progress=False, report=False)
    assert [t.value for t in done] == [t.value for t in straight.trials()]


def test_the_live_line_counts_the_budget_from_the_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Clock:
        now = 0.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    prepare = caviar.search.job.prepare_data

    def slow_data(cfg: Any) -> Any:
        clock.now += 100.0  # loading the data takes 100 s of the 150 s budget
        return prepare(cfg)

    monkeypatch.setattr(caviar.search.job, "prepare_data", slow_data)
    line = io.StringIO()
    cfg = config(tmp_path, space={"epochs": 1}, trials=2, population=2, timeout=150)
    tune(cfg, progress=True, report=False, clock=clock, stream=line)
    first = line.getvalue().splitlines()[0]
    assert first.endswith("elapsed 1:40  budget left 0:50"), first


# -- kept models --------------------------------------------------------------------------------

KEPT = {
    "the best 3 of 8": (3, None),
    "none": (0, None),
    "more asked than complete under halving": (3, HALVING),
}


@pytest.mark.parametrize(("keep", "halving"), KEPT.values(), ids=KEPT)
def test_the_best_trials_final_states_are_kept(
    tmp_path: Path, keep: int, halving: dict[str, int] | None
) -> None:
    cfg = config(
        tmp_path,
        space={"epochs": 2} if halving is None else {},
        trials=8,
        population=4,
        keep_models=keep,
        halving=halving,
    )
    study = tune(cfg, progress=False, report=False)
    trials = study.trials(curves=False)
    complete = [t for t in trials if t.state is TrialState.COMPLETE]
    best = sorted(complete, key=lambda t: (-(t.value or 0.0), t.number))[:keep]
    expected = sorted(t.number for t in best)
    folder = kept_dir(cfg["study"]["storage"], "p")
    if keep == 0:
        assert "kept_models" not in study.attrs and not folder.exists()
        return
    if halving is not None:
        assert len(complete) < keep  # so every complete trial is kept
    assert study.attrs["kept_models"] == expected
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"trial-{n}.pt" for n in expected)
    by_number = {t.number: t for t in trials}
    for n in expected:
        state = read_state(kept_state_path(cfg["study"]["storage"], "p", n))
        trial = by_number[n]
        epochs = trial.params["epochs"]
        assert (state.epoch, state.batch, state.optimizer_steps) == (epochs, 0, 4 * epochs)
        assert state.spec.seed == trial.seed
        assert state.spec.hidden_units == trial.params["hidden_units"]


# -- command-line flags -------------------------------------------------------------------------

CONFIG_TOML = """\
[study]
name = "cli"
seed = 0

[data]
dataset = "digits"
train_size = 200
test_size = 50

[space]
lr = 0.01
hidden_units = 8
epochs = 2
batch_size = 50

[search]
trials = 3
population = 3
"""


def run_cli(tmp_path: Path, *flags: str) -> tuple[int, Path]:
    path = tmp_path / "cli.toml"
    path.write_text(CONFIG_TOML)
    db = tmp_path / "cli.db"
    argv = ["tune", str(path), "--quiet", "--no-report", "--storage", str(db), *flags]
    return main(argv), db


FLAGS = {
    "timeout, halving with eta 2, one thread": (
        ["--timeout", "5", "--halving", "--halving-eta", "2", "--threads", "1"],
        {"timeout": 5.0, "halving": {"min_epochs": 1, "eta": 2}, "threads": 1},
    ),
    "halving from its first rung alone": (
        ["--halving-min-epochs", "1", "--threads", "1"],  # epochs = 2: the rung at 1 acts
        {"timeout": None, "halving": {"min_epochs": 1, "eta": 3}, "threads": 1},
    ),
    "threads auto is stored as no count; the default sampler, tpe, halves": (
        ["--threads", "auto"],
        {"timeout": None, "halving": {"min_epochs": 1, "eta": 3}, "threads": None},
    ),
    "--no-halving turns the default's halving off": (
        ["--no-halving", "--threads", "1"],
        {"timeout": None, "halving": None, "threads": 1},
    ),
    "random search trains every trial to its end": (
        ["--sampler", "random", "--threads", "1", "--name", "cli"],
        {"timeout": None, "halving": None, "threads": 1},
    ),
}


@pytest.mark.parametrize(("flags", "stored"), FLAGS.values(), ids=FLAGS)
def test_tune_flags_are_stored_in_the_study_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], stored: dict[str, Any]
) -> None:
    code, db = run_cli(tmp_path, *flags)
    out = capsys.readouterr().out
    assert code == 0, out
    study = Study.load("cli", db)
    recorded = study.attrs["config"]
    assert {
        "timeout": recorded["search"]["timeout"],
        "halving": recorded["search"]["halving"],
        "threads": recorded["study"]["threads"],
    } == stored
    study.close()


BAD_FLAGS = {
    "halving eta 1": (
        ["--halving-eta", "1"],
        "search.halving.eta: must be an integer in [2, inf), got 1",
    ),
    "zero threads": (
        ["--threads", "0"],
        "study.threads: must be 'auto' or an integer in [1, inf), got 0",
    ),
    "a negative timeout": (
        ["--timeout", "-3"],
        "search.timeout: must be a number in (0, inf), got -3.0",
    ),
    "a zero timeout": (
        ["--timeout", "0"],
        "search.timeout: must be a number in (0, inf), got 0.0",
    ),
    "halving min_epochs 0 with --halving": (
        ["--halving", "--halving-min-epochs", "0"],
        "search.halving.min_epochs: must be an integer in [1, inf), got 0",
    ),
}

ZERO_FLAGS = {  # an explicit 0 is a value, not "not given"
    "halving min_epochs 0 alone": (
        ["--halving-min-epochs", "0"],
        "search.halving.min_epochs: must be an integer in [1, inf), got 0",
    ),
    "halving eta 0 alone": (
        ["--halving-eta", "0"],
        "search.halving.eta: must be an integer in [2, inf), got 0",
    ),
}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        *(pytest.param(*case, id=name) for name, case in BAD_FLAGS.items()),
        *(pytest.param(*case, id=name) for name, case in ZERO_FLAGS.items()),
    ],
)
def test_bad_flag_values_exit_2_with_one_line_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    code, db = run_cli(tmp_path, *flags)
    err = capsys.readouterr().err
    assert code == 2
    assert re.fullmatch(re.escape(f"caviar: error: {message}") + "\n", err), err
    assert not db.exists()  # refused before any study was created


# pace of one member-epoch (s), budget (s), planned epochs -> slots before a first trial is
# complete: the first round's 4, or fewer if 0.15 * budget (a clock standing at the start) /
# (epochs left * pace) is fewer, never below 2 (worked out by hand)
POOL_SIZE_CASES = {
    "slow members, short budget": (0.6, 150.0, 5, 4),  # 22.5 / 3.0 = 7.5: the 4 fit
    "fast members": (0.01, 150.0, 5, 4),  # 450: still 4 until a first result
    "slower": (2.0, 150.0, 5, 2),  # 22.5 / 10 = 2.25
    "very slow": (10.0, 60.0, 5, 2),  # 0.18, raised to the floor of 2
}


@pytest.mark.parametrize("name", list(POOL_SIZE_CASES))
def test_under_a_budget_the_pool_is_sized_so_a_trial_can_finish_early(tmp_path, name) -> None:
    from caviar.search.config import config_from_mapping
    from caviar.search.job import open_study, prepare_data
    from caviar.search.loop import SearchLoop
    from caviar.search.progress import Progress

    pace, budget, epochs, expected = POOL_SIZE_CASES[name]
    cfg = config_from_mapping(config(tmp_path, space={"epochs": epochs}, timeout=budget))
    data = prepare_data(cfg)
    study = open_study(cfg, data)
    loop = SearchLoop(
        study,
        cfg,
        data.training,
        Progress("p", None, enabled=False),
        clock=lambda: 0.0,
        started=0.0,
    )
    assert loop.slots == 4 and loop.max_slots == 16 and loop.auto_slots  # a short first round
    loop._fill()  # 4 trials of `epochs` epochs in the pool
    loop._size_pool(members=4, seconds=4 * pace)
    assert loop.slots == expected
    loop.completed = 1  # once a trial is complete: the default, for throughput
    loop._size_pool(members=4, seconds=4 * pace)
    assert loop.slots == 16
    # an explicit pool size is the user's: never changed
    fixed = config_from_mapping(
        config(tmp_path / "fixed", space={"epochs": epochs}, timeout=budget, population=5)
    )
    other = SearchLoop(
        open_study(fixed, data), fixed, data.training, Progress("p", None, enabled=False)
    )
    other._size_pool(members=5, seconds=5 * pace)
    assert other.slots == 5
    study.release(list(loop.running.values()))


def test_a_trial_too_large_for_memory_fails_alone_and_the_others_train(tmp_path) -> None:
    """A member that cannot fit is failed with the reason (never retried forever as a queued
    trial), and its slot goes to the next trial."""
    cfg = config(tmp_path, space={"hidden_units": {"choice": [8, 10_000_000]}, "epochs": 2})
    cfg["search"].update(trials=8, population=2)
    study = tune(cfg, progress=False, report=False)
    trials = study.trials()
    huge = [t for t in trials if t.params["hidden_units"] == 10_000_000]
    small = [t for t in trials if t.params["hidden_units"] == 8]
    assert huge and small
    assert all(t.state is TrialState.FAILED for t in huge)
    assert all(
        re.search(r"needs \d+ MiB, more than the \d+ MiB available", t.attrs["error"]) for t in huge
    )
    assert all(t.state is TrialState.COMPLETE and len(t.curve) == 2 for t in small)

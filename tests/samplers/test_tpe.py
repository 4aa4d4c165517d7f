"""TPE inside a pool: caviar's scales map to Optuna's distributions exactly, the first proposals
are the random sampler's, proposals in flight spread a batch (the constant liar), every finished
trial (complete, pruned at a rung, diverged) reaches the model, the model learns (it beats random
search on a known objective), and proposals are reproducible, also by a sampler rebuilt from the
stored trials (a resumed study)."""

from __future__ import annotations

import math
import statistics

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState

from caviar import (
    Choice,
    InMemoryStorage,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLog,
    RandomSampler,
    SearchSpace,
    Study,
    Uniform,
)
from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.samplers import Sampler, TPESampler
from caviar.samplers.tpe import distribution

MAX = Direction.MAXIMIZE


def trial(
    space: SearchSpace,
    number: int,
    unit: tuple[float, ...],
    state: TrialState = TrialState.COMPLETE,
    value: float | None = None,
    **attrs: object,
) -> FrozenTrial:
    return FrozenTrial(
        number=number,
        state=state,
        params=space.from_unit(unit),
        unit=unit,
        seed=number,
        value=value,
        attrs=attrs,
    )


def test_each_scale_is_searched_on_its_own_scale() -> None:
    """A continuous range on its unit coordinate (linear in log10 of a rate, in log10 of
    1 - beta); integers and choices as Optuna's integer and categorical distributions."""
    assert distribution(LogUniform(1e-4, 1e-1)) == FloatDistribution(0.0, 1.0)
    assert distribution(OneMinusLog(0.9, 0.999)) == FloatDistribution(0.0, 1.0)
    assert distribution(Uniform(0.0, 0.5)) == FloatDistribution(0.0, 1.0)
    assert distribution(IntUniform(16, 256)) == IntDistribution(16, 256)
    assert distribution(IntLogUniform(16, 512)) == IntDistribution(16, 512, log=True)
    assert distribution(Choice(["relu", "tanh", "sigmoid"])) == CategoricalDistribution((0, 1, 2))
    # the unit coordinate of a log range is linear in log10: its middle is the geometric mean
    assert LogUniform(1e-4, 1e-2).from_unit(0.5) == pytest.approx(1e-3)
    assert OneMinusLog(0.9, 0.999).from_unit(0.5) == pytest.approx(0.99)


SPACE = SearchSpace(
    {
        "lr": LogUniform(1e-4, 1.0),
        "units": IntUniform(8, 64),
        "batch_norm": Choice([False, True]),
    }
)


def test_before_enough_trials_finish_the_proposals_are_the_random_samplers() -> None:
    tpe, plain = TPESampler(seed=3, n_startup_trials=5), RandomSampler(seed=3)
    history = [trial(SPACE, n, plain.propose(SPACE, n, [], MAX).unit, value=0.5) for n in range(4)]
    history.append(trial(SPACE, 4, (0.5, 0.5, 0.5), TrialState.RUNNING))
    for number in range(5, 40):
        proposal = tpe.propose(SPACE, number, history, MAX)
        assert proposal.unit == plain.propose(SPACE, number, history, MAX).unit
        assert proposal.attrs == {"proposed_by": "random"}


def peaked_history(n: int = 30) -> list[FrozenTrial]:
    """``n`` finished trials spread over lr, the best at u = 0.5 (lr = 0.01)."""
    space = SearchSpace({"lr": LogUniform(1e-4, 1.0)})
    units = [(i + 0.5) / n for i in range(n)]
    return [trial(space, i, (u,), value=1.0 - abs(u - 0.5)) for i, u in enumerate(units)]


def test_proposals_in_flight_spread_a_batch() -> None:
    """The constant liar: each proposal of a batch counts the ones before it as running (and
    worse), so a batch of 64 spreads out; 64 proposals that each see only the finished trials
    (no liar) crowd the best point."""
    space = SearchSpace({"lr": LogUniform(1e-4, 1.0)})
    history = peaked_history()
    batch = TPESampler(seed=0)
    with_liar = [batch.propose(space, 30 + k, history, MAX).unit[0] for k in range(64)]
    without = [TPESampler(seed=0).propose(space, 30 + k, history, MAX).unit[0] for k in range(64)]
    spread = statistics.pstdev(with_liar)
    assert spread > 1.5 * statistics.pstdev(without)
    near = sum(abs(u - 0.5) < 0.05 for u in with_liar)
    assert near < sum(abs(u - 0.5) < 0.05 for u in without)


def test_every_finished_trial_reaches_the_model() -> None:
    """Complete: its value. Pruned at a rung: the value there, as an intermediate value (Optuna
    ranks pruned trials by it). Diverged or failed: pruned with no value, ranked below all."""
    history = [
        trial(SPACE, 0, (0.1, 0.1, 0.1), value=0.9),
        trial(SPACE, 1, (0.2, 0.2, 0.2), TrialState.PRUNED, rung=3, rung_value=0.4),
        trial(SPACE, 2, (0.3, 0.3, 0.3), TrialState.DIVERGED),
        trial(SPACE, 3, (0.4, 0.4, 0.4), TrialState.FAILED, error="too big"),
        trial(SPACE, 4, (0.5, 0.5, 0.5), TrialState.RUNNING),
        trial(SPACE, 5, (0.6, 0.6, 0.6), TrialState.QUEUED),
    ]
    sampler = TPESampler(seed=0, n_startup_trials=1)
    sampler.propose(SPACE, 6, history, MAX)
    seen = sampler._model.study.get_trials(deepcopy=False)  # the mirror, in trial order
    got = [(t.state, t.value, t.intermediate_values) for t in seen]
    assert got == [
        (OptunaState.COMPLETE, 0.9, {}),
        (OptunaState.PRUNED, None, {3: 0.4}),
        (OptunaState.PRUNED, None, {}),
        (OptunaState.PRUNED, None, {}),
        (OptunaState.RUNNING, None, {}),
        (OptunaState.RUNNING, None, {}),
        (OptunaState.RUNNING, None, {}),  # trial 6, just proposed
    ]
    # the values Optuna holds are the trials' own: lr on its unit coordinate, the rest exact
    assert seen[1].params == {"lr": 0.2, "units": SPACE["units"].from_unit(0.2), "batch_norm": 0}


def test_a_trial_that_finishes_later_is_told_once_it_has() -> None:
    sampler = TPESampler(seed=0, n_startup_trials=1)
    done = trial(SPACE, 0, (0.1, 0.1, 0.1), value=0.9)
    running = trial(SPACE, 1, (0.2, 0.2, 0.2), TrialState.RUNNING)
    sampler.propose(SPACE, 2, [done, running], MAX)
    finished = trial(SPACE, 1, (0.2, 0.2, 0.2), value=0.7)
    sampler.propose(SPACE, 3, [done, finished, trial(SPACE, 2, sampler_unit(sampler, 2))], MAX)
    states = [t.state for t in sampler._model.study.get_trials(deepcopy=False)]
    assert states[:2] == [OptunaState.COMPLETE, OptunaState.COMPLETE]


def sampler_unit(sampler: TPESampler, number: int) -> tuple[float, ...]:
    return sampler._model.trials[number][1]


def run_pool(sampler: Sampler, seed: int, trials: int, batch: int) -> list[FrozenTrial]:
    """A pool of ``batch`` slots on a known objective (best at lr = 0.01 with 40 units and batch
    norm on), each round asking for the free slots and telling the results in trial order."""
    study = Study.create("pool", SPACE, sampler=sampler, storage=InMemoryStorage(), seed=seed)
    while len(study.trials(curves=False)) < trials:
        for t in study.ask(min(batch, trials - len(study.trials(curves=False)))):
            lr, units = t.params["lr"], t.params["units"]
            value = 1.0 - abs(math.log10(lr) + 2) / 4 - abs(units - 40) / 200
            study.tell(t, value - 0.05 * (not t.params["batch_norm"]))
    return study.trials(curves=False)


def test_the_model_beats_random_search_on_a_known_objective() -> None:
    """The median over five seeds of the best of 48 trials, in pools of 4."""
    best_tpe, best_random = [], []
    for seed in range(5):
        best_tpe.append(max(t.value for t in run_pool(TPESampler(seed), seed, 48, 4)))
        best_random.append(max(t.value for t in run_pool(RandomSampler(seed), seed, 48, 4)))
    assert statistics.median(best_tpe) > statistics.median(best_random)
    assert statistics.median(best_tpe) > 0.97  # within 3 % of the optimum, 1.0


def test_the_same_seed_and_pool_give_the_same_proposals() -> None:
    first = run_pool(TPESampler(7), 7, 40, 8)
    second = run_pool(TPESampler(7), 7, 40, 8)
    assert [t.unit for t in first] == [t.unit for t in second]
    assert {t.attrs["proposed_by"] for t in first} == {"random", "tpe"}
    assert [t.unit for t in run_pool(TPESampler(8), 8, 40, 8)] != [t.unit for t in first]


def test_a_sampler_rebuilt_from_the_stored_trials_proposes_the_same() -> None:
    """A resumed study's sampler starts empty and rebuilds its model from the study's trials:
    at the start of a batch it proposes what the live sampler proposes."""
    history = run_pool(TPESampler(2), 2, 30, 6)
    live = TPESampler(2)
    for end in range(12, 30, 6):  # the live sampler has seen each batch as it came
        live.propose(SPACE, end, history[:end], MAX)
    rebuilt = TPESampler(2)
    assert live.propose(SPACE, 30, history, MAX) == rebuilt.propose(SPACE, 30, history, MAX)


def test_a_number_taken_by_another_process_rebuilds_the_model() -> None:
    """The sampler proposed trial 5, but another process stored its own trial 5: the model is
    built again from the study's trials, as a fresh sampler would."""
    history = run_pool(TPESampler(4), 4, 20, 5)
    live = TPESampler(4)
    live.propose(SPACE, 5, history[:5], MAX)  # its own trial 5, never stored
    other = [*history[:5], trial(SPACE, 5, (0.99, 0.99, 0.99), value=0.1), *history[6:]]
    assert live.propose(SPACE, 20, other, MAX) == TPESampler(4).propose(SPACE, 20, other, MAX)


def test_a_study_stores_the_sampler_and_loads_it_back(tmp_path) -> None:
    path = tmp_path / "s.db"
    study = Study.create("tpe", SPACE, sampler=TPESampler(9, n_startup_trials=4), storage=path)
    study.close()
    loaded = Study.load("tpe", path)
    assert isinstance(loaded.sampler, TPESampler)
    assert (loaded.sampler.seed, loaded.sampler.n_startup_trials) == (9, 4)
    loaded.close()


def test_a_running_trial_kept_at_a_rung_is_told_as_reached_there() -> None:
    """Under halving the running trials are the ones the rungs kept. One with ``passed_rung``
    and ``passed_value`` is told as a trial that reached that step with that value (Optuna
    ranks it among the pruned by them); one without stays running (the constant liar). When
    it is kept again further on, or completes, the mirror is built again and tells the new."""
    stopped = trial(SPACE, 0, (0.1, 0.1, 0.1), TrialState.PRUNED, rung=1, rung_value=0.6)
    kept = trial(SPACE, 1, (0.2, 0.2, 0.2), TrialState.RUNNING, passed_rung=1, passed_value=0.8)
    plain = trial(SPACE, 2, (0.3, 0.3, 0.3), TrialState.RUNNING)
    sampler = TPESampler(seed=0, n_startup_trials=1)
    sampler.propose(SPACE, 3, [stopped, kept, plain], MAX)
    seen = sampler._model.study.get_trials(deepcopy=False)
    assert [(t.state, t.intermediate_values) for t in seen] == [
        (OptunaState.PRUNED, {1: 0.6}),
        (OptunaState.PRUNED, {1: 0.8}),
        (OptunaState.RUNNING, {}),
        (OptunaState.RUNNING, {}),  # trial 3, just proposed
    ]
    proposed = trial(SPACE, 3, sampler_unit(sampler, 3), TrialState.RUNNING)
    further = trial(SPACE, 1, (0.2, 0.2, 0.2), TrialState.RUNNING, passed_rung=3, passed_value=0.9)
    sampler.propose(SPACE, 4, [stopped, further, plain, proposed], MAX)
    seen = sampler._model.study.get_trials(deepcopy=False)
    assert seen[1].intermediate_values == {3: 0.9}
    done = trial(SPACE, 1, (0.2, 0.2, 0.2), value=0.95, passed_rung=3, passed_value=0.9)
    proposed4 = trial(SPACE, 4, sampler_unit(sampler, 4), TrialState.RUNNING)
    sampler.propose(SPACE, 5, [stopped, done, plain, proposed, proposed4], MAX)
    seen = sampler._model.study.get_trials(deepcopy=False)
    assert (seen[1].state, seen[1].value) == (OptunaState.COMPLETE, 0.95)
    assert [t.state for t in seen[2:]] == [OptunaState.RUNNING] * 4


def test_proposals_follow_the_trials_a_rung_kept() -> None:
    """Thirty trials stopped at rung 1, their values peaking at lr's u = 0.2, and four running
    trials near u = 0.8 that rung 3 kept with better values: told as kept, the model proposes
    near them; counted as running (the liar alone), it proposes near the stopped trials' best."""
    space = SearchSpace({"lr": LogUniform(1e-4, 1.0)})
    stopped = [
        trial(
            space,
            i,
            ((i + 0.5) / 30,),
            TrialState.PRUNED,
            rung=1,
            rung_value=0.7 - abs((i + 0.5) / 30 - 0.2),
        )
        for i in range(30)
    ]

    def running(kept: bool) -> list[FrozenTrial]:
        marks = lambda k: {"passed_rung": 3, "passed_value": 0.9 + k / 100} if kept else {}  # noqa: E731
        return [
            trial(space, 30 + k, (0.78 + k / 100,), TrialState.RUNNING, **marks(k))
            for k in range(4)
        ]

    def proposals(kept: bool) -> list[float]:
        history = [*stopped, *running(kept)]
        return [TPESampler(seed=s).propose(space, 34, history, MAX).unit[0] for s in range(40)]

    told, liar = proposals(True), proposals(False)
    assert statistics.median(told) > 0.6
    assert statistics.median(liar) < 0.4

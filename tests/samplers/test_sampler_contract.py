"""The contract every sampler keeps, run against each of them by one parametrized suite.

1. Every configuration is legal: each value within its closed bounds, with its proper type.
2. Integer ranges are inclusive: IntUniform(2, 4) gives 2, 3 and 4, the ends as often as 3.
3. The same seed gives the same configurations.
4. Trial n's configuration depends on nothing but the seed, n and the results: not on how many
   workers ask, nor on the order in which results come back. A model-based sampler (TPE) learns
   from the results finished when it is asked, so it keeps this only at a fixed pool: the same
   asks and tells in the same order (its own tests, tests/samplers/test_tpe.py).
"""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from caviar import (
    Choice,
    CoarseToFineSampler,
    Fixed,
    GridSampler,
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
from caviar.core.records import Direction
from caviar.samplers import Sampler, TPESampler

pytestmark = pytest.mark.filterwarnings("ignore::caviar.samplers.GridWarning")


@dataclass(frozen=True)
class SamplerCase:
    """A sampler under test, built two ways."""

    id: str
    #: seed -> a sampler for a 64-trial study of the space below
    for_study: Callable[[int], Sampler]
    #: (seed, n) -> a sampler whose proposals cover the whole range evenly, n of them or fewer
    even: Callable[[int, int], Sampler]
    #: whether the even proposals are exactly balanced (a grid), not just in law
    exact: bool
    #: whether proposals are independent of when results come back (property 4)
    order_free: bool = True


CASES = [
    SamplerCase(
        "random",
        for_study=lambda seed: RandomSampler(seed),
        even=lambda seed, n: RandomSampler(seed),
        exact=False,
    ),
    SamplerCase(
        "grid",
        for_study=lambda seed: GridSampler(points_per_dim=2),  # 2**6 = 64 points
        even=lambda seed, n: GridSampler(points_per_dim=3),
        exact=True,
    ),
    SamplerCase(
        "coarse_to_fine",
        for_study=lambda seed: CoarseToFineSampler(
            rounds=3, per_round=[24, 20, 20], keep=4, margin=0.1, seed=seed
        ),
        # its first round is plain random search over the whole box
        even=lambda seed, n: CoarseToFineSampler(rounds=1, per_round=n, seed=seed),
        exact=False,
    ),
    SamplerCase(
        "tpe",
        for_study=lambda seed: TPESampler(seed, n_startup_trials=8),
        # with no finished trial, its proposals are the random sampler's
        even=lambda seed, n: TPESampler(seed),
        exact=False,
        order_free=False,
    ),
]
ORDER_FREE = [c for c in CASES if c.order_free]


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request) -> SamplerCase:
    return request.param


def every_kind() -> SearchSpace:
    return SearchSpace(
        {
            "lr": LogUniform(1e-4, 1.0),
            "momentum": OneMinusLog(0.9, 0.999),
            "dropout": Uniform(0.0, 0.5),
            "layers": IntUniform(2, 4),
            "batch_size": IntLogUniform(16, 512),
            "activation": Choice(["relu", "tanh", "gelu"]),
            "epochs": Fixed(10),
        }
    )


BUDGET = 64


def objective(trial) -> float:
    """A deterministic function of the configuration (through its unit point), best at 0.3."""
    return -sum((u - 0.3) ** 2 for u in trial.unit)


def drive(workers, budget: int, *, reverse: bool = False) -> None:
    """Each step every worker asks up to its batch, then all results are told (maybe reversed).

    ``workers`` is a list of (study, batch). Ends when the budget is spent or nobody gets a trial
    (a coarse-to-fine worker gets none while another worker still runs the previous round).
    """
    asked = 0
    while True:
        pending = []
        for study, batch in workers:
            want = min(batch, budget - asked)
            if want > 0:
                trials = study.ask(want)
                asked += len(trials)
                pending += [(study, t) for t in trials]
        if not pending:
            return
        if reverse:
            pending.reverse()
        for study, trial in pending:
            study.tell(trial, objective(trial))


def configurations(study) -> dict[int, tuple]:
    return {t.number: (dict(t.params), t.unit, dict(t.attrs)) for t in study.trials(curves=False)}


def sequential_run(case: SamplerCase, seed: int = 5) -> dict[int, tuple]:
    study = Study.create(
        "seq", every_kind(), sampler=case.for_study(seed), storage=InMemoryStorage(), seed=seed
    )
    drive([(study, 1)], BUDGET)
    return configurations(study)


# -- 1. legal values --------------------------------------------------------------------------


def test_every_value_lies_within_its_bounds_with_its_type(case):
    space = every_kind()
    study = Study.create("bounds", space, sampler=case.for_study(1), storage=InMemoryStorage())
    drive([(study, 4)], BUDGET)
    trials = study.trials()
    assert len(trials) == BUDGET
    for t in trials:
        p = t.params
        assert len(t.unit) == space.n_free and all(0.0 <= u <= 1.0 for u in t.unit)
        assert type(p["lr"]) is float and 1e-4 <= p["lr"] <= 1.0
        assert type(p["momentum"]) is float and 0.9 <= p["momentum"] <= 0.999
        assert type(p["dropout"]) is float and 0.0 <= p["dropout"] <= 0.5
        assert type(p["layers"]) is int and 2 <= p["layers"] <= 4
        assert type(p["batch_size"]) is int and 16 <= p["batch_size"] <= 512
        assert p["activation"] in ("relu", "tanh", "gelu")
        assert p["epochs"] == 10
        assert list(p) == list(space)


# -- 2. inclusive integers --------------------------------------------------------------------


def even_draws(case: SamplerCase, space: SearchSpace, n: int, seed: int = 0) -> list[dict]:
    sampler = case.even(seed, n)
    out = []
    for number in range(n):
        proposal = sampler.propose(space, number, [], Direction.MAXIMIZE)
        if proposal is None:
            break
        out.append(space.from_unit(proposal.unit))
    return out


def test_int_uniform_gives_both_end_points_as_often_as_the_middle(case):
    space = SearchSpace({"layers": IntUniform(2, 4)})
    n = 3_000
    counts = Counter(p["layers"] for p in even_draws(case, space, n))
    assert sorted(counts) == [2, 3, 4]
    total = sum(counts.values())
    # exact for a grid; else within 4 binomial sigmas of total / 3 (halved ends would be 1/4)
    tolerance = 0 if case.exact else 4 * (total * (1 / 3) * (2 / 3)) ** 0.5
    for value in (2, 3, 4):
        assert abs(counts[value] - total / 3) <= tolerance, counts


@pytest.mark.slow
def test_int_log_uniform_reaches_both_end_points(case):
    space = SearchSpace({"batch_size": IntLogUniform(16, 512)})
    values = {p["batch_size"] for p in even_draws(case, space, 20_000, seed=1)}
    assert min(values) == 16 and max(values) == 512


# -- 3. same seed, same sequence ------------------------------------------------------------


def test_the_same_seed_gives_the_same_configurations(case):
    first, second = sequential_run(case), sequential_run(case)
    assert len(first) == BUDGET
    assert first == second


# -- 4. independent of workers and of the order of results ----------------------------------


@pytest.mark.parametrize("case", ORDER_FREE, ids=[c.id for c in ORDER_FREE])
def test_two_workers_on_one_sqlite_file_get_the_sequential_configurations(case, tmp_path):
    path = tmp_path / "study.db"
    a = Study.create("par", every_kind(), sampler=case.for_study(5), storage=path, seed=5)
    b = Study.load("par", path)
    drive([(a, 1), (b, 1)], BUDGET)
    owners = {t.owner for t in a.trials(curves=False)}
    assert owners == {a.owner, b.owner}  # both really worked
    assert configurations(a) == sequential_run(case)
    a.close()
    b.close()


@pytest.mark.parametrize("case", ORDER_FREE, ids=[c.id for c in ORDER_FREE])
def test_results_told_in_reverse_order_give_the_sequential_configurations(case):
    study = Study.create(
        "rev", every_kind(), sampler=case.for_study(5), storage=InMemoryStorage(), seed=5
    )
    drive([(study, 5)], BUDGET, reverse=True)
    assert configurations(study) == sequential_run(case)


@pytest.mark.parametrize("case", ORDER_FREE, ids=[c.id for c in ORDER_FREE])
def test_uneven_batches_and_reversed_results_give_the_sequential_configurations(case, tmp_path):
    path = tmp_path / "study.db"
    a = Study.create("mix", every_kind(), sampler=case.for_study(5), storage=path, seed=5)
    b = Study.load("mix", path)
    drive([(a, 3), (b, 2)], BUDGET, reverse=True)
    assert configurations(a) == sequential_run(case)
    a.close()
    b.close()


def test_trial_seeds_depend_only_on_the_study_seed_and_the_number(case, tmp_path):
    path = tmp_path / "study.db"
    a = Study.create("seeds", every_kind(), sampler=case.for_study(5), storage=path, seed=5)
    b = Study.load("seeds", path)
    drive([(a, 2), (b, 3)], BUDGET)
    seq = Study.create(
        "seq", every_kind(), sampler=case.for_study(5), storage=InMemoryStorage(), seed=5
    )
    drive([(seq, 1)], BUDGET)
    assert [t.seed for t in a.trials()] == [t.seed for t in seq.trials()]
    assert len({t.seed for t in seq.trials()}) == BUDGET
    a.close()
    b.close()

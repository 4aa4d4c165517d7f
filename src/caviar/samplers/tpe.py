"""Model-based proposals: Optuna's tree-structured Parzen estimator (TPE), asked inside a pool.

TPE (Bergstra et al. 2011) splits the finished trials into the best ``gamma`` and the rest, fits
a Parzen density to each, and proposes the candidate where the first is largest against the
second. Optuna's implementation is the field's well-kept one; this module only drives it through
ask and tell:

- **caviar's scales, exactly.** A continuous dimension is searched on its unit coordinate, which
  is linear in its scale (log10 of a rate, log10 of ``1 - beta``), so Optuna models it on that
  scale; an integer range is Optuna's integer distribution (log where the scale is), a choice its
  categorical one. A proposal's values map back to the unit cube through the space.
- **A pool proposes many points at once.** Trials in flight (running, queued, or proposed earlier
  in the same batch) are known to the sampler as running trials, and Optuna's constant liar
  counts them among the worse ones, so a pool of 1024 does not propose 1024 neighbours of one
  point.
- **Every finished trial informs the model.** A pruned trial's value at its rung is its
  intermediate value (Optuna ranks pruned trials by the step they reached, then that value); a
  diverged or failed trial is a pruned trial with no value, ranked below all others, so the model
  learns to avoid the region.
- **So does every rung a running trial passed.** The constant liar counts a running trial among
  the worse ones; under successive halving the running trials are the ones the rungs kept, the
  best of the pool, for most of their epochs. A trial kept at a rung (``passed_rung`` and
  ``passed_value`` in its attributes, set by the search loop) is told as what it is known to be:
  a trial that reached that rung with that value, ranked among the pruned ones by it (above
  those stopped earlier). With the liar alone, the survivors of the first rung counted as bad
  until enough trials completed, and the model steered towards the rung's near misses (the
  test ``test_proposals_follow_the_trials_a_rung_kept`` shows both).
- **Reproducible.** The first ``n_startup_trials`` proposals (while fewer trials have finished)
  are the random sampler's, point for point. After that each proposal is drawn with a seed
  derived from the study's seed and the trial number, from the trials the sampler has seen in
  trial-number order: with the same seed and pool size, the same proposals. The sampler holds
  no state a study does not store, so a resumed study rebuilds the same model from its trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from caviar.core.constraints import integer
from caviar.core.records import Direction, FrozenTrial, TrialState
from caviar.core.seeding import SAMPLER, check_seed, derive_seed
from caviar.samplers.base import Proposal, Sampler
from caviar.samplers.random import RandomSampler
from caviar.space import SearchSpace
from caviar.space.dimensions import Choice, Dimension, IntLogUniform, IntUniform

#: ``n_startup_trials``: finished trials before the model takes over from random proposals
STARTUP = integer(1)


class TPESampler(Sampler):
    """Optuna's multivariate TPE with a constant liar, on caviar's scales (see the module)."""

    name = "tpe"
    learns = True

    def __init__(self, seed: int = 0, n_startup_trials: int = 10) -> None:
        self.seed = check_seed("TPESampler", seed)
        self.n_startup_trials: int = STARTUP.check(n_startup_trials, "TPESampler.n_startup_trials")
        self._random = RandomSampler(self.seed)
        self._model: _Model | None = None
        self._prior: tuple[FrozenTrial, ...] = ()

    def __repr__(self) -> str:
        return f"TPESampler(seed={self.seed}, n_startup_trials={self.n_startup_trials})"

    def propose(
        self,
        space: SearchSpace,
        number: int,
        history: Sequence[FrozenTrial],
        direction: Direction,
    ) -> Proposal:
        finished = sum(t.state.is_finished for t in [*self._prior, *history])
        if finished < self.n_startup_trials:  # the same for every proposal of a batch
            startup = self._random.propose(space, number, history, direction)
            return Proposal(startup.unit, {"proposed_by": "random"})
        if self._model is None or not self._model.fits(space, direction, self._prior):
            self._model = _Model(space, direction, self._prior)
        self._model.sync(history, number)
        seed = derive_seed(self.seed, SAMPLER, number) % 2**32  # Optuna's seeds are 32-bit
        unit = self._model.ask(seed, number)
        return Proposal(unit, {"proposed_by": "tpe"})

    def learn_from(self, trials: Sequence[FrozenTrial]) -> None:
        """Another study's finished trials (a warm start), in this space: they come first in
        the model, before the study's own, so Optuna's default weights, which count the oldest
        trials less once there are more than 25, count them less as the study's own come."""
        self._prior = tuple(t for t in trials if t.state.is_finished)
        self._model = None

    def to_config(self) -> dict[str, Any]:
        return {"name": self.name, "seed": self.seed, "n_startup_trials": self.n_startup_trials}


def distribution(dim: Dimension) -> Any:
    """The Optuna distribution that searches ``dim`` on its own scale."""
    # deferred: optuna loads in about a second, and only a TPE study needs it
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if isinstance(dim, Choice):
        return CategoricalDistribution(tuple(range(dim.cardinality)))
    if isinstance(dim, IntUniform | IntLogUniform):
        return IntDistribution(dim.low, dim.high, log=isinstance(dim, IntLogUniform))
    return FloatDistribution(0.0, 1.0)  # the unit coordinate: linear in the dimension's scale


class _Model:
    """An in-memory Optuna study that mirrors the caviar study's trials, in number order, and
    the proposals of the current batch, as running trials."""

    def __init__(
        self, space: SearchSpace, direction: Direction, prior: Sequence[FrozenTrial] = ()
    ) -> None:
        self.space, self.direction, self.prior = space, direction, tuple(prior)
        self.names = space.free_names
        self.distributions = {name: distribution(space[name]) for name in self.names}
        self._reset()

    def _reset(self) -> None:
        # deferred: optuna (see ``distribution``)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.storage = optuna.storages.InMemoryStorage()
        self.study = optuna.create_study(
            storage=self.storage,
            direction="maximize" if self.direction is Direction.MAXIMIZE else "minimize",
        )
        self.study_id = self.storage.get_study_id_from_name(self.study.study_name)
        #: caviar trial number -> (Optuna trial id, unit point, what Optuna was told: see
        #: :func:`_view`; None while it counts as running)
        self.trials: dict[int, tuple[int, tuple[float, ...], _View | None]] = {}
        for t in self.prior:  # another study's trials, first: the oldest
            self._finish(self._create(t.unit, {"warm_start": t.number}), t)

    def fits(self, space: SearchSpace, direction: Direction, prior: Sequence[FrozenTrial]) -> bool:
        return space == self.space and direction is self.direction and tuple(prior) == self.prior

    def sync(self, history: Sequence[FrozenTrial], number: int) -> None:
        """Add the trials not seen yet and tell those whose view changed (finished, or kept at a
        rung). A trial seen with other values than the study now holds (another process took its
        number), a proposal at or past ``number``, or a trial told before whose view changed
        (kept at rung 1, now at rung 3 or complete: Optuna's finished trials are final) means
        the mirror is out of date: it is built again from ``history``, in trial order, as a
        resumed study builds it."""
        by_number = {t.number: t for t in history}
        stale = any(n >= number for n in self.trials) or any(
            n in self.trials
            and (self.trials[n][1] != tuple(t.unit) or self.trials[n][2] not in (None, _view(t)))
            for n, t in by_number.items()
        )
        if stale:
            self._reset()
        for t in sorted(history, key=lambda t: t.number):
            seen = self.trials.get(t.number)
            if seen is None:
                self.add_running(t.number, t.unit)
                seen = self.trials[t.number]
            view = _view(t)
            if view is not None and seen[2] is None:
                self._finish(seen[0], t)
                self.trials[t.number] = (seen[0], seen[1], view)

    def add_running(self, number: int, unit: Sequence[float]) -> None:
        """Trial ``number`` at ``unit``, running (or queued, or just proposed): the constant
        liar counts it among the worse trials until it finishes."""
        if number not in self.trials:
            self.trials[number] = (self._create(unit), tuple(unit), None)

    def _create(self, unit: Sequence[float], marks: dict[str, Any] | None = None) -> int:
        """A running Optuna trial at ``unit`` (``marks``: its user attributes); its id."""
        # deferred: optuna (see ``distribution``)
        from optuna.trial import TrialState as OptunaState
        from optuna.trial import create_trial

        template = create_trial(
            state=OptunaState.RUNNING,
            params=self._params(unit),
            distributions=self.distributions,
            user_attrs=marks,
        )
        return self.storage.create_new_trial(self.study_id, template_trial=template)

    def ask(self, seed: int, number: int) -> tuple[float, ...]:
        """A proposal for trial ``number``, left in the mirror as a running trial."""
        # deferred: optuna (see ``distribution``)
        import optuna

        self.study.sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True, n_startup_trials=0
        )
        trial = self.study.ask(self.distributions)
        unit = tuple(self._unit(name, trial.params[name]) for name in self.names)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, trial.number)
        self.trials[number] = (trial_id, unit, None)
        return unit

    # -- between caviar's trials and Optuna's ----------------------------------------------------
    def _unit(self, name: str, value: Any) -> float:
        dim = self.space[name]
        if isinstance(dim, Choice):
            return (int(value) + 0.5) / dim.cardinality
        if isinstance(dim, IntUniform | IntLogUniform):
            return dim.to_unit(int(value))
        return float(value)

    def _params(self, unit: Sequence[float]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, u in zip(self.names, unit, strict=True):
            dim = self.space[name]
            if isinstance(dim, Choice):
                params[name] = min(int(u * dim.cardinality), dim.cardinality - 1)
            elif isinstance(dim, IntUniform | IntLogUniform):
                params[name] = int(dim.from_unit(u))
            else:
                params[name] = float(u)
        return params

    def _finish(self, trial_id: int, t: FrozenTrial) -> None:
        """Tell Optuna what is known of ``t`` (see :func:`_view`): complete with its value, or
        pruned at a step with the value there (pruned at a rung, or running and kept at one),
        or pruned with no value (diverged, failed: ranked below every other)."""
        # deferred: optuna (see ``distribution``)
        from optuna.trial import TrialState as OptunaState

        view = _view(t)
        assert view is not None, "a trial counted as running is not told"
        kind, step, value = view
        if kind == "complete" and value is not None:
            self.storage.set_trial_state_values(trial_id, OptunaState.COMPLETE, [value])
            return
        if step is not None and value is not None:
            self.storage.set_trial_intermediate_value(trial_id, step, value)
        self.storage.set_trial_state_values(trial_id, OptunaState.PRUNED)


#: what the model is told of a trial: ("complete", None, value), or ("pruned", step, value) with
#: step and value None where it reached no rung with a value
_View = tuple[str, int | None, float | None]


def _view(t: FrozenTrial) -> _View | None:
    """What Optuna is told of ``t``; None while it counts as running (the constant liar)."""
    if t.state is TrialState.COMPLETE and t.value is not None:
        return ("complete", None, float(t.value))
    if t.state.is_finished:
        rung, value = t.attrs.get("rung"), t.attrs.get("rung_value")
        if t.state is TrialState.PRUNED and rung is not None and value is not None:
            return ("pruned", int(rung), float(value))
        return ("pruned", None, None)
    rung, value = t.attrs.get("passed_rung"), t.attrs.get("passed_value")
    if rung is not None and value is not None:  # running (or queued again), kept at a rung
        return ("pruned", int(rung), float(value))
    return None

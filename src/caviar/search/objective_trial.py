"""What a plain objective sees of its trial (:class:`ObjectiveTrial`), and successive halving over
the values it reports (:class:`StepRungs`). The loop around them is :mod:`caviar.search.objective`.

Steps are 1-based, as caviar's learning curves count epochs: ``trial.report(value, step)`` stores
the point ``EpochRecord(step, <metric> = value)``, where the metric is ``val_accuracy`` for a
study that maximizes and ``val_loss`` for one that minimizes, so that the report and the
dashboard draw the curve (accuracy on a linear axis, loss on a log axis: a minimized value that
is not positive stays in the store but is not drawn there).

Halving judges at rungs ``min_epochs * eta**k`` counted in steps, as :mod:`caviar.search.halving`
does in epochs (a bracket's rungs start at ``min_epochs * eta**b``). A report at a step at or past
a rung not judged yet judges the trial there with the value just reported (so an objective that
reports every 10 steps is judged at rung 9 with its value at step 10, as Optuna's successive
halving does); a report that passes several rungs judges it at each. A value is kept when it is
among the best ``max(1, n // eta)`` of the ``n`` recorded at that rung so far, every earlier trial
of the study counted (those of earlier calls and of other processes: :meth:`StepRungs.catch_up`).
A NaN counts as the worst value. The decision at a rung is final: once out of the top there,
:meth:`ObjectiveTrial.should_prune` stays True. Every rung a report passes is recorded, whether the
objective heeds the decision or not, so a continued study replays exactly what was recorded.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from caviar.core.constraints import integer
from caviar.core.errors import InvalidValue, got
from caviar.core.records import Direction, EpochRecord, TrialState
from caviar.core.suggest import did_you_mean
from caviar.search.halving import Halving, Rungs
from caviar.study import Study, Trial

#: a reported step: 1-based, as caviar's epochs
STEP = integer(1)

#: the curve's field a reported value is stored in, by the study's direction
METRIC = {Direction.MAXIMIZE: "val_accuracy", Direction.MINIMIZE: "val_loss"}


class TrialPruned(Exception):
    """Raised by the objective (or by :meth:`ObjectiveTrial.prune`) when
    :meth:`ObjectiveTrial.should_prune` says so; the trial is told PRUNED."""


def real_number(value: Any) -> float | None:
    """``value`` as a float if it is a real number (an int or a float, numpy's and torch's
    scalars and 0-d arrays included; not a bool), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        item = value.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    return None


class StepRungs:
    """The values recorded at each rung, counted in reported steps (see the module)."""

    def __init__(self, halving: Halving, direction: Direction, max_steps: int | None) -> None:
        self.halving, self.direction, self.max_steps = halving, direction, max_steps
        self.rungs = Rungs(halving)
        #: trials whose values are recorded already (this process's own, as they report)
        self.counted: set[int] = set()

    def bracket(self, number: int) -> int:
        """Trial ``number``'s bracket (brackets share the trials by the rungs below
        ``max_steps``, which must then be given)."""
        return 0 if self.max_steps is None else self.halving.bracket_of(number, self.max_steps)

    def passed(self, after: int, step: int, bracket: int) -> list[int]:
        """The rungs of ``bracket`` in ``(after, step]``; never ``max_steps`` or past it (a
        trial at its last step is complete, not judged)."""
        out, rung = [], self.halving.first_rung(bracket)
        while rung <= step and (self.max_steps is None or rung < self.max_steps):
            if rung > after:
                out.append(rung)
            rung *= self.halving.eta
        return out

    def judge(self, number: int, after: int, step: int, value: float) -> int | None:
        """Record trial ``number``'s ``value``, reported at ``step`` after a report at
        ``after``, at every rung it passes; the first rung where it fell out of the top."""
        score = value if self.direction is Direction.MAXIMIZE else -value
        score = -math.inf if math.isnan(score) else score  # Rungs keeps the higher
        bracket, out = self.bracket(number), None
        for rung in self.passed(after, step, bracket):
            if not self.rungs.keep(rung, score, bracket) and out is None:
                out = rung
        return out

    def catch_up(self, study: Study) -> None:
        """Record the rungs of the study's finished trials not counted yet: those of earlier
        calls and of other processes, whatever their state."""
        new = [
            t.number
            for t in study.trials(curves=False)
            if t.state.is_finished and t.number not in self.counted
        ]
        metric = METRIC[self.direction]
        for t in study.storage.get_trials(study.name, numbers=new) if new else []:
            self.counted.add(t.number)
            after = 0
            for record in t.curve:
                self.judge(t.number, after, record.epoch, record.metric(metric))
                after = record.epoch


class ObjectiveTrial:
    """What the objective receives: the trial's ``number``, its ``seed`` (for the objective's own
    randomness) and its ``params``, values already on their scale (``trial["lr"]``)."""

    def __init__(
        self,
        study: Study,
        trial: Trial,
        rungs: StepRungs | None = None,
        max_steps: int | None = None,
    ) -> None:
        self.number: int = trial.number
        self.seed: int = trial.seed
        self.params: Mapping[str, Any] = MappingProxyType(dict(trial.params))
        self._study, self._rungs, self._max_steps = study, rungs, max_steps
        self._metric = METRIC[study.direction]
        #: the reported (step, value) pairs, in order
        self.reports: list[tuple[int, float]] = []
        #: where halving stopped it: (rung, the step judged at, the value there)
        self.out_at: tuple[int, int, float] | None = None

    def __repr__(self) -> str:
        return f"ObjectiveTrial(number={self.number}, params={dict(self.params)!r})"

    def __getitem__(self, key: str) -> Any:
        if key not in self.params:
            raise KeyError(
                f"{key!r} is not in the space; its names: {list(self.params)}"
                + did_you_mean(key, self.params)
            )
        return self.params[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("suggest"):
            raise AttributeError(
                f"ObjectiveTrial has no {name}(): caviar draws every value from the space given "
                f"to optimize; read it with trial[name] (this trial's: {list(self.params)})"
            )
        raise AttributeError(f"'ObjectiveTrial' object has no attribute {name!r}")

    def report(self, value: float, step: int) -> None:
        """Store ``value`` as the trial's curve at ``step`` (1-based, above the last reported
        step, at most ``max_steps``), and judge it at any rung the step reaches."""
        owner = "ObjectiveTrial.report"
        number = real_number(value)
        if number is None:
            raise InvalidValue(f"{owner}.value", f"must be a real number, {got(value)}")
        step = STEP.check(step, f"{owner}.step")  # 1-based: report(value, epoch + 1)
        last = self.reports[-1][0] if self.reports else 0
        if step <= last:
            raise InvalidValue(
                f"{owner}.step", f"must be above the last reported step {last}, got {step}"
            )
        if self._max_steps is not None and step > self._max_steps:
            raise InvalidValue(
                f"{owner}.step", f"must be at most max_steps = {self._max_steps}, got {step}"
            )
        self._study.report(self.number, EpochRecord(step, **{self._metric: number}))
        self.reports.append((step, number))
        if self._rungs is not None:
            out = self._rungs.judge(self.number, last, step, number)
            if out is not None and self.out_at is None:
                self.out_at = (out, step, number)

    def should_prune(self) -> bool:
        """Whether successive halving stopped the trial at a rung (False without halving)."""
        return self.out_at is not None

    def prune(self) -> None:
        """Raise :class:`TrialPruned` (the trial is told PRUNED)."""
        raise TrialPruned(f"trial {self.number} pruned")

    def attrs(self, state: TrialState) -> dict[str, Any]:
        """What is stored with the trial as it ends in ``state``: the steps it reported, the
        halving schedule and its bracket (read by the report's rung table), and for a pruned
        trial the rung that stopped it and its value there (its last step and value when the
        objective pruned it on its own)."""
        halving = None if self._rungs is None else self._rungs.halving
        found: dict[str, Any] = {
            "steps_run": len(self.reports),
            "halving": None if halving is None else halving.to_config(),
        }
        if halving is not None and halving.brackets > 1 and self._rungs is not None:
            found["bracket"] = self._rungs.bracket(self.number)
        if state is TrialState.PRUNED and self.out_at is not None:
            rung, step, value = self.out_at
        elif state is TrialState.PRUNED and self.reports:
            (step, value), rung = self.reports[-1], self.reports[-1][0]
        else:
            return found
        finite = value if math.isfinite(value) else None  # NaN: none (the store keeps JSON)
        return found | {"rung": rung, "rung_step": step, "rung_value": finite}

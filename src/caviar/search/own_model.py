"""A study of the user's own model: the same ask -> fit -> tell loop as caviar's nets
(:mod:`caviar.search.loop`: the pool's slots refilled, halving, the budget and its end game,
the store, kept models), over a :class:`caviar.own.pool.ModulePool` of the modules the user's
builder makes.

Before the first trial, :func:`probe` builds the module at the space's corners and runs one
mini-batch, so that a builder that raises, an output that does not fit the labels, a loss that
is not finite or a hyperparameter nothing reads is one line before the study starts, not a
failed trial in the middle of it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from caviar.core.errors import InvalidValue
from caviar.core.records import TrialState
from caviar.nn.pool import RoundResult
from caviar.own.builder import Build, build_module, describe
from caviar.own.data import ModuleData
from caviar.own.group import Loss
from caviar.own.member import KeptModule
from caviar.own.pool import ModuleRound, ModuleSpec
from caviar.own.space import MemberSettings
from caviar.search.loop import SearchLoop
from caviar.space import SearchSpace
from caviar.study import Trial


def cross_entropy(output: Tensor, target: Tensor) -> Tensor:
    """The default loss: softmax cross-entropy, the mean over the mini-batch."""
    return nn.functional.cross_entropy(output, target)


def module_spec(
    build: Build,
    params: Mapping[str, Any],
    seed: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> ModuleSpec:
    """The member a trial's hyperparameters make: the builder's module, and how to train it."""
    member = MemberSettings.from_params(params, owner="params")
    built = build_module(build, member.builder, seed, dtype=dtype, device=device)
    return ModuleSpec(
        seed=seed,
        epochs=member.epochs,
        batch_size=member.batch_size,
        optimizer=member.optimizer,
        settings=member.settings,
        module=built.module,
        params=dict(params),
    )


def probe(
    build: Build,
    space: SearchSpace,
    data: ModuleData,
    loss: Loss,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> None:
    """Build the module at the space's three corners (every unit coordinate 0, 0.5 and 1) and
    run a mini-batch of each through it and the loss; an :class:`InvalidValue` for the first
    thing that would make every trial fail, or a hyperparameter nothing reads."""
    read: set[str] = set()
    caviar_reads: set[str] = set()
    for u in (0.5, 0.0, 1.0):
        params = space.from_unit([u] * space.n_free)
        member = MemberSettings.from_params(params)
        built = build_module(build, member.builder, 0, dtype=dtype, device=device)
        read |= built.read
        caviar_reads |= set(params) - set(member.builder)
        check_output(built.module, data, loss, member.batch_size, describe(build))
    unread = sorted(set(space) - read - caviar_reads)
    if unread:
        raise InvalidValue(
            f"space.{unread[0]}",
            f"neither the builder {describe(build)} nor the optimizer reads it (the builder "
            f"read {sorted(read) or 'nothing'}), so searching it would change nothing; remove it "
            "or read params[...] in the builder",
        )


def check_output(module: nn.Module, data: ModuleData, loss: Loss, batch: int, name: str) -> None:
    """One mini-batch: the output must be ``[batch, classes]`` with a score for every class
    the labels hold, and the loss a finite number."""
    n = min(batch, len(data.y_train), 32)
    x, y = data.x_train[:n], data.y_train[:n]
    module.train()
    try:
        out = module(x)
    except Exception as e:  # the user's module: its error, said in one line
        first = str(e).splitlines()[0] if str(e) else ""
        raise InvalidValue(
            "model",
            f"the module {name} builds fails on a batch of examples of shape "
            f"{list(x.shape)}: {type(e).__name__}: {first}",
        ) from e
    if not isinstance(out, Tensor) or out.ndim != 2 or out.shape[0] != n:
        shape = list(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise InvalidValue(
            "model",
            f"the module must return scores of shape [batch, classes], got {shape} for a "
            f"batch of {n}",
        )
    if out.shape[1] < data.n_classes:
        raise InvalidValue(
            "model",
            f"the module gives {out.shape[1]} scores per example, but the labels go to "
            f"{data.n_classes - 1}: it needs [batch, {data.n_classes}] (a score per class)",
        )
    value = loss(out, y)
    if not isinstance(value, Tensor) or value.numel() != 1:
        raise InvalidValue("loss", f"must return one number (the batch's mean), got {value!r}")
    if not torch.isfinite(value):
        raise InvalidValue(
            "loss",
            f"returned {float(value)} on the first mini-batch with the initial weights; "
            "check the loss and the module's output",
        )


class ModuleSearch(SearchLoop):
    """The search loop over a pool of the user's module (see the module docstring)."""

    def __init__(self, *args: Any, build: Build, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.build = build
        self._kept: dict[int, KeptModule] = {}

    def _spec(self, trial: Trial) -> Any:
        """The trial's member, or None after failing a trial its builder refuses."""
        try:
            return module_spec(
                self.build, trial.params, trial.seed, dtype=self.dtype, device=self.device
            )
        except InvalidValue as e:
            self.study.tell(trial, None, state=TrialState.FAILED, attrs={"error": str(e)})
            self.progress.trial_finished(TrialState.FAILED, None)
            self.progress.note(f"caviar: trial {trial.number} failed: {e}")
            return None

    def _work(self, spec: Any) -> float:
        return float(spec.n_parameters)

    def _tell(self, result: RoundResult) -> None:
        if isinstance(result, ModuleRound):
            self._kept.update(result.kept)
        super()._tell(result)

    def _finish(self, number: int, diverged: bool, state: Any) -> None:
        super()._finish(number, diverged, self._kept.pop(number, None))


def default_loss(loss: Callable[[Tensor, Tensor], Tensor] | None) -> Loss:
    return cross_entropy if loss is None else loss

"""``caviar.optimize``: tune your own PyTorch model, or any objective, with caviar's method.

- ``caviar.optimize(build, space, data=(x, y))``: ``build(params) -> nn.Module``; the module's
  candidates train as a population (:mod:`caviar.own`), members with the same parameter shapes
  in one vectorized pass, with caviar's pool, halving, budget, store, kept models and report.
- ``caviar.optimize(objective, space)``: ``objective(trial) -> float``, for anything caviar
  cannot train itself, one trial at a time (:mod:`caviar.search.objective`), with the same
  study, samplers, budget and pruning through ``trial.report``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from torch import Tensor

from caviar.core.errors import InvalidValue, got
from caviar.core.threads import ThreadGovernor
from caviar.own.builder import identity
from caviar.own.data import prepare
from caviar.search.config import config_from_mapping
from caviar.search.objective import run_objective
from caviar.search.own_model import tune_module
from caviar.space import SearchSpace
from caviar.study import Study

#: what the study's [data] says of data given as arrays
ARRAYS = "arrays given to caviar.optimize"


def optimize(
    target: Callable[..., Any],
    space: SearchSpace | Mapping[str, Any],
    *,
    data: Any = None,
    test_data: Any = None,
    loss: Callable[[Tensor, Tensor], Tensor] | None = None,
    name: str | None = None,
    storage: str | os.PathLike[str] = "caviar.db",
    seed: int = 0,
    trials: int | None = None,
    timeout: float | None = None,
    sampler: str = "tpe",
    halving: bool | Mapping[str, int] | str | None = "auto",
    population: int = 0,
    device: str = "auto",
    dtype: str = "float32",
    threads: int | None = None,
    validation: float = 0.2,
    keep_models: int = 3,
    direction: str = "maximize",
    max_steps: int | None = None,
    catch: type[Exception] | tuple[type[Exception], ...] = (),
    progress: bool = True,
    report: bool = True,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Study:
    """Run (or continue) a study and return it (close it when done).

    With ``data`` (``(x, y)`` tensors or arrays, or a ``TensorDataset``; ``y`` class labels),
    ``target`` is a builder: ``target(params)`` makes the module from the trial's
    hyperparameters other than those caviar reads itself (``epochs``, ``batch_size``, and the
    optimizer's: ``optimizer``, ``lr``, ``momentum``, ``beta1``, ``beta2``, ``eps``,
    ``weight_decay``, ``alpha``, ``nesterov``, ``lr_decay``, ``decay_rate``, ``decay_every``).
    A validation split (``validation``) is carved from ``data``, stratified and seeded; trials
    are ranked by validation accuracy; ``test_data`` is checked but never trained or ranked
    on. ``loss(output, target)`` defaults to cross-entropy. The best ``keep_models`` trials'
    modules are kept beside the study. ``threads``: torch's CPU threads (None: the cores other
    work leaves free, measured as it runs; float32 results depend on the count, so give one
    where two runs must agree to the bit).

    Without ``data``, ``target`` is an objective: ``target(trial) -> float``, maximised or
    minimised (``direction``), reporting intermediate values with ``trial.report(value,
    step)`` for halving (``max_steps``: its last step).

    ``trials`` counts the study's trials in all, not per call: a second call continues the
    study. ``timeout`` is a budget in seconds from the call.
    """
    if not callable(target):
        raise InvalidValue("optimize", f"needs a builder or an objective function, {got(target)}")
    if data is None:
        for key, value in (("test_data", test_data), ("loss", loss)):
            if value is not None:
                raise InvalidValue(
                    f"optimize.{key}",
                    "only read with data= (a builder making your module); an objective "
                    "trains and scores itself",
                )
        return run_objective(
            target,
            space,
            name=name or "objective",
            storage=storage,
            seed=seed,
            trials=trials,
            timeout=timeout,
            direction=direction,
            sampler=sampler,
            halving=None if halving == "auto" else halving,
            catch=catch,
            progress=progress,
            max_steps=max_steps,
            clock=clock,
        )
    if direction != "maximize":
        raise InvalidValue(
            "optimize.direction",
            "a builder's trials are ranked by validation accuracy (maximised); "
            f"{direction!r} is for an objective's value",
        )
    started = clock()
    table = space.to_config() if isinstance(space, SearchSpace) else space
    search: dict[str, Any] = {
        "sampler": sampler,
        "population": population,
        "keep_models": keep_models,
        "halving": halving,
    }
    if trials is not None:
        search["trials"] = trials
    if timeout is not None:
        search["timeout"] = timeout
    model = identity(target)
    raw = {
        "study": {
            "name": name or "own-model",
            "storage": os.fspath(storage),
            "seed": seed,
            "device": device,
            "dtype": dtype,
            "threads": threads,
            "model": model,
        },
        "data": {"dataset": ARRAYS, "validation": validation},
        "space": table,
        "search": search,
    }
    config = config_from_mapping(raw, source="caviar.optimize")
    prepared = prepare(data, test_data, validation=validation, seed=seed)
    governor = ThreadGovernor(config.study.threads)  # the cores other work leaves free
    return tune_module(
        config,
        target,
        prepared,
        loss=loss,
        progress=progress,
        report=report,
        stream=stream,
        clock=clock,
        started=started,
        governor=governor,
    )

"""A population: a fixed list of members, each with its own hyperparameters, trained together.

``Population.fit`` puts every member in one :class:`~caviar.nn.pool.Pool` and runs rounds until
all have finished; results stream to ``on_epoch`` after every round. A member's result depends
only on its spec and the data seed, never on the other members (see :mod:`caviar.nn.pool`).
A search that adds and stops members as it goes drives the pool itself (:mod:`caviar.search.loop`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from caviar.core.errors import InvalidValue
from caviar.core.records import EpochRecord
from caviar.nn.device import matmul_precision, resolve_device
from caviar.nn.graphs import graph_factory
from caviar.nn.group import Group
from caviar.nn.memory import InsufficientMemory, available_bytes, bytes_per_member
from caviar.nn.pool import Pool
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState
from caviar.nn.training_data import TrainingData

__all__ = ["EpochEvent", "MemberResult", "Population", "TrainingData", "evaluate_states"]


@dataclass(frozen=True)
class EpochEvent:
    """What members scored in one round (``epoch`` is the latest epoch any of them finished)."""

    epoch: int
    members: tuple[int, ...]
    records: tuple[EpochRecord, ...]
    diverged: tuple[bool, ...]
    seconds: float


@dataclass
class MemberResult:
    """A member's learning curve and outcome (and final state, if asked for)."""

    index: int
    spec: MemberSpec
    curve: list[EpochRecord] = field(default_factory=list)
    diverged: bool = False
    diverged_epoch: int | None = None
    state: MemberState | None = None

    @property
    def final(self) -> EpochRecord | None:
        return self.curve[-1] if self.curve else None


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.2f} MiB"


class Population:
    """Members to train together. ``fit`` trains them all and returns one result per member."""

    def __init__(
        self,
        specs: Sequence[MemberSpec],
        *,
        data_seed: int = 0,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float32,
        memory_limit: int | None = None,
        max_chunk: int | None = None,
        train_eval_size: int | None = None,
        train_metrics: str = "pass",
        eval_batch: int | None = None,
        cuda_graphs: str = "auto",
    ) -> None:
        """``cuda_graphs``: as ``study.cuda_graphs`` (:func:`caviar.nn.graphs.graph_factory`)."""
        if not specs:
            raise InvalidValue("Population.specs", "must hold at least one MemberSpec, got none")
        self.specs = list(specs)
        self.data_seed = data_seed
        self.device = resolve_device(device)
        if dtype not in (torch.float32, torch.float64):
            raise InvalidValue(
                "Population.dtype", f"must be one of [torch.float32, torch.float64], got {dtype}"
            )
        self.dtype = dtype
        self.memory_limit = memory_limit
        self.max_chunk = max_chunk
        self.train_eval_size = train_eval_size
        self.train_metrics = train_metrics
        self.eval_batch = eval_batch
        self.graphs = graph_factory(cuda_graphs, self.device)

    def check_memory(self, n_inputs: int, n_classes: int, eval_batch: int) -> int:
        """How many members may train at once within the memory budget (at least one; an
        :class:`InsufficientMemory` if one member alone does not fit)."""
        budget = self.memory_limit or available_bytes(self.device)
        itemsize = torch.finfo(self.dtype).bits // 8
        costs = [
            bytes_per_member(s, n_inputs, n_classes, eval_batch=eval_batch, itemsize=itemsize)
            for s in self.specs
        ]
        for spec, cost in zip(self.specs, costs, strict=True):
            if cost > budget:
                raise InsufficientMemory(
                    f"one member (hidden_units={spec.hidden_units}, n_layers={spec.n_layers}, "
                    f"batch_size={spec.batch_size}) needs {_mib(cost)}, more than the "
                    f"{_mib(budget)} available on {self.device}"
                )
        return max(1, budget // max(costs))

    def fit(
        self,
        data: TrainingData,
        *,
        on_epoch: Callable[[EpochEvent], None] | None = None,
        states: Sequence[MemberState | None] | None = None,
        keep_states: bool = False,
    ) -> list[MemberResult]:
        """Train every member; with ``states``, continue members from saved states.

        Before anything trains: an :class:`~caviar.core.errors.InvalidValue` for a member that
        cannot train on ``data`` (batch norm on a single training example: torch's ``BatchNorm1d``
        refuses a batch of one in training; a last mini-batch of one is dropped instead, see
        :func:`~caviar.nn.randomness.batch_bounds`), or for a state that this population would
        not continue exactly (another spec but for ``epochs``, data seed, training-set size,
        dtype or shapes: see :meth:`MemberState.check_continues`).
        """
        if states is not None and len(states) != len(self.specs):
            raise ValueError(
                f"states must be one per member ({len(self.specs)}), got {len(states)}"
            )
        eval_batch = self.eval_batch or (1000 if self.device.type == "cuda" else 200)
        at_once = self.check_memory(data.n_inputs, data.n_classes, eval_batch)
        results = [MemberResult(i, spec) for i, spec in enumerate(self.specs)]
        pool = Pool(
            data,
            data_seed=self.data_seed,
            device=self.device,
            dtype=self.dtype,
            max_group=self.max_chunk,
            eval_batch=self.eval_batch,
            train_metrics=self.train_metrics,
            train_eval_size=self.train_eval_size,
            keep_states=keep_states,
            graphs=self.graphs,
        )
        for i, spec in enumerate(self.specs):
            pool.check(spec, states[i] if states is not None else None)
        waiting = []
        for i, spec in enumerate(self.specs):
            state = states[i] if states is not None else None
            if state is not None and state.diverged:  # it stays diverged
                results[i].diverged, results[i].diverged_epoch = True, state.epoch
                results[i].state = state if keep_states else None
            elif state is None or state.epoch < spec.epochs:
                waiting.append((i, state))
        with matmul_precision(self.device, self.dtype):
            while waiting or len(pool):
                while waiting and len(pool) < at_once:
                    i, state = waiting.pop(0)
                    pool.add(i, self.specs[i], state)
                done = pool.step()
                for i in done.lost:  # to the device's memory mid-epoch: again from the start
                    results[i].curve.clear()
                    waiting.insert(0, (i, states[i] if states is not None else None))
                for e in done.epochs:
                    result = results[e.key]
                    result.curve.append(e.record)
                    if e.diverged:
                        result.diverged, result.diverged_epoch = True, e.record.epoch
                    if e.finished and keep_states:
                        result.state = e.state
                if on_epoch is not None and done.epochs:
                    on_epoch(
                        EpochEvent(
                            max(e.record.epoch for e in done.epochs),
                            tuple(e.key for e in done.epochs),
                            tuple(e.record for e in done.epochs),
                            tuple(e.diverged for e in done.epochs),
                            max(e.seconds for e in done.epochs),
                        )
                    )
        return results


def evaluate_states(
    states: Sequence[MemberState],
    x: np.ndarray | Tensor,
    y: np.ndarray | Tensor,
    *,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float32,
    batch: int = 1000,
) -> list[tuple[float, float]]:
    """Mean cross-entropy and accuracy of trained members on ``(x, y)``, in eval mode."""
    target = resolve_device(device)
    xs = torch.as_tensor(np.asarray(x) if not isinstance(x, Tensor) else x).to(target, dtype)
    ys = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y).to(target, torch.int64)
    scores = []
    with matmul_precision(target, dtype):
        for state in states:
            group = Group(
                [state.spec],
                state.n_inputs,
                state.n_classes,
                device=target,
                dtype=dtype,
                states=[state],
            )
            loss, accuracy = group.evaluate(xs, ys, min(batch, xs.shape[0]))
            scores.append((float(loss[0]), float(accuracy[0])))
    return scores

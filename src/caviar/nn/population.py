"""A population: many members, each with its own hyperparameters, trained together.

The population sorts its members into vectorized groups (one per architecture class, see
:mod:`caviar.nn.group`), splits each group into chunks that fit the device's memory, and trains
chunk after chunk. A member's result depends only on its spec and the data seed, never on the
chunk it landed in, so chunks can go to different workers.

After every epoch each member is evaluated in eval mode on the training and validation data and
the results stream to ``on_epoch``, so a study can record learning curves as they come.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from caviar.nn.device import matmul_precision, resolve_device
from caviar.nn.group import Group
from caviar.nn.memory import (
    Chunk,
    InsufficientMemory,
    available_bytes,
    bytes_per_member,
)
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState
from caviar.study.trial import EpochRecord


@dataclass(frozen=True)
class TrainingData:
    """Training and validation arrays: x float [N, D], y integer labels [N] in 0..C-1."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor | None = None
    y_val: Tensor | None = None
    n_classes: int = 0

    @classmethod
    def from_arrays(
        cls,
        x_train: np.ndarray | Tensor,
        y_train: np.ndarray | Tensor,
        x_val: np.ndarray | Tensor | None = None,
        y_val: np.ndarray | Tensor | None = None,
        n_classes: int | None = None,
    ) -> TrainingData:
        def tensor(a: np.ndarray | Tensor, dtype: torch.dtype) -> Tensor:
            return torch.as_tensor(np.asarray(a) if not isinstance(a, Tensor) else a).to(dtype)

        xt, yt = tensor(x_train, torch.float64), tensor(y_train, torch.int64)
        xv = None if x_val is None else tensor(x_val, torch.float64)
        yv = None if y_val is None else tensor(y_val, torch.int64)
        if xt.ndim != 2 or yt.shape != (xt.shape[0],):
            raise ValueError(
                f"x_train must be [N, D] and y_train [N], got {tuple(xt.shape)} "
                f"and {tuple(yt.shape)}"
            )
        if (xv is None) != (yv is None):
            raise ValueError("x_val and y_val go together")
        labels = [yt] + ([yv] if yv is not None else [])
        c = n_classes or int(max(int(t.max()) for t in labels if t.numel()) + 1)
        return cls(xt, yt, xv, yv, c)

    @property
    def n_inputs(self) -> int:
        return int(self.x_train.shape[1])


@dataclass(frozen=True)
class EpochEvent:
    """What one chunk's members scored after an epoch (``epoch`` counts epochs done)."""

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


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


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
        eval_batch: int | None = None,
    ) -> None:
        if not specs:
            raise ValueError("a population needs at least one member")
        self.specs = list(specs)
        self.data_seed = data_seed
        self.device = resolve_device(device)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        self.dtype = dtype
        self.memory_limit = memory_limit
        self.max_chunk = max_chunk
        self.train_eval_size = train_eval_size
        # examples per evaluation pass: large on a GPU; on a CPU 200 keeps a pass's activations
        # in cache (measured fastest from 16 to 256 members of the book's net)
        self.eval_batch = eval_batch or (1000 if self.device.type == "cuda" else 200)

    # -- planning ----------------------------------------------------------------------------
    def plan(
        self,
        n_inputs: int,
        n_classes: int,
        n_examples: int,
        *,
        states: Sequence[MemberState | None] | None = None,
        budget: int | None = None,
    ) -> list[Chunk]:
        """Split the members into chunks: one architecture class and start position per chunk,
        sorted by epochs then width, each fitting ``budget`` bytes."""
        if budget is None:
            budget = self.memory_limit or available_bytes(self.device)
        itemsize = torch.finfo(self.dtype).bits // 8
        eval_batch = min(self.eval_batch, n_examples)
        classes: dict[tuple[object, ...], list[int]] = {}
        for i, spec in enumerate(self.specs):
            state = states[i] if states is not None else None
            start = (state.epoch, state.batch) if state is not None else (0, 0)
            classes.setdefault((*spec.group_key(), *start), []).append(i)

        def cost(spec: MemberSpec, width: int) -> int:
            return bytes_per_member(
                spec, n_inputs, n_classes, width=width, eval_batch=eval_batch, itemsize=itemsize
            )

        chunks = []
        for members in classes.values():
            members.sort(key=lambda i: (self.specs[i].epochs, self.specs[i].hidden_units, i))
            current: list[int] = []
            width = 0
            # within a class a member's cost depends only on the width and on dropout (its
            # masks); the costliest kind present stands for every member of the chunk
            costliest: MemberSpec | None = None
            for i in members:
                spec = self.specs[i]
                alone = cost(spec, spec.hidden_units)
                if alone > budget:
                    raise InsufficientMemory(
                        f"one member (hidden_units={spec.hidden_units}, n_layers={spec.n_layers}, "
                        f"batch_size={spec.batch_size}) needs {_mib(alone)}, more than the "
                        f"{_mib(budget)} available on {self.device}"
                    )
                if current:
                    assert costliest is not None
                    rep = spec if spec.dropout > 0 or costliest.dropout == 0 else costliest
                    wider = max(width, spec.hidden_units)
                    full = self.max_chunk is not None and len(current) >= self.max_chunk
                    if full or cost(rep, wider) * (len(current) + 1) > budget:
                        chunks.append(self._chunk(current, width, n_inputs, n_classes, eval_batch))
                        current, width, costliest = [], 0, None
                current.append(i)
                width = max(width, spec.hidden_units)
                if costliest is None or (spec.dropout > 0 and costliest.dropout == 0):
                    costliest = spec
            chunks.append(self._chunk(current, width, n_inputs, n_classes, eval_batch))
        return chunks

    def _chunk(
        self, members: list[int], width: int, n_inputs: int, n_classes: int, eval_batch: int
    ) -> Chunk:
        itemsize = torch.finfo(self.dtype).bits // 8
        per_member = max(
            bytes_per_member(
                self.specs[i],
                n_inputs,
                n_classes,
                width=width,
                eval_batch=eval_batch,
                itemsize=itemsize,
            )
            for i in members
        )
        return Chunk(tuple(members), width, per_member)

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        data: TrainingData,
        *,
        on_epoch: Callable[[EpochEvent], None] | None = None,
        states: Sequence[MemberState | None] | None = None,
        keep_states: bool = False,
    ) -> list[MemberResult]:
        """Train every member; with ``states``, continue members from saved states."""
        if states is not None and len(states) != len(self.specs):
            raise ValueError(
                f"states must be one per member ({len(self.specs)}), got {len(states)}"
            )
        device, dtype = self.device, self.dtype
        x_train = data.x_train.to(device, dtype)
        y_train = data.y_train.to(device)
        n_eval = self.train_eval_size or x_train.shape[0]
        x_val = None if data.x_val is None else data.x_val.to(device, dtype)
        y_val = None if data.y_val is None else data.y_val.to(device)
        results = [MemberResult(i, spec) for i, spec in enumerate(self.specs)]
        pending = self.plan(data.n_inputs, data.n_classes, x_train.shape[0], states=states)
        with matmul_precision(device, dtype):
            while pending:
                chunk = pending.pop(0)
                try:
                    self._fit_chunk(
                        chunk,
                        (x_train, y_train, x_train[:n_eval], y_train[:n_eval], x_val, y_val),
                        data.n_classes,
                        results,
                        on_epoch,
                        states,
                        keep_states,
                    )
                except (torch.OutOfMemoryError, RuntimeError) as error:
                    if not _is_out_of_memory(error) or len(chunk.members) == 1:
                        raise
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                    half = len(chunk.members) // 2
                    pending[:0] = [
                        Chunk(chunk.members[:half], chunk.width, chunk.bytes_per_member),
                        Chunk(chunk.members[half:], chunk.width, chunk.bytes_per_member),
                    ]
                    for i in chunk.members:  # the chunk restarts from scratch
                        results[i] = MemberResult(i, self.specs[i])
        return results

    def _fit_chunk(
        self,
        chunk: Chunk,
        tensors: tuple[Tensor, Tensor, Tensor, Tensor, Tensor | None, Tensor | None],
        n_classes: int,
        results: list[MemberResult],
        on_epoch: Callable[[EpochEvent], None] | None,
        states: Sequence[MemberState | None] | None,
        keep_states: bool,
    ) -> None:
        x, y, x_eval, y_eval, x_val, y_val = tensors
        members = list(chunk.members)
        specs = [self.specs[i] for i in members]
        chunk_states = [states[i] for i in members] if states is not None else None
        group = Group(
            specs, x.shape[1], n_classes, device=self.device, dtype=self.dtype, states=chunk_states
        )
        first = chunk_states[0] if chunk_states else None
        start_epoch, start_batch = (first.epoch, first.batch) if first is not None else (0, 0)
        if chunk_states is not None:  # members restored from a diverged state stay diverged
            for k, i in enumerate(members):
                state = chunk_states[k]
                if state is not None and state.diverged:
                    results[i].diverged, results[i].diverged_epoch = True, state.epoch
                    if keep_states:
                        results[i].state = state
        epochs = torch.tensor([s.epochs for s in specs], device=self.device)
        bounds = batch_bounds(x.shape[0], group.batch_size, batch_norm=group.batch_norm)
        eval_batch = min(self.eval_batch, x.shape[0])
        for epoch in range(start_epoch, max(s.epochs for s in specs)):
            started = time.perf_counter()
            running = epochs > epoch
            was_alive = group.alive.clone()
            if not bool((running & was_alive).any()):
                break
            order = epoch_order(self.data_seed, epoch, x.shape[0]).to(self.device)
            lr = torch.tensor([s.lr_at(epoch) for s in specs], dtype=self.dtype, device=self.device)
            for b, (lo, hi) in enumerate(bounds):
                if epoch == start_epoch and b < start_batch:
                    continue
                index = order[lo:hi]
                group.train_step(x[index], y[index], epoch * len(bounds) + b, lr, running)
            train_loss, train_acc = group.evaluate(x_eval, y_eval, eval_batch)
            if x_val is not None and y_val is not None:
                val_loss, val_acc = group.evaluate(x_val, y_val, eval_batch)
            else:
                val_loss = val_acc = torch.full_like(train_loss, math.nan)
            group.alive &= torch.isfinite(train_loss) | ~running
            self._record(
                epoch,
                members,
                group,
                (train_loss, train_acc, val_loss, val_acc),
                running & was_alive,
                results,
                on_epoch,
                keep_states,
                time.perf_counter() - started,
            )

    def _record(
        self,
        epoch: int,
        members: list[int],
        group: Group,
        metrics: tuple[Tensor, Tensor, Tensor, Tensor],
        trained: Tensor,
        results: list[MemberResult],
        on_epoch: Callable[[EpochEvent], None] | None,
        keep_states: bool,
        seconds: float,
    ) -> None:
        """Turn one epoch's metrics into records, results and an event (one host sync)."""
        host = [m.cpu().tolist() for m in metrics]
        trained_list, alive = trained.cpu().tolist(), group.alive.cpu().tolist()
        event_members, records, diverged = [], [], []
        for k, i in enumerate(members):
            if not trained_list[k]:
                continue
            record = EpochRecord(epoch + 1, *(float(values[k]) for values in host))
            result = results[i]
            result.curve.append(record)
            if not alive[k]:
                result.diverged, result.diverged_epoch = True, epoch + 1
            finished = not alive[k] or result.spec.epochs == epoch + 1
            if keep_states and finished:
                result.state = group.member_state(k, epoch=epoch + 1, batch=0)
            event_members.append(i)
            records.append(record)
            diverged.append(not alive[k])
        if on_epoch is not None and event_members:
            on_epoch(
                EpochEvent(
                    epoch + 1, tuple(event_members), tuple(records), tuple(diverged), seconds
                )
            )


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

"""A pool of members that come and go: the engine a search drives.

The pool holds members in vectorized groups and trains them in rounds: one round is one epoch
for every member in the pool, each at its own epoch. Between rounds the caller adds members
(a free slot takes the next trial), stops members (successive halving) and reads the finished
ones. A member that finished, diverged or was stopped leaves at once, so no compute is spent on
it, and the groups are rebuilt from the members' states when their composition changes.

What a member computes depends only on its spec and the data seed, never on the pool: its data
order is the permutation of its own epoch, its dropout masks are keyed by its own step, and its
products have its own shapes (see :mod:`caviar.nn.group`). So a member's float32 result is the
same in any pool, any group and at any position.

After every epoch a member reports training loss and accuracy and validation loss and accuracy
(eval mode). Training metrics come from the epoch's own mini-batches by default (their mean, in
training mode, as Keras reports them: no extra pass); ``train_metrics="full"`` evaluates the
training set in eval mode instead, as the book does (it costs about half an epoch).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from caviar.constraints import one_of
from caviar.nn.group import Group
from caviar.nn.memory import is_out_of_memory
from caviar.nn.ragged import padded_width
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState
from caviar.nn.training_data import TrainingData
from caviar.records import EpochRecord

TRAIN_METRICS = ("pass", "full")


@dataclass(frozen=True)
class MemberEpoch:
    """One member's epoch: its record, and whether it has now left the pool.

    ``finished`` is True when the member ran its last epoch or diverged; ``state`` is its final
    state when the pool keeps states and it finished.
    """

    key: int
    record: EpochRecord
    diverged: bool
    finished: bool
    seconds: float
    state: MemberState | None = None


@dataclass
class RoundResult:
    """What a round produced: the epochs that completed, and the members whose epoch was cut
    short by ``should_stop`` (they have left the pool; their partial epoch is discarded)."""

    epochs: list[MemberEpoch] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)


@dataclass
class _Member:
    key: int
    spec: MemberSpec
    epoch: int = 0  # the next epoch to run ...
    batch: int = 0  # ... and the next mini-batch in it
    state: MemberState | None = None  # where it lives while not in a group


class _Interrupted(Exception):
    pass


class Pool:
    """Members training together; see the module docstring."""

    def __init__(
        self,
        data: TrainingData,
        *,
        data_seed: int = 0,
        device: torch.device,
        dtype: torch.dtype = torch.float32,
        max_group: int | None = None,
        eval_batch: int | None = None,
        train_metrics: str = "pass",
        train_eval_size: int | None = None,
        keep_states: bool = False,
    ) -> None:
        one_of(*TRAIN_METRICS).check(train_metrics, "Pool.train_metrics")
        self.data_seed, self.device, self.dtype = data_seed, device, dtype
        self.max_group = max_group
        self.train_metrics, self.keep_states = train_metrics, keep_states
        self.x = data.x_train.to(device, dtype)
        self.y = data.y_train.to(device)
        n_eval = train_eval_size or self.x.shape[0]
        self.x_eval, self.y_eval = self.x[:n_eval], self.y[:n_eval]
        self.x_val = None if data.x_val is None else data.x_val.to(device, dtype)
        self.y_val = None if data.y_val is None else data.y_val.to(device)
        self.n_inputs, self.n_classes = data.n_inputs, data.n_classes
        self.n_train = int(self.x.shape[0])
        # examples per evaluation pass: large on a GPU; on a CPU 200 keeps a pass's activations
        # in cache (measured fastest from 16 to 256 members of the book's net)
        self.eval_batch = min(
            eval_batch or (1000 if device.type == "cuda" else 200), self.x.shape[0]
        )
        self._members: dict[int, _Member] = {}
        self._groups: list[tuple[list[int], Group]] = []
        self._orders: dict[int, Tensor] = {}
        self._fresh: list[Group] = []  # groups built this round

    # -- membership --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._members)

    @property
    def keys(self) -> list[int]:
        return sorted(self._members)

    def add(self, key: int, spec: MemberSpec, state: MemberState | None = None) -> None:
        """A new member (from scratch, or continuing ``state``).

        An :class:`~caviar.errors.InvalidValue` if the member cannot train on this data (batch
        norm on a training set of one example) or ``state`` is not a state of this member in
        this data order and dtype (see :meth:`check`).
        """
        if key in self._members:
            raise ValueError(f"member {key} is in the pool already")
        self.check(spec, state)
        member = _Member(key, spec)
        if state is not None:
            member.epoch, member.batch, member.state = state.epoch, state.batch, state
        self._members[key] = member

    def check(self, spec: MemberSpec, state: MemberState | None = None) -> None:
        """An :class:`~caviar.errors.InvalidValue` unless ``spec`` can train here, continuing
        ``state`` exactly if one is given (see :meth:`MemberState.check_continues`)."""
        batch_bounds(self.n_train, spec.batch_size, batch_norm=spec.batch_norm)
        if state is not None:
            state.check_continues(
                spec,
                n_inputs=self.n_inputs,
                n_classes=self.n_classes,
                data_seed=self.data_seed,
                n_train=self.n_train,
                dtype=self.dtype,
            )

    def remove(self, key: int) -> MemberState:
        """Take member ``key`` out of the pool; returns its state (at its last epoch end)."""
        for keys, group in list(self._groups):
            if key in keys:
                self._dissolve(keys, group)  # its members' states, this one's included
        state = self._state(key)
        del self._members[key]
        return state

    def _dissolve(self, keys: list[int], group: Group) -> None:
        """Move the states of a group's members out of it, and drop the group."""
        for k, key in enumerate(keys):
            if key in self._members:
                m = self._members[key]
                m.state = self._take(group, k, m)
        self._groups = [(ks, g) for ks, g in self._groups if g is not group]

    def _state(self, key: int) -> MemberState:
        member = self._members[key]
        for keys, group in self._groups:
            if key in keys:
                return self._take(group, keys.index(key), member)
        if member.state is not None:
            return member.state
        group = Group(  # never trained: its initial state
            [member.spec], self.n_inputs, self.n_classes, device=self.device, dtype=self.dtype
        )
        return self._take(group, 0, member)

    def _take(self, group: Group, k: int, member: _Member) -> MemberState:
        """Member ``k`` of ``group`` as a state at ``member``'s position in this data order."""
        return group.member_state(
            k,
            epoch=member.epoch,
            batch=member.batch,
            data_seed=self.data_seed,
            n_train=self.n_train,
        )

    # -- grouping ----------------------------------------------------------------------------
    def partition(self) -> list[list[int]]:
        """Members by architecture class and start position, each class sorted by width and
        depth (so equal shapes form buckets) and cut into groups of at most ``max_group``."""
        classes: dict[tuple[object, ...], list[int]] = {}
        for key in sorted(self._members):
            m = self._members[key]
            classes.setdefault((*m.spec.group_key(), m.batch), []).append(key)
        groups: list[list[int]] = []
        for _, keys in sorted(classes.items(), key=lambda item: min(item[1])):
            # deepest first, equal shapes next to each other (one bucket, a batched product)
            keys.sort(key=lambda key: self._shape(key))
            size = self.max_group or len(keys)
            groups.extend(keys[i : i + size] for i in range(0, len(keys), size))
        return groups

    def _shape(self, key: int) -> tuple[int, int, int, int]:
        """Deepest first (each layer's activations then end at the last member that deep),
        then by width: equal shapes side by side."""
        spec = self._members[key].spec
        return -spec.n_layers, padded_width(spec.hidden_units), spec.hidden_units, key

    def _build(self, keys: list[int]) -> Group:
        members = [self._members[key] for key in keys]
        group = Group(
            [m.spec for m in members],
            self.n_inputs,
            self.n_classes,
            device=self.device,
            dtype=self.dtype,
            states=[m.state for m in members],
        )
        for m in members:
            m.state = None  # it lives in the group now
        return group

    def _regroup(self) -> None:
        """Rebuild the groups whose composition changed (members came, left or moved)."""
        wanted = self.partition()
        current = {tuple(keys): group for keys, group in self._groups}
        for keys, group in list(self._groups):
            if keys not in wanted:
                self._dissolve(keys, group)
        self._groups = [(keys, current.get(tuple(keys)) or self._build(keys)) for keys in wanted]
        self._fresh = [g for keys, g in self._groups if tuple(keys) not in current]

    # -- training ----------------------------------------------------------------------------
    def step(self, should_stop: Callable[[], bool] | None = None) -> RoundResult:
        """One round: an epoch for every member. ``should_stop`` is asked before every
        mini-batch; once it says yes, the round ends there (see :class:`RoundResult`)."""
        self._regroup()
        result = RoundResult()
        pending = list(self._groups)
        while pending:
            keys, group = pending.pop(0)
            snapshot = self._snapshot(keys, group)
            try:
                result.epochs.extend(self._epoch(keys, group, should_stop))
            except _Interrupted:
                result.interrupted = [key for ks, _ in [(keys, group), *pending] for key in ks]
                break
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not is_out_of_memory(error) or not snapshot:
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                # split the group in halves, each from the epoch's start, and retry at once:
                # nothing of the failed attempt reaches the caller
                del group
                self._groups = [(ks, g) for ks, g in self._groups if ks != keys]
                for key, state in zip(keys, snapshot, strict=True):
                    self._members[key].state = state
                half = len(keys) // 2
                self.max_group = half
                parts = [(part, self._build(part)) for part in (keys[:half], keys[half:])]
                self._groups.extend(parts)
                self._fresh.extend(g for _, g in parts)
                pending[:0] = parts
        result.epochs.sort(key=lambda e: e.key)
        leaving = [e.key for e in result.epochs if e.finished] + result.interrupted
        for keys, group in list(self._groups):
            if any(key in leaving for key in keys):
                self._dissolve(keys, group)
        for key in leaving:
            del self._members[key]
        return result

    def _snapshot(self, keys: list[int], group: Group) -> list[MemberState]:
        """The members' states at the start of the epoch, to retry it after running out of
        memory (a copy of the parameters: small next to an epoch's work)."""
        if len(keys) == 1 or group not in self._fresh:
            return []  # an unchanged group allocates what it did in its last epoch
        return [self._take(group, k, self._members[key]) for k, key in enumerate(keys)]

    def _order(self, epoch: int) -> Tensor:
        order = self._orders.get(epoch)
        if order is None:
            if len(self._orders) > 64:
                self._orders.clear()
            order = epoch_order(self.data_seed, epoch, self.x.shape[0]).to(self.device)
            self._orders[epoch] = order
        return order

    def _epoch(
        self, keys: list[int], group: Group, should_stop: Callable[[], bool] | None
    ) -> list[MemberEpoch]:
        """One epoch for every member of ``group``; their records."""
        started = time.perf_counter()
        members = [self._members[key] for key in keys]
        P = len(members)
        bounds = batch_bounds(self.x.shape[0], group.batch_size, batch_norm=group.batch_norm)
        start_batch = members[0].batch
        epochs = [m.epoch for m in members]
        orders = {e: self._order(e) for e in set(epochs)}
        lrs = [m.spec.lr_at(m.epoch) for m in members]
        loss_sum = torch.zeros(P, dtype=torch.float64, device=self.device)
        correct = torch.zeros(P, dtype=torch.int64, device=self.device)
        seen = 0
        for b in range(start_batch, len(bounds)):
            if should_stop is not None and should_stop():
                raise _Interrupted
            lo, hi = bounds[b]
            batch = {e: order[lo:hi] for e, order in orders.items()}
            xs_by_epoch = {e: self.x[index] for e, index in batch.items()}
            xs = [xs_by_epoch[e] for e in epochs]
            if len(orders) == 1:
                ys = self.y[batch[epochs[0]]]
            else:
                ys = torch.stack([self.y[batch[e]] for e in epochs])
            loss = group.train_step(xs, ys, lrs)
            if self.train_metrics == "pass":
                loss_sum += loss.detach().to(torch.float64) * (hi - lo)
                correct += group.last_correct
                seen += hi - lo
        if self.train_metrics == "pass":
            train_loss = loss_sum / max(seen, 1)
            train_acc = correct.to(torch.float64) / max(seen, 1)
        else:
            train_loss, train_acc = group.evaluate(self.x_eval, self.y_eval, self.eval_batch)
        if self.x_val is not None and self.y_val is not None:
            val_loss, val_acc = group.evaluate(self.x_val, self.y_val, self.eval_batch)
        else:
            val_loss = val_acc = torch.full_like(train_loss, float("nan"))
        host = [t.cpu().tolist() for t in (train_loss, train_acc, val_loss, val_acc)]
        seconds = time.perf_counter() - started
        out = []
        alive = group.alive  # one host copy
        for k, m in enumerate(members):
            if not (
                math.isfinite(host[0][k]) and (self.x_val is None or math.isfinite(host[2][k]))
            ):
                group.set_alive(k, False)  # e.g. running statistics that overflowed
                alive[k] = False
            m.epoch, m.batch = m.epoch + 1, 0
            diverged = not alive[k]
            record = EpochRecord(m.epoch, *(float(values[k]) for values in host))
            finished = diverged or m.epoch >= m.spec.epochs
            state = None
            if finished and self.keep_states:
                state = self._take(group, k, m)
            out.append(MemberEpoch(m.key, record, diverged, finished, seconds, state))
        return out

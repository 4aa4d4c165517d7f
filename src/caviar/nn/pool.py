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

from caviar.core.constraints import one_of
from caviar.core.records import EpochRecord
from caviar.nn.graphs import GraphedStep, StepGraph
from caviar.nn.group import Group
from caviar.nn.memory import is_out_of_memory
from caviar.nn.ragged import padded_width, slot_shape
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState
from caviar.nn.training_data import TrainingData, member_batches

TRAIN_METRICS = ("pass", "full")
#: while a group is built, ``should_stop`` is asked after every this many members (building a
#: member costs about 0.3 ms on a CPU, so a group of 10,000 stops within about 20 ms)
FILL_CHECK = 64
#: on a CPU a group holds at most this many members: each has its own products there, and
#: larger groups only make the shared passes (batch norm, activation, dropout) stream their
#: activations from memory (the realistic space, 1024 members, 2-core CPU: 0.667 s per
#: model-epoch in groups of 128, 0.678 in groups of 64, 0.716 in one group of 1024); a large
#: pool's groups are also allocated one at a time, each just before its epoch, so a time
#: budget stops between them
CPU_GROUP = 128


def _keys(item: _Slots | list[int]) -> list[int]:
    """The members of a group, or of one still to build."""
    return [key for _, key in item.live] if isinstance(item, _Slots) else list(item)


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
    """What a round produced: the epochs that completed, the members whose epoch was cut
    short by ``should_stop`` (they have left the pool; their partial epoch is discarded), the
    members ``lost`` (they have left the pool mid-epoch, their state gone: the caller trains
    them again from their seeds) and notes saying why."""

    epochs: list[MemberEpoch] = field(default_factory=list)
    interrupted: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(eq=False)
class _Slots:
    """A group in the pool, and the member in each of its slots (None: free).

    ``origins`` holds, for each slot filled since the group's last epoch ended, the state its
    member came with (None: from its seed): the group's epoch can be retried from them alone
    after the device runs out of memory, with no copy taken before the epoch."""

    group: Group
    keys: list[int | None]
    origins: dict[int, MemberState | None] = field(default_factory=dict)
    n_live: int = 0  # slots that hold a member

    @property
    def live(self) -> list[tuple[int, int]]:
        """(slot, key) of every member training here."""
        return [(slot, key) for slot, key in enumerate(self.keys) if key is not None]


@dataclass(eq=False)
class _Member:
    key: int
    spec: MemberSpec
    epoch: int = 0  # the next epoch to run ...
    batch: int = 0  # ... and the next mini-batch in it
    state: MemberState | None = None  # where it lives while not in a group
    home: _Slots | None = None  # the group it trains in ...
    slot: int = -1  # ... and its slot there


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
        vectorized: bool | None = None,
        compiled: bool | None = None,
        graphs: Callable[[], StepGraph] | None = None,
    ) -> None:
        """``vectorized``: the GPU code path (batched products over width classes, no host
        sync per step); ``compiled``: its weight update as one compiled kernel per bucket
        (:mod:`caviar.nn.fused`); each by default on a CUDA device only. ``graphs``: what the
        vectorized path records a group's steps with, to replay them (a CUDA graph; see
        :mod:`caviar.nn.graphs`); default none."""
        one_of(*TRAIN_METRICS).check(train_metrics, "Pool.train_metrics")
        self.vectorized = device.type == "cuda" if vectorized is None else vectorized
        self.graphs = graphs if self.vectorized else None
        self.compiled = self.vectorized and (
            device.type == "cuda" if compiled is None else compiled
        )
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
        self._groups: list[_Slots] = []
        self._orders: dict[int, Tensor] = {}

    # -- membership --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._members)

    @property
    def keys(self) -> list[int]:
        return sorted(self._members)

    def add(self, key: int, spec: MemberSpec, state: MemberState | None = None) -> None:
        """A new member (from scratch, or continuing ``state``).

        An :class:`~caviar.core.errors.InvalidValue` if the member cannot train on this data (batch
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
        """An :class:`~caviar.core.errors.InvalidValue` unless ``spec`` can train here, continuing
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
        """Take member ``key`` out of the pool; returns its state (at its last epoch end).

        Its slot is freed, not its group: the next member that fits takes the slot in place
        (see :meth:`_place`). O(1) in the pool's size."""
        state = self._state(key)
        self._vacate(self._members.pop(key))
        return state

    def _vacate(self, member: _Member) -> None:
        """Free ``member``'s slot; a group left empty is dropped (its memory with it)."""
        home = member.home
        if home is None:
            return
        home.keys[member.slot] = None
        home.n_live -= 1
        home.origins.pop(member.slot, None)
        home.group.set_active(member.slot, False)
        member.home, member.slot = None, -1
        if home.n_live == 0:
            self._groups.remove(home)

    def _state(self, key: int) -> MemberState:
        member = self._members[key]
        if member.home is not None:
            origin = member.home.origins.get(member.slot)
            if origin is not None:  # it has not trained since it came with this state
                return origin
            return self._take(member.home.group, member.slot, member)
        if member.state is not None:
            return member.state
        group = Group(  # never trained: its initial state
            [member.spec],
            self.n_inputs,
            self.n_classes,
            device=self.device,
            dtype=self.dtype,
            vectorized=self.vectorized,
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
    def partition(self, keys: list[int] | None = None) -> list[list[int]]:
        """How members (default: all) are grouped when groups are built for them: by
        architecture class and start position, each class sorted by width and depth (so equal
        shapes form buckets) and cut into groups of at most ``max_group``."""
        classes: dict[tuple[object, ...], list[int]] = {}
        for key in sorted(self._members if keys is None else keys):
            classes.setdefault(self._class(self._members[key]), []).append(key)
        groups: list[list[int]] = []
        cap = self.max_group or (None if self.vectorized else CPU_GROUP)
        for _, members in sorted(classes.items(), key=lambda item: min(item[1])):
            # deepest first, equal shapes next to each other (one bucket, a batched product)
            members.sort(key=lambda key: self._shape(key))
            size = cap or len(members)
            groups.extend(members[i : i + size] for i in range(0, len(members), size))
        return groups

    @staticmethod
    def _class(member: _Member) -> tuple[object, ...]:
        """Members that can share a group: one architecture class, at one mini-batch."""
        return (*member.spec.group_key(), member.batch)

    def _home_class(self, home: _Slots) -> tuple[object, ...]:
        """The class of a group's members (any one of them)."""
        key = next(key for key in home.keys if key is not None)
        return self._class(self._members[key])

    def _shape(self, key: int) -> tuple[int, int, int, int]:
        """Deepest first (each layer's activations then end at the last member that deep),
        then by width: equal shapes side by side."""
        spec = self._members[key].spec
        return -spec.n_layers, padded_width(spec.hidden_units), spec.hidden_units, key

    def _build(self, keys: list[int], should_stop: Callable[[], bool] | None = None) -> _Slots:
        """A group for ``keys``, its members filled one by one; :class:`_Interrupted` (and
        nothing built) once ``should_stop`` says so, asked every :data:`FILL_CHECK` members."""
        members = [self._members[key] for key in keys]
        group = Group(
            [m.spec for m in members],
            self.n_inputs,
            self.n_classes,
            device=self.device,
            dtype=self.dtype,
            vectorized=self.vectorized,
            compiled=self.compiled,
            fill=False,
        )
        for k, m in enumerate(members):
            if should_stop is not None and k % FILL_CHECK == FILL_CHECK - 1 and should_stop():
                raise _Interrupted
            group.fill(k, m.state)
        home = _Slots(group, list(keys), {k: m.state for k, m in enumerate(members)}, len(keys))
        for k, m in enumerate(members):
            m.home, m.slot, m.state = home, k, None  # it lives in the group now
        self._groups.append(home)
        return home

    def _regroup(self) -> list[list[int]]:
        """Give every new member a free slot that fits it (see :meth:`_place`) and keep the
        groups dense; returns the groups to build for the others (keys, built by the round)."""
        waiting = [m for m in self._members.values() if m.home is None]
        waiting = self._place(sorted(waiting, key=lambda m: m.key))
        # a group at most half full is rebuilt (its survivors move); where members of its class
        # wait for a new group, so is one smaller than what waits or than a quarter of the
        # class's largest group: a class keeps a few dense groups, not one per round
        by_class: dict[tuple[object, ...], int] = {}
        for m in waiting:
            by_class[self._class(m)] = by_class.get(self._class(m), 0) + 1
        classes = [(home, self._home_class(home)) for home in self._groups]
        largest: dict[tuple[object, ...], int] = {}
        for home, at in classes:
            largest[at] = max(largest.get(at, 0), home.n_live)
        for home, at in classes:
            sparse = 2 * home.n_live <= len(home.keys) and len(home.keys) > 1
            small = at in by_class and home.n_live < max(by_class[at], largest[at] // 4)
            if sparse or small:
                waiting.extend(self._dissolve(home))
        return self.partition([m.key for m in waiting]) if waiting else []

    def _place(self, waiting: list[_Member]) -> list[_Member]:
        """New members into free slots that fit them, in place: no group is rebuilt. A slot
        fits a member of its class and position, its depth and its width (the true width on
        the per-member path; on the batched one the width class, the slot's stored width
        holding the member's, the narrowest such first). Returns those that found none."""
        # (class, position, slot shape) -> stored width -> free slots, the first last
        free: dict[tuple[object, ...], dict[int, list[tuple[_Slots, int]]]] = {}
        for home in self._groups:
            if home.n_live == len(home.keys):
                continue
            at = self._home_class(home)
            group = home.group
            for slot in reversed(range(len(home.keys))):
                if home.keys[slot] is None:
                    shape = slot_shape(group.units[slot], group.depths[slot], self.vectorized)
                    widths = free.setdefault((*at, *shape), {})
                    widths.setdefault(group.layout.stored[slot], []).append((home, slot))
        if not free:
            return waiting
        left: list[_Member] = []
        for m in waiting:
            shape = slot_shape(m.spec.hidden_units, m.spec.n_layers, self.vectorized)
            widths = free.get((*self._class(m), *shape), {})
            wide_enough = [w for w, slots in widths.items() if slots and w >= m.spec.hidden_units]
            if not wide_enough:
                left.append(m)
                continue
            home, slot = widths[min(wide_enough)].pop()
            home.group.replace(slot, m.spec, m.state)
            home.keys[slot] = m.key
            home.n_live += 1
            home.origins[slot] = m.state
            m.home, m.slot, m.state = home, slot, None
        return left

    def _dissolve(self, home: _Slots) -> list[_Member]:
        """Move a group's members out of it (their states on the host, one copy per buffer
        on a GPU; a member placed since the last epoch keeps the state it came with) and drop
        the group."""
        members = [(slot, self._members[key]) for slot, key in home.live]
        trained = [(slot, m) for slot, m in members if slot not in home.origins]
        states = home.group.member_states(
            [(slot, m.epoch, m.batch) for slot, m in trained],
            data_seed=self.data_seed,
            n_train=self.n_train,
        )
        taken = {slot: state for (slot, _), state in zip(trained, states, strict=True)}
        for slot, m in members:
            m.state = home.origins[slot] if slot in home.origins else taken[slot]
            m.home, m.slot = None, -1
        self._groups.remove(home)
        return [m for _, m in members]

    # -- training ----------------------------------------------------------------------------
    def step(self, should_stop: Callable[[], bool] | None = None) -> RoundResult:
        """One round: an epoch for every member. ``should_stop`` is asked before every
        mini-batch, and while a new group is built; once it says yes, the round ends there
        (see :class:`RoundResult`). New groups are built one at a time, each just before its
        epoch, so a pool too large for the time left stops without building the rest."""
        result = RoundResult()
        builds = self._regroup()
        pending: list[_Slots | list[int]] = [*self._groups, *builds]
        while pending:
            item = pending.pop(0)
            try:
                if not isinstance(item, _Slots):
                    item = self._build(item, should_stop)  # from here on, the group built
                result.epochs.extend(self._epoch(item, should_stop))
            except _Interrupted:
                result.interrupted = [key for rest in [item, *pending] for key in _keys(rest)]
                break
            except (torch.OutOfMemoryError, RuntimeError) as error:
                if not is_out_of_memory(error):
                    raise
                pending[:0] = self._split(item, error, result)
        result.epochs.sort(key=lambda e: e.key)
        result.lost.sort()
        for key in [e.key for e in result.epochs if e.finished] + result.interrupted:
            self._vacate(self._members.pop(key))
        return result

    def _split(
        self, item: _Slots | list[int], error: BaseException, result: RoundResult
    ) -> list[list[int]]:
        """After running out of memory building ``item`` or in its epoch, at any mini-batch:
        groups are at most half as large from now on, and ``item``'s members go on.

        - Members that came with the state they have (a group not yet built, or none of whose
          members has trained since it came): two halves, each built anew from the epoch's
          start, returned to run at once; nothing of the failed attempt reaches the caller.
        - Members that have trained in the group: their epoch-start state is gone (no copy is
          taken before an epoch), so they leave as ``result.lost``, and their trials train
          again from their seeds, with the same results (a member's are its own).

        Re-raises ``error`` for a single member: nothing smaller can be tried."""
        keys = sorted(_keys(item), key=self._shape)
        if len(keys) < 2:
            raise error
        half = len(keys) // 2
        self.max_group = half if self.max_group is None else min(self.max_group, half)
        if isinstance(item, _Slots):
            retry = self._retryable(item)
            for slot, key in item.live:
                if retry:
                    self._members[key].state = item.origins[slot]
                    self._members[key].home = None
                else:
                    self._vacate(self._members.pop(key))
            if item in self._groups:
                self._groups.remove(item)
            if not retry:
                result.lost.extend(keys)
                result.notes.append(
                    f"caviar: the device ran out of memory in a group of {len(keys)} members "
                    f"mid-epoch; they train again from their seeds, in groups of at most {half}"
                )
                keys = []
        del item
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return [keys[:half], keys[half:]] if keys else []

    @staticmethod
    def _retryable(home: _Slots) -> bool:
        """Whether a failed epoch can start again from what the group's members came with:
        every member placed since the group last finished an epoch (and more than one)."""
        live = home.live
        return len(live) > 1 and all(slot in home.origins for slot, _ in live)

    def _order(self, epoch: int) -> Tensor:
        order = self._orders.get(epoch)
        if order is None:
            if len(self._orders) > 64:
                self._orders.clear()
            order = epoch_order(self.data_seed, epoch, self.x.shape[0]).to(self.device)
            self._orders[epoch] = order
        return order

    def _epoch(self, home: _Slots, should_stop: Callable[[], bool] | None) -> list[MemberEpoch]:
        """One epoch for every member of a group; their records. A free slot gets the data
        of the members beside it and a learning rate of 0 (it is not trained)."""
        started = time.perf_counter()
        group, live = home.group, home.live
        members = [self._members[key] for _, key in live]
        P = group.n_members
        bounds = batch_bounds(self.x.shape[0], group.batch_size, batch_norm=group.batch_norm)
        start_batch = members[0].batch
        epochs, lrs = [members[0].epoch] * P, [0.0] * P
        for (slot, _), m in zip(live, members, strict=True):
            epochs[slot], lrs[slot] = m.epoch, m.spec.lr_at(m.epoch)
        orders = {e: self._order(e) for e in set(epochs)}
        loss_sum = torch.zeros(P, dtype=torch.float64, device=self.device)
        correct = torch.zeros(P, dtype=torch.int64, device=self.device)
        seen = 0
        full = bounds[0][1] - bounds[0][0]  # a full mini-batch: the size a graph is made for
        graphed = None
        if self.graphs is not None:
            graphed = GraphedStep(group, self.x, self.y, orders, epochs, lrs, full, self.graphs)
        for b in range(start_batch, len(bounds)):
            if should_stop is not None and should_stop():
                raise _Interrupted
            lo, hi = bounds[b]
            if graphed is not None and hi - lo == full:
                loss, right = graphed(lo, hi)
            else:
                batch = {e: order[lo:hi] for e, order in orders.items()}
                xs, ys = member_batches(self.x, self.y, batch, epochs)
                loss = group.train_step(xs, ys, lrs)
                right = group.last_correct
            if self.train_metrics == "pass":
                loss_sum += loss.detach().to(torch.float64) * (hi - lo)
                correct += right
                seen += hi - lo
        if graphed is not None and graphed.eager:
            self.graphs = None  # recording failed (and said so): no more tries in this pool
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
        home.origins.clear()  # the epoch ran: from now on the group holds the only copy
        seconds = time.perf_counter() - started
        out = []
        alive = group.alive  # one host copy
        for (k, _), m in zip(live, members, strict=True):
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

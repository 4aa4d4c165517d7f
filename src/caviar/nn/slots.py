"""One member's place in a group: its slot's values read, written and refilled on their own.

A :class:`~caviar.nn.group.Group` keeps every member's parameters, optimizer state and
statistics in shared flat buffers (:mod:`caviar.nn.ragged`). This part of it touches one
member's entries only, so its cost does not grow with the group:

- a slot's first values: the member's initial weights from its own seed, or a saved state;
- a member's state, copied out in its own shapes (:class:`~caviar.nn.state.MemberState`), or
  loaded back, one view per tensor of that member (never every member's views);
- a slot freed when its member leaves (it stops training and moves by exactly nothing), and
  refilled in place by the next member of its shape, every per-member value rewritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from caviar.nn.optim import Optimizer
from caviar.nn.ragged import Ragged, slot_shape
from caviar.nn.randomness import dropout_keys, dropout_thresholds, initial_weights
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState


def weight_decays(spec: MemberSpec) -> tuple[float, float]:
    """A member's (coupled L2, decoupled) weight decay: its ``weight_decay`` in one, 0 in the
    other."""
    if spec.decoupled_weight_decay:
        return 0.0, spec.weight_decay
    return spec.weight_decay, 0.0


def keep_scale(spec: MemberSpec) -> float:
    """Inverted dropout's ``1 / (1 - rate)``, in float64: a group rounds it to its dtype once
    (a float32 division can differ in the last bit)."""
    return 1.0 / (1.0 - spec.dropout)


class _Buffers(NamedTuple):
    """A group's buffers that make up its members' states (on the device, or host copies)."""

    weights: Tensor
    aux: Tensor
    state_weights: list[Tensor]
    state_aux: list[Tensor]
    running_mean: Tensor
    running_var: Tensor
    steps: Tensor
    alive: Tensor


class GroupSlots:
    """The per-member half of :class:`~caviar.nn.group.Group` (see the module docstring); the
    group's constructor makes every buffer named here."""

    specs: list[MemberSpec]
    units: list[int]
    depths: list[int]
    layout: Ragged
    device: torch.device
    dtype: torch.dtype
    batch_norm: bool
    optimizer: Optimizer
    weights: Tensor
    aux: Tensor
    grad_weights: Tensor
    grad_aux: Tensor
    state_weights: list[Tensor]
    state_aux: list[Tensor]
    W: list[list[Tensor]]
    A: dict[str, Tensor]
    beta1: list[float]
    beta2: list[float]
    eps: list[float]
    l2: list[float]
    decoupled: list[float]
    _per_member: dict[str, Tensor]
    _per_member_typed: dict[str, Tensor]
    _aux_static: dict[str, Tensor]
    _thresholds: Tensor
    _scale: Tensor
    _pad_mask: Tensor | None
    _keys: Tensor
    _key_list: list[int]
    bn_momentum: Tensor
    running_mean: Tensor
    running_var: Tensor
    steps: list[int]
    steps_t: Tensor
    alive_t: Tensor
    active: list[bool]
    active_t: Tensor
    _n_free: int
    _dropouts: int
    any_dropout: bool

    @property
    def n_members(self) -> int:
        return len(self.specs)

    # -- initial values ----------------------------------------------------------------------
    def fill(self, k: int, state: MemberState | None = None) -> None:
        """Slot ``k``'s first values: its member's initial weights, or ``state``."""
        if state is None:
            self._initialise(k, self.specs[k])
        else:
            self.load_member(k, state)

    def _initialise(self, k: int, spec: MemberSpec) -> None:
        lay = self.layout
        weights = initial_weights(spec, lay.n_inputs, lay.n_classes)
        with torch.no_grad():
            for layer, w in enumerate(weights):
                self.W[k][layer][lay.weight_index(k, layer)].copy_(w)
            if self.batch_norm:
                for layer in range(spec.n_layers):
                    self.A[f"gamma{layer}"][lay.columns(k, real=True)] = 1.0

    @property
    def alive(self) -> list[bool]:
        """Which members have not diverged (a host copy)."""
        return [bool(a) for a in self.alive_t.tolist()]

    def set_alive(self, k: int, alive: bool) -> None:
        self.alive_t[k] = alive

    # -- slots -------------------------------------------------------------------------------
    def set_active(self, k: int, active: bool) -> None:
        """Whether slot ``k`` trains. A free slot (its member left the pool) moves by exactly
        nothing; on the per-member path (a CPU) its products are skipped too."""
        self._n_free += self.active[k] - active
        self.active[k] = active
        self.active_t[k] = active

    def fits(self, k: int, spec: MemberSpec) -> bool:
        """Whether ``spec`` can take slot ``k`` in place: the group's architecture class and the
        slot's own units and depth (its place in the layout)."""
        lay = self.layout
        mine = slot_shape(self.units[k], self.depths[k], lay.batched)
        shape = slot_shape(spec.hidden_units, spec.n_layers, lay.batched)
        return (
            spec.group_key() == self.specs[k].group_key()
            and shape == mine
            and spec.hidden_units <= lay.stored[k]
        )

    def replace(self, k: int, spec: MemberSpec, state: MemberState | None = None) -> None:
        """A new member in slot ``k``, in place: from its own seed, or continuing ``state``;
        of the slot's shape (:meth:`fits`: in the batched layout, any width of its class).

        Every per-member value of the slot is rewritten (hyperparameters, dropout key, the
        parameters, optimizer buffers, running statistics and step count), each in the slot's
        own entries: O(1) in the group's size, no rebuild. The member then computes exactly
        what it would in a group built for it (its entries are its own; see the module
        docstring)."""
        if not self.fits(k, spec):
            raise ValueError(
                f"slot {k} holds {self.layout.stored[k]} units in {self.depths[k]} layers of "
                f"{self.specs[k].group_key()}; got {spec.hidden_units} units in "
                f"{spec.n_layers} layers of {spec.group_key()}"
            )
        lay = self.layout
        old = self.specs[k]
        self.specs[k] = spec
        self.units[k] = lay.units[k] = spec.hidden_units
        self.beta1[k], self.beta2[k], self.eps[k] = spec.beta1, spec.beta2, spec.eps
        self.l2[k], self.decoupled[k] = weight_decays(spec)
        values = {
            "beta1": self.beta1[k],
            "beta2": self.beta2[k],
            "eps": self.eps[k],
            "l2": self.l2[k],
            "decoupled": self.decoupled[k],
        }
        aux = lay.member_aux(k)
        cols = lay.owned_columns(k)
        real = torch.zeros(cols.stop - cols.start, dtype=self.dtype, device=self.device)
        real[: spec.hidden_units] = 1.0
        rate = torch.tensor([spec.dropout], dtype=torch.float64)
        key = dropout_keys([spec.seed])
        with torch.no_grad():
            for name, value in values.items():
                self._per_member[name][k] = value
                self._per_member_typed[name][k] = value
            for name in ("beta1", "beta2", "eps"):
                for entries in aux:
                    self._aux_static[name][entries] = values[name]
            self._thresholds[cols] = dropout_thresholds(rate).to(self.device)
            inv_keep = torch.tensor(keep_scale(spec), dtype=self.dtype)  # rounded once
            self._scale[0, cols] = real * inv_keep.to(self.device)
            if self._pad_mask is not None:
                self._pad_mask[0, cols] = real
            self._keys[k] = key[0].to(self.device)
            self._key_list[k] = int(key[0])
            self.bn_momentum[cols] = spec.bn_momentum
            # a clean slot: no value of the member that left survives
            lo, hi = lay.segment(k)
            for buffer in (self.weights, self.grad_weights, *self.state_weights):
                buffer[lo:hi].zero_()
            for buffer in (self.aux, self.grad_aux, *self.state_aux):
                for entries in aux:
                    buffer[entries].zero_()
            self.running_mean[:, cols] = 0.0
            self.running_var[:, cols] = 1.0
            self.steps[k] = 0
            self.steps_t[k] = 0
            self.alive_t[k] = True
        self._dropouts += (spec.dropout > 0) - (old.dropout > 0)
        self.any_dropout = self._dropouts > 0
        self.set_active(k, True)
        self.fill(k, state)

    # -- member states -----------------------------------------------------------------------
    def _member_tensors(
        self, k: int, weights: Tensor, aux: Tensor
    ) -> dict[str, tuple[Tensor, tuple[slice, ...]]]:
        """Every parameter of member ``k`` as (padded view, index of its true shape)."""
        lay, C = self.layout, self.layout.n_classes
        L = self.depths[k]
        views = lay.member_weight_views(weights, k)
        named: dict[str, tuple[Tensor, tuple[slice, ...]]] = {}
        for layer, w in enumerate(views):
            named[f"W{layer}"] = (w, lay.weight_index(k, layer))
        a = lay.aux_views(aux)
        real = lay.columns(k, real=True)
        names = ("gamma", "beta") if self.batch_norm else ("b",)
        for layer in range(L):
            for name in names:
                named[f"{name}{layer}"] = (a[f"{name}{layer}"], (real,))
        named[f"b{L}"] = (a["b_out"][k], (slice(0, C),))
        return named

    def member_state(
        self,
        k: int,
        *,
        epoch: int,
        batch: int,
        data_seed: int | None = None,
        n_train: int | None = None,
    ) -> MemberState:
        """A copy of member ``k``'s training state, in its own shapes, on the CPU; at
        (``epoch``, ``batch``) of the data order of ``data_seed`` over ``n_train`` examples
        (the group does not know them: the pool does)."""
        return self._state_from(self._buffers(), k, epoch, batch, data_seed, n_train)

    def member_states(
        self,
        positions: Sequence[tuple[int, int, int]],
        *,
        data_seed: int | None = None,
        n_train: int | None = None,
        bulk: bool | None = None,
    ) -> list[MemberState]:
        """:meth:`member_state` of several members, ``positions`` (slot, epoch, batch) each.
        With ``bulk`` (default: on a GPU) every buffer comes to the host in one copy first,
        instead of a small synchronising copy per tensor per member."""
        bulk = self.device.type != "cpu" if bulk is None else bulk
        source = self._buffers(host=bulk)
        return [
            self._state_from(source, k, epoch, batch, data_seed, n_train)
            for k, epoch, batch in positions
        ]

    def _buffers(self, host: bool = False) -> _Buffers:
        """The group's buffers: as they are, or each copied to the host at once."""

        def move(t: Tensor) -> Tensor:
            return t.detach().cpu() if host else t

        return _Buffers(
            move(self.weights),
            move(self.aux),
            [move(t) for t in self.state_weights],
            [move(t) for t in self.state_aux],
            move(self.running_mean),
            move(self.running_var),
            move(self.steps_t),
            move(self.alive_t),
        )

    def _state_from(
        self,
        b: _Buffers,
        k: int,
        epoch: int,
        batch: int,
        data_seed: int | None,
        n_train: int | None,
    ) -> MemberState:
        """Member ``k``'s state read from ``b``, each tensor its own copy on the CPU."""

        def take(weights: Tensor, aux: Tensor) -> dict[str, Tensor]:
            return {
                name: view[index].detach().cpu().clone()
                for name, (view, index) in self._member_tensors(k, weights, aux).items()
            }

        optimizer = {
            slot: take(b.state_weights[i], b.state_aux[i])
            for i, slot in enumerate(self.optimizer.slots)
        }
        real = self.layout.columns(k, real=True)
        stats = range(self.depths[k]) if self.batch_norm else range(0)
        return MemberState(
            spec=self.specs[k],
            n_inputs=self.layout.n_inputs,
            n_classes=self.layout.n_classes,
            params=take(b.weights, b.aux),
            optimizer=optimizer,
            optimizer_steps=int(b.steps[k].item()),
            running_mean=[b.running_mean[i, real].cpu().clone() for i in stats],
            running_var=[b.running_var[i, real].cpu().clone() for i in stats],
            epoch=epoch,
            batch=batch,
            diverged=not bool(b.alive[k]),
            data_seed=data_seed,
            n_train=n_train,
        )

    def load_member(self, k: int, state: MemberState) -> None:
        """Put a saved state into slot ``k``: an InvalidValue naming the key unless it is a
        model of the member's spec for this data (see :meth:`MemberState.check_model`)."""
        lay = self.layout
        state.check_model(self.specs[k], lay.n_inputs, lay.n_classes)

        def put(weights: Tensor, aux: Tensor, values: dict[str, Tensor]) -> None:
            for name, (view, index) in self._member_tensors(k, weights, aux).items():
                view[index] = values[name].to(self.device, self.dtype)

        with torch.no_grad():
            put(self.weights, self.aux, state.params)
            for i, slot in enumerate(self.optimizer.slots):
                put(self.state_weights[i], self.state_aux[i], state.optimizer[slot])
            real = lay.columns(k, real=True)
            for i in range(len(state.running_mean)):
                self.running_mean[i, real] = state.running_mean[i].to(self.device, self.dtype)
                self.running_var[i, real] = state.running_var[i].to(self.device, self.dtype)
            self.steps[k] = state.optimizer_steps
            self.steps_t[k] = state.optimizer_steps
            self.alive_t[k] = not state.diverged

"""Where each parameter of each member lives in a group's three flat buffers.

A group of P members with L hidden layers, padded width H, D inputs and C classes keeps:

- ``w_in``   [D, P, H]: the first layer's weights, laid out so the whole population's first
  layer is ONE dense product ``x [B, D] @ w_in.view(D, P*H)`` (members share the mini-batch);
- ``w_rest`` [P, n_w]: the other weight matrices, W_1 .. W_{L-1} [H, H] and W_out [H, C];
- ``aux``    [P, n_a]: per hidden layer either (gamma, beta) or a bias, then b_out [C].

Weight decay applies to the first two buffers only. A member narrower than H owns the top-left
corner of each matrix; the rest is zero and stays zero (its units are masked in training).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

W_IN, W_REST, AUX = 0, 1, 2


@dataclass(frozen=True)
class Entry:
    """One named parameter: its buffer, offset and padded shape (member axis included)."""

    name: str
    layer: int
    buffer: int
    offset: int
    shape: tuple[int, ...]

    def view(self, buffers: list[Tensor]) -> Tensor:
        """The padded view of this parameter for every member."""
        if self.buffer == W_IN:
            return buffers[W_IN]
        size = 1
        for s in self.shape[1:]:
            size *= s
        flat = buffers[self.buffer][:, self.offset : self.offset + size]
        return flat.view(self.shape)


class Layout:
    """The named parameters of a group and their member-sized slices."""

    def __init__(
        self, n_members: int, n_inputs: int, width: int, n_layers: int, n_classes: int, bn: bool
    ) -> None:
        P, D, H, L, C = n_members, n_inputs, width, n_layers, n_classes
        self.n_members, self.n_inputs, self.width = P, D, H
        self.n_layers, self.n_classes, self.batch_norm = L, C, bn
        entries = [Entry("W0", 0, W_IN, 0, (D, P, H))]
        offset = 0
        for layer in range(1, L):
            entries.append(Entry(f"W{layer}", layer, W_REST, offset, (P, H, H)))
            offset += H * H
        entries.append(Entry(f"W{L}", L, W_REST, offset, (P, H, C)))
        self.n_rest = offset + H * C
        offset = 0
        for layer in range(L):
            names = ("gamma", "beta") if bn else ("b",)
            for name in names:
                entries.append(Entry(f"{name}{layer}", layer, AUX, offset, (P, H)))
                offset += H
        entries.append(Entry(f"b{L}", L, AUX, offset, (P, C)))
        self.n_aux = offset + C
        self.entries = {e.name: e for e in entries}

    def allocate(self, dtype: torch.dtype, device: torch.device) -> list[Tensor]:
        """Zeroed buffers ``[w_in, w_rest, aux]``."""
        P, D, H = self.n_members, self.n_inputs, self.width
        return [
            torch.zeros(D, P, H, dtype=dtype, device=device),
            torch.zeros(P, self.n_rest, dtype=dtype, device=device),
            torch.zeros(P, self.n_aux, dtype=dtype, device=device),
        ]

    def views(self, buffers: list[Tensor]) -> dict[str, Tensor]:
        return {name: entry.view(buffers) for name, entry in self.entries.items()}

    def member_index(self, name: str, k: int, units: int) -> tuple[slice | int, ...]:
        """The index of member ``k`` (``units`` wide) into the padded view of ``name``."""
        entry = self.entries[name]
        D, C = self.n_inputs, self.n_classes
        is_output = entry.layer == self.n_layers
        if entry.buffer == W_IN:
            return (slice(0, D), k, slice(0, units))
        if name.startswith("W"):
            cols = C if is_output else units
            return (k, slice(0, units), slice(0, cols))
        return (k, slice(0, C if is_output else units))

    def hyper_shape(self, buffer: int) -> tuple[int, ...]:
        """The shape a [P] hyperparameter takes to broadcast against ``buffer``."""
        return (1, self.n_members, 1) if buffer == W_IN else (self.n_members, 1)

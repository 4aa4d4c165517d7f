"""Where each parameter of each member of a group lives: a ragged layout, each member at its
own width.

A group of P members, member p with ``units[p]`` hidden units (H) in ``depths[p]`` hidden layers,
D inputs and C classes keeps two flat buffers:

- ``weights``: one contiguous segment per member, holding its W0 [D, H], W1 .. W_{L-1} [H, H]
  and W_L [H, C] in their true shapes, each starting at a multiple of 16 entries (the gaps hold
  zeros). Products read them in place; the optimizer updates a segment on its own, in
  cache-sized pieces;
- ``aux``: per hidden layer (gamma, beta) under batch norm, or a bias, each [S] with the
  members' columns side by side, so batch norm is one kernel over activations [B, S]; then the
  output biases, one row of 32 per member. Members of different depths share the group: layer
  l's activations are only as wide as the last member deeper than l needs (``widths[l]``; the
  pool puts the deepest members first), and in them a shallower member's columns hold zeros
  that nothing reads.

In activations [B, S] member p owns ``padded[p]`` columns: its H rounded up to a multiple of
32, and S itself is rounded up to a multiple of 32 times the CPU thread count. Why: vectorized
CPU kernels treat entries that do not fill a whole block (two AVX-512 registers, 32 floats) in
a scalar tail whose rounding can differ from the vector body, and a multi-threaded kernel cuts
its range into one piece per thread. With these sizes no member's entry ever falls in a tail,
alone or in any group, so its results are bitwise the same. Products use the true widths only
(strided views), so the padding costs no FLOPs; padded columns hold zeros and are never read
by a product.

With ``batched`` (on a GPU, where one kernel per member would be too many launches), members of
one *width class* (their width rounded up to a multiple of 32) and depth that sit next to each
other form a bucket: each member's matrices and columns are stored at the bucket's widest true
width Hb, zeros outside its own units, so the bucket's matrices are one strided [n, Hb, Hb] view,
for one batched product. A realistic pool (widths 32..256, depths 1..4) then has at most 32
buckets instead of one per distinct width, for about 10 % more FLOPs than the true shapes, and
the book's net (all 100 wide) none; no bitwise claim is made there, so columns need no 32-wide
alignment. The padded units stay exactly
zero: their weights, gamma and beta start at 0 and their gradients are 0 (see
:class:`~caviar.nn.group.Group`). On a CPU every member is its own bucket, stored at its true
width: a batched product does not give bitwise the results of the products one by one there
(measured), and the per-member products cost only the Python calls.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch import Tensor

#: a member's columns, and an output-bias row, are rounded up to a multiple of this
ALIGN = 32
#: every weight matrix starts at a multiple of this many entries (64 bytes in float32): the
#: CPU's matrix-product kernels round differently when their output is not so aligned (measured)
MATRIX_ALIGN = 16


def padded_width(units: int, align: int = ALIGN) -> int:
    return -(-units // align) * align


def group_align(threads: int | None = None) -> int:
    """What S is rounded up to: 32 times the thread count (rounded up to a power of two), so a
    kernel's per-thread pieces are whole blocks."""
    threads = threads or torch.get_num_threads()
    return ALIGN * (1 << max(0, threads - 1).bit_length())


def slot_shape(units: int, depth: int, batched: bool) -> tuple[int, int]:
    """The shape of the slot a member of ``units`` in ``depth`` layers takes: (its width class,
    depth) when ``batched`` (a multiple of 32: members of one class share a batched product),
    else (its true units, depth). A member can take a freed slot of its shape whose stored
    width is at least its units."""
    return (padded_width(units) if batched else units), depth


@dataclass(frozen=True)
class Bucket:
    """Members ``first .. stop-1``, all stored ``units`` wide (``width`` with padding) and
    ``depth`` hidden layers deep, whose columns of [B, S] start at ``start``."""

    first: int
    stop: int
    units: int
    width: int
    start: int
    depth: int

    @property
    def size(self) -> int:
        return self.stop - self.first

    def view(self, activations: Tensor) -> Tensor:
        """The bucket's true columns of ``activations`` [B, S] as [n, B, units]."""
        B = activations.shape[0]
        block = activations[:, self.start : self.start + self.size * self.width]
        return block.view(B, self.size, self.width)[:, :, : self.units].transpose(0, 1)


class Ragged:
    """The ragged layout of a group's parameters (see the module docstring)."""

    def __init__(
        self,
        units: list[int],
        n_inputs: int,
        n_classes: int,
        depths: list[int] | int,
        batch_norm: bool,
        align: int | None = None,
        batched: bool = False,
    ) -> None:
        self.batched = batched
        self.units = list(units)  # each member's true units
        self.depths = [depths] * len(units) if isinstance(depths, int) else list(depths)
        # the width each member's matrices are stored (and multiplied) at: its own, or on the
        # batched path the widest of its bucket; and the columns it owns in [B, S]
        self.stored = self._stored_widths() if batched else list(self.units)
        self.padded = list(self.stored) if batched else [padded_width(u) for u in units]
        n_layers = max(self.depths)
        self.n_inputs, self.n_classes, self.n_layers = n_inputs, n_classes, n_layers
        self.batch_norm = batch_norm
        self.offsets = [0, *itertools.accumulate(self.padded)][: len(units)]
        whole = align or group_align()
        self.S = padded_width(sum(self.padded), whole)
        # each layer's activations end with the last member that deep (members sorted deepest
        # first make that a short prefix), rounded up as S is
        ends = list(zip(self.offsets, self.padded, self.depths, strict=True))
        self.widths = [
            padded_width(max(o + w for o, w, d in ends if d > layer), whole)
            for layer in range(n_layers)
        ]
        self.segment_sizes = [
            sum(padded_width(r * c, MATRIX_ALIGN) for r, c in self._matrix_shapes(H, d))
            for H, d in zip(self.stored, self.depths, strict=True)
        ]
        self.segment_starts = [0, *itertools.accumulate(self.segment_sizes)][: len(units)]
        self.n_weights = sum(self.segment_sizes)
        self.aux_names = [
            f"{name}{layer}"
            for layer in range(n_layers)
            for name in (("gamma", "beta") if batch_norm else ("b",))
        ]
        self.bias_row = padded_width(n_classes)
        self.n_aux = padded_width(len(self.aux_names) * self.S + len(units) * self.bias_row, whole)
        self.buckets = self._buckets(batched)
        self.by_depth: dict[int, list[Bucket]] = {}  # the buckets whose last layer is each
        for bucket in self.buckets:
            self.by_depth.setdefault(bucket.depth, []).append(bucket)
        # whether the products of layer l write every column of its activations (then they
        # need no zeroing first)
        self.covered = [
            sum(b.size * b.units for b in self.buckets if b.depth > layer) == self.widths[layer]
            for layer in range(n_layers)
        ]

    def _runs(self, batched: bool) -> list[tuple[int, int]]:
        """[first, stop) of each bucket: consecutive members of one slot shape when batched,
        else one member each."""
        shape = [slot_shape(u, d, batched) for u, d in zip(self.units, self.depths, strict=True)]
        runs, first = [], 0
        for k in range(1, len(self.units) + 1):
            if k == len(self.units) or not batched or shape[k] != shape[first]:
                runs.append((first, k))
                first = k
        return runs

    def _stored_widths(self) -> list[int]:
        """Each member's stored width on the batched path: the widest true width of its bucket
        (members of one width class share one product shape, so none pays for the class's
        rounding beyond what its bucket needs)."""
        stored = []
        for first, stop in self._runs(True):
            stored.extend([max(self.units[first:stop])] * (stop - first))
        return stored

    def _buckets(self, batched: bool) -> list[Bucket]:
        return [
            Bucket(
                first,
                stop,
                self.stored[first],
                self.padded[first],
                self.offsets[first],
                self.depths[first],
            )
            for first, stop in self._runs(batched)
        ]

    # -- members -----------------------------------------------------------------------------
    def columns(self, k: int, *, real: bool = False) -> slice:
        """Member ``k``'s columns of an activation [B, S] (its true units only, if ``real``)."""
        start = self.offsets[k]
        return slice(start, start + (self.units[k] if real else self.padded[k]))

    def product_columns(self, k: int) -> slice:
        """The columns member ``k``'s products write: its stored width."""
        start = self.offsets[k]
        return slice(start, start + self.stored[k])

    def weight_index(self, k: int, layer: int) -> tuple[slice, slice]:
        """Member ``k``'s true-shaped part of its stored layer-``layer`` matrix."""
        units = slice(0, self.units[k])
        rows = slice(None) if layer == 0 else units
        cols = slice(None) if layer == self.depths[k] else units
        return rows, cols

    def column_real(self) -> Tensor:
        """Whether each column of [B, S] is a true unit of its member: bool [S]."""
        real = torch.zeros(self.S, dtype=torch.bool)
        for k, units in enumerate(self.units):
            real[self.offsets[k] : self.offsets[k] + units] = True
        return real

    def segment(self, k: int) -> tuple[int, int]:
        """``[lo, hi)`` of member ``k``'s weights in the weights buffer."""
        lo = self.segment_starts[k]
        return lo, lo + self.segment_sizes[k]

    def _matrix_shapes(self, units: int, depth: int) -> list[tuple[int, int]]:
        D, C = self.n_inputs, self.n_classes
        return [(D, units), *[(units, units)] * (depth - 1), (units, C)]

    def weight_views(self, buffer: Tensor) -> list[list[Tensor]]:
        """Per member, its depth + 1 weight matrices, views into ``buffer``."""
        return [self.member_weight_views(buffer, k) for k in range(len(self.units))]

    def member_weight_views(self, buffer: Tensor, k: int) -> list[Tensor]:
        """Member ``k``'s depth + 1 weight matrices, views into ``buffer`` (O(1) in P)."""
        offset = self.segment_starts[k]
        mats = []
        for rows, cols in self._matrix_shapes(self.stored[k], self.depths[k]):
            mats.append(buffer[offset : offset + rows * cols].view(rows, cols))
            offset += padded_width(rows * cols, MATRIX_ALIGN)
        return mats

    def member_aux(self, k: int) -> list[slice]:
        """Every entry of the aux buffer member ``k`` owns (its padded columns of each
        per-layer parameter, and its output-bias row; the last member also owns the tails, as
        :meth:`aux_member` says), as slices of the flat buffer."""
        S, cols = self.S, self.owned_columns(k)
        per_layer = [
            slice(i * S + cols.start, i * S + cols.stop) for i in range(len(self.aux_names))
        ]
        row = len(self.aux_names) * S + k * self.bias_row
        last = k == len(self.units) - 1
        return [*per_layer, slice(row, self.n_aux if last else row + self.bias_row)]

    def owned_columns(self, k: int) -> slice:
        """The columns of [B, S] member ``k`` owns: its padded ones, and for the last member
        the group's tail too (as :meth:`column_member` says)."""
        start = self.offsets[k]
        return slice(start, self.S if k == len(self.units) - 1 else start + self.padded[k])

    def bucket_view(self, buffer: Tensor, bucket: Bucket, layer: int) -> Tensor:
        """The bucket's layer-``layer`` matrices as one [n, rows, cols] view (layer ``depth`` is
        the output layer)."""
        shapes = self._matrix_shapes(bucket.units, bucket.depth)
        rows, cols = shapes[layer]
        start = self.segment_starts[bucket.first] + sum(
            padded_width(r * c, MATRIX_ALIGN) for r, c in shapes[:layer]
        )
        stride = self.segment_sizes[bucket.first]
        return buffer.as_strided((bucket.size, rows, cols), (stride, cols, 1), start)

    def aux_views(self, buffer: Tensor) -> dict[str, Tensor]:
        """Name -> [S] view of each per-layer aux parameter; ``b_out`` -> [P, C]."""
        S, P = self.S, len(self.units)
        views = {name: buffer[i * S : (i + 1) * S] for i, name in enumerate(self.aux_names)}
        start = len(self.aux_names) * S
        rows = buffer[start : start + P * self.bias_row].view(P, self.bias_row)
        views["b_out"] = rows[:, : self.n_classes]
        return views

    # -- per-entry member indices ------------------------------------------------------------
    def column_member(self) -> Tensor:
        """The member owning each column of [B, S] (the last one owns the group's tail):
        int64 [S]."""
        owner = torch.repeat_interleave(
            torch.arange(len(self.units)), torch.tensor(self.padded, dtype=torch.int64)
        )
        tail = torch.full((self.S - owner.shape[0],), len(self.units) - 1, dtype=torch.int64)
        return torch.cat([owner, tail])

    def aux_member(self) -> Tensor:
        """The member owning each entry of the aux buffer: int64 [n_aux]."""
        per_layer = self.column_member().repeat(len(self.aux_names))
        rows = torch.arange(len(self.units)).repeat_interleave(self.bias_row)
        used = per_layer.shape[0] + rows.shape[0]
        tail = torch.full((self.n_aux - used,), len(self.units) - 1, dtype=torch.int64)
        return torch.cat([per_layer, rows, tail])

"""Every random number a member sees, as a pure function of its seed and a counter.

This is what makes a member's result independent of the population it trains in (packing
invariance) and makes a run restartable from any epoch:

- initial weights: drawn per member from its own generator, in the member's own shapes, in
  float64 on the CPU, whatever the device, dtype or padding of the group;
- dropout masks: a counter-based 32-bit hash of (member seed, step, layer, example, unit),
  evaluated for the whole population in a few int32 tensor operations, with no generator
  state to carry;
- data order: one permutation per epoch from the population's data seed, shared by all members
  so comparisons between configurations are paired.

The plain reference implementation calls the same functions, so the equivalence tests compare
training, not random draws.
"""

from __future__ import annotations

import torch

from caviar.core.errors import InvalidValue
from caviar.core.seeding import DATA_ORDER, DROPOUT, INIT, derive_seed
from caviar.nn.spec import MemberSpec

_M32 = 0xFFFFFFFF


def _mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """``(h * c) mod 2**32`` for 32-bit values in int64, without overflowing int64."""
    lo, hi = h & 0xFFFF, h >> 16
    return (lo * c + ((hi * (c & 0xFFFF)) << 16)) & _M32


def _fmix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's finaliser: a bijection on 32-bit values that mixes every input bit."""
    h = h ^ (h >> 16)
    h = _mul32(h, 0x85EBCA6B)
    h = h ^ (h >> 13)
    h = _mul32(h, 0xC2B2AE35)
    return h ^ (h >> 16)


def mix32(h: torch.Tensor) -> torch.Tensor:
    """MurmurHash3's finaliser of 32-bit values held in int64 (elementwise; works under
    ``vmap``): what other rooms key their own random numbers with."""
    return _fmix32(h)


def mul32(h: torch.Tensor, c: int) -> torch.Tensor:
    """``(h * c) mod 2**32`` for 32-bit values held in int64."""
    return _mul32(h, c)


def signed32(h: torch.Tensor) -> torch.Tensor:
    """32-bit values held in int64 as int32 (two's complement): the fast pass's input."""
    return _signed32(h)


def index_keys(n: int, device: torch.device) -> torch.Tensor:
    """The 32-bit key of each index 0..n-1 (int32 [n], cached): the engine's row keys, which
    other rooms key their entries with."""
    return _row_keys(n, device)


def kept(h: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Whether each entry is kept, for ``h`` = an entry's key plus its owner's (int32, wrapping;
    overwritten):
    a multiply-xorshift-multiply round (lowbias32's constants) in int32, then the threshold
    (:func:`dropout_thresholds`). Seven cheap passes; the high bits the threshold reads depend
    on every bit of both keys."""
    h *= 0x7FEB352D  # ``h`` is scratch: the round runs in place
    h ^= (h >> 15) & 0x1FFFF  # a logical shift: int32's >> is arithmetic
    h *= 0x846CA68B - 2**32
    return h >= thresholds


def _fmix32_int(h: int) -> int:
    """:func:`_fmix32` of one Python integer."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _M32
    return h ^ (h >> 16)


def dropout_keys(seeds: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Per-member 32-bit dropout keys, shape [P] (int64)."""
    return torch.tensor([derive_seed(s, DROPOUT) & _M32 for s in seeds], device=device)


def _signed32(h: torch.Tensor) -> torch.Tensor:
    """32-bit values held in int64 as int32 (two's complement), for the fast 2-D pass."""
    return torch.where(h >= 2**31, h - 2**32, h).to(torch.int32)


def dropout_thresholds(rate: torch.Tensor) -> torch.Tensor:
    """Per-entry keep thresholds (int32) for drop rates ``rate``: a unit is kept when its
    hash, read as a signed 32-bit integer, is at least the threshold, so with probability
    ``1 - rate`` (a rate of 0 gives -2**31: always kept)."""
    scaled = torch.round(rate.to(torch.float64) * 2**32).to(torch.int64) - 2**31
    return scaled.clamp(-(2**31), 2**31 - 1).to(torch.int32)


def column_keys(
    keys: torch.Tensor, steps: list[int] | torch.Tensor, layer: int, units: list[int]
) -> torch.Tensor:
    """The 32-bit key of every column of a layer, members side by side: int32 [sum(units)].

    Member p (key ``keys[p]``, at optimizer step ``steps[p]``) owns ``units[p]`` columns; the
    key of its unit j depends on (key, step, layer, j) only. This part is small ([columns]);
    the per-example part is :func:`dropout_keep_columns`.
    """
    member, unit = column_layout(units, keys.device)
    return column_keys_from(keys, steps, layer, member, unit)


def column_layout(units: list[int], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """For columns laid out as ``units[p]`` per member: each column's member (int64 [S]) and
    the 32-bit key of its unit index (int32 [S]), computed once per group."""
    counts = torch.tensor(units, dtype=torch.int64)
    member = torch.repeat_interleave(torch.arange(len(units)), counts)
    starts = torch.cumsum(counts, 0) - counts
    unit = torch.arange(member.shape[0]) - torch.repeat_interleave(starts, counts)
    unit_key = _signed32(_fmix32((unit * 0x85EBCA77 + 0x3C6EF372) & _M32))
    return member.to(device), unit_key.to(device)


def _salt(step: int, layer: int) -> int:
    return _fmix32_int((step * 0x9E3779B1 + layer * 0x7F4A7C15 + 0x6A09E667) & _M32)


def column_keys_from(
    keys: torch.Tensor | list[int],
    steps: list[int] | torch.Tensor,
    layer: int,
    member: torch.Tensor,
    unit_key: torch.Tensor,
) -> torch.Tensor:
    """:func:`column_keys` with the column layout given (see :func:`column_layout`); ``steps``
    may be a device tensor, so a GPU step needs no copy from the host.

    A member's key for this (step, layer) is a full hash of (seed, step, layer), [P]; a
    column's key is that XOR its unit's key: two cheap passes over [S]. The per-example mixing
    in :func:`dropout_keep_columns` makes the bits of the final hash depend on all of them.
    """
    if isinstance(steps, torch.Tensor):
        assert isinstance(keys, torch.Tensor)  # keys on the device, beside the steps
        counter = steps.to(torch.int64) * 0x9E3779B1 + (layer * 0x7F4A7C15 + 0x6A09E667)
        base = _signed32(_fmix32(keys ^ _fmix32(counter & _M32)))  # [P], on the device
    else:  # mixed on the host (keys as a list: nothing read back): one small copy
        host = keys if isinstance(keys, list) else keys.tolist()
        mixed = [_fmix32_int(k ^ _salt(step, layer)) for k, step in zip(host, steps, strict=True)]
        signed = [m - 2**32 if m >= 2**31 else m for m in mixed]
        base = torch.tensor(signed, dtype=torch.int32).to(member.device)
    return base[member] ^ unit_key


_ROW_KEYS: dict[tuple[int, torch.device], torch.Tensor] = {}


def _row_keys(batch: int, device: torch.device) -> torch.Tensor:
    """The 32-bit key of each example row 0..batch-1 (int32 [B]), cached."""
    cached = _ROW_KEYS.get((batch, device))
    if cached is None:
        rows = torch.arange(batch, device=device, dtype=torch.int64) * 0x9E3779B9 & _M32
        cached = _ROW_KEYS.setdefault((batch, device), _signed32(_fmix32(rows)))
    return cached


def dropout_keep_columns(
    columns: torch.Tensor, thresholds: torch.Tensor, batch: int
) -> torch.Tensor:
    """Keep mask bool [B, S] for example rows 0..B-1 and the given column keys.

    The hash of (row, column) is a multiply-xorshift-multiply round (lowbias32's constants)
    over ``row_key + column_key``, computed in int32 with wrapping multiplication: seven cheap
    passes over [B, S], where 64-bit arithmetic needed twenty-five. The row keys are full
    hashes, and the rounds make the high bits, which the threshold reads, depend on every bit
    of both keys.
    """
    h = _row_keys(batch, columns.device)[:, None] + columns[None, :]  # [B, S], wraps
    return kept(h, thresholds[None, :])


def dropout_keep(
    keys: torch.Tensor,
    rate: torch.Tensor,
    step: int | list[int],
    layer: int,
    batch: int,
    units: int,
) -> torch.Tensor:
    """Inverted-dropout keep mask for each (member, example, unit): bool [P, batch, units].

    Unit j of example b is kept with probability ``1 - rate[p]``; the mask depends only on
    (keys[p], step, layer, b, j): never on P, on any padding, or on the other members. ``step``
    is one for all members or one per member.
    """
    P = keys.shape[0]
    steps = [step] * P if isinstance(step, int) else list(step)
    columns = column_keys(keys, steps, layer, [units] * P)
    thresholds = torch.repeat_interleave(dropout_thresholds(rate).to(keys.device), units)
    keep = dropout_keep_columns(columns, thresholds, batch)  # [B, P * units]
    return keep.view(batch, P, units).transpose(0, 1)  # [P, B, units]


def initial_weights(spec: MemberSpec, n_inputs: int, n_classes: int) -> list[torch.Tensor]:
    """The member's initial weight matrices ``[fan_in, fan_out]``, float64 on the CPU."""
    gen = torch.Generator().manual_seed(derive_seed(spec.seed, INIT))
    sizes = spec.layer_sizes(n_inputs, n_classes)
    stds = spec.init_stds(n_inputs, n_classes)
    return [
        torch.randn(fan_in, fan_out, generator=gen, dtype=torch.float64) * std
        for fan_in, fan_out, std in zip(sizes[:-1], sizes[1:], stds, strict=True)
    ]


def epoch_order(data_seed: int, epoch: int, n: int) -> torch.Tensor:
    """The order in which the ``n`` training examples are visited in ``epoch`` (CPU, int64)."""
    gen = torch.Generator().manual_seed(derive_seed(data_seed, DATA_ORDER, epoch))
    return torch.randperm(n, generator=gen)


def batch_bounds(n: int, batch_size: int, *, batch_norm: bool = False) -> list[tuple[int, int]]:
    """``[start, stop)`` of each mini-batch of an epoch over ``n`` examples.

    The last batch may be smaller. With batch norm a last batch of a single example is dropped
    (as ``DataLoader(drop_last=...)`` would, but only then): batch statistics need two examples,
    and torch's ``BatchNorm1d`` refuses a batch of one in training. A training set of a single
    example has no batch of two to keep: an :class:`~caviar.core.errors.InvalidValue` naming
    the sizes.
    """
    if batch_norm and n < 2:
        raise InvalidValue(
            "batch_norm",
            f"needs at least 2 training examples (batch statistics need two per mini-batch), "
            f"got a training set of {n} with batch_size {batch_size}",
        )
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if batch_norm and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
    return bounds

"""Every random number a member sees, as a pure function of its seed and a counter.

This is what makes a member's result independent of the population it trains in (packing
invariance) and makes a run restartable from any epoch:

- initial weights: drawn per member from its own generator, in the member's own shapes, in
  float64 on the CPU, whatever the device, dtype or padding of the group;
- dropout masks: a counter-based hash of (member seed, step, layer, example, unit), evaluated
  for the whole population in a few tensor operations, with no generator state to carry;
- data order: one permutation per epoch from the population's data seed, shared by all members
  so comparisons between configurations are paired.

The plain reference implementation calls the same functions, so the equivalence tests compare
training, not random draws.
"""

from __future__ import annotations

import torch

from caviar.nn.spec import MemberSpec
from caviar.seeding import DATA_ORDER, DROPOUT, INIT, derive_seed

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


def dropout_keep(
    keys: torch.Tensor, rate: torch.Tensor, step: int, layer: int, batch: int, units: int
) -> torch.Tensor:
    """Inverted-dropout keep mask for each (member, example, unit): bool [P, batch, units].

    Unit j of example b is kept when a 32-bit hash of (keys[p], step, layer, b, j) is at least
    ``rate[p] * 2**32``, so it is kept with probability ``1 - rate[p]``. The mask depends only
    on those numbers: never on P, on the padded width of the group, or on the other members.
    """
    device = keys.device
    salt = _fmix32_int((step * 0x9E3779B1 + layer * 0x7F4A7C15 + 0x6A09E667) & _M32)
    base = _fmix32(keys ^ salt)  # [P]; the salt is mixed on the host: no copy to the device
    rows = torch.arange(batch, device=device) * 0x9E3779B9 & _M32  # [B]
    h = _fmix32((rows[:, None] + base[None, :]) & _M32)  # [B, P]
    cols = torch.arange(units, device=device) * 0x85EBCA77 & _M32  # [H]
    h = _fmix32(h[:, :, None] ^ cols[None, None, :])  # [B, P, H]
    threshold = torch.round(rate.to(torch.float64) * 2**32).to(torch.int64)  # [P]
    keep = h >= threshold.view(1, -1, 1)  # [B, P, H], the layout the engine computes in
    return keep.transpose(0, 1)  # [P, B, H]


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

    The last batch may be smaller; with batch norm a last batch of a single example is dropped,
    because batch statistics need two.
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    if batch_norm and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds.pop()
    return bounds

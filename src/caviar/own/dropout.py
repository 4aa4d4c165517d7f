"""Dropout with each member's own randomness, the same alone or in a population.

Under ``vmap`` torch's dropout draws one mask for the whole stack of members, so a member's
mask would depend on its neighbours. Here a mask is a pure function of the member's key, its
step and the dropout site: every element's keep/drop decision hashes those and the element's
index (the engine's round, :func:`caviar.nn.randomness.kept`) against ``p``. The population
swaps each ``nn.Dropout`` (and ``Dropout1d/2d/3d``, which drop whole channels) of its template
for a :class:`KeyedDropout` whose key, step and rate are buffers, stacked per member like any
other buffer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from caviar.core.seeding import DROPOUT, derive_seed
from caviar.nn.randomness import (
    dropout_thresholds,
    index_keys,
    kept,
    mix32,
    mul32,
    signed32,
)

_M32 = 0xFFFFFFFF
#: the dropout modules swapped, and how many leading dims of the input one decision covers
#: (0: every element; 2: every channel of every example, as ``Dropout1d/2d/3d``)
SWAPPED: dict[type[nn.Module], int] = {
    nn.Dropout: 0,
    nn.Dropout1d: 2,
    nn.Dropout2d: 2,
    nn.Dropout3d: 2,
}


def member_key(seed: int) -> int:
    """A member's 32-bit dropout key, from its seed."""
    return derive_seed(seed, DROPOUT) & _M32


def entry_hashes(key: Tensor, step: Tensor, site: int, shape: torch.Size, channels: int) -> Tensor:
    """Each entry's 32-bit key plus the member's, for an input of ``shape`` (int32,
    broadcastable to it): an entry is kept when :func:`caviar.nn.randomness.kept` says so (the
    engine's own round). A pure function of the member's ``key``, its optimizer ``step`` (0-d
    int64 tensors, batched under ``vmap``), the dropout ``site`` (its index in the module) and
    each entry's index; with ``channels`` = 2 one decision covers a whole channel of an example
    (``shape[:2]``). The entries' keys are cached: a step mixes only the member's key, on 0-d
    tensors, before one int32 round over the entries."""
    decided = shape if channels == 0 else shape[:2]
    h = mix32(key ^ mul32((step + 1) & _M32, 0x9E3779B1))
    h = signed32(mix32(h ^ ((site * 0x85EBCA77 + 0x27D4EB2F) & _M32)))
    entries = index_keys(decided.numel(), key.device).view(decided) + h
    if channels:
        entries = entries.view(*decided, *([1] * (len(shape) - 2)))
    return entries


class KeyedDropout(nn.Module):
    """Inverted dropout whose mask depends only on the member (see the module docstring).

    ``key``, ``step`` and ``p`` are buffers: a population stacks them per member, so each
    member has its own rate too. In eval mode it passes its input through."""

    key: Tensor
    step: Tensor
    p: Tensor

    def __init__(self, p: float, site: int, channels: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.site, self.channels = site, channels
        self.register_buffer("key", torch.zeros((), dtype=torch.int64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("p", torch.tensor(float(p), dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        hashes = entry_hashes(self.key, self.step, self.site, x.shape, self.channels)
        keep = kept(hashes, dropout_thresholds(self.p))
        # p = 1 drops everything: zeros, as torch's dropout gives (not 0 / 0)
        scale = torch.where(self.p < 1.0, 1.0 / (1.0 - self.p), torch.zeros_like(self.p))
        return x * keep.to(x.dtype) * scale

    def extra_repr(self) -> str:
        return f"site={self.site}, channels={self.channels}"


def dropout_sites(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """The module's dropout modules caviar swaps, by name, in a fixed order (their sites)."""
    return [(name, m) for name, m in module.named_modules() if name and type(m) in SWAPPED]


def swap_dropout(module: nn.Module, dtype: torch.dtype) -> list[str]:
    """Replace ``module``'s dropouts by :class:`KeyedDropout` in place; their names in site
    order."""
    names = []
    for site, (name, old) in enumerate(dropout_sites(module)):
        parent_name, _, child = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        rate = float(getattr(old, "p", 0.0))
        setattr(parent, child, KeyedDropout(rate, site, SWAPPED[type(old)], dtype))
        names.append(name)
    return names

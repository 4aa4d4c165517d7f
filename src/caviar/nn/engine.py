"""What a search loop drives: an :class:`Engine` of members, one epoch each a round.

A local :class:`~caviar.nn.Pool` is one; pools on several Ray workers
(:class:`caviar.distributed.SpreadPool`) are a :class:`Spread`, whose rounds may also report
members lost with a worker that died (:class:`SpreadRound`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from caviar.nn import MemberSpec
from caviar.nn.pool import RoundResult

DTYPES = {"float32": torch.float32, "float64": torch.float64}

#: members in the pool when the config leaves ``search.population`` at 0: enough on a CPU to
#: share every kernel but the products (measured: 8 to 32 members run at the same speed per
#: model-epoch), while a trial still finishes early in the budget; a GPU needs many more to fill
DEFAULT_SLOTS = {"cpu": 16, "cuda": 1024}


class Engine(Protocol):
    """What the loop drives: members added and removed between rounds, one epoch each a round."""

    eval_batch: int

    def __len__(self) -> int: ...

    @property
    def keys(self) -> list[int]: ...

    def add(self, key: int, spec: MemberSpec) -> None: ...

    def remove(self, key: int) -> object: ...

    def step(self, should_stop: Callable[[], bool] | None = None) -> RoundResult: ...


class Spread(Engine, Protocol):
    """An engine over several workers: what the loop needs to know of them."""

    budget: int  # bytes a member may take on any worker
    default_slots: int  # the pool's slots when ``search.population`` is 0
    threads: int  # CPU threads a worker trains with

    def placement(self, key: int) -> dict[str, Any]: ...  # where member ``key`` trained


@dataclass
class SpreadRound(RoundResult):
    """A round over several workers: its ``lost`` members are also those lost with a worker
    that died (their partial epochs are gone), and its notes say what happened to the
    workers."""

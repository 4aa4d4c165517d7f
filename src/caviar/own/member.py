"""One candidate of the user's module between rounds: its hyperparameters, its tensors (named as
the module names them) and how far it has trained. A group stacks members for an epoch and
hands them back (:mod:`caviar.own.group`); a finished member is what a study keeps.
"""

from __future__ import annotations

import io
import os
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor, nn

from caviar.core.atomic import write_atomically
from caviar.own.dropout import dropout_sites, member_key
from caviar.own.optim import OptimizerState


@dataclass
class ModuleMember:
    """A member: ``params`` and ``buffers`` unstacked, on the pool's device.

    ``buffers`` also hold each dropout site's key and rate (``<site>.key``, ``<site>.p``), so
    a stack of members carries each one's own randomness and rate. ``steps`` counts its
    optimizer steps (its dropout masks are keyed by it), ``done`` its epochs."""

    key: int
    seed: int
    epochs: int
    batch_size: int
    optimizer: str
    settings: dict[str, Any]
    params: dict[str, Tensor]
    buffers: dict[str, Tensor]
    signature: Hashable
    optimizer_state: OptimizerState | None = None
    #: the names of its dropout sites (their keys and rates are in ``buffers``)
    sites: tuple[str, ...] = ()
    #: its parameters with ``requires_grad=False``: carried, never trained (as torch.optim
    #: leaves a parameter without a gradient)
    frozen: tuple[str, ...] = ()
    #: the module's ``state_dict`` keys (no non-persistent buffer), each with the name its
    #: tensor has here (a tied weight's second name maps to its first)
    state_names: dict[str, str] = field(default_factory=dict)
    done: int = 0
    steps: int = 0
    diverged: bool = False

    @classmethod
    def from_module(
        cls,
        key: int,
        module: nn.Module,
        *,
        seed: int,
        epochs: int,
        batch_size: int,
        optimizer: str,
        settings: Mapping[str, Any],
        signature: Hashable,
    ) -> ModuleMember:
        """A new member from the module its builder made (its tensors copied)."""
        params = {n: p.detach().clone() for n, p in module.named_parameters()}
        buffers = {n: b.detach().clone() for n, b in module.named_buffers()}
        dtype = next(iter(params.values())).dtype if params else torch.get_default_dtype()
        device = next(iter(params.values())).device if params else torch.device("cpu")
        sites = dropout_sites(module)
        for name, dropout in sites:
            rate = float(getattr(dropout, "p", 0.0))
            buffers[f"{name}.key"] = torch.tensor(member_key(seed), device=device)
            buffers[f"{name}.p"] = torch.tensor(rate, dtype=dtype, device=device)
        return cls(
            key,
            seed,
            epochs,
            batch_size,
            optimizer,
            dict(settings),
            params,
            buffers,
            signature,
            sites=tuple(name for name, _ in sites),
            frozen=tuple(n for n, p in module.named_parameters() if not p.requires_grad),
            state_names=state_names(module),
        )

    @property
    def finished(self) -> bool:
        return self.diverged or self.done >= self.epochs

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.params.values())

    def kept(self, params: Mapping[str, Any], model: str | None) -> KeptModule:
        """What a study keeps of it: the module's ``state_dict`` (no dropout keys), the
        hyperparameters that build it again and the builder's reference."""
        tensors = {**self.params, **self.buffers}
        state = {key: tensors[name] for key, name in self.state_names.items()}
        return KeptModule(
            model=model,
            params=dict(params),
            state_dict={n: t.detach().cpu() for n, t in state.items()},
        )


def state_names(module: nn.Module) -> dict[str, str]:
    """Each key of ``module.state_dict()`` and the name its tensor has among the module's
    deduplicated parameters and buffers (tied weights share one; non-persistent buffers are
    not in the state)."""
    first: dict[int, str] = {}
    for name, t in (*module.named_parameters(), *module.named_buffers()):
        first.setdefault(id(t), name)
    every = (
        *module.named_parameters(remove_duplicate=False),
        *module.named_buffers(remove_duplicate=False),
    )
    named = {name: first[id(t)] for name, t in every}
    return {key: named[key] for key in module.state_dict() if key in named}


@dataclass(frozen=True)
class KeptModule:
    """A finished member of a user's module, as kept beside the study: rebuilt by calling the
    builder ``model`` (``"package.module:build"``, None when it was a script's function) with
    ``params`` and loading ``state_dict``."""

    model: str | None
    params: dict[str, Any]
    state_dict: dict[str, Tensor]
    preprocessing: dict[str, Any] | None = field(default=None)
    kind: str = "own-module"

    def with_preprocessing(self, preprocessing: dict[str, Any] | None) -> KeptModule:
        return replace(self, preprocessing=preprocessing)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Written whole or not at all (:func:`~caviar.core.atomic.write_atomically`)."""
        buffer = io.BytesIO()
        torch.save(
            {
                "kind": self.kind,
                "model": self.model,
                "params": self.params,
                "state_dict": self.state_dict,
                "preprocessing": self.preprocessing,
            },
            buffer,
        )
        write_atomically(path, buffer.getvalue())

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> KeptModule:
        return cls(
            model=payload["model"],
            params=dict(payload["params"]),
            state_dict=dict(payload["state_dict"]),
            preprocessing=payload.get("preprocessing"),
        )

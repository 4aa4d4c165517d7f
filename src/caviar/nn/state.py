"""A member's whole training state, in the member's own shapes, independent of any group.

Restoring a state and training on gives exactly what training straight through gives: weights,
optimizer state (and step count), batch-norm running statistics, whether it diverged, and its
position in the data order (the next epoch and mini-batch). No random-generator state is needed:
every random number a member sees is a function of its seed and that position
(:mod:`caviar.nn.randomness`).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from caviar.nn.spec import MemberSpec


@dataclass
class MemberState:
    """Everything needed to continue training one member exactly."""

    spec: MemberSpec
    n_inputs: int
    n_classes: int
    params: dict[str, Tensor]  # "W0".."WL" [fan_in, fan_out]; "b*" or "gamma*"/"beta*"
    optimizer: dict[str, dict[str, Tensor]]  # slot ("exp_avg", ...) -> param name -> tensor
    optimizer_steps: int
    running_mean: list[Tensor] = field(default_factory=list)  # per hidden layer [units]
    running_var: list[Tensor] = field(default_factory=list)
    epoch: int = 0  # position: the next epoch to run ...
    batch: int = 0  # ... and the next mini-batch in it
    diverged: bool = False

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state with ``torch.save`` (tensors on the CPU)."""
        payload: dict[str, Any] = {
            "spec": asdict(self.spec),
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "params": {k: v.cpu() for k, v in self.params.items()},
            "optimizer": {
                slot: {k: v.cpu() for k, v in by_name.items()}
                for slot, by_name in self.optimizer.items()
            },
            "optimizer_steps": self.optimizer_steps,
            "running_mean": [t.cpu() for t in self.running_mean],
            "running_var": [t.cpu() for t in self.running_var],
            "epoch": self.epoch,
            "batch": self.batch,
            "diverged": self.diverged,
        }
        torch.save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MemberState:
        payload = torch.load(path, weights_only=True)
        payload["spec"] = MemberSpec(**payload["spec"])
        return cls(**payload)

"""A kept member as a ``torch.nn.Module`` ready for inference.

Why the model computes with :mod:`caviar.nn.functional` and the member's own tensors ("W0" is
[fan_in, fan_out]) rather than ``nn.Linear``: it is the engine's forward pass, one member at a
time, so nothing is transposed or renamed on the way, and the tests can check it against an
independent ``nn.Linear`` / ``nn.BatchNorm1d`` net.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from caviar.core.errors import InvalidValue
from caviar.nn import functional as F
from caviar.nn.state import MemberState


class CaviarModel(nn.Module):
    """A trained member, ready for inference: ``x`` [B, D] -> logits [B, C].

    Per hidden layer ``z = h @ W`` (+ ``b``, or batch norm with the running statistics, as
    ``nn.BatchNorm1d`` in eval mode), then the activation; dropout is a training device and is
    left out. Parameters and buffers keep the member's names ("W0", "b0" or "gamma0"/"beta0",
    "running_mean0", ...), so ``state_dict()`` reads like the :class:`MemberState`.
    """

    def __init__(self, state: MemberState, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        owner = "CaviarModel"
        if state.diverged:
            raise InvalidValue(owner, "the member diverged during training; it is not a model")
        try:
            state.check_shapes()
        except InvalidValue as e:
            raise InvalidValue(owner, f"the state does not fit its spec: {e.reason}") from None
        n_stats = state.spec.n_layers if state.spec.batch_norm else 0
        self.spec: dict[str, Any] = state.spec.to_dict()
        self.n_inputs = state.n_inputs
        self.n_classes = state.n_classes
        for name, tensor in state.params.items():
            self.register_parameter(name, nn.Parameter(tensor.detach().to("cpu", dtype).clone()))
        for layer in range(n_stats):
            mean, var = state.running_mean[layer], state.running_var[layer]
            self.register_buffer(f"running_mean{layer}", mean.to("cpu", dtype).clone())
            self.register_buffer(f"running_var{layer}", var.to("cpu", dtype).clone())
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Logits [B, C] of inputs [B, D] (in the model's dtype and device)."""
        spec, p = self.spec, self.get_parameter
        h = x
        for layer in range(spec["n_layers"]):
            if spec["batch_norm"]:
                z = F.batch_norm_eval(
                    h @ p(f"W{layer}"),  # [B, H]
                    p(f"gamma{layer}"),
                    p(f"beta{layer}"),
                    self.get_buffer(f"running_mean{layer}"),
                    self.get_buffer(f"running_var{layer}"),
                    spec["bn_eps"],
                )
            else:
                z = torch.addmm(p(f"b{layer}"), h, p(f"W{layer}"))  # [B, H]
            h = F.activation(spec["activation"], z)
        last = spec["n_layers"]
        return torch.addmm(p(f"b{last}"), h, p(f"W{last}"))  # [B, C]

    def _inputs(self, x: np.ndarray | Tensor) -> Tensor:
        return as_inputs("CaviarModel", x, self.n_inputs, self.get_parameter("W0"))

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray | Tensor) -> Tensor:
        """Class probabilities [B, C] (softmax of the logits) of a numpy array or tensor."""
        return torch.softmax(self(self._inputs(x)), dim=1)

    @torch.no_grad()
    def predict(self, x: np.ndarray | Tensor) -> Tensor:
        """The most likely class [B] (int64) of each row of a numpy array or tensor."""
        logits: Tensor = self(self._inputs(x))
        return logits.argmax(dim=1)

    def describe(self) -> dict[str, Any]:
        """What the model is, as JSON-ready data (stored inside an exported program)."""
        return {
            "spec": self.spec,
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "dtype": str(self.get_parameter("W0").dtype).removeprefix("torch."),
        }


def as_inputs(owner: str, x: np.ndarray | Tensor, n_inputs: int, like: Tensor) -> Tensor:
    """``x`` as a [batch, n_inputs] tensor on the device and in the dtype of ``like``, or an
    error naming ``owner``."""
    t = torch.as_tensor(x if isinstance(x, Tensor) else np.asarray(x))
    if t.ndim != 2 or t.shape[1] != n_inputs:
        raise InvalidValue(owner, f"inputs must be [batch, {n_inputs}], got {list(t.shape)}")
    return t.to(like.device, like.dtype)

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
from caviar.data.preprocessing import Preprocessing
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
        #: what was done to raw examples before training (None: not recorded, a model kept by
        #: caviar before 0.x recorded it, or a state from elsewhere)
        self.preprocessing = Preprocessing.from_dict(state.preprocessing)
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

    def _inputs(self, x: np.ndarray | Tensor, raw: bool) -> Tensor:
        weight = self.get_parameter("W0")
        return as_inputs("CaviarModel", x, self.n_inputs, weight, self.preprocessing, raw)

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray | Tensor, *, raw: bool = False) -> Tensor:
        """Class probabilities [B, C] (softmax of the logits) of a numpy array or tensor:
        inputs as the model was trained on them, or raw examples with ``raw=True`` (see
        :meth:`predict`)."""
        return torch.softmax(self(self._inputs(x, raw)), dim=1)

    @torch.no_grad()
    def predict(self, x: np.ndarray | Tensor, *, raw: bool = False) -> Tensor:
        """The most likely class [B] (int64) of each row of a numpy array or tensor.

        ``x`` is as the model was trained on it ([B, D], MNIST's pixels / 255 as caviar loads
        them); with ``raw=True`` it is raw examples (``[B, 28, 28]`` or ``[B, 784]`` bytes),
        and the model applies its recorded preprocessing first. Inputs beyond the range the
        model was trained on (raw pixels given without ``raw=True``) are refused, naming the
        preprocessing: a model fed them would answer, wrongly."""
        logits: Tensor = self(self._inputs(x, raw))
        return logits.argmax(dim=1)

    def describe(self) -> dict[str, Any]:
        """What the model is, as JSON-ready data (stored inside an exported program)."""
        return {
            "spec": self.spec,
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "dtype": str(self.get_parameter("W0").dtype).removeprefix("torch."),
            "inputs": input_words(self.n_inputs, self.preprocessing),
            "preprocessing": None if self.preprocessing is None else self.preprocessing.to_dict(),
        }


def input_words(n_inputs: int, preprocessing: Preprocessing | None) -> str:
    """What a model's forward (and an exported program) takes, in words."""
    if preprocessing is None:
        return f"[B, {n_inputs}] as in training; the preprocessing was not recorded"
    return (
        f"[B, {n_inputs}] after the preprocessing ({preprocessing.words()}); "
        "predict(x, raw=True) applies it to raw examples, an exported program does not"
    )


def as_inputs(
    owner: str,
    x: np.ndarray | Tensor,
    n_inputs: int,
    like: Tensor,
    preprocessing: Preprocessing | None = None,
    raw: bool = False,
) -> Tensor:
    """``x`` as a [batch, n_inputs] tensor on the device and in the dtype of ``like``: raw
    examples preprocessed (``raw``), or inputs checked against the range the model was trained
    on; or an error naming ``owner``."""
    t = torch.as_tensor(x if isinstance(x, Tensor) else np.asarray(x))
    if raw:
        if preprocessing is None:
            raise InvalidValue(
                owner,
                "raw=True needs the preprocessing the model was trained with, and this model "
                "did not record it (kept by an older caviar): give inputs as it was trained on",
            )
        t = preprocessing.apply(t, owner)
    if t.ndim != 2 or t.shape[1] != n_inputs:
        hint = ""
        if preprocessing is not None and list(t.shape[1:]) == list(preprocessing.input_shape):
            hint = f"; raw examples of shape {list(preprocessing.input_shape)} need raw=True"
        raise InvalidValue(owner, f"inputs must be [batch, {n_inputs}], got {list(t.shape)}{hint}")
    span = None if raw or preprocessing is None else preprocessing.trained_range
    if preprocessing is not None and span is not None and t.numel():
        low, high = float(t.min()), float(t.max())
        slack = 1e-6 * max(1.0, abs(span[1]))
        if low < span[0] - slack or high > span[1] + slack:
            raise InvalidValue(
                owner,
                f"inputs reach [{low:g}, {high:g}], beyond [{span[0]:g}, {span[1]:g}], the range "
                f"the model was trained on ({preprocessing.words()}); pass raw=True to apply "
                "that preprocessing, or apply it yourself",
            )
    return t.to(like.device, like.dtype)

"""What the export tests share: their data (Gaussian blobs) and their independent oracle, a kept
member rebuilt by hand from torch.nn."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from caviar.nn import MemberState, TrainingData


def blobs(seed: int) -> TrainingData:
    """Three Gaussian blobs in 5 dimensions: 150 training and 60 validation examples."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(3, 5))
    y = rng.integers(0, 3, size=210)
    x = centres[y] + rng.normal(0.0, 1.5, size=(210, 5))
    return TrainingData.from_arrays(x[:150], y[:150], x[150:], y[150:], n_classes=3)


def torch_nn_oracle(state: MemberState) -> nn.Sequential:
    """The member rebuilt by hand from torch.nn's own layers, in float64 and eval mode."""
    spec, p = state.spec, state.params
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}[spec.activation]
    layers: list[nn.Module] = []
    with torch.no_grad():
        for layer in range(spec.n_layers + 1):
            w = p[f"W{layer}"]  # [fan_in, fan_out]
            linear = nn.Linear(*w.shape, bias=f"b{layer}" in p, dtype=torch.float64)
            linear.weight.copy_(w.t())
            if linear.bias is not None:
                linear.bias.copy_(p[f"b{layer}"])
            layers.append(linear)
            if layer == spec.n_layers:
                break
            if spec.batch_norm:
                norm = nn.BatchNorm1d(w.shape[1], eps=spec.bn_eps, dtype=torch.float64)
                norm.weight.copy_(p[f"gamma{layer}"])
                norm.bias.copy_(p[f"beta{layer}"])
                norm.running_mean.copy_(state.running_mean[layer])
                norm.running_var.copy_(state.running_var[layer])
                layers.append(norm)
            layers.append(act())
    return nn.Sequential(*layers).eval()

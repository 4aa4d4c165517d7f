"""The deliberately plain implementation: one model at a time, torch.nn and torch.optim.

It is the oracle the population engine is tested against in float64. It shares only the random
draws with the engine (initial weights, dropout masks and data order, from
:mod:`caviar.nn.randomness`), so the tests compare training, not random numbers. Everything else
is torch's own: ``nn.Linear``, ``nn.BatchNorm1d``, ``F.cross_entropy``, autograd and
``torch.optim``. It is also the "plain per-model PyTorch loop" the benchmark compares against.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from caviar.core.records import EpochRecord
from caviar.nn.population import MemberResult, TrainingData
from caviar.nn.randomness import (
    batch_bounds,
    dropout_keep,
    dropout_keys,
    epoch_order,
    initial_weights,
)
from caviar.nn.spec import MemberSpec

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


class ReferenceNet(nn.Module):
    """Linear (no bias under batch norm) -> [BatchNorm1d] -> activation -> dropout, L times,
    then Linear to the classes."""

    def __init__(
        self, spec: MemberSpec, n_inputs: int, n_classes: int, dtype: torch.dtype = torch.float64
    ) -> None:
        super().__init__()
        self.spec = spec
        sizes = spec.layer_sizes(n_inputs, n_classes)
        self.linears = nn.ModuleList(
            nn.Linear(a, b, bias=not spec.batch_norm or i == spec.n_layers, dtype=dtype)
            for i, (a, b) in enumerate(itertools.pairwise(sizes))
        )
        self.norms = nn.ModuleList(
            nn.BatchNorm1d(
                spec.hidden_units, eps=spec.bn_eps, momentum=1.0 - spec.bn_momentum, dtype=dtype
            )
            for _ in range(spec.n_layers if spec.batch_norm else 0)
        )
        self.act = _ACTIVATIONS[spec.activation]()
        with torch.no_grad():
            for linear, w in zip(
                self.linears, initial_weights(spec, n_inputs, n_classes), strict=True
            ):
                assert isinstance(linear, nn.Linear)
                linear.weight.copy_(w.t())
                if linear.bias is not None:
                    linear.bias.zero_()
        self._keys = dropout_keys([spec.seed])
        self._rate = torch.tensor([spec.dropout], dtype=torch.float64)

    def forward(self, x: Tensor, step: int | None = None) -> Tensor:
        """``step`` (mini-batches since epoch 0) keys the dropout masks while training."""
        h = x
        for layer in range(self.spec.n_layers):
            z = self.linears[layer](h)
            if self.spec.batch_norm:
                z = self.norms[layer](z)
            h = self.act(z)
            if self.training and self.spec.dropout > 0:
                if step is None:
                    raise ValueError("ReferenceNet: training with dropout needs the step number")
                keys, rate = self._keys.to(h.device), self._rate.to(h.device)
                keep = dropout_keep(keys, rate, step, layer, h.shape[0], h.shape[1])[0]
                h = h * keep.to(h.dtype) / (1.0 - self.spec.dropout)  # inverted dropout
        logits: Tensor = self.linears[-1](h)
        return logits


def make_optimizer(model: ReferenceNet) -> torch.optim.Optimizer:
    """The torch.optim optimizer for the spec; L2 on weight matrices only."""
    spec = model.spec
    weights = [lin.weight for lin in model.linears]
    others = [p for n, p in model.named_parameters() if not n.endswith("weight") or "norms" in n]
    coupled = 0.0 if spec.decoupled_weight_decay else spec.weight_decay
    groups = [{"params": weights, "weight_decay": coupled}, {"params": others, "weight_decay": 0.0}]
    if spec.optimizer == "adam" and spec.decoupled_weight_decay:
        groups[0]["weight_decay"] = spec.weight_decay
        return torch.optim.AdamW(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps)
    if spec.optimizer == "adam":
        return torch.optim.Adam(groups, lr=spec.lr, betas=(spec.beta1, spec.beta2), eps=spec.eps)
    if spec.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=spec.lr, alpha=spec.beta2, eps=spec.eps)
    if spec.optimizer == "momentum":
        # The course's momentum is an average, v = beta v + (1 - beta) g, starting from v = 0:
        # torch's SGD with dampening = momentum, once its buffer starts at zero, not at g.
        opt = torch.optim.SGD(groups, lr=spec.lr, momentum=spec.beta1, dampening=spec.beta1)
        for p in model.parameters():
            opt.state[p]["momentum_buffer"] = torch.zeros_like(p)
        return opt
    return torch.optim.SGD(groups, lr=spec.lr)


@torch.no_grad()
def evaluate(model: ReferenceNet, x: Tensor, y: Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in eval mode."""
    model.eval()
    logits = model(x)
    loss = F.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).double().mean().item()
    model.train()
    return loss, accuracy


def train_reference(
    spec: MemberSpec,
    data: TrainingData,
    *,
    data_seed: int = 0,
    dtype: torch.dtype = torch.float64,
    device: str | torch.device = "cpu",
    train_eval_size: int | None = None,
    train_metrics: str = "pass",
) -> tuple[MemberResult, ReferenceNet]:
    """Train one member the plain way; its result and its trained model.

    Training loss and accuracy are the mean over the epoch's mini-batches in training mode
    (``"pass"``), or an eval-mode pass over the first ``train_eval_size`` examples (``"full"``).
    """
    model = ReferenceNet(spec, data.n_inputs, data.n_classes, dtype).to(device)
    optimizer = make_optimizer(model)
    x, y = data.x_train.to(device, dtype), data.y_train.to(device)
    n_eval = train_eval_size or x.shape[0]
    x_val = None if data.x_val is None else data.x_val.to(device, dtype)
    y_val = None if data.y_val is None else data.y_val.to(device)
    bounds = batch_bounds(x.shape[0], spec.batch_size, batch_norm=spec.batch_norm)
    result = MemberResult(0, spec)
    model.train()
    for epoch in range(spec.epochs):
        lr = spec.lr_at(epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = epoch_order(data_seed, epoch, x.shape[0]).to(device)
        loss_sum, correct, seen = 0.0, 0, 0
        for b, (lo, hi) in enumerate(bounds):
            index = order[lo:hi]
            logits = model(x[index], step=epoch * len(bounds) + b)
            loss = F.cross_entropy(logits, y[index])
            loss_sum += loss.item() * (hi - lo)
            correct += int((logits.argmax(dim=1) == y[index]).sum())
            seen += hi - lo
            if not math.isfinite(loss.item()):
                result.diverged = True
                break
            optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            if spec.decoupled_weight_decay and spec.optimizer != "adam":
                with torch.no_grad():
                    for lin in model.linears:
                        assert isinstance(lin, nn.Linear)
                        lin.weight.mul_(1.0 - lr * spec.weight_decay)
            optimizer.step()
        if train_metrics == "full":
            train = evaluate(model, x[:n_eval], y[:n_eval])
        else:
            train = (loss_sum / seen, correct / seen)
        val = (
            evaluate(model, x_val, y_val)
            if x_val is not None and y_val is not None
            else (
                math.nan,
                math.nan,
            )
        )
        result.curve.append(EpochRecord(epoch + 1, train[0], train[1], val[0], val[1]))
        if result.diverged or not math.isfinite(train[0]):
            result.diverged, result.diverged_epoch = True, epoch + 1
            break
    return result, model

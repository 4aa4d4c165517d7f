"""The book's training loop ("Deep Learning from Scratch", ch. 6) in plain torch, members
stacked along a first axis and trained in lockstep.

What makes it the book's way, as in ``../shared/reference/book-ch6-results.md``:

1. plain SGD; each iteration draws 100 examples WITH replacement (``np.random.choice``), and an
   "epoch" is ``N / 100`` iterations;
2. dropout is not inverted: units are kept with probability ``1 - r`` in training and every
   output is scaled by ``1 - r`` at test time;
3. batch norm: eps 1e-6, biased batch variance, running averages ``0.9 * running + 0.1 * batch``
   that start at zero (no bias correction);
4. weight decay ``0.5 * lam * sum(W**2)`` on every weight matrix, the output layer's included;
5. after every epoch: accuracy over the whole training set and the whole test set, test mode.

The initial weights are the engine's (:func:`caviar.nn.randomness.initial_weights`), so the two
ways differ only in how they train. Gradients come from autograd over the members' summed
losses (each member's loss depends only on its own parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from caviar.experiments.curves import Curves
from caviar.nn import MemberSpec
from caviar.nn.randomness import initial_weights

BN_EPS = 1e-6
BN_MOMENTUM = 0.9


class BookNets:
    """P nets of one architecture: weights [P, fan_in, fan_out], biases [P, 1, fan_out]."""

    def __init__(self, specs: Sequence[MemberSpec], n_inputs: int, n_classes: int) -> None:
        first = specs[0]
        if any(s.layer_sizes(1, 1) != first.layer_sizes(1, 1) for s in specs) or any(
            s.batch_norm != first.batch_norm for s in specs
        ):
            raise ValueError("the book's loop stacks members of one architecture only")
        self.bn, self.L = first.batch_norm, first.n_layers
        weights = [initial_weights(s, n_inputs, n_classes) for s in specs]
        self.W = [torch.stack([w[i] for w in weights]).requires_grad_() for i in range(self.L + 1)]
        sizes = first.layer_sizes(n_inputs, n_classes)
        P = len(specs)
        self.b = [torch.zeros(P, 1, n, dtype=torch.float64, requires_grad=True) for n in sizes[1:]]
        H = sizes[1:-1]
        self.gamma = [torch.ones(P, 1, n, dtype=torch.float64, requires_grad=True) for n in H]
        self.beta = [torch.zeros(P, 1, n, dtype=torch.float64, requires_grad=True) for n in H]
        self.running = [(torch.zeros(P, 1, n, dtype=torch.float64),) * 2 for n in H]
        self.rate = torch.tensor([s.dropout for s in specs], dtype=torch.float64).view(P, 1, 1)
        self.lr = torch.tensor([s.lr for s in specs], dtype=torch.float64).view(P, 1, 1)
        self.lam = torch.tensor([s.weight_decay for s in specs], dtype=torch.float64)

    def params(self) -> list[Tensor]:
        return [*self.W, *self.b, *(self.gamma + self.beta if self.bn else [])]

    def forward(self, x: Tensor, train: bool, gen: torch.Generator | None = None) -> Tensor:
        """Logits [P, B, C] for inputs [B, D]."""
        h = x.unsqueeze(0)  # [1, B, D], broadcast over members
        for i in range(self.L):
            z = torch.matmul(h, self.W[i]) + self.b[i]  # [P, B, H]
            if self.bn:
                if train:
                    mu, var = z.mean(1, keepdim=True), z.var(1, unbiased=False, keepdim=True)
                    rm, rv = self.running[i]
                    self.running[i] = (
                        BN_MOMENTUM * rm + (1 - BN_MOMENTUM) * mu.detach(),
                        BN_MOMENTUM * rv + (1 - BN_MOMENTUM) * var.detach(),
                    )
                else:
                    mu, var = self.running[i]
                z = self.gamma[i] * (z - mu) / torch.sqrt(var + BN_EPS) + self.beta[i]
            h = torch.relu(z)
            if train:
                h = h * (torch.rand(h.shape, generator=gen, dtype=h.dtype) > self.rate)
            else:
                h = h * (1.0 - self.rate)
        return torch.matmul(h, self.W[-1]) + self.b[-1]

    def step(self, x: Tensor, y: Tensor, gen: torch.Generator) -> None:
        """One SGD step of every member on the batch (x [B, D], y [B])."""
        logits = self.forward(x, True, gen)  # [P, B, C]
        P, B, C = logits.shape
        loss = (
            torch.nn.functional.cross_entropy(
                logits.reshape(P * B, C), y.repeat(P), reduction="sum"
            )
            / B
        )  # sum over members of each member's mean loss
        decay = sum((0.5 * self.lam * w.pow(2).sum(dim=(1, 2))).sum() for w in self.W)
        params = self.params()
        grads = torch.autograd.grad(loss + decay, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= self.lr.view(-1, *[1] * (p.dim() - 1)) * g

    @torch.no_grad()
    def accuracy(self, x: Tensor, y: Tensor, chunk: int = 2000) -> Tensor:
        """Test-mode accuracy of every member [P]."""
        correct = torch.zeros(self.lr.shape[0], dtype=torch.float64)
        for lo in range(0, x.shape[0], chunk):
            logits = self.forward(x[lo : lo + chunk], False)
            correct += (logits.argmax(2) == y[lo : lo + chunk]).sum(1)
        return correct / x.shape[0]


def train_book(
    specs: Sequence[MemberSpec],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    seed: int,
    n_classes: int = 10,
    batch: int = 100,
    pace: Callable[[], None] | None = None,
) -> list[Curves]:
    """Train the members the book's way; accuracy on both sets after every epoch, then
    ``pace`` (the run's thread governor) if given."""
    xt, yt = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y)
    xs = None if x_test is None else torch.as_tensor(x_test, dtype=torch.float64)
    ys = None if y_test is None else torch.as_tensor(y_test)
    nets = BookNets(specs, xt.shape[1], n_classes)
    gen = torch.Generator().manual_seed(seed)
    per_epoch = max(xt.shape[0] // batch, 1)
    curves = [Curves() for _ in specs]
    for epoch in range(1, max(s.epochs for s in specs) + 1):
        for _ in range(per_epoch):
            index = torch.randint(xt.shape[0], (batch,), generator=gen)  # with replacement
            nets.step(xt[index], yt[index], gen)
        train = nets.accuracy(xt, yt).tolist()
        test = nets.accuracy(xs, ys).tolist() if xs is not None and ys is not None else None
        for k, c in enumerate(curves):
            c.train_accuracy.append(train[k])
            if test is not None:
                c.test_epochs.append(epoch)
                c.test_accuracy.append(test[k])
        if pace is not None:
            pace()
    return curves

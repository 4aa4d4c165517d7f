"""Training a list of member specs either way, into plain learning curves.

``fit`` is the one entry point: ``way="caviar"`` trains the members together on the population
engine (:class:`~caviar.nn.Population`, training accuracy over the whole training set in eval
mode each epoch: ``train_metrics="full"``, the book's measure); ``way="book"`` runs the book's
own loop (:mod:`caviar.experiments.bookway`). Both start from the same initial weights.

Why test points every ``test_every`` epochs: scoring MNIST's 10,000 test images costs about six
epochs on 300 images, so a curve of 200 epochs would spend nearly all its time on the test
set. The engine trains ``test_every`` epochs, keeps the members' states and scores them; a
continued member trains exactly as one trained straight through.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch

from caviar.experiments.bookway import train_book
from caviar.experiments.curves import Curves
from caviar.nn import MemberSpec, MemberState, Population, TrainingData, evaluate_states


def fit(
    specs: Sequence[MemberSpec],
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    *,
    way: str = "caviar",
    data_seed: int = 0,
    device: str = "auto",
    test_every: int = 1,
    keep_states: bool = False,
    n_classes: int = 10,
    pace: Callable[[], None] | None = None,
) -> list[Curves]:
    """Train every member for its ``epochs``; curves in the order of ``specs``. ``pace`` is
    called between epochs (the run's thread governor: :class:`~caviar.experiments.pace.Pacer`).
    """
    if way == "book":
        return train_book(
            specs, x, y, x_test, y_test, seed=data_seed, n_classes=n_classes, pace=pace
        )
    epochs = max(s.epochs for s in specs)
    curves = [Curves() for _ in specs]
    states: list[MemberState | None] = [None] * len(specs)
    every = epochs if x_test is None else test_every
    if every == 1 and x_test is not None:
        data = TrainingData.from_arrays(x, y, x_test, y_test, n_classes=n_classes)
    else:
        data = TrainingData.from_arrays(x, y, n_classes=n_classes)
    done = 0
    while done < epochs:
        done = min(done + every, epochs)
        part = [_with_epochs(s, min(done, s.epochs)) for s in specs]
        population = Population(part, data_seed=data_seed, device=device, train_metrics="full")
        results = population.fit(
            data,
            states=states,
            keep_states=True,
            on_epoch=None if pace is None else lambda _: pace(),
        )
        for c, r in zip(curves, results, strict=True):
            c.train_accuracy += [e.train_accuracy for e in r.curve]
            c.train_loss += [e.train_loss for e in r.curve]
            c.diverged = r.diverged
            if r.diverged and c.diverged_epoch is None:
                c.diverged_epoch = r.diverged_epoch
            if every == 1:
                c.test_epochs += [e.epoch for e in r.curve]
                c.test_accuracy += [e.val_accuracy for e in r.curve]
        states = [r.state for r in results]
        if every > 1 and x_test is not None and y_test is not None:
            scores = evaluate_states([s for s in states if s is not None], x_test, y_test)
            for c, s, (_, acc) in zip(curves, states, scores, strict=True):
                if s is not None and s.epoch == done:
                    c.test_epochs.append(done)
                    c.test_accuracy.append(acc if not c.diverged else float("nan"))
    for c, spec in zip(curves, specs, strict=True):  # a diverged member's curve ends early
        c.train_accuracy += [float("nan")] * (spec.epochs - len(c.train_accuracy))
        c.train_loss += [float("nan")] * (spec.epochs - len(c.train_loss))
    if keep_states:
        for c, s in zip(curves, states, strict=True):
            c.state = s
    return curves


def _with_epochs(spec: MemberSpec, epochs: int) -> MemberSpec:
    return replace(spec, epochs=epochs)


@torch.no_grad()
def member_logits(state: MemberState, x: np.ndarray, *, batch_stats: bool = False) -> np.ndarray:
    """A trained member's logits [N, C] in plain torch, from its state.

    Batch norm uses the running averages, or with ``batch_stats`` the statistics of ``x``
    itself (what a net left in training mode does): the bn-test-time lesson.
    """
    spec, p = state.spec, state.params
    h = torch.as_tensor(x, dtype=torch.float64)
    for layer in range(spec.n_layers):
        z = h @ p[f"W{layer}"].double()
        if spec.batch_norm:
            if batch_stats:
                mean, var = z.mean(0), z.var(0, unbiased=False)
            else:
                mean, var = state.running_mean[layer].double(), state.running_var[layer].double()
            z = (z - mean) / torch.sqrt(var + spec.bn_eps)
            z = p[f"gamma{layer}"].double() * z + p[f"beta{layer}"].double()
        else:
            z = z + p[f"b{layer}"].double()
        h = torch.relu(z) if spec.activation == "relu" else _activation(spec.activation, z)
    L = spec.n_layers
    logits = h @ p[f"W{L}"].double() + p[f"b{L}"].double()  # [N, C]
    return logits.numpy()


def _activation(name: str, z: torch.Tensor) -> torch.Tensor:
    return torch.tanh(z) if name == "tanh" else torch.sigmoid(z)

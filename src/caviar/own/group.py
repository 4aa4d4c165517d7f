"""Members of the same module trained together for an epoch: their tensors stacked on a leading
member axis and one ``torch.func.vmap`` over ``functional_call`` of a shared template.

Each member's loss is its own mean over its own mini-batch, and the members share no tensor, so
the gradient of the sum of their losses is, for each, the gradient of its own loss: one
backward pass gives every member what it would get alone. Batch norm's running statistics are
stacked buffers, updated in place per member. Dropout masks are keyed by member and step
(:mod:`caviar.own.dropout`). A member whose loss stops being finite is frozen at once (its
optimizer no longer moves it) and leaves diverged at the epoch's end; the others go on.

Modules ``vmap`` cannot batch (data-dependent control flow, ``.item()``, torch's own random
ops) train the same way one member at a time (``vectorized=False``), with the same tensors, the
same optimizer and the same keyed dropout, and torch's generator seeded per member and step for
anything else random.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from caviar.core.seeding import DROPOUT, derive_seed
from caviar.nn.randomness import batch_bounds, epoch_order
from caviar.own.data import ModuleData
from caviar.own.member import ModuleMember
from caviar.own.optim import MemberOptimizer

#: ``loss(output, target) -> scalar``: the mean over a mini-batch, as torch's losses give it
Loss = Callable[[Tensor, Tensor], Tensor]


class Interrupted(Exception):
    """``should_stop`` said yes mid-epoch: the group's members leave, their epoch discarded."""


@dataclass(frozen=True)
class MemberMetrics:
    """One member's epoch: the means over its mini-batches (training mode) and over the
    validation set (eval mode)."""

    key: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    diverged: bool
    seconds: float


def has_batch_norm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class ModuleGroup:
    """``members`` (same signature) stacked for one epoch over ``data``.

    ``template`` is a module of their structure with its dropouts swapped
    (:func:`caviar.own.dropout.swap_dropout`); only its code runs, never its own tensors."""

    def __init__(
        self,
        template: nn.Module,
        members: Sequence[ModuleMember],
        data: ModuleData,
        *,
        loss: Loss,
        data_seed: int,
        vectorized: bool = True,
        eval_batch: int = 1024,
    ) -> None:
        self.template, self.members, self.data = template, list(members), data
        self.loss, self.data_seed, self.vectorized = loss, data_seed, vectorized
        self.eval_batch = eval_batch
        #: members at the same epoch read one batch (False: each its own copy, for measuring)
        self.share_batches = True
        first = self.members[0]
        self.params = {
            n: torch.stack([m.params[n] for m in self.members]).requires_grad_(
                n not in first.frozen
            )
            for n in first.params
        }
        #: the parameters trained (not ``requires_grad=False``), in the optimizer's order
        self.trained = [p for n, p in self.params.items() if n not in first.frozen]
        self.buffers = {n: torch.stack([m.buffers[n] for m in self.members]) for n in first.buffers}
        self.step_names = [f"{site}.step" for site in first.sites]
        device = data.x_train.device
        self.steps = torch.tensor([m.steps for m in self.members], device=device)
        self.optimizer = MemberOptimizer(
            first.optimizer,
            [m.settings for m in self.members],
            self.trained,
            state=[m.optimizer_state for m in self.members]
            if any(m.optimizer_state is not None for m in self.members)
            else None,
        )
        self.diverged = [False] * len(self.members)
        self.bounds = batch_bounds(
            len(data.y_train), first.batch_size, batch_norm=has_batch_norm(template)
        )

    # -- one member's forward, batched by vmap or called alone --------------------------------
    def _forward(
        self, params: dict[str, Tensor], buffers: dict[str, Tensor], x: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The member's mean loss and its count of right answers on ``(x, y)``."""
        out = functional_call(self.template, (params, buffers), (x,))
        correct = (out.argmax(dim=-1) == y).sum()
        return self.loss(out, y), correct

    def _stepped(self) -> dict[str, Tensor]:
        """The buffers with each dropout site's step: each member's own step count."""
        return {**self.buffers, **dict.fromkeys(self.step_names, self.steps)}

    def _train_batch(self, xb: Tensor, yb: Tensor, shared: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Forward and backward of one mini-batch: ``[P, B, ...]``, or ``[B, ...]`` when every
        member is at the same epoch (``shared``: the same examples for all, read once, and a
        first layer that multiplies them by every member's weights at once); each member's
        loss, right answers and whether its loss is finite."""
        buffers = self._stepped()
        if self.vectorized:
            dims = (0, 0, None, None) if shared else (0, 0, 0, 0)
            batched = vmap(self._forward, in_dims=dims, randomness="error")
            losses, correct = batched(self.params, buffers, xb, yb)
        else:
            # each member its own copy of a shared batch: a module may write into its input
            pieces = [
                self._alone(k, buffers, xb.clone() if shared else xb[k], yb if shared else yb[k])
                for k in range(len(self.members))
            ]
            losses = torch.stack([loss for loss, _ in pieces])
            correct = torch.stack([right for _, right in pieces])
        finite = torch.isfinite(losses.detach())
        total = torch.where(finite, losses, torch.zeros_like(losses)).sum()
        torch.autograd.backward(total)
        return losses.detach(), correct, finite

    def _alone(
        self, k: int, buffers: dict[str, Tensor], x: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Member ``k``'s forward on its own (views into the stacks, so its gradient and batch
        statistics land there), torch's generator seeded by its seed and step."""
        params = {n: p[k] for n, p in self.params.items()}
        mine = {n: b[k] for n, b in buffers.items()}
        member = self.members[k]
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(derive_seed(member.seed, DROPOUT, int(self.steps[k])) % 2**63)
            return self._forward(params, mine, x, y)

    # -- the epoch ----------------------------------------------------------------------------
    def run_epoch(self, should_stop: Callable[[], bool] | None = None) -> list[MemberMetrics]:
        """One epoch for every member, each at its own epoch (its own data order), then its
        validation metrics. Raises :class:`Interrupted` when ``should_stop`` says so."""
        started = time.perf_counter()
        n_members, data = len(self.members), self.data
        orders = torch.stack(
            [epoch_order(self.data_seed, m.done, len(data.y_train)) for m in self.members]
        ).to(data.x_train.device)
        epochs = [m.done for m in self.members]
        shared = self.share_batches and len(set(epochs)) == 1  # the same data order for all
        self.template.train()
        total_loss = torch.zeros(n_members, dtype=torch.float64, device=orders.device)
        total_right = torch.zeros(n_members, dtype=torch.float64, device=orders.device)
        seen = 0
        # on a GPU, whether a loss was finite is read once, after the epoch (no sync a step)
        lost = torch.zeros(n_members, dtype=torch.bool, device=orders.device)
        on_cpu = orders.device.type == "cpu"
        for start, stop in self.bounds:
            if should_stop is not None and should_stop():
                raise Interrupted
            index = orders[0, start:stop] if shared else orders[:, start:stop]
            xb, yb = data.x_train[index], data.y_train[index]
            losses, correct, finite = self._train_batch(xb, yb, shared)
            lost |= ~finite
            if on_cpu:  # free to look on a CPU: a diverged member stops at once, exactly
                for k in torch.nonzero(~finite).flatten().tolist():
                    if not self.diverged[k]:
                        self.diverged[k] = True
                        self.optimizer.freeze(k)
            # a parameter the loss did not reach has no gradient: torch.optim leaves it alone
            grads = [p.grad for p in self.trained]
            self.optimizer.step(grads, epochs)
            for p in self.trained:
                p.grad = None
            self.steps += 1
            total_loss += losses.to(torch.float64) * (stop - start)
            total_right += correct.to(torch.float64)
            seen += stop - start
        for k in torch.nonzero(lost).flatten().tolist():
            self.diverged[k] = True
        val_loss, val_right = self._evaluate()
        seconds = (time.perf_counter() - started) / n_members
        n_val = len(data.y_val)
        metrics = []
        for k, member in enumerate(self.members):
            gone = self.diverged[k] or not torch.isfinite(val_loss[k])
            metrics.append(
                MemberMetrics(
                    member.key,
                    float(total_loss[k] / seen),
                    float(total_right[k] / seen),
                    float(val_loss[k]),
                    float(val_right[k] / n_val),
                    bool(gone),
                    seconds,
                )
            )
        return metrics

    @torch.no_grad()
    def _evaluate(self) -> tuple[Tensor, Tensor]:
        """Each member's mean validation loss and right answers, in eval mode."""
        self.template.eval()
        data, n = self.data, len(self.data.y_val)
        device = data.x_val.device
        loss = torch.zeros(len(self.members), dtype=torch.float64, device=device)
        right = torch.zeros(len(self.members), dtype=torch.float64, device=device)
        buffers = self._stepped()
        for start in range(0, n, self.eval_batch):
            # a copy: a module that writes into its input must not change the validation set
            x = data.x_val[start : start + self.eval_batch].clone()
            y = data.y_val[start : start + self.eval_batch]
            if self.vectorized:
                batch = vmap(self._forward, in_dims=(0, 0, None, None), randomness="error")
                losses, correct = batch(self.params, buffers, x, y)
            else:
                pieces = [
                    self._forward(
                        {n: p[k] for n, p in self.params.items()},
                        {n: b[k] for n, b in buffers.items()},
                        x.clone(),  # each its own: a module may write into its input
                        y,
                    )
                    for k in range(len(self.members))
                ]
                losses = torch.stack([loss for loss, _ in pieces])
                correct = torch.stack([right for _, right in pieces])
            loss += losses.to(torch.float64) * len(y)
            right += correct.to(torch.float64)
        self.template.train()
        return loss / n, right

    def members_back(self) -> list[ModuleMember]:
        """The members after the epoch: their tensors unstacked, their counts moved on."""
        back = []
        for k, member in enumerate(self.members):
            member.params = {n: p[k].detach().clone() for n, p in self.params.items()}
            member.buffers = {n: b[k].clone() for n, b in self.buffers.items()}
            member.optimizer_state = self.optimizer.member_state(k)
            member.steps = int(self.steps[k])
            member.done += 1
            back.append(member)
        return back

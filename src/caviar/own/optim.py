"""torch.optim's update rules over P stacked members, each member with its own hyperparameters.

A user's module trained as a population has each parameter stacked on dim 0 (``[P, *shape]``,
``torch.func.stack_module_state``). torch.optim takes one number per hyperparameter, so P
members would need P optimizers and P times the kernel launches; here one pass updates every
member, with each hyperparameter a ``[P]`` tensor broadcast as ``[P, 1, 1, ...]``.

The rules are torch.optim's single-tensor forms (``foreach=False``), written with the same
operations in the same order, so a member moves as torch.optim would move it alone:

- sgd:     g += wd p;  b = m b + g;  g = g + m b (nesterov) or b;  p -= lr g
- adam:    g += wd p;  m1 = lerp(m1, g, 1 - beta1);  m2 = beta2 m2 + (1 - beta2) g**2;
           p -= lr / (1 - beta1**t) * m1 / (sqrt(m2) / sqrt(1 - beta2**t) + eps)
- adamw:   adam with p *= 1 - lr wd in place of g += wd p
- rmsprop: g += wd p;  s = alpha s + (1 - alpha) g**2;  a = sqrt(s) + eps;
           b = m b + g / a, p -= lr b (momentum > 0), or p -= lr g / a (momentum 0)

Why each number is computed as it is: torch.optim computes its scalars (``1 - beta1``, the bias
corrections, ``lr / bc1``) in Python, in double precision, and the kernel rounds them to the
parameter's dtype. Here they are float64 ``[P]`` tensors rounded the same way. The learning
rate of epoch e is ``lr * factor(e)``, as ``LambdaLR`` computes it.

Members may be at different steps (``t`` is per member) and may come with saved state from
another stack (:meth:`MemberOptimizer.member_state`, in torch.optim's per-parameter layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from caviar.core.errors import InvalidValue, got
from caviar.own.settings import (
    OPTIMIZER_KEYS,
    SHARED_KEYS,
)

#: the state torch.optim keeps per parameter, besides ``step``
SLOTS: dict[str, tuple[str, ...]] = {
    "sgd": ("momentum_buffer",),
    "adam": ("exp_avg", "exp_avg_sq"),
    "adamw": ("exp_avg", "exp_avg_sq"),
    "rmsprop": ("square_avg", "momentum_buffer"),
}

#: one member's saved state: per parameter leaf, torch.optim's state dict for that parameter
OptimizerState = list[dict[str, Tensor]]


class MemberOptimizer:
    """One optimizer over P stacked members: torch.optim's rule, a hyperparameter per member.

    ``settings[p]`` is member p's (as :func:`split_params` gives); ``params`` the stacked
    leaves, each ``[P, ...]``, updated in place; ``state[p]``, where given, member p's saved
    state (:meth:`member_state`, or torch.optim's ``[opt.state[leaf] for leaf in leaves]``),
    so a member moved between stacks, or started alone, goes on where it was.
    """

    def __init__(
        self,
        name: str,
        settings: Sequence[Mapping[str, Any]],
        params: Sequence[Tensor],
        *,
        state: Sequence[Sequence[Mapping[str, Tensor]] | None] | None = None,
    ) -> None:
        size = len(settings)
        if size == 0 or any(p.dim() == 0 or p.shape[0] != size for p in params):
            raise InvalidValue("params", f"each must be stacked on dim 0 for {size} members")
        for key in SHARED_KEYS:
            values = {s.get(key) for s in settings}
            if len(values) > 1:
                raise InvalidValue(
                    key, f"the members of one stack share it, got {sorted(map(repr, values))}"
                )
        if settings[0]["optimizer"] != name:
            raise InvalidValue("optimizer", f"the settings are for another one, {got(name)}")
        self.name = name
        self.params = list(params)
        self.nesterov = bool(settings[0].get("nesterov", False))
        self.lr_decay = str(settings[0]["lr_decay"])
        device = self.params[0].device if self.params else torch.device("cpu")
        keys = (*OPTIMIZER_KEYS[name], "decay_rate", "decay_every")
        # float64 [P], as torch.optim's Python numbers; decay_every int64 for e // every
        self.hyper = {
            k: torch.tensor(
                [s[k] for s in settings],
                dtype=torch.int64 if k == "decay_every" else torch.float64,
                device=device,
            )
            for k in keys
            if k != "nesterov"
        }
        self.steps = torch.zeros(size, dtype=torch.float64, device=device)  # [P]
        self.buffers = {slot: [torch.zeros_like(p) for p in self.params] for slot in SLOTS[name]}
        self.frozen = torch.zeros(size, dtype=torch.bool, device=device)  # [P]
        self._held: list[int] = []  # the frozen members, known here: no device sync a step
        # Adam and AdamW on a CPU: torch's fused kernel, one call per member with its own
        # numbers (one pass over each tensor instead of ten over the whole stack: 7x faster
        # for 16 members of a 270k-parameter MLP), the very call torch.optim's fused=True makes
        self.fused = name in ("adam", "adamw") and device.type == "cpu"
        self._leaf_steps = torch.zeros(size, len(self.params), dtype=torch.float32)
        self._numbers = {k: v.tolist() for k, v in self.hyper.items()}
        self._bias_correction1 = torch.ones(size, dtype=torch.float64, device=device)
        self._bias_correction2_sqrt = torch.ones(size, dtype=torch.float64, device=device)
        # which terms any member has, decided once: a GPU is not asked every step
        self._decays = bool(self.hyper["weight_decay"].any())
        self._momentum = "momentum" in self.hyper and bool(self.hyper["momentum"].any())
        for p, saved in enumerate(state or ()):
            if saved:
                self._load(p, saved)

    @property
    def size(self) -> int:
        """How many members the stack holds (P)."""
        return int(self.steps.shape[0])

    def freeze(self, p: int) -> None:
        """Leave member p exactly as it is from now on (parameters, state, step), so that a
        diverged member stops while the others go on."""
        self.frozen[p] = True
        if p not in self._held:
            self._held.append(p)

    def member_state(self, p: int) -> OptimizerState:
        """Member p's state, per leaf, in torch.optim's names: ``step`` (a 0-dim float32, as
        torch keeps it) and the buffers, each ``[*param_shape]``; copies."""
        step = self.steps[p].to(torch.float32).cpu()
        return [
            {
                # the fused path counts each leaf's steps, as torch does
                "step": self._leaf_steps[p, i].clone() if self.fused else step.clone(),
                **{s: b[i][p].clone() for s, b in self.buffers.items()},
            }
            for i in range(len(self.params))
        ]

    def _load(self, p: int, saved: Sequence[Mapping[str, Tensor]]) -> None:
        """Member p's state from ``saved`` (a leaf missing a buffer, as torch.optim's SGD
        without momentum, starts it at zero)."""
        if len(saved) != len(self.params):
            raise InvalidValue("state", f"needs one entry per leaf ({len(self.params)})")
        counts = [float(leaf.get("step", 0.0)) for leaf in saved]
        if len(set(counts)) > 1 and not self.fused:
            raise InvalidValue("state", f"the leaves of one member share a step, {got(counts)}")
        self.steps[p] = max(counts, default=0.0)
        self._leaf_steps[p] = torch.tensor(counts, dtype=torch.float32)
        for slot, stacked in self.buffers.items():
            for leaf, buffer in zip(saved, stacked, strict=True):
                if slot in leaf:
                    buffer[p].copy_(leaf[slot])
                else:
                    buffer[p].zero_()

    def lr(self, epochs: Tensor | Sequence[int]) -> Tensor:
        """Each member's learning rate at its epoch, ``[P]`` float64: ``lr * factor(e)``, as
        ``LambdaLR`` computes it."""
        e = torch.as_tensor(epochs, dtype=torch.int64, device=self.steps.device)
        rate, lr0 = self.hyper["decay_rate"], self.hyper["lr"]
        if self.lr_decay == "inverse_time":
            return lr0 * (1.0 / (1.0 + rate * e.to(torch.float64)))
        if self.lr_decay == "exponential":
            return lr0 * rate.pow(e.to(torch.float64))
        if self.lr_decay == "step":
            every = self.hyper["decay_every"]
            return lr0 * rate.pow(torch.div(e, every, rounding_mode="floor").to(torch.float64))
        return lr0

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor | None], epochs: Tensor | Sequence[int]) -> None:
        """One update of every member not frozen, in place, with ``grads`` (stacked as the
        parameters; left unchanged); each member's lr from its epoch (``epochs``, [P]). A leaf
        whose gradient is None (the loss did not reach it) is left as it is, state and all, as
        torch.optim leaves a parameter without a gradient."""
        if self.fused:
            self._fused_step(grads, self.lr(epochs))
            return
        held = torch.tensor(sorted(self._held), dtype=torch.int64, device=self.steps.device)
        kept = self._hold(held) if self._held else None
        self.steps += 1
        lr = self.lr(epochs)
        if self.name in ("adam", "adamw"):  # the bias corrections, once for every leaf
            h = self.hyper
            self._bias_correction1 = 1 - h["beta1"].pow(self.steps)  # [P] float64
            self._bias_correction2_sqrt = (1 - h["beta2"].pow(self.steps)).sqrt()
        rule = {"sgd": self._sgd, "rmsprop": self._rmsprop}.get(self.name, self._adam)
        for i, (param, grad) in enumerate(zip(self.params, grads, strict=True)):
            if grad is not None:
                rule(i, param, grad, lr)
        if kept is not None:
            self._restore(held, kept)

    def _fused_step(self, grads: Sequence[Tensor | None], lr: Tensor) -> None:
        """Adam or AdamW on a CPU: for each member not frozen, torch's fused kernel over its
        slices, with its numbers as Python floats, as ``torch.optim.Adam(fused=True)`` calls
        it alone (it reads gradients as contiguous: a transposed one is copied first), over
        the leaves that have a gradient, each with its own step count, as torch keeps them."""
        leaves = [i for i, g in enumerate(grads) if g is not None]
        if not leaves:
            return
        params = [self.params[i] for i in leaves]
        given = [g.contiguous() for g in grads if g is not None]
        exp_avg = [self.buffers["exp_avg"][i] for i in leaves]
        exp_avg_sq = [self.buffers["exp_avg_sq"][i] for i in leaves]
        kernel = torch._fused_adamw_ if self.name == "adamw" else torch._fused_adam_
        rates, n = lr.tolist(), self._numbers
        for p in range(self.size):
            if p in self._held:
                continue
            self.steps[p] += 1
            steps = self._leaf_steps[p, leaves]
            self._leaf_steps[p, leaves] = steps + 1
            kernel(
                [t[p] for t in params],
                [g[p] for g in given],
                [m[p] for m in exp_avg],
                [v[p] for v in exp_avg_sq],
                [],
                [self._leaf_steps[p, i] for i in leaves],
                amsgrad=False,
                lr=rates[p],
                beta1=n["beta1"][p],
                beta2=n["beta2"][p],
                weight_decay=n["weight_decay"][p],
                eps=n["eps"][p],
                maximize=False,
            )

    def _hold(self, held: Tensor) -> list[Tensor]:
        """Copies of the frozen members' parameters, buffers and steps."""
        tensors = [*self.params, *(b for bs in self.buffers.values() for b in bs), self.steps]
        return [t.index_select(0, held) for t in tensors]

    def _restore(self, held: Tensor, kept: list[Tensor]) -> None:
        tensors = [*self.params, *(b for bs in self.buffers.values() for b in bs), self.steps]
        for t, k in zip(tensors, kept, strict=True):
            t.index_copy_(0, held, k)

    def _col(self, x: Tensor, like: Tensor) -> Tensor:
        """``x`` ([P], float64) rounded to ``like``'s dtype and shaped ``[P, 1, 1, ...]``."""
        return x.to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def _coupled_decay(self, param: Tensor, grad: Tensor) -> Tensor:
        """``grad + wd * param`` (torch's ``grad.add(param, alpha=wd)``); grad itself if no
        member decays."""
        wd = self.hyper["weight_decay"]
        return torch.addcmul(grad, param, self._col(wd, param)) if self._decays else grad

    def _sgd(self, i: int, param: Tensor, grad: Tensor, lr: Tensor) -> None:
        g = self._coupled_decay(param, grad)
        m = self.hyper["momentum"]
        if self._momentum:  # a zero buffer gives torch's first step (buf = g), at any step
            buf = self.buffers["momentum_buffer"][i]
            buf.mul_(self._col(m, param)).add_(g)
            g = torch.addcmul(g, buf, self._col(m, param)) if self.nesterov else buf
        param.addcmul_(g, self._col(-lr, param))

    def _adam(self, i: int, param: Tensor, grad: Tensor, lr: Tensor) -> None:
        h = self.hyper
        if self.name == "adamw":
            if self._decays:
                param.mul_(self._col(1 - lr * h["weight_decay"], param))
            g = grad
        else:
            g = self._coupled_decay(param, grad)
        exp_avg, exp_avg_sq = self.buffers["exp_avg"][i], self.buffers["exp_avg_sq"][i]
        exp_avg.lerp_(g, self._col(1 - h["beta1"], param))
        exp_avg_sq.mul_(self._col(h["beta2"], param)).addcmul_(
            g * self._col(1 - h["beta2"], param), g
        )
        bias_correction1, bias_correction2_sqrt = (
            self._bias_correction1,
            self._bias_correction2_sqrt,
        )
        denom = (exp_avg_sq.sqrt() / self._col(bias_correction2_sqrt, param)).add_(
            self._col(h["eps"], param)
        )
        param.addcdiv_(exp_avg * self._col(-(lr / bias_correction1), param), denom)

    def _rmsprop(self, i: int, param: Tensor, grad: Tensor, lr: Tensor) -> None:
        h = self.hyper
        g = self._coupled_decay(param, grad)
        square_avg = self.buffers["square_avg"][i]
        square_avg.mul_(self._col(h["alpha"], param)).addcmul_(
            g * self._col(1 - h["alpha"], param), g
        )
        avg = square_avg.sqrt().add_(self._col(h["eps"], param))
        moved = torch.addcdiv(param, g * self._col(-lr, param), avg)  # momentum 0
        m = h["momentum"]
        if self._momentum:  # members with momentum 0 keep a buffer they never read
            buf = self.buffers["momentum_buffer"][i]
            buf.mul_(self._col(m, param)).addcdiv_(g, avg)
            with_momentum = torch.addcmul(param, buf, self._col(-lr, param))
            has_momentum = (m > 0).view(-1, *([1] * (param.dim() - 1)))
            moved = torch.where(has_momentum, with_momentum, moved)
        param.copy_(moved)

"""A vectorized group: P members of one architecture class trained in lockstep.

Members of a group share the number of layers, batch size, batch norm on/off, activation and
optimizer; widths may differ (each is padded to the widest and masked). Everything else (learning
rate, betas, eps, weight decay, dropout, init, decay schedule, epochs) is a per-member tensor.

One training step, for the whole group (shapes: P members, B examples, H units, C classes):

1. layer 0 is one dense product of the shared batch with every member's weights;
2. hidden layers are batched products ``[P, B, H] @ [P, H, H]``; batch norm normalises each
   member's z over the batch; activation; width mask and inverted dropout;
3. softmax cross-entropy per member; gradients by hand, written into flat buffers;
4. members whose loss is not finite are frozen (diverged) before the update reaches them;
5. one optimizer update per buffer with per-member hyperparameters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from caviar.nn import functional as F
from caviar.nn.layout import AUX, W_IN, W_REST, Layout
from caviar.nn.optim import OPTIMIZERS, Hyper
from caviar.nn.randomness import dropout_keep, dropout_keys, initial_weights
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState

#: what a layer keeps for the backward pass: its input, its activation, its mask (width and
#: dropout, or None) and, under batch norm, (z, gamma, batch mean, batch inverse std)
Saved = tuple[Tensor, Tensor, Tensor | None, tuple[Tensor, Tensor, Tensor, Tensor] | None]


class Group:
    """P members of one architecture class, their parameters, optimizer state and statistics."""

    def __init__(
        self,
        specs: Sequence[MemberSpec],
        n_inputs: int,
        n_classes: int,
        *,
        device: torch.device,
        dtype: torch.dtype,
        states: Sequence[MemberState | None] | None = None,
    ) -> None:
        keys = {s.group_key() for s in specs}
        if len(keys) != 1:
            raise ValueError(f"a group needs one architecture class, got {sorted(keys)}")
        first = specs[0]
        self.specs = list(specs)
        self.device, self.dtype = device, dtype
        self.n_layers, self.batch_norm = first.n_layers, first.batch_norm
        self.activation, self.batch_size = first.activation, first.batch_size
        self.optimizer = OPTIMIZERS[first.optimizer]
        self.units = [s.hidden_units for s in specs]
        P, H = len(specs), max(self.units)
        self.layout = Layout(P, n_inputs, H, first.n_layers, n_classes, first.batch_norm)
        self.theta = self.layout.allocate(dtype, device)
        self.grad = self.layout.allocate(dtype, device)
        self.opt_state = [self.optimizer.init_state(b) for b in self.theta]
        self.params = self.layout.views(self.theta)
        self.grads = self.layout.views(self.grad)

        def per_member(name: str) -> Tensor:
            return torch.tensor([getattr(s, name) for s in specs], dtype=dtype, device=device)

        self.beta1, self.beta2, self.eps = (
            per_member("beta1"),
            per_member("beta2"),
            per_member("eps"),
        )
        decay = per_member("weight_decay")
        decoupled = torch.tensor([s.decoupled_weight_decay for s in specs], device=device)
        self.l2 = torch.where(decoupled, 0.0, decay)
        self.decoupled = torch.where(decoupled, decay, 0.0)
        self.any_l2 = any(s.weight_decay > 0 and not s.decoupled_weight_decay for s in specs)
        self.any_decoupled = any(s.weight_decay > 0 and s.decoupled_weight_decay for s in specs)
        self.dropout = per_member("dropout")
        self.any_dropout = any(s.dropout > 0 for s in specs)
        self.inv_keep = (1.0 / (1.0 - self.dropout)).view(1, P, 1)
        self.dropout_keys = dropout_keys([s.seed for s in specs], device)
        self.bn_momentum = per_member("bn_momentum").view(P, 1)
        self.bn_eps = first.bn_eps  # one per group (a group key): torch's kernel takes a scalar
        units = torch.tensor(self.units, device=device)
        self.width_mask: Tensor | None = None
        if min(self.units) < H:
            mask = torch.arange(H, device=device)[None, :] < units[:, None]  # [P, H]
            self.width_mask = mask.to(dtype).view(1, P, H)
        L = self.n_layers
        self.running_mean = torch.zeros(L, P, H, dtype=dtype, device=device)
        self.running_var = torch.ones(L, P, H, dtype=dtype, device=device)
        self.steps = torch.zeros(P, dtype=dtype, device=device)  # optimizer steps taken
        self.alive = torch.ones(P, dtype=torch.bool, device=device)
        self._static = {
            b: {
                "beta1": self.beta1.view(self.layout.hyper_shape(b)),
                "beta2": self.beta2.view(self.layout.hyper_shape(b)),
                "eps": self.eps.view(self.layout.hyper_shape(b)),
                "l2": self.l2.view(self.layout.hyper_shape(b)),
                "decoupled": self.decoupled.view(self.layout.hyper_shape(b)),
            }
            for b in (W_IN, W_REST, AUX)
        }
        for k, spec in enumerate(specs):
            state = states[k] if states is not None else None
            if state is None:
                self._initialise(k, spec, n_inputs, n_classes)
            else:
                self.load_member(k, state)

    @property
    def n_members(self) -> int:
        return len(self.specs)

    # -- initial values ----------------------------------------------------------------------
    def _initialise(self, k: int, spec: MemberSpec, n_inputs: int, n_classes: int) -> None:
        weights = initial_weights(spec, n_inputs, n_classes)
        with torch.no_grad():
            for layer, w in enumerate(weights):
                name = f"W{layer}"
                self.params[name][self.layout.member_index(name, k, spec.hidden_units)] = w
            if self.batch_norm:
                for layer in range(self.n_layers):
                    name = f"gamma{layer}"
                    self.params[name][self.layout.member_index(name, k, spec.hidden_units)] = 1.0

    # -- one training step -------------------------------------------------------------------
    def _multiplier(self, layer: int, step: int, batch: int) -> Tensor | None:
        """Width mask times inverted-dropout scale for one layer: [B, P, H], [1, P, H] or None."""
        m = None
        if self.any_dropout:
            keep = dropout_keep(
                self.dropout_keys, self.dropout, step, layer, batch, self.layout.width
            ).transpose(0, 1)  # [B, P, H], contiguous
            m = keep.to(self.dtype) * self.inv_keep
        if self.width_mask is not None:
            m = self.width_mask if m is None else m * self.width_mask
        return m

    def _flat(self, name: str) -> Tensor:
        """A [P, H] parameter as the [P * H] vector batch norm takes (a copy: the view is
        strided inside its buffer)."""
        return self.params[name].reshape(-1)

    def _forward(self, x: Tensor, step: int | None) -> tuple[Tensor, Tensor, list[Saved]]:
        """Logits [P, B, C] of every member for a batch ``x`` [B, D], the last hidden layer's
        output [B, P, H] and, in training, what each layer keeps for the backward pass.

        With a ``step``: training mode (batch statistics, width masks, dropout keyed by the
        step) and what the backward pass needs is kept. Without: eval mode (running statistics,
        no dropout; padded units need no mask, their outgoing weights are zero).
        """
        P, H, L = self.n_members, self.layout.width, self.n_layers
        B, D = x.shape
        p = self.params
        saved: list[Saved] = []
        z = x @ p["W0"].view(D, P * H)  # [B, P * H]: every member's units side by side
        h = x
        for layer in range(L):
            if layer > 0:
                z = torch.bmm(h.transpose(0, 1), p[f"W{layer}"]).transpose(0, 1)  # [B, P, H]
            bn = None
            if self.batch_norm:
                z = z.reshape(B, P * H)  # contiguous, for the batch-norm kernel
                gamma, beta = self._flat(f"gamma{layer}"), self._flat(f"beta{layer}")
                if step is None:
                    mean, var = self.running_mean[layer].view(-1), self.running_var[layer].view(-1)
                    out = F.batch_norm_eval(z, gamma, beta, mean, var, self.bn_eps)
                else:
                    out, mean, inv_std = F.batch_norm(z, gamma, beta, self.bn_eps)
                    bn = (z, gamma, mean, inv_std)
            else:  # no copy: a [P, B, H]-ordered product goes straight on
                out = z.view(B, P, H) + p[f"b{layer}"].unsqueeze(0)
            a = F.activation(self.activation, out.view(B, P, H))  # [B, P, H]
            if step is None:
                h = a
                continue
            m = self._multiplier(layer, step, B)
            saved.append((h, a, m, bn))
            h = a if m is None else a * m
        logits = torch.baddbmm(p[f"b{L}"].unsqueeze(1), h.transpose(0, 1), p[f"W{L}"])
        return logits, h, saved

    def train_step(self, x: Tensor, y: Tensor, step: int, lr: Tensor, active: Tensor) -> Tensor:
        """One mini-batch for every member; returns the per-member loss [P].

        ``lr`` [P] is this epoch's learning rate, ``active`` [P] (bool) says which members still
        train (not done, not diverged); ``step`` counts the group's mini-batches since epoch 0
        and keys the dropout masks.
        """
        P, H, L = self.n_members, self.layout.width, self.n_layers
        B, D = x.shape
        p, g = self.params, self.grads
        logits, h, saved = self._forward(x, step)
        loss, dlogits = F.softmax_cross_entropy(logits, y)

        # freeze members whose loss is not finite, before the update reaches them ---------------
        finite = torch.isfinite(loss)
        self.alive &= finite | ~active
        training = active & self.alive
        for layer, (_, _, _, bn) in enumerate(saved):
            if bn is not None:
                self._update_running(layer, bn[2], bn[3], B, training)

        # backward -----------------------------------------------------------------------------
        hT = h.transpose(0, 1)  # [P, B, H]
        torch.bmm(hT.transpose(1, 2), dlogits, out=g[f"W{L}"])
        torch.sum(dlogits, dim=1, out=g[f"b{L}"])
        dh = torch.bmm(dlogits, p[f"W{L}"].transpose(1, 2)).transpose(0, 1)  # [B, P, H] view
        for layer in reversed(range(L)):
            h_in, a, m, bn = saved[layer]
            da = dh if m is None else dh * m
            dout = F.activation_backward(self.activation, da, a)  # [B, P, H]
            if bn is not None:
                z, gamma, mean, inv_std = bn
                dz, dgamma, dbeta = F.batch_norm_backward(
                    dout.reshape(B, P * H), z, gamma, mean, inv_std, self.bn_eps
                )
                dz = dz.view(B, P, H)
                g[f"gamma{layer}"].copy_(dgamma.view(P, H))
                g[f"beta{layer}"].copy_(dbeta.view(P, H))
            else:  # dout keeps whichever memory order the product gave it: no copy
                dz = dout
                torch.sum(dout, dim=0, out=g[f"b{layer}"])
            if layer > 0:
                dzT = dz.transpose(0, 1)  # [P, B, H]
                torch.bmm(h_in.transpose(0, 1).transpose(1, 2), dzT, out=g[f"W{layer}"])
                dh = torch.bmm(dzT, p[f"W{layer}"].transpose(1, 2)).transpose(0, 1)
            else:
                torch.mm(x.t(), dz.reshape(B, P * H), out=g["W0"].view(D, P * H))

        if self.device.type != "cpu" or not bool(finite.all()):
            self._zero_nonfinite(finite)
        self._update(lr * training, training)
        return loss

    def _update_running(
        self, layer: int, mean: Tensor, inv_std: Tensor, batch: int, training: Tensor
    ) -> None:
        """Running averages of the batch statistics (the variance unbiased, as torch keeps it),
        for the members that train this step."""
        P, H = self.n_members, self.layout.width
        var = (inv_std.pow(-2) - self.bn_eps).view(P, H)  # the batch's biased variance
        m = self.bn_momentum  # [P, 1]
        new_mean = torch.lerp(mean.view(P, H), self.running_mean[layer], m)
        new_var = torch.lerp(var * (batch / (batch - 1)), self.running_var[layer], m)
        keep = training.view(-1, 1)
        self.running_mean[layer] = torch.where(keep, new_mean, self.running_mean[layer])
        self.running_var[layer] = torch.where(keep, new_var, self.running_var[layer])

    def _zero_nonfinite(self, finite: Tensor) -> None:
        """Clear the gradients of members whose loss was not finite (they may hold NaN)."""
        for b, grad in enumerate(self.grad):
            grad.copy_(torch.where(finite.view(self.layout.hyper_shape(b)), grad, 0.0))

    def _update(self, lr: Tensor, training: Tensor) -> None:
        self.steps += training.to(self.dtype)
        t = self.steps.clamp(min=1.0)
        bias_correction1 = 1.0 - self.beta1**t
        bias_correction2_sqrt = torch.sqrt(1.0 - self.beta2**t)
        for b in (W_IN, W_REST, AUX):
            shape = self.layout.hyper_shape(b)
            hyper = Hyper(
                lr=lr.view(shape),
                bias_correction1=bias_correction1.view(shape),
                bias_correction2_sqrt=bias_correction2_sqrt.view(shape),
                **self._static[b],
            )
            self.optimizer.step(
                self.theta[b],
                self.grad[b],
                self.opt_state[b],
                hyper,
                coupled_decay=b != AUX and self.any_l2,
                decoupled_decay=b != AUX and self.any_decoupled,
            )

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
        """Mean loss and accuracy per member [P] in eval mode (running statistics, no dropout)."""
        P = self.n_members
        loss_sum = torch.zeros(P, dtype=torch.float64, device=self.device)
        correct = torch.zeros(P, dtype=torch.int64, device=self.device)
        for start in range(0, x.shape[0], chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            logits, _, _ = self._forward(xb, None)
            batch_loss, batch_correct = F.loss_and_correct(logits, yb)
            loss_sum += batch_loss.to(torch.float64)
            correct += batch_correct
        n = x.shape[0]
        return loss_sum / n, correct.to(torch.float64) / n

    # -- member states -----------------------------------------------------------------------
    def _names(self) -> list[str]:
        return list(self.layout.entries)

    def member_state(self, k: int, *, epoch: int, batch: int) -> MemberState:
        """A copy of member ``k``'s training state, in its own shapes, on the CPU."""
        units = self.units[k]

        def take(views: dict[str, Tensor]) -> dict[str, Tensor]:
            return {
                name: views[name][self.layout.member_index(name, k, units)].detach().cpu().clone()
                for name in self._names()
            }

        optimizer = {
            slot: take(self.layout.views([state[i] for state in self.opt_state]))
            for i, slot in enumerate(self.optimizer.slots)
        }
        stats = range(self.n_layers) if self.batch_norm else range(0)
        return MemberState(
            spec=self.specs[k],
            n_inputs=self.layout.n_inputs,
            n_classes=self.layout.n_classes,
            params=take(self.params),
            optimizer=optimizer,
            optimizer_steps=int(self.steps[k].item()),
            running_mean=[self.running_mean[i, k, :units].cpu().clone() for i in stats],
            running_var=[self.running_var[i, k, :units].cpu().clone() for i in stats],
            epoch=epoch,
            batch=batch,
            diverged=not bool(self.alive[k].item()),
        )

    def load_member(self, k: int, state: MemberState) -> None:
        """Put a saved state into slot ``k`` (architecture must match the group's)."""
        spec = self.specs[k]
        if (state.n_inputs, state.n_classes) != (self.layout.n_inputs, self.layout.n_classes):
            raise ValueError(
                f"state is for {state.n_inputs} inputs and {state.n_classes} classes, "
                f"the data has {self.layout.n_inputs} and {self.layout.n_classes}"
            )
        for key in ("hidden_units", "n_layers", "batch_norm", "optimizer"):
            if getattr(state.spec, key) != getattr(spec, key):
                raise ValueError(
                    f"state has {key}={getattr(state.spec, key)!r}, "
                    f"the member {getattr(spec, key)!r}"
                )
        units = spec.hidden_units

        def put(views: dict[str, Tensor], values: dict[str, Tensor]) -> None:
            for name in self._names():
                views[name][self.layout.member_index(name, k, units)] = values[name].to(
                    self.device, self.dtype
                )

        with torch.no_grad():
            put(self.params, state.params)
            for i, slot in enumerate(self.optimizer.slots):
                put(self.layout.views([s[i] for s in self.opt_state]), state.optimizer[slot])
            for i in range(len(state.running_mean)):
                self.running_mean[i, k, :units] = state.running_mean[i].to(self.device, self.dtype)
                self.running_var[i, k, :units] = state.running_var[i].to(self.device, self.dtype)
            self.steps[k] = state.optimizer_steps
            self.alive[k] = not state.diverged

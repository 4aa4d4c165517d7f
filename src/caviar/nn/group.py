"""A vectorized group: members of one architecture class trained in lockstep, each at its own
width, with no padding to the widest.

Members of a group share the number of layers, batch size, batch norm on/off, activation and
optimizer. Everything else, the width included, is the member's own. The layout
(:class:`~caviar.nn.ragged.Ragged`) puts every member's units side by side in activations
``[B, S]`` (S about the sum of the members' widths), so batch norm, the activation and dropout
run once for the whole group, while every matrix product has the member's own shape (members of
equal width share one batched product).

Why products per member: a member's arithmetic then has shapes that depend on its own spec
only, so its float32 result is bitwise the same alone or in any group (tested), and a product
over the member's true width costs no padding FLOPs. On a CPU the per-member products cost
about 15 % more time than one product over all columns at these sizes; everything else is
shared.

One training step (B examples; each member may be at its own epoch and sees its own batch):

1. layer 0: ``x_p @ W0_p`` for every member p, into its columns of ``z`` [B, S];
2. batch norm (torch's fused kernel over [B, S]), activation, inverted dropout with a
   counter-based mask; hidden layers ``h_p @ W_p``;
3. softmax cross-entropy per member; gradients by hand;
4. members whose loss is not finite are frozen (diverged) before the update reaches them;
5. the optimizer: each member's weights on their own in cache-sized pieces with its own
   hyperparameters as floats, the small shared buffer of biases and batch-norm parameters at
   once with per-entry hyperparameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from caviar.core.errors import InvalidValue
from caviar.nn import functional as F
from caviar.nn.fused import BucketUpdate
from caviar.nn.optim import OPTIMIZERS, Hyper
from caviar.nn.ragged import Bucket, Ragged
from caviar.nn.randomness import (
    column_keys_from,
    column_layout,
    dropout_keep_columns,
    dropout_keys,
    dropout_thresholds,
)
from caviar.nn.slots import GroupSlots, keep_scale, weight_decays
from caviar.nn.spec import MemberSpec
from caviar.nn.state import MemberState

#: what a layer keeps for the backward pass: its input (a list of per-member inputs for layer
#: 0), its activation, its multiplier (dropout and padding, or None) and, under batch norm,
#: (z, gamma, batch mean, batch inverse std)
Saved = tuple[
    Tensor | list[Tensor], Tensor, Tensor | None, tuple[Tensor, Tensor, Tensor, Tensor] | None
]

#: elements per piece of a member's weights in the optimizer update: 512 KiB stays in a
#: core's L2 cache across the update's passes (measured 6x faster than whole-buffer passes)
_PIECE_BYTES = 512 * 1024


def _inputs(xs: Sequence[Tensor], bucket: Bucket) -> Tensor:
    """A bucket's inputs: the shared batch [B, D] when its members share one (the same epoch),
    else theirs stacked [n, B, D]."""
    mine = xs[bucket.first : bucket.stop]
    if all(x is mine[0] for x in mine):
        return mine[0]
    return torch.stack(list(mine))


class Group(GroupSlots):
    """Members of one architecture class: parameters, optimizer state and statistics (one
    member's own entries: :class:`~caviar.nn.slots.GroupSlots`)."""

    def __init__(
        self,
        specs: Sequence[MemberSpec],
        n_inputs: int,
        n_classes: int,
        *,
        device: torch.device,
        dtype: torch.dtype,
        states: Sequence[MemberState | None] | None = None,
        vectorized: bool | None = None,
        fill: bool = True,
        compiled: bool = False,
    ) -> None:
        """``fill=False`` leaves the slots' values to the caller's :meth:`fill`, one member at
        a time (a pool building a large group stops there when its time is up). ``compiled``:
        the vectorized path's weight update as one compiled kernel per bucket
        (:mod:`caviar.nn.fused`)."""
        keys = {s.group_key() for s in specs}
        if len(keys) != 1:
            raise ValueError(f"a group needs one architecture class, got {sorted(keys)}")
        first = specs[0]
        self.specs = list(specs)
        self.device, self.dtype = device, dtype
        self.depths = [s.n_layers for s in specs]
        self.n_layers, self.batch_norm = max(self.depths), first.batch_norm
        self.activation, self.batch_size = first.activation, first.batch_size
        self.optimizer = OPTIMIZERS[first.optimizer]
        self.units = [s.hidden_units for s in specs]
        self.layout = Ragged(
            self.units,
            n_inputs,
            n_classes,
            self.depths,
            first.batch_norm,
            batched=device.type == "cuda" if vectorized is None else vectorized,
        )
        # on a GPU: no host sync per step, one optimizer update per bucket (see _update_buckets)
        self.vectorized = device.type == "cuda" if vectorized is None else vectorized
        self._bucket_update = BucketUpdate(compiled)
        lay = self.layout
        self.weights = torch.zeros(lay.n_weights, dtype=dtype, device=device)
        self.aux = torch.zeros(lay.n_aux, dtype=dtype, device=device)
        self.grad_weights = torch.zeros_like(self.weights)
        self.grad_aux = torch.zeros_like(self.aux)
        self.state_weights = self.optimizer.init_state(self.weights)
        self.state_aux = self.optimizer.init_state(self.aux)
        self.W = lay.weight_views(self.weights)  # [member][layer]: [fan_in, fan_out]
        self.gW = lay.weight_views(self.grad_weights)
        self.A = lay.aux_views(self.aux)  # name -> [S] (or [P, C] for the output bias)
        self.gA = lay.aux_views(self.grad_aux)
        self.piece = max(1024, _PIECE_BYTES // (torch.finfo(dtype).bits // 8))

        self.beta1 = [s.beta1 for s in specs]
        self.beta2 = [s.beta2 for s in specs]
        self.eps = [s.eps for s in specs]
        decays = [weight_decays(s) for s in specs]
        self.l2 = [l2 for l2, _ in decays]
        self.decoupled = [decoupled for _, decoupled in decays]
        self.bn_eps = first.bn_eps  # one per group (a group key): torch's kernel takes a scalar
        # per-entry hyperparameters of the shared aux buffer (biases, gamma, beta): [n_aux]
        self._aux_member = lay.aux_member().to(device)
        # per-column constants [S]
        cols = lay.column_member().to(device)
        self._column_member = cols
        rates = torch.tensor([s.dropout for s in specs], dtype=torch.float64)
        self._dropouts = sum(s.dropout > 0 for s in specs)  # members with dropout
        self.any_dropout = self._dropouts > 0
        self._thresholds = dropout_thresholds(rates).to(device)[cols]  # int32 [S]
        inv_keep = torch.tensor([keep_scale(s) for s in specs], dtype=dtype)
        real = lay.column_real().to(device)  # [S]: a member's true units
        self._scale = (inv_keep.to(device)[cols] * real).view(1, -1)  # [1, S], 0 off true units
        # stored widths wider than the true ones (the batched layout) read a padded unit's
        # output: sigmoid(0) = 0.5 there, so its output is masked to 0 (relu and tanh give 0)
        masked = lay.batched and self.activation == "sigmoid"
        self._pad_mask = real.to(dtype).view(1, -1) if masked else None
        # each column's member and unit for the dropout keys, the last member taking the tail
        key_units = [*lay.padded[:-1], lay.padded[-1] + lay.S - sum(lay.padded)]
        self._key_columns = column_layout(key_units, device)
        self._keys = dropout_keys([s.seed for s in specs], device)
        self._key_list = [int(k) for k in self._keys.tolist()]
        self.bn_momentum = torch.tensor([s.bn_momentum for s in specs], dtype=dtype, device=device)[
            cols
        ]
        L = self.n_layers
        self.running_mean = torch.zeros(L, lay.S, dtype=dtype, device=device)
        self.running_var = torch.ones(L, lay.S, dtype=dtype, device=device)
        self.steps = [0] * len(specs)  # optimizer steps taken (vectorized: steps attempted)
        self.steps_t = torch.zeros(len(specs), dtype=torch.float64, device=device)
        self.alive_t = torch.ones(len(specs), dtype=torch.bool, device=device)
        # slots that train: a pool frees a slot when its member leaves, and refills it in place
        self.active = [True] * len(specs)
        self._n_free = 0
        self.active_t = torch.ones(len(specs), dtype=torch.bool, device=device)
        self._per_member = {
            name: torch.tensor(values, dtype=torch.float64, device=device)
            for name, values in (
                ("beta1", self.beta1),
                ("beta2", self.beta2),
                ("eps", self.eps),
                ("l2", self.l2),
                ("decoupled", self.decoupled),
            )
        }
        # ... and in the group's dtype, as the updates read them
        self._per_member_typed = {name: v.to(dtype) for name, v in self._per_member.items()}
        self._lr_cache: tuple[tuple[float, ...], Tensor] | None = None
        # the aux buffer's constant per-entry hyperparameters, spread once
        self._aux_static = {
            name: self._per_member[name].to(dtype)[self._aux_member]
            for name in ("beta1", "beta2", "eps")
        }
        self._aux_static["l2"] = self._aux_static["decoupled"] = torch.zeros(
            (), dtype=dtype, device=device
        )
        if fill:
            for k in range(len(specs)):
                self.fill(k, states[k] if states is not None else None)

    # -- one training step -------------------------------------------------------------------
    def _multiplier(self, layer: int, steps: Sequence[int], batch: int) -> Tensor | None:
        """Inverted-dropout multiplier for one layer: [B, S] (0 off true units); without dropout
        the padding mask [1, S] where one is needed, else None."""
        S = self.layout.widths[layer]
        if not self.any_dropout:
            return None if self._pad_mask is None else self._pad_mask[:, :S]
        member, unit = self._key_columns[0][:S], self._key_columns[1][:S]
        if self.vectorized:  # keys and step counts on the device: no copy either way
            columns = column_keys_from(self._keys, self.steps_t, layer, member, unit)
        else:  # mixed on the host from the keys kept as ints
            columns = column_keys_from(self._key_list, list(steps), layer, member, unit)
        keep = dropout_keep_columns(columns, self._thresholds[:S], batch)  # [B, S]
        return torch.mul(keep, self._scale[:, :S])  # one pass: bool x float (where: 4x slower)

    def _product(self, h: Tensor, layer: int) -> Tensor:
        """``h_p @ W_p`` of a hidden layer for every member that deep, over true widths only:
        [B, S] from [B, S] (padded columns, and those of shallower members, zero)."""
        z = self._scratch(h.shape[0], layer)
        for bucket in self.layout.buckets:
            if bucket.depth <= layer or self._free(bucket):
                continue
            if bucket.size == 1:
                cols = self.layout.product_columns(bucket.first)
                torch.mm(h[:, cols], self.W[bucket.first][layer], out=z[:, cols])
            else:
                w = self.layout.bucket_view(self.weights, bucket, layer)
                bucket.view(z).copy_(torch.bmm(bucket.view(h), w))
        return z

    def _forward(
        self, xs: Sequence[Tensor], steps: Sequence[int] | None
    ) -> tuple[Tensor, list[Tensor], list[Saved]]:
        """Logits [P, B, C] of every member (member p reads ``xs[p]`` [B, D]), each hidden
        layer's output [B, S] and, in training, what each layer keeps for the backward pass.
        A member's output layer reads the output of its own last hidden layer.

        With ``steps`` (each member's optimizer step, which keys its dropout masks): training
        mode (batch statistics, dropout). Without: eval mode (running statistics, no dropout),
        where no layer's output is kept: each member's logits are taken as soon as its last
        layer is done, so an evaluation pass holds two layers' activations, not all of them.
        """
        lay, L = self.layout, self.n_layers
        B = xs[0].shape[0]
        saved: list[Saved] = []
        z = self._scratch(B, 0)
        for bucket in lay.buckets:
            k0 = bucket.first
            if self._free(bucket):
                continue
            if bucket.size == 1:
                torch.mm(xs[k0], self.W[k0][0], out=z[:, lay.product_columns(k0)])
            else:  # [n, B, H] = x [B, D] (or [n, B, D]) @ [n, D, H]
                w = lay.bucket_view(self.weights, bucket, 0)
                bucket.view(z).copy_(torch.matmul(_inputs(xs, bucket), w))
        h_in: Tensor | list[Tensor] = list(xs)
        h = z  # replaced below; typed for the loop
        outs: list[Tensor] = []
        logits = self._new_logits(B)
        for layer in range(L):
            if layer > 0:
                z = self._product(h, layer)
            bn = None
            S = lay.widths[layer]
            if self.batch_norm:
                gamma, beta = self.A[f"gamma{layer}"][:S], self.A[f"beta{layer}"][:S]
                if steps is None:
                    mean, var = self.running_mean[layer, :S], self.running_var[layer, :S]
                    out = F.batch_norm_eval(z, gamma, beta, mean, var, self.bn_eps)
                else:
                    out, mean, inv_std = F.batch_norm(z, gamma, beta, self.bn_eps)
                    bn = (z, gamma, mean, inv_std)
            else:
                out = z + self.A[f"b{layer}"][:S]
            a = F.activation(self.activation, out)  # [B, S]
            if steps is None:
                h = a
                self._logits_into(logits, h, layer + 1)
                continue
            m = self._multiplier(layer, steps, B)
            saved.append((h_in, a, m, bn))
            h = a if m is None else a * m
            outs.append(h)
            h_in = h
            self._logits_into(logits, h, layer + 1)
        return logits, outs, saved

    def _new_logits(self, batch: int) -> Tensor:
        """Room for every member's logits [P, B, C] (zeros where a free slot writes none)."""
        make = torch.empty if not self._n_free else torch.zeros
        return make(
            self.n_members, batch, self.layout.n_classes, dtype=self.dtype, device=self.device
        )

    def _logits_into(self, logits: Tensor, h: Tensor, depth: int) -> None:
        """The logits [P, B, C] of the members ``depth`` layers deep, from ``h``, the output of
        their last hidden layer."""
        b_out = self.A["b_out"]  # [P, C]
        for bucket in self.layout.by_depth.get(depth, ()):
            k0, k1 = bucket.first, bucket.stop
            if self._free(bucket):
                continue
            if bucket.size == 1:
                cols = self.layout.product_columns(k0)
                torch.addmm(b_out[k0], h[:, cols], self.W[k0][depth], out=logits[k0])
            else:
                w = self.layout.bucket_view(self.weights, bucket, depth)
                torch.baddbmm(b_out[k0:k1].unsqueeze(1), bucket.view(h), w, out=logits[k0:k1])

    def train_step(
        self,
        xs: Sequence[Tensor],
        ys: Tensor,
        lrs: Sequence[float],
        active: Sequence[bool] | None = None,
    ) -> Tensor:
        """One mini-batch for every member; returns the per-member loss [P].

        ``xs[p]`` [B, D] and ``ys[p]`` are member p's batch (``ys`` [P, B], or [B] when all
        share it); ``lrs`` this epoch's learning rates; ``active`` says which slots train (see
        :meth:`set_active`; default: as they are). A member's step counter keys its dropout
        masks and Adam's bias correction, so it trains the same whichever members share the
        step.
        """
        L = self.n_layers
        B = xs[0].shape[0]
        if self.batch_norm and B < 2:  # the running variance's B / (B - 1), torch's refusal
            raise InvalidValue(
                "batch_norm", f"needs mini-batches of at least 2 examples in training, got {B}"
            )
        if active is not None:
            for k, on in enumerate(active):
                if on != self.active[k]:
                    self.set_active(k, on)
        logits, outs, saved = self._forward(xs, self.steps)
        self.last_correct = F.correct_count(logits, ys)  # for the epoch's training accuracy
        loss, dlogits = F.softmax_cross_entropy(logits, ys)

        # freeze members whose loss is not finite, before the update reaches them -----------
        active_t = self.active_t
        self.alive_t &= torch.isfinite(loss) | ~active_t
        training_t = active_t & self.alive_t
        train_columns = None
        training: list[bool] = []
        if self.vectorized:  # no host sync: masks on the device
            train_columns = training_t[self._column_member]  # [S]
        else:
            training = training_t.tolist()  # the one host sync of a step (free on a CPU)
            if not all(training):
                train_columns = training_t[self._column_member]
        stats = [(layer, bn[2], bn[3]) for layer, (*_, bn) in enumerate(saved) if bn is not None]
        if self.vectorized:
            if stats:
                assert train_columns is not None
                self._update_running_together(stats, B, train_columns)
        else:
            for layer, mean, inv_std in stats:
                S = self.layout.widths[layer]
                train = None if train_columns is None else train_columns[:S]
                self._update_running(layer, mean, inv_std, B, train)

        # backward ---------------------------------------------------------------------------
        lay, gA = self.layout, self.gA
        torch.sum(dlogits, dim=1, out=gA["b_out"])
        # the gradient of each hidden layer's output, [B, S]: from the output layer for the
        # members it is the last of, from the layer above for the deeper ones
        dhs = [self._scratch(B, layer) for layer in range(L)]
        self._backward_product(outs, dlogits, dhs, None)
        for layer in reversed(range(L)):
            h_in, a, m, bn = saved[layer]
            dh = dhs[layer]
            da = dh if m is None else dh * m
            dout = F.activation_backward(self.activation, da, a)  # [B, S]
            S = lay.widths[layer]
            if bn is not None:
                z, gamma, mean, inv_std = bn
                dz, dgamma, dbeta = F.batch_norm_backward(
                    dout, z, gamma, mean, inv_std, self.bn_eps
                )
                gA[f"gamma{layer}"][:S].copy_(dgamma)
                gA[f"beta{layer}"][:S].copy_(dbeta)
                if S < lay.S:  # the optimizer used the buffer as scratch
                    gA[f"gamma{layer}"][S:].zero_()
                    gA[f"beta{layer}"][S:].zero_()
            else:
                dz = dout
                torch.sum(dout, dim=0, out=gA[f"b{layer}"][:S])
                if S < lay.S:
                    gA[f"b{layer}"][S:].zero_()
            if layer > 0:
                self._backward_product(outs, dz, dhs, layer)
            else:
                assert isinstance(h_in, list)
                for bucket in lay.buckets:
                    k0 = bucket.first
                    if self._free(bucket):
                        continue
                    if bucket.size == 1:
                        cols = lay.product_columns(k0)
                        torch.mm(h_in[k0].t(), dz[:, cols], out=self.gW[k0][0])
                    else:  # [n, D, H] = x.T [D, B] (or [n, D, B]) @ dz [n, B, H]
                        x_t = _inputs(h_in, bucket).transpose(-1, -2)
                        grad = lay.bucket_view(self.grad_weights, bucket, 0)
                        grad.copy_(torch.matmul(x_t, bucket.view(dz)))

        self.steps_t += training_t
        hyper = self._hyper(lrs, training_t)  # this step's bias corrections, for both updates
        if self.vectorized:
            self._update_buckets(hyper, ~training_t)
            self.steps = [s + 1 for s in self.steps]
        else:
            self._update_members(lrs, training)
        self._update_aux(hyper, training_t, train_columns is not None)
        return loss

    def _backward_product(
        self, outs: list[Tensor], dout: Tensor, dhs: list[Tensor], layer: int | None
    ) -> None:
        """For ``z = h_p @ W_p`` of hidden layer ``layer`` (>= 1; None: each member's output
        layer, ``dout`` then [P, B, C]): the weight gradients, and the gradient of the layer's
        input ``h`` (the previous layer's output) written into that layer's ``dhs`` entry."""
        lay = self.layout
        for bucket in lay.buckets:
            k0, k1 = bucket.first, bucket.stop
            if layer is not None and bucket.depth <= layer:
                continue  # a shallower member: nothing of it in this layer
            if self._free(bucket):
                continue
            index = bucket.depth if layer is None else layer
            h, dh = outs[index - 1], dhs[index - 1]
            if bucket.size == 1:
                cols = lay.product_columns(k0)
                d = dout[k0] if layer is None else dout[:, cols]
                torch.mm(h[:, cols].t(), d, out=self.gW[k0][index])
                torch.mm(d, self.W[k0][index].t(), out=dh[:, cols])
            else:  # [n, H, H'] = h [n, H, B] @ d [n, B, H']; dh [n, B, H] = d @ W.T
                d = dout[k0:k1] if layer is None else bucket.view(dout)
                grad = lay.bucket_view(self.grad_weights, bucket, index)
                grad.copy_(torch.bmm(bucket.view(h).transpose(1, 2), d))
                w = lay.bucket_view(self.weights, bucket, index)
                bucket.view(dh).copy_(torch.bmm(d, w.transpose(1, 2)))

    def _update_running(
        self, layer: int, mean: Tensor, inv_std: Tensor, batch: int, train: Tensor | None
    ) -> None:
        """Running averages of the batch statistics (the variance unbiased, as torch keeps it),
        for the members that train this step."""
        S = mean.shape[0]  # the layer's width
        var = inv_std.pow(-2) - self.bn_eps  # the batch's biased variance [S]
        m = self.bn_momentum[:S]
        running_mean, running_var = self.running_mean[layer, :S], self.running_var[layer, :S]
        new_mean = torch.lerp(mean, running_mean, m)
        new_var = torch.lerp(var * (batch / (batch - 1)), running_var, m)
        if train is not None:
            new_mean = torch.where(train, new_mean, running_mean)
            new_var = torch.where(train, new_var, running_var)
        running_mean.copy_(new_mean)
        running_var.copy_(new_var)

    def _update_running_together(
        self, stats: list[tuple[int, Tensor, Tensor]], batch: int, train: Tensor
    ) -> None:
        """:meth:`_update_running` for every layer at once, in multi-tensor ops (one kernel
        each on a GPU, instead of about nine per layer): the vectorized path. A column that does
        not train this step moves by a weight of exactly 0."""
        widths = [self.layout.widths[layer] for layer, _, _ in stats]
        weight = torch.where(train, 1.0 - self.bn_momentum, 0.0)  # [S]: how far each moves
        weights = [weight[:S] for S in widths]
        var = torch._foreach_pow([inv_std for _, _, inv_std in stats], -2)
        torch._foreach_sub_(var, self.bn_eps)  # the batch's biased variance ...
        torch._foreach_mul_(var, batch / (batch - 1))  # ... unbiased, as torch keeps it
        means = [mean for _, mean, _ in stats]
        rows = [layer for layer, _, _ in stats]
        running_mean = [self.running_mean[r, :S] for r, S in zip(rows, widths, strict=True)]
        running_var = [self.running_var[r, :S] for r, S in zip(rows, widths, strict=True)]
        torch._foreach_lerp_(running_mean, means, weights)
        torch._foreach_lerp_(running_var, var, weights)

    def _update_members(self, lrs: Sequence[float], training: list[bool]) -> None:
        """Each training member's weights on their own, in cache-sized pieces, with its
        hyperparameters as floats (the CPU path)."""
        for k, moving in enumerate(training):
            if not moving:
                continue
            self.steps[k] += 1
            t = self.steps[k]
            b1, b2 = self.beta1[k], self.beta2[k]
            lo, hi = self.layout.segment(k)
            if self.optimizer.name == "adam":
                self._fused_adam(k, lo, hi, lrs[k], t)
                continue
            hyper = Hyper(
                lr=lrs[k],
                beta1=b1,
                beta2=b2,
                eps=self.eps[k],
                bias_correction1=1.0 - b1**t,
                bias_correction2_sqrt=math.sqrt(1.0 - b2**t),
                l2=self.l2[k],
                decoupled=self.decoupled[k],
            )
            for start in range(lo, hi, self.piece):
                piece = slice(start, min(start + self.piece, hi))
                self.optimizer.step(
                    self.weights[piece],
                    self.grad_weights[piece],
                    [s[piece] for s in self.state_weights],
                    hyper,
                    coupled_decay=self.l2[k] > 0,
                    decoupled_decay=self.decoupled[k] > 0,
                )

    def _fused_adam(self, k: int, lo: int, hi: int, lr: float, step: int) -> None:
        """Adam (or AdamW, for decoupled decay) on member ``k``'s weights in one pass: torch's
        fused kernel reads and writes each entry once, 3x faster on this CPU than the update
        written as tensor operations, with the same rule as ``torch.optim.Adam``."""
        segment = slice(lo, hi)
        fused = torch._fused_adamw_ if self.decoupled[k] > 0 else torch._fused_adam_
        fused(
            [self.weights[segment]],
            [self.grad_weights[segment]],
            [s[segment] for s in self.state_weights[:1]],
            [s[segment] for s in self.state_weights[1:]],
            [],
            [torch.tensor(float(step), device=self.device)],
            lr=lr,
            beta1=self.beta1[k],
            beta2=self.beta2[k],
            weight_decay=self.decoupled[k] if self.decoupled[k] > 0 else self.l2[k],
            eps=self.eps[k],
            amsgrad=False,
            maximize=False,
        )

    def _lr_tensor(self, lrs: Sequence[float]) -> Tensor:
        """This epoch's learning rates on the device (copied once per epoch, not per step)."""
        key = tuple(lrs)
        if self._lr_cache is None or self._lr_cache[0] != key:
            self._lr_cache = (key, torch.tensor(key, dtype=torch.float64, device=self.device))
        return self._lr_cache[1]

    def _hyper(self, lrs: Sequence[float], training: Tensor) -> dict[str, Tensor]:
        """Per-member hyperparameters of this step as [P] device tensors in the group's dtype
        (the step-dependent ones computed in float64 first); a frozen member gets lr 0 (so it
        moves by exactly 0)."""
        h = dict(self._per_member_typed)
        t = self.steps_t.clamp(min=1.0)
        beta1, beta2 = self._per_member["beta1"], self._per_member["beta2"]
        h["lr"] = (self._lr_tensor(lrs) * training).to(self.dtype)
        h["bias_correction1"] = (1.0 - beta1**t).to(self.dtype)
        h["bias_correction2_sqrt"] = torch.sqrt(1.0 - beta2**t).to(self.dtype)
        return h

    def _update_buckets(self, h: dict[str, Tensor], frozen: Tensor) -> None:
        """The weights of each bucket (members of one width class) in one update,
        hyperparameters as [n, 1] tensors, no host sync (the GPU path)."""
        for bucket in self.layout.buckets:
            k0, k1, n = bucket.first, bucket.stop, bucket.size
            lo, size = self.layout.segment_starts[k0], self.layout.segment_sizes[k0]

            def rows(buffer: Tensor, lo: int = lo, size: int = size, n: int = n) -> Tensor:
                return buffer[lo : lo + n * size].view(n, size)

            col = {name: v[k0:k1].view(n, 1) for name, v in h.items()}
            self._bucket_update(  # zeroes the NaN of the diverged and what free slots computed
                self.optimizer,
                rows(self.weights),
                rows(self.grad_weights),
                [rows(s) for s in self.state_weights],
                Hyper(**col),
                frozen[k0:k1].view(n, 1),
                any(self.l2[k0:k1]),
                any(self.decoupled[k0:k1]),
            )

    def _update_aux(self, h: dict[str, Tensor], training: Tensor, masked: bool) -> None:
        """The shared buffer of biases and batch-norm parameters: per-entry hyperparameters
        (the constant ones spread once, at construction); frozen members get lr 0 and no
        gradient."""
        entry = dict(self._aux_static)
        for name in ("lr", "bias_correction1", "bias_correction2_sqrt"):
            entry[name] = h[name][self._aux_member]
        if masked:
            keep = training[self._aux_member]
            self.grad_aux.copy_(torch.where(keep, self.grad_aux, 0.0))
        self.optimizer.step(
            self.aux,
            self.grad_aux,
            self.state_aux,
            Hyper(**entry),
            coupled_decay=False,
            decoupled_decay=False,
        )

    # -- helpers of the step -----------------------------------------------------------------
    def _scratch(self, batch: int, layer: int) -> Tensor:
        """A [B, S] buffer the products of ``layer`` write into: zeros where some of its
        columns are written by none (padding, shallower members, free slots), else empty."""
        make = torch.empty if self.layout.covered[layer] and not self._n_free else torch.zeros
        return make(batch, self.layout.widths[layer], dtype=self.dtype, device=self.device)

    def _free(self, bucket: Bucket) -> bool:
        """A bucket of one member whose slot is free: nothing of it is computed."""
        return bucket.size == 1 and not self.active[bucket.first]

    # -- evaluation --------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: Tensor, y: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
        """Mean loss and accuracy per member [P] in eval mode (running statistics, no dropout)."""
        P = self.n_members
        loss_sum = torch.zeros(P, dtype=torch.float64, device=self.device)
        correct = torch.zeros(P, dtype=torch.int64, device=self.device)
        for start in range(0, x.shape[0], chunk):
            xb, yb = x[start : start + chunk], y[start : start + chunk]
            logits, _, _ = self._forward([xb] * P, None)
            batch_loss, batch_correct = F.loss_and_correct(logits, yb)
            loss_sum += batch_loss.to(torch.float64)
            correct += batch_correct
        n = x.shape[0]
        return loss_sum / n, correct.to(torch.float64) / n

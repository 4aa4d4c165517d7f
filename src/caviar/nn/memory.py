"""How much memory a member needs, how much the device has, and how to split a population.

The estimate is deliberately generous (it counts the temporaries of a training step and of an
evaluation pass), because the promise is that a population too large for the device is split
into as many members at once as fit, never ended by an out-of-memory error. The pool also halves
a group and retries its epoch if the device runs out anyway (another process may have taken
memory).
"""

from __future__ import annotations

import os

import torch

from caviar.nn.optim import OPTIMIZERS
from caviar.nn.ragged import padded_width
from caviar.nn.spec import MemberSpec

#: activations and temporaries kept per unit of a [B, H] layer during a training step
_TRAIN_ACTIVATIONS = 10
#: likewise for an evaluation pass (no backward)
_EVAL_ACTIVATIONS = 4


class InsufficientMemory(RuntimeError):
    """Not even one member fits on the device."""


def n_parameters(spec: MemberSpec, n_inputs: int, n_classes: int) -> int:
    """Parameters one member holds in a group, its width rounded up as the layout does."""
    H, L = padded_width(spec.hidden_units), spec.n_layers
    per_layer = 2 * H if spec.batch_norm else H
    return n_inputs * H + (L - 1) * H * H + H * n_classes + L * per_layer + n_classes


def bytes_per_member(
    spec: MemberSpec, n_inputs: int, n_classes: int, *, eval_batch: int, itemsize: int
) -> int:
    """Device bytes one member needs while training: parameters, gradients and optimizer
    state, plus the activations of a training step or an evaluation pass."""
    n = n_parameters(spec, n_inputs, n_classes)
    slots = len(OPTIMIZERS[spec.optimizer].slots)
    B, H, L, C = spec.batch_size, padded_width(spec.hidden_units), spec.n_layers, n_classes
    train = _TRAIN_ACTIVATIONS * B * H * L + 4 * B * C
    evaluation = _EVAL_ACTIVATIONS * eval_batch * H + 4 * eval_batch * C
    dropout = 3 * 4 * B * H if spec.dropout > 0 else 0  # int32 hashes of the mask
    return itemsize * (n * (2 + slots) + max(train, evaluation)) + dropout


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is the device running out of memory."""
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def available_bytes(device: torch.device) -> int:
    """Memory a population may use on ``device``: 80 % of free GPU memory, or half of the
    memory the operating system reports available."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(0.8 * free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30

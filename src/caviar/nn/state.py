"""A member's whole training state, in the member's own shapes, independent of any group.

Restoring a state and training on gives exactly what training straight through gives: weights,
optimizer state (and step count), batch-norm running statistics, whether it diverged, and its
position in the data order (the next epoch and mini-batch). No random-generator state is needed:
every random number a member sees is a function of its seed and that position
(:mod:`caviar.nn.randomness`).

That position means something only for the data order it was taken in, so a state records what
the order depends on (the data seed and the number of training examples) beside its spec, and
continuing it checks everything: the spec (every hyperparameter but ``epochs``, which may grow),
the data, the dtype and every tensor's shape (:meth:`MemberState.check_continues`). A mismatch is
an error naming the key, the stored and the given value, never a silently different run.
"""

from __future__ import annotations

import io
import itertools
import os
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from caviar.core.atomic import write_atomically
from caviar.core.errors import InvalidValue
from caviar.nn.optim import OPTIMIZERS
from caviar.nn.spec import MID_RUN, MemberSpec

_OWNER = "MemberState"

#: spec fields a continued member may change: how many epochs it runs in all
_MAY_CHANGE = frozenset({"epochs"})


@dataclass
class MemberState:
    """Everything needed to continue training one member exactly."""

    spec: MemberSpec
    n_inputs: int
    n_classes: int
    params: dict[str, Tensor]  # "W0".."WL" [fan_in, fan_out]; "b*" or "gamma*"/"beta*"
    optimizer: dict[str, dict[str, Tensor]]  # slot ("exp_avg", ...) -> param name -> tensor
    optimizer_steps: int
    running_mean: list[Tensor] = field(default_factory=list)  # per hidden layer [units]
    running_var: list[Tensor] = field(default_factory=list)
    epoch: int = 0  # position: the next epoch to run ...
    batch: int = 0  # ... and the next mini-batch in it
    diverged: bool = False
    # what the position refers to (None in states saved before they were recorded)
    data_seed: int | None = None  # the seed of the data order
    n_train: int | None = None  # training examples: the order is a permutation of them
    # what was done to raw examples before training (caviar.data.preprocessing's dict form),
    # recorded in kept models; None in states saved before it was, and during training
    preprocessing: dict[str, Any] | None = None

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of every parameter the spec implies, by name."""
        spec = self.spec
        sizes = spec.layer_sizes(self.n_inputs, self.n_classes)
        shapes: dict[str, tuple[int, ...]] = {}
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            shapes[f"W{layer}"] = (fan_in, fan_out)
            if spec.batch_norm and layer < spec.n_layers:
                shapes[f"gamma{layer}"] = shapes[f"beta{layer}"] = (fan_out,)
            else:
                shapes[f"b{layer}"] = (fan_out,)
        return shapes

    def check_model(self, spec: MemberSpec, n_inputs: int, n_classes: int) -> None:
        """An :class:`~caviar.core.errors.InvalidValue` unless the state is a model of ``spec`` for
        data of ``n_inputs`` features and ``n_classes`` classes, every tensor in its shape."""
        for f in fields(MemberSpec):
            if f.name not in _MAY_CHANGE:
                _same(f.name, getattr(self.spec, f.name), getattr(spec, f.name))
        _same("n_inputs", self.n_inputs, n_inputs)
        _same("n_classes", self.n_classes, n_classes)
        self.check_shapes()
        slots = OPTIMIZERS[spec.optimizer].slots
        if sorted(self.optimizer) != sorted(slots):
            raise InvalidValue(
                _OWNER, f"optimizer slots must be {list(slots)}, got {sorted(self.optimizer)}"
            )
        expected = self.param_shapes()
        for slot in slots:
            _shapes(self.optimizer[slot], expected, slot)

    def check_shapes(self) -> None:
        """An :class:`~caviar.core.errors.InvalidValue` naming every parameter and batch-norm
        statistic that is missing, extra or not in the shape the state's own spec implies:
        what a model needs, whatever its optimizer state."""
        spec = self.spec
        n_stats = spec.n_layers if spec.batch_norm else 0
        wrong = _shape_problems(self.params, self.param_shapes(), "")
        for name, stats in (("running_mean", self.running_mean), ("running_var", self.running_var)):
            if len(stats) != n_stats:
                wrong.append(f"{name} must hold {n_stats} layers' statistics, got {len(stats)}")
                continue
            wrong += _shape_problems(
                {f"{name}[{i}]": t for i, t in enumerate(stats)},
                {f"{name}[{i}]": (spec.hidden_units,) for i in range(n_stats)},
                "",
            )
        if wrong:
            raise InvalidValue(_OWNER, "; ".join(wrong))

    def check_continues(
        self,
        spec: MemberSpec,
        *,
        n_inputs: int,
        n_classes: int,
        data_seed: int,
        n_train: int,
        dtype: torch.dtype,
    ) -> None:
        """An :class:`~caviar.core.errors.InvalidValue` unless training ``spec`` on from this state
        continues the run it was saved from: :meth:`check_model`, the same data order (data
        seed and number of training examples) and the same dtype."""
        for name, stored in (("data_seed", self.data_seed), ("n_train", self.n_train)):
            if stored is None:
                raise InvalidValue(
                    _OWNER,
                    f"the state does not record its {name} (saved by an older caviar), so its "
                    f"position in the data order is unknown and it cannot be continued exactly",
                )
        self.check_model(spec, n_inputs, n_classes)
        _same("data_seed", self.data_seed, data_seed)
        _same("n_train", self.n_train, n_train)
        tensors = [
            *self.params.values(),
            *(t for by_name in self.optimizer.values() for t in by_name.values()),
            *self.running_mean,
            *self.running_var,
        ]
        for t in tensors:
            _same("dtype", t.dtype, dtype)

    def with_spec(self, spec: MemberSpec) -> MemberState:
        """The same state continued under ``spec``, which may differ from the stored spec only
        in the hyperparameters a running member may change (:data:`~caviar.nn.spec.MID_RUN`):
        ``caviar panda set`` at an epoch boundary. Any other difference is an InvalidValue."""
        for f in fields(MemberSpec):
            if f.name not in MID_RUN:
                _same(f.name, getattr(self.spec, f.name), getattr(spec, f.name))
        return replace(self, spec=spec)

    def fresh_optimizer(self) -> MemberState:
        """The same weights and running statistics with the optimizer's buffers (Adam's m and
        v, momentum) zeroed and its step count at 0: a branch with fresh optimizer buffers."""
        zeroed = {
            slot: {name: torch.zeros_like(t) for name, t in by_name.items()}
            for slot, by_name in self.optimizer.items()
        }
        return replace(self, optimizer=zeroed, optimizer_steps=0)

    def _payload(self) -> dict[str, Any]:
        return {
            "spec": asdict(self.spec),
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "params": {k: v.cpu() for k, v in self.params.items()},
            "optimizer": {
                slot: {k: v.cpu() for k, v in by_name.items()}
                for slot, by_name in self.optimizer.items()
            },
            "optimizer_steps": self.optimizer_steps,
            "running_mean": [t.cpu() for t in self.running_mean],
            "running_var": [t.cpu() for t in self.running_var],
            "epoch": self.epoch,
            "batch": self.batch,
            "diverged": self.diverged,
            "data_seed": self.data_seed,
            "n_train": self.n_train,
            "preprocessing": self.preprocessing,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the state with ``torch.save`` (tensors on the CPU), whole or not at all: a
        failed write (a full disk) is a :class:`~caviar.core.atomic.WriteError` naming the
        file, and leaves no truncated file (:func:`~caviar.core.atomic.write_atomically`)."""
        write_atomically(path, self.to_bytes())

    def to_bytes(self) -> bytes:
        """The state as :meth:`save` writes it, in memory (tensors and plain values only)."""
        buffer = io.BytesIO()
        torch.save(self._payload(), buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MemberState:
        """A state from a file :meth:`save` wrote; a file that holds no state (another file,
        truncated, empty) is a :class:`DamagedState` naming it and what is wrong."""
        data = Path(path).read_bytes()
        try:
            return cls.from_bytes(data)
        except DamagedState as e:
            raise DamagedState(repr(str(path)), e.why) from None

    @classmethod
    def from_bytes(cls, data: bytes) -> MemberState:
        """A state from :meth:`to_bytes` (read with ``weights_only``: nothing is unpickled but
        tensors and plain values); bytes that hold no state are a :class:`DamagedState`."""
        try:
            payload = torch.load(io.BytesIO(data), weights_only=True)
        except Exception:  # any bytes at all: torch's many errors say one thing here
            raise DamagedState("the bytes given", _unreadable(data)) from None
        return cls._from_payload(payload)

    @classmethod
    def _from_payload(cls, payload: Any) -> MemberState:
        names = {f.name for f in fields(cls)}
        if not isinstance(payload, dict) or not {"spec", "params"} <= set(payload) <= names:
            held = (
                sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
            )
            raise DamagedState(
                "the bytes given", f"a PyTorch file of something else, holding {held}"
            )
        try:
            state = cls(**{**payload, "spec": MemberSpec(**payload["spec"])})
            state.check_shapes()
        except (InvalidValue, TypeError, AttributeError, KeyError, ValueError) as e:
            raise DamagedState("the bytes given", f"its contents are not a model's: {e}") from None
        return state


class DamagedState(InvalidValue):
    """Bytes or a file that hold no member state: another file, truncated, or empty. ``why``
    says which; the message names the file and what to do."""

    def __init__(self, source: str, why: str) -> None:
        self.source, self.why = source, why
        super().__init__(
            "model file",
            f"{source} is not a caviar model file, or it is damaged ({why}); remove it (a "
            f"study then goes on without that kept model), or put back the file caviar saved",
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.source, self.why))


def _unreadable(data: bytes) -> str:
    """Why ``torch.load`` could not read ``data``, in words (torch's own error names a zip
    record or a pickle opcode, which helps no one here)."""
    if not data:
        return "it is empty"
    if data.startswith(b"PK\x03\x04"):  # a zip archive, as torch.save writes
        return "a PyTorch file cut short or overwritten"
    return "not a PyTorch file"


def _same(key: str, stored: Any, given: Any) -> None:
    if type(stored) is not type(given) or stored != given:
        raise InvalidValue(_OWNER, f"the state was trained with {key}={stored!r}, not {given!r}")


def _shape_problems(
    tensors: dict[str, Tensor], expected: dict[str, tuple[int, ...]], slot: str
) -> list[str]:
    """What is wrong with ``tensors`` against ``expected``: a tensor in another shape, missing
    or extra, one message each."""

    def label(name: str) -> str:
        return f"{slot}[{name}]" if slot else name

    return [
        f"{label(name)} must be {list(shape)}, got {got}"
        for name, shape in expected.items()
        if (got := list(tensors[name].shape) if name in tensors else "none") != list(shape)
    ] + [
        f"{label(name)} is not one of {list(expected)}"
        for name in sorted(set(tensors) - set(expected))
    ]


def _shapes(tensors: dict[str, Tensor], expected: dict[str, tuple[int, ...]], slot: str) -> None:
    """Each tensor in its expected shape, and no tensor missing or extra; the error names every
    one that is not."""
    wrong = _shape_problems(tensors, expected, slot)
    if wrong:
        raise InvalidValue(_OWNER, "; ".join(wrong))

"""A group's training step captured once and replayed: a CUDA graph on a GPU.

On a GPU a step of a large pool is a few hundred kernels, each launched from Python; a CUDA
graph records them once and replays them with one launch, so the host no longer paces the
device. What a replay may not do is any host work: every value that changes from step to step
must live in a device buffer the graph reads. So the step reads

- its mini-batch through index buffers (one per epoch its members are at) that the pool fills
  before each replay with a device-to-device copy of that epoch's order,
- this epoch's learning rates from the group's device buffer (``Group.set_lrs``),
- step counts, dropout keys and divergence from device tensors (the vectorized path never
  syncs with the host: tests/nn/test_nn_vectorized.py),

and writes its loss and correct counts to tensors the capture made. A capture is valid while
the group, the batch size, the epochs its members are at and their learning rates stay the
same: the pool makes one per group per epoch, after a first eager step (which warms the
allocator and compiles the fused update), and drops it when the epoch ends.

:class:`ReplayGraph` records the ATen calls of one step and replays them on any device with the
same tensors: what a CUDA graph does, minus the launch savings. The tests use it on the CPU to
check that the step is capturable: a host value baked into the recording (a Python float that
should have been a buffer) shows up as a result that differs from the eager run's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode

from caviar.core.constraints import one_of
from caviar.nn.device import warn_fallback
from caviar.nn.memory import is_out_of_memory
from caviar.nn.training_data import member_batches

if TYPE_CHECKING:
    from caviar.nn.group import Group


class StepGraph(Protocol):
    """A recorded step: ``capture(body)`` records ``body``, runs it once and returns its
    outputs; ``replay()`` runs the recording again, refreshing those outputs in place."""

    def capture(self, body: Callable[[], tuple[Tensor, ...]]) -> tuple[Tensor, ...]: ...

    def replay(self) -> None: ...


class CudaGraph:
    """A CUDA graph of the step (``torch.cuda.CUDAGraph``). A capture records without running,
    so :meth:`capture` replays once right after it."""

    def __init__(self) -> None:
        self.graph = torch.cuda.CUDAGraph()

    def capture(self, body: Callable[[], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        with torch.cuda.graph(self.graph):
            outputs = body()
        self.graph.replay()
        return outputs

    def replay(self) -> None:
        self.graph.replay()


class ReplayGraph:
    """The step's ATen calls recorded with their tensors as it runs, and called again on
    replay (see the module docstring)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...], dict[str, Any], Any]] = []

    def capture(self, body: Callable[[], tuple[Tensor, ...]]) -> tuple[Tensor, ...]:
        with _Recorder(self.calls):
            return body()

    def replay(self) -> None:
        for func, args, kwargs, out in self.calls:
            result = func(*args, **kwargs)
            if func.is_view or func._schema.is_mutable or "out" in kwargs:
                continue  # a view aliases what it aliased; in-place and out= wrote already
            for old, new in zip(_tensors(out), _tensors(result), strict=True):
                old.copy_(new)


class _Recorder(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Runs every call (so shapes and outputs exist) and lists it; host syncs are refused,
    as a CUDA capture refuses them."""

    def __init__(self, calls: list[tuple[Any, tuple[Any, ...], dict[str, Any], Any]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.calls = calls

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func.__name__.startswith(("_local_scalar_dense", "item")):
            raise RuntimeError(f"a host sync in a captured step: {func.__name__}")
        out = func(*args, **kwargs)
        self.calls.append((func, args, kwargs, out))
        return out


def _tensors(value: Any) -> list[Tensor]:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [v for v in value if isinstance(v, Tensor)]
    return []


def graph_factory(setting: str, device: torch.device) -> Callable[[], StepGraph] | None:
    """What a pool records its steps with for ``study.cuda_graphs`` = ``setting``: CUDA graphs
    on a CUDA device unless it is ``off``, else none (eager steps)."""
    one_of("auto", "on", "off").check(setting, "study.cuda_graphs")
    return CudaGraph if setting != "off" and device.type == "cuda" else None


class GraphedStep:
    """One group's training step for one epoch, recorded after a first eager step and
    replayed from then on (see the module docstring); falls back to eager steps, saying so
    once, if recording fails."""

    def __init__(
        self,
        group: Group,
        x: Tensor,
        y: Tensor,
        orders: dict[int, Tensor],
        epochs: list[int],
        lrs: list[float],
        batch: int,
        graph: Callable[[], StepGraph],
    ) -> None:
        self.group, self.x, self.y, self.orders = group, x, y, orders
        self.epochs, self.lrs, self.batch, self.new_graph = epochs, lrs, batch, graph
        # the mini-batch's example indices, one buffer per epoch the members are at
        self.index = {e: torch.empty(batch, dtype=torch.int64, device=x.device) for e in orders}
        self.graph: StepGraph | None = None
        self.outputs: tuple[Tensor, ...] = ()
        self.warm = False
        self.eager = False  # recording failed: every step eager

    def _body(self) -> tuple[Tensor, ...]:
        xs, ys = member_batches(self.x, self.y, self.index, self.epochs)
        loss = self.group.train_step(xs, ys, self.lrs)
        return loss, self.group.last_correct

    def __call__(self, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """The step on examples ``lo .. hi-1`` of each epoch's order: (loss [P], correct [P])."""
        for e, index in self.index.items():
            index.copy_(self.orders[e][lo:hi])  # device to device: no host work in the step
        if self.graph is not None:
            self.graph.replay()
        elif self.warm and not self.eager:
            try:
                graph = self.new_graph()
                self.outputs = graph.capture(self._body)
                self.graph = graph
            except Exception as error:  # a capture runs nothing when it fails
                if is_out_of_memory(error):
                    raise
                warn_fallback("capturing a training step", error, "steps run eagerly")
                self.eager = True
                self.outputs = self._body()
        else:
            self.warm = True  # the allocator and the compiled update, warmed up
            self.outputs = self._body()
        loss, correct = self.outputs
        return loss, correct

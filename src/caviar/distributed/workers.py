"""The worker side: a :class:`~caviar.nn.Pool` on one device, in a Ray actor's process.

A worker knows nothing of the study. Each round the driver sends the members that join and
leave, and the seconds left in the budget; the worker trains one epoch of every member it holds
and sends back what :meth:`Pool.step` gives (records, finished members, their final states
moved to the CPU so that a driver without a GPU can keep them). The class is plain Python: the
driver wraps it with ``ray.remote`` (:mod:`caviar.distributed.spread`), and tests may drive it
directly.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from caviar.core.threads import set_threads
from caviar.nn import MemberSpec, Pool, TrainingData, resolve_device
from caviar.nn.device import matmul_precision
from caviar.nn.engine import DTYPES
from caviar.nn.fused import wants_compile
from caviar.nn.graphs import graph_factory
from caviar.nn.memory import available_bytes
from caviar.nn.pool import RoundResult


@dataclass(frozen=True)
class WorkerInfo:
    """Where a worker runs, and what its device allows."""

    device: str
    host: str
    pid: int
    threads: int
    budget: int  # bytes a member may take there
    eval_batch: int

    def describe(self) -> str:
        return f"{self.device} on {self.host} (pid {self.pid})"


class PoolWorker:
    """One pool on one device, stepped by the driver."""

    def __init__(
        self,
        data: TrainingData,
        *,
        device: str,
        dtype: str,
        data_seed: int,
        train_metrics: str,
        threads: int,
        keep_states: bool,
        compile: str = "auto",
        cuda_graphs: str = "auto",
    ) -> None:
        # one thread per CPU slot Ray gave this worker: the same float results as a
        # single-process run with study.threads = 1, and no fight over the cores; never more
        # than the machine it runs on can (an InvalidValue, raised in the driver)
        set_threads(threads)
        self.device = resolve_device(device)
        self.dtype = DTYPES[dtype]
        self.keep_states = keep_states
        self.pool = Pool(
            data,
            data_seed=data_seed,
            device=self.device,
            dtype=self.dtype,
            train_metrics=train_metrics,
            keep_states=keep_states,
            compiled=wants_compile(compile, self.device),
            graphs=graph_factory(cuda_graphs, self.device),
        )
        self.info = WorkerInfo(
            device=str(self.device),
            host=socket.gethostname(),
            pid=os.getpid(),
            threads=threads,
            budget=available_bytes(self.device),
            eval_batch=self.pool.eval_batch,
        )

    def describe(self) -> WorkerInfo:
        return self.info

    def step(
        self, add: list[tuple[int, MemberSpec]], remove: list[int], seconds_left: float | None
    ) -> RoundResult:
        """Take the members that leave out, put the new ones in, and train one round; the
        round stops early once ``seconds_left`` have passed (see :meth:`Pool.step`)."""
        for key in remove:
            self.pool.remove(key)
        for key, spec in add:
            self.pool.add(key, spec)
        should_stop = None
        if seconds_left is not None:
            deadline = time.monotonic() + seconds_left

            def should_stop() -> bool:
                return time.monotonic() >= deadline

        with matmul_precision(self.device, self.dtype):
            return self.pool.step(should_stop)  # final states come on the CPU (member_state)

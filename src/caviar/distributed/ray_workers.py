"""Workers as Ray actors: the transport of a study spread over a Ray cluster (``--ray``).

The training data goes into Ray's object store once and every worker reads it from there; each
worker is an actor this driver owns, so Ray ends it when the driver dies.
"""

from __future__ import annotations

import contextlib
from typing import Any

from caviar.distributed.cluster import WorkerPlan, import_ray
from caviar.distributed.spread import StartTimeout
from caviar.distributed.workers import PoolWorker
from caviar.nn import TrainingData


class RayTransport:
    """Starts, calls and ends :class:`PoolWorker` actors on the connected Ray."""

    def __init__(self, training: TrainingData, *, threads: int, **options: Any) -> None:
        self.ray = import_ray()
        self.data = self.ray.put(training)  # once in the object store, shared by every worker
        self.actor = self.ray.remote(PoolWorker)
        self.threads, self.options = threads, options
        errors = self.ray.exceptions
        self.lost: tuple[type[Exception], ...] = (errors.RayActorError, errors.WorkerCrashedError)
        self.failed_start: tuple[type[Exception], ...] = (errors.RayError,)
        self.started: list[Any] = []

    def start(self, plan: WorkerPlan) -> Any:
        handle = self.actor.options(
            num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=0
        ).remote(
            self.data,
            device=plan.device,
            threads=self.threads if plan.device == "cpu" else 1,
            **self.options,
        )
        self.started.append(handle)
        return handle

    def call(self, handle: Any, method: str, *args: Any) -> Any:
        return getattr(handle, method).remote(*args)

    def get(self, pending: list[Any], timeout: float | None = None) -> list[Any]:
        try:
            results: list[Any] = self.ray.get(pending, timeout=timeout)
        except self.ray.exceptions.GetTimeoutError:
            raise StartTimeout from None
        return results

    def kill(self, handle: Any) -> None:
        with contextlib.suppress(Exception):  # it may be dead already
            self.ray.kill(handle, no_restart=True)

    def where(self) -> str:
        return f"the cluster has {self.ray.cluster_resources()}"

    def close(self) -> None:
        for handle in self.started:
            self.kill(handle)
        self.started.clear()

"""Where a spread study's workers run: the settings ``search.ray`` and ``search.devices`` turned
into a Ray connection (or none) and one :class:`WorkerPlan` per worker.

- ``ray = "auto"``: the cluster ``RAY_ADDRESS`` or the latest one started on this machine names,
  else a new local one (Ray's own rule for ``ray.init()``); an address: that cluster. A process
  that called ``ray.init`` itself keeps its connection (tests, notebooks).
- ``devices``: one worker per entry. ``cpu`` takes CPU slots (one per thread), ``cuda`` a GPU
  that Ray assigns, ``cuda:N`` GPU N of the machine it runs on (caviar places it, Ray does not).
  Without ``ray``, each worker is a process of this machine (no Ray needed). Left empty with
  ``ray``: one worker per GPU of the cluster, or, without GPUs (or with
  ``study.device = "cpu"``), one per CPU slot.
- ``devices = "auto"``: without ``ray``, one worker per core this process may run on
  (``study.threads`` cores each, one by default), or one per GPU where the study runs on GPUs;
  where that makes a single worker, no worker at all (one process does the same without the
  start). With ``ray``: as left empty.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch

from caviar.core.errors import InvalidValue
from caviar.core.threads import machine_cores
from caviar.nn import resolve_device

#: what a user without the extra reads
RAY_MISSING = "needs Ray, an optional extra: pip install 'caviar-tune[ray]'"


@dataclass(frozen=True)
class SpreadPlan:
    """What a spread run takes from a study: where its workers go (``search.ray``,
    ``search.devices``, ``study.device``, ``study.threads``) and how its members train. The
    search builds it (:meth:`caviar.search.config.StudyConfig.spread_plan`); this package never
    reads the config itself."""

    ray: str | None
    devices: tuple[str, ...]
    device: str
    threads: int | None
    dtype: str
    data_seed: int
    train_metrics: str
    keep_states: bool
    compile: str
    cuda_graphs: str

    def training_options(self) -> dict[str, Any]:
        """How every worker's pool trains, as keyword arguments of a transport."""
        return {
            "dtype": self.dtype,
            "data_seed": self.data_seed,
            "train_metrics": self.train_metrics,
            "keep_states": self.keep_states,
            "compile": self.compile,
            "cuda_graphs": self.cuda_graphs,
        }


def import_ray(owner: str = "search.ray") -> ModuleType:
    """The ``ray`` module, or an :class:`InvalidValue` saying how to install it."""
    try:
        import ray  # deferred: ray, an optional extra, only for a run on Ray
    except ImportError:
        raise InvalidValue(owner, RAY_MISSING) from None
    return ray


def worker_devices(plan: SpreadPlan) -> tuple[str, ...]:
    """``search.devices`` with ``auto`` made concrete on this machine (see the module's
    docstring); with ``ray``, ``auto`` is () (the cluster's resources decide)."""
    devices = plan.devices
    if devices != ("auto",):
        return devices
    if plan.ray is not None:
        return ()
    try:
        device = resolve_device(plan.device)
    except InvalidValue as e:
        raise e.at("study.device") from None
    found: tuple[str, ...]
    if device.type == "cuda" and device.index is not None:  # the study names one GPU
        found = (str(device),)
    elif device.type == "cuda":
        found = tuple(f"cuda:{i}" for i in range(torch.cuda.device_count()))
    else:
        found = ("cpu",) * (machine_cores() // (plan.threads or 1))
    return found if len(found) > 1 else ()


def is_spread(plan: SpreadPlan) -> bool:
    """Whether the plan spreads the pool over workers (``search.ray`` or ``search.devices``)."""
    return plan.ray is not None or bool(worker_devices(plan))


def is_local(plan: SpreadPlan) -> bool:
    """Whether the workers are processes of this machine (``search.devices`` without ``ray``)."""
    return plan.ray is None and bool(worker_devices(plan))


def describe_workers(plan: SpreadPlan) -> str:
    """Where the pool trains, in words: one process, worker processes, or Ray."""
    devices = worker_devices(plan)
    if plan.ray is not None:
        on = f" on {', '.join(devices)}" if devices else ""
        return f"workers of the Ray cluster {plan.ray!r}{on}"
    if devices:
        threads = plan.threads or 1
        return f"{len(devices)} worker processes ({', '.join(devices)}" + (
            f", {threads} thread{'s' if threads > 1 else ''} each)" if "cpu" in devices else ")"
        )
    return "one process"


def check_spread(plan: SpreadPlan) -> None:
    """Refuse a spread plan that cannot start, before any data is loaded: Ray missing for
    ``search.ray``, or a device this machine lacks for local workers."""
    if not is_local(plan):
        import_ray("search.ray")
    else:  # the workers run here: their devices must exist here
        for i, name in enumerate(worker_devices(plan)):
            try:
                resolve_device(name)
            except InvalidValue as e:
                raise e.at(f"search.devices[{i}]") from None


@dataclass(frozen=True)
class WorkerPlan:
    """One worker to start: the device it trains on and the Ray resources it takes."""

    device: str
    num_cpus: float
    num_gpus: float


def plan_workers(plan: SpreadPlan, resources: Mapping[str, float]) -> list[WorkerPlan]:
    """The workers for ``plan`` on a cluster with ``resources`` (``ray.cluster_resources()``)."""
    threads = plan.threads or 1
    devices = list(worker_devices(plan))
    if not devices:
        gpus = int(resources.get("GPU", 0))
        if gpus and plan.device != "cpu":
            devices = ["cuda"] * gpus
        else:
            devices = ["cpu"] * max(1, int(resources.get("CPU", 1)) // threads)
    plans = []
    for name in devices:
        if name == "cpu":
            plans.append(WorkerPlan("cpu", num_cpus=threads, num_gpus=0))
        elif name == "cuda":  # Ray assigns a GPU and shows the worker only that one
            plans.append(WorkerPlan("cuda", num_cpus=1, num_gpus=1))
        else:  # cuda:N, placed by caviar
            plans.append(WorkerPlan(name, num_cpus=1, num_gpus=0))
    return plans


def connect(plan: SpreadPlan) -> bool:
    """Connect to (or start) the Ray the plan names; True if this call started the
    connection (then :func:`disconnect` ends it after the run)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if plan.ray == "auto":
        ray.init(**quiet)
    else:
        ray.init(address=plan.ray, **quiet)
    return True


def disconnect() -> None:
    import_ray().shutdown()

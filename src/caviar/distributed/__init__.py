"""A study's pool spread over workers: one pool per device, the study in the driver.

``caviar tune CONFIG --ray auto`` (or ``search.ray``): workers on a Ray cluster;
``--devices cpu,cpu``, ``cuda:0,cuda:1`` or ``auto`` alone (``search.devices``): worker
processes of this machine, no Ray needed. Ray is an optional extra (``pip install
'caviar-tune[ray]'``); this package imports it only when a run on Ray starts. See
``docs/distributed.md``.
"""

from caviar.distributed.cluster import (
    RAY_MISSING,
    SpreadPlan,
    WorkerPlan,
    check_spread,
    connect,
    describe_workers,
    disconnect,
    import_ray,
    is_local,
    is_spread,
    plan_workers,
    worker_devices,
)
from caviar.distributed.launch import open_spread
from caviar.distributed.spread import SpreadPool, StartTimeout, Transport, WorkersLost
from caviar.distributed.workers import PoolWorker, WorkerInfo

__all__ = [
    "RAY_MISSING",
    "PoolWorker",
    "SpreadPlan",
    "SpreadPool",
    "StartTimeout",
    "Transport",
    "WorkerInfo",
    "WorkerPlan",
    "WorkersLost",
    "check_spread",
    "connect",
    "describe_workers",
    "disconnect",
    "import_ray",
    "is_local",
    "is_spread",
    "open_spread",
    "plan_workers",
    "worker_devices",
]

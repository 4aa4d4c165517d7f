"""A study's pool spread over Ray workers: one pool per device, the study in the driver.

``caviar tune CONFIG --ray auto`` (or ``search.ray``) and ``--devices cuda:0,cuda:1`` (or
``search.devices``). Ray is an optional extra (``pip install 'caviar-tune[ray]'``); this package
imports it only when a spread run starts. See ``docs/distributed.md``.
"""

from caviar.distributed.cluster import (
    RAY_MISSING,
    WorkerPlan,
    check_spread,
    connect,
    disconnect,
    import_ray,
    is_spread,
    plan_workers,
)
from caviar.distributed.spread import SpreadPool, WorkersLost, open_spread
from caviar.distributed.workers import PoolWorker, WorkerInfo

__all__ = [
    "RAY_MISSING",
    "PoolWorker",
    "SpreadPool",
    "WorkerInfo",
    "WorkerPlan",
    "WorkersLost",
    "check_spread",
    "connect",
    "disconnect",
    "import_ray",
    "is_spread",
    "open_spread",
    "plan_workers",
]

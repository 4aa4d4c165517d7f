"""Start a spread pool: the workers a :class:`~caviar.distributed.cluster.SpreadPlan` asks
for, as processes of this machine (``search.devices`` alone) or as actors on Ray."""

from __future__ import annotations

from collections.abc import Callable

from caviar.distributed.cluster import SpreadPlan, import_ray, is_local, plan_workers
from caviar.distributed.local_workers import LocalTransport
from caviar.distributed.ray_workers import RayTransport
from caviar.distributed.spread import SpreadPool, Transport
from caviar.nn import MemberSpec, TrainingData
from caviar.nn.memory import n_parameters


def open_spread(
    plan: SpreadPlan,
    training: TrainingData,
    *,
    seconds_left: Callable[[], float | None] = lambda: None,
) -> SpreadPool:
    """Start the workers ``plan`` asks for: processes of this machine for ``search.devices``
    alone, else actors on the connected Ray (:func:`~caviar.distributed.cluster.connect`)."""
    threads = plan.threads or 1
    options = plan.training_options()
    transport: Transport
    if is_local(plan):
        plans = plan_workers(plan, {})
        transport = LocalTransport(training, threads=threads, **options)
    else:
        plans = plan_workers(plan, import_ray().cluster_resources())
        transport = RayTransport(training, threads=threads, **options)

    def work(spec: MemberSpec) -> float:
        return float(n_parameters(spec, training.n_inputs, training.n_classes))

    try:
        return SpreadPool(transport, plans, seconds_left=seconds_left, work=work)
    except BaseException:
        transport.close()
        raise

"""The vectorized step is capturable: recorded once and replayed (caviar.nn.graphs), it trains
what the eager step trains. On the CPU the recording is :class:`ReplayGraph` (the step's ATen
calls replayed with the same tensors, as a CUDA graph replays its kernels), so a host value
baked into the recording would show as a different result; on a GPU the last test runs the
real CUDA graphs."""

from __future__ import annotations

import warnings
from dataclasses import replace

import pytest
import torch
from _nn_support import assert_states_equal

from caviar.core.errors import InvalidValue
from caviar.nn import MemberSpec, Pool, device
from caviar.nn.graphs import CudaGraph, ReplayGraph, graph_factory

BASE = MemberSpec(seed=0, batch_size=16, lr=0.02, batch_norm=True, epochs=3)


def crowd() -> list[MemberSpec]:
    """Widths in two classes, dropout, coupled and decoupled decay, a decay schedule (the
    learning rates change every epoch), a deeper member, and one that diverges."""
    return [
        replace(BASE, seed=1, hidden_units=5, dropout=0.3, weight_decay=0.01),
        replace(BASE, seed=2, hidden_units=9, lr_decay="inverse_time", decay_rate=0.5),
        replace(BASE, seed=3, hidden_units=40, decoupled_weight_decay=True, weight_decay=0.1),
        replace(BASE, seed=4, hidden_units=7, n_layers=3, dropout=0.1),
        replace(BASE, seed=5, hidden_units=8, lr=1e300),  # diverges: frozen from then on
    ]


def run(data, dtype, graphs, device: str = "cpu") -> tuple[dict, dict]:
    """A vectorized pool: the crowd, then a newcomer an epoch later (members at two epochs);
    every member's records and final state."""
    pool = Pool(
        data,
        device=torch.device(device),
        dtype=dtype,
        keep_states=True,
        vectorized=True,
        graphs=graphs,
    )
    for k, spec in enumerate(crowd()):
        pool.add(k, spec)
    curves: dict[int, list] = {}
    states: dict[int, object] = {}
    rounds = 0
    while len(pool):
        if rounds == 1:
            pool.add(9, replace(BASE, seed=9, hidden_units=6, dropout=0.2))
        for e in pool.step().epochs:
            curves.setdefault(e.key, []).append(e.record)
            if e.finished:
                states[e.key] = e.state
        rounds += 1
    return curves, states


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_a_recorded_step_replayed_trains_exactly_what_the_eager_step_trains(data, dtype):
    recorded: list[ReplayGraph] = []

    def factory() -> ReplayGraph:
        recorded.append(ReplayGraph())
        return recorded[-1]

    eager = run(data, dtype, None)
    replayed = run(data, dtype, factory)
    assert len(recorded) >= 3 and all(g.calls for g in recorded)  # one a group and epoch
    assert repr(replayed[0]) == repr(eager[0])  # every record, every float (NaN where diverged)
    assert eager[1][4].diverged and replayed[1][4].diverged
    for k, state in eager[1].items():
        if k != 4:  # the diverged member's weights went to inf and NaN: compared above
            assert_states_equal(replayed[1][k], state, exact=True)


def test_a_host_sync_cannot_be_recorded():
    with pytest.raises(RuntimeError, match="a host sync in a captured step"):
        ReplayGraph().capture(lambda: (torch.tensor([1.0]) * torch.tensor([2.0]).item(),))


def test_a_failed_recording_falls_back_to_eager_steps_saying_so_once(data, monkeypatch):
    class Broken:
        def capture(self, body):
            raise RuntimeError("operation not permitted when stream is capturing")

        def replay(self) -> None:
            raise AssertionError("never recorded")

    monkeypatch.setattr(device, "_WARNED", set())
    eager = run(data, torch.float64, None)
    with pytest.warns(RuntimeWarning, match="capturing a training step failed") as caught:
        broken = run(data, torch.float64, Broken)
    assert len([w for w in caught if "capturing" in str(w.message)]) == 1
    assert repr(broken[0]) == repr(eager[0])


@pytest.mark.parametrize(
    "setting, device, made",
    [("auto", "cuda", True), ("on", "cuda", True), ("off", "cuda", False), ("on", "cpu", False)],
)
def test_study_cuda_graphs_records_steps_on_a_gpu_only(setting, device, made):
    assert (graph_factory(setting, torch.device(device)) is CudaGraph) is made


def test_study_cuda_graphs_refuses_other_values():
    with pytest.raises(InvalidValue, match=r"study\.cuda_graphs.*'yes'"):
        graph_factory("yes", torch.device("cpu"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_train_what_eager_steps_train_on_the_gpu(data):
    cuda = "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no fallback to eager
        graphed = run(data, torch.float64, CudaGraph, cuda)
    eager = run(data, torch.float64, None, cuda)
    assert repr(graphed[0]) == repr(eager[0])  # the same kernels in the same order
    for k, state in eager[1].items():
        if k != 4:
            assert_states_equal(graphed[1][k], state, exact=True)

"""Fixtures for the population-engine tests (everything in float64 on the CPU unless a test
says otherwise; the main ones run on every device this machine has, see ``device``)."""

from __future__ import annotations

import pytest
import torch
from _nn_support import tiny_data

from caviar.nn import TrainingData


@pytest.fixture(scope="session")
def data() -> TrainingData:
    return tiny_data()


#: the CPU, and CUDA where present: a GPU machine runs the engine's main tests there too
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """The device the engine runs on in a test (its oracle, torch.nn / torch.optim, stays on
    the CPU). Tolerances follow the device: see ``_nn_support.tolerance``."""
    return torch.device(request.param)


@pytest.fixture(autouse=True)
def one_thread():
    """The engine's tensors here are tiny: one intra-op thread is several times faster than two
    on a shared 2-core machine (thread hand-offs dominate), and makes timings steadier."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

"""Which device a population runs on (this machine has no GPU)."""

from __future__ import annotations

import re

import pytest
import torch

from caviar.nn import MemberSpec, Population, resolve_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="written for a CPU-only machine")


def test_auto_is_the_cpu_here():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device() == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cpu", torch.device("cpu")])
def test_cpu_as_given(spec):
    assert resolve_device(spec) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:1", torch.device("cuda", 0)])
def test_cuda_without_a_gpu_is_a_clear_error(spec):
    with pytest.raises(ValueError, match=r"^device: CUDA is not available on this machine, got '"):
        resolve_device(spec)


# name: (value, message)
BAD_DEVICES = {
    "typo": ("gpu", "device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    "empty": ("", "device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got ''"),
    "bad_index": ("cuda:x", "device: must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'cuda:x'"),
    "other_backend": ("meta", "device: must be a CPU or CUDA device, got 'meta'"),
}


@pytest.mark.parametrize("name", list(BAD_DEVICES))
def test_a_bad_device_string_names_the_value(name):
    value, message = BAD_DEVICES[name]
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        resolve_device(value)


def test_population_resolves_its_device_at_construction():
    with pytest.raises(ValueError, match="CUDA is not available"):
        Population([MemberSpec()], device="cuda")
    assert Population([MemberSpec()]).device == torch.device("cpu")

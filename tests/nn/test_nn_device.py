"""Which device a population runs on, and the matrix-product precision it sets there.

The tests that assume a machine without CUDA skip on one with it, each on its own; the rest
run everywhere (the engine's main tests take the ``device`` fixture, see conftest.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import caviar
from caviar.nn import MemberSpec, Population, TrainingData, resolve_device
from caviar.nn.device import matmul_precision

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="for a machine without CUDA")
has_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_auto_is_cuda_where_present_else_the_cpu():
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto") == expected
    assert resolve_device() == expected


@pytest.mark.parametrize("spec", ["cpu", torch.device("cpu")])
def test_cpu_as_given(spec):
    assert resolve_device(spec) == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:1", torch.device("cuda", 0)])
def test_cuda_without_a_gpu_is_a_clear_error(spec):
    with pytest.raises(ValueError, match=r"^device: CUDA is not available on this machine, got '"):
        resolve_device(spec)


@has_cuda
def test_a_cuda_index_beyond_the_machine_names_the_count():
    n = torch.cuda.device_count()
    with pytest.raises(ValueError, match=rf"^device: this machine has {n} CUDA devices, got "):
        resolve_device(f"cuda:{n}")
    assert resolve_device("cuda") == torch.device("cuda")


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


@no_cuda
def test_population_resolves_its_device_at_construction():
    with pytest.raises(ValueError, match="CUDA is not available"):
        Population([MemberSpec()], device="cuda")
    assert Population([MemberSpec()]).device == torch.device("cpu")


# -- TF32: only through fp32_precision, never the legacy allow_tf32 flags ---------------------
def test_no_source_file_touches_the_legacy_tf32_flags():
    """PyTorch refuses to mix ``allow_tf32`` with ``fp32_precision`` in one process, so caviar
    names the legacy flag nowhere in code (docstrings may explain why)."""
    src = Path(caviar.__file__).parent
    uses = [
        f"{path.relative_to(src)}:{node.lineno}"
        for path in sorted(src.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if (isinstance(node, ast.Attribute) and node.attr == "allow_tf32")
        or (isinstance(node, ast.Constant) and node.value == "allow_tf32")
    ]
    assert uses == []


@pytest.fixture
def legacy_tf32_refused(monkeypatch: pytest.MonkeyPatch):
    """Any read or write of the legacy cuBLAS or cuDNN TF32 flags fails the test."""

    def refuse(*args: object) -> None:
        raise AssertionError("caviar touched a legacy allow_tf32 flag")

    for name in ("_get_cublas_allow_tf32", "_set_cublas_allow_tf32"):
        monkeypatch.setattr(torch._C, name, refuse)
    monkeypatch.setattr(type(torch.backends.cudnn), "allow_tf32", property(refuse, refuse))
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    yield matmul
    matmul.fp32_precision = before


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_after_caviars_setup_the_users_new_tf32_api_works(legacy_tf32_refused, dtype, device):
    """caviar's precision setup for a CUDA run (it needs no GPU to set the flag), and a training
    run on every device here: TF32 for float32 only, restored afterwards, and the user's own
    ``fp32_precision`` works after it."""
    matmul = legacy_tf32_refused
    before = matmul.fp32_precision
    with matmul_precision(torch.device("cuda"), dtype):
        assert matmul.fp32_precision == ("tf32" if dtype == torch.float32 else before)
    assert matmul.fp32_precision == before
    spec = MemberSpec(hidden_units=4, batch_size=16, epochs=1)
    data = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))

    training = TrainingData.from_arrays(data, torch.arange(32) % 2)
    Population([spec], device=device, dtype=dtype).fit(training)
    assert matmul.fp32_precision == before
    matmul.fp32_precision = "ieee"  # the user's own use of the new API
    assert matmul.fp32_precision == "ieee"
    matmul.fp32_precision = "tf32"
    assert matmul.fp32_precision == "tf32"

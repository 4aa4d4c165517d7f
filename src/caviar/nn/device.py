"""Which device a population runs on, the matrix-product precision it uses there, and what is
said when one of its fast paths (a compiled update, a CUDA graph) cannot be had."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from caviar.core.errors import InvalidValue, got


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA when present, else the CPU; ``cpu``, ``cuda`` and ``cuda:N`` as given."""
    if isinstance(spec, torch.device):
        device = spec
    elif spec == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            device = torch.device(spec)
        except (RuntimeError, TypeError):
            raise InvalidValue(
                "device", f"must be 'auto', 'cpu', 'cuda' or 'cuda:N', {got(spec)}"
            ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidValue("device", f"CUDA is not available on this machine, {got(str(spec))}")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InvalidValue(
            "device", f"this machine has {torch.cuda.device_count()} CUDA devices, {got(str(spec))}"
        )
    if device.type not in ("cpu", "cuda"):
        raise InvalidValue("device", f"must be a CPU or CUDA device, {got(str(spec))}")
    return device


@contextmanager
def matmul_precision(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """TF32 matrix products for float32 on a GPU, restored afterwards; float64 stays exact.

    Through the ``fp32_precision`` setting: PyTorch refuses to mix it with the legacy
    ``allow_tf32`` flags in one process, so a user's own code may use either without breaking
    caviar's (nor caviar theirs, as long as they use the new one).
    """
    if device.type != "cuda" or dtype != torch.float32:
        yield
        return
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    try:
        yield
    finally:
        matmul.fp32_precision = before


#: the fast paths whose failure was reported in this process
_WARNED: set[str] = set()


def warn_fallback(feature: str, error: Exception, instead: str) -> None:
    """``feature`` failed with ``error``: say so, once a process, and what runs ``instead``."""
    if feature in _WARNED:
        return
    _WARNED.add(feature)
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
    warnings.warn(
        f"caviar: {feature} failed ({type(error).__name__}: {first}); {instead}",
        RuntimeWarning,
        stacklevel=3,
    )

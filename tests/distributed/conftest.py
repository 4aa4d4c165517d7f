from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any

import pytest
import torch


@pytest.fixture
def without_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """``import ray`` fails, as where the extra is not installed."""
    real = builtins.__import__

    def fake(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake)


@pytest.fixture(autouse=True)
def restore_torch_threads() -> Iterator[None]:
    """A spread run sets this process's torch thread count; the next test gets its own."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)

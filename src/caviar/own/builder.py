"""The user's builder: ``build(params) -> nn.Module``, called with the hyperparameters it reads
tracked, its errors said in one line, and a reference (``"package.module:build"``) that a kept
model is built again from in another process.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caviar.core.errors import InvalidValue, got
from caviar.core.seeding import INIT, derive_seed

#: what a builder is: the trial's hyperparameters (those the optimizer does not read) in, the
#: module out
Build = Callable[[Mapping[str, Any]], nn.Module]


class ReadParams(Mapping[str, Any]):
    """The hyperparameters handed to a builder, remembering which it read (``params["k"]``,
    ``params.get("k")``, ``"k" in params``), so a key nothing reads is said, not ignored."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return key in self._values

    def __iter__(self) -> Iterator[str]:  # iterating reads everything: the builder saw it all
        self.read.update(self._values)
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return repr(self._values)


def reference(build: Build) -> str | None:
    """``"package.module:name"`` when another process can import ``build`` by it (a function
    of an importable module: not a lambda, a nested function, a script's ``__main__``, a
    ``functools.partial`` or a callable object), else None."""
    if not inspect.isfunction(build):
        return None
    module, name = getattr(build, "__module__", None), getattr(build, "__qualname__", "")
    if not module or module == "__main__" or "<" in name:
        return None
    return f"{module}:{name}"


def identity(build: Build) -> str:
    """What a study records of its builder: its :func:`reference`, or, for one no other
    process can import, its module and name as far as they go (a script's ``__main__:build``,
    ``mymod:Builder instance``, ``partial of mymod:build``): enough to refuse another model
    in the same study, and to ask for ``build=`` when its models are loaded."""
    ref = reference(build)
    if ref is not None:
        return ref
    if isinstance(build, functools.partial):
        return f"partial of {identity(build.func)}"
    if inspect.isfunction(build) or inspect.ismethod(build):
        return f"{build.__module__}:{build.__qualname__}"
    kind = type(build)
    return f"{kind.__module__}:{kind.__qualname__} instance"


def resolve(ref: str, owner: str = "model") -> Build:
    """The builder ``"package.module:name"`` names, imported with the working directory on the
    path (as ``python -m`` does), or an InvalidValue saying what is missing."""
    module_name, sep, name = ref.partition(":")
    if not sep or not module_name or not name:
        raise InvalidValue(
            owner, f"must be 'package.module:builder' (a function making the nn.Module), {got(ref)}"
        )
    cwd = str(Path.cwd())
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise InvalidValue(
            owner, f"cannot import {module_name!r} from {cwd} or the installed packages: {e}"
        ) from None
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            raise InvalidValue(owner, f"module {module_name!r} has no {name!r} ({ref})")
        target = getattr(target, part)
    if not callable(target):
        raise InvalidValue(owner, f"{ref} is not a function, {got(target)}")
    return target  # type: ignore[no-any-return]


def describe(build: Build) -> str:
    """How messages name the builder."""
    return reference(build) or identity(build)


@dataclass(frozen=True)
class Built:
    """A module the builder made, and the hyperparameters it read making it."""

    module: nn.Module
    read: frozenset[str]


def build_module(
    build: Build,
    params: Mapping[str, Any],
    seed: int,
    *,
    dtype: torch.dtype,
    device: torch.device,
) -> Built:
    """``build(params)`` with torch's generator seeded from the member's ``seed`` (its initial
    weights are its own, the same in any pool), on ``device`` in ``dtype``. A builder that
    raises or returns something else than a module: an InvalidValue owned by ``model``,
    naming the builder, the error and the hyperparameters."""
    read = ReadParams(params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, INIT) % 2**63)
        try:
            module = build(read)
        except Exception as e:  # the user's code: any error is theirs to read
            raise InvalidValue(
                "model",
                f"the builder {describe(build)} raised {type(e).__name__}: {e} "
                f"(hyperparameters {dict(params)})",
            ) from e
    if not isinstance(module, nn.Module):
        raise InvalidValue(
            "model", f"the builder {describe(build)} must return a torch nn.Module, {got(module)}"
        )
    floating = all(t.is_floating_point() for t in module.parameters())
    if not floating:
        raise InvalidValue("model", f"the module's parameters must be floating point: {module}")
    if not any(t.requires_grad for t in module.parameters()):
        raise InvalidValue(
            "model",
            f"the module the builder {describe(build)} makes has no parameter to train (none, "
            f"or all with requires_grad=False): {type(module).__name__}",
        )
    return Built(module.to(device=device, dtype=dtype), frozenset(read.read))

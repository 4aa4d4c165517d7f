"""``load_model``: a kept model (or an ensemble of the top kept models) back in Python.

``source`` is a saved member state (``.pt``), or, with ``storage``, a study's name; the kept
states are found with :mod:`caviar.search.kept`. A study of the user's own model (or a module
it kept) comes back as the user's module (:mod:`caviar.models.own_module`).
"""

from __future__ import annotations

import os
from typing import overload

import torch
from torch import nn

from caviar.core.errors import InvalidValue, got
from caviar.models.ensemble import CaviarEnsemble, load_ensemble
from caviar.models.model import CaviarModel
from caviar.models.own_module import (
    load_kept_module,
    load_module_ensemble,
    own_study,
    read_kept,
)
from caviar.own.builder import Build
from caviar.search.kept import find_kept_state, read_state


@overload
def load_model(
    source: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    ensemble: None = None,
    build: None = None,
) -> CaviarModel: ...


@overload
def load_model(
    source: str | os.PathLike[str],
    trial: None = None,
    *,
    storage: str | os.PathLike[str],
    dtype: torch.dtype = torch.float32,
    ensemble: int,
    build: None = None,
) -> CaviarEnsemble: ...


@overload
def load_model(
    source: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    ensemble: int | None = None,
    build: Build,
) -> nn.Module: ...


def load_model(
    source: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    ensemble: int | None = None,
    build: Build | None = None,
) -> nn.Module:
    """A kept model: ``source`` is a saved member state (``.pt``), or, with ``storage``, a
    study's name; then ``trial`` picks the trial (default: the best one), or ``ensemble=K``
    gives the :class:`~caviar.models.ensemble.CaviarEnsemble` of the study's top K kept models.

    For a study of your own model (``caviar.optimize(build, ...)``, ``[study] model``), the
    model is your module, rebuilt by the study's builder (imported again from its reference,
    or ``build``, needed when it was a script's function) with the kept weights loaded, in eval
    mode; ``ensemble=K`` gives a :class:`~caviar.models.own_module.ModuleEnsemble` of the top
    K (log of their mean softmax output)."""
    if ensemble is not None:
        if storage is None or trial is not None:
            raise InvalidValue(
                "load_model",
                f"ensemble= takes a study's name as source, with storage= and no trial=, got "
                f"storage={storage!r}, trial={trial!r}",
            )
        if build is not None or own_study(str(source), storage) is not None:
            return load_module_ensemble(
                str(source), ensemble, storage=storage, build=build, dtype=dtype
            )
        return load_ensemble(str(source), ensemble, storage=storage, dtype=dtype)
    if storage is None and trial is not None:
        raise InvalidValue(
            "load_model", f"trial= needs storage= (a study's name as source), {got(trial)}"
        )
    own = own_study(str(source), storage) if storage is not None else read_kept(source)
    if own is not None or build is not None:
        return load_kept_module(source, trial, storage=storage, build=build, dtype=dtype)
    if storage is None:
        return CaviarModel(read_state(source), dtype=dtype)
    path = find_kept_state(str(source), trial, storage=storage)
    return CaviarModel(read_state(path), dtype=dtype)

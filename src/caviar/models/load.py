"""``load_model``: a kept model (or an ensemble of the top kept models) back in Python.

``source`` is a saved member state (``.pt``), or, with ``storage``, a study's name; the kept
states are found with :mod:`caviar.search.kept`.
"""

from __future__ import annotations

import os
from typing import overload

import torch

from caviar.core.errors import InvalidValue, got
from caviar.models.ensemble import CaviarEnsemble, load_ensemble
from caviar.models.model import CaviarModel
from caviar.search.kept import find_kept_state, read_state


@overload
def load_model(
    source: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    ensemble: None = None,
) -> CaviarModel: ...


@overload
def load_model(
    source: str | os.PathLike[str],
    trial: None = None,
    *,
    storage: str | os.PathLike[str],
    dtype: torch.dtype = torch.float32,
    ensemble: int,
) -> CaviarEnsemble: ...


def load_model(
    source: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | os.PathLike[str] | None = None,
    dtype: torch.dtype = torch.float32,
    ensemble: int | None = None,
) -> CaviarModel | CaviarEnsemble:
    """A kept model: ``source`` is a saved member state (``.pt``), or, with ``storage``, a
    study's name; then ``trial`` picks the trial (default: the best one), or ``ensemble=K``
    gives the :class:`~caviar.models.ensemble.CaviarEnsemble` of the study's top K kept models."""
    if ensemble is not None:
        if storage is None or trial is not None:
            raise InvalidValue(
                "load_model",
                f"ensemble= takes a study's name as source, with storage= and no trial=, got "
                f"storage={storage!r}, trial={trial!r}",
            )
        return load_ensemble(str(source), ensemble, storage=storage, dtype=dtype)
    if storage is None:
        if trial is not None:
            raise InvalidValue(
                "load_model", f"trial= needs storage= (a study's name as source), {got(trial)}"
            )
        return CaviarModel(read_state(source), dtype=dtype)
    path = find_kept_state(str(source), trial, storage=storage)
    return CaviarModel(read_state(path), dtype=dtype)

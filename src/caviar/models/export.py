"""Kept models as programs that plain PyTorch runs without caviar.

:func:`export_model` writes a member as a ``torch.export`` program (``.pt2``) that
``torch.export.load(path).module()`` runs with PyTorch alone (``caviar export`` on the command
line); :func:`save_program` does the same for an ensemble of the top kept members
(``caviar export --ensemble K``), and :func:`export_module` for the user's own module (or a
:class:`~caviar.models.own_module.ModuleEnsemble` of them).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from caviar.core.atomic import WriteError, write_atomically
from caviar.core.errors import InvalidValue
from caviar.models.ensemble import CaviarEnsemble
from caviar.models.model import CaviarModel
from caviar.nn.state import MemberState

#: the name of the JSON description stored inside an exported program
METADATA = "caviar.json"


def export_model(
    state: MemberState, path: str | os.PathLike[str], *, dtype: torch.dtype = torch.float32
) -> Path:
    """Write the member as a ``torch.export`` program (``.pt2``) with a dynamic batch size.

    Plain PyTorch runs it: ``torch.export.load(path).module()(x)`` maps ``x`` [B, n_inputs] in
    ``dtype`` to logits [B, n_classes]. The model's :meth:`CaviarModel.describe` is stored
    beside the program as ``caviar.json`` (``torch.export.load(path, extra_files=...)``).
    """
    return save_program(CaviarModel(state, dtype=dtype), path)


def save_program(model: CaviarModel | CaviarEnsemble, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` (a :class:`CaviarModel` or a :class:`~caviar.models.ensemble.CaviarEnsemble`)
    as a ``torch.export`` program with a dynamic batch size and its ``describe()`` stored as
    ``caviar.json``, whole or not at all: a failed write is a
    :class:`~caviar.core.atomic.WriteError` naming ``path``, and leaves nothing there."""
    return _save(model, [model.n_inputs], model.describe(), path)


def export_module(
    module: nn.Module,
    path: str | os.PathLike[str],
    *,
    example_shape: Sequence[int],
    description: Mapping[str, Any],
) -> Path:
    """Write the user's ``module`` (in eval mode, as loaded) as a ``torch.export`` program
    taking ``[B, *example_shape]`` with a dynamic batch size, ``description`` stored as
    ``caviar.json``; as :func:`save_program`, whole or not at all. A module torch.export
    cannot trace is an InvalidValue (owner ``export``) with torch's first line."""
    try:
        return _save(module.eval(), list(example_shape), description, path)
    except (WriteError, InvalidValue):
        raise
    except Exception as e:  # torch.export's many errors, on the user's module: one line
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InvalidValue(
            "export",
            f"torch.export cannot trace the module on inputs [B, "
            f"{', '.join(map(str, example_shape))}]: {type(e).__name__}: {first}",
        ) from e


def _save(
    model: nn.Module,
    example_shape: list[int],
    description: Mapping[str, Any],
    path: str | os.PathLike[str],
) -> Path:
    """``model`` traced on zeros of ``[2, *example_shape]`` in its dtype, the batch dynamic."""
    dtype = next(model.parameters(), torch.zeros(())).dtype
    example = torch.zeros(2, *example_shape, dtype=dtype)
    program = torch.export.export(
        model, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    buffer = io.BytesIO()
    metadata = json.dumps(dict(description), default=str)
    torch.export.save(program, buffer, extra_files={METADATA: metadata})
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(e.errno, e.strerror, str(out)) from None
    return write_atomically(out, buffer.getvalue())

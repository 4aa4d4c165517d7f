"""Kept models as programs that plain PyTorch runs without caviar.

:func:`export_model` writes a member as a ``torch.export`` program (``.pt2``) that
``torch.export.load(path).module()`` runs with PyTorch alone (``caviar export`` on the command
line); :func:`save_program` does the same for an ensemble of the top kept members
(``caviar export --ensemble K``).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import torch

from caviar.core.atomic import WriteError, write_atomically
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
    dtype = next(model.parameters()).dtype
    example = torch.zeros(2, model.n_inputs, dtype=dtype)
    program = torch.export.export(
        model, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
    )
    buffer = io.BytesIO()
    torch.export.save(program, buffer, extra_files={METADATA: json.dumps(model.describe())})
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(e.errno, e.strerror, str(out)) from None
    return write_atomically(out, buffer.getvalue())

"""The best models kept: a trained member as a ``torch.nn.Module``, and as a program that plain
PyTorch runs without caviar.

Where kept models live: the tune loop saves the final :class:`~caviar.nn.MemberState` of a
study's best trials as ``caviar-models/<study>/trial-<N>.pt`` beside the study file
(:func:`kept_state_path`) and lists their numbers in ``study.attrs["kept_models"]``. From there

- :func:`load_model` gives a :class:`CaviarModel` (``predict``, ``predict_proba``) in Python;
- :func:`export_model` writes a ``torch.export`` program (``.pt2``) that
  ``torch.export.load(path).module()`` runs with PyTorch alone (``caviar export`` on the
  command line);
- :mod:`caviar.ensemble` averages the softmax outputs of the top K kept models
  (``load_model(study, storage=..., ensemble=K)``, ``caviar export --ensemble K``).

Why the model computes with :mod:`caviar.nn.functional` and the member's own tensors ("W0" is
[fan_in, fan_out]) rather than ``nn.Linear``: it is the engine's forward pass, one member at a
time, so nothing is transposed or renamed on the way, and the tests can check it against an
independent ``nn.Linear`` / ``nn.BatchNorm1d`` net.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import torch
from torch import Tensor, nn

from caviar.errors import InvalidValue, got
from caviar.nn import functional as F
from caviar.nn.state import MemberState
from caviar.storage import SQLiteStorage
from caviar.study import Study

if TYPE_CHECKING:
    from caviar.ensemble import CaviarEnsemble

#: the name of the JSON description stored inside an exported program
METADATA = "caviar.json"


def kept_dir(storage: str | os.PathLike[str], study: str) -> Path:
    """``caviar-models/<study>/`` beside the study file: where a study's kept models live."""
    return Path(storage).parent / "caviar-models" / study


def kept_state_path(storage: str | os.PathLike[str], study: str, trial: int) -> Path:
    """Where trial ``trial``'s final member state is kept: ``kept_dir(...)/trial-<trial>.pt``."""
    return kept_dir(storage, study) / f"trial-{trial}.pt"


def kept_state(study: Study, trial: int) -> Path | None:
    """The file of trial ``trial``'s kept final state, or None where ``study`` kept none.

    A file counts only when the study lists the trial in ``attrs["kept_models"]``: one left
    by an earlier study of the same name (its database deleted, its folder not) is another
    model. A study not stored in a file keeps none."""
    storage = getattr(study.storage, "path", None)
    if storage is None or trial not in study.attrs.get("kept_models", []):
        return None
    path = kept_state_path(storage, study.name, trial)
    return path if path.is_file() else None


class CaviarModel(nn.Module):
    """A trained member, ready for inference: ``x`` [B, D] -> logits [B, C].

    Per hidden layer ``z = h @ W`` (+ ``b``, or batch norm with the running statistics, as
    ``nn.BatchNorm1d`` in eval mode), then the activation; dropout is a training device and is
    left out. Parameters and buffers keep the member's names ("W0", "b0" or "gamma0"/"beta0",
    "running_mean0", ...), so ``state_dict()`` reads like the :class:`MemberState`.
    """

    def __init__(self, state: MemberState, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        owner = "CaviarModel"
        if state.diverged:
            raise InvalidValue(owner, "the member diverged during training; it is not a model")
        try:
            state.check_shapes()
        except InvalidValue as e:
            raise InvalidValue(owner, f"the state does not fit its spec: {e.reason}") from None
        n_stats = state.spec.n_layers if state.spec.batch_norm else 0
        self.spec: dict[str, Any] = state.spec.to_dict()
        self.n_inputs = state.n_inputs
        self.n_classes = state.n_classes
        for name, tensor in state.params.items():
            self.register_parameter(name, nn.Parameter(tensor.detach().to("cpu", dtype).clone()))
        for layer in range(n_stats):
            mean, var = state.running_mean[layer], state.running_var[layer]
            self.register_buffer(f"running_mean{layer}", mean.to("cpu", dtype).clone())
            self.register_buffer(f"running_var{layer}", var.to("cpu", dtype).clone())
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Logits [B, C] of inputs [B, D] (in the model's dtype and device)."""
        spec, p = self.spec, self.get_parameter
        h = x
        for layer in range(spec["n_layers"]):
            if spec["batch_norm"]:
                z = F.batch_norm_eval(
                    h @ p(f"W{layer}"),  # [B, H]
                    p(f"gamma{layer}"),
                    p(f"beta{layer}"),
                    self.get_buffer(f"running_mean{layer}"),
                    self.get_buffer(f"running_var{layer}"),
                    spec["bn_eps"],
                )
            else:
                z = torch.addmm(p(f"b{layer}"), h, p(f"W{layer}"))  # [B, H]
            h = F.activation(spec["activation"], z)
        last = spec["n_layers"]
        return torch.addmm(p(f"b{last}"), h, p(f"W{last}"))  # [B, C]

    def _inputs(self, x: np.ndarray | Tensor) -> Tensor:
        return as_inputs("CaviarModel", x, self.n_inputs, self.get_parameter("W0"))

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray | Tensor) -> Tensor:
        """Class probabilities [B, C] (softmax of the logits) of a numpy array or tensor."""
        return torch.softmax(self(self._inputs(x)), dim=1)

    @torch.no_grad()
    def predict(self, x: np.ndarray | Tensor) -> Tensor:
        """The most likely class [B] (int64) of each row of a numpy array or tensor."""
        logits: Tensor = self(self._inputs(x))
        return logits.argmax(dim=1)

    def describe(self) -> dict[str, Any]:
        """What the model is, as JSON-ready data (stored inside an exported program)."""
        return {
            "spec": self.spec,
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "dtype": str(self.get_parameter("W0").dtype).removeprefix("torch."),
        }


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
    """Write ``model`` (a :class:`CaviarModel` or a :class:`~caviar.ensemble.CaviarEnsemble`)
    as a ``torch.export`` program with a dynamic batch size and its ``describe()`` stored as
    ``caviar.json``."""
    dtype = next(model.parameters()).dtype
    example = torch.zeros(2, model.n_inputs, dtype=dtype)
    program = torch.export.export(
        model, (example,), dynamic_shapes={"x": {0: torch.export.Dim("batch")}}
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, out, extra_files={METADATA: json.dumps(model.describe())})
    return out


def as_inputs(owner: str, x: np.ndarray | Tensor, n_inputs: int, like: Tensor) -> Tensor:
    """``x`` as a [batch, n_inputs] tensor on the device and in the dtype of ``like``, or an
    error naming ``owner``."""
    t = torch.as_tensor(x if isinstance(x, Tensor) else np.asarray(x))
    if t.ndim != 2 or t.shape[1] != n_inputs:
        raise InvalidValue(owner, f"inputs must be [batch, {n_inputs}], got {list(t.shape)}")
    return t.to(like.device, like.dtype)


def read_state(path: str | os.PathLike[str]) -> MemberState:
    """A member state saved with :meth:`MemberState.save`, or a clear error."""
    source = Path(path)
    if not source.is_file():
        raise InvalidValue(
            "load_model",
            f"no saved member state at {str(source)!r} (a study's name needs storage=)",
        )
    try:
        return MemberState.load(source)
    except (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as e:
        raise InvalidValue(
            "load_model", f"{str(source)!r} is not a saved member state ({type(e).__name__})"
        ) from None


def find_kept_state(
    study: str, trial: int | None = None, *, storage: str | os.PathLike[str]
) -> Path:
    """The kept state of ``trial`` (default: the study's best trial), or an error naming the
    trials that were kept."""
    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int) or trial < 0):
        raise InvalidValue("trial", f"must be an integer >= 0, {got(trial)}")
    if not Path(storage).is_file():
        raise InvalidValue("storage", f"no study file at {str(storage)!r}")
    loaded = Study.load(study, SQLiteStorage(storage, read_only=True))
    try:
        if trial is None:
            best = loaded.best_trial
            if best is None:
                raise InvalidValue(f"study {study!r}", "has no complete trial, so no best model")
            trial = best.number
        path = kept_state(loaded, trial)
        kept = [n for n in loaded.attrs.get("kept_models") or [] if kept_state(loaded, n)]
    finally:
        loaded.close()
    if path is None:
        which = f"kept models: trials {sorted(kept)}" if kept else "no models were kept"
        stale = kept_state_path(storage, study, trial)
        if stale.is_file():  # left by an earlier study of the same name
            which += f"; {stale.name} there is not this study's"
        raise InvalidValue(
            f"study {study!r}",
            f"trial {trial} has no kept model (in {str(kept_dir(storage, study))!r}); {which}",
        )
    return path


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
    gives the :class:`~caviar.ensemble.CaviarEnsemble` of the study's top K kept models."""
    if ensemble is not None:
        from caviar.ensemble import load_ensemble

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

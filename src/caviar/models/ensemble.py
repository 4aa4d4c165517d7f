"""An ensemble of a study's best kept models: the mean of their softmax outputs, no retraining.

The book's lesson (several nets, their outputs averaged at test time) as a library feature. The
members are the top K complete trials of the study's leaderboard whose final states the search
kept (``search.keep_models``, :mod:`caviar.search.kept`), each exactly the model the search scored.

The ensemble's output is a *log*-probability::

    log p(c | x) = log( (1/K) * sum_k softmax(z_k(x))_c )     z_k: member k's logits [B, C]

computed as ``logsumexp_k(log_softmax(z_k)) - log K`` so that it stays finite where a member is
sure. Why log-probabilities rather than probabilities: ``argmax`` is the predicted class,
``F.nll_loss(out, y)`` is the ensemble's cross-entropy (and, since the rows are already
normalised, so is ``F.cross_entropy(out, y)``), and ``out.exp()`` gives the probabilities, rows
summing to 1. A single :class:`~caviar.models.model.CaviarModel` returns logits instead; for K = 1
the two differ by a constant per row, so they predict the same class.

The inputs are those of each member: the data as caviar loads it (pixels / 255), with no
normalisation inside the model, as for a single kept model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from caviar.core.errors import InvalidValue, got
from caviar.core.records import FrozenTrial
from caviar.models.model import CaviarModel, as_inputs
from caviar.nn.device import matmul_precision
from caviar.nn.state import MemberState
from caviar.search.kept import kept_state, read_state
from caviar.study import Study

#: what the ensemble's forward returns, stored in its description
OUTPUT = "log-probabilities: the log of the mean of the members' softmax outputs"


def log_mean_softmax(logits: Tensor) -> Tensor:
    """``log((1/K) * sum_k softmax(z_k))`` of the members' logits [K, B, C]: [B, C]."""
    log_p = torch.log_softmax(logits, dim=2)  # [K, B, C]
    return torch.logsumexp(log_p, dim=0) - math.log(logits.shape[0])  # [B, C]


class CaviarEnsemble(nn.Module):
    """Members averaged in probability: ``x`` [B, D] -> log-probabilities [B, C].

    ``members`` is an ``nn.ModuleList`` of :class:`~caviar.models.model.CaviarModel`; ``trials``
    names the study trial of each (empty when the states came from elsewhere).
    """

    def __init__(
        self,
        states: Sequence[MemberState],
        *,
        trials: Sequence[int] = (),
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        owner = "CaviarEnsemble"
        if not states:
            raise InvalidValue(owner, "needs at least one member state, got none")
        if trials and len(trials) != len(states):
            raise InvalidValue(
                owner, f"needs one trial number per state ({len(states)}), {got(list(trials))}"
            )
        shapes = sorted({(s.n_inputs, s.n_classes) for s in states})
        if len(shapes) > 1:
            raise InvalidValue(
                owner,
                f"members must share their (inputs, classes), got {' and '.join(map(str, shapes))}",
            )
        self.members = nn.ModuleList(CaviarModel(s, dtype=dtype) for s in states)
        self.trials = [int(t) for t in trials]
        self.n_inputs, self.n_classes = shapes[0]
        #: the members' preprocessing (one study's members share it)
        self.preprocessing = cast(CaviarModel, self.members[0]).preprocessing
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities [B, C] of inputs [B, D]: log of the members' mean softmax."""
        return log_mean_softmax(torch.stack([member(x) for member in self.members]))

    def _weight(self) -> Tensor:
        """The first member's first weight: where and in which dtype the ensemble computes."""
        return cast(CaviarModel, self.members[0]).get_parameter("W0")

    def _inputs(self, x: np.ndarray | Tensor, raw: bool) -> Tensor:
        return as_inputs(
            "CaviarEnsemble", x, self.n_inputs, self._weight(), self.preprocessing, raw
        )

    @torch.no_grad()
    def predict_proba(self, x: np.ndarray | Tensor, *, raw: bool = False) -> Tensor:
        """The members' mean class probabilities [B, C] of a numpy array or tensor (raw
        examples with ``raw=True``, as :meth:`CaviarModel.predict`)."""
        log_p: Tensor = self(self._inputs(x, raw))
        return log_p.exp()

    @torch.no_grad()
    def predict(self, x: np.ndarray | Tensor, *, raw: bool = False) -> Tensor:
        """The most likely class [B] (int64) under the mean probabilities (raw examples with
        ``raw=True``, as :meth:`CaviarModel.predict`)."""
        log_p: Tensor = self(self._inputs(x, raw))
        return log_p.argmax(dim=1)

    def describe(self) -> dict[str, Any]:
        """What the ensemble is, as JSON-ready data (stored inside an exported program)."""
        members = [cast(CaviarModel, m).describe() for m in self.members]
        return {
            "ensemble": len(members),
            "output": OUTPUT,
            "trials": self.trials,
            "members": members,
            "n_inputs": self.n_inputs,
            "n_classes": self.n_classes,
            "dtype": members[0]["dtype"],
            "inputs": members[0]["inputs"],
            "preprocessing": members[0]["preprocessing"],
        }


def kept_members(study: Study, k: int) -> list[tuple[FrozenTrial, Path]]:
    """The top ``k`` complete trials of the leaderboard that have a kept state, best first,
    with the path of each state; an error (owner ``ensemble``) when fewer were kept."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidValue("ensemble", f"must be an integer >= 1, {got(k)}")
    if getattr(study.storage, "path", None) is None:
        raise InvalidValue(
            "ensemble", f"study {study.name!r} is not stored in a file, so it kept no models"
        )
    kept = [
        (trial, path)
        for trial in study.leaderboard()
        if (path := kept_state(study, trial.number)) is not None
    ]
    if len(kept) < k:
        search = (study.attrs.get("config") or {}).get("search") or {}
        setting = f"search.keep_models = {search.get('keep_models', 'not recorded')}"
        which = f"trials {[t.number for t, _ in kept]}" if kept else "none"
        raise InvalidValue(
            "ensemble",
            f"must be <= the {len(kept)} models study {study.name!r} kept ({which}; {setting}), "
            f"{got(k)}; tune with a larger search.keep_models to keep more",
        )
    return kept[:k]


def load_ensemble(
    study: str,
    k: int,
    *,
    storage: str | os.PathLike[str],
    dtype: torch.dtype = torch.float32,
) -> CaviarEnsemble:
    """The ensemble of study ``study``'s top ``k`` kept models (see :func:`kept_members`)."""
    loaded = Study.open_file(study, storage, read_only=True)
    try:
        members = kept_members(loaded, k)
    finally:
        loaded.close()
    states = [read_state(path) for _, path in members]
    return CaviarEnsemble(states, trials=[t.number for t, _ in members], dtype=dtype)


@torch.no_grad()
def score(
    model: CaviarEnsemble, x: np.ndarray | Tensor, y: np.ndarray | Tensor, *, batch: int = 1000
) -> tuple[float, float]:
    """Mean cross-entropy (of the mean probabilities) and accuracy of the ensemble on
    ``(x, y)``, in batches, on the model's device."""
    xs = model._inputs(x, raw=False)
    w = model._weight()
    ys = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y).to(w.device)
    total_loss, correct = 0.0, 0
    with matmul_precision(w.device, w.dtype):
        for start in range(0, len(ys), batch):
            log_p = model(xs[start : start + batch])  # [b, C]
            target = ys[start : start + batch].long()
            total_loss += float(torch.nn.functional.nll_loss(log_p, target, reduction="sum"))
            correct += int((log_p.argmax(dim=1) == target).sum())
    return total_loss / len(ys), correct / len(ys)

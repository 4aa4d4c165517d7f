"""A study of the user's own model: its kept modules back in Python, one or an ensemble.

A search of the user's module (:func:`caviar.optimize` with a builder, or ``[study] model`` in
a config) keeps its best trials as :class:`~caviar.own.member.KeptModule` files where caviar's
nets keep theirs (:mod:`caviar.search.kept`): the hyperparameters, the module's
``state_dict`` and the builder's reference (``"package.module:build"``). A kept module comes
back by calling that builder (imported again, or the ``build=`` given) with the trial's
hyperparameters and loading the ``state_dict``, in eval mode.

Why the builder's function and not a pickled module: caviar never unpickles code
(``torch.load(weights_only=True)``), and a module is only as portable as its class anyway.
A builder that lived in a script (``__main__:build``) cannot be imported by another program;
then ``build=`` must be given.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from caviar.core.errors import InvalidValue, got
from caviar.models.ensemble import OUTPUT, kept_members, log_mean_softmax
from caviar.nn.state import DamagedState
from caviar.own.builder import Build, build_module, resolve
from caviar.own.member import KeptModule
from caviar.own.space import MemberSettings
from caviar.search.kept import find_kept_state, read_state
from caviar.study import Study

OWNER = "load_model"


@dataclass(frozen=True)
class OwnStudy:
    """What a study of the user's model says of it: the builder's reference, the shape of
    one example (what the module takes, less the batch) and the number of classes."""

    model: str
    example_shape: tuple[int, ...]
    n_classes: int | None

    @classmethod
    def of(cls, study: Study) -> OwnStudy | None:
        """The study's, or None for a study of caviar's nets (or one made with Study.create)."""
        config = study.attrs.get("config") or {}
        model = (config.get("study") or {}).get("model")
        if not model:
            return None
        data = study.attrs.get("data") or {}
        return cls(
            model=str(model),
            example_shape=tuple(int(n) for n in data.get("example_shape") or ()),
            n_classes=data.get("n_classes"),
        )


def own_study(study: str, storage: str | os.PathLike[str]) -> OwnStudy | None:
    """:meth:`OwnStudy.of` the study named ``study`` in ``storage`` (opened read-only)."""
    loaded = Study.open_file(study, storage, read_only=True)
    try:
        return OwnStudy.of(loaded)
    finally:
        loaded.close()


def read_kept(path: str | os.PathLike[str]) -> KeptModule | None:
    """The kept module saved at ``path``, or None where the file is missing or holds something
    else (a caviar net's member state, or no PyTorch file: :func:`~caviar.search.kept.read_state`
    says which); read with ``weights_only``, so no code is unpickled."""
    source = Path(path)
    if not source.is_file():
        return None
    try:
        payload = torch.load(io.BytesIO(source.read_bytes()), weights_only=True)
    except Exception:  # any bytes at all: read_state says what they are
        return None
    if not isinstance(payload, dict) or payload.get("kind") != "own-module":
        return None
    try:
        return KeptModule.from_payload(payload)
    except (KeyError, TypeError) as e:
        raise DamagedState(repr(str(source)), f"a kept module without its {e}") from None


def kept_module(path: str | os.PathLike[str]) -> KeptModule:
    """:func:`read_kept`, or the error :func:`~caviar.search.kept.read_state` gives for a file
    that is missing or damaged, or one saying it is a caviar net's."""
    kept = read_kept(path)
    if kept is None:
        read_state(path)  # no file, or no model: its error says which
        raise InvalidValue(
            OWNER,
            f"{str(path)!r} holds a caviar net, not a module of yours: load it without build=",
        )
    return kept


def builder(model: str | None, build: Build | None) -> Build:
    """The function that builds the kept module: ``build`` when given, else the one the
    reference ``model`` names, imported again; an error saying to pass ``build=`` when a
    script's function (``__main__``) or a builder that no longer imports is all there is."""
    if build is not None:
        if not callable(build):
            raise InvalidValue(f"{OWNER}.build", f"must be the builder function, {got(build)}")
        return build
    if model is None or model.startswith("__main__:") or "<" in model or " " in model:
        raise InvalidValue(
            f"{OWNER}.build",
            f"the study's builder was {model or 'a function'}, which no other program can "
            "import (a script's function, a partial or a callable object): pass build= (the "
            "same builder) to load its models",
        )
    try:
        return resolve(model, owner=OWNER)
    except InvalidValue as e:
        raise InvalidValue(
            f"{OWNER}.build",
            f"the study's builder {model} is not importable here ({e.reason}); run from the "
            "folder it was tuned in, or pass build= (the same function)",
        ) from None


def rebuild(
    kept: KeptModule,
    build: Build | None = None,
    *,
    trial: int | None = None,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """The kept module: built from its hyperparameters (those the builder reads, as in the
    search), its ``state_dict`` loaded, on the CPU in ``dtype``, in eval mode."""
    function = builder(kept.model, build)
    settings = MemberSettings.from_params(kept.params, owner="params")
    module = build_module(
        function, settings.builder, 0, dtype=dtype, device=torch.device("cpu")
    ).module
    state = {
        name: tensor.to(dtype) if tensor.is_floating_point() else tensor
        for name, tensor in kept.state_dict.items()
    }
    try:
        module.load_state_dict(state)
    except RuntimeError as e:
        which = "the kept model" if trial is None else f"trial {trial}'s kept model"
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InvalidValue(
            OWNER,
            f"{which} does not fit the module the builder makes now (was it changed?): {first}",
        ) from None
    return module.eval()


def load_kept_module(
    source: str | os.PathLike[str],
    trial: int | None = None,
    *,
    storage: str | os.PathLike[str] | None = None,
    build: Build | None = None,
    dtype: torch.dtype = torch.float32,
) -> nn.Module:
    """A kept module from its file (``storage`` None), or trial ``trial`` (default: the best)
    of the study ``source`` in ``storage``."""
    path = Path(source) if storage is None else find_kept_state(str(source), trial, storage=storage)
    kept = kept_module(path)
    number = None if storage is None else int(path.stem.removeprefix("trial-"))
    return rebuild(kept, build, trial=number, dtype=dtype)


class ModuleEnsemble(nn.Module):
    """The user's modules averaged in probability: ``x`` [B, ...] -> log-probabilities [B, C],
    ``log((1/K) * sum_k softmax(z_k(x)))``, as :class:`~caviar.models.ensemble.CaviarEnsemble`
    computes it (``logsumexp`` of the log-softmaxes, less ``log K``)."""

    def __init__(self, members: Sequence[nn.Module], *, trials: Sequence[int] = ()) -> None:
        super().__init__()
        if not members:
            raise InvalidValue("ModuleEnsemble", "needs at least one module, got none")
        if trials and len(trials) != len(members):
            raise InvalidValue(
                "ModuleEnsemble",
                f"needs one trial number per module ({len(members)}), {got(list(trials))}",
            )
        self.members = nn.ModuleList(members)
        self.trials = [int(t) for t in trials]
        self.eval()

    def forward(self, x: Tensor) -> Tensor:
        """Log-probabilities [B, C]: the log of the members' mean softmax."""
        return log_mean_softmax(torch.stack([member(x) for member in self.members]))


def load_module_ensemble(
    study: str,
    k: int,
    *,
    storage: str | os.PathLike[str],
    build: Build | None = None,
    dtype: torch.dtype = torch.float32,
) -> ModuleEnsemble:
    """The ensemble of the top ``k`` kept modules of study ``study``."""
    loaded = Study.open_file(study, storage, read_only=True)
    try:
        members = kept_members(loaded, k)
    finally:
        loaded.close()
    return kept_ensemble(members, build, dtype=dtype)


def kept_ensemble(
    members: Sequence[tuple[Any, Path]], build: Build | None, *, dtype: torch.dtype
) -> ModuleEnsemble:
    """The :class:`ModuleEnsemble` of ``(trial, path)`` pairs from
    :func:`~caviar.models.ensemble.kept_members`."""
    modules = []
    for trial, path in members:
        kept = kept_module(path)
        modules.append(rebuild(kept, build, trial=trial.number, dtype=dtype))
    return ModuleEnsemble(modules, trials=[t.number for t, _ in members])


def describe(
    facts: OwnStudy,
    trials: Sequence[int],
    params: Sequence[Mapping[str, Any]],
    *,
    dtype: torch.dtype,
    ensemble: bool,
) -> dict[str, Any]:
    """What an exported program of the user's module is, as JSON-ready data."""
    shape = ", ".join(["B", *map(str, facts.example_shape)])
    return {
        "model": facts.model,
        "trials": list(trials),
        "params": [dict(p) for p in params],
        "ensemble": len(trials) if ensemble else None,
        "output": OUTPUT if ensemble else "the module's output (logits)",
        "inputs": f"[{shape}] as the study trained on them",
        "example_shape": list(facts.example_shape),
        "n_classes": facts.n_classes,
        "dtype": str(dtype).removeprefix("torch."),
    }


@dataclass(frozen=True)
class KeptProgram:
    """What ``caviar export`` writes for a study of the user's model: the module (or the
    ensemble), what it takes, its description, and the file it goes to by default."""

    module: nn.Module
    example_shape: tuple[int, ...]
    description: dict[str, Any]
    default: Path
    trials: list[int]


def kept_program(
    study: str,
    *,
    storage: str | os.PathLike[str],
    trial: int | None = None,
    ensemble: int | None = None,
    build: Build | None = None,
    dtype: torch.dtype = torch.float32,
) -> KeptProgram:
    """The best kept module of study ``study`` (or trial ``trial``'s, or the ensemble of the
    top ``ensemble``), ready for :func:`~caviar.models.export.export_module`."""
    loaded = Study.open_file(study, storage, read_only=True)
    try:
        facts = OwnStudy.of(loaded)
        members = kept_members(loaded, ensemble) if ensemble is not None else None
    finally:
        loaded.close()
    if facts is None:
        raise InvalidValue(f"study {study!r}", "is a study of caviar's nets, not of your module")
    if members is None:
        path = find_kept_state(study, trial, storage=storage)
        number = int(path.stem.removeprefix("trial-"))
        kept = kept_module(path)
        description = describe(facts, [number], [kept.params], dtype=dtype, ensemble=False)
        module = rebuild(kept, build, trial=number, dtype=dtype)
        return KeptProgram(
            module, facts.example_shape, description, path.with_suffix(".pt2"), [number]
        )
    trials = [t.number for t, _ in members]
    params = [t.params for t, _ in members]
    description = describe(facts, trials, params, dtype=dtype, ensemble=True)
    default = members[0][1].parent / f"ensemble-{len(members)}.pt2"
    model = kept_ensemble(members, build, dtype=dtype)
    return KeptProgram(model, facts.example_shape, description, default, trials)

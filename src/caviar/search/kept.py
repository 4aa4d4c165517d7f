"""The models a search keeps, and finding them again.

The search loop saves the final :class:`~caviar.nn.MemberState` of a study's best trials as
``caviar-models/<study>/trial-<N>.pt`` beside the study file (:func:`kept_state_path`) and lists
their numbers in ``study.attrs["kept_models"]``. :func:`find_kept_state` and :func:`read_state`
find and read one back, for :mod:`caviar.models` and panda's ``--from STUDY:TRIAL``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from caviar.core.errors import InvalidValue, got
from caviar.study import Study

if TYPE_CHECKING:
    from caviar.nn.state import MemberState


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


def read_state(path: str | os.PathLike[str]) -> MemberState:
    """A member state saved with :meth:`MemberState.save`, or a clear error: no file there, or
    a file that is no caviar model or is damaged (:class:`~caviar.nn.state.DamagedState`)."""
    from caviar.nn.state import MemberState  # deferred: torch (finding a kept model needs none)

    source = Path(path)
    if not source.is_file():
        raise InvalidValue(
            "load_model",
            f"no saved member state at {str(source)!r} (a study's name needs storage=)",
        )
    return MemberState.load(source)  # a damaged file: a DamagedState naming it


def find_kept_state(
    study: str, trial: int | None = None, *, storage: str | os.PathLike[str]
) -> Path:
    """The kept state of ``trial`` (default: the study's best trial), or an error naming the
    trials that were kept."""
    if trial is not None and (isinstance(trial, bool) or not isinstance(trial, int) or trial < 0):
        raise InvalidValue("trial", f"must be an integer >= 0, {got(trial)}")
    loaded = Study.open_file(study, storage, read_only=True)
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

"""``caviar export STUDY``: a kept model, or an ensemble of the top kept models, as a
``torch.export`` program (``.pt2``) that loads without caviar; for a study of your own model,
your module rebuilt by its builder (importable from the working directory)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from caviar.cli.flags import positive
from caviar.cli.study_file import add_storage_flag, storage_path
from caviar.core.errors import InvalidValue


def add_parser(sub: Any) -> None:
    e = sub.add_parser("export", help="write a kept model as a torch.export program")
    e.add_argument("study", help="study name")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="trial number (default: the best trial)")
    which.add_argument(
        "--ensemble",
        type=positive,
        metavar="K",
        help="the top K kept models as one program: the log of their mean softmax output",
    )
    e.add_argument(
        "-o",
        "--out",
        help="the .pt2 file, or a folder to write it in under its default name, as cp does "
        "(default: beside the kept state)",
    )
    add_storage_flag(e)
    e.set_defaults(run=run, imports=("caviar.models.export",))


def run(args: argparse.Namespace) -> int:
    # deferred: torch
    from caviar.models.ensemble import load_ensemble
    from caviar.models.export import export_model, save_program
    from caviar.models.own_module import own_study
    from caviar.search.kept import find_kept_state, kept_dir, read_state

    storage = storage_path(args)
    if own_study(args.study, storage) is not None:
        return _export_own(args, storage)
    if args.ensemble is not None:
        try:
            ensemble = load_ensemble(args.study, args.ensemble, storage=storage)
        except InvalidValue as e:
            raise (e.at("--ensemble") if e.owner == "ensemble" else e) from None
        default = kept_dir(storage, args.study) / f"ensemble-{args.ensemble}.pt2"
        out = save_program(ensemble, _target(args.out, default))
        print(f"exported the ensemble of trials {ensemble.trials} of study {args.study!r} to {out}")
        print(
            f"load with torch.export.load({str(out)!r}).module(): float32 [batch, "
            f"{ensemble.n_inputs}] -> log-probabilities [batch, {ensemble.n_classes}] (the log "
            f"of the members' mean softmax output)"
        )
        return 0
    source = find_kept_state(args.study, args.trial, storage=storage)
    state = read_state(source)
    out = export_model(state, _target(args.out, source.with_suffix(".pt2")))
    print(f"exported {source.stem} of study {args.study!r} to {out}")
    print(
        f"load with torch.export.load({str(out)!r}).module(): float32 [batch, {state.n_inputs}] "
        f"-> logits [batch, {state.n_classes}]"
    )
    return 0


def _export_own(args: argparse.Namespace, storage: Path) -> int:
    """``caviar export`` of a study of the user's model: its module, built again."""
    # deferred: torch
    from caviar.models.export import export_module
    from caviar.models.own_module import kept_program

    try:
        program = kept_program(
            args.study, storage=storage, trial=args.trial, ensemble=args.ensemble
        )
    except InvalidValue as e:
        raise (e.at("--ensemble") if e.owner == "ensemble" else e) from None
    out = export_module(
        program.module,
        _target(args.out, program.default),
        example_shape=program.example_shape,
        description=program.description,
    )
    which = "the ensemble of trials" if args.ensemble is not None else "trial"
    trials = program.trials if args.ensemble is not None else program.trials[0]
    shape = ", ".join(["batch", *map(str, program.example_shape)])
    print(f"exported {which} {trials} of study {args.study!r} to {out}")
    print(
        f"load with torch.export.load({str(out)!r}).module(): float32 [{shape}] -> "
        f"{program.description['output']}"
    )
    return 0


def _target(out: str | None, default: Path) -> Path:
    """Where ``-o`` puts the program: the file it names, or, for a folder (one that exists, or
    a name ending in ``/``), the default file name inside it, as ``cp`` and ``mv`` do."""
    if out is None:
        return default
    if out.endswith(("/", os.sep)) or Path(out).is_dir():
        return Path(out) / default.name
    return Path(out)

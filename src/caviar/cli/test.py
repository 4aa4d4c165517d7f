"""``caviar test STUDY``: the test set, used once, on the best configuration (retrained on
train + validation, or as trained) or on an ensemble of the top kept models; a study of your
own model is scored as trained (its builder importable from the working directory)."""

from __future__ import annotations

import argparse
from typing import Any

from caviar.cli.flags import positive
from caviar.cli.output import write_report_or_warn
from caviar.cli.study_file import add_storage_flag, open_study
from caviar.core.errors import InvalidValue


def add_parser(sub: Any) -> None:
    c = sub.add_parser("test", help="score the best configuration on the test set, once")
    c.add_argument("study", help="study name")
    add_storage_flag(c)
    how = c.add_mutually_exclusive_group()
    how.add_argument(
        "--mode",
        choices=["retrain", "as-trained"],
        help="default: retrain (as-trained for a study of your own model)",
    )
    how.add_argument(
        "--ensemble",
        type=positive,
        metavar="K",
        help="the mean of the softmax outputs of the top K kept models, as trained",
    )
    c.add_argument("--force", action="store_true", help="use the test set again")
    c.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    c.set_defaults(run=run, imports=("caviar.report",))


def run(args: argparse.Namespace) -> int:
    study = open_study(args)
    try:
        return _test(study, args)
    finally:
        study.close()  # the last connection to close leaves no -wal or -shm file


def _test(study: Any, args: argparse.Namespace) -> int:
    """Score the study on its test set as ``args`` say, print and record the result."""
    # deferred: torch
    from caviar.models.evaluate import (
        ensemble_table,
        evaluate_ensemble_on_test,
        evaluate_on_test,
    )

    if args.ensemble is None:
        record = evaluate_on_test(study, mode=args.mode, force=args.force, device=args.device)
    else:
        try:
            record = evaluate_ensemble_on_test(
                study, args.ensemble, force=args.force, device=args.device
            )
        except InvalidValue as e:
            raise (e.at("--ensemble") if e.owner == "ensemble" else e) from None
        print("\n".join(ensemble_table(record)))
    print(
        f"test accuracy {record['accuracy']:.4f} (loss {record['loss']:.4f}) on "
        f"{record['n_test']} examples: {record['how']}; recorded in study {study.name!r}"
    )
    if "validation_accuracy_reproduced" in record:
        print(
            f"validation accuracy reproduced: {record['validation_accuracy_reproduced']:.4f} "
            f"(search: {record['validation_accuracy_in_search']:.4f})"
        )
    write_report_or_warn(study)  # the report lists every use of the test set
    return 0

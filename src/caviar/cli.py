"""``caviar``: thin commands over the Python API.

caviar tune [CONFIG] [flags]   run or continue a study (no CONFIG: the embedded demo)
caviar show STUDY              leaderboard and best configuration
caviar report STUDY            write the HTML/PNG report again
caviar test STUDY              score the best configuration on the test set, once
caviar export STUDY            a kept model as a torch.export program (.pt2)
caviar studies                 the studies in a storage file
caviar panda [CONFIG] ...      babysit one model (see caviar.panda.command)
caviar experiment NAME         a textbook lesson with its figure and numbers
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sqlite3
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from caviar import interrupts
from caviar.command import interrupted_while_starting
from caviar.errors import InvalidValue
from caviar.experiments.command import add_parser as add_experiment
from caviar.panda.command import add_parser as add_panda
from caviar.tune_command import cmd_tune, threads_flag

DEFAULT_STORAGE = "caviar.db"


def _storage(args: argparse.Namespace) -> str:
    return args.storage or os.environ.get("CAVIAR_STORAGE") or DEFAULT_STORAGE


def write_report_or_warn(study: Any, out: str | None = None) -> None:
    """Write the study's report, or say on stderr why it could not be (the study is safe)."""
    from caviar.report import write_report

    try:
        print(f"report: {write_report(study, out)}")
    except OSError as e:
        print(
            f"caviar: warning: the report could not be written ({_os_reason(e)}); the study is "
            f"stored: `caviar report {study.name} --out FOLDER` writes it elsewhere",
            file=sys.stderr,
        )


def _os_reason(e: OSError) -> str:
    where = f": {e.filename}" if e.filename else ""
    return f"{e.strerror or e}{where}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _open(args: argparse.Namespace, *, read_only: bool = False) -> Any:
    """The named study; ``read_only`` for commands that only look (they never write, not even
    SQLite's WAL switch, so a foreign or read-only file is left as it is)."""
    from caviar.storage import SQLiteStorage
    from caviar.study import Study

    path = Path(_storage(args))
    if not path.exists():
        raise InvalidValue("--storage", f"no study file at {str(path)!r}")
    return Study.load(args.study, SQLiteStorage(path, read_only=read_only))


def cmd_show(args: argparse.Namespace) -> int:
    from caviar.panda.listing import list_runs
    from caviar.report.data import summary

    runs = [r for r in list_runs(_storage(args)) if r.name == args.study]
    if runs:  # a panda run: its branches
        print("\n".join(runs[0].describe()))
        return 0
    study = _open(args, read_only=True)
    trials = study.trials(curves=False)
    facts = summary(trials)
    states = ", ".join(f"{n} {s}" for s, n in facts["states"].items() if n)
    print(f"study {study.name!r} in {study.storage.path}: {facts['trials']} trials ({states})")
    from caviar.report.data import rung_table

    for rung in rung_table(study.trials()):
        top = "-" if rung.best is None else f"{rung.best:.4f}"
        print(
            f"  rung at epoch {rung.epoch}: {rung.reached} trials reached it, {rung.pruned} "
            f"pruned there, best val acc {top}"
        )
    errors = sorted({str(t.attrs["error"]) for t in trials if "error" in t.attrs})
    for error in errors[:5]:
        print(f"  a trial failed: {error}")
    free = list(study.space.free_names)
    board = study.leaderboard(args.top)
    if not board:
        print("no complete trial yet")
        return 0
    header = ["rank", "trial", "val acc", *free]
    rows = [
        [str(i + 1), str(t.number), f"{t.value:.4f}", *(format_value(t.params[n]) for n in free)]
        for i, t in enumerate(board)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    best = board[0]
    print(f"\nbest configuration (trial {best.number}, seed {best.seed}):")
    for name, value in sorted(best.params.items()):
        print(f"  {name} = {format_value(value)}")
    test = study.attrs.get("test")
    if test:
        print(f"\ntest set used ({test['mode']}, {test['when']}): accuracy {test['accuracy']:.4f}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from caviar.report import write_report

    study = _open(args, read_only=True)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise InvalidValue("--out", f"must be a folder for the report, got the file {str(out)!r}")
    try:
        path = write_report(study, out)
    except OSError as e:
        raise InvalidValue("--out", f"cannot write the report: {_os_reason(e)}") from None
    print(f"report: {path}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from caviar.evaluate import ensemble_table, evaluate_ensemble_on_test, evaluate_on_test

    study = _open(args)
    if args.ensemble is None:
        mode = args.mode or "retrain"
        record = evaluate_on_test(study, mode=mode, force=args.force, device=args.device)
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


def cmd_export(args: argparse.Namespace) -> int:
    from caviar.export import export_model, find_kept_state, kept_dir, read_state

    if args.ensemble is not None:
        from caviar.ensemble import load_ensemble
        from caviar.export import save_program

        try:
            ensemble = load_ensemble(args.study, args.ensemble, storage=_storage(args))
        except InvalidValue as e:
            raise (e.at("--ensemble") if e.owner == "ensemble" else e) from None
        default = kept_dir(_storage(args), args.study) / f"ensemble-{args.ensemble}.pt2"
        out = save_program(ensemble, args.out or default)
        print(f"exported the ensemble of trials {ensemble.trials} of study {args.study!r} to {out}")
        print(
            f"load with torch.export.load({str(out)!r}).module(): float32 [batch, "
            f"{ensemble.n_inputs}] -> log-probabilities [batch, {ensemble.n_classes}] (the log "
            f"of the members' mean softmax output)"
        )
        return 0
    source = find_kept_state(args.study, args.trial, storage=_storage(args))
    state = read_state(source)
    out = export_model(state, args.out or source.with_suffix(".pt2"))
    print(f"exported {source.stem} of study {args.study!r} to {out}")
    print(
        f"load with torch.export.load({str(out)!r}).module(): float32 [batch, {state.n_inputs}] "
        f"-> logits [batch, {state.n_classes}]"
    )
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    from caviar.storage import SQLiteStorage, StorageError
    from caviar.study import Study

    path = Path(_storage(args))
    if not path.exists():
        print(f"no study file at {path}")
        return 0
    storage = SQLiteStorage(path, read_only=True)
    names = storage.study_names()
    if not names:
        print(f"no studies in {path}")
    for name in names:
        try:
            print(f"{name}: {_study_line(Study.load(name, storage))}")
        except StorageError as e:  # one unreadable study does not hide the others
            print(f"{name}: cannot be read: {e}")
    from caviar.panda.listing import list_runs

    for run in list_runs(path):
        print(run.describe()[0])
    return 0


def _study_line(study: Any) -> str:
    trials = study.trials(curves=False)
    best = study.best_trial
    best_text = "-" if best is None else f"{best.value:.4f}"
    data = study.attrs.get("data")
    where = (
        f"on {data.get('dataset', '?')}"
        if isinstance(data, dict)
        else "(made with the Python API: no dataset recorded)"
    )
    return f"{len(trials)} trials {where}, best val acc {best_text}, {study.sampler.name} search"


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="caviar",
        description="Tune deep nets the way the textbooks teach it, many models at once.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("tune", help="run or continue a study")
    t.add_argument("config", nargs="?", help="TOML/YAML study config (default: the demo)")
    t.add_argument("--name", help="study name")
    t.add_argument("--storage", help=f"SQLite study file (default {DEFAULT_STORAGE})")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--dataset", help="mnist, fashion-mnist, digits, or a .npz/.csv file")
    t.add_argument("--data-dir", help="folder with the IDX .gz files (no download)")
    t.add_argument("--train-size", type=int, help="use the first N training examples")
    t.add_argument("--sampler", choices=["random", "grid", "coarse_to_fine"])
    t.add_argument("--trials", type=int, help="number of trials")
    t.add_argument(
        "--population", type=int, help="members trained at once (0: 16 on a CPU, 1024 on a GPU)"
    )
    t.add_argument("--timeout", type=float, help="time budget in seconds (search.timeout)")
    t.add_argument("--halving", action="store_true", help="successive halving: min_epochs 1, eta 3")
    t.add_argument("--halving-eta", type=int, help="keep the top 1/eta at each rung")
    t.add_argument("--halving-min-epochs", type=int, help="the first rung, in epochs")
    t.add_argument("--threads", type=threads_flag, help="CPU threads: auto or N (study.threads)")
    t.add_argument("--epochs", type=int, help="epochs per trial (fixes space.epochs)")
    t.add_argument(
        "--ray", metavar="auto|ADDRESS", help="spread the pool over a Ray cluster (search.ray)"
    )
    t.add_argument(
        "--devices",
        metavar="LIST",
        help="one pool worker per device, e.g. cuda:0,cuda:1, or cpu,cpu for one worker process "
        "per core; auto: one per core (per GPU on GPUs) (search.devices)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress line")
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="check the config and the data, say what would run, train and write nothing",
    )
    t.add_argument("--no-report", action="store_true", help="skip the report")
    t.set_defaults(run=cmd_tune, imports=("caviar.tuning", "caviar.report"))

    for name, helptext, run in (
        ("show", "leaderboard and best configuration", cmd_show),
        ("report", "write the study's report", cmd_report),
        ("test", "score the best configuration on the test set, once", cmd_test),
    ):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("study", help="study name")
        c.add_argument("--storage", help=f"SQLite study file (default {DEFAULT_STORAGE})")
        c.set_defaults(run=run, imports=("caviar.report",))
        if name == "show":
            c.add_argument("--top", type=_positive, default=10, help="rows of the leaderboard")
        if name == "report":
            c.add_argument("--out", help="folder for the report")
        if name == "test":
            how = c.add_mutually_exclusive_group()
            how.add_argument("--mode", choices=["retrain", "as-trained"], help="default: retrain")
            how.add_argument(
                "--ensemble",
                type=_positive,
                metavar="K",
                help="the mean of the softmax outputs of the top K kept models, as trained",
            )
            c.add_argument("--force", action="store_true", help="use the test set again")
            c.add_argument("--device", help="auto, cpu, cuda or cuda:N")

    e = sub.add_parser("export", help="write a kept model as a torch.export program")
    e.add_argument("study", help="study name")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="trial number (default: the best trial)")
    which.add_argument(
        "--ensemble",
        type=_positive,
        metavar="K",
        help="the top K kept models as one program: the log of their mean softmax output",
    )
    e.add_argument("-o", "--out", help="the .pt2 file (default: beside the kept state)")
    e.add_argument("--storage", help=f"SQLite study file (default {DEFAULT_STORAGE})")
    e.set_defaults(run=cmd_export, imports=("caviar.export",))

    add_panda(sub, f"SQLite study file (default {DEFAULT_STORAGE})")
    add_experiment(sub)

    s = sub.add_parser("studies", help="list the studies in a storage file")
    s.add_argument("--storage", help=f"SQLite study file (default {DEFAULT_STORAGE})")
    s.set_defaults(run=cmd_studies, imports=())
    return p


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        print(f"caviar: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


@contextlib.contextmanager
def _quiet_interrupts() -> Iterator[None]:
    """While the command starts (parsing, importing torch), Ctrl-C exits at once with one line
    (see :mod:`caviar.command`); afterwards it raises KeyboardInterrupt, which the command
    handles (unfinished trials go back to the queue). In the console script the interrupt is
    also remembered, so one swallowed in a finalizer still stops the run (see
    :mod:`caviar.interrupts`); called from Python, the caller's handler comes back."""
    try:
        previous = signal.signal(signal.SIGINT, interrupted_while_starting)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        console = previous is interrupted_while_starting or previous is None
        signal.signal(signal.SIGINT, interrupts.handler if console else previous)
        if console:
            sys.unraisablehook = interrupts.quiet_unraisable(sys.unraisablehook)


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    print(f"caviar: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    with _quiet_interrupts():
        args = parser().parse_args(argv)
        for module in ("caviar.data", "caviar.evaluate", "caviar.storage", *args.imports):
            importlib.import_module(module)
    from caviar.data import DownloadError
    from caviar.evaluate import TestSetUsed
    from caviar.storage import StorageError

    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # one line each, not Python's two
            code = int(args.run(args))
        interrupts.raise_pending()  # a Ctrl-C swallowed after the last round still counts
        return code
    except (InvalidValue, TestSetUsed, StorageError, DownloadError, sqlite3.Error) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, whatever a key or a path holds
        print(f"caviar: error: {message}".replace("\n", "\\n"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        interrupts.handled()
        print("\ncaviar: interrupted; run the same command again to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `caviar show ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:  # a folder or file the command needed: say which and why
        print(f"caviar: error: {_os_reason(e)}".replace("\n", "\\n"), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

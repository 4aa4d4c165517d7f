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
import copy
import importlib
import math
import os
import re
import signal
import sqlite3
import sys
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

from caviar.command import interrupted_while_starting
from caviar.errors import InvalidValue
from caviar.experiments.command import add_parser as add_experiment
from caviar.panda.command import add_parser as add_panda

DEFAULT_STORAGE = "caviar.db"

#: flags that change what a study is (its space, sampler, seed or data): given without --name,
#: they name a study of their own, so the same command continues the same study
DEFINING_FLAGS = ("dataset", "train_size", "sampler", "seed", "epochs", "trials")


def _storage(args: argparse.Namespace) -> str:
    return args.storage or os.environ.get("CAVIAR_STORAGE") or DEFAULT_STORAGE


def _config_mapping(args: argparse.Namespace) -> tuple[dict[str, Any], str, str]:
    """The config as a mapping with the flags applied (validated once, afterwards), its default
    name, and where it came from."""
    from caviar.demo import DEMO

    if args.config is None:
        raw, default_name, source = copy.deepcopy(DEMO), "demo", "the embedded demo"
    else:
        from caviar.config import read_config_file

        path = Path(args.config)
        raw, default_name, source = read_config_file(path), path.stem, str(path)
    overrides = {
        ("study", "storage"): args.storage or os.environ.get("CAVIAR_STORAGE"),
        ("study", "seed"): args.seed,
        ("study", "device"): args.device,
        ("data", "dataset"): args.dataset,
        ("data", "data_dir"): args.data_dir,
        ("data", "train_size"): args.train_size,
        ("search", "sampler"): args.sampler,
        ("search", "trials"): args.trials,
        ("search", "population"): args.population,
        ("search", "timeout"): args.timeout,
        ("search", "halving"): _halving_flags(args),
        ("study", "threads"): args.threads,
        ("space", "epochs"): args.epochs,
        ("search", "ray"): args.ray,
        ("search", "devices"): args.devices,
    }
    renamed = _flag_name(args, raw, default_name)
    if args.trials is not None:
        _scale_per_round(raw, args.trials)
    for (section, key), value in overrides.items():
        if value is not None:
            if raw.get(section) is None:
                raw[section] = {}
            if isinstance(raw[section], dict):  # otherwise validation names the bad section
                raw[section][key] = value
    name = args.name or renamed
    if name is not None and isinstance(raw.get("study"), dict):
        raw["study"]["name"] = name
    elif name is not None and raw.get("study") is None:
        raw["study"] = {"name": name}
    return raw, default_name, source


def _flag_name(args: argparse.Namespace, raw: dict[str, Any], default_name: str) -> str | None:
    """The study name the defining flags give (``demo-fashion-mnist-trials64-epochs10``), or
    None when no such flag is given or --name is."""
    if args.name is not None:
        return None
    search = raw.get("search") if isinstance(raw.get("search"), dict) else {}
    sampler = args.sampler or (search or {}).get("sampler", "random")
    parts = []
    for flag in DEFINING_FLAGS:
        value = getattr(args, flag)
        if value is None or (flag == "trials" and sampler != "coarse_to_fine"):
            continue  # a random or grid study's trial count is a budget, not its definition
        label = Path(str(value)).stem if flag == "dataset" else str(value)
        parts.append(label if flag in ("dataset", "sampler") else f"{flag.replace('_', '')}{label}")
    if not parts:
        return None
    study = raw.get("study") if isinstance(raw.get("study"), dict) else {}
    base = str((study or {}).get("name") or default_name)
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", "-".join([base, *parts])).lstrip(".-")
    return name[:100] or None


def scale_rounds(per_round: Sequence[int], trials: int) -> list[int]:
    """``per_round`` scaled to ``trials`` in all, keeping its proportions (largest remainders),
    every round at least one trial."""
    if trials < len(per_round):
        raise InvalidValue(
            "--trials",
            f"must be >= the {len(per_round)} rounds of search.per_round {list(per_round)}, "
            f"got {trials}",
        )
    total = sum(per_round)
    spare = trials - len(per_round)  # one trial per round first, the rest shared out
    shares = [spare * n / total for n in per_round]
    counts = [1 + math.floor(x) for x in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: (-(shares[i] % 1), i))
    for i in by_remainder[: trials - sum(counts)]:
        counts[i] += 1
    return counts


def _scale_per_round(raw: dict[str, Any], trials: int) -> None:
    """With --trials, a config's explicit search.per_round is scaled to the new total."""
    search = raw.get("search")
    if not isinstance(search, dict):
        return
    per_round = search.get("per_round")
    counts = trial_counts(per_round)
    if counts is None or sum(counts) == trials:
        return  # nothing to scale (a bad list is named by the validation)
    search["per_round"] = scale_rounds(counts, trials)
    print(
        f"caviar: search.per_round {per_round} scaled to {search['per_round']} for "
        f"--trials {trials}",
        file=sys.stderr,
    )


def trial_counts(value: Any) -> list[int] | None:
    """``value`` if it is a non-empty list of trial counts, else None."""
    if not isinstance(value, list) or not value:
        return None
    counts = [n for n in value if isinstance(n, int) and not isinstance(n, bool) and n >= 1]
    return counts if len(counts) == len(value) else None


def _halving_flags(args: argparse.Namespace) -> dict[str, int] | None:
    """``search.halving`` from --halving, --halving-eta and --halving-min-epochs (None: the
    config decides)."""
    if not args.halving and args.halving_eta is None and args.halving_min_epochs is None:
        return None
    table = {"min_epochs": 1, "eta": 3}
    if args.halving_eta is not None:
        table["eta"] = args.halving_eta
    if args.halving_min_epochs is not None:
        table["min_epochs"] = args.halving_min_epochs
    return table


def _threads(text: str) -> int | str:
    return text if text == "auto" else int(text)


def cmd_tune(args: argparse.Namespace) -> int:
    from caviar.config import config_from_mapping
    from caviar.tuning import check_device, tune

    raw, default_name, source = _config_mapping(args)
    config = config_from_mapping(raw, default_name=default_name, source=source)
    check_device(config)
    print(
        f"caviar: study {config.name!r} from {source}: {config.n_trials()} trials, "
        f"{config.search.sampler} search over {', '.join(config.space.free_names) or '-'}; "
        f"stored in {config.study.storage}",
        flush=True,
    )
    if args.name is None and _flag_name(args, copy.deepcopy(raw), default_name) is not None:
        print(
            "caviar: the flags change the study's definition, so they name a study of their "
            "own (the same command continues it; --name to choose another)",
            flush=True,
        )
    if args.dry_run:
        return _dry_run(config)
    study = tune(config, progress=not args.quiet, report=False)
    best = study.best_trial
    if best is None:
        print(_no_result(study, config))
        return 1
    # the summary first: a report that cannot be written must not lose it
    print(f"\nbest configuration (trial {best.number}): validation accuracy {best.value:.4f}")
    for name in config.space.free_names:
        print(f"  {name} = {_fmt(best.params[name])}")
    if not args.no_report:
        _write_report(study)
    print(f"next: caviar show {study.name}   |   caviar test {study.name} (uses the test set once)")
    study.close()
    return 0


def _dry_run(config: Any) -> int:
    """Check the config and its data as a run would, say what the run would do, write nothing."""
    from caviar.tuning import prepare_data

    data = prepare_data(config)
    record = data.record()
    halving = config.halving()
    print(
        f"dry run: {record['n_train']} training / {record['n_validation']} validation / "
        f"{record['n_test']} test examples of {record['dataset']} ({record['n_features']} "
        f"features, {record['n_classes']} classes); {config.n_trials()} trials, pool "
        f"{config.search.population or 'auto'}, "
        f"{'halving ' + str(halving.to_config()) if halving else 'no halving'}, "
        f"timeout {config.search.timeout or 'none'}; nothing was trained or written"
    )
    return 0


def _no_result(study: Any, config: Any) -> str:
    """Why a run ends without a complete trial, in the study's own counts."""
    trials = study.trials(curves=False)
    finished = [t for t in trials if t.state.is_finished]
    waiting = len(trials) - len(finished)
    if config.search.timeout is not None and not finished:
        queued = f"; {waiting} unfinished trials wait in the queue" if waiting else ""
        return (
            f"caviar: no trial finished within the {config.search.timeout:g} s budget{queued}: "
            f"run the same command again to go on, or give a larger --timeout"
        )
    states = ", ".join(
        f"{n} {s}" for s, n in sorted(Counter(t.state.value for t in finished).items())
    )
    return f"caviar: no trial completed ({states or 'none finished'}); see `caviar show`"


def _write_report(study: Any, out: str | None = None) -> None:
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


def _fmt(value: Any) -> str:
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
        [str(i + 1), str(t.number), f"{t.value:.4f}", *(_fmt(t.params[n]) for n in free)]
        for i, t in enumerate(board)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))
    best = board[0]
    print(f"\nbest configuration (trial {best.number}, seed {best.seed}):")
    for name, value in sorted(best.params.items()):
        print(f"  {name} = {_fmt(value)}")
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
    _write_report(study)  # the report lists every use of the test set
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
    t.add_argument("--threads", type=_threads, help="CPU threads: auto or N (study.threads)")
    t.add_argument("--epochs", type=int, help="epochs per trial (fixes space.epochs)")
    t.add_argument(
        "--ray", metavar="auto|ADDRESS", help="spread the pool over a Ray cluster (search.ray)"
    )
    t.add_argument(
        "--devices",
        metavar="LIST",
        help="one pool worker per device, e.g. cuda:0,cuda:1 or cpu,cpu (search.devices)",
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
    handles (unfinished trials go back to the queue)."""
    try:
        previous = signal.signal(signal.SIGINT, interrupted_while_starting)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        quiet = previous is interrupted_while_starting or previous is None
        signal.signal(signal.SIGINT, signal.default_int_handler if quiet else previous)


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
            return int(args.run(args))
    except (InvalidValue, TestSetUsed, StorageError, DownloadError, sqlite3.Error) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        # one line, whatever a key or a path holds
        print(f"caviar: error: {message}".replace("\n", "\\n"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
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

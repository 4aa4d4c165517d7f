"""``caviar panda``: start a babysitting run and its page, or control a running one.

caviar panda CONFIG [--port P] [--host H]      train one model, serve its page on 127.0.0.1
caviar panda --from STUDY:TRIAL                start from a caviar trial (and its kept state)
caviar panda set lr=3e-3 beta1=0.95            change mid-run hyperparameters (next epoch)
caviar panda rollback EPOCH [--branch B] [--mode fresh]   a new branch from a snapshot
caviar panda pause | resume | stop
caviar panda list                              the runs in the study file, with their branches

Controls write a command into the study file; the trainer applies it at its next epoch
boundary, whichever process wrote it (the page's buttons do the same through the server).
"""

from __future__ import annotations

import argparse
import os
import threading
from pathlib import Path
from typing import Any

from caviar.errors import InvalidValue

ACTIONS = ("set", "rollback", "pause", "resume", "stop", "list")


def add_parser(sub: Any, storage_help: str) -> None:
    """Register ``caviar panda`` on the command's subparsers."""
    p = sub.add_parser(
        "panda",
        help="babysit one model: live curves, mid-run changes, rollback and branches",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "target",
        nargs="?",
        help=f"a study config to train (plain values), or one of {', '.join(ACTIONS)}",
    )
    p.add_argument("values", nargs="*", help="set: key=value ...; rollback: EPOCH")
    p.add_argument("--from", dest="from_trial", metavar="STUDY:TRIAL", help="start from a trial")
    p.add_argument("--name", help="the run's name (default: the config's study name)")
    p.add_argument(
        "--run", dest="run_name", help="the run a control acts on (default: the only one)"
    )
    p.add_argument("--storage", help=storage_help)
    p.add_argument("--host", default="127.0.0.1", help="the page's interface (default local)")
    p.add_argument("--port", type=int, default=0, help="the page's port (default: a free one)")
    p.add_argument("--epochs", type=int, help="epochs in all (default: the config's)")
    p.add_argument("--branch", type=int, help="rollback: the branch whose snapshot to use")
    p.add_argument("--mode", choices=["exact", "fresh"], default="exact", help="rollback mode")
    p.add_argument(
        "--snapshot-budget-mb", type=float, default=512.0, help="disk for snapshots (MB)"
    )
    p.set_defaults(run=run, imports=("caviar.panda.trainer", "caviar.panda.server"))


def run(args: argparse.Namespace) -> int:
    if args.target in ACTIONS:
        return _control(args)
    if args.values:
        raise InvalidValue("caviar panda", f"takes one config, got also {args.values}")
    return _start(args)


def _storage(args: argparse.Namespace, default: str | None = None) -> str:
    return args.storage or os.environ.get("CAVIAR_STORAGE") or default or "caviar.db"


def _start(args: argparse.Namespace) -> int:
    from caviar.panda.engine import panda_config
    from caviar.panda.server import serve
    from caviar.panda.trainer import PandaRun

    if args.from_trial is not None:
        if args.target is not None:
            raise InvalidValue("--from", "starts from a trial: give no config with it")
        study, _, trial = args.from_trial.rpartition(":")
        if not study or not trial.isdigit():
            raise InvalidValue("--from", f"must read STUDY:TRIAL, got {args.from_trial!r}")
        panda = PandaRun.from_trial(
            study,
            int(trial),
            storage=_storage(args),
            name=args.name,
            epochs=args.epochs,
            snapshot_budget_mb=args.snapshot_budget_mb,
        )
    else:
        raw: Any = args.target if args.target is not None else _demo()
        config = panda_config(raw)
        if args.epochs is not None:
            config = panda_config({**config.to_dict(), "space": _epochs(config, args.epochs)})
        panda = PandaRun.create(
            config,
            name=args.name,
            storage=args.storage or os.environ.get("CAVIAR_STORAGE"),
            snapshot_budget_mb=args.snapshot_budget_mb,
        )
    url, server = serve(panda.controller(), host=args.host, port=args.port)
    print(f"caviar panda: run {panda.name!r} in {panda.tree.path}; open {url}", flush=True)
    print(
        f"  controls: caviar panda set lr=... | rollback EPOCH | pause | resume | stop "
        f"(--run {panda.name})",
        flush=True,
    )
    stop = threading.Event()
    try:
        panda.train(until=stop.is_set)
    finally:
        stop.set()
        server.stop()
    print(
        f"caviar panda: run {panda.name!r} stopped at epoch {panda.epoch}; the tree is kept",
        flush=True,
    )
    return 0


def _demo() -> dict[str, Any]:
    """The demo's data with one plain configuration: what `caviar panda` trains without a
    config."""
    from caviar.demo import DEMO

    return {
        "study": {"name": "panda-demo"},
        "data": DEMO["data"],
        "space": {"lr": 3e-3, "hidden_units": 64, "n_layers": 2, "batch_norm": True, "epochs": 30},
    }


def _epochs(config: Any, epochs: int) -> dict[str, Any]:
    space = {name: config.space[name].to_config() for name in config.space}
    return {**space, "epochs": epochs}


def _control(args: argparse.Namespace) -> int:
    from caviar.panda.controller import PandaController, parse_assignments
    from caviar.panda.listing import list_runs
    from caviar.panda.tree import PandaTree

    path = Path(_storage(args))
    if args.target == "list":
        runs = list_runs(path)
        if not runs:
            print(f"no panda runs in {path}")
        for summary in runs:
            print("\n".join(summary.describe()))
        return 0
    if not path.is_file():
        raise InvalidValue("--storage", f"no study file at {str(path)!r}")
    tree = PandaTree(path)
    names = tree.run_names()
    name = args.run_name
    if name is None:
        if len(names) != 1:
            raise InvalidValue("--run", f"must name the run to control; runs in {path}: {names}")
        name = names[0]
    elif name not in names:
        raise InvalidValue("--run", f"must be one of the runs in {path} {names}, got {name!r}")
    control = PandaController(tree, name)
    if args.target == "set":
        if not args.values:
            raise InvalidValue("caviar panda set", "needs key=value changes, got none")
        for command in control.set(parse_assignments(args.values)):
            print(f"recorded: {command['key']} {command['old']} -> {command['new']}")
    elif args.target == "rollback":
        if len(args.values) != 1 or not args.values[0].isdigit():
            raise InvalidValue("caviar panda rollback", f"needs one EPOCH, got {args.values}")
        branch = control.rollback(int(args.values[0]), branch=args.branch, mode=args.mode)
        print(f"recorded: rollback to epoch {args.values[0]} ({args.mode}) as branch {branch}")
    else:
        if args.values:
            raise InvalidValue(f"caviar panda {args.target}", f"takes no values, got {args.values}")
        getattr(control, args.target)()
        print(f"recorded: {args.target}")
    print("the trainer applies it at its next epoch boundary")
    return 0

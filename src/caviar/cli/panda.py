"""``caviar panda``: start a babysitting run and its page, or control a running one.

caviar panda CONFIG [--port P] [--host H]      train one model, serve its page on 127.0.0.1
caviar panda --from STUDY:TRIAL                start from a caviar trial (and its kept state)
caviar panda set lr=3e-3 beta1=0.95            change mid-run hyperparameters (next epoch)
caviar panda rollback EPOCH [--branch B] [--mode fresh]   a new branch from a snapshot
caviar panda pause | resume | stop
caviar panda list [--run R]                    the runs in the study file, with their branches
caviar panda replay [--branch B]               train a branch again from the root: same curve?

One trainer trains a run: a second one is refused, naming the first. Controls write a command
into the study file; the run's trainer applies it at its next epoch boundary, whichever process
wrote it (the page's buttons do the same through the server); with no trainer, the command waits
for the next one (a stop is refused). The page is served on this machine only, unless
--allow-remote.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
import warnings
from collections.abc import Sequence
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caviar.cli.flags import port
from caviar.cli.study_file import add_storage_flag, storage_path
from caviar.core.errors import InvalidValue, RunStopped, got
from caviar.panda.control_api import DEFAULT_ROLLBACK_MODE, ROLLBACK_MODES
from caviar.search.demo import DEMO
from caviar.storage.resolve import storage_override

if TYPE_CHECKING:
    from caviar.panda.controller import PandaController
    from caviar.storage.tree_rows import RunRow

#: the commands that record a command for the run's trainer
CONTROLS = ("set", "rollback", "pause", "resume", "stop")
ACTIONS = (*CONTROLS, "list", "replay")


def add_parser(sub: Any) -> None:
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
        "--run",
        dest="run_name",
        help="the run a control acts on (default: the only one); list: only this run",
    )
    add_storage_flag(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the page's interface (default 127.0.0.1; one other machines reach: --allow-remote)",
    )
    p.add_argument(
        "--allow-remote",
        action="store_true",
        help="serve the page on a --host other machines can reach (its token travels unencrypted)",
    )
    p.add_argument("--port", type=port, default=0, help="the page's port (default: a free one)")
    p.add_argument("--epochs", type=int, help="epochs in all (default: the config's)")
    p.add_argument("--branch", type=int, help="rollback: the branch whose snapshot to use")
    p.add_argument(
        "--mode",
        default=DEFAULT_ROLLBACK_MODE,
        help=f"rollback mode: {' or '.join(ROLLBACK_MODES)} (default {DEFAULT_ROLLBACK_MODE})",
    )
    p.add_argument(
        "--exit-when-finished",
        action="store_true",
        help="stop serving once the epochs are done (default: wait for more commands)",
    )
    p.add_argument(
        "--snapshot-budget-mb", type=float, default=512.0, help="disk for snapshots (MB)"
    )
    p.set_defaults(run=run, imports=_imports)


def _imports(args: argparse.Namespace) -> tuple[str, ...] | None:
    """What :func:`caviar.cli.main.main` loads before the command runs: nothing for a control or
    ``list`` (None: they start in a fraction of a second, without torch), the trainer for a
    replay, the trainer and its server for a run."""
    if args.target in (*CONTROLS, "list"):
        return None
    if args.target == "replay":
        return ("caviar.panda.trainer",)
    return ("caviar.panda.trainer", "caviar.panda.server")


def run(args: argparse.Namespace) -> int:
    if args.target in ACTIONS:
        return _control(args)
    if args.values:
        raise InvalidValue("caviar panda", f"takes one config, got also {args.values}")
    return _start(args)


def _start(args: argparse.Namespace) -> int:
    # deferred: torch
    from caviar.panda.epochs import panda_config
    from caviar.panda.lock import holder
    from caviar.panda.server import serve
    from caviar.panda.trainer import PandaRun

    _check_host(args.host, allow_remote=args.allow_remote)
    if args.from_trial is not None:
        if args.target is not None:
            raise InvalidValue("--from", "starts from a trial: give no config with it")
        study, _, trial = args.from_trial.rpartition(":")
        if not study or not trial.isdigit():
            raise InvalidValue("--from", f"must read STUDY:TRIAL, got {args.from_trial!r}")
        panda = PandaRun.from_trial(
            study,
            int(trial),
            storage=storage_path(args),
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
            storage=storage_override(args.storage),
            snapshot_budget_mb=args.snapshot_budget_mb,
        )
    lock = panda.hold()  # a second trainer ends here, naming the first
    try:
        if lock is not None and lock.took_over is not None:
            gone, why = lock.took_over
            print(
                f"caviar panda: taking run {panda.name!r} over from its last trainer "
                f"({gone.describe()}): {why}",
                flush=True,
            )
        url, server = serve(panda.controller(), host=args.host, port=args.port)
        if lock is not None:
            lock.set_address(url.partition("?")[0])  # the page, without its token
        print(f"caviar panda: run {panda.name!r} in {panda.tree.where}; open {url}", flush=True)
        print(
            f"  controls: caviar panda set lr=... | rollback EPOCH | pause | resume | stop "
            f"(--run {panda.name})",
            flush=True,
        )
        stop = threading.Event()
        try:
            panda.train(until=stop.is_set, exit_when_finished=args.exit_when_finished)
        finally:
            stop.set()
            server.stop()
        if panda.taken_over:
            other = holder(panda.tree.where, panda.name)
            by = f" by another trainer ({other.describe()})" if other else ""
            print(
                f"caviar panda: run {panda.name!r} was taken over{by}; this trainer stopped at "
                f"epoch {panda.epoch}",
                flush=True,
            )
            return RunStopped.exit_status
    finally:
        panda.release()
    status = panda.tree.run(panda.name).status
    print(
        f"caviar panda: run {panda.name!r} {status} at epoch {panda.epoch}; the tree is kept",
        flush=True,
    )
    return 0


def _check_host(host: str, *, allow_remote: bool) -> None:
    """A page other machines can reach only when asked for (``--allow-remote``), with a
    warning; refused in one line otherwise."""
    from caviar.web.security import is_loopback  # deferred: starlette

    try:
        local = is_loopback(host)
    except OSError as e:
        raise InvalidValue(
            "--host", f"must name an interface of this machine, got {host!r} ({e.strerror or e})"
        ) from None
    if local:
        return
    if not allow_remote:
        raise InvalidValue(
            "--host",
            f"{host!r} is not a loopback address: the page and its controls would be open to "
            f"other machines, guarded only by a token sent unencrypted; add --allow-remote to "
            f"serve there anyway, or leave --host out (127.0.0.1)",
        )
    warnings.warn(
        f"--allow-remote: the page on {host} can be reached from other machines; whoever "
        f"reaches it and sees its token (sent unencrypted over HTTP) controls the run",
        stacklevel=2,
    )


def _demo() -> dict[str, Any]:
    """The demo's data with one plain configuration: what `caviar panda` trains without a
    config."""
    return {
        "study": {"name": "panda-demo"},
        "data": DEMO["data"],
        "space": {"lr": 3e-3, "hidden_units": 64, "n_layers": 2, "batch_norm": True, "epochs": 30},
    }


def _epochs(config: Any, epochs: int) -> dict[str, Any]:
    space = {name: config.space[name].to_config() for name in config.space}
    return {**space, "epochs": epochs}


def _control(args: argparse.Namespace) -> int:
    # deferred: the store and the rules (numpy), which only a control reads; no torch
    from caviar.panda.controller import PandaController, parse_assignments
    from caviar.panda.lock import holder
    from caviar.panda.tree import PandaTree

    path = storage_path(args)
    if args.target == "list":
        return _list(path, args.run_name)
    if not path.is_file():
        raise InvalidValue("--storage", f"no study file at {str(path)!r}")
    tree = PandaTree(path)
    name = _run_name(args.run_name, tree.run_names(), path)
    if args.target == "replay":
        return _replay(path, name, args.branch)
    control = PandaController(tree, name)
    trainer = holder(path, name)
    if trainer is None and args.target == "stop":
        raise InvalidValue(
            "caviar panda stop",
            f"no trainer holds run {name!r} in {path}: there is nothing to stop (a stop stored "
            f"now would end the next trainer at its first epoch boundary)",
        )
    if args.target == "set":
        if not args.values:
            raise InvalidValue("caviar panda set", "needs key=value changes, got none")
        changes = parse_assignments(args.values)
        pending = control.pending()
        for command in control.set(changes):
            key = command["key"]
            instead = f" (instead of the pending {pending[key]})" if key in pending else ""
            print(f"recorded: {key} {command['old']} -> {command['new']}{instead}")
    elif args.target == "rollback":
        epoch = _rollback_epoch(control, args.values, args.branch)
        branch = control.rollback(epoch, branch=args.branch, mode=args.mode)
        print(f"recorded: rollback to epoch {epoch} ({args.mode}) as branch {branch}")
    else:
        if args.values:
            raise InvalidValue(f"caviar panda {args.target}", f"takes no values, got {args.values}")
        getattr(control, args.target)()
        print(f"recorded: {args.target}")
    if trainer is not None:
        print(f"the trainer ({trainer.describe()}) applies it at its next epoch boundary")
    else:
        restart = _restart(tree.run(name), args.storage)
        print(
            f"no trainer holds run {name!r}: the command is stored, and applies when "
            f"`{restart}` starts it again"
        )
    return 0


def _list(path: Path, name: str | None) -> int:
    """The runs in ``path`` with their branches (only ``name`` if given), and who trains each."""
    # deferred: the store, which only a listing reads
    from caviar.panda.listing import list_runs
    from caviar.panda.lock import holder

    runs = list_runs(path)
    if name is not None:
        name = _run_name(name, [r.name for r in runs], path)
        runs = [r for r in runs if r.name == name]
    if not runs:
        print(f"no panda runs in {path}")
    for summary in runs:
        print("\n".join(summary.describe()))
        trainer = holder(path, summary.name)
        if trainer is not None:
            print(f"  trained by {trainer.describe()}")
    return 0


def _run_name(given: str | None, names: Sequence[str], path: Path) -> str:
    """The run a command acts on: ``given`` (one of ``names``), else the only one there is."""
    if not names:
        asked = "" if given is None else f", {got(given)}"
        raise InvalidValue(
            "--run",
            f"{path} holds no panda run{asked} (`caviar panda CONFIG --storage {path}` starts one)",
        )
    if given is None:
        if len(names) != 1:
            raise InvalidValue("--run", f"must name the run to act on, one of {list(names)}")
        return names[0]
    if given not in names:
        raise InvalidValue(
            "--run", f"must be one of the runs in {path} {list(names)}, {got(given)}"
        )
    return given


def _rollback_epoch(control: PandaController, values: Sequence[str], branch: int | None) -> int:
    """The one EPOCH of ``caviar panda rollback``, if ``branch`` (default: the one training
    next) can return to it; one line naming the bad value and the epochs allowed otherwise."""
    epochs = control.returnable(branch)
    epoch: int | None = None
    if len(values) == 1:
        with contextlib.suppress(ValueError):  # not a number: refused below, named
            epoch = int(values[0])
    if epoch is None or epoch not in epochs:
        which = control.next_branch() if branch is None else branch
        shown = (
            got(values[0]) if len(values) == 1 else got(list(values)) if values else "got nothing"
        )
        raise InvalidValue(
            "caviar panda rollback",
            f"needs one EPOCH that branch {which} can return to: {_spans(epochs)} (the other "
            f"epochs' snapshots were dropped or are not reached yet), {shown}",
        )
    return epoch


def _spans(numbers: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 5, 7, 8]`` -> ``'0 to 3, 5, 7 to 8'``."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(str(a) if a == b else f"{a} to {b}" for a, b in spans) or "none"


def _restart(row: RunRow, storage: str | None) -> str:
    """The command that starts a trainer on ``row``'s run again."""
    source = row.source
    if source.get("kind") == "trial":
        command = f"caviar panda --from {source['study']}:{source['trial']}"
    else:
        command = "caviar panda CONFIG"
    if row.name != row.config.get("study", {}).get("name"):
        command += f" --name {row.name}"
    if storage is not None:
        command += f" --storage {storage}"
    return command


def _replay(path: Path, name: str, branch: int | None) -> int:
    """Train ``branch`` (default: the current one) again from the root with its commands and
    compare with the stored curve, every number bit for bit; 1 if they differ."""
    from caviar.panda.trainer import PandaRun  # deferred: torch

    panda = PandaRun.open(name, path)
    branch = panda.branch if branch is None else branch
    stored, again = panda.stored_curve(branch), panda.replay(branch)
    # repr of a float is exact (and NaN equals NaN there): equal reprs are equal bits
    differ = [
        a.epoch for a, b in zip(stored, again, strict=False) if repr(astuple(a)) != repr(astuple(b))
    ]
    if len(stored) == len(again) and not differ:
        print(
            f"replay of branch {branch} of {name!r}: {len(again)} epochs from the root, every "
            f"loss and accuracy identical bit for bit"
        )
        return 0
    print(
        f"replay of branch {branch} of {name!r} differs: {len(stored)} stored epochs, "
        f"{len(again)} replayed, first differing epoch {differ[:1] or 'none'} (was the thread "
        f"count or the machine different?)"
    )
    return 1

"""``caviar tune`` on the command line: its flags made into a config, the run, its summary.

Flags override the config's keys. Flags that change what a study is (its space, sampler, seed
or data) name a study of their own unless ``--name`` is given, so the same command continues
the same study; ``--trials`` scales a config's explicit ``per_round`` list.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import sys
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from caviar.cli.flags import port
from caviar.cli.output import format_value, write_report_or_warn
from caviar.cli.study_file import add_storage_flag
from caviar.core.errors import InvalidValue
from caviar.search.demo import DEMO
from caviar.search.halving import Halving
from caviar.storage.resolve import storage_override

#: flags that change what a study is (its space, sampler, seed or data): given without --name,
#: they name a study of their own, so the same command continues the same study
DEFINING_FLAGS = ("dataset", "train_size", "sampler", "seed", "epochs", "trials")


def config_mapping(args: argparse.Namespace) -> tuple[dict[str, Any], str, str]:
    """The config as a mapping with the flags applied (validated once, afterwards), its default
    name, and where it came from."""
    if args.config is None:
        raw, default_name, source = copy.deepcopy(DEMO), "demo", "the embedded demo"
    else:
        from caviar.search.config import read_config_file  # deferred: torch

        path = Path(args.config)
        raw, default_name, source = read_config_file(path), path.stem, str(path)
    overrides = {
        ("study", "storage"): storage_override(args.storage),
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
        ("search", "warm_start"): args.warm_start,
    }
    renamed = flag_name(args, raw, default_name)
    if args.sampler is not None:
        _drop_other_samplers_keys(raw, args.sampler)
    if args.trials is not None:
        _scale_per_round(raw, args.trials)
    for (section, key), value in overrides.items():
        if value is not None:
            if raw.get(section) is None:
                raw[section] = {}
            if isinstance(raw[section], dict):  # otherwise validation names the bad section
                raw[section][key] = value
    name = args.name if args.name is not None else renamed  # '' is refused with the config's words
    if name is not None and isinstance(raw.get("study"), dict):
        raw["study"]["name"] = name
    elif name is not None and raw.get("study") is None:
        raw["study"] = {"name": name}
    return raw, default_name, source


def defining_flags(args: argparse.Namespace, raw: dict[str, Any]) -> list[str]:
    """The defining flags given, as parts of a study name (``fashion-mnist``, ``trials64``):
    none with --name, and --trials only for coarse to fine (a random or grid study's trial count
    is a budget, not its definition)."""
    if args.name is not None:
        return []
    search = raw.get("search") if isinstance(raw.get("search"), dict) else {}
    sampler = args.sampler or (search or {}).get("sampler")
    parts = []
    for flag in DEFINING_FLAGS:
        value = getattr(args, flag)
        if value is None or (flag == "trials" and sampler != "coarse_to_fine"):
            continue
        label = Path(str(value)).stem if flag == "dataset" else str(value)
        parts.append(label if flag in ("dataset", "sampler") else f"{flag.replace('_', '')}{label}")
    return parts


def flag_name(args: argparse.Namespace, raw: dict[str, Any], default_name: str) -> str | None:
    """The study name the defining flags give (``demo-fashion-mnist-epochs10-trials64``), or
    None when no such flag is given or --name is."""
    parts = defining_flags(args, raw)
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


def _drop_other_samplers_keys(raw: dict[str, Any], sampler: str) -> None:
    """With --sampler, the config's settings of another sampler are left out, saying so (in a
    config alone they are refused: they would change nothing)."""
    search = raw.get("search")
    if not isinstance(search, dict):
        return
    from caviar.search.sections import unread_keys  # deferred: the samplers load numpy

    dropped = [key for key, _ in unread_keys("search", search, {"sampler": sampler})]
    for key in dropped:
        del search[key]
    if dropped:
        keys = ", ".join(f"search.{key}" for key in dropped)
        print(f"caviar: --sampler {sampler} does not read {keys}; left out", file=sys.stderr)


def trial_counts(value: Any) -> list[int] | None:
    """``value`` if it is a list of trial counts (``search.per_round``'s rule), else None."""
    # deferred: numpy (the samplers' seeding), not needed before a command runs
    from caviar.samplers.coarse_to_fine import PER_ROUND

    return list(value) if PER_ROUND.allows(value) else None


def _halving_flags(args: argparse.Namespace) -> dict[str, int] | bool | None:
    """``search.halving`` from --halving, --halving-eta and --halving-min-epochs, or False from
    --no-halving (None: the config decides); a number not given takes :class:`Halving`'s
    default."""
    given = {"min_epochs": args.halving_min_epochs, "eta": args.halving_eta}
    asked = args.halving or any(v is not None for v in given.values())
    if args.no_halving:
        if asked:
            named = (
                ("--halving", args.halving),
                ("--halving-eta", args.halving_eta),
                ("--halving-min-epochs", args.halving_min_epochs),
            )
            flags = [flag for flag, value in named if value not in (None, False)]
            raise InvalidValue(
                "--no-halving", f"cannot be given with {', '.join(flags)}; choose one"
            )
        return False
    if not asked:
        return None
    return {key: value for key, value in given.items() if value is not None}


def threads_flag(text: str) -> int | str:
    return text if text == "auto" else int(text)


def add_parser(sub: Any) -> None:
    t = sub.add_parser("tune", help="run or continue a study")
    t.add_argument("config", nargs="?", help="TOML/YAML study config (default: the demo)")
    t.add_argument("--name", help="study name")
    add_storage_flag(t)
    t.add_argument(
        "--seed",
        type=int,
        help="the study's seed (study.seed): the proposals, each trial's data order and weights",
    )
    t.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--dataset", help="mnist, fashion-mnist, digits, or a .npz/.csv file")
    t.add_argument("--data-dir", help="folder with the IDX .gz files (no download)")
    t.add_argument("--train-size", type=int, help="use the first N training examples")
    t.add_argument(
        "--sampler",
        choices=["random", "grid", "coarse_to_fine", "tpe"],
        help="how configurations are chosen (search.sampler)",
    )
    t.add_argument("--trials", type=int, help="number of trials")
    t.add_argument(
        "--population", type=int, help="members trained at once (0: 16 on a CPU, 1024 on a GPU)"
    )
    t.add_argument("--timeout", type=float, help="time budget in seconds (search.timeout)")
    t.add_argument(
        "--halving",
        action="store_true",
        help=f"successive halving: min_epochs {Halving.min_epochs}, eta {Halving.eta}",
    )
    t.add_argument(
        "--no-halving",
        action="store_true",
        help="train every trial to its last epoch (search.halving = false)",
    )
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
    t.add_argument(
        "--warm-start",
        metavar="OLD_STUDY",
        help="begin a new study from an older one in the same file: its best configurations "
        "first, its trials informing tpe (search.warm_start)",
    )
    t.add_argument("--quiet", action="store_true", help="no progress line")
    t.add_argument(
        "--dry-run",
        action="store_true",
        help="check the config and the data, say what would run, train and write nothing",
    )
    t.add_argument("--no-report", action="store_true", help="skip the report")
    t.add_argument(
        "--serve",
        action="store_true",
        help="serve the study's live dashboard on 127.0.0.1 while it runs (caviar dashboard)",
    )
    t.add_argument("--port", type=port, default=0, help="--serve's port (default: a free one)")
    t.set_defaults(run=cmd_tune, imports=("caviar.search.job", "caviar.report"))


def cmd_tune(args: argparse.Namespace) -> int:
    # deferred: torch
    from caviar.search.config import config_from_mapping
    from caviar.search.job import check_device, tune

    raw, default_name, source = config_mapping(args)
    config = config_from_mapping(raw, default_name=default_name, source=source)
    check_device(config)
    from caviar.search import warm_start  # deferred: torch, as above

    warm_start.check(config)
    print(
        f"caviar: study {config.name!r} from {source}: {config.n_trials()} trials, "
        f"{config.search.sampler} search over {', '.join(config.space.free_names) or '-'}; "
        f"stored in {config.study.storage}",
        flush=True,
    )
    if defining_flags(args, raw):
        print(
            "caviar: the flags change the study's definition, so they name a study of their "
            "own (the same command continues it; --name to choose another)",
            flush=True,
        )
    if args.dry_run:
        return _dry_run(config)
    begun = threading.Event()  # set once the study is stored: the dashboard reads it from then
    dashboard = _serve(config, args.port, begun) if args.serve else None
    try:
        study = tune(config, progress=not args.quiet, report=False, on_study=lambda _: begun.set())
    finally:
        if dashboard is not None:
            dashboard.close()  # after one last look at the store, pushed to the page
            print(
                f"\ncaviar: the dashboard ended with the tune; its page stays as it was "
                f"(`caviar dashboard {config.name}` serves it again)",
                flush=True,
            )
    best = study.best_trial
    n_failed, why = _failures(study)
    if best is None:
        print(_no_result(study, config, why))
        return 1
    if n_failed:
        total = len(study.trials(curves=False))
        print(f"\ncaviar: {n_failed} of the study's {total} trials failed; {why}")
    # the summary first: a report that cannot be written must not lose it
    print(f"\nbest configuration (trial {best.number}): validation accuracy {best.value:.4f}")
    for name in config.space.free_names:
        print(f"  {name} = {format_value(best.params[name])}")
    if not args.no_report:
        write_report_or_warn(study)
    print(f"next: caviar show {study.name}   |   caviar test {study.name} (uses the test set once)")
    study.close()
    return 0


def _serve(config: Any, port: int, begun: threading.Event) -> Any:
    """The study's live dashboard, served from this process while it tunes (it reads the study
    file once ``begun`` says the study is stored)."""
    from caviar.dashboard.server import serve_study  # deferred: starlette and uvicorn

    storage = config.study.storage
    dashboard = serve_study(config.name, storage, port=port, begun=begun)
    print(f"caviar: the study's live dashboard: {dashboard.url}", flush=True)
    return dashboard


def _dry_run(config: Any) -> int:
    """Check the config and its data as a run would, say what the run would do, write nothing."""
    # deferred: torch
    from caviar.distributed import describe_workers
    from caviar.search.job import prepare_data

    data = prepare_data(config)  # cmd_tune has checked the devices (check_device)
    record = data.record()
    halving = config.halving()
    model = ""
    if config.study.model is not None:
        from caviar.search.own_model import probe_config  # deferred: torch

        points = probe_config(config, data.split, data.dataset.n_classes)
        model = (
            f"; the model {config.study.model} built and run on a mini-batch at {points} "
            "points of the space"
        )
    print(
        f"dry run: {record['n_train']} training / {record['n_validation']} validation / "
        f"{record['n_test']} test examples of {record['dataset']} ({record['n_features']} "
        f"features, {record['n_classes']} classes); {config.n_trials()} trials, pool "
        f"{config.search.population or 'auto'}, "
        f"{'halving ' + str(halving.to_config()) if halving else 'no halving'}, "
        f"timeout {config.search.timeout or 'none'}, on {describe_workers(config.spread_plan())}"
        f"{model}; nothing was trained or written"
    )
    return 0


def _failures(study: Any) -> tuple[int, str]:
    """How many of the study's trials failed, and the first one's reason with where to read the
    rest (a failed trial is neither pruned nor diverged: the run must say so)."""
    failed = sorted(
        (t for t in study.trials(curves=False) if t.state.value == "failed"),
        key=lambda t: t.number,
    )
    if not failed:
        return 0, ""
    reasons = {str(t.attrs.get("error", "no reason stored")) for t in failed}
    first = failed[0]
    others = f" ({len(reasons) - 1} other reasons)" if len(reasons) > 2 else ""
    others = " (1 other reason)" if len(reasons) == 2 else others
    return len(failed), (
        f"the first, trial {first.number}: {first.attrs.get('error', 'no reason stored')}"
        f"{others}; `caviar show {study.name}` lists them"
    )


def _no_result(study: Any, config: Any, why_failed: str) -> str:
    """Why a run ends without a complete trial, in the study's own counts (and the first
    failure's reason, ``why_failed``, if any failed)."""
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
    why = why_failed or f"see `caviar show {study.name}`"
    return f"caviar: no trial completed ({states or 'none finished'}); {why}"

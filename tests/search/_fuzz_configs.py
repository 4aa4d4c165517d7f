"""Generated study configs and ``caviar tune`` flag sets for tests/search/test_config_fuzz.py.

Every case is built from a seeded ``random.Random``, so CI sees the same cases on every run. A
case starts from a valid config (examples/*.toml, examples/*.yaml, the embedded demo) and breaks
it: wrong types, out-of-range or non-finite numbers, unknown keys and sections, bad dimension
tables, bad paths, bad flags. ``@TMP@`` in a string stands for the test's tmp folder, where the
runner puts the files the cases point at (see ``FIXTURES``).

A case also says which key paths or flags its error may name (``names``): a one-line error that
blames something else is as wrong as a traceback.
"""

from __future__ import annotations

import copy
import math
import random
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from caviar.search.demo import DEMO

ROOT = Path(__file__).resolve().parents[2]
SEED = 20240612
TMP = "@TMP@"

#: files and folders the runner creates under tmp_path before a case runs
FIXTURES = {
    "folder.npz": None,  # a folder with a data file's name
    "empty": None,  # an empty folder: no IDX files, so mnist never downloads
    "text.npz": "not an archive\n",
    "header_only.csv": "a,b,label\n",
    "good.csv": "a,b,label\n" + "".join(f"{i % 7}.5,{(i * 3) % 11},{i % 4}\n" for i in range(200)),
}


@dataclass
class Case:
    """One generated command: a config (a mapping, raw bytes, or none: the demo) and flags."""

    id: str
    fmt: str  # "toml", "yaml", "raw" (``raw`` bytes as they are) or "none" (no config file)
    config: Any = None
    raw: bytes = b""
    suffix: str = ".toml"
    flags: list[str] = field(default_factory=list)
    #: what a one-line error must name (any of these substrings); empty: any key path or flag
    names: tuple[str, ...] = ()
    #: built to be valid: the dry run must pass (and the case may be run for real)
    valid: bool = False


def _digits(config: dict[str, Any]) -> dict[str, Any]:
    """The config on the embedded digits (MNIST and Fashion-MNIST would download)."""
    config = copy.deepcopy(config)
    config["data"] = {"dataset": "digits", "validation": 0.2}
    return config


def bases() -> dict[str, dict[str, Any]]:
    """The valid configs every case starts from, by a short name."""
    out = {"demo": copy.deepcopy(DEMO)}
    for path in sorted((ROOT / "examples").glob("*.toml")):
        if path.stem.startswith("panda"):
            continue  # a `caviar panda` config: one model, no search
        out[path.stem] = tomllib.loads(path.read_text())
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        out[path.stem] = yaml.safe_load(path.read_text())
    return {name: _digits(c) for name, c in out.items()}


# -- hostile values ---------------------------------------------------------------------------
NAN, INF = math.nan, math.inf
WRONG_TYPES: list[Any] = ["abc", "", " ", True, False, [], [1, 2], {}, {"x": 1}, None]
NUMBERS: list[Any] = [0, -1, 0.5, 1e308, -1e308, NAN, INF, -INF, 10**30, -(10**30), 1e-320]
TEXTS: list[Any] = ["1e-3", "１２", "a/b", "-x", ".x", "ünï", "x" * 300, "line\nbreak", "a b"]
HOSTILE = WRONG_TYPES + NUMBERS + TEXTS

#: section -> key -> a few values worth trying on top of HOSTILE (valid ones included)
SECTION_VALUES: dict[str, dict[str, list[Any]]] = {
    "study": {
        "name": ["a-b_c.d", "x" * 100, "x" * 101, "a/b", "-lead", ".hidden", "ünï", 123, "a b"],
        "seed": [0, 7, -1, 2**63 - 1, 2**63, 1.5, "0", True],
        "device": ["cpu", "auto", "cuda", "cuda:abc", "cuda:-1", "gpu", "CPU", "meta"],
        "dtype": ["float64", "float16", "double"],
        "threads": ["auto", 1, 2, 0, -1, "2", 1.5],
    },
    "data": {
        "dataset": [
            f"{TMP}/missing.npz",
            f"{TMP}/folder.npz",
            f"{TMP}/text.npz",
            f"{TMP}/header_only.csv",
            f"{TMP}/good.csv",
            f"{TMP}/empty",
            "Digits",
            "digits.txt",
            "x" * 5000 + ".npz",
            "nope\n.npz",
        ],
        "data_dir": [f"{TMP}/empty", f"{TMP}/missing"],
        "cache_dir": [f"{TMP}/cache", f"{TMP}/text.npz"],
        "train_size": [1, 2, 19, 20, 25, 100, 10**30, 0, -5],
        "test_size": [1, 5, 0, 10**30],
        "validation": [0.999, 0.001, 0.5, 0, 1, 0.2],
        "label_column": ["label", "nope"],
    },
    "search": {
        "sampler": ["random", "grid", "coarse_to_fine", "Random", "bayes"],
        "trials": [1, 2, 10, 0, -1, 10**30, 1.0],
        "population": [0, 1, 3, -1, 10**30],
        "objective": ["best", "final", "max"],
        "points_per_dim": [1, 3, 10**6, 0, {"lr": 2}, {"nope": 2}, {"lr": 0}],
        "rounds": [1, 2, 3, 0, 10**9],
        "per_round": [[10, 10], [10, 10, 10], [0, 5], [], "10,10", [1.5, 2], [10**30] * 3],
        "keep": [1, 4, 0.5, 0, 1.0, 1.5, -0.1],
        "margin": [0, 0.5, 1, -0.1, 2],
        "timeout": [1e308, 60, 0, -1, "60"],
        "halving": [
            True,
            False,
            {},
            {"eta": 1},
            {"min_epochs": 0},
            {"eta": "3"},
            {"speed": 2},
            {"min_epochs": 10**30},
            "yes",
            3,
            [1, 3],
        ],
        "train_metrics": ["full", "pass", "none"],
        "keep_models": [0, 3, -1],
    },
}

HYPERPARAMETER_VALUES: dict[str, list[Any]] = {
    "lr": [1e-3, 0, -1e-3],
    "hidden_units": [8, 0, 2.5],
    "n_layers": [1, 0],
    "activation": ["tanh", "gelu"],
    "batch_norm": [True, "yes", 1],
    "batch_size": [1, 32, 10**6, 0],
    "optimizer": ["sgd", "lbfgs"],
    "beta1": [0.9, 1.0, 1],
    "dropout": [0.5, 1.0],
    "lr_decay": ["step", "cosine"],
    "decay_rate": [0.5, 2.0],
    "epochs": [1, 0, 10**30],
    "init": ["xavier", "zeros"],
}

SCALE_TYPOS: list[Any] = ["Log", "logarithmic", "lin", "int-log", "one-minus-log", "", None]
SCALE_TYPOS += [["log"], {"a": 1}, 1]
CHOICES: list[Any] = [[], ["relu", "relu"], [[1]], [None], [NAN], "relu", [1, 1.0, True]]
CHOICES += [["relu", "gelu"], [True, False]]


def _key_text(value: Any) -> str:
    """A value as a short id fragment: ``nan``, ``str-abc``, ``list2``."""
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, int):
        return str(value) if abs(value) < 10**6 else f"int{len(str(abs(value)))}d"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:g}".replace("+", "")
    if isinstance(value, str):
        value = value.replace(TMP + "/", "")
        text = re.sub(r"[^A-Za-z0-9._]+", "_", value)
        return f"str{len(value)}" if len(value) > 12 else f"str-{text}"
    if isinstance(value, list):
        return f"list{len(value)}"
    return f"table{len(value)}"


# -- mutations: each returns (label, names the error may carry) -------------------------------
def _set_key(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    section = rng.choice(sorted(SECTION_VALUES))
    key = rng.choice(sorted(SECTION_VALUES[section]))
    value = rng.choice(SECTION_VALUES[section][key] + (HOSTILE if rng.random() < 0.4 else []))
    if not isinstance(c.get(section), dict):
        c[section] = {}
    c[section][key] = copy.deepcopy(value)
    names = (f"{section}.{key}",)
    if section == "data":  # the split or the batch size can be what the data cannot meet
        names += ("data.", "space.batch_size")
    if section == "search":  # sampler settings are checked together
        names += ("search.",)
    if key == "data_dir":
        names += ("data.dataset",)
    return f"{section}.{key}-{_key_text(value)}", names


def _set_hyperparameter(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    name = rng.choice(sorted(HYPERPARAMETER_VALUES))
    value = rng.choice(HYPERPARAMETER_VALUES[name] + HOSTILE)
    c["space"][name] = copy.deepcopy(value)
    # the engine's cross rules blame the partner key (batch_norm needs batch_size >= 2, ...)
    return f"space.{name}-{_key_text(value)}", ("space.", "search.", "data.train_size")


def _break_dimension(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    space = c["space"]
    scaled = sorted(k for k, v in space.items() if isinstance(v, dict) and "scale" in v)
    name = rng.choice(scaled or ["lr"])
    if not isinstance(space.get(name), dict):
        space[name] = {"scale": "log", "low": 1e-4, "high": 1e-1}
    dim = space[name]
    how = rng.choice(["low", "high", "drop", "swap", "scale", "extra", "wrong_scale"])
    if how in ("low", "high"):
        value = rng.choice(NUMBERS + WRONG_TYPES[:3])
        dim[how] = value
        label = f"{how}-{_key_text(value)}"
    elif how == "drop":
        label = f"no-{rng.choice(['low', 'high'])}"
        dim.pop(label[3:], None)
    elif how == "swap":
        dim["low"], dim["high"] = dim["high"], dim["low"]
        label = "low>high" if dim["low"] != dim["high"] else "low=high"
    elif how == "scale":
        value = rng.choice(SCALE_TYPOS)
        dim["scale"] = copy.deepcopy(value)
        label = f"scale-{_key_text(value)}"
    elif how == "extra":
        dim["step"] = 2
        label = "extra-step"
    else:
        value = rng.choice(["int", "log", "int_log", "one_minus_log", "linear"])
        dim["scale"] = value
        label = f"as-{value}"
    return f"space.{name}-{label}", (f"space.{name}", "space.", "search.points_per_dim")


def _break_choice(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    name = rng.choice(["activation", "batch_norm", "batch_size", "optimizer", "lr"])
    options = copy.deepcopy(rng.choice(CHOICES))
    c["space"][name] = {"choice": options}
    if rng.random() < 0.2:
        c["space"][name]["scale"] = "log"
    return f"space.{name}-choice-{_key_text(options)}", (f"space.{name}", "space.")


def _unknown(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    where = rng.choice(["section", "study", "data", "search", "space", "Study", "newline"])
    if where == "section":
        name = rng.choice(["trainer", "Search", "spaces"])
        c[name] = {"x": 1}
        return f"section-{name}", (name,)
    if where == "Study":  # a section name in the wrong case
        c["Study"] = c.pop("study", {"seed": 0})
        return "section-Study", ("Study",)
    if where == "newline":  # a key with a line break: the error must stay one line
        c["study"] = dict(c.get("study") or {}, **{"bad\nkey": 1})
        return "study.newline-key", ("study.",)
    key = rng.choice(["nmae", "learning_rate", "hidden-units", "sampler_name", ""])
    c[where] = dict(c.get(where) or {}, **{key: 1})
    return f"{where}.unknown-{key or 'empty'}", (f"{where}.", f"{where}:")


def _whole_section(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    section = rng.choice(["study", "data", "space", "search"])
    value = rng.choice([None, "x", 3, [1, 2], [], True])
    c[section] = copy.deepcopy(value)
    names = (section, "search.trials") if value is None else (section,)
    return f"{section}-as-{_key_text(value)}", names


def _space_shape(rng: random.Random, c: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    how = rng.choice(["list", "unknown", "nonidentifier", "nested"])
    if how == "list":
        c["space"]["lr"] = [1e-3, 1e-2]
    elif how == "unknown":
        c["space"]["learning_rate"] = {"scale": "log", "low": 1e-4, "high": 1e-1}
    elif how == "nonidentifier":
        c["space"]["hidden-units"] = 3
    else:
        c["space"]["lr"] = {"scale": "log", "low": {"x": 1}, "high": [1]}
    return f"space-{how}", ("space.",)


MUTATIONS = [
    (_set_key, 5),
    (_set_hyperparameter, 3),
    (_break_dimension, 3),
    (_break_choice, 1),
    (_unknown, 1),
    (_whole_section, 1),
    (_space_shape, 1),
]


def config_cases(rng: random.Random, n: int, start: int) -> list[Case]:
    """``n`` configs, each a valid base with one to three mutations, as TOML or YAML."""
    all_bases = bases()
    names = sorted(all_bases)
    functions, weights = zip(*MUTATIONS, strict=True)
    cases = []
    for i in range(n):
        base = rng.choice(names)
        config = copy.deepcopy(all_bases[base])
        labels, accepted = [], []
        for fn in rng.choices(functions, weights, k=rng.choice([1, 1, 1, 2, 3])):
            if not isinstance(config.get("space"), dict):
                config["space"] = {}
            label, ok = fn(rng, config)
            labels.append(label)
            accepted += ok
        fmt = "yaml" if rng.random() < 0.4 or not toml_can_write(config) else "toml"
        case_id = f"case-{start + i:03d}-{fmt}-{base}-{'+'.join(labels)}"
        cases.append(Case(_clean_id(case_id), fmt, config, names=tuple(accepted)))
    return cases


#: keys tried with every value of SECTION_VALUES, one case each, not left to chance
TARGETED = [("data", key) for key in SECTION_VALUES["data"] if key != "cache_dir"] + [
    ("search", "per_round"),
    ("search", "halving"),
    ("search", "points_per_dim"),
]
TARGETED += [("study", "name")]


def targeted_cases(rng: random.Random, start: int) -> list[Case]:
    """One case per listed value of the TARGETED keys, each on a random base."""
    all_bases = bases()
    cases: list[Case] = []
    for section, key in TARGETED:
        for value in SECTION_VALUES[section][key]:
            base = rng.choice(sorted(all_bases))
            config = copy.deepcopy(all_bases[base])
            config[section][key] = copy.deepcopy(value)
            names: tuple[str, ...] = (f"{section}.{key}",)
            if key == "data_dir":  # the IDX datasets read it (from an empty folder: no network)
                config["data"]["dataset"] = "mnist"
            elif section == "data":
                names += ("data.", "space.batch_size")
            elif key == "per_round":
                config["search"].update(sampler="coarse_to_fine", rounds=3)
                config["search"].pop("trials", None)
            elif key == "points_per_dim":
                config["search"]["sampler"] = "grid"
                config["search"].pop("trials", None)
                names += ("search.",)
            fmt = "toml" if len(cases) % 2 and toml_can_write(config) else "yaml"
            label = f"{section}.{key}-{_key_text(value)}"
            case_id = f"case-{start + len(cases):03d}-{fmt}-{base}-{label}"
            cases.append(Case(_clean_id(case_id), fmt, config, names=names))
    return cases


# -- flags ------------------------------------------------------------------------------------
#: flag -> (values to try, what an error about it may name)
FLAGS: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "--name": (["fz", "a/b", "-x", "", "ünï", "x" * 101, "ok.name_1"], ("study.name",)),
    "--storage": ([f"{TMP}/other.db", "", f"{TMP}", f"{TMP}/no/such/x.db"], ("study.storage",)),
    "--seed": (["0", "3", "-1", "x", "", "1e3", str(2**63), "9" * 40], ("study.seed",)),
    "--device": (["cpu", "auto", "cuda:7", "gpu", "", "cuda:x"], ("study.device",)),
    "--dataset": (
        ["digits", f"{TMP}/good.csv", f"{TMP}/missing.npz", f"{TMP}/folder.npz", "", "x.txt"],
        ("data.dataset", "data.", "space.batch_size"),
    ),
    "--data-dir": ([f"{TMP}/empty", f"{TMP}/missing", ""], ("data.data_dir", "data.dataset")),
    "--train-size": (
        ["300", "1", "20", "0", "-3", "x", "10" * 20],
        ("data.train_size", "data.", "space.batch_size"),
    ),
    "--sampler": (["random", "grid", "coarse_to_fine", "bayes", ""], ("search.",)),
    "--trials": (["8", "1", "0", "-2", "x", "1" * 31], ("search.", "--trials")),
    "--population": (["0", "4", "-1", "x", "1" * 31], ("search.population",)),
    "--timeout": (["30", "0", "-1", "nan", "inf", "1e308", "x", ""], ("search.timeout",)),
    "--halving": ([], ("search.halving", "search.")),
    "--halving-eta": (["2", "3", "1", "0", "x"], ("search.halving",)),
    "--halving-min-epochs": (["1", "5", "0", "-1", "x"], ("search.halving",)),
    "--threads": (["auto", "1", "2", "0", "-1", "x", ""], ("study.threads",)),
    "--epochs": (["1", "3", "0", "-1", "x", "1" * 31], ("space.epochs", "search.halving")),
}


def flag_cases(rng: random.Random, n: int, start: int) -> list[Case]:
    """``n`` flag sets of one to four flags, on the demo, an example file or a valid config."""
    all_bases = bases()
    cases = []
    for i in range(n):
        chosen = rng.sample(sorted(FLAGS), rng.choice([1, 1, 2, 3, 4]))
        flags, labels, accepted = [], [], ["argument --"]
        for flag in chosen:
            values, names = FLAGS[flag]
            accepted += [flag, *names]
            if not values:
                flags.append(flag)
                labels.append(flag[2:])
                continue
            value = rng.choice(values)
            flags += [flag, value]
            labels.append(f"{flag[2:]}-{_key_text(value)}")
            if flag == "--dataset" and value == "digits" and rng.random() < 0.3:
                flags += ["--data-dir", f"{TMP}/empty"]
                labels.append("data-dir")
        base = rng.choice(["none", "none", *sorted(all_bases)])
        fmt = "none" if base == "none" else rng.choice(["toml", "yaml"])
        config = None if base == "none" else copy.deepcopy(all_bases[base])
        if fmt == "toml" and not toml_can_write(config):
            fmt = "yaml"
        case_id = f"case-{start + i:03d}-flags-{base}-{'+'.join(labels)}"
        cases.append(Case(_clean_id(case_id), fmt, config, flags=flags, names=tuple(accepted)))
    return cases


# -- config files that are not a table of sections --------------------------------------------
def file_cases(start: int) -> list[Case]:
    """Config files broken as files: syntax, encoding, shape, suffix."""
    raw = [
        ("toml-syntax", b"[study\nname = 1\n", ".toml"),
        ("toml-dup-key", b"[study]\nseed = 1\nseed = 2\n", ".toml"),
        ("yaml-syntax", b"study: [1, 2\n", ".yaml"),
        ("yaml-tab", b"study:\n\tseed: 1\n", ".yaml"),
        ("yaml-list", b"- 1\n- 2\n", ".yaml"),
        ("yaml-scalar", b"42\n", ".yml"),
        ("yaml-empty", b"", ".yaml"),
        ("toml-empty", b"", ".toml"),
        ("utf16", "[study]\nseed = 1\n".encode("utf-16"), ".toml"),
        ("latin1", "[study]\nname = 'caf\xe9'\n".encode("latin-1"), ".toml"),
        ("nul", b"[study]\x00\n", ".toml"),
        ("json-suffix", b"{}", ".json"),
        ("yaml-python-tag", b"study: !!python/object:os.system {}\n", ".yaml"),
        ("yaml-int-keys", b"space: {1: 2, lr: 0.1}\nsearch: {trials: 2}\n", ".yaml"),
        ("yaml-int-key-halving", b"search: {trials: 2, halving: {1: 2, eta: 3}}\n", ".yaml"),
        (
            "yaml-int-key-dim",
            b"space: {lr: {scale: log, low: 0.1, high: 1, 2: 3, x: 4}}\n",
            ".yaml",
        ),
        ("yaml-mixed-keys-space", b"space: {1: 2, foo: 3}\nsearch: {trials: 2}\n", ".yaml"),
        ("yaml-mixed-keys-halving", b"search: {trials: 2, halving: {1: 2, x: 3}}\n", ".yaml"),
        ("yaml-newline-key", b'study: {"bad\\nkey": 1}\nsearch: {trials: 2}\n', ".yaml"),
        ("yaml-newline-section", b'"sec\\ntion": 1\n', ".yaml"),
        ("yaml-bool-key", b"search: {trials: 2, on: 3}\n", ".yaml"),
        ("yaml-null-key", b"study: {~: 1}\nsearch: {trials: 2}\n", ".yaml"),
        ("yaml-aliases-1e4", _aliases(4), ".yaml"),
        ("yaml-1e-3-text", b"space: {lr: {scale: log, low: 1e-4, high: 1e-1}}\n", ".yaml"),
        ("yaml-alias", b"search: {trials: 2}\nspace: {lr: &a [1, 2], dropout: *a}\n", ".yaml"),
        ("yaml-nan-inf", b"space: {lr: {scale: log, low: .nan, high: .inf}}\n", ".yaml"),
        ("yaml-date", b"study: {name: 2024-01-01}\nsearch: {trials: 2}\n", ".yaml"),
    ]
    cases = [
        Case(f"case-{start + i:03d}-file-{label}", "raw", raw=text, suffix=suffix)
        for i, (label, text, suffix) in enumerate(raw)
    ]
    n = start + len(cases)
    cases.append(Case(f"case-{n:03d}-file-missing", "none", flags=[f"{TMP}/missing.toml"]))
    cases.append(Case(f"case-{n + 1:03d}-file-folder", "none", flags=[f"{TMP}/folder.npz"]))
    for case in cases:
        case.names = ("config", "argument", "space.", "search.", "study.")
    return cases


def _aliases(depth: int) -> bytes:
    """A study name of 10**depth strings in a few bytes, by YAML aliases (its error shows it)."""
    items = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    items += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, depth + 1)]
    return f"study: {{name: [{', '.join(items)}]}}\nsearch: {{trials: 2}}\n".encode()


# -- valid by construction --------------------------------------------------------------------
def valid_cases(rng: random.Random, start: int) -> list[Case]:
    """Each base, with benign changes: these must pass the dry run (and may really run)."""
    cases = []
    for i, (name, config) in enumerate(sorted(bases().items())):
        config["study"]["name"] = f"valid-{i}"
        config["search"]["population"] = rng.choice([0, 4, 8])
        if config["search"].get("sampler") == "random":
            config["search"]["trials"] = rng.choice([4, 8])
        if rng.random() < 0.5:
            config["search"]["halving"] = {"min_epochs": 1, "eta": 2}
        fmt = "toml" if i % 2 else "yaml"
        cases.append(Case(f"case-{start + i:03d}-valid-{fmt}-{name}", fmt, config, valid=True))
    n = start + len(cases)
    flags = ["--trials", "12", "--population", "4", "--train-size", "400", "--seed", "3"]
    cases.append(Case(f"case-{n:03d}-valid-flags-demo", "none", flags=flags, valid=True))
    return cases


# -- settings that could never act (issue 27) ------------------------------------------------
#: (label, the key the error names, keys set on a base config: (section, key) -> value)
NEVER_ACTS: list[tuple[str, str, dict[tuple[str, str], Any]]] = [
    ("per_round-random", "search.per_round", {("search", "per_round"): [2, 2]}),
    ("rounds-grid", "search.rounds", {("search", "sampler"): "grid", ("search", "rounds"): 5}),
    ("keep-random", "search.keep", {("search", "sampler"): "random", ("search", "keep"): 3}),
    ("margin-grid", "search.margin", {("search", "sampler"): "grid", ("search", "margin"): 0.3}),
    (
        "points-random",
        "search.points_per_dim",
        {("search", "sampler"): "random", ("search", "points_per_dim"): 9},
    ),
    ("label-digits", "data.label_column", {("data", "label_column"): "y"}),
    ("cache-digits", "data.cache_dir", {("data", "cache_dir"): f"{TMP}/cache"}),
    (
        "halving-past-epochs",
        "search.halving",
        {("space", "epochs"): 3, ("search", "halving"): {"min_epochs": 50}},
    ),
    ("halving-one-epoch", "search.halving", {("space", "epochs"): 1, ("search", "halving"): True}),
    (
        "halving-range-epochs",
        "search.halving",
        {
            ("space", "epochs"): {"scale": "int", "low": 1, "high": 4},
            ("search", "halving"): {"min_epochs": 4},
        },
    ),
    ("beta2-sgd", "space.beta", {("space", "optimizer"): "sgd", ("space", "beta2"): 0.9}),
    ("beta1-rmsprop", "space.beta", {("space", "optimizer"): "rmsprop", ("space", "beta1"): 0.5}),
    ("bn-eps-off", "space.bn_eps", {("space", "batch_norm"): False, ("space", "bn_eps"): 1e-3}),
    ("init-std-he", "space.init_std", {("space", "init"): "he", ("space", "init_std"): 0.1}),
    ("decay-every-none", "space.decay_every", {("space", "decay_every"): 3}),
    (
        "bn-batch-of-one",
        "space.batch_size",
        {
            ("space", "batch_norm"): {"choice": [False, True]},
            ("space", "batch_size"): {"choice": [1, 32]},
        },
    ),
    (
        "step-rate-above-one",
        "space.decay_rate",
        {
            ("space", "lr_decay"): {"choice": ["none", "step"]},
            ("space", "decay_rate"): {"scale": "log", "low": 0.5, "high": 2.0},
        },
    ),
]

#: YAML that says a thing twice: the second used to win silently (400 trials instead of 4)
TWICE: list[tuple[str, bytes]] = [
    ("dup-key", b"search: {trials: 4, trials: 400}\n"),
    ("dup-section", b"search: {trials: 4}\nsearch: {trials: 400}\n"),
    ("dup-block-key", b"search:\n  trials: 4\n  trials: 400\n"),
    ("dup-space-key", b"space: {lr: 0.1, lr: 0.2}\nsearch: {trials: 4}\n"),
    (
        "dup-dim-key",
        b"space: {lr: {scale: log, low: 0.1, high: 1, low: 0.01}}\nsearch: {trials: 4}\n",
    ),
    ("dup-merge", b"a: &a {trials: 4}\nsearch: {<<: *a, trials: 400}\n"),
    ("base-60", b"study: {seed: 1:20}\nsearch: {trials: 4}\n"),
]


def never_act_cases(rng: random.Random, start: int) -> list[Case]:
    """Each setting that could never act, on a random base (and as TOML and YAML in turn), and
    YAML that says a key or a section twice: each must be refused, naming the key."""
    all_bases = bases()
    cases: list[Case] = []
    for label, name, keys in NEVER_ACTS:
        base = rng.choice(sorted(all_bases))
        config = copy.deepcopy(all_bases[base])
        config["search"].pop("per_round", None)
        for (section, key), value in keys.items():
            config.setdefault(section, {})[key] = copy.deepcopy(value)
        sampler = config["search"].get("sampler", "random")
        if sampler != "coarse_to_fine":
            for key in ("rounds", "keep", "margin"):
                if (("search", key)) not in keys:
                    config["search"].pop(key, None)
            config["search"].setdefault("trials", 4)
        if sampler == "grid":
            config["search"].pop("trials", None)
        if sampler == "coarse_to_fine":
            config["search"].setdefault("trials", 48)  # per_round was left out
        fmt = "toml" if len(cases) % 2 and toml_can_write(config) else "yaml"
        case_id = f"case-{start + len(cases):03d}-{fmt}-{base}-never-acts-{label}"
        cases.append(Case(_clean_id(case_id), fmt, config, names=(name,)))
    for label, text in TWICE:
        case_id = f"case-{start + len(cases):03d}-raw-{label}"
        cases.append(Case(case_id, "raw", raw=text, suffix=".yaml", names=("config", "study.seed")))
    return cases


def all_cases() -> list[Case]:
    """The whole fuzz set: same seed, same cases."""
    rng = random.Random(SEED)
    cases = valid_cases(rng, 0)
    cases += file_cases(len(cases))
    cases += targeted_cases(rng, len(cases))
    cases += config_cases(rng, 120, len(cases))
    cases += flag_cases(rng, 80, len(cases))
    cases += never_act_cases(random.Random(SEED + 27), len(cases))  # issue 27, its own stream
    return cases


# -- writing configs --------------------------------------------------------------------------
def toml_can_write(value: Any) -> bool:
    """TOML has no null; everything else generated here it can hold."""
    if value is None:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and toml_can_write(v) for k, v in value.items())
    if isinstance(value, list):
        return all(toml_can_write(v) for v in value)
    return True


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    out = (
        escapes.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
        for ch in text
    )
    return '"' + "".join(out) + '"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    items = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
    return "{" + items + "}"


def to_toml(config: dict[str, Any]) -> str:
    """A config mapping as TOML: plain top-level values first, then one table per section."""
    plain = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in config.items() if not _table(v)]
    tables = []
    for name, table in config.items():
        if _table(table):
            body = "".join(f"{_toml_key(k)} = {_toml_value(v)}\n" for k, v in table.items())
            tables.append(f"[{_toml_key(name)}]\n{body}")
    return "\n".join(["\n".join(plain), *tables]) + "\n"


def _table(value: Any) -> bool:
    return isinstance(value, dict)


def to_yaml(config: Any) -> str:
    return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)


def _clean_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+>=-]+", "_", text)[:110]

"""The README's promises, run as printed: the two set-up commands (and CI running the same test
command), every ```python block, every `caviar ...` command of the ```bash blocks in README order,
and the study config it shows.

Nothing here is a copy of the README: blocks and commands are read from README.md, so an edited
README is tested as edited. The MNIST commands run verbatim without network: caviar's download
cache ($CAVIAR_CACHE) is filled with links to the checked IDX files in ../shared/datasets, and
`../shared/datasets/mnist` resolves from the folder the commands run in. Without that shared
folder those commands (and the ones reading the studies they make) are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: the checked IDX files of MNIST and Fashion-MNIST, beside the checkout (never copied into it)
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


@dataclass(frozen=True)
class Block:
    """A fenced block of the README: its language, the line its code starts on, its code."""

    lang: str
    line: int
    code: str


def fenced_blocks(lang: str) -> list[Block]:
    """Every ```lang block of the README, in order."""
    blocks, fence, start, body = [], None, 0, []
    for number, line in enumerate(README.splitlines(), start=1):
        if fence is None and line.startswith("```"):
            fence, start, body = line[3:].strip(), number + 1, []
        elif fence is not None and line.startswith("```"):
            if fence == lang:
                blocks.append(Block(lang, start, "\n".join(body) + "\n"))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def shell_lines() -> list[str]:
    return [line for block in fenced_blocks("bash") for line in block.code.splitlines()]


# -- set up ---------------------------------------------------------------------------------------


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(line for line in shell_lines() if "'.[test]'" in line)
    assert test_command.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci
    assert "set -euo pipefail" in ci and "rm -rf .venv" in ci  # a fresh environment


def test_the_first_command_installs_and_runs_the_demo() -> None:
    first = next(line for line in shell_lines() if line.startswith("python3 -m venv"))
    assert first.endswith("pip install . && caviar tune")


# -- every ```python block ------------------------------------------------------------------------


def check_search_core_tour(out: str, folder: Path) -> None:
    """Ten numbered configurations, then the two coarse-to-fine boxes of lr."""
    lines = out.splitlines()
    assert [int(line.split()[0]) for line in lines[:10]] == list(range(10))
    rounds = [re.fullmatch(r"round (\d): lr in \[(\S+), (\S+)\]", line) for line in lines[10:]]
    assert len(rounds) == 2 and all(rounds), lines[10:]
    (i0, lo0, hi0), (i1, lo1, hi1) = (m.groups() for m in rounds if m)
    assert (i0, i1) == ("0", "1")
    assert (float(lo0), float(hi0)) == (1e-4, 1.0)  # round 0: the whole space
    assert 1e-4 < float(lo1) < 1e-2 < float(hi1) < 1.0  # round 1: zoomed in around lr = 1e-2


def check_engine_and_job_tour(out: str, folder: Path) -> None:
    """Three members' last-epoch accuracies, then the job's best value and five predictions."""
    accuracies, job = out.splitlines()
    assert len(eval(accuracies)) == 3 and all(0.0 < a <= 1.0 for a in eval(accuracies))
    best, predicted = job.split(" ", 1)
    assert 0.0 < float(best) <= 1.0
    assert len(eval(predicted)) == 5 and all(0 <= k <= 9 for k in eval(predicted))
    assert (folder / "py.db").is_file() and (folder / "caviar-models" / "py").is_dir()


#: what a block prints, checked by the block's first line that names it
PYTHON_CHECKS: dict[str, Callable[[str, Path], None]] = {
    "CoarseToFineSampler": check_search_core_tour,
    "caviar.tune(": check_engine_and_job_tour,
}


def test_every_python_block_has_a_check_of_what_it_prints() -> None:
    blocks = fenced_blocks("python")
    assert blocks, "the README shows no ```python block"
    for marker in PYTHON_CHECKS:
        assert sum(marker in block.code for block in blocks) == 1, marker


@pytest.fixture(scope="module")
def python_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh working folder for the README's Python blocks, run in README order."""
    return tmp_path_factory.mktemp("readme-python")


@pytest.mark.parametrize("block", fenced_blocks("python"), ids=lambda b: f"README.md:{b.line}")
def test_python_block_runs_as_printed(
    block: Block, python_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block runs unchanged in a namespace of its own (each imports what it uses); its
    tracebacks point at README.md's own line numbers."""
    monkeypatch.chdir(python_folder)  # what a block writes (py.db, caviar-models/) lands here
    code = compile("\n" * (block.line - 1) + block.code, "README.md", "exec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    for marker, check in PYTHON_CHECKS.items():
        if marker in block.code:
            check(out.getvalue(), python_folder)


# -- the study config -----------------------------------------------------------------------------


def test_the_config_shown_is_the_books_search() -> None:
    """The ```toml block, with the engine defaults it leaves out, is examples/book.toml."""
    from caviar.search.config import config_from_mapping, load_config

    (block,) = fenced_blocks("toml")
    assert "(`examples/book.toml`)" in README
    shown = config_from_mapping(tomllib.loads(block.code), source="README.md")
    assert shown.to_dict() == load_config(ROOT / "examples" / "book.toml").to_dict()


# -- every `caviar ...` command ------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A `caviar ...` command of a ```bash block: its README line and its words."""

    line: int
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def readme_commands() -> list[Command]:
    """Every `caviar ...` command in README order, trailing `# comments` dropped. In the set-up
    lines only the `caviar tune` after `&&` is one (installing is what .ci/run checks)."""
    commands = []
    for block in fenced_blocks("bash"):
        for offset, line in enumerate(block.code.splitlines()):
            words = shlex.split(line, comments=True)
            while words:
                segment = words[: words.index("&&")] if "&&" in words else words
                words = words[len(segment) + 1 :]
                if segment[0] == "caviar":
                    commands.append(Command(block.line + offset, tuple(segment)))
    return commands


#: Commands too slow for CI get a time budget appended, and nothing else changes. `--timeout` is
#: no defining flag: the study keeps its name, stops at the budget and requeues the rest.
#: 64 trials x 10 epochs on Fashion-MNIST's 48k training images: 4 min 31 s in full on 2 CPU cores.
#: 20 s was too short on a busy machine (no trial finished, and the run exits 1), so 60 s.
BUDGETS: dict[str, tuple[str, ...]] = {
    "caviar tune --dataset fashion-mnist --trials 64 --epochs 10": ("--timeout", "60"),
}
#: the datasets caviar downloads (what a cache must hold for a command to run without network)
IDX_DATASETS = ("mnist", "fashion-mnist")
#: commands whose second word is the study they read
READERS = ("show", "report", "test", "export")


def _flag(argv: tuple[str, ...], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def _config_path(argv: tuple[str, ...]) -> str | None:
    return next((w for w in argv[2:] if w.endswith((".toml", ".yaml", ".yml"))), None)


def downloaded_dataset(argv: tuple[str, ...]) -> str | None:
    """The IDX dataset a `caviar tune` reads, or None (the demo's embedded digits)."""
    from caviar.search.config import load_config

    if argv[1] != "tune":
        return None
    config = _config_path(argv)
    dataset = _flag(argv, "--dataset") or (
        load_config(ROOT / config).data.dataset if config else None
    )
    return dataset if dataset in IDX_DATASETS else None


def study_made(argv: tuple[str, ...]) -> str | None:
    """The study a `caviar tune` names with --name or its config (None: named by its flags)."""
    from caviar.search.config import load_config

    config = _config_path(argv)
    return _flag(argv, "--name") or (load_config(ROOT / config).name if config else None)


def test_readme_shows_the_commands_this_test_runs() -> None:
    texts = [c.text for c in readme_commands()]
    assert texts[0] == "caviar tune"  # the demo, at the end of set-up command 1
    assert sum(text.startswith("caviar tune examples/book.toml") for text in texts) >= 2
    assert set(BUDGETS) <= set(texts), "a budget for a command the README no longer shows"


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A checkout-like folder for the commands, shared by all of them in README order:
    `<tmp>/main/examples` (a copy of the repo's), `<tmp>/shared/datasets` (a link to the shared
    IDX files, so `../shared/datasets/mnist` resolves as printed) and `<tmp>/cache/<dataset>/`
    (links to the same files, where caviar looks before downloading)."""
    root = tmp_path_factory.mktemp("readme-cli")
    folder = root / "main"
    shutil.copytree(ROOT / "examples", folder / "examples")
    cache = root / "cache"
    if SHARED_DATASETS.is_dir():
        (root / "shared").mkdir()
        (root / "shared" / "datasets").symlink_to(SHARED_DATASETS, target_is_directory=True)
        for dataset in IDX_DATASETS:
            (cache / dataset).mkdir(parents=True)
            for file in sorted((SHARED_DATASETS / dataset).glob("*.gz")):
                (cache / dataset / file.name).symlink_to(file)
    env = {k: v for k, v in os.environ.items() if k.lower() != "no_proxy"}
    env["CAVIAR_CACHE"] = str(cache)
    # a download that should not happen fails at once instead of reaching the network
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[proxy] = "http://127.0.0.1:9"
    return {"folder": folder, "env": env, "skipped_studies": set()}


def _run(argv: tuple[str, ...], folder: Path, env: dict) -> subprocess.CompletedProcess:
    """`caviar ARGS` without relying on PATH: the cli's main() in this interpreter."""
    main = "import sys; from caviar.cli.main import main; sys.argv[0] = 'caviar'; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", main, *argv[1:]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", readme_commands(), ids=lambda c: f"README.md:{c.line} {c.text}")
def test_readme_command_runs(command: Command, cli_folder: dict) -> None:
    """Each command exits 0 after the ones printed before it, in one folder."""
    folder, env, skipped = cli_folder["folder"], cli_folder["env"], cli_folder["skipped_studies"]
    argv = command.argv
    dataset = downloaded_dataset(argv)
    if dataset and not (SHARED_DATASETS / dataset).is_dir():
        if argv[1] == "tune" and study_made(argv):
            skipped.add(study_made(argv))
        pytest.skip(
            f"{SHARED_DATASETS / dataset} is absent: {command.text} needs {dataset} offline"
        )
    if argv[1] in READERS and argv[2] in skipped:
        pytest.skip(f"study {argv[2]!r} was not made: its `caviar tune` was skipped")
    argv += BUDGETS.get(command.text, ())

    done = _run(argv, folder, env)

    assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr}"
    check_command_output(argv, done.stdout + done.stderr, folder)


def check_command_output(argv: tuple[str, ...], out: str, folder: Path) -> None:
    """A little of what each kind of command promises."""
    if argv[1] == "tune" and "--dry-run" in argv:
        assert "nothing was trained or written" in out
    elif argv[1] == "tune":
        assert "best configuration" in out
        if argv == ("caviar", "tune"):  # the demo's report, where the README says it is
            assert (folder / "caviar-reports" / "demo" / "index.html").is_file()
        if "--dataset" in argv:  # the footnote names the study these flags make
            (named,) = re.findall(r"`([\w-]+)` here", README)
            assert f"caviar-reports/{named}/index.html" in out
    elif argv[1] == "test":
        assert "test accuracy" in out
    elif argv[1] == "export":
        check_exported_program(folder / _flag(argv, "-o"))
    elif argv[1] == "studies":
        assert "demo:" in out


def check_exported_program(path: Path) -> None:
    """The README's `torch.export.load("model.pt2").module()(x)`, on two blank MNIST images."""
    import torch

    (line,) = re.findall(r'`(torch\.export\.load\("model\.pt2"\)\.module\(\)\(x\))`', README)
    assert path.name == "model.pt2" and path.is_file()
    x = torch.zeros(2, 784)
    logits = eval(line.replace('"model.pt2"', repr(str(path))), {"torch": torch, "x": x})
    assert logits.shape == (2, 10)

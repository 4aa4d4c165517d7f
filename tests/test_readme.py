"""The README's and the docs' promises, run as printed: the two set-up commands (and CI running
the same test command), every ```python block, every `caviar ...` command of the ```bash blocks,
and the study config shown; then the front door's size and every relative link.

Nothing here is a copy of a page: blocks and commands are read from the pages in PAGES, so an
edited page is tested as edited. A tagged block (```bash, ```python, ```toml) is run or checked;
an untagged one (```) is an illustration, as the benchmarks' commands are (tests/test_benchmarks.py
runs each benchmark in its smallest mode). The MNIST commands run verbatim without network:
caviar's download cache ($CAVIAR_CACHE) is filled with links to the checked IDX files in
../shared/datasets, and `../shared/datasets/mnist` resolves from the folder the commands run in.
Without that shared folder those commands (and the ones reading the studies they make) are
skipped, saying why.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the pages whose tagged blocks run, in the order they run: the README, then the docs it sends
#: a reader to. The commands of all of them share one folder, so a page that repeats an earlier
#: page's command goes on with what that one made (the README's panda run, in docs/panda.md).
PAGES = ("README.md", "docs/tune.md", "docs/python-api.md", "docs/panda.md", "docs/own-model.md")
#: the front door stays about one screen
README_MAX_LINES = 130
#: the checked IDX files of MNIST and Fashion-MNIST, beside the checkout (never copied into it)
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"


def page_text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Block:
    """A fenced block of a page: the page, its language, the line its code starts on, its code."""

    page: str
    lang: str
    line: int
    code: str


def fenced_blocks(page: str, lang: str) -> list[Block]:
    """Every ```lang block of ``page`` (a path from the repository root), in order."""
    blocks, fence, start, body = [], None, 0, []
    for number, line in enumerate(page_text(page).splitlines(), start=1):
        if fence is None and line.startswith("```"):
            fence, start, body = line[3:].strip(), number + 1, []
        elif fence is not None and line.startswith("```"):
            if fence == lang:
                blocks.append(Block(page, lang, start, "\n".join(body) + "\n"))
            fence = None
        elif fence is not None:
            body.append(line)
    return blocks


def all_blocks(lang: str) -> list[Block]:
    """Every ```lang block of the PAGES, in the order they run."""
    return [block for page in PAGES for block in fenced_blocks(page, lang)]


def shell_lines(page: str = "README.md") -> list[str]:
    return [line for block in fenced_blocks(page, "bash") for line in block.code.splitlines()]


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_every_page_with_a_runnable_block_is_run() -> None:
    """A ```bash, ```python or ```toml block on a page outside PAGES would go untested."""
    for path in markdown_pages():
        page = path.relative_to(ROOT).as_posix()
        if page not in PAGES:
            tagged = [b for lang in ("bash", "python", "toml") for b in fenced_blocks(page, lang)]
            assert not tagged, (
                f"{page}:{tagged[0].line} is a ```{tagged[0].lang} block: add {page} to PAGES, "
                "or make the block untagged"
            )


# -- the front door -------------------------------------------------------------------------------


def test_the_readme_is_about_one_screen() -> None:
    lines = page_text("README.md").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines: move detail into docs/"


#: a markdown link or image: [text](target) or ![alt](target), target without spaces
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def heading_anchors(text: str) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces to '-'."""
    anchors, fenced = set(), False
    for line in text.splitlines():
        fenced ^= line.startswith("```")
        if line.startswith("#") and not fenced:
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("path", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_points_at_a_file(path: Path) -> None:
    """Links and images in README.md and docs/*.md: the file exists, and so does a #heading."""
    text = path.read_text(encoding="utf-8")
    links = [m.group(1) for m in LINK.finditer(text)]
    for link in links:
        if re.match(r"[a-z]+:", link):  # https:, mailto: ...
            continue
        target, _, anchor = link.partition("#")
        file = (path.parent / target).resolve() if target else path
        assert file.exists(), f"{path.name}: {link} points at no file"
        if anchor and file.suffix == ".md":
            anchors = heading_anchors(file.read_text(encoding="utf-8"))
            assert anchor in anchors, f"{path.name}: {link}: no such heading in {file.name}"


def test_the_readme_links_every_docs_page() -> None:
    readme = page_text("README.md")
    for path in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{path.name})" in readme, f"the README's index misses docs/{path.name}"


# -- set up ---------------------------------------------------------------------------------------


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = next(line for line in shell_lines() if "'.[test]'" in line)
    assert test_command.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci
    assert "set -euo pipefail" in ci and "rm -rf .venv" in ci  # a fresh environment


def test_the_readme_names_the_fast_inner_loop() -> None:
    """`python -m pytest -m "not slow"` beside the test command, with the marker it selects on."""
    lines = shell_lines()
    test_command = next(i for i, line in enumerate(lines) if "'.[test]'" in line)
    inner = shlex.split(lines[test_command + 1], comments=True)
    assert inner == ["python", "-m", "pytest", "-m", "not slow"]
    assert '"slow: ' in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


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


def check_engine_tour(out: str, folder: Path) -> None:
    """Three members' last-epoch accuracies."""
    (accuracies,) = out.splitlines()
    assert len(eval(accuracies)) == 3 and all(0.0 < a <= 1.0 for a in eval(accuracies))


def check_job_example(out: str, folder: Path) -> None:
    """The best value and its parameters, then five predictions beside the five labels."""
    job, predictions = out.splitlines()
    best, params = job.split(" ", 1)
    assert 0.0 < float(best) <= 1.0
    assert set(eval(params)) == {"lr", "beta1", "hidden_units"}
    predicted, labels = (eval(f"[{found}]") for found in re.findall(r"\[([\d, ]*)\]", predictions))
    assert len(predicted) == len(labels) == 5 and all(0 <= k <= 9 for k in predicted)
    assert (folder / "py.db").is_file() and (folder / "caviar-models" / "py").is_dir()


def check_own_model_example(out: str, folder: Path) -> None:
    """The best trial's validation accuracy, then its hyperparameters: the builder's and
    caviar's."""
    (line,) = out.splitlines()
    best, params = line.split(" ", 1)
    assert 0.0 < float(best) <= 1.0
    assert set(eval(params)) == {"width", "dropout", "lr", "optimizer", "epochs", "batch_size"}
    assert eval(params)["width"] in (4, 8)
    assert (folder / "own.db").is_file()


@dataclass(frozen=True)
class PythonCheck:
    """What a block prints, checked; slow: it trains (more than about 2 s)."""

    check: Callable[[str, Path], None]
    slow: bool


#: the check of each ```python block, found by a marker in its code
PYTHON_CHECKS: dict[str, PythonCheck] = {
    "CoarseToFineSampler": PythonCheck(check_search_core_tour, slow=False),
    "Population(": PythonCheck(check_engine_tour, slow=False),  # 0.1 s once torch is loaded
    "caviar.tune(": PythonCheck(check_job_example, slow=True),
    "caviar.optimize(build": PythonCheck(check_own_model_example, slow=True),
}


def python_check(block: Block) -> PythonCheck:
    markers = [marker for marker in PYTHON_CHECKS if marker in block.code]
    assert len(markers) == 1, f"{block.page}:{block.line}: checks {markers}, not one"
    return PYTHON_CHECKS[markers[0]]


def python_params() -> list:
    """The blocks as test cases; one without a check counts as slow (its test then fails)."""
    params = []
    for block in all_blocks("python"):
        checks = [check for marker, check in PYTHON_CHECKS.items() if marker in block.code]
        slow = not checks or any(check.slow for check in checks)
        params.append(pytest.param(block, marks=[pytest.mark.slow] if slow else []))
    return params


def test_every_python_block_has_a_check_of_what_it_prints() -> None:
    blocks = all_blocks("python")
    assert fenced_blocks("README.md", "python"), "the README shows no ```python block"
    for block in blocks:
        python_check(block)  # exactly one marker
    for marker in PYTHON_CHECKS:
        assert sum(marker in block.code for block in blocks) == 1, marker


def test_the_readme_example_is_about_fifteen_lines() -> None:
    (block,) = fenced_blocks("README.md", "python")
    assert block.code.count("\n") <= 15


@pytest.fixture(scope="module")
def python_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One fresh working folder for the pages' Python blocks, run in page order."""
    return tmp_path_factory.mktemp("readme-python")


@pytest.mark.parametrize("block", python_params(), ids=lambda b: f"{b.page}:{b.line}")
def test_python_block_runs_as_printed(
    block: Block, python_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block runs unchanged in a namespace of its own (each imports what it uses); its
    tracebacks point at its page's own line numbers."""
    monkeypatch.chdir(python_folder)  # what a block writes (py.db, caviar-models/) lands here
    code = compile("\n" * (block.line - 1) + block.code, block.page, "exec")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    python_check(block).check(out.getvalue(), python_folder)


# -- the study config -----------------------------------------------------------------------------


def test_the_config_shown_is_the_books_search() -> None:
    """The ```toml block, with the engine defaults it leaves out, is examples/book.toml."""
    from caviar.search.config import config_from_mapping, load_config

    (block,) = all_blocks("toml")
    assert "(`examples/book.toml`)" in page_text(block.page)
    shown = config_from_mapping(tomllib.loads(block.code), source=block.page)
    assert shown.to_dict() == load_config(ROOT / "examples" / "book.toml").to_dict()


# -- every `caviar ...` command ------------------------------------------------------------------


@dataclass(frozen=True)
class Command:
    """A `caviar ...` command of a ```bash block: its page, its line there and its words."""

    page: str
    line: int
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def page_commands() -> list[Command]:
    """Every `caviar ...` command of the PAGES in page order, trailing `# comments` dropped. In
    the set-up lines only the `caviar tune` after `&&` is one (installing is what .ci/run
    checks)."""
    commands = []
    for block in all_blocks("bash"):
        for offset, line in enumerate(block.code.splitlines()):
            words = shlex.split(line, comments=True)
            while words:
                segment = words[: words.index("&&")] if "&&" in words else words
                words = words[len(segment) + 1 :]
                if segment[0] == "caviar":
                    commands.append(Command(block.page, block.line + offset, tuple(segment)))
    return commands


#: Commands too slow for the suite get a time budget appended, and nothing else changes.
#: `--timeout` is no defining flag: the study keeps its name, stops at the budget and requeues
#: the rest, and the commands after it read what it finished. The book's search (100 trials x 50
#: epochs) takes about 30 s on 2 CPU cores; in 10 s its first pool of 16 trials finishes (in 6 s
#: on an idle machine; 6 s kept only 2 models on one shared with other work), enough for the
#: leaderboard, the test set, an ensemble of 3 and the export; the command printed after it
#: continues the same study, for 3 s more.
BUDGETS: dict[str, tuple[str, ...]] = {
    "caviar tune examples/book.toml": ("--timeout", "10"),
    "caviar tune examples/book.toml --data-dir ../shared/datasets/mnist": ("--timeout", "3"),
    "caviar tune examples/book.toml --sampler tpe --timeout 60 --name book-tpe": ("--timeout", "5"),
    "caviar dashboard book": ("--timeout", "1"),  # serves until Ctrl-C
}
#: the datasets caviar downloads (what a cache must hold for a command to run without network)
IDX_DATASETS = ("mnist", "fashion-mnist")
#: commands whose second word is the study they read
READERS = ("show", "report", "dashboard", "test", "export")


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


def test_the_pages_show_the_commands_this_test_runs() -> None:
    commands = page_commands()
    texts = [c.text for c in commands]
    assert texts[0] == "caviar tune"  # the demo, at the end of set-up command 1
    readme = {c.argv[1] for c in commands if c.page == "README.md"}
    assert readme >= {
        "tune",
        "show",
        "report",
        "dashboard",
        "test",
        "export",
        "studies",
        "panda",
        "experiment",
    }
    assert sum(text.startswith("caviar tune examples/book.toml") for text in texts) >= 2
    assert set(BUDGETS) <= set(texts), "a budget for a command no page shows any more"


def page_with(pattern: str) -> list[str]:
    """What ``pattern``'s group matches on the PAGES, all of them together."""
    return [found for page in PAGES for found in re.findall(pattern, page_text(page))]


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A checkout-like folder for the commands, shared by all of them in page order:
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


#: A process that imports caviar (and torch, numpy, matplotlib, scikit-learn) once and draws one
#: figure, then runs each command it is sent in a fork of itself: a process of its own, as a
#: user's command is, without paying 1.5 s of imports (and 1.3 s more for scikit-learn in a
#: report) again for each of the pages' commands. It reads one JSON line per command
#: ({"argv", "out", "err"}), and answers one line with the fork's exit status.
FORK_RUNNER = """
import json, os, signal, sys, traceback
import caviar.cli.main, caviar.search.job, caviar.report, caviar.models.evaluate
import caviar.models.export, caviar.models.ensemble, caviar.panda.trainer, caviar.panda.server
import caviar.experiments.registry
import io, sklearn.ensemble  # the report's importance ranking imports it when it first runs
from matplotlib.figure import Figure
figure = Figure()  # the first drawing loads fonts: once here, not in every fork
figure.add_subplot().set_title("warm")
figure.savefig(io.BytesIO(), format="png")
for line in sys.stdin:
    job = json.loads(line)
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(900)  # a command that hangs ends here, not in the suite
            for fd, path in ((1, job["out"]), (2, job["err"])):
                os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
            sys.argv = ["caviar", *job["argv"]]
            code = caviar.cli.main.main(job["argv"])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class ForkRunner:
    """Runs `caviar ARGS` in forks of one process (:data:`FORK_RUNNER`) in ``folder``."""

    def __init__(self, folder: Path, env: dict) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            [sys.executable, "-c", FORK_RUNNER],
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, argv: tuple[str, ...]) -> subprocess.CompletedProcess:
        assert self.process.stdin is not None and self.process.stdout is not None
        out, err = self.folder.parent / "command.out", self.folder.parent / "command.err"
        job = {"argv": list(argv[1:]), "out": str(out), "err": str(err)}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the fork runner ended (exit status {self.process.wait()})"
        return subprocess.CompletedProcess(
            argv, int(json.loads(answer)), out.read_text(), err.read_text()
        )

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def fork_runner(cli_folder: dict) -> Iterator[ForkRunner]:
    runner = ForkRunner(cli_folder["folder"], cli_folder["env"])
    yield runner
    runner.close()


@pytest.mark.slow
@pytest.mark.parametrize("command", page_commands(), ids=lambda c: f"{c.page}:{c.line} {c.text}")
def test_command_runs(command: Command, cli_folder: dict, fork_runner: ForkRunner) -> None:
    """Each command exits 0 after the ones printed before it, in one folder, each in a fork of
    one process that has imported caviar (the console script's own start is tested in
    tests/cli/test_cli_inputs.py, Ctrl-C while it starts)."""
    folder, skipped = cli_folder["folder"], cli_folder["skipped_studies"]
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

    done = fork_runner.run(argv)

    assert done.returncode == 0, f"{shlex.join(argv)} exited {done.returncode}:\n{done.stderr}"
    check_command_output(argv, done.stdout + done.stderr, folder)


def check_command_output(argv: tuple[str, ...], out: str, folder: Path) -> None:
    """A little of what each kind of command promises."""
    if argv[1] == "tune" and "--dry-run" in argv:
        assert "nothing was trained or written" in out
    elif argv[1] == "tune":
        assert "best configuration" in out
        if argv == ("caviar", "tune"):  # the demo's report, where the README says it is
            assert "`caviar-reports/demo/index.html`" in page_text("README.md")
            assert (folder / "caviar-reports" / "demo" / "index.html").is_file()
        if "--dataset" in argv:  # docs/tune.md names the study these flags make
            (named,) = page_with(r"`([\w-]+)` here")
            assert f"caviar-reports/{named}/index.html" in out
    elif argv[1] == "test":
        assert "test accuracy" in out
    elif argv[1] == "export":
        check_exported_program(folder / _flag(argv, "-o"))
    elif argv[1] == "studies":
        assert "demo:" in out
    elif argv[1] == "dashboard":
        assert re.search(r"open http://127\.0\.0\.1:\d+/\?token=\S+\n", out), out


def check_exported_program(path: Path) -> None:
    """The docs' `torch.export.load("model.pt2").module()(x)`, on two blank MNIST images."""
    import torch

    (line,) = page_with(r'`(torch\.export\.load\("model\.pt2"\)\.module\(\)\(x\))`')
    assert path.name == "model.pt2" and path.is_file()
    x = torch.zeros(2, 784)
    logits = eval(line.replace('"model.pt2"', repr(str(path))), {"torch": torch, "x": x})
    assert logits.shape == (2, 10)

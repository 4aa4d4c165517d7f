"""`caviar panda`: a run started from the command line, controlled from another command line
(as a second terminal would), listed by `caviar panda list`, `show` and `studies`."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from _fake_holder import fake_holder

import caviar
from caviar.cli.main import main
from caviar.cli.panda import _check_host
from caviar.panda.trainer import PandaRun
from caviar.panda.tree import PandaTree
from caviar.storage import SQLiteStorage, StorageError
from conftest import MakeConfig

CONFIG = """\
[study]
name = "sit"
[data]
dataset = "digits"
train_size = 300
[space]
hidden_units = 8
n_layers = 1
batch_size = 60
epochs = 400
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def run_(run: PandaRun) -> PandaRun:
    """conftest's run (``run`` here is the command line)."""
    return run


def run_names(db: Path) -> list[str]:
    """The runs in ``db``, or none while the trainer is still creating the file."""
    try:
        return PandaTree(db, read_only=True).run_names()
    except StorageError:
        return []


@pytest.mark.slow
def test_start_control_and_list_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    config = tmp_path / "sit.toml"
    config.write_text(CONFIG)
    started: dict[str, int] = {}
    trainer = threading.Thread(
        target=lambda: started.setdefault(
            "code", main(["panda", str(config), "--storage", str(db)])
        ),
        daemon=True,
    )
    trainer.start()
    wait_for(lambda: "sit" in run_names(db))
    wait_for(lambda: PandaRun.open("sit", db).epoch >= 2)

    code, out, err = run(capsys, "panda", "set", "lr=3e-3", "dropout=0.1", "--storage", str(db))
    assert code == 0 and "recorded: lr 0.001 -> 0.003" in out, err
    code, _, err = run(capsys, "panda", "set", "hidden_units=5", "--storage", str(db))
    assert code == 2 and err.strip() == (
        "caviar: error: set hidden_units: cannot change mid-run (it fixes the model's shape or "
        "group); may change: ['lr', 'beta1', 'beta2', 'eps', 'weight_decay', 'dropout', "
        "'lr_decay', 'decay_rate', 'decay_every', 'epochs']"
    )
    code, _, err = run(capsys, "panda", "rollback", "1", "--mode", "warm", "--storage", str(db))
    assert code == 2 and err.strip() == (
        "caviar: error: rollback mode: must be one of ['exact', 'fresh'], got 'warm'"
    )
    code, out, err = run(capsys, "panda", "rollback", "1", "--mode", "fresh", "--storage", str(db))
    assert code == 0 and "as branch 1" in out, err
    wait_for(lambda: PandaRun.open("sit", db).branch == 1)
    code, out, _ = run(capsys, "panda", "list", "--storage", str(db))
    assert "panda run 'sit'" in out and "branch 1: from branch 0 at epoch 1 (fresh)" in out
    code, out, _ = run(capsys, "show", "sit", "--storage", str(db))
    assert code == 0 and "branch 1: from branch 0 at epoch 1 (fresh)" in out
    code, out, _ = run(capsys, "studies", "--storage", str(db))
    assert "panda run 'sit'" in out

    code, out, _ = run(capsys, "panda", "stop", "--storage", str(db))
    assert code == 0
    trainer.join(timeout=30)
    assert not trainer.is_alive() and started["code"] == 0
    state = PandaRun.open("sit", db).controller().state()
    assert state["run"]["status"] == "stopped"
    applied = {(c["key"], c["new"]) for c in state["commands"] if c["applied"]}
    assert {("lr", 0.003), ("dropout", 0.1)} <= applied
    assert [c["key"] for c in state["commands"] if c["applied"]].count("rollback") == 1
    assert len(state["branches"]) == 2 and state["branches"][1]["mode"] == "fresh"


def test_controls_name_the_run_and_refuse_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "none.db"
    code, _, err = run(capsys, "panda", "pause", "--storage", str(db))
    assert code == 2 and "--storage: no study file at" in err
    code, _, err = run(capsys, "panda", "--from", "nocolon", "--storage", str(db))
    assert code == 2 and "--from: must read STUDY:TRIAL, got 'nocolon'" in err


@pytest.mark.slow
def test_a_finished_run_goes_on_with_commands_and_replays_bit_for_bit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's sequence: train to the end, record a rollback and a change while nothing
    runs, train on, then replay the new branch from the root."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sit.toml").write_text(CONFIG.replace("epochs = 400", "epochs = 4"))
    start = ["panda", "sit.toml", "--exit-when-finished"]
    code, out, err = run(capsys, *start)
    assert code == 0 and "run 'sit' finished at epoch 4" in out, err
    assert run(capsys, "panda", "rollback", "2")[0] == 0
    assert run(capsys, "panda", "set", "lr=3e-3")[0] == 0
    code, out, err = run(capsys, *start)
    assert code == 0 and "finished at epoch 4" in out, err
    code, out, _ = run(capsys, "panda", "list")
    assert "branch 1: from branch 0 at epoch 2 (exact), epoch 4" in out
    code, out, _ = run(capsys, "panda", "replay")
    assert code == 0 and out.strip() == (
        "replay of branch 1 of 'sit': 4 epochs from the root, every loss and accuracy "
        "identical bit for bit"
    )


# -- issue 25's rough edges ----------------------------------------------------------------------
def test_a_second_trainer_is_refused_in_one_line_naming_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "c.db"
    config = tmp_path / "sit.toml"
    config.write_text(CONFIG)
    SQLiteStorage(db).close()
    described = fake_holder(db)  # a trainer on another machine, alive
    code, out, err = run(capsys, "panda", str(config), "--storage", str(db))
    assert code == 2 and "open http" not in out
    assert err.splitlines()[-1] == (
        f"caviar: error: panda run 'sit' in {db} is held by a trainer ({described}): one "
        f"trainer per run; stop it first (caviar panda stop --run sit), or train another run "
        f"(--name)"
    )


def test_controls_say_whether_a_trainer_applies_them(
    run_: PandaRun, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No trainer: the command waits for the next one, and says which command starts it; a
    stop is refused. A trainer: it is named. `set` prints the value the run has now."""
    waits = (
        f"no trainer holds run 'babysat': the command is stored, and applies when `caviar panda "
        f"CONFIG --storage {db}` starts it again"
    )
    code, out, err = run(capsys, "panda", "set", "epochs=44", "--storage", str(db))
    assert code == 0 and out.splitlines() == ["recorded: epochs 5 -> 44", waits], err
    code, out, _ = run(capsys, "panda", "set", "epochs=50", "--storage", str(db))
    assert out.splitlines()[0] == "recorded: epochs 5 -> 50 (instead of the pending 44)"
    code, out, err = run(capsys, "panda", "stop", "--storage", str(db))
    assert code == 2 and err.strip() == (
        f"caviar: error: caviar panda stop: no trainer holds run 'babysat' in {db}: there is "
        f"nothing to stop (a stop stored now would end the next trainer at its first epoch "
        f"boundary)"
    )
    described = fake_holder(db, run="babysat")
    code, out, _ = run(capsys, "panda", "pause", "--storage", str(db))
    assert code == 0 and out.splitlines() == [
        "recorded: pause",
        f"the trainer ({described}) applies it at its next epoch boundary",
    ]
    run_.step()  # the trainer applies both changes, and the pause
    assert run_.spec.epochs == 50 and run_.status == "paused"


def test_a_bad_rollback_epoch_is_named_with_the_epochs_allowed(
    run_: PandaRun, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_.step()
    run_.step()
    allowed = (
        "caviar: error: caviar panda rollback: needs one EPOCH that branch 0 can return to: 0 to "
        "2 (the other epochs' snapshots were dropped or are not reached yet), got "
    )
    for values, shown in (
        (["-1"], "'-1'"),
        (["abc"], "'abc'"),
        (["2.5"], "'2.5'"),
        (["3"], "'3'"),
        ([], "nothing"),
        (["1", "2"], "['1', '2']"),
    ):
        code, _, err = run(capsys, "panda", "rollback", *values, "--storage", str(db))
        assert code == 2 and err.strip() == allowed + shown, values
    assert run_.tree.commands(run_.run_id) == []  # nothing recorded
    code, out, _ = run(capsys, "panda", "rollback", "1", "--storage", str(db))
    assert code == 0 and out.startswith("recorded: rollback to epoch 1 (exact) as branch 1")


def test_list_shows_the_run_asked_for(
    run_: PandaRun, make_config: MakeConfig, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    PandaRun.create(make_config(name="other"))
    code, out, _ = run(capsys, "panda", "list", "--storage", str(db))
    assert "panda run 'babysat'" in out and "panda run 'other'" in out
    code, out, _ = run(capsys, "panda", "list", "--run", "other", "--storage", str(db))
    assert code == 0 and "panda run 'other'" in out and "babysat" not in out
    code, _, err = run(capsys, "panda", "list", "--run", "nope", "--storage", str(db))
    assert code == 2 and err.strip() == (
        f"caviar: error: --run: must be one of the runs in {db} ['babysat', 'other'], got 'nope'"
    )
    described = fake_holder(db, run="other")
    code, out, _ = run(capsys, "panda", "list", "--run", "other", "--storage", str(db))
    assert out.splitlines()[-1] == f"  trained by {described}"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3"])
def test_a_page_other_machines_reach_needs_allow_remote(
    host: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "panda", "--host", host, "--storage", str(tmp_path / "c.db"))
    assert (
        code == 2
        and out == ""
        and err.strip()
        == (
            f"caviar: error: --host: {host!r} is not a loopback address: the page and its controls "
            f"would be open to other machines, guarded only by a token sent unencrypted; add "
            f"--allow-remote to serve there anyway, or leave --host out (127.0.0.1)"
        )
    )
    assert list(tmp_path.iterdir()) == []
    with pytest.warns(UserWarning, match=rf"--allow-remote: the page on {host} can be reached"):
        _check_host(host, allow_remote=True)
    _check_host("127.0.0.1", allow_remote=False)
    _check_host("localhost", allow_remote=False)


#: run in a fresh interpreter: every light command of `caviar panda`, then what was imported
_LIGHT = """
import sys
from caviar.cli.main import main
db = sys.argv[1]
for argv in (["set", "lr=3e-3"], ["rollback", "0"], ["pause"], ["resume"], ["list"],
             ["list", "--run", "babysat"], ["set", "--help"]):
    try:
        assert main(["panda", *argv, "--storage", db]) == 0, argv
    except SystemExit as e:  # --help
        assert e.code == 0
heavy = sorted(m for m in ("torch", "caviar.nn.pool", "caviar.panda.trainer", "uvicorn",
                           "starlette") if m in sys.modules)
import caviar.nn  # the package loads its names on first use: the rules are the engine's own
same = caviar.nn.MemberSpec is sys.modules["caviar.nn.spec"].MemberSpec
print("heavy:", heavy, "same:", same)
"""


@pytest.mark.slow
def test_the_controls_start_without_torch(run_: PandaRun, db: Path) -> None:
    """`caviar panda set` took 4 s to start, importing torch; it needs the store and the rules."""
    src = Path(caviar.__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-c", _LIGHT, str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(src)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "heavy: [] same: True", done.stdout

"""The settings that spread a study over workers, without starting Ray: parsing and validation
of ``search.ray`` / ``search.devices`` and their flags, the worker plans, the one-line error
when ``--ray`` is asked for without the ``ray`` extra (``--devices`` alone needs none:
test_local_spread.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caviar.cli.main import main
from caviar.core.errors import InvalidValue
from caviar.distributed import RAY_MISSING, WorkerPlan, is_local, plan_workers, worker_devices
from caviar.search.config import config_from_mapping
from caviar.search.job import check_device


def mapping(**search: Any) -> dict[str, Any]:
    return {"data": {"dataset": "digits"}, "search": {"trials": 2, **search}}


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        ("cuda:0,cuda:1", ("cuda:0", "cuda:1")),
        ("cpu, cpu", ("cpu", "cpu")),
        (["cuda", "cpu"], ("cuda", "cpu")),
        ([], ()),
        ("auto", ("auto",)),
        (" auto ", ("auto",)),
    ],
)
def test_devices_are_a_list_or_a_comma_separated_text(given: Any, parsed: tuple[str, ...]) -> None:
    assert config_from_mapping(mapping(devices=given)).search.devices == parsed


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("gpu0", r"search\.devices\[0\]: must be 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"),
        (["cpu", 3], r"search\.devices\[1\]: must be .*, got 3"),
        ("cuda:", r"search\.devices\[0\]: .*got 'cuda:'"),
        (3, r"search\.devices: must be 'auto' or a list of 'cpu', 'cuda' or 'cuda:N'"),
        ("auto,cpu", r"search\.devices\[0\]: must be 'cpu', 'cuda' or 'cuda:N', got 'auto'"),
    ],
)
def test_a_bad_device_is_named(given: Any, message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        config_from_mapping(mapping(devices=given))


def test_ray_is_text_or_nothing() -> None:
    assert config_from_mapping(mapping(ray="auto")).search.ray == "auto"
    assert config_from_mapping(mapping()).search.ray is None
    with pytest.raises(InvalidValue, match=r"search\.ray"):
        config_from_mapping(mapping(ray=3))


PLANS = {
    "devices as listed": (
        {"devices": ["cuda:0", "cuda:1"]},
        {},
        [WorkerPlan("cuda:0", 1, 0), WorkerPlan("cuda:1", 1, 0)],
    ),
    "cuda: a GPU Ray assigns": ({"devices": ["cuda"]}, {}, [WorkerPlan("cuda", 1, 1)]),
    "a cluster with GPUs: one per GPU": (
        {"ray": "auto"},
        {"CPU": 16.0, "GPU": 2.0},
        [WorkerPlan("cuda", 1, 1)] * 2,
    ),
    "a CPU cluster: one per CPU": ({"ray": "auto"}, {"CPU": 3.0}, [WorkerPlan("cpu", 1, 0)] * 3),
}


@pytest.mark.parametrize("name", list(PLANS))
def test_worker_plans(name: str) -> None:
    search, resources, plans = PLANS[name]
    assert plan_workers(config_from_mapping(mapping(**search)).spread_plan(), resources) == plans


def test_cpu_workers_take_a_cpu_slot_per_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, 4, 0)  # the driver's machine may run 2 threads
    raw = {**mapping(ray="auto"), "study": {"threads": 2}}
    assert (
        plan_workers(config_from_mapping(raw).spread_plan(), {"CPU": 4.0})
        == [WorkerPlan("cpu", 2, 0)] * 2
    )
    raw["study"]["device"] = "cpu"  # a GPU cluster, but the study asks for the CPU
    assert (
        plan_workers(config_from_mapping(raw).spread_plan(), {"CPU": 4.0, "GPU": 8.0})
        == [WorkerPlan("cpu", 2, 0)] * 2
    )


def machine(monkeypatch: pytest.MonkeyPatch, cores: int, gpus: int) -> None:
    """This process runs on ``cores`` cores of a machine with ``gpus`` GPUs (and may run as many
    threads: no limit on the user's processes)."""
    monkeypatch.setattr("caviar.distributed.cluster.machine_cores", lambda: cores)
    monkeypatch.setattr("caviar.core.threads.machine_cores", lambda: cores)
    monkeypatch.setattr("caviar.core.threads._process_room", lambda: None)
    monkeypatch.setattr("torch.cuda.is_available", lambda: gpus > 0)
    monkeypatch.setattr("torch.cuda.device_count", lambda: gpus)


AUTO = {  # (cores, GPUs, study, ray, the workers of devices = "auto")
    "4 cores: one per core": (4, 0, {}, None, ("cpu",) * 4),
    "4 cores, 2 threads a worker": (4, 0, {"threads": 2}, None, ("cpu",) * 2),
    "4 cores, 3 threads: one worker, so one process": (4, 0, {"threads": 3}, None, ()),
    "1 core: one process": (1, 0, {}, None, ()),
    "3 GPUs: one per GPU": (8, 3, {}, None, ("cuda:0", "cuda:1", "cuda:2")),
    "3 GPUs, the study on cuda": (8, 3, {"device": "cuda"}, None, ("cuda:0", "cuda:1", "cuda:2")),
    "3 GPUs, the study on one of them": (8, 3, {"device": "cuda:1"}, None, ()),
    "1 GPU: one process": (8, 1, {}, None, ()),
    "GPUs, the study on the CPU": (2, 3, {"device": "cpu"}, None, ("cpu", "cpu")),
    "with Ray: the cluster decides": (4, 0, {}, "auto", ()),
}


@pytest.mark.parametrize("name", list(AUTO))
def test_auto_devices_are_one_worker_per_core_or_gpu(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores, gpus, study, ray, devices = AUTO[name]
    machine(monkeypatch, cores, gpus)
    config = config_from_mapping({**mapping(devices="auto", ray=ray), "study": study})
    assert worker_devices(config.spread_plan()) == devices
    assert is_local(config.spread_plan()) == (bool(devices) and ray is None)
    assert config.search.devices == ("auto",)  # the study records the setting, not this machine


def test_a_stored_auto_reads_back_as_auto() -> None:
    """A study records its config (``to_dict``) and reads it back for ``caviar test``, panda
    and the next run."""
    config = config_from_mapping(mapping(devices="auto"))
    again = config_from_mapping(config.to_dict())
    assert again.search.devices == ("auto",)
    assert config_from_mapping(again.to_dict()).to_dict() == config.to_dict()


def test_auto_on_a_study_device_this_machine_lacks_names_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine(monkeypatch, 4, 0)
    raw = {**mapping(devices="auto"), "study": {"device": "cuda"}}
    with pytest.raises(InvalidValue, match=r"^study\.device: CUDA is not available"):
        worker_devices(config_from_mapping(raw).spread_plan())


def test_auto_plans_local_workers_or_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    machine(monkeypatch, 2, 0)
    local = config_from_mapping(mapping(devices="auto")).spread_plan()
    assert plan_workers(local, {}) == [WorkerPlan("cpu", 1, 0)] * 2
    on_ray = config_from_mapping(mapping(devices="auto", ray="auto")).spread_plan()
    assert plan_workers(on_ray, {"CPU": 3.0}) == [WorkerPlan("cpu", 1, 0)] * 3


@pytest.mark.parametrize(
    ("flags", "where"),
    [
        ([], "on one process"),
        (["--devices", "auto"], "on 3 worker processes (cpu, cpu, cpu, 1 thread each)"),
        (["--devices", "cpu,cpu", "--threads", "2"], "on 2 worker processes (cpu, cpu, 2 threads"),
        (["--devices", "auto", "--threads", "2"], "on one process"),
    ],
)
def test_the_dry_run_says_where_the_pool_trains(
    flags: list[str],
    where: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    machine(monkeypatch, 3, 0)
    storage = str(tmp_path / "s.db")
    assert main(["tune", "--storage", storage, "--trials", "2", "--dry-run", *flags]) == 0
    assert where in capsys.readouterr().out
    assert not (tmp_path / "s.db").exists()


def test_a_local_device_this_machine_lacks_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(InvalidValue, match=r"search\.devices\[1\]: CUDA is not available"):
        check_device(config_from_mapping(mapping(devices="cpu,cuda:0")))


def test_without_the_extra_ray_says_how_to_install_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], without_ray: None
) -> None:
    storage = str(tmp_path / "s.db")
    code = main(["tune", "--storage", storage, "--trials", "2", "--quiet", "--ray", "auto"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.strip().splitlines() == [f"caviar: error: search.ray: {RAY_MISSING}"]
    assert "pip install 'caviar-tune[ray]'" in err
    assert not (tmp_path / "s.db").exists()  # refused before anything was written

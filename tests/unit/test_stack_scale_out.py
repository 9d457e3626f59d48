"""A stack with several TaskManagers: each its own supervised program with its own ports and directories, all of
them scraped, and the job's parallelism passed to the job."""

from __future__ import annotations

from pathlib import Path

from pipelines.flink_job import parse_args
from runners.stack.components.flink import FlinkTaskManager
from runners.stack.settings import StackSettings
from runners.stack.stack import Stack


def dynamic(taskmanager: FlinkTaskManager) -> dict[str, str]:
    """The `-D key=value` pairs of its command line."""
    command = taskmanager.command()
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-D")


def test_each_taskmanager_is_its_own_program_with_its_own_port_id_and_dirs(tmp_path: Path) -> None:
    stack = Stack(StackSettings(root=tmp_path, flink_taskmanagers=2, flink_taskmanager_metrics_port=21001,
                                flink_extra_taskmanager_metrics_port=21005))
    assert [n for n in stack.services if "taskmanager" in n] == ["flink-taskmanager", "flink-taskmanager-2"]
    first, second = stack["flink-taskmanager"], stack["flink-taskmanager-2"]
    assert isinstance(first, FlinkTaskManager) and isinstance(second, FlinkTaskManager)
    flags = [dynamic(first), dynamic(second)]
    assert [f["metrics.reporter.prom.port"] for f in flags] == ["21001", "21005"]
    assert [f["taskmanager.resource-id"] for f in flags] == ["flink-taskmanager", "flink-taskmanager-2"]
    assert len({f["io.tmp.dirs"] for f in flags}) == 2
    programs = [first.program(), second.program()]
    assert [p.name for p in programs] == ["flink-taskmanager", "flink-taskmanager-2"]
    assert programs[0].log_path != programs[1].log_path
    assert programs[0].env["FLINK_PID_DIR"] != programs[1].env["FLINK_PID_DIR"]
    scraped = [target for job in stack["prometheus"].config()["scrape_configs"] if job["job_name"] == "flink"
               for group in job["static_configs"] if group["labels"] == {"component": "taskmanager"}
               for target in group["targets"]]
    assert scraped == ["127.0.0.1:21001", "127.0.0.1:21005"]


def test_one_taskmanager_by_default_and_the_job_parallelism_reaches_the_job(tmp_path: Path) -> None:
    stack = Stack(StackSettings(root=tmp_path))
    assert [n for n in stack.services if "taskmanager" in n] == ["flink-taskmanager"]
    assert parse_args(["--parallelism", "2"])[1].parallelism == 2
    assert parse_args([])[1].parallelism is None  # the cluster's parallelism.default (the Kubernetes operator's)

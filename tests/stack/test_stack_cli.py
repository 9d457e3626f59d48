"""`imgrec stack up | status | env | down` as a user runs them: every component healthy, nothing left after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from runners.stack.process import group_members
from runners.stack.settings import StackSettings
from runners.stack.supervisor import Supervisor
from tests.conftest import PORT_FIELDS, free_ports
from transforms.settings import REPO_ROOT, Settings


def imgrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "runners.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


def test_stack_up_status_down_leaves_no_process(stack_root: Path) -> None:
    ports = dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True))
    env = os.environ | {f"IMGREC_STACK_{field.upper()}": str(port) for field, port in ports.items()} | {
        "IMGREC_STACK_ROOT": str(stack_root),
        # Job submission belongs to the pipeline tests; this one is about the processes.
        "IMGREC_STACK_SUBMIT_JOB": "false",
        "IMGREC_VAR_DIR": str(stack_root / "var"),
        "IMGREC_MODEL_STORE": str(Settings().resolved_model_store),
    }
    pgids: list[int] = []
    try:
        up = imgrec(env, "stack", "up")
        assert up.returncode == 0, up.stdout + up.stderr
        rows = json.loads(imgrec(env, "stack", "status", "--json").stdout)
        pgids = [row["pid"] for row in rows if row["pid"]]
        assert {row["name"] for row in rows} == {
            "postgres", "redis", "kafka", "triton", "flink-jobmanager", "flink-taskmanager", "flink-job-keeper", "api",
            "redis-exporter", "pipeline-exporter", "prometheus"}
        assert {"name": "prometheus", "url": f"http://127.0.0.1:{ports['prometheus_port']}"}.items() <= next(
            row for row in rows if row["name"] == "prometheus").items()
        assert all(row["healthy"] and row["restarts"] == 0 for row in rows), rows
        assert len(pgids) == len(rows)
        again = imgrec(env, "stack", "up", "--only", "redis")
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(imgrec(env, "stack", "status", "--json").stdout) == rows, "up again keeps what runs"
        exports = imgrec(env, "stack", "env").stdout
        assert f"export IMGREC_REDIS_URL=redis://127.0.0.1:{ports['redis_port']}/0" in exports
        assert f"export IMGREC_TRITON_URL=127.0.0.1:{ports['triton_grpc_port']}" in exports
    finally:
        down = imgrec(env, "stack", "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert {pgid: group_members(pgid) for pgid in pgids if group_members(pgid)} == {}
    socket = stack_root / "run" / "supervisor.sock"
    assert not socket.exists() or not Supervisor(StackSettings(root=stack_root)).running()
    assert not list(Path("/dev/shm").glob(f"imgrec_triton_{ports['triton_grpc_port']}_*"))
    rows = json.loads(imgrec(env, "stack", "status", "--json").stdout)
    assert [row["pid"] for row in rows] == [None] * len(rows)

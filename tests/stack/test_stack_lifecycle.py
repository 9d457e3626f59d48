"""Stack mechanics: failures name the component and its log; stopping reaches the whole group and only it."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from runners.stack.components.base import ComponentError
from runners.stack.components.redis import Redis
from runners.stack.process import PidFile, group_members, spawn, stop_group
from runners.stack.settings import StackSettings


def test_port_in_use_fails_naming_the_component_and_its_log(stack_root: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = StackSettings(root=stack_root, redis_port=taken.getsockname()[1], start_timeout_s=20)
        redis = Redis(settings)
        with pytest.raises(ComponentError) as failure:
            redis.start()
    message = str(failure.value)
    assert message.startswith("redis: process exited during start-up")
    assert str(redis.log_path) in message
    assert "Address already in use" in message
    assert redis.pid() is None


def test_stop_group_ends_every_member_and_nothing_else(stack_root: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    leader = spawn(["sh", "-c", "sleep 60 & sleep 60 & wait"], stack_root / "group.log", {"PATH": "/usr/bin:/bin"},
                   cwd=stack_root)
    try:
        for _ in range(50):
            if len(group_members(leader.pid)) == 3:
                break
            time.sleep(0.1)
        assert len(group_members(leader.pid)) == 3
        assert stop_group(leader.pid, signal.SIGTERM, timeout_s=5)
        assert group_members(leader.pid) == []
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_pid_file_ignores_a_dead_or_reused_pid(stack_root: Path) -> None:
    pid_file = PidFile(stack_root / "x.pid")
    done = subprocess.Popen(["true"])
    done.wait()
    pid_file.write(done.pid)
    assert pid_file.alive() is None
    live = subprocess.Popen(["sleep", "30"])
    try:
        pid_file.write(live.pid)
        assert pid_file.alive() == live.pid
        # Same pid, different start time: another process now owns that pid.
        pid_file.path.write_text(f"{live.pid} 1\n")
        assert pid_file.alive() is None
    finally:
        live.kill()
        live.wait()

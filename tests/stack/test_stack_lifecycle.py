"""Stack mechanics: failures name the component and its log; the supervisor restarts a component that dies,
counts it, and stopping reaches the whole process group and ends the supervisor with its last component."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from runners.stack.components.base import ComponentError
from runners.stack.components.redis import Redis
from runners.stack.ports import free_ports
from runners.stack.process import group_members
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
    assert not redis.supervisor.running(), "the supervisor ends when it has nothing left to run"


def test_a_killed_component_is_restarted_counted_and_stopped_with_its_group(stack_root: Path) -> None:
    redis = Redis(StackSettings(root=stack_root, redis_port=free_ports(1)[0], start_timeout_s=30))
    try:
        redis.start()
        first = redis.pid()
        assert first is not None and redis.status()["restarts"] == 0
        os.killpg(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not (redis.pid() not in (None, first) and redis.healthy()):
            assert time.monotonic() < deadline, "not restarted"
            time.sleep(0.1)
        second = redis.pid()
        while redis.status()["restarts"] != 1:
            assert time.monotonic() < deadline, redis.status()
            time.sleep(0.1)
    finally:
        assert redis.stop()
    assert group_members(second) == [] and redis.pid() is None
    assert not redis.supervisor.running()

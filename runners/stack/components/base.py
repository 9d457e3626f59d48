"""One service of the local stack: prepare, start under the stack's supervisor, wait until ready, stop."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx

from runners.stack.settings import StackSettings
from runners.stack.supervisor import FAILED, UP, Program, Supervisor
from transforms.settings import Settings

VENV_BIN = Path(sys.executable).parent


class ComponentError(RuntimeError):
    """A component failed to start; the message names it and its log file."""

    def __init__(self, component: Component, reason: str) -> None:
        tail = component.log_tail(15)
        super().__init__(
            f"{component.name}: {reason}. Log: {component.log_path}" + (f"\n--- last lines ---\n{tail}" if tail else "")
        )


class Component(ABC):
    """A service run by the stack's supervisor (its own process group, restarted when it dies), logging under the
    stack root."""

    name: ClassVar[str]
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, settings: StackSettings, app_settings: Settings | None = None) -> None:
        self.settings = settings
        self.app_settings = app_settings or Settings()
        self.supervisor = Supervisor(settings)

    # --- what a concrete service says ---
    @property
    @abstractmethod
    def url(self) -> str:
        """Where clients reach it."""

    @abstractmethod
    def command(self) -> list[str]:
        """The foreground command line of the service."""

    @abstractmethod
    def healthy(self) -> bool:
        """A quick readiness probe that never raises."""

    def prepare(self) -> None:
        """Optional hook: set-up before each start (data dirs, config files); idempotent."""
        return

    def after_ready(self) -> None:
        """Optional hook: set-up that needs the running service (databases, topics); idempotent."""
        return

    def after_stop(self) -> None:
        """Optional hook: clean-up once every process of the service has exited."""
        return

    def env(self) -> dict[str, str]:
        """Environment of the service process."""
        return dict(os.environ)

    def run_as(self) -> str | None:
        """OS user to run as (None: the current one)."""
        return None

    # --- shared mechanics ---
    @property
    def dir(self) -> Path:
        """This component's own directory under the stack root."""
        return self.settings.root / self.name

    @property
    def log_path(self) -> Path:
        """Its log file."""
        return self.settings.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        """The pid (and process group) of the running service, if the supervisor runs it."""
        info = self.supervisor.info(self.name)
        return info["pid"] or None if info is not None and info["statename"] in UP else None

    def restarts(self) -> int:
        """How often the supervisor restarted it after it died."""
        return self.supervisor.restarts().get(self.name, 0)

    def program(self) -> Program:
        """How the supervisor runs it: the command, its log, and the environment that differs from ours."""
        base = os.environ
        env = {key: value for key, value in self.env().items() if base.get(key) != value}
        return Program(self.name, self.command(), self.log_path, env, self.run_as(),
                       self.stop_signal.name.removeprefix("SIG"), self.settings.stop_timeout_s)

    def spawn(self) -> bool:
        """Have the supervisor start it unless it already runs; True when a new process was started."""
        if self.pid() is not None:
            return False
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.prepare()
        except ComponentError:
            raise
        except Exception as exc:
            raise ComponentError(self, f"set-up failed: {exc}") from exc
        self.supervisor.start(self.program())
        return True

    def check_ready(self, deadline: float) -> bool:
        """One readiness probe; raise ComponentError naming the log if the process died or time is up."""
        # Liveness first: a foreign server on the same port must not pass for ours.
        info = self.supervisor.info(self.name)
        if info is None or info["statename"] in FAILED:
            code = info["exitstatus"] if info else None
            self._forget()
            raise ComponentError(self, f"process exited during start-up (exit code {code})")
        if info["statename"] == "RUNNING" and self.healthy():
            return True
        if time.monotonic() > deadline:
            self._forget()
            raise ComponentError(self, f"not ready after {self.settings.start_timeout_s:.0f} s")
        return False

    def _forget(self) -> None:
        """Stop the supervisor's retries of a component that failed to start."""
        self.supervisor.stop(self.name)
        self.supervisor.shutdown_if_idle()

    def wait_ready(self) -> None:
        """Block until healthy; raise ComponentError naming the log on exit or timeout."""
        deadline = time.monotonic() + self.settings.start_timeout_s
        while not self.check_ready(deadline):
            time.sleep(0.25)

    def start(self) -> None:
        """Spawn, wait until ready, then finish set-up."""
        self.spawn()
        self.wait_ready()
        self.after_ready()

    def stop(self) -> bool:
        """Stop its whole process group (the supervisor signals, waits, then kills); True if it was running.

        The supervisor itself ends with the last component it ran.
        """
        pid = self.pid()
        self.supervisor.stop(self.name)
        self.after_stop()
        self.supervisor.shutdown_if_idle()
        return pid is not None

    def status(self) -> dict[str, Any]:
        """One row of `imgrec stack status --json`."""
        pid = self.pid()
        return {"name": self.name, "pid": pid, "url": self.url, "healthy": pid is not None and self.healthy(),
                "restarts": self.restarts()}

    def log_tail(self, lines: int) -> str:
        """The last lines of its log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 64 * 1024))
                return b"\n".join(log.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""


def port_open(host: str, port: int) -> bool:
    """Whether something accepts TCP connections there (a cheap check before a slow client probe)."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def quietly(probe: Callable[[], bool]) -> bool:
    """Run a readiness probe; any exception means not ready yet."""
    try:
        return probe()
    except Exception:
        return False


class ProjectProcess(Component):
    """A process of this project (`imgrec ...`) configured to use every service of the stack."""

    def env(self) -> dict[str, str]:
        app = self.app_settings
        return super().env() | self.settings.service_env() | {
            "IMGREC_VAR_DIR": str(app.var_dir),
            "IMGREC_MODEL_STORE": str(app.resolved_model_store),
        }


def http_ok(url: str) -> bool:
    """Whether GET url answers 200 within a second (a readiness probe that never raises)."""
    return quietly(lambda: httpx.get(url, timeout=1.0).status_code == 200)

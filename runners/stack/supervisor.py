"""The stack's process supervisor: supervisord (from PyPI) runs every component and restarts one that dies.

One supervisord per stack root, started on demand and shut down when its last program stops. Each component is
one `[program:NAME]` (written when it starts, so its command and environment are current), not started
automatically but restarted automatically after an unexpected exit, with supervisord's backoff between failed
starts. supervisord puts each program in its own process group and stops (and kills) the whole group, so a
component's children (PostgreSQL backends, Triton stubs, Flink's Python workers) go with it. An event listener
counts each program's unexpected exits into `<root>/run/restarts.json` for `imgrec stack status`.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from supervisor.xmlrpc import Faults, SupervisorTransport

from runners.stack.settings import StackSettings
from transforms.settings import REPO_ROOT

# supervisord's process states (supervisor.states.ProcessStates) a component can be in.
UP = ("STARTING", "RUNNING")
FAILED = ("BACKOFF", "FATAL", "EXITED")


@dataclass(frozen=True)
class Program:
    """What supervisord needs to run one component."""

    name: str
    command: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    stop_signal: str = "TERM"
    stop_wait_s: float = 30.0

    def config(self) -> str:
        """The `[program:NAME]` section.

        A program run as another user starts in `/`: that user may not be allowed into the checkout (a clone made
        with `mktemp -d` is mode 700), and supervisord would then refuse to spawn it.
        """
        directory = "/" if self.user else str(REPO_ROOT)
        lines = [
            f"[program:{self.name}]",
            f"command={_escape(shlex.join(self.command))}",
            f"directory={_escape(directory)}",
            "autostart=false",
            "autorestart=true",
            # Up for a second counts as started; a faster exit is retried with a growing pause (1, 2, 3 ... s).
            "startsecs=1",
            "startretries=5",
            f"stopsignal={self.stop_signal}",
            f"stopwaitsecs={max(1, round(self.stop_wait_s))}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={_escape(str(self.log_path))}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
        ]
        if self.user:
            lines.append(f"user={self.user}")
        if self.env:
            lines.append("environment=" + ",".join(f"{key}={_quote(value)}" for key, value in self.env.items()))
        return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    """supervisord expands `%(name)s` in its config: a literal percent sign is written twice."""
    return value.replace("%", "%%")


def _quote(value: str) -> str:
    """A value of `environment=`. supervisord splits it with a non-POSIX shlex: quotes group, nothing escapes, and
    quote characters at either end are stripped; so the value is wrapped in the quote it does not contain."""
    quote = "'" if '"' in value else '"'
    if quote in value or value[:1] in ("'", '"') or value[-1:] in ("'", '"'):
        raise ValueError(f"cannot pass {value!r} in a supervisord environment (quotes of both kinds, or at an end)")
    return quote + _escape(value) + quote


class SupervisorError(RuntimeError):
    """supervisord refused an operation or did not come up."""


class Supervisor:
    """The supervisord of one stack root, talked to over its UNIX socket (XML-RPC)."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.dir = settings.root / "supervisor"
        self.programs_dir = self.dir / "programs"
        self.socket = settings.run_dir / "supervisor.sock"
        self.restarts_file = settings.run_dir / "restarts.json"
        self.log_path = settings.log_dir / "supervisord.log"

    # --- the daemon ---
    def rpc(self) -> Any:
        """The `supervisor` namespace of the XML-RPC interface."""
        transport = SupervisorTransport(None, None, serverurl=f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport).supervisor

    def running(self) -> bool:
        """Whether this root's supervisord answers."""
        if not self.socket.exists():
            return False
        try:
            return self.rpc().getState()["statename"] == "RUNNING"
        except (OSError, xmlrpc.client.Error):
            return False

    def ensure_running(self) -> None:
        """Start supervisord for this root unless it runs; wait until it answers."""
        if self.running():
            return
        for path in (self.programs_dir, self.settings.run_dir, self.settings.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        config = self.dir / "supervisord.conf"
        config.write_text(self._main_config())
        subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "--nodaemon", "--configuration", str(config)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=REPO_ROOT, start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while not self.running():
            if time.monotonic() > deadline:
                raise SupervisorError(f"supervisord did not start; see {self.log_path}")
            time.sleep(0.1)

    def _main_config(self) -> str:
        listener = shlex.join([sys.executable, "-m", "runners.stack.restart_listener", str(self.restarts_file)])
        return "\n".join([
            "[unix_http_server]",
            f"file={_escape(str(self.socket))}",
            "chmod=0700",
            "[supervisord]",
            f"logfile={_escape(str(self.log_path))}",
            f"pidfile={_escape(str(self.settings.run_dir / 'supervisord.pid'))}",
            f"childlogdir={_escape(str(self.settings.log_dir))}",
            "logfile_maxbytes=10MB",
            # Components on loopback are quick to restart; supervisord's own pause between tries grows from here.
            "minfds=4096",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
            "[supervisorctl]",
            f"serverurl=unix://{_escape(str(self.socket))}",
            "[eventlistener:restart-counter]",
            f"command={_escape(listener)}",
            f"directory={_escape(str(REPO_ROOT))}",
            "events=PROCESS_STATE_EXITED",
            "autorestart=true",
            f"stderr_logfile={_escape(str(self.settings.log_dir / 'restart-counter.log'))}",
            "[include]",
            f"files={_escape(str(self.programs_dir))}/*.conf",
            "",
        ])

    def shutdown_if_idle(self) -> None:
        """Stop supervisord when it supervises no component any more (and wait until it is gone)."""
        if not self.running() or self.programs():
            return
        self.rpc().shutdown()
        deadline = time.monotonic() + 15
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.1)

    # --- programs ---
    def programs(self) -> list[str]:
        """Names of the components it knows (the restart listener is not one)."""
        return [p["name"] for p in self.rpc().getAllProcessInfo() if p["group"] != "restart-counter"]

    def info(self, name: str) -> dict[str, Any] | None:
        """supervisord's view of one component (state, pid, exit status), None when it is not known."""
        if not self.running():
            return None
        try:
            return self.rpc().getProcessInfo(name)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode == Faults.BAD_NAME:
                return None
            raise

    def start(self, program: Program) -> None:
        """(Re)write the component's section and start it without waiting for it."""
        self.ensure_running()
        path = self.programs_dir / f"{program.name}.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # its environment may hold secrets
        with os.fdopen(fd, "w") as out:
            out.write(program.config())
        rpc = self.rpc()
        if self.info(program.name) is not None:
            rpc.removeProcessGroup(program.name)
        rpc.reloadConfig()
        rpc.addProcessGroup(program.name)
        rpc.startProcess(program.name, False)

    def stop(self, name: str) -> None:
        """Stop the component (its whole process group) and forget it."""
        if self.info(name) is None:
            return
        rpc = self.rpc()
        try:
            rpc.stopProcess(name, True)
        except xmlrpc.client.Fault as fault:
            if fault.faultCode != Faults.NOT_RUNNING:
                raise
        rpc.removeProcessGroup(name)
        (self.programs_dir / f"{name}.conf").unlink(missing_ok=True)

    def restarts(self) -> dict[str, int]:
        """Unexpected exits (each followed by an automatic restart) per component since the stack root was made."""
        try:
            return json.loads(self.restarts_file.read_text())
        except (OSError, ValueError):
            return {}

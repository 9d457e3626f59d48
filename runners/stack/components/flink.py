"""Apache Flink: a standalone session cluster (a JobManager, one or more TaskManagers) from the pyflink wheel's
scripts."""

from __future__ import annotations

import importlib.util
import os
import sysconfig
from abc import abstractmethod
from pathlib import Path
from typing import Any

import httpx
import yaml

from pipelines import cluster
from runners.stack.components.base import VENV_BIN, Component, ComponentError, quietly
from runners.stack.settings import StackSettings
from transforms.settings import REPO_ROOT, Settings


def flink_home() -> Path:
    """FLINK_HOME of the installed apache-flink wheel (found without importing pyflink)."""
    spec = importlib.util.find_spec("pyflink")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("apache-flink (pyflink) is not installed in this environment")
    return Path(spec.origin).parent


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


REPORTER = "prom"
REPORTER_FACTORY = "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"


class FlinkProcess(Component):
    """One Flink daemon in the foreground; all of them share a config dir under <root>/flink."""

    script: str

    @property
    @abstractmethod
    def metrics_port(self) -> int:
        """Port of this process's Prometheus reporter."""

    @property
    def plugins_dir(self) -> Path:
        return self.flink_dir / "plugins"

    @property
    def flink_dir(self) -> Path:
        return self.settings.root / "flink"

    @property
    def conf_dir(self) -> Path:
        return self.flink_dir / "conf"

    @property
    def run_dir(self) -> Path:
        """Its pid file."""
        return self.flink_dir / "run"

    @property
    def daemon_log_dir(self) -> Path:
        """Its log file (besides its console output, which the supervisor keeps)."""
        return self.flink_dir / "log"

    @property
    def url(self) -> str:
        return self.settings.flink_rest_url

    def config(self) -> dict[str, Any]:
        """The wheel's default config.yaml (it holds the JVM --add-opens flags) with the stack's values."""
        s = self.settings
        defaults = yaml.safe_load((flink_home() / "conf" / "config.yaml").read_text()) or {}
        python = str(VENV_BIN / "python")
        return _flatten(defaults) | {
            "jobmanager.rpc.address": s.host,
            "jobmanager.rpc.port": s.flink_rpc_port,
            "jobmanager.bind-host": s.host,
            "jobmanager.memory.process.size": s.flink_jobmanager_memory,
            "taskmanager.bind-host": s.host,
            "taskmanager.host": s.host,
            "taskmanager.memory.process.size": s.flink_taskmanager_memory,
            "taskmanager.numberOfTaskSlots": s.flink_slots,
            # With several TaskManagers, a job's subtasks go to the one with the most free slots, so its parallel
            # instances (and the keyed state they hold) are spread over the TaskManagers rather than packed.
            "taskmanager.load-balance.mode": "slots",
            "rest.address": s.host,
            "rest.bind-address": s.host,
            "rest.port": s.flink_rest_port,
            # The default 10 s is too short for a TaskManager's RPC system on a busy 2-core machine (seen failing).
            "pekko.startup-timeout": "60 s",
            "io.tmp.dirs": str(self.flink_dir / "tmp"),
            "execution.checkpointing.dir": (self.flink_dir / "checkpoints").as_uri(),
            "execution.checkpointing.savepoint-dir": (self.flink_dir / "savepoints").as_uri(),
            # Python UDF workers use the venv's interpreter, whichever execution mode a job picks.
            "python.executable": python,
            "python.client.executable": python,
            # One machine, loopback: a lost JobManager or TaskManager is noticed in seconds, not the default 50 s,
            # so the old job's orphaned tasks stop soon after a JobManager dies.
            "heartbeat.interval": 2000,
            "heartbeat.timeout": 15000,
            # A task that ignores cancel (an operator stuck opening, see pipelines.start_watch) ends its TaskManager
            # after this long, not the default 3 minutes; the supervisor starts a fresh one.
            "task.cancellation.timeout": 30000,
            # Prometheus scrapes each process; the port is set per process on its command line.
            f"metrics.reporter.{REPORTER}.factory.class": REPORTER_FACTORY,
        } | cluster.CONFIG

    def prepare(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.flink_dir / "tmp").mkdir(exist_ok=True)
        for name in ("log4j-console.properties", "logback-console.xml"):
            (self.conf_dir / name).write_bytes((flink_home() / "conf" / name).read_bytes())
        (self.conf_dir / "config.yaml").write_text(yaml.safe_dump(self.config(), sort_keys=True))
        reporter = self.settings.flink_reporter_dir
        if not any(reporter.glob("flink-metrics-prometheus-*.jar")):
            raise ComponentError(self, f"no Prometheus reporter jar in {reporter}; run `imgrec stack install`")
        link = self.plugins_dir / "metrics-prometheus"
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or link.readlink() != reporter:
            link.unlink(missing_ok=True)
            link.symlink_to(reporter, target_is_directory=True)

    def dynamic_config(self) -> dict[str, Any]:
        """This process's own values (`-D` on its command line), beside the shared config file."""
        return {f"metrics.reporter.{REPORTER}.port": self.metrics_port}

    def command(self) -> list[str]:
        flags = [arg for key, value in self.dynamic_config().items() for arg in ("-D", f"{key}={value}")]
        return ["bash", str(flink_home() / "bin" / self.script), "start-foreground", *flags]

    @property
    def metrics_url(self) -> str:
        """Where Prometheus scrapes this process."""
        return f"{self.settings.host}:{self.metrics_port}"

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            FLINK_CONF_DIR=str(self.conf_dir),
            FLINK_LOG_DIR=str(self.daemon_log_dir),
            FLINK_PID_DIR=str(self.run_dir),
            FLINK_PLUGINS_DIR=str(self.plugins_dir),
            # flink-python on the cluster's class path, so thread-mode jobs can follow one another.
            FLINK_LIB_DIR=str(cluster.lib_dir(self.flink_dir / "lib")),
            PATH=os.pathsep.join([str(VENV_BIN), env.get("PATH", "/usr/bin:/bin")]),
        )
        env.pop("FLINK_HOME", None)
        return env

    def overview(self) -> dict[str, Any]:
        """GET /overview of the cluster's REST API."""
        response = httpx.get(f"{self.settings.flink_rest_url}/overview", timeout=2.0)
        response.raise_for_status()
        return response.json()


class FlinkJobManager(FlinkProcess):
    """The JobManager: REST API, web UI and job scheduling."""

    name = "flink-jobmanager"
    script = "jobmanager.sh"

    @property
    def metrics_port(self) -> int:
        return self.settings.flink_jobmanager_metrics_port

    def healthy(self) -> bool:
        return quietly(lambda: "flink-version" in self.overview())


class FlinkTaskManager(FlinkProcess):
    """A TaskManager: runs the job's operators, Python ones included.

    The stack runs `flink_taskmanagers` of them, numbered from 1: the first is `flink-taskmanager`, the others
    `flink-taskmanager-N`, each its own supervised process (killed and restarted alone) with its own resource id,
    Prometheus port, pid and temporary directories.
    """

    name = "flink-taskmanager"
    script = "taskmanager.sh"

    def __init__(self, settings: StackSettings, app_settings: Settings | None = None, index: int = 1) -> None:
        super().__init__(settings, app_settings)
        self.index = index
        if index > 1:
            self.name = f"{FlinkTaskManager.name}-{index}"

    @property
    def metrics_port(self) -> int:
        return self.settings.taskmanager_metrics_port(self.index)

    # Own pid and log dirs: the scripts number a daemon's log file by the daemons listed in its pid file, so
    # TaskManagers with pid files of their own would all write flink-*-taskexecutor-0-*.log in a shared log dir.
    @property
    def run_dir(self) -> Path:
        return self.flink_dir / "run" / self.name

    @property
    def daemon_log_dir(self) -> Path:
        return self.flink_dir / "log" / self.name

    def prepare(self) -> None:
        super().prepare()
        (self.flink_dir / "tmp" / self.name).mkdir(parents=True, exist_ok=True)

    def dynamic_config(self) -> dict[str, Any]:
        # A fixed resource id: a restarted TaskManager replaces its dead registration at once (no wait for the
        # heartbeat timeout), and the REST API tells which TaskManager runs what.
        return super().dynamic_config() | {"taskmanager.resource-id": self.name,
                                           "io.tmp.dirs": str(self.flink_dir / "tmp" / self.name)}

    def env(self) -> dict[str, str]:
        env = super().env()
        # Thread-mode Python operators run inside this JVM and import the project and the venv from here; the
        # site folder imports the job's modules once, as the interpreter starts.
        paths = [cluster.TASKMANAGER_SITE, REPO_ROOT, sysconfig.get_paths()["purelib"]]
        env["PYTHONPATH"] = os.pathsep.join(map(str, paths))
        return env

    def registered(self) -> bool:
        """Whether the JobManager lists this TaskManager (by its resource id)."""
        response = httpx.get(f"{self.settings.flink_rest_url}/taskmanagers", timeout=2.0)
        response.raise_for_status()
        return any(tm["id"] == self.name for tm in response.json()["taskmanagers"])

    def healthy(self) -> bool:
        return quietly(self.registered)

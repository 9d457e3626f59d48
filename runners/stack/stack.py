"""The local stack: its components in start order, started side by side and stopped in reverse."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from runners.stack.components.api import Api
from runners.stack.components.base import Component
from runners.stack.components.exporters import PipelineExporter, RedisExporter
from runners.stack.components.flink import FlinkJobManager, FlinkTaskManager
from runners.stack.components.job_keeper import JobKeeper
from runners.stack.components.kafka import Kafka
from runners.stack.components.postgres import Postgres
from runners.stack.components.prometheus import Prometheus
from runners.stack.components.redis import Redis
from runners.stack.components.triton import Triton
from runners.stack.settings import StackSettings
from transforms.settings import Settings

COMPONENT_TYPES: tuple[type[Component], ...] = (
    Postgres, Redis, Kafka, Triton, FlinkJobManager, FlinkTaskManager, JobKeeper, Api,
    RedisExporter, PipelineExporter, Prometheus,
)
# What watches the others: started last, once there is something to scrape.
MONITORING = (RedisExporter.name, PipelineExporter.name, Prometheus.name)
# Everything the API and the batch job depend on; the API starts once these are ready. A stack with more than one
# TaskManager has more (see `Stack.services`).
SERVICES = tuple(kind.name for kind in COMPONENT_TYPES if kind is not Api and kind.name not in MONITORING)


class Stack:
    """Every component of the stack, by name, in start order."""

    def __init__(self, settings: StackSettings | None = None, app_settings: Settings | None = None) -> None:
        self.settings = settings or StackSettings()
        self.app_settings = self.settings.service_settings(app_settings or Settings())
        components: list[Component] = []
        for kind in COMPONENT_TYPES:
            if kind is FlinkTaskManager:
                components += [FlinkTaskManager(self.settings, self.app_settings, index)
                               for index in range(1, self.settings.flink_taskmanagers + 1)]
            else:
                components.append(kind(self.settings, self.app_settings))
        self.components: dict[str, Component] = {component.name: component for component in components}
        self.notes: list[str] = []

    @property
    def services(self) -> list[str]:
        """Everything the API and the batch job depend on (every TaskManager), in start order."""
        return [name for name in self.components if name != Api.name and name not in MONITORING]

    def __getitem__(self, name: str) -> Component:
        try:
            return self.components[name]
        except KeyError:
            raise KeyError(f"unknown component {name!r}; known: {', '.join(self.components)}") from None

    def start(self, names: Iterable[str]) -> dict[str, float]:
        """Start the named components side by side; seconds from set-up to ready of each one started."""
        wanted = set(names)
        unknown = wanted - set(self.components)
        if unknown:
            raise KeyError(f"unknown components {sorted(unknown)}; known: {', '.join(self.components)}")
        chosen = [component for name, component in self.components.items() if name in wanted]
        began: dict[str, float] = {}
        for component in chosen:
            began_at = time.monotonic()
            if component.spawn():
                began[component.name] = began_at
        # Probe all of them in turn, so each one's time is its own and not its predecessors' too.
        deadline = time.monotonic() + self.settings.start_timeout_s
        timings: dict[str, float] = {}
        pending = list(chosen)
        while pending:
            for component in [c for c in pending if c.check_ready(deadline)]:
                pending.remove(component)
                if component.name in began:
                    timings[component.name] = time.monotonic() - began[component.name]
            if pending:
                time.sleep(0.25)
        for component in chosen:
            component.after_ready()
        return timings

    def submit_job(self) -> str:
        """Submit the batch job to the Flink cluster (a running one is kept) and wait until it is ready (its Kafka
        source holds every partition); its job id."""
        from pipelines.job_spec import JobOptions
        from pipelines.readiness import wait_ready
        from pipelines.submit import submit_job

        options = JobOptions(parallelism=self.settings.flink_parallelism, python_mode=self.settings.flink_python_mode)
        job_id = submit_job(self.app_settings, options=options)
        wait_ready(self.app_settings, timeout_s=self.settings.start_timeout_s)
        return job_id

    def up(self) -> dict[str, float]:
        """Start everything: the services, the batch job, the API, then monitoring; seconds taken by each."""
        timings = self.start(self.services)
        if self.settings.submit_job:
            began = time.monotonic()
            try:
                self.submit_job()
                timings["flink-job"] = time.monotonic() - began
            except Exception as exc:
                # The services still come up; the job can be submitted later with the `imgrec job` commands.
                self.notes.append(f"batch job not submitted: {exc}")
        return timings | self.start([Api.name]) | self.start(MONITORING)

    def stop(self, names: Iterable[str] | None = None) -> list[str]:
        """Stop the named components (all by default) in reverse order; the names that were running."""
        wanted = set(names) if names is not None else set(self.components)
        stopped = [c.name for c in reversed(self.components.values()) if c.name in wanted and c.stop()]
        if names is None:
            stopped += self._stop_strays()
        return stopped

    def _stop_strays(self) -> list[str]:
        """Stop what the supervisor runs beyond these components (TaskManagers of an earlier, larger setting)."""
        supervisor = next(iter(self.components.values())).supervisor
        if not supervisor.running():
            return []
        strays = [name for name in supervisor.programs() if name.startswith(f"{FlinkTaskManager.name}-")
                  and name not in self.components]
        for name in strays:
            supervisor.stop(name)
        supervisor.shutdown_if_idle()
        return strays

    def status(self) -> list[dict[str, Any]]:
        """One object per component: name, pid, url, healthy."""
        return [component.status() for component in self.components.values()]

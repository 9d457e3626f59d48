"""Settings of the local stack of real services; every field is an `IMGREC_STACK_*` environment variable.

Default ports sit away from each service's usual one so the stack never collides with a system-wide
PostgreSQL, Redis or Kafka on the same machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from transforms.settings import REPO_ROOT, Settings


class StackSettings(BaseSettings):
    """Where the stack lives, its ports and its readiness timeouts."""

    model_config = SettingsConfigDict(env_prefix="IMGREC_STACK_", env_file=".env", extra="ignore")

    root: Path = Field(REPO_ROOT / "var" / "stack", description="Data, logs, configs and pid files.")
    cache_dir: Path = Field(
        Path.home() / ".cache" / "imgrec", description="Downloaded jars (outside the work tree, survives clean)."
    )
    host: str = Field("127.0.0.1", description="Address every service binds to.")

    postgres_port: int = Field(15432, description="PostgreSQL port.")
    postgres_user: str = Field("postgres", description="Database superuser (trust auth on loopback).")
    postgres_db: str = Field("imgrec", description="Database created for the service.")
    postgres_os_user: str = Field(
        "postgres", description="Unprivileged OS user that runs PostgreSQL when the stack is started as root."
    )
    postgres_bin_dir: Path | None = Field(None, description="PostgreSQL binaries (default: newest in /usr/lib).")
    postgres_fsync: bool = Field(
        True, description="fsync on (off: a faster throw-away instance that can lose acknowledged commits on a crash)."
    )

    redis_port: int = Field(16379, description="Redis port.")
    redis_aof: bool = Field(False, description="Turn on Redis AOF persistence (off: pure cache).")
    redis_maxmemory: str = Field(
        "512mb", description="Redis memory cap; past it the least recently used keys are evicted (allkeys-lru)."
    )

    kafka_version: str = Field("4.1.1", description="Apache Kafka broker version resolved from Maven Central.")
    kafka_port: int = Field(19092, description="Kafka broker (client) port.")
    kafka_controller_port: int = Field(19093, description="Kafka KRaft controller port.")
    kafka_heap: str = Field("512m", description="Kafka JVM heap (-Xmx).")

    triton_http_port: int = Field(18000, description="Triton HTTP port.")
    triton_grpc_port: int = Field(18001, description="Triton gRPC port (IMGREC_TRITON_URL).")
    triton_metrics_port: int = Field(18002, description="Triton Prometheus metrics port.")
    triton_exit_timeout_s: int = Field(3, description="Triton --exit-timeout-secs (stop does not hang on clients).")
    triton_repository: Path | None = Field(
        None, description="Model repository to serve (default: generated from the registry under root)."
    )

    flink_rest_port: int = Field(18081, description="Flink REST API and web UI port.")
    flink_rpc_port: int = Field(16123, description="Flink JobManager RPC port.")
    flink_metrics_port: int = Field(
        18085, description="Prometheus metrics of the batch job's Python workers (in the TaskManager)."
    )
    flink_taskmanagers: int = Field(
        1, ge=1, description="TaskManagers of the session cluster, each its own supervised process "
        "(flink-taskmanager, flink-taskmanager-2, ...) with its own ports and directories."
    )
    flink_parallelism: int = Field(
        1, ge=1, description="Parallelism of the batch job the stack submits: its Kafka source, keyed state and "
        "sinks split into this many subtasks, spread over the TaskManagers."
    )
    flink_python_mode: Literal["thread", "process"] = Field(
        "thread", description="How the batch job runs its Python operators: inside the TaskManager JVM (thread, "
        "the fastest measured here) or in Python worker processes (process)."
    )
    flink_slots: int = Field(2, description="Task slots of each TaskManager.")
    flink_jobmanager_memory: str = Field("1024m", description="JobManager process memory.")
    flink_taskmanager_memory: str = Field("2048m", description="TaskManager process memory.")
    flink_jobmanager_metrics_port: int = Field(18091, description="Flink JobManager Prometheus reporter port.")
    flink_taskmanager_metrics_port: int = Field(
        18092, description="Flink TaskManager Prometheus reporter port (the first TaskManager's)."
    )
    flink_extra_taskmanager_metrics_port: int = Field(
        18095, description="Prometheus reporter port of the second TaskManager; a third uses the next port, and so on."
    )

    prometheus_port: int = Field(18090, description="Prometheus web UI and API port.")
    prometheus_scrape_interval: str = Field(
        "15s", description="How often Prometheus scrapes every target (and evaluates the rules)."
    )
    prometheus_retention: str = Field("7d", description="How long Prometheus keeps samples.")
    redis_exporter_port: int = Field(18093, description="Redis exporter (prometheus-redis-exporter) port.")
    pipeline_exporter_port: int = Field(18094, description="Pipeline exporter port (Kafka lag, open batches).")

    api_port: int = Field(18080, description="Port of the API started by the stack.")
    submit_job: bool = Field(True, description="Submit the batch job to Flink during `stack up`.")

    # A JVM (Kafka, Flink) on a 2-core machine shared with other stacks took over 120 s to start; quiet, ~10 s.
    start_timeout_s: float = Field(300.0, description="Longest wait for one component to become ready.")
    stop_timeout_s: float = Field(30.0, description="Longest wait for one component to stop before SIGKILL.")

    @classmethod
    def port_fields(cls) -> list[str]:
        """Names of every port setting (to give a private stack free ports)."""
        return [name for name in cls.model_fields if name.endswith("_port")]

    @property
    def run_dir(self) -> Path:
        """Pid files."""
        return self.root / "run"

    @property
    def log_dir(self) -> Path:
        """One log file per component."""
        return self.root / "logs"

    @property
    def kafka_jars_dir(self) -> Path:
        """The broker's jars for the configured version."""
        return self.cache_dir / f"kafka-{self.kafka_version}" / "jars"

    @property
    def kafka_tools_dir(self) -> Path:
        """Kafka's command-line tools (console producer and consumer) for the configured version."""
        return self.cache_dir / f"kafka-{self.kafka_version}" / "tools"

    @property
    def kafka_bin_dir(self) -> Path:
        """`kafka-console-producer.sh` and `kafka-console-consumer.sh`, as in the Kafka distribution's bin/."""
        return self.cache_dir / f"kafka-{self.kafka_version}" / "bin"

    @property
    def flink_reporter_dir(self) -> Path:
        """Flink's Prometheus reporter plugin (resolved by `imgrec stack install`)."""
        return self.cache_dir / "flink-metrics-prometheus"

    @property
    def prometheus_url(self) -> str:
        """Prometheus web UI and HTTP API."""
        return f"http://{self.host}:{self.prometheus_port}"

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL of the stack's database."""
        return f"postgresql+psycopg://{self.postgres_user}@{self.host}:{self.postgres_port}/{self.postgres_db}"

    @property
    def redis_url(self) -> str:
        """Redis URL."""
        return f"redis://{self.host}:{self.redis_port}/0"

    @property
    def kafka_bootstrap(self) -> str:
        """Kafka bootstrap servers."""
        return f"{self.host}:{self.kafka_port}"

    @property
    def triton_url(self) -> str:
        """Triton gRPC endpoint, host:port."""
        return f"{self.host}:{self.triton_grpc_port}"

    @property
    def triton_http_url(self) -> str:
        """Triton HTTP endpoint."""
        return f"http://{self.host}:{self.triton_http_port}"

    @property
    def triton_metrics_url(self) -> str:
        """Triton Prometheus metrics."""
        return f"http://{self.host}:{self.triton_metrics_port}/metrics"

    @property
    def triton_repository_dir(self) -> Path:
        """The model repository Triton serves, which the model lifecycle rewrites."""
        return self.triton_repository or self.root / "triton" / "models"

    @property
    def flink_rest_url(self) -> str:
        """Flink REST API and web UI."""
        return f"http://{self.host}:{self.flink_rest_port}"

    def taskmanager_metrics_port(self, index: int) -> int:
        """Prometheus reporter port of TaskManager `index` (1-based)."""
        if index == 1:
            return self.flink_taskmanager_metrics_port
        return self.flink_extra_taskmanager_metrics_port + index - 2

    @property
    def flink_metrics_url(self) -> str:
        """Prometheus metrics of the batch job's Python workers."""
        return f"http://{self.host}:{self.flink_metrics_port}/metrics"

    @property
    def api_url(self) -> str:
        """The API started by the stack."""
        return f"http://{self.host}:{self.api_port}"

    def service_env(self) -> dict[str, str]:
        """The `IMGREC_*` settings that point the service, the CLI or a client at this stack."""
        return {
            "IMGREC_DATABASE_URL": self.database_url,
            "IMGREC_REDIS_URL": self.redis_url,
            "IMGREC_TRITON_URL": self.triton_url,
            "IMGREC_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "IMGREC_FLINK_REST_URL": self.flink_rest_url,
            "IMGREC_TRITON_REPOSITORY": str(self.triton_repository_dir),
        }

    def service_settings(self, base: Settings) -> Settings:
        """`base` with every port pointed at this stack."""
        return base.model_copy(
            update={
                "database_url": self.database_url,
                "redis_url": self.redis_url,
                "triton_url": self.triton_url,
                "kafka_bootstrap": self.kafka_bootstrap,
                "flink_rest_url": self.flink_rest_url,
                "batch_metrics_port": self.flink_metrics_port,
                "triton_repository": self.triton_repository_dir,
            }
        )

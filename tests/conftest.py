"""Session fixtures that start the real services a test needs, lazily, on free ports; the layers of the suite.

A test that asks for `redis_url` waits only for Redis. Everything started here runs under a temporary
stack root and is stopped at the end of the session. With IMGREC_STACK_REUSE=1 the fixtures use the
stack already running from `imgrec stack up` (IMGREC_STACK_* settings) and start nothing.

Layers (folders): `tests/unit` (no service, no built model, no child process), `tests/embedded` (the built
models in process: ONNX Runtime, SQLite, worker threads) and `tests/stack` (real services). A test that uses a
fixture of `SERVICE_FIXTURES` is marked `stack` at collection, and the folders are held to their layer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from pipelines.job_spec import JobOptions
from pipelines.readiness import wait_ready
from pipelines.submit import JobError, cancel_job, submit_job
from runners.stack.ports import free_ports
from runners.stack.settings import StackSettings
from runners.stack.stack import Stack
from tests.served import ServedApi, serve_embedded
from transforms.adapters.redis import redis_client
from transforms.adapters.sql import SqlStore
from transforms.model_registry import load_registry
from transforms.settings import Settings

PORT_FIELDS = StackSettings.port_fields()


# Fixtures that start real services; every fixture built on them (postgres_url, job, ...) counts too.
SERVICE_FIXTURES = frozenset({"test_stack", "stack_root", "private_redis"})
LAYERS = ("unit", "embedded", "stack")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark what uses a service `stack`; refuse a unit or embedded test that does, or a stack test that does not."""
    misplaced = []
    for item in items:
        services = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if services:
            item.add_marker(pytest.mark.stack)
        layer = next((part for part in item.path.relative_to(config.rootpath).parts[1:2] if part in LAYERS), None)
        if (layer == "stack") != bool(services) and layer is not None:
            misplaced.append(f"{item.nodeid} ({', '.join(sorted(services)) or 'no service fixture'})")
    if misplaced:
        raise pytest.UsageError("tests outside their layer's folder:\n  " + "\n  ".join(misplaced))


STUCK_START_S = 60
RECOVERY = "recovery"  # a test's user property: one row of the recovery table printed at the end of the session


# What the session stack's job keeper found stuck (filled when the stack stops, reported in the terminal summary).
STUCK_STARTS: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The recovery time of each fault the fault-injection suite caused, as one table, and every job start the
    keeper restarted as stuck (both shown even with -q)."""
    if STUCK_STARTS:
        terminalreporter.write_sep("=", f"job starts the keeper found stuck and restarted: {len(STUCK_STARTS)}")
        for line in STUCK_STARTS:
            terminalreporter.write_line(line)
    rows = [
        {"outcome": report.outcome, **value}
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        if getattr(report, "when", "") == "call"
        for name, value in report.user_properties
        if name == RECOVERY
    ]
    if not rows:
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    terminalreporter.write_sep("=", "fault recovery (seconds from the fault)")
    terminalreporter.write_line(" | ".join(columns))
    for row in rows:
        terminalreporter.write_line(" | ".join(str(row.get(column, "")) for column in columns))


class TestStack:
    """Starts components on first use and remembers what it started, to stop exactly that."""

    __test__ = False

    def __init__(self, stack: Stack, reuse: bool) -> None:
        self.stack = stack
        self.reuse = reuse
        self.started: list[str] = []
        self.timings: dict[str, float] = {}

    def ensure(self, *names: str) -> StackSettings:
        """Make sure the named components run (starting those that do not), then return the settings."""
        missing = [name for name in names if name not in self.started]
        if missing:
            if self.reuse:
                unhealthy = [n for n in missing if not self.stack[n].healthy()]
                if unhealthy:
                    pytest.fail(f"IMGREC_STACK_REUSE=1 but not running: {unhealthy}; run `imgrec stack up`")
                self.started.extend(missing)
            else:
                # Recorded first, so a component that fails half-way is still stopped at the end.
                self.started.extend(missing)
                self.timings.update(self.stack.start(missing))
        return self.stack.settings

    def close(self) -> None:
        """Stop what this session started."""
        if not self.reuse:
            self.stack.stop(self.started)


@pytest.fixture(scope="session")
def test_stack() -> Iterator[TestStack]:
    """The session's stack: a fresh one on free ports under a temporary root, or the running one."""
    if os.environ.get("IMGREC_STACK_REUSE") == "1":
        stack_env = TestStack(Stack(StackSettings()), reuse=True)
        yield stack_env
        return
    # The stack's job keeper restarts a job stuck opening its tasks after this long (the default 120 s would leave a
    # stalled start to outlast the job fixture's wait); the fault suite causes such a stall.
    os.environ["IMGREC_JOB_STUCK_START_S"] = str(STUCK_START_S)
    root = Path(tempfile.mkdtemp(prefix="imgrec-stack-"))
    # PostgreSQL runs as an unprivileged user when tests run as root; it must traverse the root.
    root.chmod(0o755)
    ports = dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True))
    # Scraped every 2 s, so rates and rules have samples within a test's few seconds (1 s, the scrape timeout too,
    # is too short for a loaded 2-core machine).
    settings = StackSettings(root=root, prometheus_scrape_interval="2s", **ports)
    base = Settings()
    app_settings = base.model_copy(update={"var_dir": root / "var", "model_store": base.resolved_model_store})
    stack_env = TestStack(Stack(settings, app_settings), reuse=False)
    try:
        yield stack_env
    finally:
        stack_env.close()
        if stack_env.timings:
            print("\nstack start-up seconds:", {k: round(v, 1) for k, v in stack_env.timings.items()})
        STUCK_STARTS.extend(_stuck_starts(stack_env))  # read before the logs go; the fault suite causes one
        shutil.rmtree(root, ignore_errors=True)


def _stuck_starts(stack_env: TestStack) -> list[str]:
    log = stack_env.stack["flink-job-keeper"].log_path
    if not log.exists():
        return []
    return [line for line in log.read_text(errors="replace").splitlines() if "tasks still opening after" in line]


@pytest.fixture(autouse=True)
def no_stuck_job_start(request: pytest.FixtureRequest) -> Iterator[None]:
    """A stack test during which the job keeper finds a job start stuck fails, unless it causes one on purpose
    (`stuck_start`): a real hang must fail the suite, not only be printed in its summary."""
    if "test_stack" not in request.fixturenames:
        yield
        return
    stack_env: TestStack = request.getfixturevalue("test_stack")
    before = len(_stuck_starts(stack_env))
    yield
    found = _stuck_starts(stack_env)[before:]
    if found and request.node.get_closest_marker("stuck_start") is None:
        pytest.fail("the job keeper found a job start stuck during this test (the hang may have begun in the test "
                    f"before): {found}", pytrace=False)


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A root for a stack of the test's own, which the unprivileged PostgreSQL user can traverse (pytest's
    tmp_path is 0700); a test that asks for it starts services of its own."""
    path = Path(tempfile.mkdtemp(prefix="imgrec-stack-own-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(test_stack: TestStack) -> str:
    """SQLAlchemy URL (postgresql+psycopg://...) of a real PostgreSQL with the schema migrated."""
    return test_stack.ensure("postgres").database_url


@pytest.fixture(scope="session")
def redis_url(test_stack: TestStack) -> str:
    """redis:// URL of a real Redis."""
    return test_stack.ensure("redis").redis_url


@pytest.fixture
def redis_conn(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's real Redis."""
    conn = redis_client(redis_url)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(test_stack: TestStack) -> str:
    """Bootstrap servers of a real Kafka broker with the batch and dead-letter topics created."""
    return test_stack.ensure("kafka").kafka_bootstrap


@pytest.fixture(scope="session")
def triton_url(test_stack: TestStack) -> str:
    """gRPC host:port of a real Triton server serving the project's model repository."""
    return test_stack.ensure("triton").triton_url


@pytest.fixture(scope="session")
def flink_rest_url(test_stack: TestStack) -> str:
    """REST URL of a real Flink session cluster (JobManager + one TaskManager)."""
    return test_stack.ensure("flink-jobmanager", "flink-taskmanager").flink_rest_url


@pytest.fixture(scope="session")
def stack_settings(test_stack: TestStack) -> Settings:
    """Service settings pointing at every real service (started side by side on first use).

    Unless reusing a stack, `var_dir` is the test stack's own, so blobs and Flink checkpoints never mix
    with a developer's; the model store stays the built one.
    """
    test_stack.ensure(*test_stack.stack.services)
    return test_stack.stack.app_settings


# A password in the job's database URL (the stack's PostgreSQL trusts loopback and ignores it): it must never show
# on a command line, in the job's arguments or in the Flink UI.
JOB_SECRET = "job-secret-3f9c1e"
FLINK_PROCESSES = ("flink-jobmanager", "flink-taskmanager", "flink-job-keeper")


@pytest.fixture(scope="module")
def job(test_stack: TestStack, stack_settings: Settings) -> Iterator[tuple[Settings, SqlStore]]:
    """The job, submitted fresh (short checkpoint interval so a cancel has one to resume from). A job that does not
    get ready fails the fixture with the Flink processes' last log lines, since the stack and its logs are removed at
    the end of the session."""
    url = stack_settings.resolved_database_url.replace("://postgres@", f"://postgres:{JOB_SECRET}@")
    settings = stack_settings.model_copy(update={"micro_batch_max_wait_ms": 50, "database_url": url})
    store = SqlStore.from_url(settings.resolved_database_url)
    store.registry.seed(load_registry())
    cancel_job(settings)
    submit_job(settings, fresh=True, options=JobOptions(checkpoint_interval_ms=1000))
    try:
        wait_ready(settings, timeout_s=StackSettings().start_timeout_s)  # every task up: slow on a loaded machine
    except JobError as exc:
        logs = "".join(f"\n--- {name} ---\n{test_stack.stack[name].log_tail(80)}" for name in FLINK_PROCESSES)
        raise JobError(f"{exc}{logs}") from exc
    yield settings, store
    cancel_job(settings)
    store.close()


@pytest.fixture(scope="session")
def served_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApi]:
    """One `imgrec serve` process (embedded default) for the whole session."""
    with serve_embedded(tmp_path_factory.mktemp("served")) as api:
        yield api

"""`imgrec stack install`: what the stack needs on this machine, each step skipped when already done."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from runners.stack.settings import StackSettings

HERE = Path(__file__).resolve().parent
KAFKA_POM = HERE / "kafka-pom.xml"
KAFKA_TOOLS_POM = HERE / "kafka-tools-pom.xml"
# The Kafka distribution's bin/ scripts of the same names run these classes (through kafka-run-class.sh).
KAFKA_CONSOLE_TOOLS = {
    "kafka-console-producer.sh": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-console-consumer.sh": "org.apache.kafka.tools.consumer.ConsoleConsumer",
}
FLINK_METRICS_POM = HERE / "flink-metrics-pom.xml"
APT_PACKAGES = {
    "postgresql": "/usr/lib/postgresql/*/bin/initdb",
    "redis-server": "/usr/bin/redis-server",
    "prometheus": "/usr/bin/prometheus",
    "prometheus-redis-exporter": "/usr/bin/prometheus-redis-exporter",
    "libjemalloc2": "/usr/lib/*/libjemalloc.so.2",  # Triton's allocator (see components/triton.py)
}


def flink_version() -> str:
    """The version of the installed apache-flink wheel (its reporter plugin must match it)."""
    return importlib.metadata.version("apache-flink")


def missing_apt_packages() -> list[str]:
    """Debian packages whose binaries are not installed yet."""
    return [pkg for pkg, probe in APT_PACKAGES.items() if not list(Path("/").glob(probe.lstrip("/")))]


def ensure_system_packages(say: Callable[[str], None]) -> None:
    """apt-get install PostgreSQL, Redis, Prometheus, its Redis exporter and jemalloc where missing (update only
    then)."""
    missing = missing_apt_packages()
    if not missing:
        say(f"{', '.join(APT_PACKAGES)}: already installed")
        return
    apt_install(missing, say)


def apt_install(packages: list[str], say: Callable[[str], None]) -> None:
    """apt-get update + install of Debian packages (through sudo when not root)."""
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    say(f"apt-get install {' '.join(packages)}")
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages],
                   check=True, env=env)


def maven_jars(pom: Path, properties: dict[str, str], target: Path, marker: str, say: Callable[[str], None]) -> Path:
    """The runtime jars `pom` resolves from Maven Central, copied once into `target` (done when `marker` is there)."""
    if (target / marker).exists():
        say(f"{marker}: cached in {target}")
        return target
    if shutil.which("mvn") is None:
        raise FileNotFoundError(f"Maven (mvn) is needed to fetch {marker}: apt-get install maven")
    say(f"{marker}: resolving from Maven Central into {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Resolve into a scratch dir and rename, so an interrupted download never looks complete.
    scratch = Path(tempfile.mkdtemp(dir=target.parent, prefix="jars-"))
    try:
        subprocess.run(
            ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(pom),
             *(f"-D{key}={value}" for key, value in properties.items()), "dependency:copy-dependencies",
             f"-DoutputDirectory={scratch}", "-DincludeScope=runtime"],
            check=True,
        )
        shutil.rmtree(target, ignore_errors=True)
        scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def ensure_kafka_jars(settings: StackSettings, say: Callable[[str], None] = print) -> Path:
    """The Kafka broker's jars from Maven Central, resolved once per version into the cache."""
    version = settings.kafka_version
    return maven_jars(KAFKA_POM, {"kafka.version": version}, settings.kafka_jars_dir, f"kafka_2.13-{version}.jar", say)


def ensure_kafka_tools(settings: StackSettings, say: Callable[[str], None] = print) -> Path:
    """Kafka's console producer and consumer: their jars from Maven Central (once per version), and the
    distribution's `bin/kafka-console-{producer,consumer}.sh` as small scripts in `kafka_bin_dir`."""
    version = settings.kafka_version
    jars = maven_jars(KAFKA_TOOLS_POM, {"kafka.version": version}, settings.kafka_tools_dir,
                      f"kafka-tools-{version}.jar", say)
    settings.kafka_bin_dir.mkdir(parents=True, exist_ok=True)
    for script, main_class in KAFKA_CONSOLE_TOOLS.items():
        path, text = settings.kafka_bin_dir / script, f'#!/bin/sh\nexec java -cp "{jars}/*" {main_class} "$@"\n'
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            path.chmod(0o755)
    return settings.kafka_bin_dir


def ensure_flink_reporter(settings: StackSettings, say: Callable[[str], None] = print) -> Path:
    """Flink's Prometheus metrics reporter (a plugin folder), resolved once per Flink version into the cache."""
    version = flink_version()
    return maven_jars(FLINK_METRICS_POM, {"flink.version": version}, settings.flink_reporter_dir,
                      f"flink-metrics-prometheus-{version}.jar", say)


def ensure_connector_jars(settings: StackSettings, say: Callable[[str], None]) -> None:
    """The Flink Kafka connector jars the batch job loads (the pipelines package knows which)."""
    from pipelines.connector_jars import ensure_connector_jars as ensure

    jars = ensure(settings.cache_dir)
    say(f"flink kafka connector jars: {', '.join(jar.name for jar in jars)}")


def install(settings: StackSettings, say: Callable[[str], None] = print) -> None:
    """Everything the stack needs; idempotent."""
    ensure_system_packages(say)
    ensure_kafka_jars(settings, say)
    ensure_kafka_tools(settings, say)
    ensure_flink_reporter(settings, say)
    ensure_connector_jars(settings, say)

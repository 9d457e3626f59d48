"""`imgrec stack install`: what the stack needs on this machine, each step skipped when already done."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from runners.stack.settings import StackSettings

HERE = Path(__file__).resolve().parent
KAFKA_POM = HERE / "kafka-pom.xml"
APT_PACKAGES = {"postgresql": "/usr/lib/postgresql/*/bin/initdb", "redis-server": "/usr/bin/redis-server"}


def missing_apt_packages() -> list[str]:
    """Debian packages whose binaries are not installed yet."""
    return [pkg for pkg, probe in APT_PACKAGES.items() if not list(Path("/").glob(probe.lstrip("/")))]


def ensure_system_packages(say: Callable[[str], None]) -> None:
    """apt-get install PostgreSQL and Redis where missing (apt-get update only when installing)."""
    missing = missing_apt_packages()
    if not missing:
        say("postgresql, redis-server: already installed")
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


def ensure_kafka_jars(settings: StackSettings, say: Callable[[str], None] = print) -> Path:
    """The Kafka broker's jars from Maven Central, resolved once per version into the cache."""
    jars = settings.kafka_jars_dir
    if (jars / f"kafka_2.13-{settings.kafka_version}.jar").exists():
        say(f"kafka {settings.kafka_version} jars: cached in {jars}")
        return jars
    if shutil.which("mvn") is None:
        raise FileNotFoundError("Maven (mvn) is needed to fetch the Kafka broker: apt-get install maven")
    say(f"kafka {settings.kafka_version} jars: resolving from Maven Central into {jars}")
    jars.parent.mkdir(parents=True, exist_ok=True)
    # Resolve into a scratch dir and rename, so an interrupted download never looks complete.
    scratch = Path(tempfile.mkdtemp(dir=jars.parent, prefix="jars-"))
    try:
        subprocess.run(
            ["mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(KAFKA_POM),
             f"-Dkafka.version={settings.kafka_version}", "dependency:copy-dependencies",
             f"-DoutputDirectory={scratch}", "-DincludeScope=runtime"],
            check=True,
        )
        shutil.rmtree(jars, ignore_errors=True)
        scratch.rename(jars)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return jars


def ensure_connector_jars(settings: StackSettings, say: Callable[[str], None]) -> None:
    """The Flink Kafka connector jars the batch job loads (the pipelines package knows which)."""
    from pipelines.connector_jars import ensure_connector_jars as ensure

    jars = ensure(settings.cache_dir)
    say(f"flink kafka connector jars: {', '.join(jar.name for jar in jars)}")


def install(settings: StackSettings, say: Callable[[str], None] = print) -> None:
    """Everything the stack needs; idempotent."""
    ensure_system_packages(say)
    ensure_kafka_jars(settings, say)
    ensure_connector_jars(settings, say)

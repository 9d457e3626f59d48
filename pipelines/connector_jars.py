"""The Flink Kafka connector jars the job loads, resolved once from Maven Central into a local cache."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

POM = Path(__file__).with_name("connector-pom.xml")
CONNECTOR_VERSION = "4.0.1-2.0"
DEFAULT_CACHE = Path.home() / ".cache" / "imgrec"


class ConnectorJarsError(RuntimeError):
    """Maven could not resolve the connector (no `mvn`, no network to Maven Central)."""


def connector_dir(cache_dir: Path | None = None) -> Path:
    """Where the jars of this connector version live."""
    return (cache_dir or DEFAULT_CACHE) / f"flink-connector-kafka-{CONNECTOR_VERSION}"


def ensure_connector_jars(cache_dir: Path | None = None) -> list[Path]:
    """The connector jars, downloaded on first use; idempotent and instant when cached."""
    target = connector_dir(cache_dir)
    jars = sorted(target.glob("*.jar"))
    if jars:
        return jars
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ConnectorJarsError("`mvn` is needed once to fetch the Flink Kafka connector (apt-get install maven).")
    # Resolve into a scratch folder, then rename: a half-finished download never looks cached.
    scratch = target.with_name(target.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    command = [
        mvn, "-q", "-B", "-f", str(POM), f"-Dconnector.version={CONNECTOR_VERSION}",
        "dependency:copy-dependencies", f"-DoutputDirectory={scratch}", "-DincludeScope=runtime",
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConnectorJarsError(f"mvn failed ({done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)
    return sorted(target.glob("*.jar"))

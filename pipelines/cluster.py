"""What a session cluster needs so the job's Python operators run in thread mode, job after job.

Thread mode embeds CPython in the TaskManager JVM through pemja. pemja's native library can be loaded by one
class loader only, so when `flink-python` arrives with each job (a new user class loader per job) the second job
on the same TaskManager fails with `NoSuchFieldException: loadedLibraryNames`. Putting `flink-python` on the
cluster's own class path and loading `pemja.` parent-first makes every job share the one loaded library.
"""

from __future__ import annotations

from pathlib import Path

import pyflink

FLINK_HOME = Path(pyflink.__file__).parent

CONFIG = {"classloader.parent-first-patterns.additional": "pemja."}
# First on a TaskManager's PYTHONPATH: its sitecustomize imports the job's modules as the embedded interpreter starts.
TASKMANAGER_SITE = Path(__file__).with_name("taskmanager_site")


def lib_dir(target: Path) -> Path:
    """A FLINK_LIB_DIR: links to the wheel's lib/ jars plus opt/flink-python; idempotent."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {jar.name: jar for jar in [*FLINK_HOME.glob("lib/*.jar"), *FLINK_HOME.glob("opt/flink-python-*.jar")]}
    for stale in target.glob("*.jar"):
        if stale.name not in wanted:
            stale.unlink()
    for name, jar in wanted.items():
        link = target / name
        if not link.exists():
            link.symlink_to(jar)
    return target

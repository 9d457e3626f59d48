"""Imports the batch job's modules once per TaskManager, while CPython starts inside its JVM (thread mode).

Only the TaskManager has this folder on its PYTHONPATH. pemja starts the interpreter once per JVM, on one thread,
before any Python operator runs, and Python's `site` imports this module then. Without it, every operator of a
fresh TaskManager imports the same dependency graph (SQLAlchemy, pydantic, NumPy, the clients) at the same moment
from its own thread while it unpickles its function, and concurrent first imports race: a module can be seen
half-initialised by another thread. Importing them here, single-threaded, leaves the operators only cached modules.

Python processes the TaskManager starts (pemja asks `python -c ...` where its libraries are, and parses the answer)
see this folder too: for them this module does nothing and prints nothing.
"""

from __future__ import annotations

import os
import sys
import time


def _inside_a_jvm() -> bool:
    try:
        return os.path.basename(os.path.realpath("/proc/self/exe")).startswith("java")
    except OSError:
        return False


if _inside_a_jvm():
    _started = time.monotonic()
    try:
        import pipelines.operators  # noqa: F401  (the job's functions and, through them, everything they use)
    except Exception as exc:  # the operators' own import fails with the real error, in the job
        print(f"imgrec: the batch job's modules were not imported at interpreter start: {exc!r}", file=sys.stderr)
    else:
        print(f"imgrec: imported the batch job's modules in {time.monotonic() - _started:.1f} s at interpreter "
              "start", file=sys.stderr)

"""Imports the batch job's modules once per TaskManager, while CPython starts inside its JVM (thread mode).

Only the TaskManager has this folder on its PYTHONPATH. pemja starts the interpreter once per JVM, on one thread,
before any Python operator runs, and Python's `site` imports this module then. Without it, every operator of a
fresh TaskManager imports the same dependency graph at the same moment from its own thread: PyFlink's runtime
(with Apache Beam and the Google clients it pulls in, some 1,400 modules) and the job's own modules (SQLAlchemy,
pydantic, NumPy, the clients) while it unpickles its function. Concurrent first imports race (a module can be seen
half-initialised by another thread), and a fresh TaskManager's operators were seen hanging for good in that step.
Importing them here, single-threaded, leaves the operators only cached modules, except PyFlink's few embedded-mode
modules, which need a pemja thread (`pemja.findClass`) and so cannot be imported before an operator runs.

Python processes the TaskManager starts (pemja asks `python -c ...` where its libraries are, and parses the answer)
see this folder too: for them this module does nothing and prints nothing.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

# What an operator's set-up imports, bar the modules that need pemja (pyflink.fn_execution.embedded and the like).
MODULES = (
    "pyflink.fn_execution.coders",
    "pyflink.fn_execution.datastream.operations",
    "pyflink.fn_execution.datastream.process.operations",
    "pyflink.fn_execution.table.operations",
    "pyflink.fn_execution.utils.operation_utils",
    "pipelines.operators",  # the job's functions and, through them, everything they use
)


def _inside_a_jvm() -> bool:
    try:
        return os.path.basename(os.path.realpath("/proc/self/exe")).startswith("java")
    except OSError:
        return False


if _inside_a_jvm():
    _started = time.monotonic()
    try:
        for _module in MODULES:
            importlib.import_module(_module)
    except Exception as exc:  # the operators' own import fails with the real error, in the job
        print(f"imgrec: the batch job's modules were not imported at interpreter start: {exc!r}", file=sys.stderr)
    else:
        print(f"imgrec: imported the batch job's modules in {time.monotonic() - _started:.1f} s at interpreter "
              "start", file=sys.stderr)

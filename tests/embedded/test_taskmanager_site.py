"""The TaskManager's site folder: Python processes the TaskManager starts must see no trace of it.

pemja runs `python -c ...` with the TaskManager's environment to find its libraries and parses what it prints; a
word more on that output and no Python operator can start (`NoSuchFieldException: loadedLibraryNames`).
"""

from __future__ import annotations

import os
import subprocess
import sys

from pipelines import cluster
from transforms.settings import REPO_ROOT


def test_a_python_process_with_the_taskmanagers_path_prints_only_its_own_output() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cluster.TASKMANAGER_SITE), str(REPO_ROOT)])}
    script = "import sys; print(sys.prefix); print('pipelines.operators' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60,
                          check=True)
    assert (done.stdout, done.stderr) == (f"{sys.prefix}\nFalse\n", "")

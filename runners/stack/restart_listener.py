"""supervisord event listener: counts each component's unexpected exits into a JSON file (`imgrec stack status`).

Run by supervisord itself (`[eventlistener:restart-counter]`, events PROCESS_STATE_EXITED); an exit that
supervisord did not ask for is a crash, and supervisord restarts the component after it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from supervisor import childutils


def count(path: Path, name: str) -> None:
    """Add one restart of `name` to the file (written whole, then renamed, so readers never see half of it)."""
    try:
        counts = json.loads(path.read_text())
    except (OSError, ValueError):
        counts = {}
    counts[name] = counts.get(name, 0) + 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(counts))
    tmp.replace(path)


def main(path: str) -> None:
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        event, _ = childutils.eventdata(payload + "\n")
        if headers["eventname"] == "PROCESS_STATE_EXITED" and event.get("expected") == "0":
            count(Path(path), event["processname"])
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])

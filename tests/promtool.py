"""promtool (Debian's prometheus package) on the project's rules and on dashboard queries."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from transforms.settings import REPO_ROOT

RULES = REPO_ROOT / "prometheus" / "rules.yml"
RULES_TESTS = REPO_ROOT / "prometheus" / "rules.test.yml"
DASHBOARDS = REPO_ROOT / "dashboards"


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool") or "/usr/bin/promtool"
    return subprocess.run([binary, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def panel_queries(path: Path) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of a committed dashboard."""
    board = json.loads(path.read_text())
    return [(panel["title"], target["expr"]) for panel in board["panels"] for target in panel["targets"]]


def queries_as_rules(queries: list[tuple[str, str]], path: Path) -> Path:
    """The queries written as recording rules, so `promtool check rules` parses each one."""
    rules = [{"record": f"panel:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
    return path

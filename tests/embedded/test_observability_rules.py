"""Prometheus rules (promtool check + unit tests) and dashboards as code (committed = generated, valid PromQL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.observability.dashboards import render
from runners.observability.panels import DASHBOARDS
from tests.promtool import DASHBOARDS as DASHBOARD_DIR
from tests.promtool import RULES, RULES_TESTS, panel_queries, promtool, queries_as_rules


def test_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_rules_unit_tests_pass() -> None:
    done = promtool("test", "rules", RULES_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda spec: spec.file)
def test_committed_dashboard_equals_the_generator(spec) -> None:
    committed = (DASHBOARD_DIR / spec.file).read_text()
    assert committed == render(spec), "run `python -m runners.observability.dashboards` and commit dashboards/"


@pytest.mark.parametrize("spec", DASHBOARDS, ids=lambda spec: spec.file)
def test_every_panel_query_is_valid_promql(spec, tmp_path: Path) -> None:
    queries = panel_queries(DASHBOARD_DIR / spec.file)
    assert len(queries) >= len(spec.panels)
    done = promtool("check", "rules", queries_as_rules(queries, tmp_path / "queries.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(queries)} rules found" in done.stdout


def test_a_broken_query_fails_the_check(tmp_path: Path) -> None:
    done = promtool("check", "rules", queries_as_rules([("broken", "sum(rate(x[5m])")], tmp_path / "q.yml"))
    assert done.returncode != 0

"""Prometheus on the session's stack: every target up, the rules evaluate, and every dashboard panel has data."""

from __future__ import annotations

import base64
import math
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from runners.observability import names
from runners.observability.panels import DASHBOARDS
from runners.stack.stack import MONITORING
from tests.api_helpers import photo_variants
from tests.conftest import TestStack
from tests.promtool import DASHBOARDS as DASHBOARD_DIR
from tests.promtool import panel_queries

pytestmark = pytest.mark.stack
SCENE = "scene-classification"
QUERIES = [(spec.file, title, expr) for spec in DASHBOARDS for title, expr in panel_queries(DASHBOARD_DIR / spec.file)]


class PrometheusApi:
    def __init__(self, url: str, began: float) -> None:
        self.url = url
        self.began = began  # when the test traffic started: panels are read from here on

    def get(self, path: str, **params: object) -> dict:
        response = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def targets_down(self, timeout_s: float) -> list[tuple[str, str, str]]:
        """Targets not (yet) scraped successfully, after waiting up to timeout_s for every one to be up."""
        deadline = time.monotonic() + timeout_s
        while True:
            targets = self.get("targets")["activeTargets"]
            down = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in targets if t["health"] != "up"]
            if not down or time.monotonic() > deadline:
                return down
            time.sleep(1)

    def wait_for_series(self, expr: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.get("query", query=expr)["result"]:
            assert time.monotonic() < deadline, f"Prometheus never saw {expr}"
            time.sleep(1)

    def finite_points(self, expr: str, start: float) -> int:
        """How many finite values the expression had over [start, now] (what a panel draws)."""
        data = self.get("query_range", query=expr, start=start, end=time.time(), step=1)
        return sum(math.isfinite(float(v)) for series in data["result"] for _, v in series["values"])


@pytest.fixture(scope="module")
def prometheus(job, test_stack: TestStack) -> Iterator[PrometheusApi]:
    """The stack with the API, the exporters and Prometheus, after sync and batch traffic through the API."""
    store = job[1]
    began = time.time()
    stack = test_stack.ensure("api", *MONITORING)
    api = stack.api_url
    headers = {"Authorization": f"Bearer {store.keys.create('observer')}"}
    prom = PrometheusApi(stack.prometheus_url, began)
    # Rates need a counter to move between two scrapes: every target is scraped once before any traffic, and the
    # sync traffic comes in two waves (a miss and a hit each) with a scrape between them.
    assert prom.targets_down(60) == []
    tag = uuid.uuid4().hex.encode()
    images = [base64.b64encode(img + tag).decode() for img in photo_variants(6)]

    def recognize(image: str) -> None:
        body = {"image_data": image, "model_id": SCENE}
        r = httpx.post(f"{api}/v1/recognize", json=body, headers=headers, timeout=60)
        assert r.status_code == 200, r.text

    for image in (images[0], images[0]):
        recognize(image)
    prom.wait_for_series(f'{names.CACHE_LOOKUPS}{{result="hit"}} > 0', 60)
    for image in (*images[1:3], *images[1:3]):
        recognize(image)
    items = [{"image_data": image, "model_id": SCENE} for image in images]
    r = httpx.post(f"{api}/v1/recognize/batch", json={"items": items}, headers=headers, timeout=60)
    assert r.status_code == 202, r.text
    batch_id = r.json()["batch_id"]
    deadline = time.monotonic() + 180
    while httpx.get(f"{api}/v1/recognize/batch/{batch_id}", headers=headers).json()["status"] in (
            "pending", "processing"):
        assert time.monotonic() < deadline, "batch not done"
        time.sleep(0.5)
    # Scrapes and rule evaluations run every 2 s; wait (bounded) until each panel has drawn something.
    deadline = time.monotonic() + 90
    while any(prom.finite_points(expr, began) == 0 for _, _, expr in QUERIES) and time.monotonic() < deadline:
        time.sleep(2)
    yield prom


def test_every_target_is_up(prometheus: PrometheusApi) -> None:
    # A scrape that times out on a loaded machine is retried 2 s later.
    assert prometheus.targets_down(30) == []
    targets = prometheus.get("targets")["activeTargets"]
    assert {t["labels"]["job"] for t in targets} == set(names.SCRAPE_JOBS)
    ups = {r["metric"]["instance"]: r["value"][1] for r in prometheus.get("query", query="up")["result"]}
    assert len(ups) == len(targets) == 6 and set(ups.values()) == {"1"}


def test_rules_are_loaded_and_evaluate_without_errors(prometheus: PrometheusApi) -> None:
    groups = prometheus.get("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["name"] for rule in rules} >= {
        "imgrec:sync_request_seconds:p99_5m", "SyncLatencyP99High", "BatchRunningTooLong",
        "InferenceUnderusedWithBacklog", "CacheHitRateLow", "ConsumerLagGrowing", "DeadLetters",
        "WebhookDeliveriesFailing", "FlinkJobRestarting"}
    assert [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] != "ok"] == []


@pytest.mark.parametrize(("board", "title", "expr"), QUERIES, ids=[f"{b}:{t}:{e[:40]}" for b, t, e in QUERIES])
def test_panel_query_has_data(prometheus: PrometheusApi, board: str, title: str, expr: str) -> None:
    assert prometheus.finite_points(expr, prometheus.began) > 0, f"{board} / {title}: {expr} drew nothing"

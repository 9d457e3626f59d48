"""Evaluation metrics, gate rules and the live comparison, as pure functions of labels and samples."""

from __future__ import annotations

import pytest

from transforms.handlers.base import Label
from transforms.lifecycle.compare import compare_versions, parse_metrics, version_stats
from transforms.lifecycle.gates import GateRules, judge
from transforms.lifecycle.metrics import (
    Box,
    classification_agreement,
    classification_quality,
    detection_agreement,
    detection_quality,
    iou,
    score_correlation,
)


def labels(*pairs: tuple[str, float]) -> list[Label]:
    return [Label(name, score) for name, score in pairs]


def test_top1_and_top5() -> None:
    preds = [labels(("cat", 0.9), ("dog", 0.1)), labels(("car", 0.6), ("cup", 0.3)), labels(("x", 1.0))]
    quality = classification_quality(preds, [["cat"], ["cup"], ["y"]])
    assert quality == {"top1": pytest.approx(1 / 3), "top5": pytest.approx(2 / 3)}


def test_classification_agreement() -> None:
    a = [labels(("cat", 0.8), ("dog", 0.2)), labels(("cup", 0.5), ("mug", 0.5))]
    b = [labels(("cat", 0.6), ("dog", 0.4)), labels(("mug", 0.9), ("cup", 0.1))]
    got = classification_agreement(a, b)
    assert got["top1_agreement"] == 0.5 and got["top5_overlap"] == 1.0
    assert got["score_delta"] == pytest.approx((0.2 + 0.4) / 2)  # |0.8-0.6| and |0.5-0.9|


def box(label: str, score: float, b: list[float]) -> Label:
    return Label(label, score, b)


def test_iou() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 1, 1], [2, 2, 3, 3]) == 0.0


def test_detection_precision_recall_and_ap() -> None:
    truth = [[Box("person", (0, 0, 10, 10)), Box("cup", (20, 20, 30, 30))], []]
    preds = [
        [box("person", 0.9, [0, 0, 10, 9]), box("cup", 0.3, [20, 20, 30, 30]), box("person", 0.6, [50, 50, 60, 60])],
        [box("dog", 0.8, [0, 0, 5, 5])],
    ]
    q = detection_quality(preds, truth, threshold=0.5)
    # At 0.5: person hit, person miss (wrong place), dog miss -> precision 1/3; 1 of 2 objects found.
    assert q["precision"] == pytest.approx(1 / 3) and q["recall"] == 0.5
    # AP ranks every label: person AP 1.0 (the hit ranks first), cup AP 1.0 -> mean 1.0.
    assert q["ap50"] == pytest.approx(1.0)
    worse = [[box("person", 0.5, [0, 0, 10, 9]), box("person", 0.9, [50, 50, 60, 60])], []]
    assert detection_quality(worse, truth, 0.4)["ap50"] == pytest.approx((0.5 + 0.0) / 2)


def test_detection_agreement() -> None:
    a = [[box("person", 0.9, [0, 0, 10, 10])]]
    b = [[box("person", 0.7, [0, 0, 10, 5]), box("cup", 0.8, [20, 20, 30, 30])]]
    got = detection_agreement(a, b, threshold=0.5)
    assert got["label_overlap"] == 0.5 and got["box_iou"] == pytest.approx((0.5 + 0.0) / 2)
    assert got["score_delta"] == pytest.approx((0.2 + 0.8) / 2)


def test_scores_that_do_not_move_with_the_active_versions_fail_the_gate() -> None:
    # A safe-only set: the active version says "sfw" everywhere, with scores that vary from image to image.
    active = [labels(("sfw", s), ("nsfw", round(1 - s, 2))) for s in (0.99, 0.7, 0.93, 0.8, 0.97)]
    collapsed = [labels(("sfw", 0.99), ("nsfw", 0.01))] * 5  # the same answer whatever the image
    assert classification_agreement(collapsed, active)["top1_agreement"] == 1.0  # agreement alone is fooled
    assert score_correlation(active, active) == pytest.approx(1.0)
    assert score_correlation(collapsed, active) == 0.0
    assert score_correlation(active, [labels(("sfw", 0.9))] * 5) is None  # nothing varies: nothing to tell
    rules = GateRules()
    assert judge(rules, {}, {}, None, None, score_correlation(active, active)).passed
    failed = judge(rules, {}, {}, None, None, classification_agreement(collapsed, active)["score_correlation"])
    assert [c.rule for c in failed.failures] == ["scores move with active's"]


def test_gate_rules() -> None:
    rules = GateRules(max_drop_points=2, max_latency_ratio=1.5, min_agreement=0.9, min_metrics={"top1": 0.5})
    ok = judge(rules, {"top1": 0.80, "top5": 0.9}, {"top1": 0.81, "top5": 0.9}, 1.2, 0.95)
    assert ok.passed and len(ok.checks) == 5
    bad = judge(rules, {"top1": 0.70, "top5": 0.9}, {"top1": 0.81, "top5": 0.9}, 1.6, 0.5)
    assert {c.rule.split()[0] for c in bad.failures} == {"top1", "latency", "agreement"}
    first = judge(rules, {"top1": 0.4}, None, None, None)  # no active version: only the floors apply
    assert [c.passed for c in first.checks] == [False]


EXPOSITION = """
# TYPE imgrec_model_requests_total counter
imgrec_model_requests_total{model_id="m",model_version="1",cache="hit"} 60
imgrec_model_requests_total{model_id="m",model_version="1",cache="miss"} 40
imgrec_model_requests_total{model_id="m",model_version="2",cache="miss"} 100
imgrec_model_requests_total{model_id="other",model_version="1",cache="miss"} 7
# TYPE imgrec_model_errors_total counter
imgrec_model_errors_total{model_id="m",model_version="2",code="backend_unavailable"} 1
# TYPE imgrec_model_top_score summary
imgrec_model_top_score_count{model_id="m",model_version="1"} 100
imgrec_model_top_score_sum{model_id="m",model_version="1"} 80
# TYPE imgrec_model_latency_seconds histogram
imgrec_model_latency_seconds_bucket{model_id="m",model_version="2",le="0.01"} 50
imgrec_model_latency_seconds_bucket{model_id="m",model_version="2",le="0.02"} 100
imgrec_model_latency_seconds_bucket{model_id="m",model_version="2",le="+Inf"} 100
imgrec_model_latency_seconds_count{model_id="m",model_version="2"} 100
imgrec_model_latency_seconds_sum{model_id="m",model_version="2"} 1.2
"""


def test_compare_from_metrics() -> None:
    stats = version_stats(parse_metrics(EXPOSITION), "m")
    assert stats["1"]["share"] == 0.5 and stats["1"]["cache_hits"] == 0.6 and stats["1"]["mean_top_score"] == 0.8
    assert stats["2"]["error_rate"] == pytest.approx(1 / 101) and stats["2"]["latency_mean_ms"] == pytest.approx(12)
    assert stats["2"]["latency_p50_ms"] == pytest.approx(10.0)
    windowed = version_stats(parse_metrics(EXPOSITION), "m", parse_metrics(EXPOSITION))
    assert windowed == {}  # nothing happened between two equal scrapes
    table = compare_versions(parse_metrics(EXPOSITION), "m", roles={"1": "active", "2": "canary"})
    assert "v1 (active)" in table and "v2 (canary)" in table and "50.0%" in table

"""Prometheus metrics per model version (`model_id`, `model_version`), so a canary can be compared with the active
version from live traffic (`imgrec models compare`): requests (with cache outcome), errors, latency, top score.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram, Summary

from transforms.handlers.base import Label

LABELS = ("model_id", "model_version")
MODEL_REQUESTS = Counter(
    "imgrec_model_requests_total", "Images answered per model version, by cache outcome.", [*LABELS, "cache"]
)
MODEL_ERRORS = Counter("imgrec_model_errors_total", "Inference failures per model version.", [*LABELS, "code"])
MODEL_LATENCY = Histogram(
    "imgrec_model_latency_seconds",
    "Sync answer time per model version (route to threshold).",
    LABELS,
    buckets=(0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
MODEL_TOP_SCORE = Summary("imgrec_model_top_score", "Best label score per answer, per model version.", LABELS)


def observe_answer(
    model_id: str, version: str, labels: Sequence[Label], cache_hit: bool, seconds: float | None = None
) -> None:
    """One answered image: its cache outcome, its best (unthresholded) score, and on the sync path its time."""
    MODEL_REQUESTS.labels(model_id, version, "hit" if cache_hit else "miss").inc()
    if labels:
        MODEL_TOP_SCORE.labels(model_id, version).observe(max(label.score for label in labels))
    if seconds is not None:
        MODEL_LATENCY.labels(model_id, version).observe(seconds)


def observe_error(model_id: str, version: str, code: str) -> None:
    MODEL_ERRORS.labels(model_id, version, code).inc()

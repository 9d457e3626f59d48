"""Canary and active side by side, from the live per-version Prometheus metrics (`transforms/model_metrics.py`):
one scrape (totals since each process started) or the difference of two (the traffic of a window). Scrapes of
several processes (API replicas, the Flink job's workers) add up.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


def parse_metrics(text: str) -> list[Sample]:
    """The per-model-version samples of one Prometheus text exposition."""
    return [
        Sample(s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        if family.name.startswith("imgrec_model_")
        for s in family.samples
    ]


def _totals(samples: Iterable[Sample], model_id: str) -> dict[tuple[str, str, str], float]:
    """(metric sample, version, extra label) -> value, summed over processes."""
    out: dict[tuple[str, str, str], float] = defaultdict(float)
    for s in samples:
        if s.label("model_id") == model_id:
            out[(s.name, s.label("model_version"), s.label("cache") or s.label("le") or s.label("code"))] += s.value
    return out


def _quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """A quantile from cumulative histogram buckets, interpolated linearly inside its bucket (as PromQL does)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, prev_le, prev_n = q * buckets[-1][1], 0.0, 0.0
    for le, n in buckets:
        if n >= rank:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_n) / (n - prev_n) if n > prev_n else 0.0)
        prev_le, prev_n = le, n
    return None


def version_stats(samples: Iterable[Sample], model_id: str, before: Iterable[Sample] | None = None) -> dict:
    """Per version: requests, share of traffic, cache hits, errors, latency (mean, p50, p95), mean top score."""
    now = _totals(samples, model_id)
    if before is not None:
        for key, value in _totals(before, model_id).items():
            now[key] -= value
    versions = sorted({v for (_, v, _) in now}, key=lambda v: (not v.isdigit(), int(v) if v.isdigit() else 0, v))
    requests = {
        v: sum(x for (n, vv, _), x in now.items() if n == "imgrec_model_requests_total" and vv == v) for v in versions
    }
    total = sum(requests.values())
    stats = {}
    for v in versions:
        errors = sum(x for (n, vv, _), x in now.items() if n == "imgrec_model_errors_total" and vv == v)
        buckets = sorted(
            (
                (float(le), x)
                for (n, vv, le), x in now.items()
                if n == "imgrec_model_latency_seconds_bucket" and vv == v
            ),
        )
        lat_n = now.get(("imgrec_model_latency_seconds_count", v, ""), 0.0)
        score_n = now.get(("imgrec_model_top_score_count", v, ""), 0.0)
        p50, p95 = _quantile(buckets, 0.5), _quantile(buckets, 0.95)
        stats[v] = {
            "requests": requests[v],
            "share": requests[v] / total if total else 0.0,
            "cache_hits": now.get(("imgrec_model_requests_total", v, "hit"), 0.0) / requests[v] if requests[v] else 0.0,
            "errors": errors,
            "error_rate": errors / (requests[v] + errors) if requests[v] + errors else 0.0,
            "latency_mean_ms": 1000 * now.get(("imgrec_model_latency_seconds_sum", v, ""), 0.0) / lat_n
            if lat_n
            else None,
            "latency_p50_ms": 1000 * p50 if p50 is not None else None,
            "latency_p95_ms": 1000 * p95 if p95 is not None else None,
            "mean_top_score": now.get(("imgrec_model_top_score_sum", v, ""), 0.0) / score_n if score_n else None,
        }
    return {v: s for v, s in stats.items() if s["requests"] or s["errors"]}


def compare_versions(
    samples: Iterable[Sample],
    model_id: str,
    before: Iterable[Sample] | None = None,
    roles: dict[str, str] | None = None,
) -> str:
    """A side-by-side table of the versions that served traffic ("" when none did)."""
    stats = version_stats(samples, model_id, before)
    if not stats:
        return ""
    roles = roles or {}
    versions = list(stats)
    rows = [
        ("requests", lambda s: f"{s['requests']:.0f}"),
        ("share of traffic", lambda s: f"{100 * s['share']:.1f}%"),
        ("cache hits", lambda s: f"{100 * s['cache_hits']:.1f}%"),
        ("errors", lambda s: f"{s['errors']:.0f} ({100 * s['error_rate']:.2f}%)"),
        ("latency mean", lambda s: _ms(s["latency_mean_ms"])),
        ("latency p50", lambda s: _ms(s["latency_p50_ms"])),
        ("latency p95", lambda s: _ms(s["latency_p95_ms"])),
        ("mean top score", lambda s: "-" if s["mean_top_score"] is None else f"{s['mean_top_score']:.3f}"),
    ]
    header = [f"v{v}" + (f" ({roles[v]})" if v in roles else "") for v in versions]
    width = max(18, *(len(h) + 2 for h in header))
    lines = [f"{model_id:18}" + "".join(f"{h:>{width}}" for h in header)]
    for name, cell in rows:
        lines.append(f"{name:18}" + "".join(f"{cell(stats[v]):>{width}}" for v in versions))
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"

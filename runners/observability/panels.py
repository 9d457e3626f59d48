"""What each dashboard shows: panels as data (title, unit, PromQL), built from the names in `names.py`.

Windows are fixed ([1m], [5m]) rather than Grafana's `$__rate_interval`, so every expression is plain PromQL
that promtool checks and the stack's Prometheus answers as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from runners.observability import names as n


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    queries: tuple[Query, ...]
    description: str = ""
    kind: Literal["timeseries", "stat"] = "timeseries"
    # Where the seed's target sits: drawn as a red line (timeseries) or colour step (stat).
    target: float | None = None
    bad_below_target: bool = False


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    file: str
    description: str
    panels: tuple[Panel, ...] = field(default_factory=tuple)


SYNC = f'method="POST", route="{n.SYNC_ROUTE}"'

SERVICE = Dashboard(
    uid="imgrec-service",
    title="imgrec / service",
    file="service.json",
    description="The sync path: latency against the 800 ms P99 target, cache hit rate, traffic per model and version.",
    panels=(
        Panel("Sync latency (POST /v1/recognize)", "s", (
            Query("imgrec:sync_request_seconds:p99_5m", "p99"),
            Query("imgrec:sync_request_seconds:p50_5m", "p50"),
        ), "Quantiles over 5 minutes; the target is P99 < 800 ms.", target=0.8),
        Panel("Sync requests by status", "reqps", (
            Query("imgrec:sync_requests:rate5m", "{{status}}"),
        )),
        Panel("Result cache hit rate", "percentunit", (
            Query("imgrec:cache_hit_ratio:rate5m", "hit rate"),
        ), "Hits over hits + misses of the result cache, 5 minutes; the target is > 60 %.", kind="stat",
            target=0.6, bad_below_target=True),
        Panel("Traffic per model and version", "reqps", (
            Query(f"sum by (model_id, version, canary) (rate({n.ROUTED}[5m]))",
                  "{{model_id}} v{{version}} canary={{canary}}"),
        ), "Requests routed to each version, canaries apart."),
        Panel("P99 latency by route", "s", (
            Query(f"histogram_quantile(0.99, sum by (le, route) (rate({n.HTTP_REQUEST_SECONDS}_bucket[5m])))",
                  "{{route}}"),
        )),
        Panel("Redis (result cache)", "short", (
            Query(f"sum(rate({n.REDIS_COMMANDS}[1m]))", "commands/s"),
            Query(f"{n.REDIS_MEMORY_USED} / 1024 / 1024", "memory MiB"),
        )),
        Panel("Scrape targets up", "short", (
            Query("sum by (job) (up)", "{{job}}"),
        ), "1 per target Prometheus reaches.", kind="stat", target=1, bad_below_target=True),
    ),
)

BATCH = Dashboard(
    uid="imgrec-batch-pipeline",
    title="imgrec / batch pipeline",
    file="batch-pipeline.json",
    description="Kafka -> Flink -> Triton: lag, throughput, micro-batch size, inference busy fraction, checkpoints.",
    panels=(
        Panel("Consumer lag (batch job)", "short", (
            Query("imgrec:kafka_consumer_lag:sum", "{{group}} {{topic}}"),
            Query(f"{n.KAFKA_CONSUMER_LAG}", "partition {{partition}}"),
        ), "Messages not yet committed by the job's consumer group (commits follow checkpoints)."),
        Panel("Throughput", "short", (
            Query(f'sum(rate({n.FLINK_OPERATOR_RECORDS_OUT}{{operator_name=~"Source:_Kafka.*"}}[1m]))',
                  "items read/s"),
            Query(f"sum(rate({n.TRITON_INFERENCE_COUNT}[1m]))", "images inferred/s"),
        ), "Items the job reads from Kafka, and images Triton infers (cache misses), per second."),
        Panel("Micro-batch size", "short", (
            Query("imgrec:micro_batch_size:mean1m", "{{model}}"),
        ), "Images per Triton execution, per model."),
        Panel("Inference busy fraction", "percentunit", (
            Query("imgrec:inference_busy_fraction:rate1m", "busy"),
        ), "Triton compute seconds per second; the target is > 70 % while there is a backlog.", target=0.7,
            bad_below_target=True),
        Panel("Triton time per request", "µs", (
            Query(f"sum(rate({n.TRITON_QUEUE_US}[1m])) / sum(rate({n.TRITON_REQUEST_SUCCESS}[1m]))", "queue"),
            Query(f"sum(rate({n.TRITON_COMPUTE_INFER_US}[1m])) / sum(rate({n.TRITON_REQUEST_SUCCESS}[1m]))",
                  "compute"),
        )),
        Panel("Open batches", "short", (
            Query(n.BATCHES_OPEN, "open"),
        )),
        Panel("Oldest open batch", "s", (
            Query(n.BATCH_OLDEST_OPEN_SECONDS, "age"),
        ), "A batch should be done within 5 minutes.", target=300),
        Panel("Flink checkpoints", "short", (
            Query(f"sum by (job_name) (increase({n.FLINK_CHECKPOINTS_COMPLETED}[5m]))", "completed (5m)"),
            Query(f"sum by (job_name) (increase({n.FLINK_CHECKPOINTS_FAILED}[5m]))", "failed (5m)"),
        )),
        Panel("Last checkpoint duration", "ms", (
            Query(n.FLINK_LAST_CHECKPOINT_MS, "{{job_name}}"),
        )),
        Panel("Flink job restarts", "short", (
            Query(n.FLINK_JOB_RESTARTS, "{{job_name}}"),
        ), kind="stat", target=1),
        Panel("Dead letters (5m)", "short", (
            Query("imgrec:dead_letters:increase5m", "{{topic}}"),
        ), kind="stat", target=1),
        Panel("Webhook deliveries", "short", (
            Query(f"sum by (outcome) (increase({n.WEBHOOK_DELIVERIES}[5m]))", "{{outcome}}"),
        ), "Attempts in 5 minutes by outcome: delivered, retrying, gave_up."),
    ),
)

DASHBOARDS = (SERVICE, BATCH)

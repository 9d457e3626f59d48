"""Every scrape job and metric name the rules and dashboards use, in one place.

A metric added to the service (or renamed) is charted by naming it here and using the name in `queries.py`.
"""

from __future__ import annotations

# Prometheus scrape jobs of the stack (`runners/stack/components/prometheus.py`).
JOB_API = "imgrec-api"
JOB_PIPELINE = "imgrec-pipeline"
JOB_TRITON = "triton"
JOB_FLINK = "flink"
JOB_REDIS = "redis"
SCRAPE_JOBS = (JOB_API, JOB_PIPELINE, JOB_TRITON, JOB_FLINK, JOB_REDIS)

# The API (api/middleware.py, transforms/cache.py, transforms/routing.py, transforms/webhooks.py).
HTTP_REQUEST_SECONDS = "imgrec_http_request_seconds"
CACHE_LOOKUPS = "imgrec_cache_lookups_total"
ROUTED = "imgrec_routed_total"
REDIS_ERRORS = "imgrec_redis_errors_total"
WEBHOOK_DELIVERIES = "imgrec_webhook_deliveries_total"
SYNC_ROUTE = "/v1/recognize"

# The pipeline exporter (runners/observability/pipeline_exporter.py).
KAFKA_CONSUMER_LAG = "imgrec_kafka_consumer_lag"
KAFKA_TOPIC_MESSAGES = "imgrec_kafka_topic_messages_total"
BATCHES_OPEN = "imgrec_batches_open"
BATCH_OLDEST_OPEN_SECONDS = "imgrec_batch_oldest_open_seconds"
EXPORTER_SOURCE_UP = "imgrec_exporter_source_up"

# Triton's metrics port.
TRITON_COMPUTE_INFER_US = "nv_inference_compute_infer_duration_us"
TRITON_QUEUE_US = "nv_inference_queue_duration_us"
TRITON_INFERENCE_COUNT = "nv_inference_count"
TRITON_EXEC_COUNT = "nv_inference_exec_count"
TRITON_REQUEST_SUCCESS = "nv_inference_request_success"

# Flink's Prometheus reporter (JobManager and TaskManager).
FLINK_JOB_RESTARTS = "flink_jobmanager_job_numRestarts"
FLINK_JOB_UPTIME = "flink_jobmanager_job_uptime"
FLINK_CHECKPOINTS_COMPLETED = "flink_jobmanager_job_numberOfCompletedCheckpoints"
FLINK_CHECKPOINTS_FAILED = "flink_jobmanager_job_numberOfFailedCheckpoints"
FLINK_LAST_CHECKPOINT_MS = "flink_jobmanager_job_lastCheckpointDuration"
FLINK_OPERATOR_RECORDS_OUT = "flink_taskmanager_job_task_operator_numRecordsOut"

# Debian's prometheus-redis-exporter.
REDIS_UP = "redis_up"
REDIS_MEMORY_USED = "redis_memory_used_bytes"
REDIS_COMMANDS = "redis_commands_processed_total"

"""The batch recognition job: Kafka -> parse -> fetch + hash -> cache -> preprocess -> micro-batch -> Triton -> sinks.

Submitted to the session cluster by `pipelines.submit` (`flink run -py pipelines/flink_job.py --settings JSON`), or
run by the Flink Kubernetes Operator through the PythonDriver with IMGREC_* settings in the pods' environment.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.common.serialization import SimpleStringSchema
from pyflink.datastream import DataStream, ExternalizedCheckpointRetention, StreamExecutionEnvironment
from pyflink.datastream.connectors.base import DeliveryGuarantee
from pyflink.datastream.connectors.kafka import (
    KafkaOffsetResetStrategy,
    KafkaOffsetsInitializer,
    KafkaRecordSerializationSchema,
    KafkaSink,
    KafkaSource,
)

from pipelines.connector_jars import ensure_connector_jars
from pipelines.job_spec import CONSUMER_GROUP, JOB_NAME, JobOptions
from pipelines.operators import (
    CACHE_HITS,
    DEAD_LETTERS,
    CacheLookup,
    FetchAndRoute,
    Infer,
    MicroBatch,
    ParseAndAdmit,
    Preprocess,
    StoreResults,
)
from transforms.settings import Settings

PICKLED = Types.PICKLED_BYTE_ARRAY()


def job_config(state_dir: str | None) -> Configuration:
    """Python execution (thread mode: fastest here); checkpoints and savepoints under `state_dir` when given, else
    where the cluster's configuration says (the Flink Kubernetes Operator sets them on object storage)."""
    config = Configuration()
    config.set_string("python.execution-mode", "thread")
    if state_dir:
        config.set_string("execution.checkpointing.dir", f"{state_dir.rstrip('/')}/checkpoints")
        config.set_string("execution.checkpointing.savepoint-dir", f"{state_dir.rstrip('/')}/savepoints")
    config.set_string("restart-strategy.type", "exponential-delay")
    return config


def build_job(env: StreamExecutionEnvironment, settings: Settings, options: JobOptions) -> None:
    """Wire the dataflow on `env`."""
    env.add_jars(*(jar.as_uri() for jar in ensure_connector_jars()))
    env.enable_checkpointing(options.checkpoint_interval_ms)
    env.get_checkpoint_config().set_externalized_checkpoint_retention(
        ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION
    )
    conf: dict[str, Any] = settings.model_dump(mode="json")
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        raise ValueError("IMGREC_KAFKA_BOOTSTRAP is not set: the Flink job reads the Kafka batch topic")

    source = (
        KafkaSource.builder()
        .set_bootstrap_servers(bootstrap)
        .set_topics(settings.batch_topic)
        .set_group_id(CONSUMER_GROUP)
        # Committed offsets of the consumer group (a restart without state resumes there), else from the start.
        .set_starting_offsets(KafkaOffsetsInitializer.committed_offsets(KafkaOffsetResetStrategy.EARLIEST))
        .set_value_only_deserializer(SimpleStringSchema())
        .set_property("commit.offsets.on.checkpoint", "true")
        .set_property("partition.discovery.interval.ms", "30000")
    )
    if options.bounded:
        source = source.set_bounded(KafkaOffsetsInitializer.latest())
    items = env.from_source(
        source.build(), WatermarkStrategy.no_watermarks(), f"Kafka: {settings.batch_topic}"
    ).uid("kafka-source")

    parsed = items.process(ParseAndAdmit(conf), output_type=PICKLED).name("Parse + validate").uid("parse")
    parsed.get_side_output(DEAD_LETTERS).sink_to(_dead_letter_sink(bootstrap, settings.dead_letter_topic)).name(
        f"Dead letters: {settings.dead_letter_topic}"
    ).uid("dead-letters")

    fetched = parsed.process(FetchAndRoute(conf), output_type=PICKLED).name("Fetch + hash + route version").uid(
        "fetch"
    )
    looked_up = (
        fetched.key_by(lambda item: item.cache_key, key_type=Types.STRING())
        .process(CacheLookup(conf), output_type=PICKLED)
        .name("Cache lookup (Redis)")
        .uid("cache-lookup")
    )
    prepared = (
        looked_up.process(Preprocess(conf), output_type=PICKLED)
        .name("Decode + preprocess (CPU)")
        .uid("preprocess")
        .set_parallelism(options.preprocess_parallelism)
    )
    inferred = _batched(prepared, settings.micro_batch_size, settings.micro_batch_max_wait_ms, "Micro-batch").process(
        Infer(conf), output_type=PICKLED
    ).name("Infer micro-batch (Triton)").uid("infer")
    hits = _batched(
        looked_up.get_side_output(CACHE_HITS), settings.micro_batch_size, settings.micro_batch_max_wait_ms,
        "Collect cache hits",
    )
    inferred.union(hits).process(StoreResults(conf), output_type=Types.INT()).name(
        "Store results + cache + progress"
    ).uid("store").sink_to(_discard()).name("Done").uid("done")


def _batched(stream: DataStream, size: int, max_wait_ms: int, name: str) -> DataStream:
    """Key by model version and collect lists of at most `size` (see MicroBatch)."""
    return (
        stream.key_by(lambda item: item.batch_key, key_type=Types.STRING())
        .process(MicroBatch(size, max_wait_ms), output_type=PICKLED)
        .name(f"{name} (size {size}, max wait {max_wait_ms} ms)")
        .uid(name.lower().replace(" ", "-"))
    )


def _dead_letter_sink(bootstrap: str, topic: str) -> KafkaSink:
    serializer = (
        KafkaRecordSerializationSchema.builder()
        .set_topic(topic)
        .set_value_serialization_schema(SimpleStringSchema())
        .build()
    )
    return (
        KafkaSink.builder()
        .set_bootstrap_servers(bootstrap)
        .set_record_serializer(serializer)
        .set_delivery_guarantee(DeliveryGuarantee.AT_LEAST_ONCE)
        .build()
    )


def _discard():
    from pyflink.datastream.connectors.base import Sink
    from pyflink.java_gateway import get_gateway

    return Sink(get_gateway().jvm.org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink())


def parse_args(argv: list[str] | None = None) -> tuple[Settings, JobOptions, str | None]:
    parser = argparse.ArgumentParser(description=JOB_NAME)
    parser.add_argument("--settings", help="The service Settings as JSON (default: IMGREC_* from the environment).")
    parser.add_argument("--state-dir", help="URI of retained checkpoints and savepoints (default: the cluster's).")
    parser.add_argument("--preprocess-parallelism", type=int, default=JobOptions.preprocess_parallelism)
    parser.add_argument("--checkpoint-interval-ms", type=int, default=JobOptions.checkpoint_interval_ms)
    parser.add_argument("--bounded", action="store_true")
    args = parser.parse_args(argv)
    options = JobOptions(args.preprocess_parallelism, args.checkpoint_interval_ms, args.bounded)
    settings = Settings(**json.loads(args.settings)) if args.settings else Settings()
    return settings, options, args.state_dir


def main(argv: list[str] | None = None) -> None:
    settings, options, state_dir = parse_args(argv)
    env = StreamExecutionEnvironment.get_execution_environment(job_config(state_dir))
    build_job(env, settings, options)
    env.execute(JOB_NAME)


if __name__ == "__main__":
    main()

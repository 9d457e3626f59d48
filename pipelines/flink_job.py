"""The batch recognition job: Kafka -> parse + route + fetch + hash -> cache lookup (keyed by image) -> micro-batch of
references (keyed by model version) + read + decode + preprocess -> Triton -> sinks -> answers on the results topic
(Flink's transactional Kafka sink: exactly once with the checkpoints).

Until a micro-batch is formed, records carry references to images (blob URIs, hashes, the chosen version), never
pixels: an image is read and decoded inside its micro-batch, whose stacked input goes to the Triton operator.

Submitted to the session cluster by `pipelines.submit` (`flink run -py pipelines/flink_job.py --settings-file PATH`;
the settings stay in that file, so no secret is on a command line, in the job's arguments or in the Flink UI), or
run by the Flink Kubernetes Operator through the PythonDriver with IMGREC_* settings in the pods' environment.
"""

from __future__ import annotations

import argparse

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
from pyflink.table import DataTypes, Schema, StreamTableEnvironment, TableDescriptor

from pipelines.connector_jars import ensure_connector_jars
from pipelines.job_spec import CONSUMER_GROUP, JOB_NAME, JobOptions, load_settings
from pipelines.operators import (
    CACHE_HITS,
    DEAD_LETTERS,
    FAILED,
    RESULT_RECORD,
    Announce,
    CacheLookup,
    Infer,
    Intake,
    MicroBatch,
    PrepareMicroBatch,
    StoreResults,
)
from transforms.batch_steps import answer_key
from transforms.settings import Settings

PICKLED = Types.PICKLED_BYTE_ARRAY()
# Kafka aborts a transaction left open this long. It must cover a checkpoint interval plus a restart, and stay
# within the broker's `transaction.max.timeout.ms` (15 min by default; the sink's own default, 1 h, exceeds it and
# the producer refuses to start).
RESULTS_TRANSACTION_TIMEOUT_MS = 10 * 60 * 1000


def job_config(state_dir: str | None, python_mode: str = "thread") -> Configuration:
    """Python execution (thread mode: fastest here), retained checkpoints and how the job fails.

    Checkpoints and savepoints go under `state_dir` when given (the local stack: file:// under var/), else where
    the cluster's configuration says (the Flink Kubernetes Operator sets them on object storage).
    A dependency outage shorter than `dependency_retry_s` is ridden out inside the operators; a longer one fails
    the job, which restarts with exponential backoff (1 s doubling to 30 s, never giving up) from its latest
    checkpoint. A checkpoint held up by such a retry times out after a minute, and a few failed checkpoints in a
    row (e.g. the dead-letter sink's flush while Kafka restarts) are tolerated rather than failing the job.
    """
    config = Configuration()
    config.set_string("python.execution-mode", python_mode)
    if state_dir:
        config.set_string("execution.checkpointing.dir", f"{state_dir.rstrip('/')}/checkpoints")
        config.set_string("execution.checkpointing.savepoint-dir", f"{state_dir.rstrip('/')}/savepoints")
    config.set_string("execution.checkpointing.timeout", "60 s")
    config.set_string("execution.checkpointing.tolerable-failed-checkpoints", "5")
    config.set_string("restart-strategy.type", "exponential-delay")
    config.set_string("restart-strategy.exponential-delay.initial-backoff", "1 s")
    config.set_string("restart-strategy.exponential-delay.max-backoff", "30 s")
    config.set_string("restart-strategy.exponential-delay.backoff-multiplier", "2.0")  # Flink 2's default is 1.5
    return config


def build_job(env: StreamExecutionEnvironment, settings_file: str | None, options: JobOptions) -> None:
    """Wire the dataflow on `env`, with the settings from `settings_file` (else from the environment)."""
    settings = load_settings(settings_file)
    env.add_jars(*(jar.as_uri() for jar in ensure_connector_jars()))
    if options.parallelism is not None:
        env.set_parallelism(options.parallelism)
    env.enable_checkpointing(options.checkpoint_interval_ms)
    env.get_checkpoint_config().set_externalized_checkpoint_retention(
        ExternalizedCheckpointRetention.RETAIN_ON_CANCELLATION
    )
    conf = settings_file  # operators read the settings (from the file, else the environment) when they open
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

    fetched = items.process(Intake(conf), output_type=PICKLED).name("Parse + route version + fetch + hash").uid(
        "intake"
    )
    fetched.get_side_output(DEAD_LETTERS).sink_to(_dead_letter_sink(bootstrap, settings.dead_letter_topic)).name(
        f"Dead letters: {settings.dead_letter_topic}"
    ).uid("dead-letters")
    looked_up = (
        fetched.key_by(lambda item: item.cache_key, key_type=Types.STRING())
        .process(CacheLookup(conf), output_type=PICKLED)
        .name("Cache lookup (Redis)")
        .uid("cache-lookup")
    )
    size, wait, shards = settings.micro_batch_size, settings.micro_batch_max_wait_ms, settings.micro_batch_shards
    prepared = (
        looked_up.key_by(lambda item: item.batch_key(shards), key_type=Types.STRING())
        .process(PrepareMicroBatch(conf, size, wait), output_type=PICKLED)
        .name(f"Micro-batch (size {size}, max wait {wait} ms) + read + decode + preprocess")
        .uid("prepare")
    )
    # Its own task (thread): Triton infers one micro-batch while the operator before prepares the next.
    inferred = (
        prepared.process(Infer(conf), output_type=PICKLED).name("Infer micro-batch (Triton)").uid("infer")
        .start_new_chain()
    )
    hits = _batched(looked_up.get_side_output(CACHE_HITS), size, wait, "Collect cache hits")
    stored = inferred.union(hits).process(StoreResults(conf), output_type=PICKLED).name(
        "Store results + cache + progress"
    ).uid("store")
    failed = fetched.get_side_output(FAILED)
    records = (
        stored.union(failed)
        .key_by(lambda answers: answer_key(answers[0]), key_type=Types.STRING())
        .process(Announce(conf), output_type=RESULT_RECORD)
        .name("Answers + batch completion")
        .uid("announce")
    )
    _sink_results(env, records, settings)


def _batched(stream: DataStream, size: int, max_wait_ms: int, name: str) -> DataStream:
    """Key by model version and collect lists of at most `size` (see MicroBatch)."""
    return (
        stream.key_by(lambda item: item.batch_key(), key_type=Types.STRING())
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


def _sink_results(env: StreamExecutionEnvironment, records: DataStream, settings: Settings) -> None:
    """Write (caller_id, message) records to the results topic keyed by caller_id, by default in Kafka transactions
    committed with each checkpoint: a `read_committed` consumer sees every record once, across restarts and replays.

    The Kafka table connector is used for its `key.fields`: the DataStream KafkaSink of PyFlink can only serialize
    the whole element as the key. The planner's sink joins the DataStream graph (`attach_as_datastream`).
    """
    t_env = StreamTableEnvironment.create(env)
    # Stable operator ids for the sink, so its pending transactions are restored from a checkpoint.
    t_env.get_config().set("table.exec.uid.generation", "ALWAYS")
    schema = Schema.new_builder().column("caller_id", DataTypes.STRING()).column("message", DataTypes.STRING())
    sink = (
        TableDescriptor.for_connector("kafka")
        .schema(schema.build())
        .option("topic", settings.results_topic)
        .option("properties.bootstrap.servers", settings.kafka_bootstrap)
        .option("key.format", "raw")
        .option("key.fields", "caller_id")
        .option("value.format", "raw")
        .option("value.fields-include", "EXCEPT_KEY")
        .option("sink.delivery-guarantee", settings.results_delivery)
        .option("sink.transactional-id-prefix", f"imgrec-{settings.results_topic}")
        .option("properties.transaction.timeout.ms", str(RESULTS_TRANSACTION_TIMEOUT_MS))
        .build()
    )
    statements = t_env.create_statement_set()
    statements.add_insert(sink, t_env.from_data_stream(records))
    statements.attach_as_datastream()


def parse_args(argv: list[str] | None = None) -> tuple[str | None, JobOptions, str | None]:
    """The settings file (None: the environment), the job's options and where its state goes (None: the cluster's)."""
    parser = argparse.ArgumentParser(description=JOB_NAME)
    parser.add_argument("--settings-file", help="The service Settings as a JSON file (default: IMGREC_* from the "
                        "environment, as in the pods of the Flink Kubernetes Operator).")
    parser.add_argument("--state-dir", help="URI of retained checkpoints and savepoints (default: the cluster's).")
    parser.add_argument("--parallelism", type=int, default=JobOptions.parallelism)
    parser.add_argument("--checkpoint-interval-ms", type=int, default=JobOptions.checkpoint_interval_ms)
    parser.add_argument("--bounded", action="store_true")
    parser.add_argument("--python-mode", choices=("thread", "process"), default=JobOptions.python_mode)
    args = parser.parse_args(argv)
    options = JobOptions(parallelism=args.parallelism, checkpoint_interval_ms=args.checkpoint_interval_ms,
                         bounded=args.bounded, python_mode=args.python_mode)
    return args.settings_file, options, args.state_dir


def main(argv: list[str] | None = None) -> None:
    settings_file, options, state_dir = parse_args(argv)
    env = StreamExecutionEnvironment.get_execution_environment(job_config(state_dir, options.python_mode))
    build_job(env, settings_file, options)
    env.execute(JOB_NAME)


if __name__ == "__main__":
    main()

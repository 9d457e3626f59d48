"""Reading the Kafka source's partitions from the metric ids the Flink REST API lists (ids as a real job shows them)."""

from __future__ import annotations

from transforms.adapters.flink import held_partitions

SOURCE = "0.Source__Kafka__imgrec_batch_v1.KafkaSourceReader"


def test_partitions_are_found_under_the_topic_as_the_rest_api_spells_it() -> None:
    ids = [f"{SOURCE}.topic.imgrec_batch_v1.partition.{n}.{kind}" for n in (0, 2, 5)
           for kind in ("currentOffset", "committedOffset")]
    ids += [f"{SOURCE}.KafkaConsumer.commit-total", "0.Source__Kafka__imgrec_batch_v1.split.imgrec_batch_v1-4.watermark"
            ".currentWatermark", f"{SOURCE}.topic.other_topic.partition.1.currentOffset"]
    assert held_partitions(ids, "imgrec.batch.v1") == {0, 2, 5}
    assert held_partitions(ids, "other.topic") == {1}
    assert held_partitions(ids, "imgrec.batch.v2") == set()

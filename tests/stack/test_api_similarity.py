"""Embeddings and similarity search on the real stack: PostgreSQL, Redis, Triton, the blob store."""

from __future__ import annotations

import pytest

from tests.contracts.api_similarity import SimilarityContract
from transforms.settings import Settings


@pytest.fixture(scope="module")
def settings(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # No Kafka: the batch path on the stack is the Flink job's, tested beside the other batch tests.
    blobs = tmp_path_factory.mktemp("similarity-blobs")
    return stack_settings.model_copy(update={"kafka_bootstrap": None, "blob_root": blobs.as_uri()})


class TestSimilarityStack(SimilarityContract):
    pass

"""Embeddings and similarity search on the embedded default: SQLite, the in-process cache, ONNX Runtime."""

from __future__ import annotations

import pytest

from tests.contracts.api_similarity import SimilarityContract
from tests.contracts.api_sync import app_settings
from transforms.settings import Settings


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return app_settings(tmp_path_factory.mktemp("similarity-embedded"))


class TestSimilarityEmbedded(SimilarityContract):
    pass

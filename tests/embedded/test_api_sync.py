"""POST /v1/recognize on the embedded default: SQLite, the in-process cache, ONNX Runtime."""

from __future__ import annotations

import pytest

from tests.api_helpers import api_client
from tests.contracts.api_sync import RecognizeContract, app_settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    with api_client(app_settings(tmp_path_factory.mktemp("api-embedded"))) as pair:
        yield pair


class TestRecognizeEmbedded(RecognizeContract):
    pass

"""POST /v1/recognize on the real stack: PostgreSQL, Redis, Triton."""

from __future__ import annotations

import pytest

from tests.api_helpers import api_client
from tests.contracts.api_sync import RecognizeContract, app_settings
from transforms.settings import Settings


@pytest.fixture(scope="module")
def client(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    var = tmp_path_factory.mktemp("api-stack")
    ports = {k: getattr(stack_settings, k) for k in ("database_url", "redis_url", "triton_url")}
    with api_client(app_settings(var, **ports)) as pair:
        yield pair


class TestRecognizeStack(RecognizeContract):
    pass

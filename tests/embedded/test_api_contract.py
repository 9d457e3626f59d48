"""Contract fuzzing: Schemathesis generates requests from the OpenAPI schema and runs them against the app (ASGI,
with a key), in every phase (examples, coverage, fuzzing, stateful): no 5xx, responses as documented, and data the
schema calls valid is not refused as malformed (the schema says what the server enforces)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.config import SchemathesisConfig

from api.app import create_app
from transforms.keys import hash_key
from transforms.settings import REPO_ROOT, Settings

# Refusals the schema cannot express: an unknown model (404), an image too large (413), bytes that are no image or
# a format we do not read (415, 422), a URL that cannot be fetched (422).
SEMANTIC_REFUSALS = ["2xx", "404", "413", "415", "422"]
CONFIG = {
    "generation": {"max-examples": 15},
    # In sequences a link filled from an earlier answer (e.g. a `model_id` from GET /v1/models) overwrites the invalid
    # value of a negative case, and Schemathesis then reports the valid request it sent as "schema-violating request
    # accepted" (seen on POST /v1/recognize). Refusal of invalid data is checked per operation by the test above.
    "phases": {"stateful": {"max-steps": 4, "checks": {"negative_data_rejection": {"enabled": False}}}},
    "checks": {"positive_data_acceptance": {"expected-statuses": SEMANTIC_REFUSALS}},
}
VAR_DIR = Path(tempfile.mkdtemp(prefix="imgrec-contract-"))
APP = create_app(Settings(var_dir=VAR_DIR, model_store=REPO_ROOT / "var" / "models", fetch_connect_timeout_s=0.2,
                          fetch_read_timeout_s=0.5, _env_file=None))
HEADERS: dict[str, str] = {}
schema = schemathesis.openapi.from_asgi("/openapi.json", APP, config=SchemathesisConfig.from_dict(CONFIG))


@schemathesis.check
def valid_data_is_never_an_invalid_request(
    ctx: object, response: schemathesis.Response, case: schemathesis.Case
) -> None:
    """422 answers valid data only for what the schema cannot say (an image or URL refused, with its own code):
    `invalid_request` for a request the schema calls valid means the schema and the server disagree."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 422:
        return
    code = (response.json().get("error") or {}).get("code")
    if code == "invalid_request":
        raise AssertionError(f"a request the schema calls valid was refused as invalid_request: {response.text[:300]}")


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    """The app's lifespan (its services) for the whole module, and a key for every generated request."""
    with TestClient(APP):
        store = APP.state.services.store
        key = store.keys.create("fuzzer")
        store.keys.set_limits(hash_key(key), rate_per_s=10_000, burst=10_000, max_concurrency=1_000)  # not a load test
        HEADERS["Authorization"] = f"Bearer {key}"
        yield
    shutil.rmtree(VAR_DIR, ignore_errors=True)


@schema.parametrize()
def test_every_operation_honours_its_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=HEADERS)


class Workflows(schema.as_state_machine()):  # type: ignore[misc]
    def get_call_kwargs(self, case: schemathesis.Case) -> dict:
        return {"headers": HEADERS}


def test_stateful_sequences_honour_the_schema() -> None:
    Workflows.run()

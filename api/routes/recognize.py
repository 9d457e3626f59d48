"""POST /v1/recognize: one image, answered at once (JSON with url/base64, or multipart with a file part)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth import api_key
from api.image_body import check_one_source, image_bytes, parse_body
from api.schemas import ErrorResponse, LabelOut, RecognizeRequest, RecognizeResponse, SimilarImage, embedding_out
from transforms.batch_submission import THRESHOLD, URL_SCHEMA
from transforms.stages import StageTimer
from transforms.store import ApiKey
from transforms.thresholds import validate_threshold

router = APIRouter(tags=["recognize"])


def _form_fields(source: str, source_schema: dict) -> dict:
    """The multipart form with one image source."""
    return {
        "type": "object",
        "required": [source, "model_id"],
        "additionalProperties": False,
        "properties": {
            source: source_schema,
            "model_id": {"type": "string", "minLength": 1, "maxLength": 128},
            "confidence_threshold": THRESHOLD["anyOf"][0],
            "min_label_count": {"type": "integer", "minimum": 0, "maximum": 100},
            "near_duplicates": {"type": "boolean"},
        },
    }


_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RecognizeRequest.model_json_schema()},
            "multipart/form-data": {
                # Exactly one image source: an uploaded file, or a URL.
                "schema": {"oneOf": [_form_fields("file", {"type": "string", "format": "binary"}),
                                     _form_fields("image_url", URL_SCHEMA)]}
            },
        },
    }
}  # fmt: skip


@router.post(
    "/v1/recognize",
    response_model=RecognizeResponse,
    response_model_exclude_none=True,
    openapi_extra=_OPENAPI_BODY,
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422, 429, 503)},
    summary="Recognise one image synchronously",
)
async def recognize(request: Request, key: Annotated[ApiKey, Depends(api_key)]) -> RecognizeResponse:
    """Run one image (under the sync size limit) through `model_id` and answer with its labels (and its vector for
    an embedding model; with `near_duplicates`, the caller's earlier images that look the same).

    Admission first: 429 over the key's rate or concurrency limit, 503 `overloaded` when the process is full.
    """
    async with request.app.state.admission.sync_request(key):
        return await _recognize(request, key.caller_id)


async def _recognize(request: Request, caller: str) -> RecognizeResponse:
    services = request.app.state.services
    timer: StageTimer = request.state.stages
    timer.path = "sync"  # until the cache answers (sync_hit / sync_miss); sync_error for a 4xx/5xx
    with timer.stage("parse"):
        body, upload = await parse_body(request, RecognizeRequest, services.settings.sync_max_bytes)
    check_one_source(body.image_url, body.image_data, upload)
    if body.confidence_threshold is not None:
        validate_threshold(body.confidence_threshold)
    data = await image_bytes(request, body.image_url, body.image_data, upload, timer)
    result = await run_in_threadpool(
        services.recognizer.recognize,
        caller,
        body.model_id,
        data,
        body.confidence_threshold,
        body.min_label_count,
        timer,
        body.near_duplicates,
    )
    return RecognizeResponse(
        request_id=result.request_id,
        labels=[LabelOut(**lbl.to_dict()) for lbl in result.labels],
        cache_hit=result.cache_hit,
        model_id=result.model_id,
        model_version=result.model_version,
        threshold_applied=result.threshold_applied,
        embedding=None if result.embedding is None else embedding_out(result.embedding),
        near_duplicates=None if result.near_duplicates is None else list(map(SimilarImage.of, result.near_duplicates)),
    )

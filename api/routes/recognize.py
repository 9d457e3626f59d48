"""POST /v1/recognize: one image, answered at once (JSON with url/base64, or multipart with a file part)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth import caller_id
from api.image_body import check_one_source, image_bytes, openapi_body, parse_body
from api.schemas import ErrorResponse, LabelOut, RecognizeRequest, RecognizeResponse, SimilarImage, embedding_out
from transforms.stages import StageTimer
from transforms.thresholds import validate_threshold

router = APIRouter(tags=["recognize"])

_OPENAPI_BODY = openapi_body(RecognizeRequest)


@router.post(
    "/v1/recognize",
    response_model=RecognizeResponse,
    response_model_exclude_none=True,
    openapi_extra=_OPENAPI_BODY,
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422, 503)},
    summary="Recognise one image synchronously",
)
async def recognize(request: Request, caller: Annotated[str, Depends(caller_id)]) -> RecognizeResponse:
    """Run one image (under the sync size limit) through `model_id` and answer with its labels (and its vector for
    an embedding model; with `near_duplicates`, the caller's earlier images that look the same)."""
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

"""POST /v1/recognize: one image, answered at once (JSON with url/base64, or multipart with a file part)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.auth import caller_id
from api.schemas import ErrorResponse, LabelOut, RecognizeRequest, RecognizeResponse
from transforms.errors import RecognitionError
from transforms.intake import check_size, decode_base64
from transforms.stages import StageTimer
from transforms.thresholds import validate_threshold

router = APIRouter(tags=["recognize"])

BATCH_HINT = "Send larger images to POST /v1/recognize/batch."
MULTIPART_FIELDS = ("image_url", "model_id", "confidence_threshold", "min_label_count")

_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": RecognizeRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["model_id"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "image_url": {"type": "string"},
                        "model_id": {"type": "string"},
                        "confidence_threshold": {"type": "number"},
                        "min_label_count": {"type": "integer"},
                    },
                }
            },
        },
    }
}


async def _parse(request: Request, max_bytes: int) -> tuple[RecognizeRequest, bytes | None]:
    """The body as a RecognizeRequest plus uploaded bytes (multipart), with early size refusal."""
    length = request.headers.get("content-length")
    # base64 inflates by 4/3; allow that plus room for the other fields before reading anything.
    if length and length.isdigit() and int(length) > max_bytes * 4 // 3 + 64 * 1024:
        raise RecognitionError(
            "image_too_large", f"The request body is over the sync limit. {BATCH_HINT}", limit_bytes=max_bytes
        )
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=len(MULTIPART_FIELDS))
        upload = form.get("file") or form.get("image")
        data = await upload.read() if upload is not None and hasattr(upload, "read") else None
        fields = {k: form[k] for k in MULTIPART_FIELDS if k in form and form[k] != ""}
        try:
            body = RecognizeRequest.model_validate(fields)
        except ValidationError as exc:
            raise _invalid(exc) from exc
        return body, data
    try:
        return RecognizeRequest.model_validate_json(await request.body()), None
    except ValidationError as exc:
        raise _invalid(exc) from exc


def _invalid(exc: ValidationError) -> RecognitionError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    return RecognitionError("invalid_request", f"{field}: {err['msg']}" if field else err["msg"], http_status=422)


@router.post(
    "/v1/recognize",
    response_model=RecognizeResponse,
    openapi_extra=_OPENAPI_BODY,
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422, 503)},
    summary="Recognise one image synchronously",
)
async def recognize(request: Request, caller: Annotated[str, Depends(caller_id)]) -> RecognizeResponse:
    """Run one image (under the sync size limit) through `model_id` and answer with its labels."""
    services = request.app.state.services
    settings = services.settings
    timer: StageTimer = request.state.stages
    timer.path = "sync"  # until the cache answers (sync_hit / sync_miss); sync_error for a 4xx/5xx
    with timer.stage("parse"):
        body, upload = await _parse(request, settings.sync_max_bytes)
    sources = sum(x is not None for x in (body.image_url, body.image_data, upload))
    if sources == 0:
        raise RecognitionError("no_image", "Send one of image_url, image_data or a file part.")
    if sources > 1:
        raise RecognitionError("url_and_data", "Send only one of image_url, image_data or a file part.")
    if body.confidence_threshold is not None:
        validate_threshold(body.confidence_threshold)
    if body.image_url is not None:
        fetch = services.ports.fetcher.fetch
        with timer.stage("fetch"):
            data = await run_in_threadpool(fetch, body.image_url, max_bytes=settings.sync_max_bytes)
    else:
        with timer.stage("base64"):
            data = upload if upload is not None else decode_base64(body.image_data or "")
    check_size(data, settings.sync_max_bytes, BATCH_HINT)
    result = await run_in_threadpool(
        services.recognizer.recognize,
        caller,
        body.model_id,
        data,
        body.confidence_threshold,
        body.min_label_count,
        timer,
    )
    return RecognizeResponse(
        request_id=result.request_id,
        labels=[LabelOut(**lbl.to_dict()) for lbl in result.labels],
        cache_hit=result.cache_hit,
        model_id=result.model_id,
        model_version=result.model_version,
        threshold_applied=result.threshold_applied,
    )

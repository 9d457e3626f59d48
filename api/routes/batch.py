"""POST /v1/recognize/batch and GET /v1/recognize/batch/{batch_id}."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import api_key, caller_id
from api.schemas import (
    BatchAccepted,
    BatchItemResult,
    BatchRequest,
    BatchStatus,
    ErrorBody,
    ErrorResponse,
    RejectedItem,
    embedding_out,
)
from transforms.batch_submission import Submission
from transforms.errors import RecognitionError
from transforms.store import ApiKey

router = APIRouter(tags=["batch"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 413, 422, 503)}
SUBMIT_ERRORS = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422, 429, 503)}


@router.post(
    "/v1/recognize/batch",
    response_model=BatchAccepted,
    status_code=202,
    responses=SUBMIT_ERRORS,
    summary="Submit a batch of images for asynchronous recognition",
)
async def submit_batch(
    body: BatchRequest,
    request: Request,
    response: Response,
    key: Annotated[ApiKey, Depends(api_key)],
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=255,
               description="Repeat a request with the same key (and body) to get the batch it created, not a new one."),
    ] = None,
) -> BatchAccepted:
    """Validate every item (bad ones are listed with reasons), queue the rest, and estimate completion."""
    services = request.app.state.services
    who = Submission(
        key.caller_id,
        idempotency_key=idempotency_key,
        fingerprint=hashlib.sha256(body.model_dump_json().encode()).hexdigest(),
        max_items_in_flight=request.app.state.admission.batch_items_allowed(key),
    )
    batch = await run_in_threadpool(services.batches.submit, who, body.items, body.callback_url)
    if batch.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return BatchAccepted(
        batch_id=batch.batch_id,
        accepted_count=batch.accepted_count,
        rejected=[RejectedItem(**r) for r in batch.rejected],
        estimated_completion_seconds=batch.estimated_completion_seconds,
    )


@router.get(
    "/v1/recognize/batch/{batch_id}",
    response_model=BatchStatus,
    responses=ERRORS,
    summary="Progress and results of a batch",
)
def batch_status(
    batch_id: str,
    request: Request,
    caller: Annotated[str, Depends(caller_id)],
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> BatchStatus:
    """Counts by state; once the batch has ended, one page of results in item order."""
    store = request.app.state.services.store
    summary = store.batches.summary(batch_id)
    if summary is None or summary.caller_id != caller:  # another caller's batch does not exist for you
        raise RecognitionError("batch_not_found", f"There is no batch {batch_id!r}.", http_status=404)
    status = summary.status
    results = next_offset = None
    if status not in ("pending", "processing"):
        rows = store.batches.results(batch_id, offset, limit)
        results = [_item(r) for r in rows]
        if offset + len(rows) < summary.total_count:
            next_offset = offset + len(rows)
    return BatchStatus(
        batch_id=batch_id,
        status=status,
        completed_count=summary.completed_count,
        failed_count=summary.failed_count,
        total_count=summary.total_count,
        rejected=[RejectedItem(**r) for r in summary.rejected],
        results=results,
        next_offset=next_offset,
    )


def _item(row: dict) -> BatchItemResult:
    """A row of `batches.results` (request, result, error columns) as the API shows an item."""
    vector = row["embedding"]
    embedding = None if vector is None else embedding_out(vector)
    return BatchItemResult.model_validate(
        {**row, "index": row["item_index"], "error": error_body(row), "embedding": embedding}
    )


def error_body(row: dict) -> ErrorBody | None:
    """The error of a request row (its error_code and error_message columns), None when it has none."""
    return ErrorBody(code=row["error_code"], message=row["error_message"] or "") if row["error_code"] else None

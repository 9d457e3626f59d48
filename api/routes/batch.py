"""POST /v1/recognize/batch and GET /v1/recognize/batch/{batch_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from api.auth import caller_id
from api.schemas import (
    BatchAccepted,
    BatchItemResult,
    BatchRequest,
    BatchStatus,
    ErrorBody,
    ErrorResponse,
    LabelOut,
    RejectedItem,
)
from transforms.errors import RecognitionError

router = APIRouter(tags=["batch"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404, 413, 422, 503)}


@router.post(
    "/v1/recognize/batch",
    response_model=BatchAccepted,
    status_code=202,
    responses=ERRORS,
    summary="Submit a batch of images for asynchronous recognition",
)
async def submit_batch(
    body: BatchRequest, request: Request, caller: Annotated[str, Depends(caller_id)]
) -> BatchAccepted:
    """Validate every item (bad ones are listed with reasons), queue the rest, and estimate completion."""
    services = request.app.state.services
    batch = await run_in_threadpool(services.batches.submit, caller, body.items, body.callback_url)
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
    summary = store.batch_summary(batch_id)
    if summary is None or summary.caller_id != caller:  # another caller's batch does not exist for you
        raise RecognitionError("batch_not_found", f"There is no batch {batch_id!r}.", http_status=404)
    status = summary.status
    results = next_offset = None
    if status not in ("pending", "processing"):
        rows = store.batch_results(batch_id, offset, limit)
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
    error = ErrorBody(code=row["error_code"], message=row["error_message"] or "") if row["error_code"] else None
    return BatchItemResult(
        request_id=row["request_id"],
        index=row["item_index"],
        status=row["status"],
        model_id=row["model_id"],
        model_version=row["model_version"],
        labels=[LabelOut(**lbl) for lbl in row["labels"]] if row["labels"] is not None else None,
        cache_hit=row["cache_hit"],
        threshold_applied=row["threshold_applied"],
        error=error,
    )

"""GET /v1/requests/{request_id}: one request's status and result, for its owner (sync or batch, API or Kafka)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.auth import caller_id
from api.routes.batch import ERRORS, error_body
from api.schemas import RequestStatus
from transforms.errors import RecognitionError

router = APIRouter(tags=["requests"])


@router.get(
    "/v1/requests/{request_id}",
    response_model=RequestStatus,
    responses={code: ERRORS[code] for code in (401, 404)},
    summary="Status and result of one request",
)
def request_status(request_id: str, request: Request, caller: Annotated[str, Depends(caller_id)]) -> RequestStatus:
    """The request's state; its labels once done, its error once failed. A producer without Kafka consumer rights
    reads its answers here."""
    row = request.app.state.services.store.requests.get(request_id)
    if row is None or row["caller_id"] != caller:  # another caller's request does not exist for you
        raise RecognitionError("request_not_found", f"There is no request {request_id!r}.")
    return RequestStatus.model_validate({**row, "index": row["item_index"], "error": error_body(row)})

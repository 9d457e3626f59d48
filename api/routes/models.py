"""GET /v1/models and GET /v1/models/{model_id}: the models a caller can ask for, their versions and states."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth import caller_id
from api.schemas import ErrorResponse, ModelList, ModelOut

router = APIRouter(tags=["models"])
ERRORS = {code: {"model": ErrorResponse} for code in (401, 404)}


@router.get("/v1/models", response_model=ModelList, responses=ERRORS, summary="Every model and its versions")
async def list_models(request: Request, _caller: Annotated[str, Depends(caller_id)]) -> ModelList:
    """Each model: its versions with their lifecycle state, the active version, the canary and its share of the
    traffic, and the active version's default threshold and label names."""
    summaries = await run_in_threadpool(request.app.state.services.models.models)
    return ModelList(models=[ModelOut(**asdict(s)) for s in summaries])


@router.get("/v1/models/{model_id}", response_model=ModelOut, responses=ERRORS, summary="One model and its versions")
async def get_model(model_id: str, request: Request, _caller: Annotated[str, Depends(caller_id)]) -> ModelOut:
    """One model as in `GET /v1/models`; 404 `unknown_model` when there is none."""
    summary = await run_in_threadpool(request.app.state.services.models.model, model_id)
    return ModelOut(**asdict(summary))

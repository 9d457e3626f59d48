"""POST /v1/search/similar: the caller's earlier images most like an image (or like one of its earlier images)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from api.auth import api_key
from api.image_body import check_one_source, image_bytes, openapi_body, parse_body
from api.schemas import IMAGE_HASH, ErrorResponse, SearchRequest, SearchResponse, SimilarImage
from transforms.batch_submission import URL_SCHEMA
from transforms.recognizer import Embedded
from transforms.stages import StageTimer
from transforms.store import ApiKey

router = APIRouter(tags=["search"])


@router.post(
    "/v1/search/similar",
    response_model=SearchResponse,
    response_model_exclude_none=True,
    openapi_extra=openapi_body(
        SearchRequest,
        {"file": {"type": "string", "format": "binary"}, "image_url": URL_SCHEMA, "image_hash": IMAGE_HASH},
    ),
    responses={code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 415, 422, 429, 503)},
    summary="Find your earlier images most similar to an image",
)
async def search_similar(request: Request, key: Annotated[ApiKey, Depends(api_key)]) -> SearchResponse:
    """Embed the image (or look up the vector of `image_hash`, one of your images) and answer your `k` most similar
    earlier images by cosine similarity, best first. Only your own images are searched.

    Admitted like a recognition (it may run the embedding model): 429 over the key's limits, 503 when full.
    """
    async with request.app.state.admission.sync_request(key):
        return await _search(request, key.caller_id)


async def _search(request: Request, caller: str) -> SearchResponse:
    services = request.app.state.services
    ports = services.ports
    timer: StageTimer = request.state.stages
    timer.path = "search"
    with timer.stage("parse"):
        body, upload = await parse_body(request, SearchRequest, services.settings.sync_max_bytes)
    sources = (body.image_url, body.image_data, upload, body.image_hash)
    check_one_source(*sources, names="image_url, image_data, a file part or image_hash")
    if body.image_hash is not None:
        model = await run_in_threadpool(ports.model_for, services.settings.embedding_model_id)
        with timer.stage("vector"):
            vector = await run_in_threadpool(ports.similarity.vector_of, caller, model, body.image_hash)
        query = Embedded(body.image_hash, model, vector)
    else:
        data = await image_bytes(request, body.image_url, body.image_data, upload, timer)
        query = await run_in_threadpool(services.recognizer.embed, data, timer)
    with timer.stage("search"):
        matches = await run_in_threadpool(
            ports.similarity.search, caller, query.model, query.vector, body.k, body.min_similarity
        )
    return SearchResponse(
        model_id=query.model.model_id,
        model_version=query.model.version,
        image_hash=query.image_hash,
        results=[SimilarImage.of(m) for m in matches],
    )

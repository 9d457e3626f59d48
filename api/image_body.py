"""Reading an image request body (JSON with url/base64, or multipart with a file part) and its image bytes;
shared by POST /v1/recognize and POST /v1/search/similar."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool

from transforms.errors import RecognitionError
from transforms.intake import check_size, decode_base64
from transforms.stages import StageTimer

BATCH_HINT = "Send larger images to POST /v1/recognize/batch."
Body = TypeVar("Body", bound=BaseModel)
FILE_PARTS = ("file", "image")  # the image's multipart part, and its older alias


def openapi_body(model: type[BaseModel], sources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The OpenAPI request body of an endpoint that takes `model` as JSON, or its fields as multipart with exactly one
    of `sources` (field name -> schema; `file` is an uploaded part) in place of `image_data`."""
    schema = model.model_json_schema()
    fields = {
        name: spec for name, spec in schema["properties"].items() if name not in {"image_data", *sources}
    }

    def form(source: str, source_schema: dict[str, Any]) -> dict[str, Any]:
        required = [source, *(n for n in schema.get("required", []) if n in fields)]
        properties = {source: source_schema, **fields}
        return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}

    multipart = {"oneOf": [form(name, spec) for name, spec in sources.items()]}
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "multipart/form-data": {"schema": multipart}},
        }
    }


async def parse_body(request: Request, model: type[Body], max_bytes: int) -> tuple[Body, bytes | None]:
    """The body as `model` plus uploaded bytes (multipart), with early size refusal."""
    length = request.headers.get("content-length")
    # base64 inflates by 4/3; allow that plus room for the other fields before reading anything.
    if length and length.isdigit() and int(length) > max_bytes * 4 // 3 + 64 * 1024:
        raise RecognitionError(
            "image_too_large", f"The request body is over the sync limit. {BATCH_HINT}", limit_bytes=max_bytes
        )
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        names = [name for name in model.model_fields if name != "image_data"]
        form = await request.form(max_files=1, max_fields=len(names))
        unknown = sorted(set(form) - {*names, *FILE_PARTS})
        if unknown:
            raise RecognitionError(
                "invalid_request", f"{unknown[0]}: unexpected form field; send only {', '.join(names)} and a file part",
                http_status=422,
            )
        upload = form.get(FILE_PARTS[0], form.get(FILE_PARTS[1]))
        if upload is None or isinstance(upload, str):
            data = None if upload is None else _field_bytes(upload)
        else:
            data = await upload.read()
        fields = {k: form[k] for k in names if k in form and form[k] != ""}
        try:
            return model.model_validate(fields), data
        except ValidationError as exc:
            raise invalid(exc) from exc
    try:
        return model.model_validate_json(await request.body()), None
    except ValidationError as exc:
        raise invalid(exc) from exc


def _field_bytes(value: str) -> bytes:
    """The bytes of a file part sent without a filename, which Starlette hands over as text.

    Starlette decodes such a part as UTF-8, or as Latin-1 when it is not valid UTF-8; that is reversible: bytes
    that Latin-1 gives back and that are not valid UTF-8 must have come that way, anything else was UTF-8.
    """
    try:
        raw = value.encode("latin-1")
        raw.decode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8")
    except UnicodeDecodeError:
        return raw
    return value.encode("utf-8")


def invalid(exc: ValidationError) -> RecognitionError:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    return RecognitionError("invalid_request", f"{field}: {err['msg']}" if field else err["msg"], http_status=422)


def check_one_source(*sources: object, names: str = "image_url, image_data or a file part") -> None:
    """Exactly one image source was given (url, base64, a file part, or on search an image hash)."""
    given = sum(x is not None for x in sources)
    if given == 0:
        raise RecognitionError("no_image", f"Send one of {names}.")
    if given > 1:
        raise RecognitionError("url_and_data", f"Send only one of {names}.")


async def image_bytes(
    request: Request, image_url: str | None, image_data: str | None, upload: bytes | None, timer: StageTimer
) -> bytes:
    """The one image of a request (`check_one_source` first): fetched (SSRF-guarded), base64-decoded or uploaded,
    within the sync limit."""
    services = request.app.state.services
    limit = services.settings.sync_max_bytes
    if image_url is not None:
        with timer.stage("fetch"):
            data = await run_in_threadpool(services.ports.fetcher.fetch, image_url, max_bytes=limit)
    else:
        with timer.stage("base64"):
            data = upload if upload is not None else decode_base64(image_data or "")
    check_size(data, limit, BATCH_HINT)
    return data

"""The one error type of the domain: a machine-readable code, a human sentence and the HTTP status.

The API maps a `RecognitionError` 1:1 to a JSON error body; the batch path stores `code` and `message` on the
failed item. Each code has one status (`STATUS_BY_CODE`), so a code means the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE: dict[str, int] = {
    # request shape
    "no_image": 400,
    "url_and_data": 400,
    "bad_base64": 400,
    "bad_url": 400,
    "bad_threshold": 422,
    "bad_canary_weight": 422,
    "invalid_request": 422,
    "no_valid_items": 422,
    # the image itself
    "image_too_large": 413,
    "not_an_image": 422,
    "unsupported_format": 415,
    "image_truncated": 422,
    "image_corrupt": 422,
    "too_many_pixels": 422,
    # fetching image_url (a well-formed URL whose target is refused: the schema cannot say which hosts are private)
    "url_forbidden": 422,
    "url_fetch_failed": 422,
    "url_timeout": 422,
    "url_too_many_redirects": 422,
    "url_not_image": 415,
    # models
    "unknown_model": 404,
    "inference_failed": 500,
    # batches and requests
    "batch_not_found": 404,
    "request_not_found": 404,
    "invalid_message": 422,  # a message on the batch topic that is not a valid batch item (dead-lettered)
    "idempotency_key_reused": 422,
    # admission control
    "rate_limited": 429,
    "too_many_concurrent_requests": 429,
    "too_many_items_in_flight": 429,
    "overloaded": 503,
    # blob references (batch claim checks)
    "blob_forbidden": 400,
    "blob_not_found": 404,
}


class RecognitionError(Exception):
    """A refused input or an unavailable resource, told to the caller as `{code, message}` with `http_status`."""

    def __init__(self, code: str, message: str, *, http_status: int | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status if http_status is not None else STATUS_BY_CODE.get(code, 400)
        # Extra facts for the body (e.g. the limit that was exceeded); JSON-serialisable values only.
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON error body."""
        return {"code": self.code, "message": self.message, **self.details}

    def __reduce__(self) -> tuple[Any, ...]:
        # An item's error travels between the batch job's operators; Exception's own pickling would call
        # __init__ with the message alone.
        return _rebuild_error, (type(self), self.code, self.message, self.http_status, self.details)

    def __repr__(self) -> str:
        return f"RecognitionError({self.code!r}, {self.message!r}, http_status={self.http_status})"


def _rebuild_error(
    cls: type[RecognitionError], code: str, message: str, http_status: int, details: dict[str, Any]
) -> RecognitionError:
    return cls(code, message, http_status=http_status, **details)

"""A small typed client of the REST API, for the CLI and the benchmarks."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx


class ApiError(RuntimeError):
    """The API answered with an error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class ApiClient:
    """`Authorization: Bearer <key>` requests against one API base URL."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float = 60.0) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def _json(self, response: httpx.Response) -> dict[str, Any]:
        body = response.json()
        if response.is_error:
            err = body.get("error", {})
            raise ApiError(response.status_code, err.get("code", "http_error"), err.get("message", response.text))
        return body

    def recognize(self, model_id: str, data: bytes, **fields: Any) -> dict[str, Any]:
        body = {"model_id": model_id, "image_data": base64.b64encode(data).decode(), **fields}
        return self._json(self._http.post("/v1/recognize", json=body))

    def submit_batch(self, items: list[dict[str, Any]], callback_url: str | None = None) -> dict[str, Any]:
        return self._json(self._http.post("/v1/recognize/batch", json={"items": items, "callback_url": callback_url}))

    def batch_status(self, batch_id: str, offset: int = 0, limit: int = 100) -> dict[str, Any]:
        params = {"offset": offset, "limit": limit}
        return self._json(self._http.get(f"/v1/recognize/batch/{batch_id}", params=params))


def items_from_paths(paths: list[Path], model_id: str) -> list[dict[str, Any]]:
    """Image files become inline items; a .txt file contributes one URL item per non-empty line."""
    items: list[dict[str, Any]] = []
    for path in paths:
        if path.suffix.lower() == ".txt":
            urls = (line.strip() for line in path.read_text().splitlines())
            items.extend({"image_url": u, "model_id": model_id} for u in urls if u and not u.startswith("#"))
        else:
            items.append({"image_data": base64.b64encode(path.read_bytes()).decode(), "model_id": model_id})
    return items

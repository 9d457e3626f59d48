"""The `RateLimiter` port: count a request against a key's rate, shared by every API process where it can be."""

from __future__ import annotations

from typing import Protocol


class RateLimiter(Protocol):
    def hit(self, key: str, per_s: float, burst: int) -> float | None:
        """Count one request of `key`, allowed `burst` at once and `per_s` sustained; None when allowed, else the
        seconds until one would be. Never raises: when its counters cannot be reached, the request is allowed."""
        ...

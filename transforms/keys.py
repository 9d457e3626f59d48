"""API keys: only a key's SHA-256 is stored; its id (a prefix of that hash) names it in listings and revocations.

`CallerKeys` resolves keys (caller and admission limits) on the request path and remembers known keys for
`Settings.key_cache_ttl_s`, so a revoked key (or a changed limit) takes effect in every API process within that time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence

from transforms.store import ApiKey, KeyStore

KEY_ID_LENGTH = 12


def hash_key(key: str) -> str:
    """What the store keeps of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key_hash: str) -> str:
    """The key's public name: a prefix of its hash (it reveals nothing of the key)."""
    return key_hash[:KEY_ID_LENGTH]


def find_key(keys: Sequence[ApiKey], key_or_id: str) -> ApiKey | None:
    """The key that `key_or_id` names: the key itself, or its id."""
    wanted = hash_key(key_or_id)
    return next((k for k in keys if k.key_hash == wanted or key_id(k.key_hash) == key_or_id), None)


class CallerKeys:
    """Resolves API keys to their records (caller and admission limits), remembering known keys briefly so a
    cache hit costs no database trip."""

    def __init__(self, keys: KeyStore, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.keys = keys
        self.ttl_s = ttl_s
        self.clock = clock
        self._known: dict[str, tuple[float, ApiKey]] = {}

    def remembered(self, key: str) -> ApiKey | None:
        """The record of a key resolved less than `ttl_s` ago, without asking the store."""
        hit = self._known.get(hash_key(key))
        return hit[1] if hit and self.clock() - hit[0] < self.ttl_s else None

    def lookup(self, key: str) -> ApiKey | None:
        """Ask the store (unknown and revoked keys: None) and remember a known key."""
        record = self.keys.get(key)
        if record is not None:  # unknown keys are not remembered: nothing to fill memory with
            self._known[record.key_hash] = (self.clock(), record)
        return record

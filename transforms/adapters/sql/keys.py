"""Callers and their API keys: only a key's SHA-256 is stored."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now
from transforms.keys import hash_key
from transforms.store import ApiKey


class SqlKeys:
    """The `KeyStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, caller_id: str) -> str:
        """Create the caller if new and return a fresh API key (only its hash is stored)."""
        key = "irk_" + secrets.token_urlsafe(32)
        self.add(caller_id, key)
        return key

    def add(self, caller_id: str, key: str) -> None:
        """Register `key` for `caller_id`, creating the caller (and its webhook secret) if new."""
        with self.db.engine.begin() as conn:
            conn.execute(
                self.db.dialect.insert(t.callers)
                .values(caller_id=caller_id, webhook_secret=secrets.token_hex(32), created_at=now())
                .on_conflict_do_nothing()
            )
            conn.execute(t.api_keys.insert().values(key_hash=hash_key(key), caller_id=caller_id, created_at=now()))

    def caller_for(self, key: str) -> str | None:
        """The caller an API key belongs to, or None when unknown or revoked."""
        record = self.get(key)
        return record.caller_id if record else None

    def get(self, key: str) -> ApiKey | None:
        """The live key's caller and admission limits (None where the settings' default applies)."""
        k = t.api_keys
        q = select(k).where(k.c.key_hash == hash_key(key), k.c.revoked_at.is_(None))
        with self.db.engine.connect() as conn:
            row = conn.execute(q).first()
        return ApiKey(**row._mapping) if row else None

    def set_limits(self, key_hash: str, **limits: float | int | None) -> bool:
        """Set admission limits of one key (by its hash); None restores the default. False if no such key."""
        unknown = set(limits) - set(ApiKey.LIMITS)
        if unknown:
            raise ValueError(f"unknown limits {sorted(unknown)}; known: {ApiKey.LIMITS}")
        with self.db.engine.begin() as conn:
            done = conn.execute(update(t.api_keys).where(t.api_keys.c.key_hash == key_hash).values(**limits))
        return done.rowcount == 1

    def all(self) -> list[ApiKey]:
        """Every key, oldest first (revoked ones included)."""
        k = t.api_keys
        with self.db.engine.connect() as conn:
            return [ApiKey(**row._mapping) for row in conn.execute(select(k).order_by(k.c.created_at))]

    def revoke(self, key_hash: str) -> bool:
        """Stamp the key revoked; False when it was unknown or already revoked."""
        k = t.api_keys
        with self.db.engine.begin() as conn:
            done = conn.execute(
                update(k).where(k.c.key_hash == key_hash, k.c.revoked_at.is_(None)).values(revoked_at=now())
            )
        return bool(done.rowcount)

    def webhook_secret(self, caller_id: str) -> str | None:
        """The secret the caller's webhooks are signed with."""
        with self.db.engine.connect() as conn:
            q = select(t.callers.c.webhook_secret).where(t.callers.c.caller_id == caller_id)
            return conn.execute(q).scalar_one_or_none()

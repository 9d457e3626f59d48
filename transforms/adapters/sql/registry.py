"""The model registry table: every version of every model, and which one is active or canary."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, select, update

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now
from transforms.handlers.base import ModelVersion


class SqlRegistry:
    """The `RegistryStore` port."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def seed(self, models: Iterable[ModelVersion]) -> None:
        """Insert registry rows that are not there yet (existing rows, e.g. promotions, are kept)."""
        rows = [model_version_row(m) for m in models]
        if rows:
            with self.db.engine.begin() as conn:
                conn.execute(self.db.dialect.insert(t.model_registry).on_conflict_do_nothing(), rows)

    def versions(self, model_id: str | None = None) -> list[ModelVersion]:
        """All versions of one model (or of every model), active first."""
        q = select(t.model_registry).order_by(t.model_registry.c.model_id, t.model_registry.c.is_active.desc())
        if model_id is not None:
            q = q.where(t.model_registry.c.model_id == model_id)
        with self.db.engine.connect() as conn:
            return [model_version_from_row(r._mapping) for r in conn.execute(q)]

    def set_route(self, model_id: str, active: str, canary: str | None = None, canary_weight: float = 0.0) -> None:
        """Make `active` the active version and `canary` (if any) the canary with `canary_weight`."""
        reg = t.model_registry
        with self.db.engine.begin() as conn:
            conn.execute(
                update(reg)
                .where(reg.c.model_id == model_id)
                .values(
                    is_active=reg.c.version == active,
                    canary_weight=case((reg.c.version == canary, canary_weight), else_=0.0),
                )
            )


def model_version_row(m: ModelVersion) -> dict[str, Any]:
    """A registry row's columns (the lifecycle's own columns keep their defaults)."""
    return {
        "model_id": m.model_id,
        "version": m.version,
        "handler": m.handler,
        "artifact_s3_path": m.artifact_uri,
        "framework": m.framework,
        "input_shape": list(m.input_shape),
        "default_confidence_threshold": m.default_confidence_threshold,
        "min_label_count": m.min_label_count,
        "is_active": m.is_active,
        "canary_weight": m.canary_weight,
        "extra": m.extra,
        "created_at": now(),
    }


def model_version_from_row(m: Any) -> ModelVersion:
    """The `ModelVersion` a registry row describes."""
    return ModelVersion(
        model_id=m["model_id"],
        version=m["version"],
        handler=m["handler"],
        artifact_uri=m["artifact_s3_path"],
        framework=m["framework"],
        input_shape=list(m["input_shape"]),
        default_confidence_threshold=m["default_confidence_threshold"],
        min_label_count=m["min_label_count"],
        is_active=m["is_active"],
        canary_weight=m["canary_weight"],
        extra=dict(m["extra"] or {}),
    )

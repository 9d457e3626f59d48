"""The `LifecycleStore` port (`transforms/lifecycle/ports.py`) over SQLAlchemy Core, PostgreSQL or SQLite.

Each lifecycle step is one transaction: the registry rows it changes and its `model_events` audit row together.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, select, update
from sqlalchemy.engine import Connection

from transforms.adapters.sql import tables as t
from transforms.adapters.sql.database import Database, now
from transforms.adapters.sql.registry import model_version_from_row, model_version_row
from transforms.handlers.base import ModelVersion
from transforms.lifecycle.gates import GateRules
from transforms.lifecycle.records import (
    EvaluationRecord,
    ModelEvent,
    PopularImage,
    Registration,
    RouteChange,
    VersionRecord,
    VersionState,
)

reg = t.model_registry


class SqlLifecycleStore:
    """The registry's lifecycle tables on the service's database."""

    def __init__(self, db: Database) -> None:
        self.engine = db.engine

    def versions(self, model_id: str | None = None) -> list[VersionRecord]:
        q = select(reg).order_by(reg.c.model_id, reg.c.version)
        if model_id is not None:
            q = q.where(reg.c.model_id == model_id)
        with self.engine.connect() as conn:
            return [_record(row._mapping) for row in conn.execute(q)]

    def add_version(self, model: ModelVersion, registration: Registration, event: ModelEvent) -> None:
        values = {
            **model_version_row(model),
            "state": VersionState.REGISTERED.value,
            "loaded": True,
            "source_uri": registration.source_uri,
            "artifact_sha256": registration.artifact_sha256,
            "registered_by": registration.registered_by,
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(reg.c.version).where(reg.c.model_id == model.model_id, reg.c.version == model.version)
            ).first()
            if exists:
                raise ValueError(f"{model.model_id} already has a version {model.version}")
            conn.execute(insert(reg).values(values))
            _insert_event(conn, event)

    def apply(self, change: RouteChange) -> int:
        with self.engine.begin() as conn:
            conn.execute(
                update(reg)
                .where(reg.c.model_id == change.model_id)
                .values(
                    is_active=reg.c.version == change.active,
                    canary_weight=case((reg.c.version == change.canary, change.canary_weight), else_=0.0),
                )
            )
            for version, state in change.states.items():
                _update_version(conn, change.model_id, version, state=state.value)
            for version, loaded in change.loaded.items():
                _update_version(conn, change.model_id, version, loaded=loaded)
            return _insert_event(conn, change.event)

    def set_state(self, event: ModelEvent, state: VersionState | None = None, loaded: bool | None = None) -> int:
        values: dict[str, Any] = {}
        if state is not None:
            values["state"] = state.value
        if loaded is not None:
            values["loaded"] = loaded
        with self.engine.begin() as conn:
            if values:
                _update_version(conn, event.model_id, event.version or "", **values)
            return _insert_event(conn, event)

    def save_evaluation(self, evaluation: EvaluationRecord, event: ModelEvent) -> int:
        ev = t.model_evaluations
        with self.engine.begin() as conn:
            evaluation_id = conn.execute(
                insert(ev)
                .values(
                    model_id=evaluation.model_id,
                    version=evaluation.version,
                    baseline_version=evaluation.baseline_version,
                    passed=evaluation.passed,
                    report=evaluation.report,
                    summary_md=evaluation.summary_md,
                    created_at=evaluation.created_at,
                    created_by=evaluation.created_by,
                )
                .returning(ev.c.evaluation_id)
            ).scalar_one()
            conn.execute(
                update(reg)
                .where(
                    reg.c.model_id == evaluation.model_id,
                    reg.c.version == evaluation.version,
                    reg.c.state == VersionState.REGISTERED.value,
                )
                .values(state=VersionState.EVALUATED.value)
            )
            _insert_event(conn, ModelEvent(**{**event.__dict__, "evaluation_id": evaluation_id}))
        return evaluation_id

    def latest_evaluation(self, model_id: str, version: str) -> EvaluationRecord | None:
        ev = t.model_evaluations
        q = (
            select(ev)
            .where(ev.c.model_id == model_id, ev.c.version == version)
            .order_by(ev.c.evaluation_id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return EvaluationRecord(**_utc(row._mapping)) if row else None

    def events(self, model_id: str, limit: int = 50) -> list[ModelEvent]:
        e = t.model_events
        q = select(e).where(e.c.model_id == model_id).order_by(e.c.event_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [ModelEvent(**_utc(row._mapping)) for row in conn.execute(q)]

    def gate_rules(self, model_id: str) -> GateRules:
        g = t.model_gates
        with self.engine.connect() as conn:
            rules = conn.execute(select(g.c.rules).where(g.c.model_id == model_id)).scalar_one_or_none()
        return GateRules.model_validate(rules) if rules else GateRules()

    def set_gate_rules(self, model_id: str, rules: GateRules, event: ModelEvent) -> None:
        g = t.model_gates
        with self.engine.begin() as conn:
            conn.execute(g.delete().where(g.c.model_id == model_id))
            conn.execute(
                insert(g).values(model_id=model_id, rules=rules.model_dump(), updated_at=now(), updated_by=event.actor)
            )
            _insert_event(conn, event)

    def popular_images(self, model_id: str, window: timedelta, limit: int, exclude_caller: str) -> list[PopularImage]:
        r = t.inference_requests
        count = func.count().label("requests")
        q = (
            select(r.c.image_hash, count, func.max(r.c.image_uri).label("image_uri"))
            .where(
                r.c.model_id == model_id,
                r.c.submitted_at >= now() - window,
                r.c.image_hash.is_not(None),
                r.c.caller_id != exclude_caller,
            )
            .group_by(r.c.image_hash)
            .order_by(count.desc(), r.c.image_hash)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [PopularImage(h, n, uri) for h, n, uri in conn.execute(q)]


def _update_version(conn: Connection, model_id: str, version: str, **values: Any) -> None:
    done = conn.execute(update(reg).where(reg.c.model_id == model_id, reg.c.version == version).values(**values))
    if not done.rowcount:
        raise ValueError(f"{model_id} has no version {version!r}")


def _insert_event(conn: Connection, event: ModelEvent) -> int:
    e = t.model_events
    values = {k: v for k, v in event.__dict__.items() if k != "event_id"}
    values["at"] = event.at or now()
    return conn.execute(insert(e).values(values).returning(e.c.event_id)).scalar_one()


def _record(m: Any) -> VersionRecord:
    return VersionRecord(
        model=model_version_from_row(m),
        stored_state=VersionState(m["state"]),
        loaded=m["loaded"],
        registration=Registration(m["source_uri"], m["artifact_sha256"], m["registered_by"]),
        created_at=m["created_at"],
    )


def _utc(m: Any) -> dict[str, Any]:
    """A row as a dict, its timestamps aware (SQLite hands them back naive, in UTC)."""
    return {k: v.replace(tzinfo=UTC) if isinstance(v, datetime) and v.tzinfo is None else v for k, v in m.items()}

"""What callers may know of the models (`GET /v1/models`): each model's versions and their states, the active
version, the canary and its weight, and the active version's default threshold and label names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from transforms.errors import RecognitionError
from transforms.handlers.base import ModelHandler, ModelVersion
from transforms.lifecycle.ports import LifecycleStore
from transforms.lifecycle.records import VersionRecord, VersionState


@dataclass(frozen=True)
class VersionSummary:
    version: str
    state: str
    framework: str
    handler: str


@dataclass(frozen=True)
class ModelSummary:
    model_id: str
    active_version: str | None
    canary_version: str | None
    canary_weight: float
    default_confidence_threshold: float | None
    min_label_count: int | None
    labels: list[str]
    versions: list[VersionSummary]


class ModelDirectory:
    """Reads the registry for callers; the label names come from the active version's handler."""

    def __init__(self, store: LifecycleStore, handler_for: Callable[[ModelVersion], ModelHandler]) -> None:
        self.store = store
        self.handler_for = handler_for

    def models(self) -> list[ModelSummary]:
        by_model: dict[str, list[VersionRecord]] = {}
        for record in self.store.versions():
            by_model.setdefault(record.model.model_id, []).append(record)
        return [self._summary(model_id, records) for model_id, records in sorted(by_model.items())]

    def model(self, model_id: str) -> ModelSummary:
        records = self.store.versions(model_id)
        if not records:
            raise RecognitionError("unknown_model", f"There is no model {model_id!r}.", model_id=model_id)
        return self._summary(model_id, records)

    def _summary(self, model_id: str, records: list[VersionRecord]) -> ModelSummary:
        records = sorted(records, key=lambda r: int(r.version) if r.version.isdigit() else 0)
        active = next((r.model for r in records if r.state is VersionState.ACTIVE), None)
        canary = next((r.model for r in records if r.state is VersionState.CANARY), None)
        return ModelSummary(
            model_id=model_id,
            active_version=active.version if active else None,
            canary_version=canary.version if canary else None,
            canary_weight=canary.canary_weight if canary else 0.0,
            default_confidence_threshold=active.default_confidence_threshold if active else None,
            min_label_count=active.min_label_count if active else None,
            labels=list(self.handler_for(active).labels) if active else [],
            versions=[VersionSummary(r.version, r.state.value, r.model.framework, r.model.handler) for r in records],
        )

"""What the lifecycle stores: version states, the registration of an artifact, evaluations and audit events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from transforms.handlers.base import ModelVersion


class VersionState(StrEnum):
    """Where a version is in its lifecycle. `canary` and `active` follow from the route (the registry's
    `canary_weight` and `is_active`); the others are stored."""

    REGISTERED = "registered"
    EVALUATED = "evaluated"
    CANARY = "canary"
    ACTIVE = "active"
    RETIRED = "retired"


STORED_STATES = (VersionState.REGISTERED, VersionState.EVALUATED, VersionState.RETIRED)


@dataclass(frozen=True)
class Registration:
    """How a version came to be: the artifact as uploaded, and who registered it."""

    source_uri: str | None = None  # the artifact as uploaded (kept beside the served ONNX)
    artifact_sha256: str | None = None  # of the served ONNX file
    registered_by: str | None = None


@dataclass(frozen=True)
class VersionRecord:
    """A registry row with its lifecycle facts."""

    model: ModelVersion
    stored_state: VersionState
    loaded: bool  # whether the serving back end should hold it
    registration: Registration
    created_at: datetime | None = None

    @property
    def version(self) -> str:
        return self.model.version

    @property
    def state(self) -> VersionState:
        if self.model.is_active:
            return VersionState.ACTIVE
        if self.model.canary_weight > 0:
            return VersionState.CANARY
        return self.stored_state


@dataclass(frozen=True)
class EvaluationRecord:
    """A stored evaluation: metrics and gate verdict as JSON, and a short markdown summary."""

    evaluation_id: int
    model_id: str
    version: str
    baseline_version: str | None
    passed: bool
    report: dict[str, Any]
    summary_md: str
    created_at: datetime
    created_by: str | None = None


@dataclass(frozen=True)
class ModelEvent:
    """One audit row: who did what to which version, when, on which evaluation."""

    model_id: str
    action: str  # register, evaluate, canary, promote, rollback, retire, gate
    actor: str
    version: str | None = None
    from_version: str | None = None  # the active version before a promote or rollback
    evaluation_id: int | None = None
    forced: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None
    event_id: int | None = None


@dataclass(frozen=True)
class RouteChange:
    """One lifecycle step's whole write: the route in the registry, the versions' stored states, the audit row."""

    model_id: str
    active: str
    canary: str | None
    canary_weight: float
    states: dict[str, VersionState]
    loaded: dict[str, bool]
    event: ModelEvent


@dataclass(frozen=True)
class PopularImage:
    """An image often asked of a model, and where its bytes can be read again."""

    image_hash: str
    requests: int
    image_uri: str | None

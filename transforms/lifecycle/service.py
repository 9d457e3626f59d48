"""The lifecycle use cases: evaluate, canary, promote (gated, optionally warm), roll back, retire, and keeping the
serving back end's loaded versions in line with the registry.

Order of every step, so that no request fails: the version that will take traffic is loaded and ready first; then
the registry rows, the stored states and the audit row are written in one transaction; then the Redis route (every
API process and Flink operator routes the new way at once). A retired version is unloaded last, after a drain.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from transforms.handlers.base import ModelVersion
from transforms.lifecycle.errors import LifecycleError
from transforms.lifecycle.evalset import eval_set_for
from transforms.lifecycle.evaluation import Evaluator
from transforms.lifecycle.gates import GateRules
from transforms.lifecycle.ports import LifecycleStore, ModelRepository
from transforms.lifecycle.records import (
    EvaluationRecord,
    ModelEvent,
    RouteChange,
    VersionRecord,
    VersionState,
)
from transforms.lifecycle.warmup import CacheWarmer, WarmOptions, WarmProgress
from transforms.routing import RouteEntry, VersionRouter

READY = "READY"


class ModelLifecycle:
    """One model registry's lifecycle over its store, the serving back end and the route cache."""

    def __init__(
        self,
        store: LifecycleStore,
        repository: ModelRepository,
        router: VersionRouter,
        evaluator: Evaluator,
        warmer: CacheWarmer | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.repository = repository
        self.router = router
        self.evaluator = evaluator
        self.warmer = warmer
        self.sleep = sleep

    # --- reading -----------------------------------------------------------------------------------------------

    def versions(self, model_id: str) -> list[VersionRecord]:
        """Every version of a model, in version order; `unknown_model` when there is none."""
        records = sorted(self.store.versions(model_id), key=lambda r: int(r.version) if r.version.isdigit() else 0)
        if not records:
            raise LifecycleError("unknown_model", f"there is no model {model_id!r} in the registry")
        return records

    def version(self, model_id: str, version: str) -> VersionRecord:
        for record in self.versions(model_id):
            if record.version == version:
                return record
        known = [r.version for r in self.versions(model_id)]
        raise LifecycleError("unknown_version", f"{model_id} has no version {version!r} (known: {known})")

    def active(self, model_id: str) -> VersionRecord | None:
        return next((r for r in self.versions(model_id) if r.model.is_active), None)

    # --- evaluation --------------------------------------------------------------------------------------------

    def evaluate(self, model_id: str, version: str, actor: str) -> EvaluationRecord:
        """Run the version (and the active one) over the model's evaluation set; store report and verdict."""
        record = self.version(model_id, version)
        active = self.active(model_id)
        baseline = active.model if active is not None and active.version != version else None
        self._ensure_loaded(model_id, version)
        try:
            eval_set = eval_set_for(record.model)
        except FileNotFoundError as exc:
            raise LifecycleError("no_eval_set", str(exc)) from exc
        result = self.evaluator.evaluate(record.model, baseline, eval_set, self.store.gate_rules(model_id))
        evaluation = EvaluationRecord(
            evaluation_id=0,
            model_id=model_id,
            version=version,
            baseline_version=baseline.version if baseline else None,
            passed=result.passed,
            report=result.report,
            summary_md=result.summary_md,
            created_at=datetime.now(UTC),
            created_by=actor,
        )
        event = ModelEvent(
            model_id,
            "evaluate",
            actor,
            version=version,
            details={"passed": result.passed, "baseline": evaluation.baseline_version},
        )
        evaluation_id = self.store.save_evaluation(evaluation, event)
        latest = self.store.latest_evaluation(model_id, version)
        assert latest is not None and latest.evaluation_id == evaluation_id
        return latest

    def set_gate(self, model_id: str, rules: GateRules, actor: str) -> None:
        self.versions(model_id)
        self.store.set_gate_rules(model_id, rules, ModelEvent(model_id, "gate", actor, details=rules.model_dump()))

    # --- routing steps -----------------------------------------------------------------------------------------

    def canary(self, model_id: str, version: str, weight: float, actor: str) -> RouteEntry:
        """Send `weight` of the traffic to `version` (0 ends the canary); the active version keeps the rest."""
        if not 0.0 <= weight <= 1.0:
            raise LifecycleError("bad_canary_weight", f"--weight must be in [0, 1], not {weight}")
        active = self._require_active(model_id)
        record = self.version(model_id, version)
        if record.model.is_active:
            raise LifecycleError("already_active", f"{model_id} v{version} is the active version already")
        if weight > 0:
            self._ensure_loaded(model_id, version)
        latest = self.store.latest_evaluation(model_id, version)
        entry = RouteEntry(active.version, version if weight > 0 else None, weight)
        event = ModelEvent(
            model_id,
            "canary",
            actor,
            version=version,
            from_version=active.version,
            evaluation_id=latest.evaluation_id if latest else None,
            details={"weight": weight},
        )
        self._apply(entry, {}, {version: True} if weight > 0 else {}, event)
        return entry

    def promote(
        self,
        model_id: str,
        version: str,
        actor: str,
        force: bool = False,
        warm: WarmOptions | None = None,
        progress: Callable[[WarmProgress], None] = lambda _: None,
    ) -> tuple[RouteEntry, WarmProgress | None]:
        """Make `version` the active one: refused without a passing evaluation against the current active version
        unless forced (recorded); with `warm`, the cache is warmed for it first. The former active is retired
        (kept loaded, for a rollback)."""
        record = self.version(model_id, version)
        if record.model.is_active:
            raise LifecycleError("already_active", f"{model_id} v{version} is the active version already")
        active = self.active(model_id)
        latest = self.store.latest_evaluation(model_id, version)
        problem = gate_problem(latest, active.version if active else None)
        if problem and not force:
            raise LifecycleError(
                "gate_not_passed",
                f"{model_id} v{version} cannot be promoted: {problem}. Run "
                f"`imgrec models evaluate {model_id} {version}`, or promote with "
                "--force (recorded in model_events).",
            )
        self._ensure_loaded(model_id, version)
        warmed = None
        if warm is not None:
            if self.warmer is None:
                raise LifecycleError(
                    "warm_unavailable",
                    "warm promotion needs a shared result cache and the batch "
                    "path (IMGREC_REDIS_URL and IMGREC_KAFKA_BOOTSTRAP)",
                )
            warmed = self.warmer.warm(record.model, warm, progress)
        states = {active.version: VersionState.RETIRED} if active else {}
        details = {"warm": warmed.to_dict() if warmed else None}
        if problem:
            details["gate_problem"] = problem
        event = ModelEvent(
            model_id,
            "promote",
            actor,
            version=version,
            from_version=active.version if active else None,
            evaluation_id=latest.evaluation_id if latest else None,
            forced=bool(problem),
            details=details,
        )
        entry = RouteEntry(version)
        self._apply(entry, states, {version: True}, event)
        return entry, warmed

    def rollback(self, model_id: str, actor: str) -> RouteEntry:
        """End a running canary; with none, go back to the version active before the last promotion or rollback
        (the version rolled back from is retired, still loaded)."""
        active = self._require_active(model_id)
        canary = next((r for r in self.versions(model_id) if r.state is VersionState.CANARY), None)
        if canary is not None:
            event = ModelEvent(
                model_id,
                "rollback",
                actor,
                version=active.version,
                from_version=active.version,
                details={"ended_canary": canary.version, "weight": canary.model.canary_weight},
            )
            entry = RouteEntry(active.version)
            self._apply(entry, {}, {}, event)
            return entry
        last = next(
            (
                e
                for e in self.store.events(model_id)
                if e.action in ("promote", "rollback") and e.from_version and e.from_version != active.version
            ),
            None,
        )
        if last is None or last.from_version is None:
            raise LifecycleError("nothing_to_roll_back", f"{model_id} has no earlier active version to go back to")
        target = self.version(model_id, last.from_version)
        self._ensure_loaded(model_id, target.version)
        event = ModelEvent(model_id, "rollback", actor, version=target.version, from_version=active.version)
        entry = RouteEntry(target.version)
        self._apply(entry, {active.version: VersionState.RETIRED}, {target.version: True}, event)
        return entry

    def retire(self, model_id: str, version: str, actor: str, drain_s: float = 5.0) -> dict[str, str]:
        """Take a version out of service and unload it after `drain_s` (requests routed before are finished)."""
        record = self.version(model_id, version)
        if record.state in (VersionState.ACTIVE, VersionState.CANARY):
            raise LifecycleError(
                "version_in_use",
                f"{model_id} v{version} is {record.state}: promote another version or end the canary first",
            )
        self.store.set_state(ModelEvent(model_id, "retire", actor, version=version), VersionState.RETIRED, False)
        self.sleep(drain_s)
        return self.repository.sync(model_id, [r.model for r in self.versions(model_id) if r.loaded])

    def sync(self, model_id: str) -> dict[str, str]:
        """Load what the registry says should be loaded (after a Triton restart, say); each version's state."""
        wanted = [r.model for r in self.versions(model_id) if r.loaded]
        ready = self.repository.readiness(model_id)
        if all(ready.get(m.version) == READY for m in wanted) and set(ready) <= {m.version for m in wanted}:
            return ready
        return self.repository.sync(model_id, wanted)

    # --- helpers -----------------------------------------------------------------------------------------------

    def _require_active(self, model_id: str) -> VersionRecord:
        active = self.active(model_id)
        if active is None:
            raise LifecycleError("no_active_version", f"{model_id} has no active version; promote one first")
        return active

    def _ensure_loaded(self, model_id: str, version: str) -> None:
        """Load `version` beside the loaded ones unless the back end already serves it."""
        records = self.versions(model_id)
        wanted: list[ModelVersion] = [r.model for r in records if r.loaded or r.version == version]
        if self.repository.readiness(model_id).get(version) != READY:
            self.repository.sync(model_id, wanted)

    def _apply(
        self, entry: RouteEntry, states: dict[str, VersionState], loaded: dict[str, bool], event: ModelEvent
    ) -> None:
        change = RouteChange(
            event.model_id, entry.version, entry.canary_version, entry.canary_weight, states, loaded, event
        )
        self.store.apply(change)
        self.router.set_route(event.model_id, entry)


def gate_problem(latest: EvaluationRecord | None, active_version: str | None) -> str | None:
    """Why the latest evaluation does not allow a promotion (None: it does)."""
    if latest is None:
        return "it has no evaluation"
    if not latest.passed:
        failed = [c["rule"] for c in latest.report.get("gate", {}).get("checks", []) if not c["passed"]]
        return f"evaluation #{latest.evaluation_id} failed the gate ({'; '.join(failed)})"
    if latest.baseline_version != active_version:
        return (
            f"evaluation #{latest.evaluation_id} compared it with v{latest.baseline_version}, but the active "
            f"version is v{active_version}"
        )
    return None

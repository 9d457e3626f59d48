"""The lifecycle use cases on SQLite, the fake back end and a recording model repository: states, the gate,
audit rows, the route, what is loaded, refused registrations leaving nothing behind, and the cache warm-up."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from transforms.adapters.sql.lifecycle import SqlLifecycleStore
from transforms.batch_queue import InProcessBatchQueue
from transforms.batch_steps import BatchSteps
from transforms.cache import CacheKey
from transforms.handlers import HANDLERS, get_handler
from transforms.handlers.base import Label, ModelVersion
from transforms.lifecycle.errors import LifecycleError
from transforms.lifecycle.evaluation import Evaluator
from transforms.lifecycle.ports import TensorSpec
from transforms.lifecycle.records import ModelEvent, PopularImage, Registration, VersionState
from transforms.lifecycle.registration import RegisterRequest, Registrar
from transforms.lifecycle.service import ModelLifecycle
from transforms.lifecycle.warmup import CacheWarmer, WarmOptions
from transforms.model_registry import find
from transforms.ports import Ports

TINY = "tiny-rgb"


class RecordingRepository:
    """The `ModelRepository` port in memory: what was asked to be loaded, every version READY."""

    def __init__(self) -> None:
        self.loaded: dict[str, list[str]] = {}
        self.syncs: list[tuple[str, list[str]]] = []

    def sync(self, model_id: str, versions: Sequence[ModelVersion]) -> dict[str, str]:
        self.loaded[model_id] = sorted(v.version for v in versions)
        self.syncs.append((model_id, self.loaded[model_id]))
        return self.readiness(model_id)

    def readiness(self, model_id: str) -> dict[str, str]:
        return dict.fromkeys(self.loaded.get(model_id, []), "READY")

    def close(self) -> None:
        pass


@pytest.fixture
def kit(ports: Ports) -> tuple[ModelLifecycle, SqlLifecycleStore, RecordingRepository]:
    store = SqlLifecycleStore(ports.store.db)  # type: ignore[attr-defined]
    repository = RecordingRepository()
    ticks = iter(range(10**6))  # every image takes one "millisecond" in every version: latency is not the point here
    evaluator = Evaluator(ports.backend, ports.handler, "fake", repeats=1, clock=lambda: next(ticks) / 1000)
    return ModelLifecycle(store, repository, ports.router, evaluator, sleep=lambda _: None), store, repository


def add(store: SqlLifecycleStore, version: str, **extra: object) -> ModelVersion:
    v1 = find(TINY)
    row = replace(v1, version=version, is_active=False, extra={**v1.extra, **extra})
    store.add_version(row, Registration("file:///x", None, "test"), ModelEvent(TINY, "register", "test", version))
    return row


def test_gate_canary_promote_rollback_are_routed_and_audited(kit, ports: Ports) -> None:
    lifecycle, store, repository = kit
    add(store, "2")
    with pytest.raises(LifecycleError, match="no evaluation"):
        lifecycle.promote(TINY, "2", "ops")
    evaluation = lifecycle.evaluate(TINY, "2", "ops")
    assert evaluation.passed and evaluation.baseline_version == "1"
    assert evaluation.report["candidate"]["quality"] == evaluation.report["active"]["quality"]
    assert lifecycle.version(TINY, "2").state is VersionState.EVALUATED

    entry = lifecycle.canary(TINY, "2", 0.25, "ops")
    assert (entry.version, entry.canary_version, entry.canary_weight) == ("1", "2", 0.25)
    assert ports.router.entry(TINY) == entry and lifecycle.version(TINY, "2").state is VersionState.CANARY
    assert "2" in repository.loaded[TINY]

    lifecycle.promote(TINY, "2", "ops")
    states = {r.version: r.state for r in lifecycle.versions(TINY)}
    assert states == {"1": VersionState.RETIRED, "2": VersionState.ACTIVE}
    assert ports.router.entry(TINY).version == "2" and ports.router.entry(TINY).canary_version is None

    lifecycle.rollback(TINY, "ops")
    states = {r.version: r.state for r in lifecycle.versions(TINY)}
    assert states == {"1": VersionState.ACTIVE, "2": VersionState.RETIRED}
    actions = [(e.action, e.version, e.from_version) for e in store.events(TINY)]
    assert actions[:4] == [("rollback", "1", "2"), ("promote", "2", "1"), ("canary", "2", "1"), ("evaluate", "2", None)]
    assert store.events(TINY)[1].evaluation_id == evaluation.evaluation_id

    lifecycle.retire(TINY, "2", "ops", drain_s=0)
    assert repository.loaded[TINY] == ["1"] and not lifecycle.version(TINY, "2").loaded
    with pytest.raises(LifecycleError, match="is active"):
        lifecycle.retire(TINY, "1", "ops")


def test_a_version_failing_the_gate_needs_force(kit) -> None:
    lifecycle, store, _ = kit
    add(store, "3", mean=[1.0, 0.0, 0.0])  # a preprocessing slip: the red channel is wiped out
    evaluation = lifecycle.evaluate(TINY, "3", "ops")
    assert not evaluation.passed and evaluation.report["candidate"]["quality"]["top1"] < 0.5
    with pytest.raises(LifecycleError, match="failed the gate"):
        lifecycle.promote(TINY, "3", "ops")
    assert lifecycle.active(TINY).version == "1"  # type: ignore[union-attr]
    lifecycle.promote(TINY, "3", "ops", force=True)
    event = store.events(TINY)[0]
    assert event.action == "promote" and event.forced and event.evaluation_id == evaluation.evaluation_id
    assert "failed the gate" in event.details["gate_problem"]


def test_an_evaluation_against_an_older_active_version_is_stale(kit) -> None:
    lifecycle, store, _ = kit
    add(store, "2")
    add(store, "3")
    lifecycle.evaluate(TINY, "3", "ops")
    lifecycle.evaluate(TINY, "2", "ops")
    lifecycle.promote(TINY, "2", "ops")
    with pytest.raises(LifecycleError, match="compared it with v1"):
        lifecycle.promote(TINY, "3", "ops")


@dataclass
class FakeArtifact:
    """The tiny model's outputs (8 x mean colour) behind any signature."""

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        return {"logits": 8 * feeds["input"].mean(axis=(2, 3))}


class FakeTools:
    """`ArtifactTools` without ONNX Runtime: the 'artifact' is the tiny model's signature, or a broken one."""

    def __init__(self, input_shape: list[int | None], loads: bool = True) -> None:
        self.input_shape = input_shape
        self.loads = loads

    def fetch(self, uri: str, dest: Path) -> None:
        dest.write_bytes(b"onnx")

    def open(self, path: Path) -> FakeArtifact:
        if not self.loads:
            raise LifecycleError("artifact_unloadable", "the artifact is not a loadable ONNX model: truncated")
        return FakeArtifact([TensorSpec("input", [None, *self.input_shape])], [TensorSpec("logits", [None, 3])])

    def torchscript_to_onnx(self, *args: object) -> None:
        raise AssertionError("not used")


def registrar(ports: Ports, store: SqlLifecycleStore, tools: FakeTools, repository: RecordingRepository) -> Registrar:
    model_store = ports.settings.resolved_model_store
    return Registrar(
        store,
        tools,
        repository,
        ports.settings.var_dir / "artifacts",
        model_store,
        lambda m: get_handler(m, model_store),
        set(HANDLERS),
    )


def test_registration_keeps_a_checked_artifact(kit, ports: Ports) -> None:
    _, store, repository = kit
    record = registrar(ports, store, FakeTools([3, 8, 8]), repository).register(
        RegisterRequest(TINY, "2", "file:///elsewhere/model.onnx", "classifier", "ops", threshold=0.4)
    )
    assert record.state is VersionState.REGISTERED and not record.model.is_active
    assert record.model.default_confidence_threshold == 0.4 and record.registration.source_uri.endswith("model.onnx")
    directory = ports.settings.var_dir / "artifacts" / TINY / "2"
    assert sorted(p.name for p in directory.iterdir()) == ["labels.json", "model.onnx"]
    assert json.loads((directory / "labels.json").read_text()) == ["red", "green", "blue"]
    assert repository.loaded[TINY] == ["1", "2"]


@pytest.mark.parametrize(
    ("tools", "code"),
    [(FakeTools([3, 8, 8], loads=False), "artifact_unloadable"), (FakeTools([3, 224, 224]), "wrong_input_shape")],
)
def test_a_refused_artifact_leaves_nothing_behind(kit, ports: Ports, tools: FakeTools, code: str) -> None:
    _, store, repository = kit
    with pytest.raises(LifecycleError) as refused:
        registrar(ports, store, tools, repository).register(
            RegisterRequest(TINY, "2", "file:///x/model.onnx", "classifier", "ops")
        )
    assert refused.value.code == code
    assert [r.version for r in store.versions(TINY)] == ["1"]
    assert not list((ports.settings.var_dir / "artifacts" / TINY).iterdir())
    assert repository.syncs == [] and [e.action for e in store.events(TINY)] == []


def test_registration_input_checks(kit, ports: Ports) -> None:
    _, store, repository = kit
    reg = registrar(ports, store, FakeTools([3, 8, 8]), repository)
    for request, code in [
        (RegisterRequest(TINY, "v2", "file:///x", "classifier", "ops"), "bad_version"),
        (RegisterRequest(TINY, "1", "file:///x", "classifier", "ops"), "version_exists"),
        (RegisterRequest(TINY, "2", "file:///x", "nope", "ops"), "unknown_handler"),
        (RegisterRequest(TINY, "2", "file:///x", "classifier", "ops", framework="tf"), "bad_framework"),
        (RegisterRequest("new-model", "1", "file:///x", "classifier", "ops"), "new_model_needs_labels"),
    ]:
        with pytest.raises(LifecycleError) as refused:
            reg.register(request)
        assert refused.value.code == code


class PinnedStore:
    """The popular images of a model (the one LifecycleStore call a warm-up makes)."""

    def __init__(self, images: list[PopularImage]) -> None:
        self.images = images

    def popular_images(self, model_id: str, window: timedelta, limit: int, exclude_caller: str) -> list[PopularImage]:
        return self.images[:limit]


def test_warm_up_runs_the_popular_images_through_the_batch_path(ports: Ports, tmp_path: Path) -> None:
    from tests.unit.fakes import png

    v2 = replace(find(TINY), version="2", is_active=False)
    ports.store.registry.seed([v2])
    images = {name: png(rgb) for name, rgb in (("r", (250, 0, 0)), ("g", (0, 250, 0)), ("b", (0, 0, 250)))}
    from transforms.intake import sha256_hex

    popular = [
        PopularImage(sha256_hex(data), 5 - i, ports.blobs.put(f"images/{name}", data))
        for i, (name, data) in enumerate(images.items())
    ]
    popular.append(PopularImage("f" * 64, 1, None))  # a hash whose bytes were never kept
    ports.cache.put(popular[0].image_hash, TINY, "2", [Label("red", 1.0)])  # already warm
    queue = InProcessBatchQueue()
    steps = BatchSteps(ports)

    published: list = []

    def drain(_: object) -> None:  # what the embedded workers do between two polls
        while not queue.queue.empty():
            published.append(queue.queue.get())
        steps.run(published[-2:])

    warmer = CacheWarmer(PinnedStore(popular), ports.cache, queue, sleep=drain)  # type: ignore[arg-type]
    seen = []
    result = warmer.warm(v2, WarmOptions(top_n=10, deadline_s=30), seen.append)
    assert (result.total, result.cached, result.queued, result.without_image) == (4, 3, 2, 1)
    assert not result.timed_out and seen[0].cached == 1
    results = ports.cache.get_many([CacheKey(p.image_hash, TINY, "2") for p in popular[:3]])
    assert [r.labels[0].label for r in results if r] == ["red", "green", "blue"]
    assert {m.model_version for m in published} == {"2"}  # pinned, not routed (v1 is the active version)
    row = ports.store.requests.get(published[0].request_id)
    assert row is not None and row["caller_id"] == "model-warmup" and row["status"] == "done"


def test_warm_up_stops_at_the_deadline(ports: Ports) -> None:
    v2 = replace(find(TINY), version="2", is_active=False)
    clock = iter(range(0, 1000, 10))
    queue = InProcessBatchQueue()
    warmer = CacheWarmer(
        PinnedStore([PopularImage("a" * 64, 3, "file:///nowhere")]),
        ports.cache,
        queue,  # type: ignore[arg-type]
        clock=lambda: float(next(clock)),
        sleep=lambda _: None,
    )
    result = warmer.warm(v2, WarmOptions(top_n=5, deadline_s=25))
    assert result.timed_out and result.cached == 0 and result.queued == 1

"""The Helm chart, offline: helm lint and helm template for both sizes, every manifest against its schema (built-in
kinds with kubernetes-validate, KEDA and Flink custom resources with their CRD schemas), and the chart's wiring
checked against the code it deploys (probe paths, settings names, the job's arguments, the consumer group)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyflink
import pytest
import yaml
from typer.testing import CliRunner

from api.routes.health import router as health_router
from pipelines.flink_job import parse_args
from pipelines.job_spec import CONSUMER_GROUP, load_settings
from runners.cli import app
from runners.deploy.chart import CHART_DIR, SIZES, ChartError, Manifest, lint, render, validate
from runners.deploy.tools import helm_path
from runners.stack.settings import StackSettings
from transforms.settings import REPO_ROOT, Settings

HELM = helm_path(StackSettings().cache_dir)
GPU = "nvidia.com/gpu"


@pytest.fixture(scope="module", params=SIZES)
def size(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def manifests(size: str) -> list[Manifest]:
    assert HELM.exists(), f"{HELM} is missing: `make test` (or `imgrec deploy tools`) builds it"
    return render(HELM, size)


def one(manifests: list[Manifest], kind: str, component: str | None = None) -> Manifest:
    found = [m for m in manifests if m["kind"] == kind
             and (component is None or m["metadata"]["labels"]["app.kubernetes.io/component"] == component)]
    assert len(found) == 1, f"{len(found)} {kind} objects for {component}"
    return found[0]


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    spec = manifest["spec"]["template"]["spec"] if manifest["kind"] != "FlinkDeployment" else \
        manifest["spec"]["podTemplate"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def walk(node: Any) -> Iterator[Any]:
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    for child in children:
        yield from walk(child)


def test_lint_passes(size: str) -> None:
    assert "0 chart(s) failed" in lint(HELM, size)


def test_every_manifest_validates_against_its_schema(manifests: list[Manifest]) -> None:
    kinds = {m["kind"] for m in manifests}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Job", "ScaledObject",
            "FlinkDeployment"} <= kinds
    assert [str(f) for f in validate(manifests)] == []


def test_validation_catches_a_bad_builtin_field_and_a_bad_custom_resource(size: str) -> None:
    bad = render(HELM, size, overrides=("api.port=http", "flink.flinkVersion=v9_9"))
    problems = [str(f) for f in validate(bad)]
    assert any(p.startswith("Deployment/imgrec-api:") and "containerPort" in p for p in problems), problems
    assert any(p.startswith("FlinkDeployment/imgrec-flink:") and "flinkVersion" in p for p in problems), problems


def test_keda_scales_gpu_pods_on_the_jobs_consumer_group_lag(size: str, manifests: list[Manifest]) -> None:
    scaled = one(manifests, "ScaledObject")
    triton = one(manifests, "Deployment", "triton")
    assert scaled["spec"]["scaleTargetRef"]["name"] == triton["metadata"]["name"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    assert trigger["metadata"]["lagThreshold"] == "500"
    assert trigger["metadata"]["consumerGroup"] == CONSUMER_GROUP
    topics_job = one(manifests, "Job", "bootstrap-topics")
    job_env = env_of(containers(topics_job)[0])
    assert trigger["metadata"]["topic"] == job_env["IMGREC_BATCH_TOPIC"]["value"]
    # KEDA never scales past the partition count: the topic Job creates enough partitions for every pod.
    assert int(job_env["IMGREC_BATCH_PARTITIONS"]["value"]) >= scaled["spec"]["maxReplicaCount"]
    if size == "large":
        assert scaled["spec"]["maxReplicaCount"] == 50
    assert "replicas" not in triton["spec"]  # KEDA owns the count


def test_too_few_partitions_for_the_largest_scale_fails_to_render() -> None:
    with pytest.raises(ChartError, match=r"batch\.partitions"):
        render(HELM, "large", overrides=("batch.partitions=12",))


def test_triton_runs_the_gpu_repository_on_a10g_or_a100_nodes(size: str, manifests: list[Manifest]) -> None:
    triton = one(manifests, "Deployment", "triton")
    init, server = containers(triton)
    assert shlex.split(init["command"][-1])[:4] == ["imgrec", "models", "triton-repo", "/tmp/repository"]
    assert "--gpu" in init["command"][-1]
    assert server["resources"]["limits"][GPU] == server["resources"]["requests"][GPU] >= 1
    [term] = triton["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    [rule] = term["matchExpressions"]
    assert rule["key"] == "nvidia.com/gpu.product" and rule["operator"] == "In"
    assert any("A10G" in v for v in rule["values"])
    if size == "large":
        assert any("A100" in v for v in rule["values"])
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert {"http", "grpc", "metrics"} <= set(ports)
    assert f"--metrics-port={ports['metrics']}" in server["args"]
    assert one(manifests, "Service", "triton")["spec"]["clusterIP"] == "None"  # clients balance over every pod


def test_api_probes_use_the_apis_own_health_routes(manifests: list[Manifest]) -> None:
    routes = {route.path for route in health_router.routes}
    [api] = containers(one(manifests, "Deployment", "api"))
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz" and "/readyz" in routes
    assert api["livenessProbe"]["httpGet"]["path"] in routes
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(manifests, "Deployment", "api")["metadata"]["name"]
    assert one(manifests, "PodDisruptionBudget")["spec"]["minAvailable"] >= 1


def test_flink_deployment_runs_the_pyflink_job_with_stateful_upgrades_and_autoscaling(
    manifests: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    flink = one(manifests, "FlinkDeployment")
    job, conf = flink["spec"]["job"], flink["spec"]["flinkConfiguration"]
    assert job["entryClass"] == "org.apache.flink.client.python.PythonDriver"
    assert job["upgradeMode"] == "last-state"
    # The driver jar is the one of the PyFlink release the job is written for.
    assert job["jarURI"].endswith(f"/flink-python-{pyflink.version.__version__}.jar")
    assert conf["jobmanager.scheduler"] == "adaptive"
    assert conf["job.autoscaler.enabled"] == "true"
    assert conf["high-availability.type"] == "kubernetes"
    for key in ("execution.checkpointing.dir", "execution.checkpointing.savepoint-dir", "high-availability.storageDir"):
        assert re.match(r"^(s3|gs)://", conf[key]), key
    script = job["args"][job["args"].index("-py") + 1]
    assert (REPO_ROOT / Path(script).relative_to("/opt/imgrec")).exists()
    # The job's own argument parser accepts what the operator passes it; settings come from the pods' env.
    monkeypatch.setenv("IMGREC_KAFKA_BOOTSTRAP", "kafka:9092")
    settings_file, options, state_dir = parse_args(job["args"][job["args"].index("-py") + 2:])
    assert settings_file is None and state_dir is None and options.checkpoint_interval_ms >= 1
    assert load_settings(settings_file).kafka_bootstrap == "kafka:9092"
    assert flink["spec"]["podTemplate"]["spec"]["nodeSelector"]  # CPU preprocessing on the CPU pool


def test_secrets_are_references_and_settings_are_real(manifests: list[Manifest]) -> None:
    assert not [m for m in manifests if m["kind"] == "Secret"]
    known = {f"IMGREC_{name.upper()}" for name in Settings.model_fields}
    for manifest in [m for m in manifests if m["kind"] in ("Deployment", "Job", "FlinkDeployment")]:
        for container in containers(manifest):
            env = env_of(container)
            assert {n for n in env if n.startswith("IMGREC_")} <= known, manifest["metadata"]["name"]
            for name in ("IMGREC_DATABASE_URL", "IMGREC_REDIS_URL"):
                if name in env:
                    assert set(env[name]) == {"name", "valueFrom"}
                    assert "secretKeyRef" in env[name]["valueFrom"]
    credentials = re.compile(r"://[^/\s:@]+:[^/\s@]+@")  # user:password@ in a URL
    for values in CHART_DIR.glob("values*.yaml"):
        strings = [v for v in walk(yaml.safe_load(values.read_text())) if isinstance(v, str)]
        assert not [s for s in strings if credentials.search(s)], values.name


def test_bootstrap_jobs_run_real_commands_in_order(manifests: list[Manifest]) -> None:
    jobs = {m["metadata"]["labels"]["app.kubernetes.io/component"]: m for m in manifests if m["kind"] == "Job"}
    assert set(jobs) == {"bootstrap-migrate", "bootstrap-registry", "bootstrap-topics"}
    weight = {name: int(job["metadata"]["annotations"]["helm.sh/hook-weight"]) for name, job in jobs.items()}
    assert weight["bootstrap-migrate"] < weight["bootstrap-registry"]
    for job in jobs.values():
        command = containers(job)[0]["command"]
        assert command[0] == "imgrec"
        done = CliRunner().invoke(app, [*command[1:], "--help"])
        assert done.exit_code == 0, done.output


def test_the_migrate_and_registry_jobs_commands_work_and_can_run_again(tmp_path: Path, monkeypatch) -> None:
    from transforms.composition import open_store
    from transforms.model_registry import load_registry
    from transforms.settings import get_settings

    monkeypatch.setenv("IMGREC_DATABASE_URL", f"sqlite:///{tmp_path / 'bootstrap.db'}")
    get_settings.cache_clear()
    try:
        for _ in range(2):  # a hook runs on every upgrade
            for command in (["bootstrap", "migrate"], ["bootstrap", "registry"]):
                done = CliRunner().invoke(app, command)
                assert done.exit_code == 0, done.output
        store = open_store(get_settings())
    finally:
        get_settings.cache_clear()
    try:
        wanted = load_registry()
        assert {(row.model_id, row.version) for row in wanted} <= {
            (row.model_id, row.version) for model_id in {r.model_id for r in wanted}
            for row in store.registry.versions(model_id)
        }
    finally:
        store.close()

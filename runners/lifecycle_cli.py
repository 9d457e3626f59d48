"""`imgrec models` lifecycle commands: register, list, evaluate, canary, promote, rollback, retire, gate, compare,
events, sync. Each runs on the ports the settings name (the stack: PostgreSQL, Redis, Triton, Kafka)."""

from __future__ import annotations

import getpass
import json
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

import httpx
import typer

from runners.batch_cli import API_URL
from runners.model_build.torchscript import torchscript_to_onnx
from transforms.backends.base import InferenceUnavailable
from transforms.composition import LifecycleKit, build_lifecycle
from transforms.lifecycle.compare import compare_versions, parse_metrics
from transforms.lifecycle.errors import LifecycleError
from transforms.lifecycle.gates import GateRules
from transforms.lifecycle.records import VersionRecord
from transforms.lifecycle.registration import RegisterRequest
from transforms.lifecycle.warmup import WarmOptions, WarmProgress
from transforms.settings import get_settings

ModelId = Annotated[str, typer.Argument(help="The model, e.g. scene-classification.")]
Version = Annotated[str, typer.Argument(help="The version (a positive integer).")]
Actor = Annotated[str | None, typer.Option("--actor", help="Who is acting (default: user@host), for model_events.")]


def actor_name(actor: str | None) -> str:
    return actor or f"{getpass.getuser()}@{socket.gethostname()}"


@contextmanager
def lifecycle() -> Iterator[LifecycleKit]:
    """The lifecycle on the configured ports; a refusal is one red line and exit code 1."""
    kit = None
    try:
        kit = build_lifecycle(get_settings(), converter=torchscript_to_onnx)
        yield kit
    except LifecycleError as exc:
        typer.secho(f"refused ({exc.code}): {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    except InferenceUnavailable as exc:
        typer.secho(f"serving back end unavailable: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    finally:
        if kit is not None:
            kit.close()


def register(
    model_id: ModelId,
    version: Version,
    artifact: Annotated[str, typer.Option("--artifact", help="file://, s3:// or gs:// URI of the artifact.")],
    handler: Annotated[str, typer.Option("--handler", help="Model handler, e.g. classifier, nanodet.")],
    framework: Annotated[str, typer.Option("--framework", help="onnx or torchscript (converted to ONNX).")] = "onnx",
    threshold: Annotated[float | None, typer.Option("--threshold", help="Default confidence threshold.")] = None,
    min_label_count: Annotated[int | None, typer.Option("--min-label-count", help="Threshold fallback.")] = None,
    labels: Annotated[str | None, typer.Option("--labels", help="labels.json URI (default: the active's).")] = None,
    extra: Annotated[str | None, typer.Option("--extra", help="JSON merged over the active's handler params.")] = None,
    actor: Actor = None,
) -> None:
    """Check an artifact and register it as a new, inactive version (loaded by the serving back end)."""
    request = RegisterRequest(
        model_id,
        version,
        artifact,
        handler,
        actor_name(actor),
        framework,
        threshold,
        min_label_count,
        labels,
        json.loads(extra) if extra else {},
    )
    with lifecycle() as kit:
        record = kit.registrar.register(request)
        ready = kit.repository.readiness(model_id).get(version, "-")
    typer.echo(
        f"registered {model_id} v{version}: {record.state}, framework {record.model.framework}, "
        f"sha256 {record.registration.artifact_sha256[:12] if record.registration.artifact_sha256 else '-'}, "
        f"back end {ready}"
    )
    typer.echo(f"  served: {record.model.artifact_uri}\n  uploaded: {record.registration.source_uri}")


def list_versions(
    model_id: Annotated[str | None, typer.Argument(help="One model (default: all).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Every version with its state, its readiness in the serving back end and its latest evaluation."""
    with lifecycle() as kit:
        ids = [model_id] if model_id else sorted({r.model.model_id for r in kit.lifecycle.store.versions()})
        rows = []
        for mid in ids:
            ready = kit.repository.readiness(mid)
            for record in kit.lifecycle.versions(mid):
                rows.append(_row(kit, record, ready))
    if as_json:
        json.dump(rows, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    typer.echo(
        f"{'model_id':22} {'ver':>3} {'state':10} {'canary':>6} {'framework':11} {'handler':10} {'thr':>5} "
        f"{'back end':10} evaluation"
    )
    for r in rows:
        canary = f"{r['canary_weight']:.2f}" if r["canary_weight"] else "-"
        evaluation = (
            "-"
            if r["evaluation"] is None
            else f"#{r['evaluation']['id']} {'pass' if r['evaluation']['passed'] else 'FAIL'}"
        )
        typer.echo(
            f"{r['model_id']:22} {r['version']:>3} {r['state']:10} {canary:>6} {r['framework']:11} "
            f"{r['handler']:10} {r['default_confidence_threshold']:>5} {r['backend']:10} {evaluation}"
        )


def _row(kit: LifecycleKit, record: VersionRecord, ready: dict[str, str]) -> dict[str, Any]:
    m = record.model
    latest = kit.lifecycle.store.latest_evaluation(m.model_id, m.version)
    return {
        "model_id": m.model_id,
        "version": m.version,
        "state": record.state.value,
        "canary_weight": m.canary_weight,
        "framework": m.framework,
        "handler": m.handler,
        "default_confidence_threshold": m.default_confidence_threshold,
        "backend": ready.get(m.version, _absent(kit, record)),
        "loaded": record.loaded,
        "built": m.artifact_path(kit.ports.settings.resolved_model_store).exists(),
        "artifact_uri": m.artifact_uri,
        **asdict(record.registration),
        "evaluation": None
        if latest is None
        else {"id": latest.evaluation_id, "passed": latest.passed, "baseline": latest.baseline_version},
    }


def _absent(kit: LifecycleKit, record: VersionRecord) -> str:
    """How a version the back end does not list is shown: unloaded on purpose, or missing."""
    if not record.loaded:
        return "UNLOADED"
    return "ON DEMAND" if kit.serving == "onnxruntime" else "NOT READY"  # in process: loaded on first use


def evaluate(
    model_id: ModelId,
    version: Version,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole report as JSON.")] = False,
    actor: Actor = None,
) -> None:
    """Run a version (and the active one) over the model's evaluation set; store the report and the verdict."""
    with lifecycle() as kit:
        record = kit.lifecycle.evaluate(model_id, version, actor_name(actor))
    typer.echo(json.dumps(record.report, indent=2) if as_json else record.summary_md.rstrip())
    typer.echo(f"evaluation #{record.evaluation_id} stored: {'PASS' if record.passed else 'FAIL'}")


def canary(
    model_id: ModelId,
    version: Version,
    weight: Annotated[float, typer.Option("--weight", help="Share of traffic for the canary, in [0, 1].")],
    actor: Actor = None,
) -> None:
    """Send a share of the traffic to a version (weight 0 ends the canary)."""
    with lifecycle() as kit:
        entry = kit.lifecycle.canary(model_id, version, weight, actor_name(actor))
    typer.echo(json.dumps(asdict(entry)))


def promote(
    model_id: ModelId,
    version: Version,
    force: Annotated[bool, typer.Option("--force", help="Promote without a passing evaluation (recorded).")] = False,
    warm: Annotated[int, typer.Option("--warm", help="Warm the cache with the top N images first (0: off).")] = 0,
    window_h: Annotated[float, typer.Option("--window-h", help="Popular images of the last hours.")] = 24.0,
    deadline_s: Annotated[float, typer.Option("--deadline-s", help="Longest wait for the warm-up.")] = 300.0,
    actor: Actor = None,
) -> None:
    """Make a version the active one: gated on its evaluation, optionally after warming the result cache."""
    options = WarmOptions(warm, timedelta(hours=window_h), deadline_s) if warm > 0 else None
    with lifecycle() as kit:
        entry, warmed = kit.lifecycle.promote(model_id, version, actor_name(actor), force, options, _progress())
    if warmed is not None:
        typer.echo(
            f"warm-up: {warmed.cached}/{warmed.total} popular images cached for v{version} in "
            f"{warmed.seconds:.1f} s" + (" (deadline reached)" if warmed.timed_out else "")
        )
    typer.echo(json.dumps(asdict(entry)))


def _progress() -> Callable[[WarmProgress], None]:
    last = [0.0]

    def show(p: WarmProgress) -> None:
        if p.complete or p.timed_out or time.monotonic() - last[0] >= 1.0:
            last[0] = time.monotonic()
            typer.echo(
                f"  warm-up {p.cached}/{p.total} cached, {p.queued} queued, {p.without_image} without "
                f"stored image, {p.seconds:.1f} s",
                err=True,
            )

    return show


def rollback(model_id: ModelId, actor: Actor = None) -> None:
    """End a running canary; with none, go back to the version that was active before the last promotion."""
    with lifecycle() as kit:
        entry = kit.lifecycle.rollback(model_id, actor_name(actor))
    typer.echo(json.dumps(asdict(entry)))


def retire(
    model_id: ModelId,
    version: Version,
    drain_s: Annotated[float, typer.Option("--drain-s", help="Wait before unloading.")] = 5.0,
    actor: Actor = None,
) -> None:
    """Take a version out of service and unload it from the serving back end."""
    with lifecycle() as kit:
        states = kit.lifecycle.retire(model_id, version, actor_name(actor), drain_s)
    typer.echo(f"retired {model_id} v{version}; back end now holds {json.dumps(states)}")


def gate(
    model_id: ModelId,
    max_drop_points: Annotated[float | None, typer.Option(help="Largest drop of a quality metric.")] = None,
    max_latency_ratio: Annotated[float | None, typer.Option(help="Largest latency ratio to active.")] = None,
    min_agreement: Annotated[float | None, typer.Option(help="Least agreement with active.")] = None,
    min_score_correlation: Annotated[
        float | None, typer.Option(help="Least correlation of a classifier's scores with active's (default 0.5).")
    ] = None,
    min_metric: Annotated[list[str] | None, typer.Option(help="Floor, e.g. top1=0.6 (repeatable).")] = None,
    actor: Actor = None,
) -> None:
    """Show a model's gate rules, or change them (recorded in model_events)."""
    with lifecycle() as kit:
        rules = kit.lifecycle.store.gate_rules(model_id)
        changes: dict[str, Any] = {
            k: v
            for k, v in (
                ("max_drop_points", max_drop_points),
                ("max_latency_ratio", max_latency_ratio),
                ("min_agreement", min_agreement),
                ("min_score_correlation", min_score_correlation),
            )
            if v is not None
        }
        if min_metric:
            changes["min_metrics"] = {k: float(v) for k, v in (m.split("=", 1) for m in min_metric)}
        if changes:
            rules = GateRules.model_validate({**rules.model_dump(), **changes})
            kit.lifecycle.set_gate(model_id, rules, actor_name(actor))
    typer.echo(rules.model_dump_json())


def events(model_id: ModelId, limit: Annotated[int, typer.Option(help="Newest rows.")] = 20) -> None:
    """The audit trail of a model (model_events), newest first."""
    with lifecycle() as kit:
        rows = kit.lifecycle.store.events(model_id, limit)
    for e in rows:
        forced = " FORCED" if e.forced else ""
        evaluation = f" evaluation #{e.evaluation_id}" if e.evaluation_id else ""
        moved = f" (from v{e.from_version})" if e.from_version and e.from_version != e.version else ""
        typer.echo(
            f"{e.at:%Y-%m-%d %H:%M:%S} {e.actor:20} {e.action:9} v{e.version or '-'}{moved}{evaluation}"
            f"{forced} {json.dumps(e.details) if e.details else ''}".rstrip()
        )


def sync(model_id: Annotated[str | None, typer.Argument(help="One model (default: all).")] = None) -> None:
    """Load into the serving back end what the registry says should be loaded (after a Triton restart)."""
    with lifecycle() as kit:
        ids = [model_id] if model_id else sorted({r.model.model_id for r in kit.lifecycle.store.versions()})
        for mid in ids:
            typer.echo(f"{mid}: {json.dumps(kit.lifecycle.sync(mid))}")


def compare(
    model_id: ModelId,
    metrics_url: Annotated[
        list[str] | None,
        typer.Option("--metrics-url", help="Prometheus endpoints (default: the API's /metrics; repeatable)."),
    ] = None,
    window_s: Annotated[
        float,
        typer.Option("--window-s", help="Compare the traffic of the next N seconds (0: since each process started)."),
    ] = 0.0,
    api_url: str = API_URL,
) -> None:
    """Canary and active side by side from the live per-version metrics (requests, errors, latency, top score)."""
    urls = metrics_url or [f"{api_url.rstrip('/')}/metrics"]
    with lifecycle() as kit:
        roles = {r.version: r.state.value for r in kit.lifecycle.versions(model_id)}
    before = _scrape(urls) if window_s > 0 else None
    if before is not None:
        time.sleep(window_s)
    table = compare_versions(_scrape(urls), model_id, before, roles)
    if not table:
        typer.secho(f"no traffic of {model_id} in {', '.join(urls)}", fg=typer.colors.YELLOW, err=True)
        raise typer.Exit(1)
    typer.echo(table)


def _scrape(urls: list[str]) -> list:
    samples = []
    for url in urls:
        samples.extend(parse_metrics(httpx.get(url, timeout=10).text))
    return samples


COMMANDS: dict[str, Callable[..., None]] = {
    "register": register,
    "list": list_versions,
    "evaluate": evaluate,
    "canary": canary,
    "promote": promote,
    "rollback": rollback,
    "retire": retire,
    "gate": gate,
    "events": events,
    "sync": sync,
    "compare": compare,
}

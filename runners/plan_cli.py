"""`imgrec plan`: pods, partitions and KEDA settings for a workload, from the benchmarks' measured costs."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from runners.capacity import BurstCheck, CostsError, Plan, Policy, Workload, check_burst, load_costs, plan
from transforms.settings import REPO_ROOT

DEFAULT_REPORT = REPO_ROOT / "var" / "bench" / "models.json"


def plan_command(
    images_per_hour: Annotated[float, typer.Option(help="Sustained images per hour to keep up with.")],
    model: Annotated[str, typer.Option(help="Model id (a row of the benchmark report).")],
    bench: Annotated[Path, typer.Option(help="bench_models report with the measured costs.")] = DEFAULT_REPORT,
    backend: Annotated[str, typer.Option(help="Which measured back end an inference pod is.")] = "triton",
    cache_hit_rate: Annotated[float, typer.Option(help="Share of images answered from the cache.")] = 0.0,
    burst: Annotated[int, typer.Option(help="Images of a burst that must finish in time.")] = 10_000,
    within: Annotated[float, typer.Option(help="Seconds the burst may take.")] = 300.0,
    gpus: Annotated[int | None, typer.Option(help="GPU pods for the burst check (default: maxReplicaCount).")] = None,
    micro_batch: Annotated[int, typer.Option(help="Images per inference call.")] = Policy.micro_batch,
    gpu_utilization: Annotated[float, typer.Option(help="Target busy share of a GPU pod.")] = Policy.gpu_utilization,
    cpu_utilization: Annotated[float, typer.Option(help="Target busy share of a CPU core.")] = Policy.cpu_utilization,
    lag_threshold: Annotated[int, typer.Option(help="KEDA lagThreshold (pending messages per pod).")] = (
        Policy.lag_threshold
    ),
    max_pods: Annotated[int, typer.Option(help="Most GPU pods (KEDA maxReplicaCount ceiling).")] = Policy.max_pods,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan and the check as JSON.")] = False,
) -> None:
    """Pods, Flink tasks, partitions and KEDA settings for a workload; checks a burst (10,000 images in 5 minutes)."""
    try:
        costs = load_costs(bench, model, backend)
        workload = Workload(images_per_hour, burst, within, cache_hit_rate)
    except (CostsError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from exc
    policy = Policy(micro_batch, gpu_utilization, cpu_utilization, lag_threshold, max_pods)
    sized = plan(costs, workload, policy)
    check = check_burst(costs, workload, gpus or sized.max_replicas, sized, policy)
    if as_json:
        typer.echo(json.dumps({"costs": asdict(costs), "plan": asdict(sized),
                               "burst": asdict(check) | {"seconds": check.seconds}}, indent=2))
        return
    _print(costs.source, sized, check, workload)


def _print(source: str, sized: Plan, check: BurstCheck, workload: Workload) -> None:
    console = Console()
    table = Table(title=f"capacity plan ({source})", show_header=False)
    rows = [
        ("inference pod, flat out", f"{sized.pod_images_per_s:.1f} images/s at batch {sized.batch_size}"),
        ("preprocessing core, flat out", f"{sized.core_images_per_s:.1f} images/s"),
        ("GPU pods for the sustained rate (KEDA minReplicaCount)", str(sized.sustained_pods)),
        ("GPU pods for the burst on top", str(sized.burst_pods)),
        ("KEDA maxReplicaCount", str(sized.max_replicas)),
        ("KEDA lagThreshold (largest that clears a burst in time)",
         f"{sized.lag_threshold} ({sized.lag_threshold_limit}){'' if sized.lag_threshold_ok else '  TOO HIGH'}"),
        ("Flink preprocessing tasks at the peak", str(sized.preprocess_tasks)),
        ("TaskManagers", str(sized.taskmanagers)),
        ("batch topic partitions", str(sized.partitions)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    verdict = "within" if check.seconds <= workload.burst_seconds else "NOT within"
    console.print(
        f"burst: {workload.burst_images} images ({check.misses} misses) with {check.gpus} GPU pod(s): "
        f"inference {check.inference_s:.0f} s, preprocessing {check.preprocess_s:.0f} s -> {check.seconds:.0f} s, "
        f"{verdict} {workload.burst_seconds:.0f} s; KEDA asks for {check.keda_pods} pods at that lag"
    )

"""The capacity model behind `imgrec plan`: measured per-image costs -> pods, partitions and KEDA settings.

Only cache misses are preprocessed and inferred, so every stage is sized on misses = images x (1 - hit rate).

- An inference pod (one Triton with one GPU) clears 1000 / infer_ms images per second at the micro-batch size,
  where infer_ms is the measured per-image cost at the largest measured batch that fits the micro-batch. Pods are
  sized to run at `gpu_utilization` of that, so a sustained rate needs ceil(rate x (1 - h) / (pod rate x u)) pods.
- A preprocessing task (one CPU core, one Flink slot) clears 1000 / preprocess_ms images per second, sized the
  same way at `cpu_utilization`.
- KEDA asks for ceil(lag / lagThreshold) pods. A backlog of B images is cleared within T seconds by the pods KEDA
  asks for as long as one pod clears lagThreshold messages within T: lagThreshold <= T x pod rate x u / (1 - h).
- KEDA never runs more pods than the topic has partitions, and a Flink source task reads whole partitions: the
  topic needs max(maxReplicaCount, preprocessing tasks) partitions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


class CostsError(ValueError):
    """The benchmark report lacks a cost the model needs."""


@dataclass(frozen=True)
class Costs:
    """Measured per-image costs of one model: CPU preprocessing on one core, inference on one pod by batch size."""

    model_id: str
    preprocess_ms: float
    infer_ms: dict[int, float]
    source: str

    def at_batch(self, batch: int) -> tuple[int, float]:
        """The largest measured batch size not above `batch` (else the smallest measured) and its ms per image."""
        fitting = [size for size in self.infer_ms if size <= batch] or [min(self.infer_ms)]
        size = max(fitting)
        return size, self.infer_ms[size]


def load_costs(report_path: Path, model_id: str, backend: str = "triton") -> Costs:
    """Costs of `model_id` from a `bench_models` report (var/bench/models.json): `ms_per_image` rows keyed
    "<backend> b<batch>" and `preprocess_ms_per_image`."""
    if not report_path.exists():
        raise CostsError(f"{report_path} does not exist: run `python -m benchmarks bench_models` first")
    report = json.loads(report_path.read_text())
    row = report.get("ms_per_image", {}).get(model_id)
    if row is None:
        raise CostsError(f"{report_path} has no inference costs for {model_id!r}")
    prefix = f"{backend} b"
    infer = {int(key[len(prefix):]): float(ms) for key, ms in row.items() if key.startswith(prefix)}
    if not infer:
        backends = sorted({key.rsplit(" b", 1)[0] for key in row})
        raise CostsError(f"{report_path} has no {backend!r} costs for {model_id!r} (it has {', '.join(backends)})")
    preprocess = report.get("preprocess_ms_per_image", {}).get(model_id)
    if preprocess is None:
        raise CostsError(f"{report_path} has no preprocessing cost for {model_id!r}: run bench_models again")
    return Costs(model_id, float(preprocess), infer, f"{report_path} ({backend})")


@dataclass(frozen=True)
class Workload:
    """What the installation must sustain, and the burst it must clear in time (the design: 10,000 in 5 minutes)."""

    images_per_hour: float
    burst_images: int = 10_000
    burst_seconds: float = 300.0
    cache_hit_rate: float = 0.0

    def __post_init__(self) -> None:
        if self.images_per_hour < 0 or self.burst_images < 0 or self.burst_seconds <= 0:
            raise ValueError("rates and sizes must not be negative, and the burst needs a positive time")
        if not 0.0 <= self.cache_hit_rate < 1.0:
            raise ValueError("cache_hit_rate must be in [0, 1)")

    @property
    def miss_share(self) -> float:
        return 1.0 - self.cache_hit_rate


@dataclass(frozen=True)
class Policy:
    """How hard pods and cores are run, and the deployment's fixed knobs."""

    micro_batch: int = 32
    gpu_utilization: float = 0.7  # the design's goal: GPUs above 70% busy
    cpu_utilization: float = 0.7
    lag_threshold: int = 500  # the design: one more pod per 500 pending messages
    max_pods: int = 50  # the design's ceiling
    slots_per_taskmanager: int = 2


@dataclass(frozen=True)
class Plan:
    """Pods, Flink tasks, partitions and KEDA settings for a workload."""

    batch_size: int
    pod_images_per_s: float  # one inference pod, flat out
    core_images_per_s: float  # one preprocessing core, flat out
    sustained_pods: int  # KEDA minReplicaCount: keeps up with the sustained rate
    burst_pods: int  # extra pods that clear the burst within its time
    max_replicas: int  # KEDA maxReplicaCount
    preprocess_tasks: int  # at the peak: sustained rate plus the burst
    taskmanagers: int
    partitions: int
    lag_threshold: int
    lag_threshold_limit: int  # the largest lagThreshold that still asks for enough pods to clear a burst in time

    @property
    def lag_threshold_ok(self) -> bool:
        return self.lag_threshold <= self.lag_threshold_limit


@dataclass(frozen=True)
class BurstCheck:
    """How long a burst takes with a given number of GPU pods (already running) and the plan's preprocessing."""

    gpus: int
    misses: int
    inference_s: float
    preprocess_s: float
    keda_pods: int  # what KEDA asks for when the whole burst is pending (up to the plan's maxReplicaCount)

    @property
    def seconds(self) -> float:
        """The stages run side by side (a streaming job), so the slower one sets the time."""
        return max(self.inference_s, self.preprocess_s)


def plan(costs: Costs, workload: Workload, policy: Policy = Policy()) -> Plan:
    """Size the installation for `workload` from measured `costs`."""
    batch, infer_ms = costs.at_batch(policy.micro_batch)
    pod_rate = 1000.0 / infer_ms
    core_rate = 1000.0 / costs.preprocess_ms
    sustained = workload.images_per_hour / 3600.0 * workload.miss_share
    burst = workload.burst_images / workload.burst_seconds * workload.miss_share
    sustained_pods = max(1, math.ceil(sustained / (pod_rate * policy.gpu_utilization)))
    burst_pods = math.ceil(burst / (pod_rate * policy.gpu_utilization))
    max_replicas = min(policy.max_pods, sustained_pods + burst_pods)
    tasks = max(1, math.ceil((sustained + burst) / (core_rate * policy.cpu_utilization)))
    limit = workload.burst_seconds * pod_rate * policy.gpu_utilization / workload.miss_share
    return Plan(
        batch_size=batch,
        pod_images_per_s=pod_rate,
        core_images_per_s=core_rate,
        sustained_pods=sustained_pods,
        burst_pods=burst_pods,
        max_replicas=max_replicas,
        preprocess_tasks=tasks,
        taskmanagers=math.ceil(tasks / policy.slots_per_taskmanager),
        partitions=max(max_replicas, tasks),
        lag_threshold=policy.lag_threshold,
        lag_threshold_limit=math.floor(limit),
    )


def check_burst(costs: Costs, workload: Workload, gpus: int, plan_: Plan, policy: Policy = Policy()) -> BurstCheck:
    """The time to clear `workload`'s burst with `gpus` inference pods and the plan's preprocessing tasks."""
    if gpus < 1:
        raise ValueError("gpus must be at least 1")
    misses = math.ceil(workload.burst_images * workload.miss_share)
    keda = min(math.ceil(workload.burst_images / policy.lag_threshold), plan_.max_replicas)
    return BurstCheck(
        gpus=gpus,
        misses=misses,
        inference_s=misses / (gpus * plan_.pod_images_per_s),
        preprocess_s=misses / (plan_.preprocess_tasks * plan_.core_images_per_s),
        keda_pods=keda,
    )

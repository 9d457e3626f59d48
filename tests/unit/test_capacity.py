"""The capacity model's arithmetic (`imgrec plan`), on hand-worked numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runners.capacity import Costs, CostsError, Policy, Workload, check_burst, load_costs, plan
from runners.cli import app

# 10 ms to preprocess on one core (100 images/s); inference per image on one pod by batch size.
COSTS = Costs("m", preprocess_ms=10.0, infer_ms={1: 80.0, 8: 25.0, 32: 20.0}, source="test")


def report(tmp_path: Path, **extra: object) -> Path:
    path = tmp_path / "models.json"
    body = {"runs": 7, "ms_per_image": {"m": {"onnxruntime b1": 9.0, "triton b1": 80.0, "triton b8": 25.0,
                                              "triton b32": 20.0}},
            "preprocess_ms_per_image": {"m": 10.0}} | extra
    path.write_text(json.dumps(body))
    return path


def test_batch_size_is_the_largest_measured_that_fits_the_micro_batch() -> None:
    assert COSTS.at_batch(32) == (32, 20.0)
    assert COSTS.at_batch(16) == (8, 25.0)
    assert COSTS.at_batch(1) == (1, 80.0)
    assert COSTS.at_batch(0) == (1, 80.0)  # nothing fits: the smallest measured


def test_sustained_rate_and_burst_give_pods_tasks_and_partitions() -> None:
    # 1000 images/s, no cache hits: one pod clears 1000/20 = 50/s, at 70% 35/s -> ceil(1000/35) = 29 pods.
    # Burst: 10,000 in 300 s = 33.3/s -> ceil(33.3/35) = 1 more pod. Preprocessing: 1033.3/s over 70/s per core
    # -> 15 tasks on 8 TaskManagers of 2 slots. Partitions: max(30 pods, 15 tasks) = 30.
    sized = plan(COSTS, Workload(images_per_hour=3_600_000))
    assert (sized.batch_size, sized.pod_images_per_s, sized.core_images_per_s) == (32, 50.0, 100.0)
    assert (sized.sustained_pods, sized.burst_pods, sized.max_replicas) == (29, 1, 30)
    assert (sized.preprocess_tasks, sized.taskmanagers, sized.partitions) == (15, 8, 30)
    # One pod clears 300 s x 50/s x 0.7 = 10,500 messages within the burst time: 500 per pod is safe.
    assert sized.lag_threshold_limit == 10_500 and sized.lag_threshold_ok


def test_cache_hits_shrink_every_stage() -> None:
    # 60% hits: 400 misses/s -> ceil(400/35) = 12 pods; burst misses 13.3/s -> 1 pod; 413.3/70 -> 6 tasks.
    sized = plan(COSTS, Workload(images_per_hour=3_600_000, cache_hit_rate=0.6))
    assert (sized.sustained_pods, sized.burst_pods, sized.max_replicas, sized.preprocess_tasks) == (12, 1, 13, 6)
    assert sized.lag_threshold_limit == 26_250  # 10,500 / 0.4


def test_pods_stop_at_the_ceiling_and_partitions_follow_the_larger_need() -> None:
    sized = plan(COSTS, Workload(images_per_hour=36_000_000))  # 10,000/s -> 286 pods wanted
    assert sized.sustained_pods == 286 and sized.max_replicas == 50
    assert sized.preprocess_tasks == 144 and sized.partitions == 144  # ceil(10,033.3 / 70 = 143.3)


def test_an_idle_installation_keeps_one_pod_and_one_task() -> None:
    sized = plan(COSTS, Workload(images_per_hour=0, burst_images=0))
    assert (sized.sustained_pods, sized.burst_pods, sized.max_replicas, sized.preprocess_tasks) == (1, 0, 1, 1)


def test_a_slow_model_makes_the_designs_lag_threshold_too_high() -> None:
    slow = Costs("slow", preprocess_ms=10.0, infer_ms={32: 1000.0}, source="test")  # 1 image/s per pod
    sized = plan(slow, Workload(images_per_hour=3600))
    assert sized.lag_threshold_limit == 210 and not sized.lag_threshold_ok  # 300 s x 1/s x 0.7


def test_burst_check_for_a_given_gpu_count() -> None:
    workload = Workload(images_per_hour=0, cache_hit_rate=0.6)  # 10,000 images, 4,000 misses
    sized = plan(COSTS, workload, Policy(micro_batch=8))  # 40 images/s per pod at batch 8
    check = check_burst(COSTS, workload, gpus=2, plan_=sized, policy=Policy(micro_batch=8))
    assert check.misses == 4000
    assert check.inference_s == pytest.approx(4000 / 80)  # two pods at 40/s
    # Burst misses 13.3/s over 70/s per core -> 1 task at 100/s: 40 s.
    assert sized.preprocess_tasks == 1 and check.preprocess_s == pytest.approx(40.0)
    assert check.seconds == pytest.approx(50.0)
    assert check.keda_pods == sized.max_replicas == 2  # 10,000 / 500 = 20, capped at the plan's maxReplicaCount
    # 400 misses/s over 28/s per pod -> 15 pods, plus 1 for the burst: KEDA may run 16 of the 20 the lag asks for.
    bigger = plan(COSTS, Workload(images_per_hour=3_600_000, cache_hit_rate=0.6), Policy(micro_batch=8))
    assert check_burst(COSTS, workload, 2, bigger, Policy(micro_batch=8)).keda_pods == bigger.max_replicas == 16
    thirty = plan(COSTS, Workload(images_per_hour=36_000_000, cache_hit_rate=0.6), Policy(micro_batch=8))
    assert check_burst(COSTS, workload, 2, thirty, Policy(micro_batch=8)).keda_pods == 20  # the lag's own ask


def test_costs_come_from_the_benchmark_report(tmp_path: Path) -> None:
    costs = load_costs(report(tmp_path), "m", "triton")
    assert costs.infer_ms == {1: 80.0, 8: 25.0, 32: 20.0} and costs.preprocess_ms == 10.0
    assert load_costs(report(tmp_path), "m", "onnxruntime").infer_ms == {1: 9.0}


def test_missing_costs_are_named(tmp_path: Path) -> None:
    with pytest.raises(CostsError, match="does not exist"):
        load_costs(tmp_path / "none.json", "m")
    with pytest.raises(CostsError, match="'other'"):
        load_costs(report(tmp_path), "other")
    with pytest.raises(CostsError, match=r"no .gpu. costs .*\(it has onnxruntime, triton\)"):
        load_costs(report(tmp_path), "m", "gpu")
    with pytest.raises(CostsError, match="preprocessing"):
        load_costs(report(tmp_path, preprocess_ms_per_image={}), "m")


def test_bad_workloads_are_refused() -> None:
    with pytest.raises(ValueError):
        Workload(images_per_hour=10, cache_hit_rate=1.0)
    with pytest.raises(ValueError):
        Workload(images_per_hour=10, burst_seconds=0)


def test_plan_command_prints_the_plan_and_the_check(tmp_path: Path) -> None:
    args = ["plan", "--images-per-hour", "3600000", "--model", "m", "--bench", str(report(tmp_path))]
    done = CliRunner().invoke(app, [*args, "--json", "--gpus", "3"])
    assert done.exit_code == 0, done.output
    body = json.loads(done.output)
    assert body["plan"]["max_replicas"] == 30 and body["plan"]["partitions"] == 30
    assert body["burst"]["gpus"] == 3 and body["burst"]["seconds"] == pytest.approx(10_000 / 150)
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "KEDA maxReplicaCount" in text.output and "within 300 s" in text.output
    refused = CliRunner().invoke(app, ["plan", "--images-per-hour", "1", "--model", "nope", "--bench", args[-1]])
    assert refused.exit_code != 0 and "'nope'" in refused.output

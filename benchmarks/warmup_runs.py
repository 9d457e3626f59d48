"""The warm-up scenario of `bench_batch`, N times on N fresh stacks: does the first batch after `stack up` finish?

Each run: a private stack on free ports under a new temporary root, `Stack.up()` (services, job submitted and
ready, API), then at once one batch of `--items` distinct JPEGs through the API, polled until it ends or
`--timeout` passes. Prints, per run, the stack start-up, the batch's time to done (or STALLED with the per-state
counts) and keeps the Flink logs of a stalled run under var/bench/warmup-stall-<n>/. A stack that does not come up
(a component not ready in time on a loaded machine) is counted apart: it says nothing about the first batch.
Writes var/bench/warmup.json.

    .venv/bin/python -m benchmarks.warmup_runs --runs 10
"""

from __future__ import annotations

import argparse
import base64
import json
import shutil
import sys
import time

from benchmarks.bench_batch import MODEL_ID, base_photos
from benchmarks.common import OUT_DIR, load_average, private_stack, unlimited_key, write_report
from runners.api_client import ApiClient
from runners.stack.components.base import ComponentError


def one_run(index: int, items: int, timeout_s: float) -> dict:
    photos = base_photos(160)
    images = [photos[i % len(photos)] + f"warm-up-{index}-{i}".encode() for i in range(items)]
    report: dict = {"run": index, "load_avg_start": load_average()}
    with private_stack() as stack:  # up() starts every component
        began = time.monotonic()
        try:
            stack.up()
        except ComponentError as exc:  # the stack never came up (a loaded machine): no warm-up batch to judge
            return report | {"done": None, "stack_error": str(exc).splitlines()[0]}
        if stack.notes:
            return report | {"done": None, "stack_error": "; ".join(stack.notes)}
        report["stack_up_s"] = round(time.monotonic() - began, 1)
        client = ApiClient(stack.settings.api_url, unlimited_key(stack.settings.database_url, "warm-up"), timeout_s=60)
        try:
            submitted = time.monotonic()
            batch = client.submit_batch(
                [{"image_data": base64.b64encode(b).decode(), "model_id": MODEL_ID} for b in images]
            )["batch_id"]
            status: dict = {}
            while time.monotonic() - submitted < timeout_s:
                status = client.batch_status(batch, limit=1)
                if status["status"] not in ("pending", "processing"):
                    break
                time.sleep(0.25)
            done = status.get("status") not in ("pending", "processing")
            report |= {"done": done, "batch_s": round(time.monotonic() - submitted, 1) if done else None,
                       "completed": status.get("completed_count"), "failed": status.get("failed_count")}
        finally:
            client.close()
        if not report["done"]:
            keep = OUT_DIR / f"warmup-stall-{index}"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(stack.settings.root / "flink" / "log", keep / "flink", dirs_exist_ok=True)
            shutil.copytree(stack.settings.log_dir, keep / "logs", dirs_exist_ok=True)
            report["logs"] = str(keep)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=180.0, help="Longest wait for the batch (s).")
    args = parser.parse_args(argv)
    reports = []
    for index in range(1, args.runs + 1):
        report = one_run(index, args.items, args.timeout)
        reports.append(report)
        print(json.dumps(report), flush=True)
    finished = [r for r in reports if r["done"]]
    times = sorted(r["batch_s"] for r in finished)
    summary = {"runs": len(reports), "finished": len(finished),
               "stalled": sum(r["done"] is False for r in reports),
               "stack_failed": sum(r["done"] is None for r in reports),
               "batch_s_median": times[len(times) // 2] if times else None, "batch_s_max": times[-1] if times else None}
    print(json.dumps(summary))
    write_report("warmup", {"summary": summary, "runs": reports})


if __name__ == "__main__":
    main(sys.argv[1:])

"""Soak: a bounded mixed load on a private stack for a while; errors, P99 over time, memory and descriptors.

A private stack on free ports under a temporary root (`Stack.up()`: services, job, API), then for `--minutes`
(10 by default) at once, each from its own thread(s):
- sync cache hits: one photograph over and over (`--hit-clients` callers);
- sync misses: the photograph with new bytes each time (`--miss-clients` callers);
- batches: every `--batch-every` seconds a batch of `--batch-items` images (half of them seen before), each
  followed until it ends.
Every request's status and latency is kept; an error is any answer that is not 2xx, a batch that does not end
`done`, or an exception. Reports errors, P50/P99 per minute and kind, and the resident memory and open file
descriptors of every process of each component (its whole process group) at the start, at the end of every
minute and at the end: JVMs and caches grow while they warm up, a leak keeps growing after that. Prints a table
and writes var/bench/soak.json.

    .venv/bin/python -m benchmarks.soak --minutes 10
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
import numpy as np

from benchmarks.bench_batch import MODEL_ID, base_photos
from benchmarks.common import PORT_FIELDS, unlimited_key
from runners.stack.ports import free_ports
from runners.stack.process import group_members
from runners.stack.settings import StackSettings
from runners.stack.stack import Stack
from transforms.settings import REPO_ROOT, Settings

OUT = REPO_ROOT / "var" / "bench"


class Recorder:
    """(kind, seconds since start, status, latency s) of every request, thread-safe."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.rows: list[tuple[str, float, int, float]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def add(self, kind: str, status: int, latency_s: float, error: str | None = None) -> None:
        with self._lock:
            self.rows.append((kind, time.monotonic() - self.began, status, latency_s))
            if error:
                self.errors.append(f"{kind}: {error}")


def process_usage(stack: Stack) -> dict[str, dict[str, int]]:
    """Resident memory (KiB) and open descriptors of each component's whole process group."""
    usage = {}
    for name, component in stack.components.items():
        pid = component.pid()
        if pid is None:
            continue
        rss = fds = 0
        for member in group_members(pid):
            try:
                status = Path(f"/proc/{member}/status").read_text()
                rss += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
                fds += len(os.listdir(f"/proc/{member}/fd"))
            except (OSError, StopIteration):
                continue  # the process ended meanwhile
        usage[name] = {"rss_kib": rss, "open_fds": fds}
    return usage


def run_load(api_url: str, key: str, args: argparse.Namespace, rec: Recorder) -> None:
    photo = base_photos(160)[0]
    hit_body = {"model_id": MODEL_ID, "image_data": base64.b64encode(photo).decode()}
    headers = {"Authorization": f"Bearer {key}"}
    deadline = time.monotonic() + args.minutes * 60

    def call(kind: str, client: httpx.Client, method: str, url: str, **kw: object) -> httpx.Response | None:
        began = time.monotonic()
        try:
            r = client.request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            rec.add(kind, 0, time.monotonic() - began, f"{type(exc).__name__}: {exc}")
            return None
        error = None if r.is_success else f"{r.status_code} {r.text[:200]}"
        rec.add(kind, r.status_code, time.monotonic() - began, error)
        return r

    def hits() -> None:
        with httpx.Client(base_url=api_url, timeout=30) as client:
            while time.monotonic() < deadline:
                call("sync hit", client, "POST", "/v1/recognize", json=hit_body)

    def misses() -> None:
        with httpx.Client(base_url=api_url, timeout=30) as client:
            while time.monotonic() < deadline:
                data = photo + uuid.uuid4().bytes  # a trailer after the JPEG end: same pixels, new hash
                body = {"model_id": MODEL_ID, "image_data": base64.b64encode(data).decode()}
                call("sync miss", client, "POST", "/v1/recognize", json=body)

    def batches() -> None:
        seen: list[bytes] = []
        with httpx.Client(base_url=api_url, timeout=60) as client:
            while time.monotonic() < deadline:
                started = time.monotonic()
                fresh = [photo + uuid.uuid4().bytes for _ in range(args.batch_items - args.batch_items // 2)]
                images = fresh + seen[-(args.batch_items // 2):]
                seen.extend(fresh)
                items = [{"model_id": MODEL_ID, "image_data": base64.b64encode(b).decode()} for b in images]
                r = call("batch submit", client, "POST", "/v1/recognize/batch", json={"items": items})
                if r is not None and r.is_success:
                    follow(client, r.json()["batch_id"], started)
                time.sleep(max(0.0, args.batch_every - (time.monotonic() - started)))

    def follow(client: httpx.Client, batch_id: str, started: float) -> None:
        while time.monotonic() - started < 600:
            r = call("batch status", client, "GET", f"/v1/recognize/batch/{batch_id}", params={"limit": 1})
            if r is not None and r.is_success and r.json()["status"] not in ("pending", "processing"):
                status = r.json()["status"]
                rec.add("batch done", 200 if status == "done" else 500, time.monotonic() - started,
                        None if status == "done" else f"batch {batch_id} ended {status}")
                return
            time.sleep(1.0)
        rec.add("batch done", 0, time.monotonic() - started, f"batch {batch_id} did not end within 600 s")

    threads = [threading.Thread(target=hits) for _ in range(args.hit_clients)]
    threads += [threading.Thread(target=misses) for _ in range(args.miss_clients)]
    threads.append(threading.Thread(target=batches))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def per_minute(rec: Recorder) -> dict[str, list[dict[str, float]]]:
    """P50/P99 latency (ms) and count per minute, per kind."""
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for kind, at, _, latency in rec.rows:
        buckets[kind][int(at // 60)].append(latency * 1000)
    return {
        kind: [{"minute": m + 1, "count": len(v), "p50_ms": round(float(np.percentile(v, 50)), 1),
                "p99_ms": round(float(np.percentile(v, 99)), 1)} for m, v in sorted(minutes.items())]
        for kind, minutes in buckets.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--hit-clients", type=int, default=2)
    parser.add_argument("--miss-clients", type=int, default=1)
    parser.add_argument("--batch-items", type=int, default=40)
    parser.add_argument("--batch-every", type=float, default=20.0, help="Seconds between batch submissions.")
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="imgrec-soak-"))
    root.chmod(0o755)  # PostgreSQL runs as an unprivileged user when started as root
    app = Settings(model_store=REPO_ROOT / "var" / "models", var_dir=root / "var")
    stack = Stack(StackSettings(root=root, **dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True))), app)
    rec = Recorder()
    try:
        stack.up()
        if stack.notes:
            raise RuntimeError("; ".join(stack.notes))
        key = unlimited_key(stack.settings.database_url, "soak")  # a soak, not a rate-limit test
        load_before = os.getloadavg()
        start = process_usage(stack)
        rec.began = time.monotonic()
        minutes: list[dict[str, dict[str, int]]] = []
        stop = threading.Event()

        def sample_every_minute() -> None:
            while not stop.wait(60.0):
                minutes.append(process_usage(stack))

        sampler = threading.Thread(target=sample_every_minute, daemon=True)
        sampler.start()
        run_load(stack.settings.api_url, key, args, rec)
        stop.set()
        sampler.join()
        end = process_usage(stack)
        load_after = os.getloadavg()
        restarts = {row["name"]: row["restarts"] for row in stack.status()}
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)

    report = {
        "minutes": args.minutes,
        "requests": len(rec.rows),
        "errors": len(rec.errors),
        "first_errors": rec.errors[:20],
        "per_minute": per_minute(rec),
        "processes": {name: {"start": start.get(name), "per_minute": [m.get(name) for m in minutes],
                             "end": end.get(name)} for name in start},
        "restarts": restarts,
        "load_average_1_5_15": {"start": [round(x, 1) for x in load_before], "end": [round(x, 1) for x in load_after]},
    }
    print(f"{len(rec.rows)} requests, {len(rec.errors)} errors in {args.minutes:g} min "
          f"(load average {report['load_average_1_5_15']['start'][0]} -> {report['load_average_1_5_15']['end'][0]})")
    for kind, minutes in report["per_minute"].items():
        print(f"{kind:<13} " + " ".join(f"{m['p99_ms']:>7.0f}" for m in minutes) + "   (P99 ms per minute)")
    print("resident memory MiB at the start, after each minute, at the end; open descriptors at the start and end")
    none = {"rss_kib": 0, "open_fds": 0}
    for name, usage in report["processes"].items():
        s, e = usage["start"], usage["end"] or none
        rss = [s] + [m or none for m in usage["per_minute"]] + [e]
        print(f"{name:<18} " + " ".join(f"{u['rss_kib'] / 1024:>5.0f}" for u in rss)
              + f"   fds {s['open_fds']} -> {e['open_fds']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "soak.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])

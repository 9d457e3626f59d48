"""What every benchmark shares: a private stack on free ports, percentiles, the machine's load, the stack's
resident memory, and the JSON report (dated, with the load average at start and end)."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from runners.stack.ports import free_ports
from runners.stack.process import group_members
from runners.stack.settings import StackSettings
from runners.stack.stack import Stack
from transforms.adapters.sql import SqlStore
from transforms.keys import hash_key
from transforms.settings import REPO_ROOT, Settings

PORT_FIELDS = StackSettings.port_fields()
OUT_DIR = REPO_ROOT / "var" / "bench"
MODEL_STORE = REPO_ROOT / "var" / "models"


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50 / p99 in milliseconds of samples in seconds."""
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        "n": len(ordered),
    }


def timed(fn: Callable[[int], object], count: int, concurrency: int) -> list[float]:
    """Seconds of each of `count` calls of fn(i), `concurrency` at a time, after one warm-up call."""

    def one(i: int) -> float:
        began = time.perf_counter()
        fn(i)
        return time.perf_counter() - began

    fn(-1)
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, range(count)))


def median_of(values: Iterable[float]) -> float:
    return round(statistics.median(list(values)), 3)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (what `uptime` prints): how busy the shared machine was."""
    return [round(v, 2) for v in os.getloadavg()]


def component_pids(leader: int) -> set[int]:
    """The processes of one stack component: its process group, and every descendant of its leader (PostgreSQL's
    backends each lead a process group of their own)."""
    pids = set(group_members(leader))
    with suppress(psutil.Error):  # the leader ended meanwhile
        pids.update(p.pid for p in psutil.Process(leader).children(recursive=True))
    return pids


def group_usage(leader: int) -> tuple[float, int]:
    """Memory (MiB) and open descriptors of one process group. Memory is the proportional set size: a page that
    several processes map (Triton's shared-memory tensors between the server and its Python stubs, shared libraries)
    counts once over all of them, where summing resident sizes would count it in each."""
    pss = fds = 0
    for pid in component_pids(leader):
        try:
            process = psutil.Process(pid)
            pss += process.memory_full_info().pss
            fds += process.num_fds()
        except psutil.Error:
            continue  # the process ended meanwhile
    return pss / 2**20, fds


def group_cpu_s(leader: int) -> float:
    """CPU seconds (user + system, from /proc) that the live processes of one component have used so far."""
    total = 0.0
    for pid in component_pids(leader):
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue  # the process ended meanwhile
        total += times.user + times.system
    return total


def stack_cpu_s(stack: Stack) -> dict[str, float]:
    """CPU seconds used so far by each process group the stack started (difference two readings for a window)."""
    return {name: group_cpu_s(leader) for name, c in stack.components.items() if (leader := c.pid()) is not None}


def stack_memory(stack: Stack) -> dict[str, Any]:
    """Memory of every process group the stack started (MiB, see `group_usage`), and their sum."""
    groups = {name: c.pid() for name, c in stack.components.items() if c.pid() is not None}
    pss = {name: group_usage(leader)[0] for name, leader in groups.items() if leader is not None}
    return {"pss_mb": {k: round(v) for k, v in pss.items()}, "total_mb": round(sum(pss.values()))}


@contextmanager
def private_stack(components: Sequence[str] | None = None, **app_fields: Any) -> Iterator[Stack]:
    """A stack on free ports under a temporary root; at the end `components` (all by default: what `Stack.up()`
    starts) are stopped and the root removed."""
    root = Path(tempfile.mkdtemp(prefix="imgrec-bench-"))
    root.chmod(0o755)  # PostgreSQL runs as an unprivileged user when started as root
    ports = dict(zip(PORT_FIELDS, free_ports(len(PORT_FIELDS)), strict=True))
    app = Settings(model_store=MODEL_STORE, var_dir=root / "var", _env_file=None, **app_fields)
    stack = Stack(StackSettings(root=root, **ports), app)
    try:
        yield stack
    finally:
        stack.stop(components)
        shutil.rmtree(root, ignore_errors=True)


def unlimited_key(database_url: str, name: str) -> str:
    """A new API key for a benchmark, its admission limits lifted: the figures measure the service, not the
    per-key limits (which answer 429s that are cheap and would flatter any throughput)."""
    store = SqlStore.from_url(database_url)
    try:
        key = store.keys.create(name)
        store.keys.set_limits(
            hash_key(key), rate_per_s=1_000_000, burst=1_000_000, max_concurrency=1_000,
            max_batch_items_in_flight=10_000_000,
        )  # fmt: skip
        return key
    finally:
        store.close()


def write_report(name: str, report: dict[str, Any]) -> Path:
    """var/bench/<name>.json with the date and this machine's core count."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    stamped = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpus": os.cpu_count(), **report}
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    print(f"wrote {path}")
    return path


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A plain aligned table on stdout."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)] if rows else []
    print("  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))

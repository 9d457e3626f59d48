"""Per-stage timing of the sync and batch paths: the Prometheus histogram `imgrec_stage_seconds{path, stage}` (wall
time) and the counter `imgrec_stage_cpu_seconds_total{path, stage}` (CPU of the thread that ran the stage).

A `StageTimer` belongs to one unit of work (a sync request, a batch item or micro-batch) and records how long
each named stage took. `finish()` observes every stage in the histogram under the path the work ended on (a sync
request is `sync_hit` or `sync_miss` once the cache has answered, `sync_error` when it failed; the batch path is
`batch`). A sync request's durations also travel back as an HTTP `Server-Timing` header, so a benchmark reads
per-request figures without scraping. Stage names are stable; the README's metrics table lists them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

STAGE_SECONDS = Histogram(
    "imgrec_stage_seconds",
    "Seconds spent in one stage of a sync request or a batch micro-batch, by path and stage.",
    ["path", "stage"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
# CPU of the thread that ran the stage (wall time minus waits on I/O, locks and the GIL): what a stage costs the
# machine, as opposed to what it costs the unit of work.
STAGE_CPU_SECONDS = Counter(
    "imgrec_stage_cpu_seconds", "CPU seconds of the thread that ran one stage, by path and stage.", ["path", "stage"]
)


class StageTimer:
    """Durations of the named stages of one unit of work (a stage entered twice adds up)."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path  # the histogram's `path` label; None: not observed
        self.durations: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body as stage `name` (also when it raises: a failed stage still took its time)."""
        began, cpu_began = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - began, time.thread_time() - cpu_began)

    def add(self, name: str, seconds: float, cpu_seconds: float = 0.0) -> None:
        self.durations[name] = self.durations.get(name, 0.0) + seconds
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds

    def merge(self, other: StageTimer) -> None:
        """Add `other`'s stages (run on a helper thread for this unit of work) to this timer's."""
        for name, seconds in other.durations.items():
            self.add(name, seconds, other.cpu.get(name, 0.0))

    def finish(self) -> None:
        """Observe every stage in `imgrec_stage_seconds` and `imgrec_stage_cpu_seconds` under this timer's path
        (none: nothing)."""
        if self.path is None:
            return
        for name, seconds in self.durations.items():
            STAGE_SECONDS.labels(self.path, name).observe(seconds)
        for name, seconds in self.cpu.items():
            STAGE_CPU_SECONDS.labels(self.path, name).inc(max(0.0, seconds))

    def server_timing(self) -> str:
        """The durations as an HTTP Server-Timing header value (milliseconds)."""
        return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in self.durations.items())


def parse_server_timing(value: str) -> dict[str, float]:
    """A Server-Timing header value -> {stage: milliseconds} (for benchmarks and tests)."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";dur=")
        if name and rest:
            out[name] = float(rest)
    return out

"""No silent stall: a batch with unfinished items that makes no progress for `stall_after_s` is reported.

Every API process watches the open batches (their finished counts, from the requests' states). A batch whose count
has not moved for `Settings.stall_after_s` counts in the gauge `imgrec_batches_stalled{stage}` (alert on it being
above zero) and gets a warning log line naming where its items wait:
- the batch job itself, when it is not ready (not RUNNING, restarting, or its Kafka source without partitions);
- `before inference` when every unfinished item is still pending (Kafka source, fetch, cache lookup, preprocess);
- `inference or sinks` when some were sent to inference but not stored (Triton, micro-batch, store).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from prometheus_client import Gauge

from transforms.store import BatchStore

log = logging.getLogger(__name__)
# Every API worker watches the same batches: several workers report the largest reading (multiprocess mode).
STALLED = Gauge("imgrec_batches_stalled", "Open batches without progress for stall_after_s, by stuck stage.",
                ["stage"], multiprocess_mode="livemax")
OLDEST_PROGRESS = Gauge("imgrec_batch_seconds_since_progress", "Longest time an open batch has gone without progress.",
                        multiprocess_mode="livemax")
STAGES = ("batch job", "before inference", "inference or sinks")


class StallWatch:
    """Remembers when each open batch last progressed; reports the ones that stopped."""

    def __init__(self, batches: BatchStore, stall_after_s: float, job_problem: Callable[[], str | None] = lambda: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.batches = batches
        self.stall_after_s = stall_after_s
        self.job_problem = job_problem  # why the batch job cannot make progress now, None when it can
        self.clock = clock
        self._last: dict[str, tuple[int, float]] = {}  # batch_id -> (finished count, when it last changed)
        self._reported: set[str] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> dict[str, str]:
        """One round: update the gauges and log newly stuck batches; the stuck batches with their stage."""
        now = self.clock()
        seen: dict[str, tuple[int, float]] = {}
        stuck: dict[str, str] = {}
        problem: str | None = None
        for batch_id, finished, pending, processing in self.batches.open_progress():
            count, since = self._last.get(batch_id, (finished, now))
            since = since if count == finished else now
            seen[batch_id] = (finished, since)
            if now - since < self.stall_after_s:
                continue
            if problem is None:
                problem = self.job_problem() or ""
            stage = "batch job" if problem else ("inference or sinks" if processing else "before inference")
            stuck[batch_id] = stage
            if batch_id not in self._reported:
                detail = f" ({problem})" if problem else ""
                log.warning("batch %s made no progress for %.0f s: stuck at %s%s; %d pending, %d processing",
                            batch_id, now - since, stage, detail, pending, processing)
        self._last = seen
        self._reported = set(stuck)
        for stage in STAGES:
            STALLED.labels(stage).set(sum(s == stage for s in stuck.values()))
        OLDEST_PROGRESS.set(max((now - since for _, since in seen.values()), default=0.0))
        return stuck

    def start(self, interval_s: float) -> None:
        """Check every `interval_s` in a daemon thread until `stop`."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.check()
                except Exception:  # the watch must outlive a database outage
                    log.exception("stall check failed")

        self._thread = threading.Thread(target=loop, name="stall-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

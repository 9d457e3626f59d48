"""Merges concurrent in-process inference calls into one model run: the embedded stand-in for Triton's
dynamic batcher.

Calls queue up while a run is in progress; the next run takes every queued call (up to `max_batch` rows) whose
input shapes and requested outputs match, so a lone caller pays no added latency and a crowd shares runs.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from transforms.backends.base import InferenceUnavailable

Arrays = dict[str, np.ndarray]
RunFn = Callable[[Arrays, list[str]], Arrays]


@dataclass
class _Call:
    inputs: Arrays
    output_names: list[str]
    future: Future[Arrays] = field(default_factory=Future)

    @property
    def rows(self) -> int:
        return len(next(iter(self.inputs.values())))

    def signature(self) -> tuple:
        """Calls can share a run when everything but the batch axis matches."""
        shapes = tuple(sorted((k, v.shape[1:], v.dtype.str) for k, v in self.inputs.items()))
        return shapes, tuple(self.output_names)


class MicroBatcher:
    """One worker thread per model; `submit` blocks the caller until its rows come back."""

    def __init__(self, run: RunFn, max_batch: int, max_wait_s: float = 0.0, name: str = "microbatch") -> None:
        self._run = run
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: queue.Queue[_Call | None] = queue.Queue()
        self._carry: _Call | None = None
        self._stopping = False
        self.runs = 0  # model runs so far, for tests and metrics
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, inputs: Arrays, output_names: list[str]) -> Arrays:
        call = _Call(inputs, output_names)
        self._queue.put(call)
        return call.future.result()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _next(self, timeout: float | None) -> _Call | None:
        if self._carry is not None:
            call, self._carry = self._carry, None
            return call
        return self._queue.get(timeout=timeout) if timeout is None or timeout > 0 else self._queue.get_nowait()

    def _gather(self, first: _Call) -> list[_Call]:
        batch, rows, signature = [first], first.rows, first.signature()
        deadline = time.monotonic() + self._max_wait_s
        while rows < self._max_batch:
            try:
                call = self._next(max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if call is None:
                self._stopping = True
                break
            if call.signature() != signature or rows + call.rows > self._max_batch:
                self._carry = call  # starts the next run
                break
            batch.append(call)
            rows += call.rows
        return batch

    def _loop(self) -> None:
        while not self._stopping:
            first = self._next(None)
            if first is None:
                return
            batch = self._gather(first)
            try:
                merged = first.inputs
                if len(batch) > 1:
                    merged = {k: np.concatenate([c.inputs[k] for c in batch]) for k in first.inputs}
                out = self._run(merged, first.output_names)
                self.runs += 1
                start = 0
                for call in batch:
                    call.future.set_result({k: v[start : start + call.rows] for k, v in out.items()})
                    start += call.rows
            except Exception as exc:  # every waiting caller gets the failure, the worker lives on
                for call in batch:
                    call.future.set_exception(exc)
        self._fail_pending()

    def _fail_pending(self) -> None:
        """After close, nobody waits forever: queued calls fail as unavailable."""
        while True:
            try:
                call = self._next(0)
            except queue.Empty:
                return
            if call is not None:
                call.future.set_exception(InferenceUnavailable("the in-process inference back end was closed"))

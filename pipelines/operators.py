"""Flink operators of the batch job: thin adapters around `transforms.batch_steps`.

Each operator builds its own ports (store, cache, back end, ...) from the job's settings in `open`, because
functions are pickled to the TaskManager and connections cannot travel. Operators carry the path of the settings
file (None: the TaskManager's IMGREC_* environment), not the settings, so no secret travels in the job graph.
"""

from __future__ import annotations

from typing import Any

from pyflink.common import Row, Types
from pyflink.datastream import OutputTag
from pyflink.datastream.functions import KeyedProcessFunction, ProcessFunction, RuntimeContext
from pyflink.datastream.state import ListStateDescriptor, ValueStateDescriptor

from pipelines.job_spec import load_settings
from pipelines.metrics import serve_metrics
from transforms.batch_steps import (
    BadMessage,
    BatchSteps,
    FetchedItem,
    InFlightDedup,
    Outcome,
    PreparedBatch,
    Settle,
    by_batch,
    dead_letter,
    parse_message,
    rejected_result,
)
from transforms.composition import build_ports
from transforms.errors import RecognitionError
from transforms.results import ItemResult

DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())
CACHE_HITS = OutputTag("cache-hits", Types.PICKLED_BYTE_ARRAY())
# Answers of items that failed before the sinks (dead letters, unreadable images, unknown models): [ItemResult].
FAILED = OutputTag("failed", Types.PICKLED_BYTE_ARRAY())
# A record of the results topic: the key (caller_id) and the message (JSON).
RESULT_RECORD = Types.ROW_NAMED(["caller_id", "message"], [Types.STRING(), Types.STRING()])
# An event-time timer this late fires only on the final watermark, i.e. at the end of a bounded input; it
# flushes buffers that processing-time timers would leave behind there (they do not fire at the end of input).
END_OF_INPUT = 2**62


class _StepsMixin:
    """Builds the batch steps from the job's settings when the operator opens."""

    steps: BatchSteps

    def __init__(self, settings_file: str | None) -> None:
        self._settings_file = settings_file

    def open(self, runtime_context: RuntimeContext) -> None:
        settings = load_settings(self._settings_file)
        serve_metrics(settings.batch_metrics_port)
        # Every store call of the batch steps is retried on an outage, so a ping before each one buys nothing.
        self.steps = BatchSteps(
            build_ports(settings, store_pre_ping=False, route_memo_s=settings.batch_route_memo_s)
        )

    def close(self) -> None:
        steps = getattr(self, "steps", None)
        if steps is not None:
            steps.close()


class Intake(_StepsMixin, ProcessFunction):
    """Parse and validate one message, choose its model version (once, here), read its image and hash it.

    Bad messages go to the dead-letter output with the reason (and are answered as failed when their request_id can
    be read); an unreadable image or an unknown model fails the item. What goes on is a reference to the image (the
    bytes only for an http(s) URL), never pixels.
    """

    def process_element(self, value: str, ctx: ProcessFunction.Context):
        try:
            msg = parse_message(value)
        except BadMessage as exc:
            yield DEAD_LETTERS, dead_letter(value, exc.reason)
            answer = rejected_result(value, exc.reason)
            if answer is not None:
                yield FAILED, [answer]
            return
        try:
            yield self.steps.fetch(msg)
        except RecognitionError as exc:
            yield FAILED, [self.steps.fail(msg, exc)]


class CacheLookup(_StepsMixin, KeyedProcessFunction):
    """Keyed by (image_hash, model_id, version): hits leave by the side output, misses go on.

    In-flight dedup (rules in InFlightDedup): the first miss of a key goes on and marks the key in flight; copies
    that arrive meanwhile are parked in keyed (so checkpointed) state and re-checked against the cache on a
    processing-time timer, and on the end-of-input event-time timer, which a bounded input's last watermark fires.
    """

    def __init__(self, settings_file: str | None, dedup: InFlightDedup | None = None) -> None:
        super().__init__(settings_file)
        self.dedup = dedup or InFlightDedup()

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.in_flight_since = runtime_context.get_state(ValueStateDescriptor("in-flight-since", Types.LONG()))
        self.parked = runtime_context.get_list_state(ListStateDescriptor("parked", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value: FetchedItem, ctx: KeyedProcessFunction.Context):
        hit = self.steps.lookup(value)
        if hit is not None:
            yield CACHE_HITS, hit
            return
        timers = ctx.timer_service()
        now = timers.current_processing_time()
        if self.in_flight_since.value() is None:
            self.in_flight_since.update(now)
            # Ends the mark even when no copy gets parked, so keyed state does not grow with every image seen.
            timers.register_processing_time_timer(now + self.dedup.give_up_ms)
            yield value
            return
        self.parked.add(value)
        timers.register_processing_time_timer(self.dedup.next_check(now))
        timers.register_event_time_timer(END_OF_INPUT)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        timers = ctx.timer_service()
        now = timers.current_processing_time()
        parked = list(self.parked.get() or [])
        hits = self.steps.lookup_copies(parked) if parked else None
        input_ended = timestamp == END_OF_INPUT
        if self.dedup.settle(self.in_flight_since.value(), now, hits is not None, input_ended) is Settle.WAIT:
            if parked:
                timers.register_processing_time_timer(self.dedup.next_check(now))
            return
        self.in_flight_since.clear()
        if not parked:
            return
        self.parked.clear()
        if not input_ended:  # an unbounded input never fires it: drop it so timers do not pile up per image
            timers.delete_event_time_timer(END_OF_INPUT)
        if hits is not None:
            for hit in hits:
                yield CACHE_HITS, hit
        else:
            yield from parked


class MicroBatch(KeyedProcessFunction):
    """Collects the elements of one key into lists of at most `size`, emitted at the latest `max_wait_ms` after
    the first one arrived, and at the end of a bounded input. The buffer is keyed state, so it is checkpointed.
    """

    def __init__(self, size: int, max_wait_ms: int) -> None:
        self.size = max(1, size)
        self.max_wait_ms = max(1, max_wait_ms)

    def open(self, runtime_context: RuntimeContext) -> None:
        self.buffer = runtime_context.get_list_state(ListStateDescriptor("buffer", Types.PICKLED_BYTE_ARRAY()))
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.INT()))
        self.deadline = runtime_context.get_state(ValueStateDescriptor("deadline", Types.LONG()))

    def process_element(self, value: Any, ctx: KeyedProcessFunction.Context):
        self.buffer.add(value)
        count = (self.count.value() or 0) + 1
        if count >= self.size:
            deadline = self.deadline.value()
            if deadline is not None:
                ctx.timer_service().delete_processing_time_timer(deadline)
            yield from self._flush()
            return
        self.count.update(count)
        if count == 1:
            deadline = ctx.timer_service().current_processing_time() + self.max_wait_ms
            self.deadline.update(deadline)
            ctx.timer_service().register_processing_time_timer(deadline)
            ctx.timer_service().register_event_time_timer(END_OF_INPUT)

    def on_timer(self, timestamp: int, ctx: KeyedProcessFunction.OnTimerContext):
        yield from self._flush()

    def _flush(self):
        items = list(self.buffer.get() or [])
        self.buffer.clear()
        self.count.clear()
        self.deadline.clear()
        if items:
            yield self.emit(items)

    def emit(self, items: list[Any]) -> Any:
        """What a full (or timed-out) micro-batch becomes downstream: the list itself."""
        return items


class PrepareMicroBatch(MicroBatch):
    """Micro-batches of references to images for one model version, each admitted, read, decoded and preprocessed
    on the preprocessing threads into one stacked model input (a `PreparedBatch`).

    The buffer holds references, not tensors, so a checkpoint of it is small; pixels cross Flink once per
    micro-batch, to the Triton operator, which infers one batch while this one prepares the next.
    """

    def __init__(self, settings_file: str | None, size: int, max_wait_ms: int) -> None:
        super().__init__(size, max_wait_ms)
        self.stepper = _StepsMixin(settings_file)

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.stepper.open(runtime_context)

    def close(self) -> None:
        self.stepper.close()

    def emit(self, items: list[FetchedItem]) -> PreparedBatch:
        return self.stepper.steps.prepare_batch(items)


class Infer(_StepsMixin, ProcessFunction):
    """One Triton request per prepared micro-batch, then postprocessing (labels stay unthresholded)."""

    def process_element(self, value: PreparedBatch, ctx: ProcessFunction.Context):
        yield self.steps.infer_prepared(value)


class StoreResults(_StepsMixin, ProcessFunction):
    """Threshold and write a list of outcomes in one transaction (idempotent upsert, request done, progress); emits
    the items' answers, one list per batch."""

    def process_element(self, value: list[Outcome], ctx: ProcessFunction.Context):
        yield from by_batch(self.steps.finish(value))


class Announce(_StepsMixin, KeyedProcessFunction):
    """Keyed by batch (a lone item by its request), answers arrive in lists: each answer becomes a record of the
    results topic, and the batch's completion event follows its last answer, once (rules in CompletionWatch).

    The watch is keyed state and shares the checkpoints of the transactional sink: after a restart the replayed
    answers are counted again from the checkpoint's watch, so the event is written in exactly one committed
    transaction.
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        super().open(runtime_context)
        self.watch = runtime_context.get_state(ValueStateDescriptor("completion-watch", Types.PICKLED_BYTE_ARRAY()))

    def process_element(self, value: list[ItemResult], ctx: KeyedProcessFunction.Context):
        watch = self.watch.value()
        for answer in value:
            yield Row(answer.caller_id, answer.to_json())
            if answer.batch_id is None:
                continue
            watch, event = self.steps.answered(answer.batch_id, watch)
            if event is not None:
                yield Row(event.caller_id, event.to_json())
        if watch is not None:
            self.watch.update(watch)

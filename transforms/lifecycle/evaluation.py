"""Offline evaluation: a version (and the active one, side by side) over the model's labelled set, the metrics
that fit its family, agreement between the two, latency per image, and the gate's verdict.

Both versions run through the serving back end (Triton, or ONNX Runtime in process) one image at a time,
interleaved and repeated, so their latencies are measured under the same load; medians are reported, and the
gated latency ratio is the median of paired ratios (same image, same round).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from transforms.backends.base import InferenceBackend
from transforms.handlers.base import Label, ModelHandler, ModelVersion
from transforms.inference import infer_images
from transforms.lifecycle.evalset import EvalSet
from transforms.lifecycle.gates import GateRules, GateVerdict, judge
from transforms.lifecycle.metrics import (
    classification_agreement,
    classification_quality,
    detection_agreement,
    detection_quality,
)

# The single number gated by `min_agreement`, per kind of set.
AGREEMENT_KEY = {"classification": "top1_agreement", "detection": "label_overlap"}


@dataclass(frozen=True)
class VersionRun:
    """One version over the set: its labels per image and its median time per image."""

    version: str
    predictions: list[list[Label]]
    latency_ms: float


@dataclass(frozen=True)
class EvaluationReport:
    """The stored report: JSON for machines, markdown for people, and the verdict."""

    report: dict[str, Any]
    summary_md: str
    verdict: GateVerdict

    @property
    def passed(self) -> bool:
        return self.verdict.passed


class Evaluator:
    """Runs versions over an evaluation set through one back end."""

    def __init__(
        self,
        backend: InferenceBackend,
        handler_for: Callable[[ModelVersion], ModelHandler],
        backend_name: str,
        repeats: int = 5,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.clock = clock
        self.backend = backend
        self.handler_for = handler_for
        self.backend_name = backend_name
        self.repeats = repeats

    def evaluate(
        self, candidate: ModelVersion, baseline: ModelVersion | None, eval_set: EvalSet, rules: GateRules
    ) -> EvaluationReport:
        """Metrics of the candidate (and of the active version), agreement, latency ratio and the verdict."""
        images = [item.image.decode() for item in eval_set.items]
        versions = [candidate] if baseline is None else [candidate, baseline]
        runs, ratio = self._run(versions, images)
        cand, base = runs[0], runs[1] if baseline is not None else None
        threshold = candidate.default_confidence_threshold
        quality = self._quality(eval_set, cand.predictions, threshold)
        base_quality = (
            self._quality(eval_set, base.predictions, baseline.default_confidence_threshold)
            if base and baseline
            else None
        )
        agreement = None
        if base is not None:
            agreement = (
                classification_agreement(cand.predictions, base.predictions)
                if eval_set.kind == "classification"
                else detection_agreement(cand.predictions, base.predictions, threshold)
            )
        verdict = judge(
            rules,
            quality,
            base_quality,
            ratio,
            agreement[AGREEMENT_KEY[eval_set.kind]] if agreement else None,
            agreement.get("score_correlation") if agreement else None,
        )
        report = {
            "model_id": candidate.model_id,
            "eval_set": {
                "name": eval_set.name,
                "kind": eval_set.kind,
                "items": len(eval_set.items),
                "sha256": eval_set.sha256,
            },
            "backend": self.backend_name,
            "repeats": self.repeats,
            "candidate": {"version": cand.version, "quality": quality, "latency_ms": cand.latency_ms},
            "active": None
            if base is None
            else {"version": base.version, "quality": base_quality, "latency_ms": base.latency_ms},
            "agreement": agreement,
            "latency_ratio": ratio,
            "gate": {
                "rules": rules.model_dump(),
                "passed": verdict.passed,
                "checks": [c.to_dict() for c in verdict.checks],
            },
            "items": [
                {
                    "id": item.id,
                    "candidate": [x.to_dict() for x in c[:5]],
                    "active": None if base is None else [x.to_dict() for x in base.predictions[i][:5]],
                }
                for i, (item, c) in enumerate(zip(eval_set.items, cand.predictions, strict=True))
            ],
        }
        return EvaluationReport(report, summary_markdown(report), verdict)

    def _quality(self, eval_set: EvalSet, predictions: list[list[Label]], threshold: float) -> dict[str, float]:
        if eval_set.kind == "classification":
            return classification_quality(predictions, eval_set.expected_labels())
        return detection_quality(predictions, eval_set.expected_boxes(), threshold)

    def _run(self, versions: list[ModelVersion], images: list) -> tuple[list[VersionRun], float | None]:
        """Each version over every image: untimed once (sessions warm), then `repeats` timed rounds in which the
        versions take turns going first. Returns the runs and the median of the paired latency ratios (candidate
        over active, same image, same round): pairs measured a moment apart cancel the drift of a shared host."""
        handlers = [self.handler_for(v) for v in versions]
        predictions = [
            [infer_images(m, h, self.backend, [img])[0].labels for img in images]
            for m, h in zip(versions, handlers, strict=True)
        ]
        times: list[list[float]] = [[] for _ in versions]
        ratios = []
        for repeat in range(self.repeats):
            for i, image in enumerate(images):
                order = range(len(versions)) if (repeat + i) % 2 == 0 else reversed(range(len(versions)))
                took = {}
                for k in order:
                    started = self.clock()
                    infer_images(versions[k], handlers[k], self.backend, [image])
                    took[k] = (self.clock() - started) * 1000
                    times[k].append(took[k])
                if len(versions) == 2 and took[1] > 0:
                    ratios.append(took[0] / took[1])
        runs = [VersionRun(v.version, predictions[k], median(times[k])) for k, v in enumerate(versions)]
        return runs, median(ratios) if ratios else None


def summary_markdown(report: dict[str, Any]) -> str:
    """A short markdown summary of a report: metrics side by side, the gate's checks, the verdict."""
    cand, act = report["candidate"], report["active"]
    head = f"| metric | v{cand['version']} (candidate) |" + (f" v{act['version']} (active) |" if act else "")
    lines = [
        f"### {report['model_id']} v{cand['version']}: {'PASS' if report['gate']['passed'] else 'FAIL'}",
        "",
        f"Evaluation set `{report['eval_set']['name']}` ({report['eval_set']['items']} images), "
        f"back end {report['backend']}, {report['repeats']} timed runs per image.",
        "",
        head,
        "|---|---|" + ("---|" if act else ""),
    ]
    for name, value in cand["quality"].items():
        lines.append(f"| {name} | {value:.3f} |" + (f" {act['quality'][name]:.3f} |" if act else ""))
    lines.append(
        f"| latency (median ms/image) | {cand['latency_ms']:.1f} |" + (f" {act['latency_ms']:.1f} |" if act else "")
    )
    if report["agreement"]:
        agreement = ", ".join(f"{k} {v:.3f}" for k, v in report["agreement"].items())
        lines += ["", f"Agreement with the active version: {agreement}."]
    lines += ["", "Gate:" if report["gate"]["checks"] else "Gate: no rule applies (no active version, no floor)."]
    lines += [
        f"- {'ok' if c['passed'] else 'FAILED'}: {c['rule']} (value {c['value']}, limit {c['limit']})"
        for c in report["gate"]["checks"]
    ]
    return "\n".join(lines) + "\n"

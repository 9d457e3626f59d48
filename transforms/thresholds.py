"""Confidence thresholds with the min_label_count fallback, and validation of the per-request overrides."""

from __future__ import annotations

import math
from collections.abc import Sequence

from transforms.errors import RecognitionError
from transforms.handlers.base import Label, ModelVersion

STEP = 0.05
# Scores and thresholds are compared at the precision the cache stores (Label.to_dict rounds to 6 places), so a
# cached result and a fresh one keep exactly the same labels at every threshold.
PRECISION = 6


def apply_threshold(labels: Sequence[Label], threshold: float, min_label_count: int) -> tuple[list[Label], float]:
    """Keep labels scoring >= threshold, lowering it in 0.05 steps (floor 0) until min_label_count qualify.

    Returns the kept labels in their original order and the threshold that was applied. With fewer labels
    than min_label_count, the threshold comes down until all of them qualify.
    """
    scores = [round(label.score, PRECISION) for label in labels]
    wanted = min(max(min_label_count, 0), len(scores))
    applied = round(threshold, PRECISION)
    if wanted:
        # The wanted-th best score must pass; each step is rounded so 0.5 - 10 * 0.05 is 0.0, not 1e-17.
        needed = sorted(scores, reverse=True)[wanted - 1]
        steps = 0
        while applied > needed and applied > 0:
            steps += 1
            applied = max(round(threshold - steps * STEP, PRECISION), 0.0)
    kept = [label for label, score in zip(labels, scores, strict=True) if score >= applied]
    return kept, applied


def apply_model_threshold(
    labels: Sequence[Label], model: ModelVersion, confidence_threshold: float | None, min_label_count: int | None
) -> tuple[list[Label], float]:
    """`apply_threshold` with a caller's overrides, each falling back to the model version's registry default."""
    threshold = model.default_confidence_threshold if confidence_threshold is None else confidence_threshold
    wanted = model.min_label_count if min_label_count is None else min_label_count
    return apply_threshold(labels, threshold, wanted)


def validate_threshold(value: float | None) -> float | None:
    """A caller's confidence_threshold: None (use the model's default) or a number in [0, 1], else bad_threshold."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or not 0 <= value <= 1:
        message = f"confidence_threshold must be a number from 0 to 1, not {value!r}."
        raise RecognitionError("bad_threshold", message, field="confidence_threshold")
    return float(value)

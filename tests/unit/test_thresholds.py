"""Thresholds: keep, lower in 0.05 steps until min_label_count qualify, and validate overrides."""

from __future__ import annotations

import pytest

from transforms.errors import RecognitionError
from transforms.handlers.base import Label
from transforms.thresholds import apply_threshold, validate_threshold


def labels(*scores: float) -> list[Label]:
    return [Label(f"l{i}", s) for i, s in enumerate(scores)]


def test_keeps_scores_at_or_above_the_threshold() -> None:
    kept, applied = apply_threshold(labels(0.9, 0.5, 0.49, 0.1), 0.5, 1)
    assert [label.score for label in kept] == [0.9, 0.5]
    assert applied == 0.5


def test_no_lowering_when_enough_qualify() -> None:
    assert apply_threshold(labels(0.9, 0.8, 0.2), 0.7, 2) == (labels(0.9, 0.8), 0.7)


def test_lowers_in_steps_until_one_qualifies() -> None:
    kept, applied = apply_threshold(labels(0.33, 0.2, 0.05), 0.5, 1)
    assert applied == 0.3  # 0.5 -> 0.45 -> 0.4 -> 0.35 -> 0.3
    assert kept == labels(0.33)


def test_lowers_until_min_label_count_qualify() -> None:
    kept, applied = apply_threshold(labels(0.62, 0.41, 0.12, 0.02), 0.7, 3)
    assert applied == 0.1
    assert [label.score for label in kept] == [0.62, 0.41, 0.12]


def test_steps_land_exactly_on_a_score_without_float_drift() -> None:
    # 0.5 - 3 * 0.05 is 0.35000000000000003 in floats; a score of exactly 0.35 must qualify at that step.
    kept, applied = apply_threshold(labels(0.35, 0.1), 0.5, 1)
    assert (applied, kept) == (0.35, labels(0.35))
    _, applied = apply_threshold(labels(0.15), 0.95, 1)
    assert applied == 0.15


def test_floor_is_zero() -> None:
    kept, applied = apply_threshold(labels(0.0, 0.0), 0.12, 1)
    assert applied == 0.0
    assert len(kept) == 2


def test_fewer_labels_than_wanted_keeps_all_of_them() -> None:
    kept, applied = apply_threshold(labels(0.3, 0.21), 0.5, 5)
    assert applied == 0.2
    assert kept == labels(0.3, 0.21)


def test_min_label_count_zero_is_a_true_empty_answer() -> None:
    assert apply_threshold(labels(0.2, 0.1), 0.5, 0) == ([], 0.5)
    assert apply_threshold([], 0.5, 1) == ([], 0.5)


def test_threshold_off_the_step_grid_keeps_its_offset() -> None:
    _, applied = apply_threshold(labels(0.2), 0.33, 1)
    assert applied == 0.18  # 0.33, 0.28, 0.23, 0.18


def test_keeps_original_order_and_boxes() -> None:
    boxed = [Label("b", 0.4, [1.0, 2.0, 3.0, 4.0]), Label("a", 0.9), Label("c", 0.1)]
    kept, _ = apply_threshold(boxed, 0.3, 1)
    assert kept == boxed[:2]


def test_compares_at_cache_precision() -> None:
    # 0.49999999 is stored as 0.5 in the cache; the fresh result must be judged the same way.
    assert apply_threshold(labels(0.49999999), 0.5, 0)[0] == labels(0.49999999)


@pytest.mark.parametrize("value", [0, 0.0, 0.5, 1, 1.0, None])
def test_valid_thresholds(value: float | None) -> None:
    assert validate_threshold(value) == value


@pytest.mark.parametrize("value", [-0.01, 1.01, float("nan"), float("inf"), True, "0.5"])
def test_bad_thresholds(value: object) -> None:
    with pytest.raises(RecognitionError) as info:
        validate_threshold(value)  # type: ignore[arg-type]
    assert (info.value.code, info.value.http_status) == ("bad_threshold", 422)
